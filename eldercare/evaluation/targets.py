"""Issue 15's targets on the default cohort, each judged pass or miss and by how much."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.model import AlertType
from eldercare.evaluation.labels import ROUTINE_CHANGE
from eldercare.evaluation.scoring import Scores, TypeScore

BUTTON_TYPES = (AlertType.SOS.value, AlertType.FALL.value)
DAY_S = 86_400.0
ROUTINE_DELAY_DAYS = 3.0  # issue 15: routine changes' median delay from onset, at most


@dataclass(frozen=True, slots=True)
class Judged:
    """One target: what was measured against what was wanted."""

    name: str
    target: str
    value: float | None  # None: not measured
    goal: float
    higher_is_better: bool
    unit: str = ""
    note: str = ""

    @property
    def status(self) -> str:
        """pass, miss, or not wired / nothing to measure."""
        if self.value is None:
            return self.note or "not measured"
        return "pass" if self.passed else "miss"

    @property
    def passed(self) -> bool:
        """True when the value meets the goal."""
        if self.value is None:
            return False
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal

    @property
    def by(self) -> float | None:
        """How far from the goal: positive is a margin, negative a shortfall (units of the
        value)."""
        if self.value is None:
            return None
        return self.value - self.goal if self.higher_is_better else self.goal - self.value


def _rule_total(scores: Scores) -> TypeScore:
    out = TypeScore("rules")
    for t, s in scores.by_type.items():
        if t in BUTTON_TYPES or t == ROUTINE_CHANGE:
            continue
        out.owed += s.owed
        out.detected += s.detected
    return out


def judge(scores: Scores, routine_wired: bool, why_not: str = "not wired") -> list[Judged]:
    """Every target of the issue, in its order; `why_not`: the routine-change rows' status
    when it was not judged."""
    out: list[Judged] = []
    for t in BUTTON_TYPES:
        s = scores.by_type.get(t)
        out.append(Judged(f"{t} recall", "100 %", s.recall if s else None, 1.0, True, "ratio",
                          note="no events"))
    rules = _rule_total(scores)
    out.append(Judged("rule alerts: recall of sustained events", ">= 99 %", rules.recall, 0.99,
                      True, "ratio", note="no events"))
    total = scores.total
    out.append(Judged("alerts on sub-persistence spikes", "0",
                      float(total.spikes_failed) if total.spikes else None, 0.0, False,
                      "count", note="no spikes"))
    out.append(Judged("all alerts: false alerts per resident-day", "<= 0.2",
                      scores.false_per_resident_day(), 0.2, False, "rate"))
    routine = scores.by_type.get(ROUTINE_CHANGE)
    wired = "" if routine_wired else why_not
    rv = routine.recall if routine and routine_wired else None
    md = (routine.delay_median_s / DAY_S if routine and routine_wired
          and routine.delay_median_s is not None else None)
    fr = (30 * scores.false_per_resident_day(ROUTINE_CHANGE) if routine_wired else None)
    out.append(Judged("routine change: recall", ">= 80 %", rv, 0.8, True, "ratio",
                      note=wired or "no events"))
    out.append(Judged("routine change: median delay from onset",
                      f"<= {ROUTINE_DELAY_DAYS:g} days", md, ROUTINE_DELAY_DAYS, False,
                      "days", note=wired or "nothing detected"))
    out.append(Judged("routine change: false alerts per 30 resident-days", "<= 1", fr, 1.0,
                      False, "rate", note=wired or "not measured"))
    return out
