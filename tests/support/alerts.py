"""Builders for the alert store, lifecycle and escalation tests: triggers, fast users, and
short queries on the alert tables of the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.config import AlertSettings
from alerts.model import AlertCancel, AlertTrigger
from alerts.store import StoredAlert, store_cancel, store_trigger
from gateway.records import EventRecord
from gateway.schema import EventType
from kernel import db
from tests.support.homes import BUTTON, Home

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)   # event (device) time
NOW = datetime(2026, 3, 1, 3, 0, 2, tzinfo=UTC)  # wall clock when stored
SETTINGS = AlertSettings()


def add_user(url: str, username: str, role: str = "care_worker", site: str | None = "north",
             on_duty: bool = True, active: bool = True) -> int:
    """A user row (no password hashing: fast)."""
    with db.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO users (username, password_hash, role, site_id, on_duty, active) "
            "VALUES (%s, 'x', %s, %s, %s, %s) RETURNING id",
            (username, role, site, on_duty, active)).fetchone()
    assert row is not None
    return int(str(row[0]))


def trigger(home: Home[str], type: str = "sos", severity: str = "critical", at: datetime = T0,
            seq: int | None = None, device: str | None = None) -> AlertTrigger:
    """A trigger for the home's resident (from the call button unless `device` says else)."""
    return AlertTrigger(resident_id=home.resident_id, site=home.site,
                        device_id=device or home.button, type=type, severity=severity, at=at,
                        source_seq=seq)


def store(url: str, trig: AlertTrigger, now: datetime = NOW,
          settings: AlertSettings = SETTINGS) -> StoredAlert | None:
    """store_trigger on a fresh autocommit connection."""
    with db.connect(url, autocommit=True) as conn:
        return store_trigger(conn, trig, settings, now)


def opened(url: str, trig: AlertTrigger, now: datetime = NOW,
           settings: AlertSettings = SETTINGS) -> StoredAlert:
    """Store a trigger that must open a new alert."""
    result = store(url, trig, now, settings)
    assert result is not None and result.created
    return result


def alert(url: str, alert_id: int) -> dict[str, Any]:
    """The alert row as a dict."""
    with db.connect(url, autocommit=True) as conn, conn.cursor(
            row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return row


def history(url: str, alert_id: int) -> list[tuple[Any, ...]]:
    """(action, status, actor, actor_id, at, note) in order."""
    with db.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT action, status, actor, actor_id, at, note FROM alert_history"
                            " WHERE alert_id = %s ORDER BY at, id", (alert_id,)).fetchall()


def actions(url: str, alert_id: int) -> list[str]:
    """History actions in order."""
    return [str(h[0]) for h in history(url, alert_id)]


def steps(url: str, alert_id: int) -> list[tuple[Any, ...]]:
    """(step, audience, due_at, done_at, skipped) in step order."""
    with db.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT step, audience, due_at, done_at, skipped "
                            "FROM alert_escalations WHERE alert_id = %s ORDER BY step",
                            (alert_id,)).fetchall()


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# --- immediate rules, dedup, redelivery -------------------------------------------------------

def event(rid: int, seq: int, at: datetime, kind: EventType = EventType.SOS) -> EventRecord:
    return EventRecord(at, BUTTON, rid, "north", seq, kind, None, None, at)


def store_cancel_now(url: str, home: Home[str], at: datetime, device: str | None = None,
                     now: datetime = NOW) -> int | None:
    """store_cancel for the home's call button."""
    cancel = AlertCancel(resident_id=home.resident_id, site=home.site,
                         device_id=device or home.button, at=at, in_window=True)
    with db.connect(url, autocommit=True) as conn:
        return store_cancel(conn, cancel, SETTINGS, now)
