"""Care-staff actions on an alert: acknowledge (exactly one winner) and resolve.

Called by the web app (async psycopg). The caller has already checked the user's role and
that the alert is in the user's scope. Each action is one transaction (a savepoint if the
caller already has one open): the status change, skipping the pending escalation steps, the
history entries and, for an SOS, the `sos_ack` command to the call button.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.model import (
    ACTIVE_STATUSES,
    AlertStatus,
    ChannelKind,
    NotificationKind,
    Outcome,
)
from alerts.store import (
    CANCELLABLE_TYPES,
    HISTORY_SQL,
    SKIP_PENDING_STEPS_SQL,
    HistoryEntry,
    history_params,
)
from gateway.schema import Channel, DeviceType, SosAckCommand, encode, topic_for
from kernel.db import AsyncConn

logger = logging.getLogger(__name__)

Row = dict[str, Any]

SOS_ACK_MESSAGE = "Help is on the way"


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


class AlertNotFound(LookupError):  # noqa: N818 - agreed interface name
    """No alert with that id."""


_ACKNOWLEDGE = """
UPDATE alerts a SET status = 'acknowledged', acknowledged_by = %(user)s, acknowledged_at = %(now)s
WHERE a.id = %(id)s AND a.status = 'open'
RETURNING a.site_id, a.type, a.device_id,
          (SELECT d.type FROM devices d WHERE d.id = a.device_id) AS device_type,
          (SELECT u.username FROM users u WHERE u.id = %(user)s) AS username
"""

# Who finished or claimed an alert, for the caller that came second.
_STATE = """
SELECT a.status, a.acknowledged_by, a.acknowledged_at, a.resolved_by, a.resolved_at,
       a.cancelled_at, a.outcome, ack.username AS ack_name, res.username AS res_name
FROM alerts a
LEFT JOIN users ack ON ack.id = a.acknowledged_by
LEFT JOIN users res ON res.id = a.resolved_by
WHERE a.id = %(id)s
"""

_QUEUE_COMMAND = """
INSERT INTO notification_outbox (alert_id, kind, channel, target, payload, dedup_key)
VALUES (%(alert_id)s, %(kind)s, %(channel)s, %(target)s, %(payload)s, %(dedup_key)s)
ON CONFLICT (dedup_key) DO NOTHING
"""


async def _one(conn: AsyncConn, sql: str, params: dict[str, Any]) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()


async def acknowledge(conn: AsyncConn, alert_id: int, user_id: int, now: datetime,
                      note: str | None = None) -> ActionResult:
    """Claim an open alert: exactly one of concurrent callers wins; skips pending escalation
    steps; queues `sos_ack` to the call button for sos/fall alerts."""
    async with conn.transaction():
        row = await _one(conn, _ACKNOWLEDGE, {"id": alert_id, "user": user_id, "now": now})
        if row is None:
            return await _too_late(conn, alert_id, "acknowledge")
        await conn.execute(SKIP_PENDING_STEPS_SQL, {"alert_id": alert_id, "at": now})
        await conn.execute(HISTORY_SQL, history_params(
            alert_id, now, [HistoryEntry("acknowledged", AlertStatus.ACKNOWLEDGED, note)],
            user_id, row["username"] or f"user {user_id}"))
        if row["type"] in CANCELLABLE_TYPES and row["device_type"] == DeviceType.CALL_BUTTON:
            await _queue_sos_ack(conn, alert_id, row["site_id"], row["device_id"], now)
    logger.info("alert %d acknowledged by user %d", alert_id, user_id)
    return ActionResult(True, alert_id, AlertStatus.ACKNOWLEDGED, user_id, now, "acknowledged")


async def _queue_sos_ack(conn: AsyncConn, alert_id: int, site: str, device_id: str,
                         now: datetime) -> None:
    command = SosAckCommand(ts=now, alert_id=alert_id, message=SOS_ACK_MESSAGE)
    await conn.execute(_QUEUE_COMMAND, {
        "alert_id": alert_id, "kind": NotificationKind.COMMAND.value,
        "channel": ChannelKind.MQTT.value, "target": topic_for(site, device_id, Channel.CMD),
        "payload": Jsonb(json.loads(encode(command))),
        "dedup_key": f"alert:{alert_id}:sos_ack"})


_LOCK = "SELECT status FROM alerts WHERE id = %(id)s FOR UPDATE"

_RESOLVE = """
UPDATE alerts SET status = 'resolved', resolved_by = %(user)s, resolved_at = %(now)s,
                  outcome = %(outcome)s, note = %(note)s,
                  acknowledged_by = COALESCE(acknowledged_by, %(user)s),
                  acknowledged_at = COALESCE(acknowledged_at, %(now)s)
WHERE id = %(id)s
RETURNING (SELECT u.username FROM users u WHERE u.id = %(user)s) AS username
"""


async def resolve(conn: AsyncConn, alert_id: int, user_id: int, outcome: Outcome,
                  note: str | None, now: datetime) -> ActionResult:
    """Close an open or acknowledged alert with an outcome and a note (acknowledging it on the
    way if it was still open)."""
    outcome = Outcome(outcome)
    if outcome is Outcome.CANCELLED_BY_RESIDENT:
        raise ValueError("outcome 'cancelled_by_resident' is set by the platform only")
    async with conn.transaction():
        locked = await _one(conn, _LOCK, {"id": alert_id})
        if locked is None:
            raise AlertNotFound(alert_id)
        was = AlertStatus(locked["status"])
        if was not in ACTIVE_STATUSES:
            return await _too_late(conn, alert_id, "resolve")
        row = await _one(conn, _RESOLVE, {"id": alert_id, "user": user_id, "now": now,
                                          "outcome": outcome.value, "note": note})
        assert row is not None
        await conn.execute(SKIP_PENDING_STEPS_SQL, {"alert_id": alert_id, "at": now})
        await conn.execute(HISTORY_SQL, history_params(
            alert_id, now, _resolve_entries(was, outcome, note),
            user_id, row["username"] or f"user {user_id}"))
    logger.info("alert %d resolved by user %d: %s", alert_id, user_id, outcome)
    return ActionResult(True, alert_id, AlertStatus.RESOLVED, user_id, now, f"resolved: {outcome}")


def _resolve_entries(was: AlertStatus, outcome: Outcome, note: str | None) -> list[HistoryEntry]:
    entries = []
    if was is AlertStatus.OPEN:
        entries.append(HistoryEntry("acknowledged", AlertStatus.ACKNOWLEDGED, "on resolve"))
    text = f"{outcome}: {note}" if note else str(outcome)
    entries.append(HistoryEntry("resolved", AlertStatus.RESOLVED, text))
    return entries


async def _too_late(conn: AsyncConn, alert_id: int, action: str) -> ActionResult:
    """The result for a caller that lost the race (or an alert already finished)."""
    row = await _one(conn, _STATE, {"id": alert_id})
    if row is None:
        raise AlertNotFound(alert_id)
    status = AlertStatus(row["status"])
    if status is AlertStatus.RESOLVED:
        by, at, who = row["resolved_by"], row["resolved_at"], row["res_name"]
    elif status is AlertStatus.ACKNOWLEDGED:
        by, at, who = row["acknowledged_by"], row["acknowledged_at"], row["ack_name"]
    else:  # cancelled by the resident (open cannot happen here)
        by, at, who = None, row["cancelled_at"], "the resident"
    when = f" at {at.isoformat(timespec='seconds')}" if at else ""
    logger.info("cannot %s alert %d: already %s", action, alert_id, status)
    return ActionResult(False, alert_id, status, by, at,
                        f"already {status} by {who or f'user {by}'}{when}")
