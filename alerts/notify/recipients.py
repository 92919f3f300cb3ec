"""Who is told: an audience becomes (user, channel) pairs, filtered by each channel's minimum
severity; quiet hours decide when a message may go out (critical ignores them)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from psycopg.rows import dict_row

from alerts.model import Audience, ChannelKind, Severity
from alerts.notify.messages import AlertInfo, zone
from kernel.db import Conn
from kernel.roster import on_duty_at_site

logger = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One row of notification_channels: where a person or a site's group can be reached."""

    id: int
    kind: ChannelKind
    target: str
    secret: dict[str, Any] = field(default_factory=dict)
    user_id: int | None = None
    site_id: str | None = None
    min_severity: Severity = Severity.INFO
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str = "UTC"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ChannelSpec:
        """Build from a dict row of notification_channels."""
        return cls(id=int(row["id"]), kind=ChannelKind(row["kind"]), target=str(row["target"]),
                   secret=dict(row.get("secret") or {}), user_id=row.get("user_id"),
                   site_id=row.get("site_id"), min_severity=Severity(row["min_severity"]),
                   quiet_start=row.get("quiet_start"), quiet_end=row.get("quiet_end"),
                   timezone=str(row.get("timezone") or "UTC"))


@dataclass(frozen=True, slots=True)
class Recipient:
    """A channel to notify (and the person it belongs to; None for a site group)."""

    user_id: int | None
    channel: ChannelSpec


@dataclass(frozen=True, slots=True)
class Resolution:
    """Recipients of an audience; `unreachable` lists people with no active channel."""

    recipients: list[Recipient]
    unreachable: list[int]
    below_min_severity: int


# Pure rules -------------------------------------------------------------------------------

def passes_min_severity(severity: Severity, min_severity: Severity) -> bool:
    """True when an alert of `severity` is loud enough for a channel's minimum."""
    return severity.rank >= min_severity.rank


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """True when local time `local` falls in [start, end); the window may cross midnight;
    start == end means no quiet hours."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_until(now: datetime, start: time, end: time, tz_name: str) -> datetime | None:
    """End of the quiet hours `now` falls in (UTC), or None when `now` is not in them."""
    tz = zone(tz_name)
    local = now.astimezone(tz)
    if not in_quiet_hours(local.time(), start, end):
        return None
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def deliver_at(channel: ChannelSpec, severity: Severity, now: datetime) -> datetime:
    """When a message of `severity` may go out on `channel`: now, or the end of its quiet
    hours (critical messages ignore quiet hours)."""
    if (severity is Severity.CRITICAL or channel.quiet_start is None
            or channel.quiet_end is None):
        return now
    return quiet_until(now, channel.quiet_start, channel.quiet_end, channel.timezone) or now


# Audience resolution ----------------------------------------------------------------------

_USERS_SQL: dict[Audience, str] = {
    Audience.ASSIGNED: "SELECT id FROM users WHERE id = %(assigned)s AND active",
    # On duty by the roster or an override (kernel.roster) when the notification is queued.
    Audience.SITE_WORKERS: "SELECT id FROM users WHERE role = 'care_worker' AND "
                           "site_id = %(site)s AND id = ANY(%(on_duty)s) AND active ORDER BY id",
    Audience.DUTY_OFFICERS: "SELECT id FROM users WHERE role = 'duty_officer' AND "
                            "site_id = %(site)s AND active ORDER BY id",
    Audience.FAMILY: "SELECT u.id FROM users u JOIN family_contacts f ON f.user_id = u.id "
                     "WHERE f.resident_id = %(resident)s AND u.active ORDER BY u.id",
}

_CHANNEL_COLUMNS = ("id, kind, target, secret, user_id, site_id, min_severity, quiet_start, "
                    "quiet_end, timezone")


def audience_users(conn: Conn, audience: Audience, info: AlertInfo,
                   at: datetime | None = None) -> list[int]:
    """Active people in an audience (empty for SITE_GROUP, which has no people); who is on
    duty is decided at `at` (default: when the alert opened)."""
    sql = _USERS_SQL.get(audience)
    if sql is None or (audience is Audience.ASSIGNED and info.assigned_to is None):
        return []
    on_duty: list[int] = []
    if audience is Audience.SITE_WORKERS:
        on_duty = sorted(on_duty_at_site(conn, info.site_id, at or info.opened_at,
                                         roles=("care_worker",)))
    params = {"assigned": info.assigned_to, "site": info.site_id, "resident": info.resident_id,
              "on_duty": on_duty}
    return [int(row[0]) for row in conn.execute(sql, params).fetchall()]


def user_channels(conn: Conn, user_ids: list[int]) -> list[ChannelSpec]:
    """Active channels of these people."""
    if not user_ids:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels "
                           "WHERE user_id = ANY(%s) AND active ORDER BY user_id, id",
                           (user_ids,)).fetchall()
    return [ChannelSpec.from_row(r) for r in rows]


def site_channels(conn: Conn, site_id: str | None = None) -> list[ChannelSpec]:
    """Active group channels of one site (or of every site)."""
    where = "site_id = %s" if site_id is not None else "site_id IS NOT NULL"
    params = (site_id,) if site_id is not None else ()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels "
                           f"WHERE {where} AND active ORDER BY site_id, id", params).fetchall()
    return [ChannelSpec.from_row(r) for r in rows]


def resolve_recipients(conn: Conn, audience: Audience, info: AlertInfo,
                       at: datetime | None = None) -> Resolution:
    """The channels to notify about `info` for `audience` (people on duty at `at`), after the
    minimum-severity filter."""
    if audience is Audience.SITE_GROUP:
        users: list[int] = []
        channels = site_channels(conn, info.site_id)
    else:
        users = audience_users(conn, audience, info, at)
        channels = user_channels(conn, users)
    reached = {c.user_id for c in channels}
    unreachable = [u for u in users if u not in reached]
    loud_enough = [c for c in channels if passes_min_severity(info.severity, c.min_severity)]
    recipients = [Recipient(c.user_id, c) for c in loud_enough]
    return Resolution(recipients, unreachable, len(channels) - len(loud_enough))
