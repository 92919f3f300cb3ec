"""Generic webhook: the alert event as JSON, signed with HMAC-SHA256 when the channel has a
secret (`X-Eldercare-Signature: sha256=<hex of HMAC(secret, body)>`).

Every attempt to deliver one message carries the same idempotency key, in the
`Idempotency-Key` header and as `idempotency_key` in the body, which the signature covers:
delivery is at least once, and the receiver drops a repeat by that key."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from alerts.notify.channels.base import SendError, idempotency_header, post
from alerts.notify.channels.guard import check_public_url
from alerts.notify.messages import Message

SIGNATURE_HEADER = "X-Eldercare-Signature"
EVENT_HEADER = "X-Eldercare-Event"


def sign_body(secret: str, body: bytes) -> str:
    """Value of the signature header for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(message: Message, public_url: str | None) -> bytes:
    """The JSON document a webhook receives."""
    doc = message.model_dump(mode="json")
    doc["link"] = message.url(public_url)
    doc["idempotency_key"] = message.key()
    doc["sent_at"] = datetime.now(UTC).isoformat()
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookSender:
    """POSTs the alert event to the channel's URL (`secret`: {"secret": "..."}, optional).

    The URL comes from a user: unless `allow_private_targets`, a host that resolves to a
    non-public address is refused (see guard.py), and redirects are never followed (a 3xx
    answer is a permanent failure), so a public URL cannot bounce the request inside."""

    def __init__(self, client: httpx.Client, public_url: str | None = None, *,
                 allow_private_targets: bool = False) -> None:
        self._client = client
        self._public_url = public_url
        self._allow_private = allow_private_targets

    def send(self, target: str, secret: Mapping[str, Any], message: Message) -> None:
        """POST the event; 2xx is success."""
        if not target.startswith(("http://", "https://")):
            raise SendError(f"webhook target {target!r} is not an http(s) URL", retryable=False)
        if not self._allow_private:
            check_public_url(target, "webhook")
        body = webhook_body(message, self._public_url)
        headers = {"Content-Type": "application/json", EVENT_HEADER: message.kind.value,
                   **idempotency_header(message)}
        key = secret.get("secret")
        if key:
            headers[SIGNATURE_HEADER] = sign_body(str(key), body)
        post(self._client, target, "webhook", content=body, headers=headers,
             follow_redirects=False)
