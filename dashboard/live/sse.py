"""Server-Sent Events framing of the live feed, and the words its `close` event carries.

Only bytes on the wire: what each event means is docs/alerts.md's protocol.
"""

from __future__ import annotations

import json

HEARTBEAT = b": heartbeat\n\n"

# What the page does after a `close` event (its `action`): reconnect (and reload), show the
# login form (the session is over), or stop and say why (reconnecting would only close
# another of this account's streams).
RECONNECT, LOGIN, STOP = "reconnect", "login", "stop"


def sse(event: str, data: str) -> bytes:
    """One SSE message: an `event:` line and a `data:` line per line of `data`."""
    lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    return f"event: {event}\n{lines}\n".encode()


def retry(retry_ms: int) -> bytes:
    """The reconnect hint: how long the page waits before it opens a lost stream again."""
    return f"retry: {retry_ms}\n\n".encode()


def close_event(reason: str | None, action: str) -> bytes:
    """The last message of a stream: why it ends and what the page should do next."""
    return sse("close", json.dumps({"reason": reason, "action": action}))
