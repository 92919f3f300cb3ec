"""The routine-change delay's limits (eldercare.evaluation.tradeoff): when a gradual change
first stood at the alert level, and what lower thresholds cost, on hand-made days."""

from __future__ import annotations

from datetime import date, timedelta
from random import Random

from alerts.learning.features import DayFeatures
from alerts.learning.job import day_end
from alerts.learning.routine import RoutineSettings
from eldercare.evaluation.labels import ROUTINE_CHANGE, ROUTINE_WINDOW, Label, Truth
from eldercare.evaluation.tradeoff import analyse
from ingest.rollups import night_final_at

TZ = "Asia/Shanghai"
FIRST = date(2026, 3, 1)
DAYS = 60
ONSET_DAY = 35  # resident 1's resting heart rate climbs 1/min a night from here, 8 nights
JUDGED = [FIRST + timedelta(days=i) for i in range(DAYS)]


def days(rid: int, ramp: bool, noise: float) -> list[DayFeatures]:
    """A resident's days: a steady resting heart rate (55/min, seeded noise), and with
    `ramp` a rise of 1/min a night for 8 nights from ONSET_DAY."""
    rng = Random(rid)
    out = []
    for i, day in enumerate(JUDGED):
        rise = min(max(i - ONSET_DAY + 1, 0), 8) if ramp else 0
        hr = 55.0 + rise + rng.gauss(0.0, noise)
        out.append(DayFeatures(rid, day, {"resting_hr": hr}, 1.0))
    return out


def label() -> Label:
    """Resident 1's change: onset at the start of its first raised night's day."""
    onset = day_end(JUDGED[ONSET_DAY - 1], TZ)
    return Label(1, ROUTINE_CHANGE, "drift_resting_hr", onset, onset,
                 onset + timedelta(days=8) + ROUTINE_WINDOW, detail="resting_hr")


def test_the_first_shown_day_and_the_thresholds() -> None:
    cohort = {1: days(1, True, 0.0), 2: days(2, False, 1.5)}
    lim = analyse(cohort, JUDGED, RoutineSettings(), TZ, Truth([label()], []),
                  2 * DAYS, 2, thresholds=(1.5, 1.0, 3.0))
    assert [r.threshold for r in lim.rows] == [2.0, 1.5, 1.0]  # the default first
    assert lim.limit == 2.0 and lim.owed == 1 and lim.shown == 1
    # The floor makes the spread 1.48/min: +3/min (the third night) is two spreads out,
    # judged when the job judges a night: that morning at 12:30 local.
    third = night_final_at(JUDGED[ONSET_DAY + 2], TZ)
    assert lim.shown_median_days == (third - label().onset).total_seconds() / 86400
    assert lim.ramp_median_days == 8.0 and lim.never_shown == frozenset()
    assert all(r.owed == 1 and r.detected == 1 for r in lim.rows)
    delays = [r.delay_median_days for r in lim.rows]
    assert all(d is not None for d in delays)
    assert delays[0] >= lim.shown_median_days  # type: ignore[operator]
    assert delays == sorted(delays, reverse=True)  # type: ignore[type-var]
    falses = [r.false_alerts for r in lim.rows]
    assert falses == sorted(falses) and falses[-1] > falses[0]  # noise alerts when lower
    assert lim.rows[-1].false_per_30 == falses[-1] / (2 * DAYS) * 30
    best = lim.cheapest_within(3.0)
    assert best is None or best.delay_median_days is not None


def test_a_change_that_never_stands_out_is_not_shown() -> None:
    lim = analyse({1: days(1, False, 0.2)}, JUDGED, RoutineSettings(), TZ,
                  Truth([label()], []), DAYS, 1, thresholds=())
    assert lim.shown == 0 and lim.shown_median_days is None
    assert lim.never_shown == {label()}
    assert [r.detected for r in lim.rows] == [0]
    assert lim.cheapest_within(3.0) is None
