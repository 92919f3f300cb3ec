"""One evaluation: build the cohort, run it (every variant), label it, score it."""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.config import AlertSettings
from alerts.learning.job import routine_settings
from alerts.model import AlertType
from eldercare.evaluation import runner, tradeoff
from eldercare.evaluation.daily import DAILY_DETECTORS
from eldercare.evaluation.labels import ROUTINE_CHANGE, Truth, cohort_truth, habits_from
from eldercare.evaluation.rows import AlertRow
from eldercare.evaluation.runner import ResidentRun, run_cohort
from eldercare.evaluation.scoring import Scores, score
from eldercare.evaluation.tradeoff import DelayLimits
from eldercare.evaluation.variants import Variant, variants
from simulators.cohort import Cohort, CohortSpec, build_cohort

if TYPE_CHECKING:  # the sample needs the pipeline; the direct run does not import it
    from eldercare.evaluation.e2e import SampleResult
    from eldercare.evaluation.routine_db import RoutineResult

logger = logging.getLogger(__name__)

ALERT_TYPES = (*(a.value for a in AlertType), ROUTINE_CHANGE)


@dataclass
class Evaluation:
    """Everything the report shows."""

    cohort: Cohort
    variants: list[Variant]
    runs: list[ResidentRun]
    truth: Truth
    scores: dict[str, Scores]
    wall_s: float
    jobs: int
    routine_wired: bool
    ablation: dict[str, Scores] = field(default_factory=dict)
    ablation_residents: int = 0
    cpu_s: float = 0.0  # processor time of this process and its workers
    e2e: SampleResult | None = None
    notes: list[str] = field(default_factory=list)
    routine: RoutineResult | None = None  # the database phase (routine change)
    routine_skipped: str = ""  # why routine change was not judged (e.g. --no-routine)
    delay_limits: DelayLimits | None = None  # why routine change's delay is what it is

    @property
    def records(self) -> int:
        """Records the detectors received (each variant got all of them)."""
        return sum(r.records for r in self.runs)


def evaluate(spec: CohortSpec, *, jobs: int | None = None, progress: bool = True,
             settings: AlertSettings | None = None, ablation_residents: int | None = None,
             clock: Callable[[], float] = time.monotonic, routine: bool = True,
             database_url: str | None = None, save_routine: Path | None = None
             ) -> Evaluation:
    """Run and score `spec`'s cohort; the ablation runs on residents 1..`ablation_residents`
    (default: all); `clock` (monotonic seconds) only measures the run. `routine`: judge
    routine change in a database (`database_url`, empty and migrated; default a throwaway
    embedded one), see eldercare.evaluation.routine_db. `save_routine`: also save the
    database phase's input there (routine_db.save_inputs) to re-judge it later."""
    base = settings or AlertSettings()
    vs = variants(base)
    t0 = clock()
    cpu0 = _cpu_s()
    cohort = build_cohort(spec)
    jobs = jobs or runner.default_jobs()
    k = spec.residents if ablation_residents is None else min(ablation_residents,
                                                               spec.residents)
    ablated = range(1, k + 1)
    runs = run_cohort(spec, vs, jobs=jobs, progress=progress, ablation_ids=ablated)
    default = vs[0].name
    if save_routine is not None:
        from eldercare.evaluation import routine_db

        routine_db.save_inputs(save_routine, spec, runs, default, k)
    judged = (_judge_routine(spec, runs, base, ablated, default, database_url, clock)
              if routine and ROUTINE_CHANGE in DAILY_DETECTORS else None)
    if judged is not None:
        _add_routine(runs, vs, judged, ablated)
    habits = habits_from((r.resident_id, r.habits) for r in runs)
    truth = cohort_truth(cohort.residents, spec, base, habits)
    scores = {default: score((a for r in runs for a in r.alerts.get(default, [])),
                             truth.labels, truth.excusals, spec.resident_days, spec.residents,
                             ALERT_TYPES,
                             (a for r in runs for a in r.repeats.get(default, [])))}
    labels = [lab for lab in truth.labels if lab.resident_id <= k]
    names = [v.name for v in vs] + ([POPULATION] if judged is not None else [])
    ablation = {name: score((a for r in runs if r.resident_id <= k
                             for a in r.alerts.get(name, [])),
                            labels, truth.excusals, k * spec.days, k, ALERT_TYPES,
                            (a for r in runs if r.resident_id <= k
                             for a in r.repeats.get(name, [])))
                for name in names}
    limits = _delay_limits(spec, judged, base, truth) if judged is not None else None
    wall = clock() - t0
    cpu = _cpu_s() - cpu0
    logger.info("evaluated %d residents x %d days in %.0f s (%d workers)", spec.residents,
                spec.days, wall, jobs)
    return Evaluation(cohort, vs, runs, truth, scores, wall, jobs,
                      routine_wired=judged is not None,
                      ablation=ablation, ablation_residents=k, cpu_s=cpu, routine=judged,
                      routine_skipped="--no-routine" if not routine else "",
                      delay_limits=limits)


POPULATION = "no_personal_baselines"  # the ablation row of routine change


def _judge_routine(spec: CohortSpec, runs: list[ResidentRun], settings: AlertSettings,
                   ablated: Iterable[int], default: str, database_url: str | None,
                   clock: Callable[[], float]) -> RoutineResult:
    """Routine change through the services' SQL and learning job (routine_db)."""
    from eldercare.evaluation import routine_db

    rows = [r.rollups[ROUTINE_CHANGE] for r in runs if ROUTINE_CHANGE in r.rollups]
    rule_alerts = [a for r in runs for a in r.alerts.get(default, [])]
    for r in runs:  # hundreds of megabytes of COPY text: not kept past the load
        r.rollups.pop(ROUTINE_CHANGE, None)
    if database_url is not None:
        return routine_db.judge_cohort(database_url, spec, rows, rule_alerts, settings,
                                       ablated, clock=clock)
    t0 = clock()
    with routine_db.throwaway_database() as url:
        started = clock() - t0
        result = routine_db.judge_cohort(url, spec, rows, rule_alerts, settings, ablated,
                                         clock=clock)
    result.seconds = {"database start": started, **result.seconds}
    return result


def _delay_limits(spec: CohortSpec, judged: RoutineResult, settings: AlertSettings,
                  truth: Truth) -> DelayLimits | None:
    """The routine-change delay's limits on the days the job judged (tradeoff)."""
    from eldercare.evaluation import routine_db

    if not judged.days:
        return None
    return tradeoff.analyse(judged.days, routine_db.judged_days(spec),
                            routine_settings(settings), spec.timezone, truth,
                            spec.resident_days, spec.residents)


def _add_routine(runs: list[ResidentRun], vs: list[Variant], judged: RoutineResult,
                 ablated: Iterable[int]) -> None:
    """Routine-change alerts join every variant's alerts (the rule mechanisms the ablation
    switches off do not touch it); the population-defaults ablation is its own row."""
    alerts: dict[int, list[AlertRow]] = {}
    repeats: dict[int, list[AlertRow]] = {}
    for a in judged.alerts():
        alerts.setdefault(a.resident_id, []).append(a)
    for a in judged.repeats():
        repeats.setdefault(a.resident_id, []).append(a)
    population: dict[int, list[AlertRow]] = {}
    for j in judged.ablation:
        population.setdefault(j.resident_id, []).append(j.row())
    keep = set(ablated)
    for r in runs:
        mine, again = alerts.get(r.resident_id, []), repeats.get(r.resident_id, [])
        for v in vs:
            if v.name in r.alerts:
                r.alerts[v.name] = r.alerts[v.name] + mine
                r.repeats[v.name] = r.repeats.get(v.name, []) + again
        if r.resident_id in keep:
            base = [a for a in r.alerts[vs[0].name] if a.type != ROUTINE_CHANGE]
            r.alerts[POPULATION] = base + population.get(r.resident_id, [])
            r.repeats[POPULATION] = [a for a in r.repeats.get(vs[0].name, [])
                                     if a.type != ROUTINE_CHANGE]


def _cpu_s() -> float:
    """Processor time used so far by this process and its finished children (workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def learned_on(run: ResidentRun, day: date) -> tuple[dtime | None, float | None]:
    """The habits a run had learned by `day` (for tests and the report)."""
    return habits_from([(run.resident_id, run.habits)])(run.resident_id, day)
