"""Web Push (RFC 8030/8291/8292) with the platform's VAPID key, via pywebpush.

Channel target: the subscription endpoint; secret: {"p256dh": ..., "auth": ...} as the
browser's PushSubscription.toJSON() gives them under "keys".

Each message goes with a `Topic` header made from its idempotency key, so a repeat (delivery is
at least once) replaces the undelivered first copy at the push service (RFC 8030 5.4), and with
the key as `id` in the payload, so the service worker replaces rather than adds a
notification it already shows (same `tag`, same `id`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import requests
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from alerts.model import Severity
from alerts.notify.channels.base import RETRYABLE_HTTP, ChannelGoneError, SendError
from alerts.notify.channels.guard import check_public_url
from alerts.notify.messages import Message
from alerts.notify.settings import NotifySettings

GONE = frozenset({404, 410})


class NoRedirectSession(requests.Session):
    """A requests session that never follows a redirect (the 3xx answer is returned as is)."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """No redirect is ever followed."""
        return None


def push_topic(key: str) -> str:
    """RFC 8030 Topic for a key: at most 32 base64url characters (a UUID's 32 hex digits)."""
    try:
        return uuid.UUID(key).hex
    except ValueError:
        digest = hashlib.sha256(key.encode()).digest()
        return base64.urlsafe_b64encode(digest).decode()[:32]


def push_payload(message: Message, public_url: str | None) -> str:
    """What the service worker receives (JSON, well under the 4 KB push limit). `tag` groups
    the notifications of one alert into one; `id` tells a repeat from a new message."""
    key = message.key()
    return json.dumps({"title": message.title, "body": message.body,
                       "url": message.url(public_url), "kind": message.kind.value,
                       "alert_id": message.alert_id,
                       "severity": message.severity.value if message.severity else None,
                       "tag": f"alert-{message.alert_id}" if message.alert_id else f"msg-{key}",
                       "id": key},
                      ensure_ascii=False, separators=(",", ":"))


def urgency(severity: Severity | None) -> str:
    """Web Push Urgency header for a severity."""
    if severity is None:
        return "normal"
    return "high" if severity.rank >= Severity.URGENT.rank else "normal"


def _push_error(exc: WebPushException) -> SendError:
    code = exc.status_code
    if code in GONE:
        return ChannelGoneError(f"push subscription gone (HTTP {code})")
    if code is None:
        return SendError(f"web push: {exc.message}", retryable=False)
    if 300 <= code < 400:
        return SendError(f"web push: HTTP {code} redirect; redirects are not followed",
                         retryable=False)
    return SendError(f"web push: HTTP {code}", retryable=code >= 500 or code in RETRYABLE_HTTP)


class WebPushSender:
    """Encrypts (aes128gcm) and posts a push message, signed with the VAPID key.

    The endpoint comes from a browser, i.e. from a user: unless the setting
    `allow_private_targets`, a host resolving to a non-public address is refused (guard.py),
    and redirects are never followed."""

    def __init__(self, settings: NotifySettings, vapid: Vapid02) -> None:
        self._settings = settings
        self._vapid = vapid

    def send(self, target: str, secret: Mapping[str, Any], message: Message) -> None:
        """Deliver one push; 404/410 mean the subscription is gone (ChannelGoneError)."""
        if not secret.get("p256dh") or not secret.get("auth"):
            raise SendError("push channel has no p256dh/auth keys", retryable=False)
        s = self._settings
        if not s.allow_private_targets:
            check_public_url(target, "web push")
        subscription = {"endpoint": target,
                        "keys": {"p256dh": secret["p256dh"], "auth": secret["auth"]}}
        try:
            with NoRedirectSession() as session:
                webpush(subscription, push_payload(message, s.public_url),
                        vapid_private_key=self._vapid, vapid_claims={"sub": s.webpush_subject},
                        timeout=s.http_timeout_s, ttl=s.webpush_ttl_s,
                        headers={"Urgency": urgency(message.severity),
                                 "Topic": push_topic(message.key())},
                        requests_session=session)
        except WebPushException as exc:
            raise _push_error(exc) from exc
        except requests.RequestException as exc:
            raise SendError(f"web push: {type(exc).__name__}: {exc}", retryable=True) from exc
