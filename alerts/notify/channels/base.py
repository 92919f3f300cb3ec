"""What every channel sender has in common: `send(target, secret, message)` and `SendError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from alerts.notify.messages import Message


class SendError(Exception):
    """A message could not be delivered; `retryable` says whether trying again may help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class ChannelGoneError(SendError):
    """The destination no longer exists (e.g. an expired push subscription): deactivate it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)


class Sender(Protocol):
    """Delivers one message to one destination of its channel kind."""

    def send(self, target: str, secret: Mapping[str, Any], message: Message) -> None:
        """Deliver `message` to `target`; raise SendError on failure."""
        ...


RETRYABLE_HTTP = frozenset({408, 425, 429})

# draft-ietf-httpapi-idempotency-key-header: an Item Structured Field whose value is a String.
IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_header(message: Message) -> dict[str, str]:
    """The `Idempotency-Key` header for a message: its key as a Structured Field string
    (RFC 8941, quoted), the same on every attempt, so a receiver can drop a repeat."""
    key = message.key().replace("\\", "\\\\").replace('"', '\\"')
    return {IDEMPOTENCY_HEADER: f'"{key}"'}


def check_http_status(response: httpx.Response, what: str) -> None:
    """Raise SendError for a non-2xx reply: 5xx, 408, 425 and 429 are worth retrying."""
    if response.is_success:
        return
    code = response.status_code
    if response.is_redirect:
        location = response.headers.get("location", "")[:200]
        raise SendError(f"{what}: HTTP {code} redirect to {location!r}; redirects are not "
                        "followed, use the final address", retryable=False)
    retryable = code >= 500 or code in RETRYABLE_HTTP
    raise SendError(f"{what}: HTTP {code} {response.text[:200]}", retryable=retryable)


def post(client: httpx.Client, url: str, what: str, **kwargs: Any) -> httpx.Response:
    """POST with transport failures (refused, timeout) turned into retryable SendErrors."""
    try:
        response = client.post(url, **kwargs)
    except httpx.HTTPError as exc:
        raise SendError(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from exc
    check_http_status(response, what)
    return response
