"""Small direct-SQL seeding for notification tests (a site, a resident, people, channels)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from psycopg.types.json import Jsonb

from kernel import db

OPENED = datetime(2026, 3, 5, 14, 3, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    """Ids of a seeded site."""

    url: str
    site: str
    resident: int


def seed_world(url: str, site: str = "north", tz: str = "Europe/London") -> World:
    """A site in `tz` with one resident."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (id, name, timezone) VALUES (%s, %s, %s)",
                     (site, site.title(), tz))
        row = conn.execute("INSERT INTO residents (site_id, full_name, address) VALUES "
                           "(%s, 'Margaret Smith', '12 Elm Road') RETURNING id",
                           (site,)).fetchone()
    assert row is not None
    return World(url, site, int(str(row[0])))


def sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def add_user(w: World, username: str, role: str, *, on_duty: bool = False,
             active: bool = True, family_of: int | None = None) -> int:
    site = None if role in ("family", "admin") else w.site
    rows = sql(w.url, "INSERT INTO users (username, password_hash, role, site_id, on_duty, "
                      "active) VALUES (%s, 'x', %s, %s, %s, %s) RETURNING id",
               username, role, site, on_duty, active)
    user_id = int(rows[0][0])
    if family_of is not None:
        sql(w.url, "INSERT INTO family_contacts (user_id, resident_id) VALUES (%s, %s)",
            user_id, family_of)
    return user_id


def add_channel(w: World, kind: str, target: str, *, user_id: int | None = None,
                site: bool = False, secret: dict[str, Any] | None = None,
                min_severity: str = "info", quiet: tuple[time, time] | None = None,
                tz: str = "UTC", active: bool = True) -> int:
    rows = sql(w.url, "INSERT INTO notification_channels (user_id, site_id, kind, target, "
                      "secret, min_severity, quiet_start, quiet_end, timezone, active) "
                      "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
               user_id, w.site if site else None, kind, target, Jsonb(secret or {}),
               min_severity, quiet[0] if quiet else None, quiet[1] if quiet else None, tz,
               active)
    return int(rows[0][0])


def add_alert(w: World, *, type_: str = "sos", severity: str = "critical",
              assigned_to: int | None = None, opened_at: datetime = OPENED) -> int:
    rows = sql(w.url, "INSERT INTO alerts (resident_id, site_id, type, severity, opened_at, "
                      "last_seen, assigned_to) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                      "RETURNING id",
               w.resident, w.site, type_, severity, opened_at, opened_at, assigned_to)
    return int(rows[0][0])


def finish_alert(w: World, alert_id: int, *, cancelled: bool = False,
                 at: datetime | None = None) -> None:
    at = at or datetime.now(UTC)
    if cancelled:
        sql(w.url, "UPDATE alerts SET status = 'cancelled', cancelled_at = %s, "
                   "outcome = 'cancelled_by_resident' WHERE id = %s", at, alert_id)
    else:
        sql(w.url, "UPDATE alerts SET status = 'resolved', resolved_at = %s, "
                   "outcome = 'assisted_at_home' WHERE id = %s", at, alert_id)


def outbox(url: str, where: str = "true", *params: Any) -> list[dict[str, Any]]:
    """Outbox rows as dicts, oldest first."""
    cols = ("id", "alert_id", "kind", "channel", "channel_id", "user_id", "target", "payload",
            "status", "attempts", "not_before", "last_error", "sent_at", "dedup_key",
            "idempotency_key")
    rows = sql(url, f"SELECT {', '.join(cols)} FROM notification_outbox WHERE {where} "
                    "ORDER BY id", *params)
    return [dict(zip(cols, r, strict=True)) for r in rows]
