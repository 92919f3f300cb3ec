"""Acknowledging a message only when everything it produced is committed (ack after commit).

The pipeline receives each message once and hands it to one or two consumers (the ingest
writer; for an SOS or a fall also the alert worker). `AckGate` counts the consumers still
holding it; an ack token says which MQTT session and which connection the message came on,
so its PUBACK goes to the right session and never to a newer connection that reused the
message id. Kept apart from the pipeline's wiring because it is the part with the rules
(see docs/decisions/0004-ack-after-commit.md) and is tested on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class AckGate:
    """Acknowledges messages once every consumer that holds them has released them.

    `ack` receives the tokens that became free together (a committed batch), so their
    PUBACKs go out in one write.
    """

    def __init__(self, ack: Callable[[list[int]], None]) -> None:
        self._ack = ack
        self._extra: dict[int, int] = {}
        self._lock = threading.Lock()

    def hold(self, token: int, holders: int) -> None:
        """Declare that `holders` consumers must release `token` before it is acked."""
        if holders > 1:
            with self._lock:
                self._extra[token] = self._extra.get(token, 0) + holders - 1

    def release(self, token: int) -> None:
        """One consumer is done with `token`."""
        self.release_many([token])

    def release_many(self, tokens: list[int]) -> None:
        """Several tokens released by one consumer (a committed batch)."""
        ready: list[int] = []
        with self._lock:
            extra = self._extra
            for token in tokens:
                left = extra.get(token)
                if left is None:
                    ready.append(token)
                elif left <= 1:
                    del extra[token]
                else:
                    extra[token] = left - 1
        if ready:
            self._ack(ready)


# Device events travel on their own MQTT session, so an SOS never queues in the broker
# behind a backlog of telemetry. An ack token is the message id (bits 0-15), the session
# (bit 16: events) and the number of the connection the message came on (bits 17-).
EVENT_TOKEN_OFFSET = 1 << 16
_MID_MASK = 0xFFFF
_CONNECTION_SHIFT = 17


def ack_token(mid: int, events: bool, connection: int) -> int:
    """The ack token of a message: which session, which connection, which message id."""
    return (connection << _CONNECTION_SHIFT) | (EVENT_TOKEN_OFFSET if events else 0) | mid


def split_tokens(tokens: list[int]) -> dict[tuple[bool, int], list[int]]:
    """Group tokens by (events session?, connection) -> message ids, in order."""
    groups: dict[tuple[bool, int], list[int]] = {}
    for t in tokens:
        key = (bool(t & EVENT_TOKEN_OFFSET), t >> _CONNECTION_SHIFT)
        groups.setdefault(key, []).append(t & _MID_MASK)
    return groups
