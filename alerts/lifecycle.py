"""Care-staff actions on an alert: acknowledge (exactly one winner) and resolve.

Called by the web app (async psycopg). The caller has already checked the user's role and
that the alert is in the user's scope. STUB: signatures agreed; implementation pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from alerts.model import AlertStatus, Outcome

AsyncConn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """Outcome of a staff action. `ok` False means someone else got there first (or the
    alert is already finished); `status`, `by_user_id` and `at` then describe who did what."""

    ok: bool
    alert_id: int
    status: AlertStatus
    by_user_id: int | None
    at: datetime | None
    message: str


class AlertNotFound(LookupError):
    """No alert with that id."""


async def acknowledge(conn: AsyncConn, alert_id: int, user_id: int, now: datetime,
                      note: str | None = None) -> ActionResult:
    """Claim an open alert: exactly one of concurrent callers wins; skips pending escalation
    steps; queues `sos_ack` to the call button for sos/fall alerts."""
    raise NotImplementedError


async def resolve(conn: AsyncConn, alert_id: int, user_id: int, outcome: Outcome,
                  note: str | None, now: datetime) -> ActionResult:
    """Close an open or acknowledged alert with an outcome and a note (acknowledging it on the
    way if it was still open)."""
    raise NotImplementedError
