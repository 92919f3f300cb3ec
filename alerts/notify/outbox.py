"""Queueing outbound messages in `notification_outbox` (idempotent by dedup_key).

STUB: signatures agreed; implementation pending.
"""

from __future__ import annotations

from typing import Any

import psycopg

from alerts.model import Audience, NotificationKind

Conn = psycopg.Connection[Any]


def enqueue_alert_notifications(conn: Conn, alert_id: int, audience: Audience,
                                kind: NotificationKind, step: int) -> int:
    """Queue notifications about an alert for everyone in `audience` (by their channels,
    minimum severity and quiet hours); runs inside the caller's transaction. Idempotent per
    (alert, step, channel). Returns the number of rows queued."""
    raise NotImplementedError
