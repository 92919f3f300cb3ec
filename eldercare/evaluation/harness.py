"""One evaluation: build the cohort, run it (every variant), label it, score it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dtime

from alerts.config import AlertSettings
from alerts.model import AlertType
from eldercare.evaluation import runner
from eldercare.evaluation.labels import ROUTINE_CHANGE, Truth, cohort_truth, habits_from
from eldercare.evaluation.runner import ResidentRun, run_cohort
from eldercare.evaluation.scoring import Scores, score
from eldercare.evaluation.variants import Variant, variants
from simulators.cohort import Cohort, CohortSpec, build_cohort

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
    e2e: object | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Records the detectors received (each variant got all of them)."""
        return sum(r.records for r in self.runs)


def evaluate(spec: CohortSpec, *, jobs: int | None = None, progress: bool = True,
             settings: AlertSettings | None = None,
             clock: Callable[[], float] = time.monotonic) -> Evaluation:
    """Run and score `spec`'s cohort; `clock` (monotonic seconds) only measures the run."""
    base = settings or AlertSettings()
    vs = variants(base)
    t0 = clock()
    cohort = build_cohort(spec)
    jobs = jobs or runner.default_jobs()
    runs = run_cohort(spec, vs, jobs=jobs, progress=progress)
    habits = habits_from((r.resident_id, r.habits) for r in runs)
    truth = cohort_truth(cohort.residents, spec, base, habits)
    scores = {v.name: score((a for r in runs for a in r.alerts.get(v.name, [])),
                            truth.labels, truth.excusals, spec.resident_days, spec.residents,
                            ALERT_TYPES)
              for v in vs}
    wall = clock() - t0
    logger.info("evaluated %d residents x %d days in %.0f s (%d workers)", spec.residents,
                spec.days, wall, jobs)
    return Evaluation(cohort, vs, runs, truth, scores, wall, jobs,
                      routine_wired=ROUTINE_CHANGE in runner.DAILY_DETECTORS)


def learned_on(run: ResidentRun, day: date) -> tuple[dtime | None, float | None]:
    """The habits a run had learned by `day` (for tests and the report)."""
    return habits_from([(run.resident_id, run.habits)])(run.resident_id, day)
