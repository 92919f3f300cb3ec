"""The dashboard tests' world: a seeded two-site registry with users of every role and alerts
with some history, inserted straight into the real database; an in-process app client and
logging in."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dashboard.app import create_app
from kernel import accounts, db, sites

SECRET = "dashboard-test-secret-0123456789abcdef"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class World:
    """Ids of what `world` seeded."""

    alice: int          # north
    bob: int            # north
    carol: int          # south
    admin: int
    duty_north: int
    care_north: int
    duty_south: int
    family_alice: int
    sos_alice: int      # north, critical, open, newest-but-one
    fall_bob: int       # north, critical, resolved, oldest
    battery_alice: int  # north, warning, acknowledged
    sos_carol: int      # south, critical, open, newest


def insert_alert(conn: psycopg.Connection[Any], resident_id: int, site: str, type_: str,
                 severity: str, *, status: str = "open", minutes_ago: float = 3.0,
                 device_id: str | None = None, **columns: Any) -> int:
    """Insert an alert directly; `created_at` = `opened_at` = now - minutes_ago."""
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    values: dict[str, Any] = {
        "resident_id": resident_id, "site_id": site, "device_id": device_id, "type": type_,
        "severity": severity, "status": status, "opened_at": at, "created_at": at,
        "last_seen": at, **columns,
    }
    if "details" in values:
        values["details"] = json.dumps(values["details"])
    names = ", ".join(values)
    marks = ", ".join(f"%({k})s" for k in values)
    row = conn.execute(f"INSERT INTO alerts ({names}) VALUES ({marks}) RETURNING id",
                       values).fetchone()
    assert row is not None
    return int(row[0])


def add_device(conn: psycopg.Connection[Any], device_id: str, site: str, resident_id: int,
               type_: str, online: bool | None, battery: int | None) -> None:
    """Register a device row directly (no broker account: the dashboard never needs one)."""
    conn.execute(
        "INSERT INTO devices (id, site_id, resident_id, type, credentials_hash, online, "
        "battery, last_seen) VALUES (%s, %s, %s, %s, 'unused', %s, %s, now())",
        (device_id, site, resident_id, type_, online, battery))


def seed_world(database_url: str) -> World:
    """Two sites, three residents, five users, four alerts with some history."""
    with db.connect(database_url) as conn:
        sites.add_site(conn, "north", "North")
        sites.add_site(conn, "south", "South")
        alice = sites.add_resident(conn, "north", "Alice Andersen", "1 Fjord Road")
        bob = sites.add_resident(conn, "north", "Bob Berg", "2 Fjord Road")
        carol = sites.add_resident(conn, "south", "Carol Christensen", "3 Bay Street")
        admin = accounts.add_user(conn, "admin", PASSWORD, "admin", full_name="Ada Admin")
        duty_north = accounts.add_user(conn, "duty-north", PASSWORD, "duty_officer", "north",
                                       full_name="Dora Duty", on_duty=True)
        care_north = accounts.add_user(conn, "care-north", PASSWORD, "care_worker", "north",
                                       full_name="Carl Care")
        duty_south = accounts.add_user(conn, "duty-south", PASSWORD, "duty_officer", "south",
                                       full_name="Sven South")
        family_alice = accounts.add_user(conn, "family-alice", PASSWORD, "family",
                                         full_name="Anna Andersen", residents=[alice])
        add_device(conn, "btn-alice", "north", alice, "call_button", True, 85)
        add_device(conn, "bed-alice", "north", alice, "bed_sensor", False, 12)
        add_device(conn, "btn-carol", "south", carol, "call_button", None, None)
        fall_bob = insert_alert(
            conn, bob, "north", "fall", "critical", status="resolved", minutes_ago=60,
            resolved_by=duty_north, outcome="false_alarm", note="Sensor knocked over")
        battery_alice = insert_alert(
            conn, alice, "north", "low_battery", "warning", status="acknowledged",
            minutes_ago=30, device_id="bed-alice", acknowledged_by=care_north,
            acknowledged_at=datetime.now(UTC) - timedelta(minutes=20))
        sos_alice = insert_alert(conn, alice, "north", "sos", "critical", minutes_ago=3,
                                 device_id="btn-alice", details={"detail": "long press"})
        sos_carol = insert_alert(conn, carol, "south", "sos", "critical", minutes_ago=1,
                                 device_id="btn-carol")
        for action, status, actor_id in (("opened", "open", None),
                                         ("acknowledged", "acknowledged", duty_north),
                                         ("resolved", "resolved", duty_north)):
            conn.execute("INSERT INTO alert_history (alert_id, action, actor_id, actor, status) "
                         "VALUES (%s, %s, %s, %s, %s)",
                         (fall_bob, action, actor_id, "duty-north" if actor_id else "system",
                          status))
        conn.commit()
    return World(alice, bob, carol, admin, duty_north, care_north, duty_south, family_alice,
                 sos_alice, fall_bob, battery_alice, sos_carol)


# Argon2 takes ~0.1 s per hash: hash the shared test password once per session.
cached_hash = functools.cache(accounts.hash_password)


# What a family member must never see in an answer: the staff's names and usernames of the
# seeded world, the internal wording the family tests write into alert histories and notes,
# and the fields that carry who did what.
STAFF_TEXT = ("Carl Care", "care-north", "Dora Duty", "duty-north", "assigned",
              "user 3", "other active alert", "Fell while drunk again", "spoke to GP")
STAFF_FIELDS = {"assigned_to", "acknowledged_by", "resolved_by", "note", "actor", "actor_id",
                "details", "device_id", "action"}


@asynccontextmanager
async def app_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client for a fresh app, with its lifespan (connection pool) running."""
    app = create_app(database_url, SECRET)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as client):
        yield client


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD
                ) -> dict[str, str]:
    """Log in and return the Authorization header."""
    resp = await client.post("/api/v1/auth/token",
                             data={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def require_browser(path: Path) -> None:
    """Fail, never skip, when the page tests' Chromium is missing: a skipped page test is
    a green run that tested no page. scripts/test.sh installs it (bootstrap.sh --test)."""
    if not path.exists():
        pytest.fail(f"the page tests need Debian's Chromium at {path}: run "
                    "`scripts/bootstrap.sh --test` (or `apt-get install chromium`)",
                    pytrace=False)
