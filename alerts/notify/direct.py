"""The path around the outbox while the database is down: the pipeline caches each site's group
channels (`load_site_channels`) while it can, and on an alert it cannot store sends straight to
them (`send_direct`). Best effort: failures are logged, nothing is retried or recorded.

There is no outbox row to key a message by, so its idempotency key is derived from the alert's
uid and the channel (`direct_key`): a second direct send of the same alert to the same channel
carries the same key.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts.bus import AlertEvent
from alerts.model import ChannelKind
from alerts.notify.channels import ChannelSenders, Sender, SendError
from alerts.notify.messages import KEY_NAMESPACE, Message, render_direct
from alerts.notify.recipients import ChannelSpec, deliver_at, passes_min_severity, site_channels
from alerts.notify.settings import NotifySettings
from kernel.i18n import DEFAULT_LANGUAGE

logger = logging.getLogger(__name__)

__all__ = ["ChannelSpec", "DirectNotifier", "load_site_channels", "send_direct"]

# Kinds that need neither the database (VAPID key) nor the broker.
DIRECT_KINDS = frozenset({ChannelKind.WEBHOOK, ChannelKind.WECOM, ChannelKind.DINGTALK,
                          ChannelKind.EMAIL})


def load_site_channels(conn: psycopg.Connection[Any]) -> dict[str, list[ChannelSpec]]:
    """Every site's active group channels (with secrets), for the pipeline to cache."""
    by_site: dict[str, list[ChannelSpec]] = defaultdict(list)
    for channel in site_channels(conn):
        if channel.site_id is not None:
            by_site[channel.site_id].append(channel)
    return dict(by_site)


def _wanted(channel: ChannelSpec, event: AlertEvent, now: datetime) -> bool:
    """Loud enough, outside quiet hours (nothing can be deferred without the database)."""
    return (channel.kind in DIRECT_KINDS
            and passes_min_severity(event.severity, channel.min_severity)
            and deliver_at(channel, event.severity, now) <= now)


def direct_key(alert_uid: str, channel_id: int) -> str:
    """Idempotency key of a direct send: a UUIDv5 of the alert's uid and the channel."""
    return str(uuid.uuid5(KEY_NAMESPACE, f"direct:{alert_uid}:channel:{channel_id}"))


def _message(event: AlertEvent, channel: ChannelSpec, resident_name: str | None,
             lang: str) -> Message:
    message = render_direct(site=event.site, resident_id=event.resident_id,
                            resident_name=resident_name, alert_type=event.type,
                            severity=event.severity, at=event.at, tz_name=channel.timezone,
                            alert_id=event.alert_id, lang=lang)
    return message.with_key(direct_key(event.uid, channel.id))


def _try_send(sender: Sender, channel: ChannelSpec, message: Message) -> bool:
    try:
        sender.send(channel.target, channel.secret, message)
    except SendError as exc:
        logger.error("direct %s notification on channel %d failed: %s", channel.kind.value,
                     channel.id, exc)
        return False
    logger.info("direct %s notification sent on channel %d", channel.kind.value, channel.id)
    return True


def send_direct(channels: Sequence[ChannelSpec], event: AlertEvent, settings: NotifySettings,
                *, resident_name: str | None = None,
                senders: Mapping[ChannelKind, Sender] | None = None,
                now: datetime | None = None, lang: str = DEFAULT_LANGUAGE) -> int:
    """Send an alert at once to a site's cached group channels, bypassing the outbox, in
    `lang` (the site's language, cached with them); returns how many were delivered. Blocks
    for up to the HTTP/SMTP timeouts: call it off the pipeline's message thread."""
    now = now or datetime.now(UTC)
    chosen = [c for c in channels if _wanted(c, event, now)]
    if not chosen:
        return 0
    owned = ChannelSenders(settings) if senders is None else None
    available = owned.senders if owned is not None else senders or {}
    try:
        return sum(_try_send(available[c.kind], c, _message(event, c, resident_name, lang))
                   for c in chosen if c.kind in available)
    finally:
        if owned is not None:
            owned.close()


class DirectNotifier:
    """The pipeline's direct path: a cache of site group channels (and resident names),
    refreshed while the database is up, and a small thread pool that sends off the MQTT
    thread. Call it with an AlertEvent; `refresh(conn)` reloads the cache."""

    def __init__(self, settings: NotifySettings, workers: int = 2) -> None:
        self._settings = settings
        self._channels: dict[str, list[ChannelSpec]] = {}
        self._names: dict[int, str] = {}
        self._languages: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="direct-notify")
        self.sent = 0

    def refresh(self, conn: psycopg.Connection[Any]) -> None:
        """Reload site channels, their sites' languages and resident names from the
        database."""
        self._channels = load_site_channels(conn)
        self._languages = {str(site): str(lang) for site, lang in
                           conn.execute("SELECT id, language FROM sites")}
        self._names = {int(rid): str(name) for rid, name in
                       conn.execute("SELECT id, full_name FROM residents WHERE active")}

    def __call__(self, event: AlertEvent) -> None:
        """Send `event` to its site's group channels in the background."""
        channels = self._channels.get(event.site, [])
        if not channels:
            logger.error("database down and site %s has no group channel: alert %s (%s) "
                         "reaches only the live feed", event.site, event.uid, event.type)
            return
        self._pool.submit(self._send, channels, event)

    def _send(self, channels: list[ChannelSpec], event: AlertEvent) -> None:
        try:
            self.sent += send_direct(channels, event, self._settings,
                                     resident_name=self._names.get(event.resident_id),
                                     lang=self._languages.get(event.site, DEFAULT_LANGUAGE))
        except Exception:
            logger.exception("direct notification of alert %s failed", event.uid)

    def close(self) -> None:
        """Finish sends under way."""
        self._pool.shutdown(wait=True)
