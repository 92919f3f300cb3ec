"""Runs the cohort through the services' detection code, one resident at a time.

For each resident the simulator's actions become the gateway's records
(`eldercare.evaluation.devices`), which go, in arrival order and on event time, through
`alerts.detector.ResidentDetector` (the same rules `AlertEngine` runs) with a tick every
`TICK_S` of event time (the service ticks on its wall clock, which a live system keeps equal
to event time), and the decisions through the store's logic (`eldercare.evaluation.book`).
The resident context is refreshed every local noon with the habits the daily rollups would
have learned (`eldercare.evaluation.habits`), as the service refreshes it from
`resident_daily`. One pass of the action stream feeds every variant (ablation) at once.

Residents are independent, so the cohort runs in a process pool (`jobs`, default one per
core) with a progress bar.

The seam for daily detectors (issue 15's routine-change detection) is
`eldercare.evaluation.daily`: a factory registered there gets every record the rule detector
gets and returns its alerts at the end as `AlertRow`s (resident, alert type, event time); the
scoring takes any detector's rows the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tqdm import tqdm

from alerts.config import AlertSettings
from alerts.detector import DeviceContext, ResidentContext, ResidentDetector
from alerts.model import AlertClear, AlertTrigger, Decision
from eldercare.evaluation.book import RESOLVE_AFTER_S, AlertBook
from eldercare.evaluation.daily import DAILY_DETECTORS, DailyFactory
from eldercare.evaluation.devices import DirectHome
from eldercare.evaluation.habits import HabitLearner
from eldercare.evaluation.minutes import RollupRows
from eldercare.evaluation.rows import AlertRow
from eldercare.evaluation.variants import Variant
from gateway.records import Record, TelemetryRecord
from gateway.schema import DeviceType
from simulators.cohort import (
    HEARTBEAT_S,
    CohortScript,
    CohortSpec,
    Resident,
    build_resident,
    home_actions,
)

logger = logging.getLogger(__name__)

SITE = "eval"
TICK_S = 60.0
_NOON = time(12)


@dataclass
class ResidentRun:
    """What one resident's run produced, per variant."""

    resident_id: int
    alerts: dict[str, list[AlertRow]]
    outcomes: dict[str, dict[str, int]]
    habits: list[tuple[date, time | None, float | None]]
    records: int = 0
    decisions: list[tuple[str, str, datetime]] = field(default_factory=list)
    # triggers that joined an alert already open for the resident and type (the store's
    # one alert per resident and type): they reach people as that alert's repeats
    repeats: dict[str, list[AlertRow]] = field(default_factory=dict)
    # daily detectors' rows for the database phase (eldercare.evaluation.routine_db)
    rollups: dict[str, RollupRows] = field(default_factory=dict)


def resident_context(resident: Resident, spec: CohortSpec, settings: AlertSettings,
                     rise: time | None = None, day_s: float | None = None) -> ResidentContext:
    """The context the service would load for this resident."""
    return ResidentContext(
        resident_id=resident.resident_id, site=SITE, timezone=spec.timezone,
        settings=settings,
        devices=(DeviceContext(resident.bed, DeviceType.BED_SENSOR, HEARTBEAT_S),
                 DeviceContext(resident.button, DeviceType.CALL_BUTTON, HEARTBEAT_S)),
        usual_rise=rise, usual_day_s=day_s)


class _Lane:
    """One detector and the stores (books) its decisions go to."""

    def __init__(self, det: ResidentDetector, habits: bool, books: dict[str, AlertBook]
                 ) -> None:
        self.det = det
        self.habits = habits
        self.books = books
        self.kept: list[Decision] | None = None

    def take(self, decisions: list[Decision]) -> None:
        if not decisions:
            return
        for book in self.books.values():
            book.apply(decisions)
        if self.kept is not None:
            self.kept.extend(decisions)


def run_resident(resident: Resident, spec: CohortSpec, variants: Sequence[Variant], *,
                 keep_decisions: bool = False,
                 daily: dict[str, DailyFactory] | None = None,
                 resolve_after_s: float = RESOLVE_AFTER_S,
                 registered: Mapping[str, str] | None = None) -> ResidentRun:
    """One resident over the whole period, every variant at once. `resolve_after_s`: the
    modelled care worker (inf: nobody resolves); `registered`: the devices' registered ids
    (an end-to-end sample), which their simulated batteries are seeded on."""
    tz = ZoneInfo(spec.timezone)
    lanes: dict[tuple[str, bool], _Lane] = {}
    for v in variants:
        lane = lanes.get(v.detector_key)
        if lane is None:
            det = ResidentDetector(resident_context(resident, spec, v.settings))
            lane = lanes[v.detector_key] = _Lane(det, v.habits, {})
        lane.books[v.name] = AlertBook(v.settings, dedup=v.dedup,
                                       resolve_after_s=resolve_after_s)
    first = lanes[variants[0].detector_key]
    if keep_decisions:
        first.kept = []
    dailies = {k: f(resident, spec) for k, f in (daily if daily is not None
                                                  else DAILY_DETECTORS).items()}
    learner = HabitLearner(tz, spec.telemetry_period_s, first.books[variants[0].name].alerts)
    home = DirectHome(resident, SITE, spec.seed, spec.start, registered)
    habits: list[tuple[date, time | None, float | None]] = []
    learned: tuple[time | None, float | None] = (None, None)
    tick = timedelta(seconds=TICK_S)
    next_tick = spec.start + tick
    next_refresh = spec.start + timedelta(days=1)  # the start is local noon
    n = 0
    lane_list = list(lanes.values())
    bed = resident.bed

    def feed(records: list[Record]) -> None:
        for rec in records:
            if type(rec) is TelemetryRecord and rec.device_id == bed:
                learner.reading(rec.time, rec.occupied)
        for lane in lane_list:
            lane.take(lane.det.on_records(records))
        for d in dailies.values():
            d.records(records)

    feed(home.connect_all(spec.start))
    # Records are fed in batches, up to the next tick or refresh: each detector gets them in
    # the same order and at the same point between its ticks as one by one, for less work.
    pending: list[Record] = []
    due = min(next_tick, next_refresh)
    for a in home_actions(resident, spec, CohortScript(resident)):
        t = a.t
        if t >= due:
            if pending:
                n += len(pending)
                feed(pending)
                pending = []
            while next_tick <= t:
                for lane in lane_list:
                    lane.take(lane.det.tick(next_tick))
                next_tick += tick
            if t >= next_refresh:
                today = next_refresh.astimezone(tz).date()
                usual = learner.usual(today)
                habits.append((today, *usual))
                if usual != learned:
                    learned = usual
                    for lane in lane_list:
                        if lane.habits:
                            lane.det.update_context(resident_context(
                                resident, spec, lane.det.context.settings, *usual))
                next_refresh += timedelta(days=1)
            due = min(next_tick, next_refresh)
        pending += home.apply(a)
    if pending:
        n += len(pending)
        feed(pending)
    while next_tick <= spec.end:
        for lane in lane_list:
            lane.take(lane.det.tick(next_tick))
        next_tick += tick
    alerts: dict[str, list[AlertRow]] = {}
    run_repeats: dict[str, list[AlertRow]] = {}
    outcomes: dict[str, dict[str, int]] = {}
    for lane in lane_list:
        for name, book in lane.books.items():
            alerts[name] = [AlertRow(a.resident_id, a.type, a.opened_at, a.severity, a.count)
                            for a in book.alerts]
            run_repeats[name] = [AlertRow(a.resident_id, a.type, t, a.severity)
                                 for a in book.alerts for t in a.repeats]
            outcomes[name] = dict(book.outcomes)
    rollups: dict[str, RollupRows] = {}
    for typ, d in dailies.items():
        out = d.finish()
        alerts.setdefault(variants[0].name, []).extend(r for r in out.alerts if r.type == typ)
        if out.rollups is not None:
            rollups[typ] = out.rollups
    kept = [decision_key(d) for d in first.kept or []]
    return ResidentRun(resident.resident_id, alerts, outcomes, habits, n, kept, run_repeats,
                       rollups)


def decision_key(d: Decision) -> tuple[str, str, datetime]:
    """A decision as compared between runs: what, of which alert type, at what event time."""
    if isinstance(d, AlertTrigger):
        return ("trigger", d.type.value, d.at)
    if isinstance(d, AlertClear):
        return ("clear", d.type.value, d.at)
    return ("cancel", "sos", d.at)


def _job(args: tuple[CohortSpec, int, Sequence[Variant], bool]) -> ResidentRun:
    spec, rid, variants, keep = args
    return run_resident(build_resident(spec, rid), spec, variants, keep_decisions=keep)


def default_jobs() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)


def run_cohort(spec: CohortSpec, variants: Sequence[Variant], *, jobs: int | None = None,
               progress: bool = True, resident_ids: Iterable[int] | None = None,
               ablation_ids: Iterable[int] | None = None) -> list[ResidentRun]:
    """Every resident (or `resident_ids`), in a process pool of `jobs` workers (1: in this
    process), with a progress bar on a terminal. Residents in `ablation_ids` (default: all)
    run every variant, the others only the first (the platform as configured)."""
    ids = list(resident_ids) if resident_ids is not None else list(
        range(1, spec.residents + 1))
    ablate = set(ids if ablation_ids is None else ablation_ids)
    # the longest tasks first, so the pool does not end waiting on one of them
    tasks = sorted(((spec, rid, tuple(variants) if rid in ablate else (variants[0],), False)
                    for rid in ids), key=lambda t: -len(t[2]))
    jobs = jobs or default_jobs()
    bar = tqdm(total=len(tasks), unit="resident", desc="eval",
               disable=not (progress and sys.stderr.isatty()), dynamic_ncols=True)
    out: list[ResidentRun] = []
    with bar:
        if jobs <= 1 or len(tasks) <= 1:
            for task in tasks:
                out.append(_job(task))
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(jobs, len(tasks))) as pool:
                for run in pool.imap_unordered(_job, tasks):
                    out.append(run)
                    bar.update(1)
    return sorted(out, key=lambda r: r.resident_id)
