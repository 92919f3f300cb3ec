"""The direct run: the services' detector over the cohort's records, every variant at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings
from alerts.detector import ResidentDetector
from alerts.model import Decision
from eldercare.evaluation.book import AlertBook
from eldercare.evaluation.daily import DailyOutput
from eldercare.evaluation.devices import DirectHome
from eldercare.evaluation.habits import HabitLearner
from eldercare.evaluation.rows import AlertRow
from eldercare.evaluation.runner import (
    SITE,
    TICK_S,
    ResidentRun,
    decision_key,
    resident_context,
    run_resident,
)
from eldercare.evaluation.variants import Variant, variants
from gateway.records import Record, TelemetryRecord
from simulators.cohort import CohortSpec, Resident, build_resident, home_actions
from simulators.incidents import IncidentType

SPEC = CohortSpec(residents=1, days=9, seed=3)


def test_every_press_is_an_alert_and_habits_are_learned() -> None:
    resident = build_resident(SPEC, 1)
    run = run_resident(resident, SPEC, variants(AlertSettings()), keep_decisions=True)
    presses = sorted((i.type.value, i.start) for i in resident.incidents
                     if i.type in (IncidentType.SOS, IncidentType.FALL))
    alerts = sorted((a.type, a.at) for a in run.alerts["default"] if a.type in ("sos", "fall"))
    assert presses and alerts == presses
    # every variant saw the same records; dedup off never has fewer alerts than dedup on
    assert set(run.alerts) == {"default", "no_persistence", "no_hysteresis", "no_dedup",
                               "no_habits"}
    assert len(run.alerts["no_dedup"]) >= len(run.alerts["default"])
    # one refresh a day from the second day; the rise is learned after the first morning
    assert len(run.habits) == SPEC.days - 1
    rise = run.habits[-1][1]
    assert rise is not None and time(4) <= rise <= time(12)
    assert run.decisions and run.decisions[0][0] in ("trigger", "clear", "cancel")


def test_persistence_off_alerts_on_spikes() -> None:
    resident = build_resident(SPEC, 1)
    vs = variants(AlertSettings())
    run = run_resident(resident, SPEC, [vs[0], vs[1]])
    spikes = [i for i in resident.incidents if i.type is IncidentType.HR_SPIKE]
    assert spikes

    def near(rows: list[AlertRow], start: datetime) -> bool:
        return any(a.type == "heart_rate_high" and start <= a.at <= start + timedelta(minutes=5)
                   for a in rows)

    assert not any(near(run.alerts["default"], s.start) for s in spikes)
    assert all(near(run.alerts["no_persistence"], s.start) for s in spikes)


class CountingDaily:
    """A daily detector for the seam: counts records, raises one alert per local day seen."""

    def __init__(self, resident: Resident, spec: CohortSpec) -> None:
        self.rid = resident.resident_id
        self.n = 0
        self.days: dict[object, datetime] = {}

    def records(self, records: Sequence[Record]) -> None:
        self.n += len(records)
        for rec in records:
            self.days.setdefault(rec.time.date(), rec.time)

    def finish(self) -> DailyOutput:
        return DailyOutput([AlertRow(self.rid, "routine_change", t) for t in self.days.values()])


def test_a_daily_detector_gets_every_record_and_its_alerts_are_scored() -> None:
    spec = CohortSpec(residents=1, days=2, seed=3)
    resident = build_resident(spec, 1)
    made: list[CountingDaily] = []

    def factory(r: Resident, s: CohortSpec) -> CountingDaily:
        made.append(CountingDaily(r, s))
        return made[-1]

    run = run_resident(resident, spec, variants(AlertSettings())[:1],
                       daily={"routine_change": factory})
    assert made[0].n == run.records + 2  # and the two devices' first status
    routine = [a for a in run.alerts["default"] if a.type == "routine_change"]
    assert len(routine) == len(made[0].days) >= 2


def reference_run(resident: Resident, spec: CohortSpec, vs: Sequence[Variant]
                  ) -> tuple[ResidentRun, dict[tuple[str, bool], list[tuple[str, str, datetime]]]]:
    """The run done the plain way, as the runner's docstring tells it: every action's
    records at once to every detector and the learner, a tick every TICK_S of event time,
    the habits refreshed at each local noon; and every detector's decisions."""
    tz = ZoneInfo(spec.timezone)
    dets: dict[tuple[str, bool], ResidentDetector] = {}
    books: dict[str, tuple[tuple[str, bool], AlertBook]] = {}
    for v in vs:
        if v.detector_key not in dets:
            dets[v.detector_key] = ResidentDetector(resident_context(resident, spec, v.settings))
        books[v.name] = (v.detector_key, AlertBook(v.settings, dedup=v.dedup))
    kept: dict[tuple[str, bool], list[tuple[str, str, datetime]]] = {k: [] for k in dets}
    # the learner leaves out the days the first variant's alerts fell on, as the runner's
    learner = HabitLearner(tz, spec.telemetry_period_s, books[vs[0].name][1].alerts)
    home = DirectHome(resident, SITE, spec.seed, spec.start)
    habits: list[tuple[date, time | None, float | None]] = []
    learned: tuple[time | None, float | None] = (None, None)
    habit_keys = {v.detector_key for v in vs if v.habits}

    def take(key: tuple[str, bool], decisions: list[Decision]) -> None:
        kept[key] += [decision_key(d) for d in decisions]
        for k, book in books.values():
            if k == key:
                book.apply(decisions)

    def feed(records: list[Record]) -> None:
        for rec in records:
            if type(rec) is TelemetryRecord and rec.device_id == resident.bed:
                learner.reading(rec.time, rec.occupied)
        for key, det in dets.items():
            take(key, det.on_records(records))

    def tick_until(t: datetime) -> None:
        nonlocal next_tick
        while next_tick <= t:
            for key, det in dets.items():
                take(key, det.tick(next_tick))
            next_tick += timedelta(seconds=TICK_S)

    n = 0
    next_tick = spec.start + timedelta(seconds=TICK_S)
    refresh = spec.start + timedelta(days=1)
    feed(home.connect_all(spec.start))
    for a in home_actions(resident, spec):
        tick_until(a.t)
        if a.t >= refresh:
            today = refresh.astimezone(tz).date()
            usual = learner.usual(today)
            habits.append((today, *usual))
            if usual != learned:
                learned = usual
                for key in habit_keys:
                    dets[key].update_context(resident_context(
                        resident, spec, dets[key].context.settings, *usual))
            refresh += timedelta(days=1)
        records = home.apply(a)
        n += len(records)
        feed(records)
    tick_until(spec.end)
    alerts = {name: [AlertRow(a.resident_id, a.type, a.opened_at, a.severity, a.count)
                     for a in book.alerts] for name, (_, book) in books.items()}
    repeats = {name: [AlertRow(a.resident_id, a.type, t, a.severity)
                      for a in book.alerts for t in a.repeats]
               for name, (_, book) in books.items()}
    outcomes = {name: dict(book.outcomes) for name, (_, book) in books.items()}
    first = kept[vs[0].detector_key]
    return ResidentRun(resident.resident_id, alerts, outcomes, habits, n, first, repeats), kept


def test_the_runner_decides_as_the_plain_run() -> None:
    """The runner's shortcuts (records fed in batches between ticks, the simulator's fast
    stream) change nothing: every variant's decisions, alerts, repeats and outcomes, and
    the habits learned, are those of the plain run."""
    vs = variants(AlertSettings())
    for rid in (1, 2):
        resident = build_resident(SPEC, rid)
        want, kept = reference_run(resident, SPEC, vs)
        assert len(want.decisions) > 10 and want.habits
        assert run_resident(resident, SPEC, vs, keep_decisions=True, daily={}) == want
        for v in vs[1:]:
            run = run_resident(resident, SPEC, [v], keep_decisions=True)
            assert run.decisions == kept[v.detector_key], v.name
