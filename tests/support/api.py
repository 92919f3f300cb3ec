"""Builders for the API tests (alert actions, channels, fuzzing): logins, committed alerts,
browser push subscriptions, error details."""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx

from kernel import db
from tests.support.dashboard import insert_alert, login

API = "/api/v1"


async def headers(client: httpx.AsyncClient, *usernames: str) -> dict[str, dict[str, str]]:
    """Authorization headers for each username (one login each)."""
    return {name: await login(client, name) for name in usernames}


def add_alert(database_url: str, resident_id: int, site: str, type_: str,
              severity: str = "critical", **columns: Any) -> int:
    """Insert and commit an alert; returns its id."""
    with db.connect(database_url) as conn:
        alert_id = insert_alert(conn, resident_id, site, type_, severity, **columns)
        conn.commit()
    return alert_id


def b64url(size: int) -> str:
    """Random bytes, base64url-encoded without padding (as browsers send push keys)."""
    return base64.urlsafe_b64encode(os.urandom(size)).rstrip(b"=").decode()


def push_subscription(endpoint: str = "https://push.example.com/send/abc123") -> dict[str, Any]:
    """A browser PushSubscription JSON with random, well-formed keys."""
    return {"endpoint": endpoint, "expirationTime": None,
            "keys": {"p256dh": b64url(65), "auth": b64url(16)}}


def detail(resp: httpx.Response) -> str:
    """The readable `detail` of an error answer."""
    body = resp.json()
    assert isinstance(body["detail"], str), body
    return body["detail"]
