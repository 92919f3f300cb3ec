"""Last night and the usual: which night is "last", medians, comparisons (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.family.nights import (
    Night,
    compare,
    last_night,
    night_window,
    previous,
    usual,
    week,
)

BERLIN = ZoneInfo("Europe/Berlin")


def test_last_night_is_the_one_that_ended_at_seven_local_time():
    before = datetime(2026, 3, 4, 5, 59, tzinfo=UTC)  # 06:59 Berlin: still night
    after = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)    # 07:00 Berlin: over
    assert last_night(before, BERLIN) == date(2026, 3, 3)
    assert last_night(after, BERLIN) == date(2026, 3, 4)


def test_the_night_window_is_the_rollups_22_to_07():
    start, end = night_window(date(2026, 3, 4), BERLIN)
    assert start == datetime(2026, 3, 3, 21, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 4, 6, 0, tzinfo=UTC)


def test_usual_is_a_median_only_with_enough_nights():
    assert usual([60, 58, None, 62, 70, 59]) == 60
    assert usual([60, 58, None, 62]) is None


def test_compare_within_tolerance_is_about_usual():
    assert compare(62, 60, 5).text == "about usual"
    assert compare(70, 60, 5).kind == "higher"
    assert compare(50, 60, 5).text == "lower than usual"
    assert compare(60, None, 5).text == "not enough nights yet"
    assert compare(None, 60, 5).kind == "unknown"


def test_previous_takes_the_fourteen_nights_before_and_week_fills_gaps():
    day = date(2026, 3, 20)
    nights = [Night(day - timedelta(days=i), resting_hr=50 + i) for i in range(0, 20)]
    before = previous(nights, day)
    assert [n.day for n in before] == [day - timedelta(days=i) for i in range(14, 0, -1)]
    seven = week([Night(day, 3600), Night(day - timedelta(days=2), 7200)], day)
    assert [n.day for n in seven] == [day - timedelta(days=i) for i in range(6, -1, -1)]
    assert [n.time_in_bed_s for n in seven] == [None, None, None, None, 7200, None, 3600]
