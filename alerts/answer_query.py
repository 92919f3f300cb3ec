"""Reading a site's alerts for the answer-time statistics (alerts.answer_times): the periods in
the SITE's time zone (a day is a local calendar day, a week runs Monday to Monday) and the
current shift from the duty roster (kernel.roster), and the alerts raised in a period.

"The shift in numbers" is the current shift: from the earliest start among the roster shifts
of the site that are running now (so a night team 20:00-08:00 counts from 20:00 even for a
colleague who came at 22:00). A site without a running rostered shift shows the last 12
hours. Period boundaries are computed here, in pure functions, so tests pick any instant,
DST change included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.rows import dict_row

from alerts.answer_times import AlertTimes, Period
from kernel.db import AsyncConn
from kernel.roster import Shift

logger = logging.getLogger(__name__)

FALLBACK_WINDOW = timedelta(hours=12)
# Shifts last at most 48 h (migration 0013); look that far back for a running one.
SHIFT_LOOKBACK = timedelta(hours=48)


class Window(StrEnum):
    """Which period a set of numbers covers."""

    SHIFT = "shift"
    LAST_12H = "last_12h"
    DAY = "day"
    WEEK = "week"


@dataclass(frozen=True, slots=True)
class SitePeriod:
    """A period of a site, with the zone its local times are read in."""

    window: Window
    period: Period
    timezone: str

    def local(self, instant: datetime) -> str:
        """An instant as the site's wall clock, `YYYY-MM-DD HH:MM` (24-hour)."""
        return instant.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M")


def _midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def day_period(day: date, zone: str) -> SitePeriod:
    """The site's local calendar day (23 or 25 hours on a DST change)."""
    return SitePeriod(Window.DAY, Period(_midnight(day, zone),
                                         _midnight(day + timedelta(days=1), zone)), zone)


def week_period(day: date, zone: str) -> SitePeriod:
    """The site's local week (Monday 00:00 to the next Monday 00:00) holding `day`."""
    monday = day - timedelta(days=day.weekday())
    return SitePeriod(Window.WEEK, Period(_midnight(monday, zone),
                                          _midnight(monday + timedelta(days=7), zone)), zone)


def local_today(now: datetime, zone: str) -> date:
    """The site's calendar date at `now`."""
    return now.astimezone(ZoneInfo(zone)).date()


def shift_period(shifts: Iterable[Shift], now: datetime, zone: str) -> SitePeriod:
    """The current shift up to `now` (the earliest start among the running shifts), or the
    last 12 hours when no rostered shift is running. The end is just after `now`, so an alert
    raised at `now` is in it."""
    starts = [start for s in shifts for start, end in [s.instants()] if start <= now < end]
    end = now + timedelta(microseconds=1)
    if not starts:
        return SitePeriod(Window.LAST_12H, Period(now - FALLBACK_WINDOW, end), zone)
    return SitePeriod(Window.SHIFT, Period(min(starts), end), zone)


async def _rows(conn: AsyncConn, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def site_timezone(conn: AsyncConn, site: str) -> str | None:
    """The site's zone, None when there is no such site."""
    cur = await conn.execute("SELECT timezone FROM sites WHERE id = %s", (site,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


_RUNNING_SHIFTS = """
SELECT sh.user_id, sh.starts_local, sh.ends_local
FROM shifts sh JOIN users u ON u.id = sh.user_id
WHERE sh.site_id = %(site)s AND u.active
  AND sh.starts_local < %(hi)s AND sh.ends_local > %(lo)s
"""


async def current_shift(conn: AsyncConn, site: str, zone: str, now: datetime) -> SitePeriod:
    """The site's current shift (shift_period over its roster around `now`)."""
    naive = now.astimezone(UTC).replace(tzinfo=None)
    # Local times are within ±14 h of UTC; widen the window by a day each way.
    rows = await _rows(conn, _RUNNING_SHIFTS, {
        "site": site, "lo": naive - timedelta(days=1),
        "hi": naive + timedelta(days=1) + SHIFT_LOOKBACK})
    shifts = [Shift(int(r["user_id"]), r["starts_local"], r["ends_local"], zone) for r in rows]
    return shift_period(shifts, now, zone)


# `escalated`: a step after the first notification (step 0) was carried out, not skipped.
_ALERT_TIMES = """
SELECT a.id, a.type, a.severity, a.status, a.created_at, a.acknowledged_at, a.acknowledged_by,
       a.resolved_at, a.resolved_by,
       EXISTS (SELECT 1 FROM alert_escalations e
               WHERE e.alert_id = a.id AND e.step > 0 AND e.done_at IS NOT NULL
                 AND NOT e.skipped) AS escalated
FROM alerts a
WHERE a.site_id = %(site)s AND a.created_at >= %(start)s AND a.created_at < %(end)s
ORDER BY a.created_at, a.id
"""


async def alert_times(conn: AsyncConn, site: str, period: Period) -> list[AlertTimes]:
    """The site's alerts raised (stored) in `period`."""
    rows = await _rows(conn, _ALERT_TIMES, {"site": site, "start": period.start,
                                            "end": period.end})
    return [AlertTimes(alert_id=int(r["id"]), type=r["type"], severity=r["severity"],
                       status=r["status"], raised_at=r["created_at"],
                       acknowledged_at=r["acknowledged_at"],
                       acknowledged_by=r["acknowledged_by"], resolved_at=r["resolved_at"],
                       resolved_by=r["resolved_by"], escalated=bool(r["escalated"]))
            for r in rows]


async def open_now(conn: AsyncConn, site: str) -> int:
    """The site's open or acknowledged alerts, whenever raised."""
    cur = await conn.execute("SELECT count(*) FROM alerts WHERE site_id = %s "
                             "AND status IN ('open', 'acknowledged')", (site,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class Worker:
    """Who a worker's figures belong to."""

    user_id: int
    username: str
    full_name: str | None


async def workers(conn: AsyncConn, ids: Iterable[int]) -> dict[int, Worker]:
    """The named users (any role: a duty officer may acknowledge too)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await _rows(conn, "SELECT id, username, full_name FROM users WHERE id = ANY(%(ids)s)",
                       {"ids": wanted})
    return {int(r["id"]): Worker(int(r["id"]), r["username"], r["full_name"]) for r in rows}
