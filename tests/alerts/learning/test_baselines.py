"""Personal baselines: robust median and MAD over the trailing 28 days, without alert days or
poorly covered days, population defaults until 14 days count."""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

import pytest

from alerts.learning.baselines import (
    MAD_SCALE,
    Baseline,
    baseline,
    baselines,
    personal_times,
    robust_stats,
)
from alerts.learning.features import BY_NAME, DayFeatures
from tests.alerts.learning.support import DAY0, day, series

EXITS = BY_NAME["night_exits"]


def exits(values: list[float], alerted: frozenset[int] = frozenset(),
          coverage: dict[int, float] | None = None) -> list[DayFeatures]:
    cov = coverage or {}
    return [DayFeatures(1, day(i), {"night_exits": v}, cov.get(i, 1.0), i in alerted)
            for i, v in enumerate(values)]


def test_robust_stats_ignore_missing_values_and_resist_an_outlier():
    med, mad, n = robust_stats([1, 2, 2, 3, float("nan"), 40])
    assert (med, mad, n) == (2.0, 1.0, 5)
    assert robust_stats([])[2] == 0


def test_the_baseline_is_the_median_and_mad_of_the_28_days_before():
    values = [100.0] * 10 + [float(i % 3) for i in range(28)]  # the first 10: outside
    b = baseline(exits(values), EXITS, day(38))
    assert b.personal and b.n_days == 28
    assert (b.median, b.mad) == (1.0, 1.0)
    assert (b.window_start, b.window_end, b.computed_for) == (day(10), day(37), day(38))


def test_days_with_alerts_and_poor_coverage_are_left_out():
    values = [1.0] * 28
    values[5] = values[6] = 9.0
    values[7] = 8.0
    b = baseline(exits(values, alerted=frozenset({5, 6}), coverage={7: 0.4}), EXITS, day(28))
    assert b.n_days == 25 and (b.median, b.mad) == (1.0, 0.0)


def test_population_defaults_until_fourteen_days_count():
    short = baseline(exits([3.0] * 13), EXITS, day(13))
    assert not short.personal and short.n_days == 13
    assert (short.median, short.mad) == (EXITS.default_median, EXITS.default_mad)
    enough = baseline(exits([3.0] * 14), EXITS, day(14))
    assert enough.personal and enough.median == 3.0
    # 14 days of data but one raised an alert: still the population's
    assert not baseline(exits([3.0] * 14, alerted=frozenset({0})), EXITS, day(14)).personal


def test_z_uses_scaled_mad_with_a_floor_for_very_regular_people():
    regular = Baseline("night_exits", 1.0, 0.0, 28, True, DAY0, DAY0, DAY0)
    assert regular.sigma() == pytest.approx(MAD_SCALE * EXITS.mad_floor)
    assert regular.z(2.0) == pytest.approx(1 / (MAD_SCALE * 0.5))
    # a count's spread is at most Poisson's, the square root of its median: with a usual
    # night of 1 exit and a MAD of 1 (an extra exit one night in two), 3 exits are 2 spreads
    coarse = replace(regular, mad=1.0)
    assert coarse.sigma() == pytest.approx(1.0)
    assert coarse.z(3.0) == pytest.approx(2.0)
    assert replace(regular, median=4.0, mad=2.0).sigma() == pytest.approx(2.0)
    # ...and no narrower than the floor, nor wider than the scaled MAD
    assert replace(regular, median=0.0, mad=1.0).sigma() == pytest.approx(
        MAD_SCALE * EXITS.mad_floor)
    assert replace(regular, median=9.0, mad=1.0).sigma() == pytest.approx(MAD_SCALE)


def test_a_measured_feature_keeps_its_scaled_mad():
    hr = Baseline("resting_hr", 60.0, 2.0, 28, True, DAY0, DAY0, DAY0)
    assert hr.sigma() == pytest.approx(MAD_SCALE * 2.0)


def test_baselines_of_every_person_feature():
    days = series(40)
    got = baselines(days, day(40))
    assert set(got) >= {"bedtime", "rise_time", "resting_hr", "night_exits"}
    assert all(b.personal and b.n_days == 28 for b in got.values())
    assert got["rise_time"].median == pytest.approx(360, abs=15)


def test_personal_times_for_the_rule_engine():
    days = series(30, shift=lambda i, name: {"rise_time": 60.0, "bedtime": -60.0}.get(name, 0))
    times = personal_times(baselines(days, day(30)))
    assert times.usual_rise is not None and abs(
        (times.usual_rise.hour * 60 + times.usual_rise.minute) - 420) <= 15
    assert times.usual_bedtime is not None and times.usual_bedtime.hour in (21, 20)
    away = baselines(days, day(30))["away_s"]
    assert times.usual_day_s == pytest.approx(away.median + 2 * away.sigma())
    # before 14 days: nothing learned, the rule engine keeps its population defaults
    early = personal_times(baselines(days[:10], day(10)))
    assert early.usual_rise is None and early.usual_bedtime is None and early.usual_day_s is None


def test_a_bedtime_past_midnight_reads_as_a_clock_time():
    b = Baseline("bedtime", 12 * 60 + 30, 10.0, 20, True, DAY0, DAY0 + timedelta(1), DAY0)
    assert personal_times({"bedtime": b}).usual_bedtime == time(0, 30)
