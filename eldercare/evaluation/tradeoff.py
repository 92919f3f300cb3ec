"""What a shorter routine-change delay would take, measured on the evaluation's own days
(issue 15: "if a target is missed, the report says by how much and why").

The learning job's decisions are the evaluation's result; this module only explains them.
It reads the daily features the job judged (the same `resident_daily` rows, as DayFeatures)
and asks two questions the report answers with numbers instead of words:

* **When did each gradual change first show?** For each owed change, the first judged day
  on which the changed feature itself stood at the alert level - `limit` robust spreads of
  the resident's own baseline in its worrying direction - on that one day. A detector that
  waits for the change to be that far out cannot alert sooner (it is judged when the job
  judges that feature: a night's the same morning, the rest at midnight); one that alerts
  before it must alert on days no further out than ordinary ones, which is where false
  alerts come from.
* **What would a lower threshold cost?** The same days judged again with the same pure
  `judge_days` the job calls, threshold by threshold, scored with the evaluation's own
  scorer: recall, median delay and false alerts per 30 resident-days. Each judgement counts
  as its own alert here (the job merges a resident's changes into one open alert), so the
  default threshold's row can differ a little from the job's figures above it.

Pure over its inputs: no database, no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from alerts.learning.features import BY_NAME, PERSON_FEATURES, DayFeatures
from alerts.learning.routine import DayResult, RoutineSettings, judge_days
from eldercare.evaluation.labels import ROUTINE_CHANGE, ROUTINE_WINDOW, Label, Truth
from eldercare.evaluation.routine_db import decided_at
from eldercare.evaluation.rows import AlertRow
from eldercare.evaluation.scoring import score

DAY_S = 86400.0
THRESHOLDS = (1.75, 1.5, 1.25)  # judged after the default, on the same days


@dataclass(frozen=True, slots=True)
class SweepRow:
    """Routine change judged with one threshold."""

    threshold: float
    owed: int
    detected: int
    delay_median_days: float | None
    false_alerts: int
    false_per_30: float  # false alerts per 30 resident-days


@dataclass(frozen=True, slots=True)
class DelayLimits:
    """Why the delay is what it is: the changes' ramps, when they first showed, and what a
    lower threshold costs."""

    limit: float  # the alert level judged against (threshold / sensitivity)
    owed: int
    ramp_median_days: float | None
    shown: int  # owed changes whose feature reached the level on some day in the window
    shown_median_days: float | None  # from onset to when the job judged that first day
    rows: list[SweepRow]
    never_shown: frozenset[Label] = frozenset()  # owed changes that never stood out

    def cheapest_within(self, days: float) -> SweepRow | None:
        """The highest threshold whose median delay is at most `days` (None: none is)."""
        ok = [r for r in self.rows
              if r.delay_median_days is not None and r.delay_median_days <= days]
        return max(ok, key=lambda r: r.threshold) if ok else None


def judge_all(days: Mapping[int, Sequence[DayFeatures]], judged: Sequence[date],
              settings: RoutineSettings) -> dict[int, list[DayResult]]:
    """Every resident's days judged in order from a fresh state, as the job does."""
    return {rid: judge_days(recs, judged, {}, settings, PERSON_FEATURES)
            for rid, recs in days.items()}


def alert_rows(results: Mapping[int, Sequence[DayResult]], tz: str) -> list[AlertRow]:
    """Each change judged, as a scored routine-change alert naming its feature, at the
    job's time for it (a night's features the same morning, the rest at midnight)."""
    return [AlertRow(rid, ROUTINE_CHANGE, decided_at(BY_NAME[c.feature], r.day, tz),
                     "warning", detail=c.feature)
            for rid, rs in results.items() for r in rs for c in r.changes]


def first_shown(label: Label, recs: Sequence[DayFeatures], results: Sequence[DayResult],
                limit: float, tz: str) -> float | None:
    """Days from the label's onset to the end of the first judged day on which its feature
    stood at `limit` spreads of the personal baseline in a worrying direction (None: never
    within the window)."""
    feature = BY_NAME[label.detail]
    values = {d.day: d.value(feature.name) for d in recs}
    for r in results:
        at = decided_at(feature, r.day, tz)
        if at <= label.onset or at > label.window_end:
            continue
        base, value = r.baselines[label.detail], values.get(r.day)
        if value is None or not base.personal:
            continue
        z = base.z(value)
        if any((z if side == "up" else -z) >= limit for side in feature.directions):
            return (at - label.onset).total_seconds() / DAY_S
    return None


def analyse(days: Mapping[int, Sequence[DayFeatures]], judged: Sequence[date],
            settings: RoutineSettings, tz: str, truth: Truth, resident_days: int,
            residents: int, thresholds: Iterable[float] = THRESHOLDS) -> DelayLimits:
    """The delay's limits on these days (see the module docstring): the first row is
    `settings`' own threshold, then each lower one of `thresholds`."""
    owed = [lab for lab in truth.labels
            if lab.alert_type == ROUTINE_CHANGE and lab.expected and lab.detail in BY_NAME]
    rows: list[SweepRow] = []
    default: dict[int, list[DayResult]] = {}
    for thr in [settings.threshold, *sorted((t for t in thresholds if t < settings.threshold),
                                            reverse=True)]:
        s = replace(settings, threshold=thr)
        results = judge_all(days, judged, s)
        if not default:
            default = results
        ts = score(alert_rows(results, tz), truth.labels, truth.excusals, resident_days,
                   residents, [ROUTINE_CHANGE]).by_type[ROUTINE_CHANGE]
        delay = ts.delay_median_s
        rows.append(SweepRow(thr, ts.owed, ts.detected,
                             None if delay is None else delay / DAY_S, ts.false_alerts,
                             ts.false_alerts / resident_days * 30 if resident_days else 0.0))
    first = {lab: first_shown(lab, days.get(lab.resident_id, ()),
                              default.get(lab.resident_id, ()), settings.limit, tz)
             for lab in owed}
    shown = [d for d in first.values() if d is not None]
    ramps = [(lab.window_end - ROUTINE_WINDOW - lab.onset).total_seconds() / DAY_S
             for lab in owed]
    return DelayLimits(settings.limit, len(owed), _median(ramps), len(shown),
                       _median(shown), rows,
                       frozenset(lab for lab, d in first.items() if d is None))


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None
