"""The direct run: the services' detector over the cohort's records, every variant at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from alerts.config import AlertSettings
from eldercare.evaluation.daily import DailyOutput
from eldercare.evaluation.rows import AlertRow
from eldercare.evaluation.runner import run_resident
from eldercare.evaluation.variants import variants
from gateway.records import Record
from simulators.cohort import CohortSpec, Resident, build_resident
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
