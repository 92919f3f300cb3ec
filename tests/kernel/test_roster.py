"""The roster's pure function: who is on duty at an instant, across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kernel.roster import DutyOverride, Shift, on_duty, override_of

SH = "Asia/Shanghai"
NY = "America/New_York"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_day_shift_covers_its_local_hours_only():
    shift = Shift(1, datetime(2026, 3, 2, 8), datetime(2026, 3, 2, 20), SH)  # UTC+8
    assert on_duty([shift], {}, at(2026, 3, 2, 0, 0)) == {1}  # 08:00 local: start included
    assert on_duty([shift], {}, at(2026, 3, 1, 23, 59)) == set()
    assert on_duty([shift], {}, at(2026, 3, 2, 12, 0)) == set()  # 20:00 local: end excluded


def test_night_shift_across_midnight():
    night = Shift(2, datetime(2026, 3, 2, 22), datetime(2026, 3, 3, 6), SH)
    assert on_duty([night], {}, at(2026, 3, 2, 15, 30)) == {2}  # 23:30 local
    assert on_duty([night], {}, at(2026, 3, 2, 16, 0)) == {2}  # midnight local
    assert on_duty([night], {}, at(2026, 3, 2, 21, 59)) == {2}  # 05:59 local, next day
    assert on_duty([night], {}, at(2026, 3, 2, 22, 0)) == set()


def test_spring_forward_night_is_an_hour_shorter():
    # New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT.
    night = Shift(3, datetime(2026, 3, 7, 22), datetime(2026, 3, 8, 6), NY)
    start, end = night.instants()
    assert start == at(2026, 3, 8, 3, 0)  # 22:00 EST
    assert end == at(2026, 3, 8, 10, 0)  # 06:00 EDT
    assert (end - start).total_seconds() == 7 * 3600
    assert on_duty([night], {}, at(2026, 3, 8, 9, 59)) == {3}
    assert on_duty([night], {}, at(2026, 3, 8, 10, 0)) == set()


def test_fall_back_night_is_an_hour_longer():
    # New York, 1 November 2026: 02:00 EDT falls back to 01:00 EST.
    night = Shift(4, datetime(2026, 10, 31, 22), datetime(2026, 11, 1, 6), NY)
    start, end = night.instants()
    assert start == at(2026, 11, 1, 2, 0)  # 22:00 EDT
    assert end == at(2026, 11, 1, 11, 0)  # 06:00 EST
    assert (end - start).total_seconds() == 9 * 3600
    # 01:30 local happens twice; the shift covers both.
    assert on_duty([night], {}, at(2026, 11, 1, 5, 30)) == {4}
    assert on_duty([night], {}, at(2026, 11, 1, 6, 30)) == {4}


def test_shift_ending_in_the_repeated_hour_takes_the_longer_reading():
    shift = Shift(5, datetime(2026, 10, 31, 20), datetime(2026, 11, 1, 1, 30), NY)
    assert shift.instants()[1] == at(2026, 11, 1, 6, 30)  # second 01:30 (EST)


def test_overrides_force_on_and_off():
    shift = Shift(1, datetime(2026, 3, 2, 8), datetime(2026, 3, 2, 20), SH)
    noon = at(2026, 3, 2, 4, 0)
    assert on_duty([shift], {1: DutyOverride.OFF}, noon) == set()
    assert on_duty([shift], {1: None, 2: DutyOverride.ON}, noon) == {1, 2}
    assert on_duty([], {2: DutyOverride.ON, 3: None}, at(2026, 1, 1)) == {2}


def test_instant_in_any_zone_is_the_same_instant():
    shift = Shift(1, datetime(2026, 3, 2, 8), datetime(2026, 3, 2, 20), SH)
    from zoneinfo import ZoneInfo
    same = at(2026, 3, 2, 1, 0).astimezone(ZoneInfo(NY))
    assert on_duty([shift], {}, same) == {1}


def test_naive_instant_is_refused():
    with pytest.raises(ValueError, match="aware"):
        on_duty([], {}, datetime(2026, 3, 2, 8))


def test_override_of_the_stored_columns():
    assert override_of(False, False) is None
    assert override_of(True, False) is DutyOverride.ON
    assert override_of(False, True) is DutyOverride.OFF
