"""The SQL behind the family view: linked residents, the bed's latest facts, the nights
(TimescaleDB rollups: resident_daily and vitals_1m) and the resident's recent alerts.

Every query takes `now` as a parameter (never the database's now()), so the view can be
computed for an injected clock and readings timed after it are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.rows import class_row, dict_row

from alerts.model import AlertType
from alerts.notify.messages import zone
from dashboard.alert_rows import ALERT_COLUMNS, ALERT_FROM
from dashboard.deps import AsyncConn
from dashboard.family.nights import Night, night_window
from dashboard.family.state import BedFacts
from dashboard.models import AlertHistoryOut, AlertOut

RUN_LOOKBACK = timedelta(hours=48)  # how far back "in bed since" looks for the last change


@dataclass(frozen=True, slots=True)
class Linked:
    """A resident linked to the family member, with the zone their times are told in."""

    id: int
    full_name: str
    site_id: str
    tz: ZoneInfo
    relation: str


_LINKED = """
SELECT r.id, r.full_name, r.site_id, COALESCE(r.timezone, s.timezone) AS tz, f.relation
FROM family_contacts f
JOIN residents r ON r.id = f.resident_id
JOIN sites s ON s.id = r.site_id
WHERE f.user_id = %(user)s AND (%(resident)s::bigint IS NULL OR r.id = %(resident)s)
ORDER BY r.full_name, r.id
"""


async def linked(conn: AsyncConn, user_id: int, resident_id: int | None = None) -> list[Linked]:
    """The residents linked to `user_id` in family_contacts (one, when `resident_id`)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LINKED, {"user": user_id, "resident": resident_id})
        rows = await cur.fetchall()
    return [Linked(int(r["id"]), r["full_name"], r["site_id"], zone(r["tz"]), r["relation"])
            for r in rows]


_BED = """
SELECT d.id, d.online, d.last_seen,
       (SELECT min(a.opened_at) FROM alerts a
        WHERE a.resident_id = d.resident_id AND a.type = %(offline)s
          AND a.status IN ('open', 'acknowledged')
          AND (a.device_id IS NULL OR a.device_id = d.id)) AS offline_alert_at
FROM devices d
WHERE d.resident_id = %(resident)s AND d.type = 'bed_sensor' AND d.active
ORDER BY d.created_at DESC LIMIT 1
"""

_LATEST = """
SELECT time, occupied FROM bed_telemetry
WHERE resident_id = %(resident)s AND time <= %(now)s AND time > %(since)s
ORDER BY time DESC LIMIT 1
"""

# Since when the present state holds. Mats report occupancy undebounced (docs/storage.md), so
# a few seconds of false absence must not restart "in bed since": history comes from the
# per-minute rollup (a minute is "in bed" when occupied for at least half of it, as in the
# daily summaries), and only the readings after the rollup's last minute (normally the last
# 2-3 minutes) come from bed_telemetry. With no change in the lookback, the run began at the
# first reading in it (or earlier: "since" is then the lookback's start, 48 h).
_RUN_SINCE = """
WITH m AS (
    SELECT max(bucket) + interval '1 minute' AS rolled_until,
           max(bucket) FILTER (WHERE (occupied_fraction >= 0.5) <> %(occupied)s) AS other
    FROM vitals_1m
    WHERE resident_id = %(resident)s AND bucket > %(since)s AND bucket <= %(latest)s
), raw_other AS (
    SELECT max(time) AS at FROM bed_telemetry, m
    WHERE resident_id = %(resident)s AND time <= %(latest)s
      AND time >= COALESCE(m.rolled_until, %(since)s) AND occupied <> %(occupied)s
)
SELECT CASE
    WHEN raw_other.at IS NOT NULL THEN
        (SELECT min(time) FROM bed_telemetry
         WHERE resident_id = %(resident)s AND time > raw_other.at AND time <= %(latest)s)
    WHEN m.other IS NOT NULL THEN m.other + interval '1 minute'
    ELSE (SELECT min(time) FROM bed_telemetry
          WHERE resident_id = %(resident)s AND time > %(since)s AND time <= %(latest)s)
END
FROM m, raw_other
"""


async def bed_facts(conn: AsyncConn, resident_id: int, now: datetime) -> BedFacts:
    """The latest facts about the resident's bed, as of `now`."""
    params: dict[str, Any] = {"resident": resident_id, "now": now,
                              "since": now - RUN_LOOKBACK, "offline": AlertType.DEVICE_OFFLINE}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_BED, params)
        device = await cur.fetchone()
        if device is None:
            return BedFacts(has_sensor=False)
        await cur.execute(_LATEST, params)
        latest = await cur.fetchone()
    facts = {"has_sensor": True, "online": device["online"], "last_seen": device["last_seen"],
             "offline_alert_at": device["offline_alert_at"]}
    if latest is None:
        return BedFacts(**facts)
    cur2 = await conn.execute(_RUN_SINCE, {**params, "latest": latest["time"],
                                           "occupied": latest["occupied"]})
    run = await cur2.fetchone()
    return BedFacts(**facts, latest=latest["time"], occupied=latest["occupied"],
                    run_since=run[0] if run else None)


_DAILY = """
SELECT day, night_exits, resting_hr, median_rr FROM resident_daily
WHERE resident_id = %(resident)s AND day >= %(first)s AND day <= %(last)s
"""

# Seconds in bed per night window (from the per-minute rollup); NULL for a night with no data.
_IN_BED = """
SELECT n.day, round(sum(v.occupied_fraction * 60))::int AS in_bed
FROM unnest(%(days)s::date[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
     AS n(day, s, e)
LEFT JOIN vitals_1m v ON v.resident_id = %(resident)s AND v.bucket >= n.s AND v.bucket < n.e
GROUP BY n.day
"""

_ALERT_DAYS = """
SELECT (opened_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n FROM alerts
WHERE resident_id = %(resident)s AND opened_at >= %(start)s AND opened_at < %(end)s
GROUP BY 1
"""


async def nights(conn: AsyncConn, resident_id: int, tz: ZoneInfo, first: date, last: date,
                 in_bed_from: date) -> list[Night]:
    """The nights `first`..`last` (resident_daily), with time in bed for the nights from
    `in_bed_from` and the number of alerts per local day."""
    params: dict[str, Any] = {"resident": resident_id, "first": first, "last": last,
                              "tz": tz.key}
    in_bed_days = [in_bed_from + timedelta(days=i) for i in range((last - in_bed_from).days + 1)]
    windows = [night_window(d, tz) for d in in_bed_days]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_DAILY, params)
        daily = {r["day"]: r for r in await cur.fetchall()}
        await cur.execute(_IN_BED, {**params, "days": in_bed_days,
                                    "starts": [w[0] for w in windows],
                                    "ends": [w[1] for w in windows]})
        in_bed = {r["day"]: r["in_bed"] for r in await cur.fetchall()}
        start = night_window(in_bed_from, tz)[1].replace(hour=0, minute=0)
        end = night_window(last + timedelta(days=1), tz)[1].replace(hour=0, minute=0)
        await cur.execute(_ALERT_DAYS, {**params, "start": start, "end": end})
        alerts = {r["day"]: int(r["n"]) for r in await cur.fetchall()}
    days = sorted(set(daily) | set(in_bed))
    return [_night(d, daily.get(d), in_bed.get(d), alerts.get(d, 0)) for d in days]


def _night(day: date, daily: dict[str, Any] | None, in_bed: int | None, alerts: int) -> Night:
    if daily is None:
        return Night(day, in_bed, alerts=alerts)
    return Night(day, in_bed, daily["night_exits"], daily["resting_hr"], daily["median_rr"],
                 alerts)


_RECENT = f"""
SELECT {ALERT_COLUMNS}
{ALERT_FROM}
WHERE a.resident_id = %(resident)s AND a.created_at <= %(now)s
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""

_HISTORY = """
SELECT alert_id, id, at, action, actor_id, actor, status, note
FROM alert_history WHERE alert_id = ANY(%(ids)s) ORDER BY at, id
"""

# What this user was sent about each alert: told (a first notice or escalation) and the
# all-clear (or 'cancelled') that alerts.notify.outbox queues once the alert has finished.
# `finished_at`: when the alert ended (resolved or cancelled), the time the all-clear names.
_TOLD = """
SELECT o.alert_id,
       bool_or(o.kind IN ('alert', 'escalation')) AS told,
       min(o.created_at) FILTER (WHERE o.kind IN ('all_clear', 'cancelled')) AS all_clear_at,
       min(COALESCE(a.resolved_at, a.cancelled_at)) AS finished_at
FROM notification_outbox o JOIN alerts a ON a.id = o.alert_id
WHERE o.user_id = %(user)s AND o.alert_id = ANY(%(ids)s)
GROUP BY o.alert_id
"""


@dataclass(frozen=True, slots=True)
class StaffAlert:
    """An alert with its whole staff record, before the family view filters it."""

    alert: AlertOut
    history: list[AlertHistoryOut]
    told: bool
    all_clear_at: datetime | None  # when this user's all-clear was queued, if it was
    finished_at: datetime | None = None  # when the alert was resolved or cancelled


async def recent_alerts(conn: AsyncConn, resident_id: int, user_id: int, now: datetime,
                        limit: int) -> list[StaffAlert]:
    """The resident's newest alerts with their history and what `user_id` was sent."""
    async with conn.cursor(row_factory=class_row(AlertOut)) as cur:
        await cur.execute(_RECENT, {"resident": resident_id, "now": now, "limit": limit})
        alerts = await cur.fetchall()
    ids = [a.id for a in alerts]
    by_alert: dict[int, list[AlertHistoryOut]] = {i: [] for i in ids}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_HISTORY, {"ids": ids})
        for row in await cur.fetchall():
            by_alert[int(row.pop("alert_id"))].append(AlertHistoryOut(**row))
        await cur.execute(_TOLD, {"user": user_id, "ids": ids})
        told = {int(r["alert_id"]): r for r in await cur.fetchall()}
    return [StaffAlert(a, by_alert[a.id], bool(told.get(a.id, {}).get("told")),
                       told.get(a.id, {}).get("all_clear_at"),
                       told.get(a.id, {}).get("finished_at")) for a in alerts]
