"""One evaluation: build the cohort, run it (every variant), label it, score it."""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dtime
from typing import TYPE_CHECKING

from alerts.config import AlertSettings
from alerts.model import AlertType
from eldercare.evaluation import runner
from eldercare.evaluation.daily import DAILY_DETECTORS
from eldercare.evaluation.labels import ROUTINE_CHANGE, Truth, cohort_truth, habits_from
from eldercare.evaluation.runner import ResidentRun, run_cohort
from eldercare.evaluation.scoring import Scores, score
from eldercare.evaluation.variants import Variant, variants
from simulators.cohort import Cohort, CohortSpec, build_cohort

if TYPE_CHECKING:  # the sample needs the pipeline; the direct run does not import it
    from eldercare.evaluation.e2e import SampleResult

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

    @property
    def records(self) -> int:
        """Records the detectors received (each variant got all of them)."""
        return sum(r.records for r in self.runs)


def evaluate(spec: CohortSpec, *, jobs: int | None = None, progress: bool = True,
             settings: AlertSettings | None = None, ablation_residents: int | None = None,
             clock: Callable[[], float] = time.monotonic) -> Evaluation:
    """Run and score `spec`'s cohort; the ablation runs on residents 1..`ablation_residents`
    (default: all); `clock` (monotonic seconds) only measures the run."""
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
    habits = habits_from((r.resident_id, r.habits) for r in runs)
    truth = cohort_truth(cohort.residents, spec, base, habits)
    default = vs[0].name
    scores = {default: score((a for r in runs for a in r.alerts.get(default, [])),
                             truth.labels, truth.excusals, spec.resident_days, spec.residents,
                             ALERT_TYPES,
                             (a for r in runs for a in r.repeats.get(default, [])))}
    labels = [lab for lab in truth.labels if lab.resident_id <= k]
    ablation = {v.name: score((a for r in runs if r.resident_id <= k
                               for a in r.alerts.get(v.name, [])),
                              labels, truth.excusals, k * spec.days, k, ALERT_TYPES,
                              (a for r in runs if r.resident_id <= k
                               for a in r.repeats.get(v.name, [])))
                for v in vs}
    wall = clock() - t0
    cpu = _cpu_s() - cpu0
    logger.info("evaluated %d residents x %d days in %.0f s (%d workers)", spec.residents,
                spec.days, wall, jobs)
    return Evaluation(cohort, vs, runs, truth, scores, wall, jobs,
                      routine_wired=ROUTINE_CHANGE in DAILY_DETECTORS,
                      ablation=ablation, ablation_residents=k, cpu_s=cpu)


def _cpu_s() -> float:
    """Processor time used so far by this process and its finished children (workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def learned_on(run: ResidentRun, day: date) -> tuple[dtime | None, float | None]:
    """The habits a run had learned by `day` (for tests and the report)."""
    return habits_from([(run.resident_id, run.habits)])(run.resident_id, day)
