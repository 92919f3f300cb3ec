"""The periods of the answer-time numbers, in the site's zone (pure: no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alerts.answer_query import Window, day_period, shift_period, week_period
from kernel.roster import Shift

ZONE = "Asia/Shanghai"  # UTC+8, no DST


def shift(user: int, start: str, end: str) -> Shift:
    return Shift(user, datetime.fromisoformat(start), datetime.fromisoformat(end), ZONE)


def test_the_current_shift_starts_with_the_earliest_running_shift() -> None:
    now = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # 03:00 on 3 March in Shanghai
    roster = [shift(1, "2026-03-02 20:00", "2026-03-03 08:00"),
              shift(2, "2026-03-02 22:00", "2026-03-03 06:00"),
              shift(3, "2026-03-02 08:00", "2026-03-02 20:00"),   # over
              shift(4, "2026-03-03 08:00", "2026-03-03 20:00")]   # not yet
    where = shift_period(roster, now, ZONE)
    assert where.window is Window.SHIFT
    assert where.local(where.period.start) == "2026-03-02 20:00"
    assert where.period.holds(now)


def test_without_a_running_shift_the_last_12_hours() -> None:
    now = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
    where = shift_period([shift(1, "2026-03-01 08:00", "2026-03-01 20:00")], now, ZONE)
    assert where.window is Window.LAST_12H
    assert where.period.start == now - timedelta(hours=12)
    assert where.period.holds(now)


def test_day_and_week_are_the_sites_calendar() -> None:
    day = day_period(date(2026, 3, 4), ZONE)
    assert (day.local(day.period.start), day.local(day.period.end)) == (
        "2026-03-04 00:00", "2026-03-05 00:00")
    assert day.period.start == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    week = week_period(date(2026, 3, 4), ZONE)  # a Wednesday
    assert (week.local(week.period.start), week.local(week.period.end)) == (
        "2026-03-02 00:00", "2026-03-09 00:00")
