"""Fan-out of the live feed: the open streams of this process, each with a bounded queue.

A subscriber that cannot keep up has its stream closed (it reconnects and reloads) and never
slows anyone else down. The caps per account and per client address are enforced here, when
a stream is added.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable
from uuid import UUID

from dashboard import auth
from dashboard.live.sse import HEARTBEAT, LOGIN, RECONNECT, STOP
from dashboard.live.viewer import Viewer
from dashboard.models import UserOut
from dashboard.throttle import client_key
from kernel.accounts import Role
from kernel.i18n import DEFAULT_LANGUAGE, N_

logger = logging.getLogger(__name__)

OVERFLOW = N_("too slow: more events queued than the limit")
BURST_FACTOR = 8
TOO_MANY_ACCOUNT = N_("too many live streams for this account: this older one was closed; "
                      "close other tabs or screens using the same login")
TOO_MANY_ADDRESS = N_("too many live streams from this network address: this older one was "
                      "closed")
ADDRESS_FULL = N_("too many live streams from this network address: close another screen "
                  "here, or ask the administrator to raise web_streams_per_address")


class Subscriber:
    """One open stream: a bounded queue of encoded SSE messages.

    The queue may hold `limit` messages while the client is still receiving earlier ones
    (a write is blocked); beyond that the client is too slow and its stream is closed. A burst
    that arrives before the sender had a chance to run may reach BURST_FACTOR x `limit`.
    """

    _serials = itertools.count()

    def __init__(self, user: UserOut, viewer: Viewer, claims: auth.TokenClaims,
                 limit: int, address: str = "unknown", lang: str = DEFAULT_LANGUAGE) -> None:
        self.user = user
        self.lang = lang  # the reader's: family-view sentences are written in it
        self.viewer = viewer
        self.session_id = claims.session_id
        self.expires_at = claims.expires_at  # the token's `exp` (epoch seconds)
        self.address = client_key(address)
        self.serial = next(self._serials)  # opening order: the oldest is closed first
        self.close_reason: str | None = None
        self.close_action = RECONNECT
        self.sending = False  # a write to the client is in progress
        self._limit = limit
        self._frames: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()

    def offer(self, data: bytes) -> bool:
        """Queue a message; on overflow close the stream instead and return False."""
        if self.close_reason is not None:
            return False
        queued = len(self._frames)
        if queued >= self._limit * BURST_FACTOR or (queued >= self._limit and self.sending):
            self.close(OVERFLOW)
            return False
        self._frames.append(data)
        self._wake.set()
        return True

    def close(self, reason: str, action: str = RECONNECT) -> None:
        """End this stream (its sender stops at the next message); `action` tells the page
        what to do next."""
        if self.close_reason is None:
            self.close_reason = reason
            self.close_action = action
            self._frames.clear()
            self._closed.set()
            self._wake.set()

    async def wait_closed(self) -> None:
        """Return once the stream has been closed."""
        await self._closed.wait()

    async def take(self, idle_s: float) -> bytes | None:
        """Everything queued as one chunk; a heartbeat after `idle_s` idle; None once closed."""
        if not self._frames and self.close_reason is None:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), idle_s)
            except TimeoutError:
                return HEARTBEAT
        if self.close_reason is not None:
            return None
        chunk = b"".join(self._frames)
        self._frames.clear()
        return chunk


class Hub:
    """The open streams of this process, and fan-out to those whose viewer admits a message."""

    def __init__(self) -> None:
        self._subs: set[Subscriber] = set()
        self.overflows = 0

    def __len__(self) -> int:
        return len(self._subs)

    def subscribers(self) -> list[Subscriber]:
        """A snapshot of the open streams."""
        return list(self._subs)

    def add(self, sub: Subscriber, per_account: int, per_address: int) -> None:
        """Start delivering to a subscriber; beyond the account's limit its oldest stream
        closes. Beyond the address's limit the account's own oldest stream there closes, or
        the new one is refused: one person's screens never push out another's (a shared
        care-home network is one address)."""
        self._subs.add(sub)
        self._cap([s for s in self._subs if s.user.id == sub.user.id], per_account,
                  TOO_MANY_ACCOUNT)
        here = [s for s in self._subs if s.address == sub.address]
        if len(here) > per_address:
            own = [s for s in here if s.user.id == sub.user.id and s is not sub]
            if own:
                self._cap([*own, sub], len(own), TOO_MANY_ADDRESS)
            else:
                logger.warning("refused an alert stream of %s (%s): %d open from there",
                               sub.user.username, sub.address, len(here) - 1)
                sub.close(ADDRESS_FULL, RECONNECT)  # a slot may free up: try again later
                self._subs.discard(sub)

    def _cap(self, subs: list[Subscriber], limit: int, reason: str) -> None:
        for old in sorted(subs, key=lambda s: s.serial)[:max(0, len(subs) - limit)]:
            logger.warning("closed the oldest alert stream of %s (%s): %s",
                           old.user.username, old.address, reason.split(":")[0])
            old.close(reason, STOP)
            self._subs.discard(old)

    def close_session(self, session_id: UUID, reason: str) -> int:
        """End the streams of a session that was revoked; returns how many."""
        doomed = [s for s in self._subs if s.session_id == session_id]
        for sub in doomed:
            sub.close(reason, LOGIN)
            self._subs.discard(sub)
        return len(doomed)

    def remove(self, sub: Subscriber) -> None:
        """Stop delivering to a subscriber."""
        self._subs.discard(sub)

    def publish(self, data: bytes, site: str, resident_id: int,
                family_data: bytes | Callable[[str], bytes] | None = None) -> int:
        """Queue a message for every subscriber in scope; returns how many took it.

        Family members get `family_data` instead when given (the family view, without
        staff notes, names or assignments; a function of the reader's language when it
        holds sentences, encoded once per language); messages without staff internals
        (pending bus events) go to everyone in scope as they are."""
        encoded: dict[str, bytes] = {}

        def family(lang: str) -> bytes:
            if family_data is None:
                return data
            if isinstance(family_data, bytes):
                return family_data
            if lang not in encoded:
                encoded[lang] = family_data(lang)
            return encoded[lang]

        return sum(self._offer(sub, family(sub.lang) if sub.viewer.role is Role.FAMILY
                               else data)
                   for sub in list(self._subs) if sub.viewer.admits(site, resident_id))

    def publish_all(self, data: bytes, staff_only: bool = False) -> None:
        """Queue a message for every subscriber (only staff's with `staff_only`: which parts
        of the platform are down is the care centre's business, not families')."""
        for sub in list(self._subs):
            if not (staff_only and sub.viewer.role is Role.FAMILY):
                self._offer(sub, data)

    def close_all(self, reason: str) -> None:
        """End every open stream."""
        for sub in list(self._subs):
            sub.close(reason)
        self._subs.clear()

    def _offer(self, sub: Subscriber, data: bytes) -> bool:
        if sub.offer(data):
            return True
        if sub.close_reason == OVERFLOW:
            self.overflows += 1
            logger.warning("closed the alert stream of %s: it fell %s", sub.user.username,
                           OVERFLOW)
        self._subs.discard(sub)
        return False
