"""Personal baselines: what is usual for one resident, feature by feature (issue 15).

A baseline is the robust centre and spread of a feature over the resident's trailing
`WINDOW_DAYS` local days before the day being judged: the median and the median absolute
deviation (MAD), which one odd night cannot drag the way a mean and standard deviation are
dragged. Days that do not describe the person's usual are left out: days on which an alert
about the person was opened (a fall, a night in hospital, ...) and days the mat covered
poorly (a failing sensor is not a changed person; see features.MIN_COVERAGE).

Until `MIN_PERSONAL_DAYS` days count, the feature's population default stands in
(features.py documents where the defaults come from); `personal` says which it is. Pure
functions over DayFeatures: no clock, no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta

import numpy as np
import numpy.typing as npt

from alerts.learning.features import (
    BY_NAME,
    PERSON_FEATURES,
    DayFeatures,
    Feature,
    clock_minutes,
)

WINDOW_DAYS = 28
MIN_PERSONAL_DAYS = 14
MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of a normal distribution


@dataclass(frozen=True, slots=True)
class Baseline:
    """One resident's usual value of one feature, as of `computed_for`."""

    feature: str
    median: float
    mad: float  # raw (unscaled) median absolute deviation
    n_days: int  # days that counted
    personal: bool  # False: the population default
    window_start: date
    window_end: date  # inclusive
    computed_for: date  # the day judged against it (never inside the window)

    def sigma(self) -> float:
        """The robust spread: MAD scaled to a standard deviation, never below the feature's
        floor (so a very regular person does not alarm on noise).

        A count (night exits) is a small whole number, so its MAD moves in whole steps: one
        night in two with an extra exit already makes it 1, a spread of 1.48 exits, and going
        from 1 to 3 exits a night (clear nocturia) never reaches two spreads. A count's
        natural spread is Poisson's, the square root of its mean; the spread of a count is
        therefore at most the square root of its median (and never below the floor)."""
        feature = BY_NAME[self.feature]
        spread = MAD_SCALE * max(self.mad, feature.mad_floor)
        if feature.unit != "count":
            return spread
        return min(spread, max(math.sqrt(max(self.median, 0.0)), MAD_SCALE * feature.mad_floor))

    def z(self, value: float) -> float:
        """How many robust spreads `value` lies above (positive) or below the median."""
        return (value - self.median) / self.sigma()


def robust_stats(values: npt.ArrayLike) -> tuple[float, float, int]:
    """(median, MAD, count) of the finite values; (nan, nan, 0) when there are none."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    med = float(np.median(arr))
    return med, float(np.median(np.abs(arr - med))), int(arr.size)


def window_of(day: date, window_days: int = WINDOW_DAYS, gap_days: int = 0
              ) -> tuple[date, date]:
    """The trailing window judged against on `day`: the `window_days` days ending
    `gap_days` before the day before it (a gap keeps a change that is building up from
    being absorbed into the usual it is judged against)."""
    end = day - timedelta(days=1 + gap_days)
    return end - timedelta(days=window_days - 1), end


def counted_values(days: Iterable[DayFeatures], feature: Feature, start: date,
                   end: date) -> npt.NDArray[np.float64]:
    """The feature's values of the days in [start, end] that count: measured, well covered
    (person features), and no alert about the person opened that day."""
    vals = [v for d in days if start <= d.day <= end and not d.alerted
            and (v := d.value(feature.name)) is not None]
    return np.asarray(vals, dtype=np.float64)


def population_baseline(feature: Feature, day: date, n_days: int = 0,
                        window_days: int = WINDOW_DAYS, gap_days: int = 0) -> Baseline:
    """The feature's population default, as the baseline of `day`."""
    start, end = window_of(day, window_days, gap_days)
    return Baseline(feature.name, feature.default_median, feature.default_mad, n_days, False,
                    start, end, day)


def baseline(days: Iterable[DayFeatures], feature: Feature, day: date,
             window_days: int = WINDOW_DAYS, min_days: int = MIN_PERSONAL_DAYS,
             gap_days: int = 0) -> Baseline:
    """The resident's baseline of `feature` for judging `day` (days: that resident's)."""
    start, end = window_of(day, window_days, gap_days)
    med, mad, n = robust_stats(counted_values(days, feature, start, end))
    if n < min_days:
        return population_baseline(feature, day, n, window_days, gap_days)
    return Baseline(feature.name, med, mad, n, True, start, end, day)


def baselines(days: Sequence[DayFeatures], day: date,
              features: Iterable[Feature] = PERSON_FEATURES, window_days: int = WINDOW_DAYS,
              min_days: int = MIN_PERSONAL_DAYS, gap_days: int = 0) -> dict[str, Baseline]:
    """Baselines of every feature for judging `day`, keyed by feature name."""
    start, end = window_of(day, window_days, gap_days)
    inside = [d for d in days if start <= d.day <= end]  # one pass, not one per feature
    return {f.name: baseline(inside, f, day, window_days, min_days, gap_days) for f in features}


# --- the rule engine's personal parameters -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class PersonalTimes:
    """What the rule engine may learn from a resident's baselines; None: not learned yet (the
    rule engine then uses its population defaults, AlertSettings.usual_rise_default ...)."""

    usual_rise: time | None  # not_up, and where the night ends for bed_exit_no_return
    usual_bedtime: time | None  # where the night starts
    usual_day_s: float | None  # long_absence: a long ordinary day away from bed


def _clock(b: Baseline | None) -> time | None:
    if b is None or not b.personal:
        return None
    m = round(clock_minutes(BY_NAME[b.feature], b.median)) % (24 * 60)
    return time(m // 60, m % 60)


def usual_span_s(rise: Baseline | None, bed: Baseline | None) -> float | None:
    """The usual span of a day from getting up to going to bed, plus two robust spreads of
    the bedtime (the day's end is what varies for the rule: it counts from the rise), in
    seconds; None unless both baselines are personal. A nap does not shorten it."""
    if rise is None or bed is None or not (rise.personal and bed.personal):
        return None
    bed_after_midnight = bed.median + 12 * 60  # bedtime counts from noon the day before
    return 60.0 * (bed_after_midnight - rise.median + 2 * bed.sigma())


def personal_times(by_feature: Mapping[str, Baseline]) -> PersonalTimes:
    """The usual rise time and bedtime (medians) and the usual long day away from bed.

    The usual day is the longer of (a) the median longest empty-bed stretch plus two robust
    spreads and (b) the usual span from rise to bedtime plus two spreads of the bedtime:
    the rule fires on a day longer than usual, not on every day longer than the median.
    (b) keeps issue 6's promise that an ordinary day without the usual nap is not an alarm:
    for someone who naps on most days the longest stretch is half a day, while a day
    without the nap runs from rise to bedtime. Only personal baselines count; None where
    nothing is learned yet (the caller falls back)."""
    away = by_feature.get("away_s")
    rise, bed = by_feature.get("rise_time"), by_feature.get("bedtime")
    spans = [s for s in (
        (away.median + 2 * away.sigma()) if away is not None and away.personal else None,
        usual_span_s(rise, bed)) if s is not None]
    return PersonalTimes(_clock(rise), _clock(bed), max(spans) if spans else None)
