"""Queueing outbound messages in `notification_outbox` (idempotent by dedup_key).

Everything here runs inside the caller's transaction and never sends anything: the dispatcher
does. Repeating a call is a no-op (ON CONFLICT (dedup_key) DO NOTHING).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.model import (
    ACTIVE_STATUSES,
    AlertStatus,
    Audience,
    ChannelKind,
    NotificationKind,
    Severity,
)
from alerts.notify.messages import (
    AlertInfo,
    Message,
    render_alert,
    render_clear,
)
from alerts.notify.recipients import ChannelSpec, deliver_at, resolve_recipients
from kernel.db import Conn
from kernel.i18n import DEFAULT_LANGUAGE

logger = logging.getLogger(__name__)


CLEAR_HORIZON = timedelta(days=2)

_ALERT_SQL = """
SELECT a.id, a.site_id, s.timezone AS site_tz, a.resident_id, r.full_name, r.address, a.type,
       a.severity, a.status, a.opened_at, a.assigned_to, a.outcome,
       CASE WHEN a.status = 'cancelled' THEN COALESCE(a.cancelled_at, a.resolved_at)
            ELSE a.resolved_at END AS finished_at
FROM alerts a JOIN residents r ON r.id = a.resident_id JOIN sites s ON s.id = a.site_id
WHERE a.id = %s
"""

_INSERT_SQL = """
INSERT INTO notification_outbox (alert_id, kind, channel, channel_id, user_id, target, payload,
                                 not_before, dedup_key)
VALUES (%(alert_id)s, %(kind)s, %(channel)s, %(channel_id)s, %(user_id)s, %(target)s,
        %(payload)s, %(not_before)s, %(dedup_key)s)
ON CONFLICT (dedup_key) DO NOTHING
"""

# Originals never tried for alerts that have finished: not worth sending any more.
_SKIP_UNSENT_SQL = """
UPDATE notification_outbox o SET status = 'skipped',
       last_error = 'alert finished before this was sent'
FROM alerts a
WHERE a.id = o.alert_id AND a.status IN ('resolved', 'cancelled')
  AND o.kind IN ('alert', 'escalation') AND o.status = 'pending' AND o.attempts = 0
"""

# Channels that were sent an alert/escalation notification for a finished alert, have no
# clear message yet, and have no original still in flight (the clear must come after it).
_CLEAR_CANDIDATES_SQL = """
SELECT DISTINCT o.alert_id, c.id, c.kind, c.target, c.user_id, c.site_id, c.min_severity,
       c.quiet_start, c.quiet_end, c.timezone
FROM notification_outbox o
JOIN alerts a ON a.id = o.alert_id
JOIN notification_channels c ON c.id = o.channel_id AND c.active
WHERE o.kind IN ('alert', 'escalation') AND o.status = 'sent'
  AND a.status IN ('resolved', 'cancelled')
  AND COALESCE(a.resolved_at, a.cancelled_at, a.last_seen) >= %(since)s
  AND NOT EXISTS (SELECT 1 FROM notification_outbox x
                  WHERE x.dedup_key = 'alert:' || o.alert_id || ':clear:channel:' || c.id)
  AND NOT EXISTS (SELECT 1 FROM notification_outbox p
                  WHERE p.alert_id = o.alert_id AND p.channel_id = c.id
                    AND p.kind IN ('alert', 'escalation') AND p.status = 'pending')
ORDER BY o.alert_id, c.id
"""


def step_key(alert_id: int, step: int, channel_id: int) -> str:
    """Dedup key of an alert/escalation notification."""
    return f"alert:{alert_id}:step:{step}:channel:{channel_id}"


def clear_key(alert_id: int, channel_id: int) -> str:
    """Dedup key of an all-clear (or cancelled) notification."""
    return f"alert:{alert_id}:clear:channel:{channel_id}"


def load_alert_info(conn: Conn, alert_id: int) -> AlertInfo | None:
    """The facts notifications mention about an alert, or None if there is no such alert."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_ALERT_SQL, (alert_id,)).fetchone()
    if row is None:
        return None
    return AlertInfo(id=int(row["id"]), site_id=str(row["site_id"]),
                     site_tz=str(row["site_tz"]), resident_id=int(row["resident_id"]),
                     resident_name=str(row["full_name"]), address=row["address"],
                     type=str(row["type"]), severity=Severity(row["severity"]),
                     status=AlertStatus(row["status"]), opened_at=row["opened_at"],
                     assigned_to=row["assigned_to"], outcome=row["outcome"],
                     finished_at=row["finished_at"])


@dataclass(frozen=True, slots=True)
class Languages:
    """The languages a batch of channels is written to in: each person's (users.language)
    and each site's (sites.language, for its group channels, which have no person to ask)."""

    people: dict[int, str] = field(default_factory=dict)
    sites: dict[str, str] = field(default_factory=dict)

    def of(self, channel: ChannelSpec) -> str:
        """`channel`'s language: its person's for a personal channel, its site's for a
        group channel; English for a person or site without a row."""
        if channel.user_id is not None:
            return self.people.get(channel.user_id, DEFAULT_LANGUAGE)
        if channel.site_id is not None:
            return self.sites.get(channel.site_id, DEFAULT_LANGUAGE)
        return DEFAULT_LANGUAGE


def recipient_languages(conn: Conn, channels: Sequence[ChannelSpec]) -> Languages:
    """The languages of `channels`' people and sites, in two small queries."""
    people = sorted({c.user_id for c in channels if c.user_id is not None})
    sites = sorted({c.site_id for c in channels if c.user_id is None and c.site_id is not None})
    by_person = conn.execute("SELECT id, language FROM users WHERE id = ANY(%s)",
                             (people,)).fetchall() if people else []
    by_site = conn.execute("SELECT id, language FROM sites WHERE id = ANY(%s)",
                           (sites,)).fetchall() if sites else []
    return Languages(people={int(row[0]): str(row[1]) for row in by_person},
                     sites={str(row[0]): str(row[1]) for row in by_site})


def _insert(conn: Conn, alert_id: int | None, channel: ChannelSpec, message: Message,
            not_before: datetime, dedup_key: str) -> int:
    cur = conn.execute(_INSERT_SQL, {
        "alert_id": alert_id, "kind": message.kind.value, "channel": channel.kind.value,
        "channel_id": channel.id, "user_id": channel.user_id, "target": channel.target,
        "payload": Jsonb(message.model_dump(mode="json")), "not_before": not_before,
        "dedup_key": dedup_key})
    return cur.rowcount


def enqueue_alert_notifications(conn: Conn, alert_id: int, audience: Audience,
                                kind: NotificationKind, step: int, *,
                                now: datetime | None = None) -> int:
    """Queue notifications about an alert for everyone in `audience` (by their channels,
    minimum severity and quiet hours); runs inside the caller's transaction. Idempotent per
    (alert, step, channel). Returns the number of rows queued."""
    now = now or datetime.now(UTC)
    info = load_alert_info(conn, alert_id)
    if info is None or info.status not in ACTIVE_STATUSES:
        logger.info("alert %s is %s: no %s notification queued", alert_id,
                    info.status.value if info else "missing", kind.value)
        return 0
    found = resolve_recipients(conn, audience, info, now)
    if found.unreachable:
        logger.warning("alert %d step %d (%s): no active notification channel for users %s",
                       alert_id, step, audience.value, found.unreachable)
    languages = recipient_languages(conn, [r.channel for r in found.recipients])
    messages: dict[str, Message] = {}
    queued = 0
    for r in found.recipients:
        lang = languages.of(r.channel)
        if lang not in messages:
            messages[lang] = render_alert(info, kind, audience, lang)
        queued += _insert(conn, alert_id, r.channel, messages[lang],
                          deliver_at(r.channel, info.severity, now),
                          step_key(alert_id, step, r.channel.id))
    logger.info("alert %d step %d (%s): %d notifications queued, %d channels below their "
                "minimum severity", alert_id, step, audience.value, queued,
                found.below_min_severity)
    return queued


def _clear_candidates(conn: Conn, since: datetime) -> list[tuple[int, ChannelSpec]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_CLEAR_CANDIDATES_SQL, {"since": since}).fetchall()
    return [(int(r["alert_id"]), ChannelSpec.from_row(r)) for r in rows]


def enqueue_all_clears(conn: Conn, now: datetime, *, horizon: timedelta = CLEAR_HORIZON) -> int:
    """Queue one all-clear ('cancelled' when the resident cancelled) to every channel that was
    sent a notification about an alert that has since finished (within `horizon`); unsent
    notifications of finished alerts are skipped instead. Returns the number queued."""
    skipped = conn.execute(_SKIP_UNSENT_SQL).rowcount
    if skipped:
        logger.info("skipped %d unsent notifications of finished alerts", skipped)
    infos: dict[int, AlertInfo | None] = {}
    queued = 0
    for alert_id, channel in _clear_candidates(conn, now - horizon):
        if alert_id not in infos:
            infos[alert_id] = load_alert_info(conn, alert_id)
        info = infos[alert_id]
        if info is None:
            continue
        lang = recipient_languages(conn, [channel]).of(channel)
        queued += _insert(conn, alert_id, channel, render_clear(info, lang),
                          deliver_at(channel, info.severity, now), clear_key(alert_id, channel.id))
    if queued:
        logger.info("queued %d all-clear messages", queued)
    return queued


def enqueue_command(conn: Conn, alert_id: int | None, topic: str, payload: dict[str, Any],
                    dedup_key: str) -> bool:
    """Queue a device command (published on MQTT QoS 1 to `topic`); False if already queued."""
    cur = conn.execute(_INSERT_SQL, {
        "alert_id": alert_id, "kind": NotificationKind.COMMAND.value,
        "channel": ChannelKind.MQTT.value, "channel_id": None, "user_id": None, "target": topic,
        "payload": Jsonb(payload), "not_before": datetime.now(UTC), "dedup_key": dedup_key})
    return cur.rowcount == 1
