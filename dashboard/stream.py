"""Live alert feed: Server-Sent Events at `GET /api/v1/alerts/stream`.

One `AlertStream` per process feeds every open stream:

- one dedicated database connection does `LISTEN alerts` (the `alerts_notify` trigger sends
  the id of every inserted or updated alert); each notified row is fetched once, through the
  pool, and fanned out as an `alert` event to the subscribers whose scope admits it;
- one paho-mqtt client subscribes to the internal alert bus (`alerts.bus`) and relays each
  `AlertEvent` as a `pending` event, so a new alert reaches the screens even before, or
  without, the database;
- the same client follows the retained part states (`gateway.presence`: pipeline, jobs) and
  relays them as `parts` events, so the duty screen says which parts are down and since when;
- every subscriber has a bounded queue: a client that cannot keep up has its stream closed
  (it reconnects and reloads) and never slows anyone else down.

Authentication is the ordinary `Authorization: Bearer` header: the pages read the stream with
`fetch()`, so no token ever appears in a URL or an access log. Protocol: docs/alerts.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import paho.mqtt.client as mqtt
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request, status
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import PoolTimeout
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Message, Receive, Send
from starlette.types import Scope as AsgiScope

from alerts.bus import BUS_FILTER, AlertEvent, decode_event
from dashboard import auth
from dashboard.api import _ALERT_COLUMNS
from dashboard.deps import DB_UNAVAILABLE, AsyncConn, DashboardState, Pool, StateDep
from dashboard.models import AlertOut, FamilyAlertOut, UserOut, family_alert
from dashboard.scope import SITE_ROLES, Scope, Where
from dashboard.throttle import client_key
from gateway.presence import PARTS_FILTER, PARTS_ROOT, PartState, read_state
from kernel.accounts import Role
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)

router = APIRouter(tags=["alerts"])

CHANNEL = "alerts"
SESSIONS_CHANNEL = "sessions"  # revoked or deleted sessions (migration 0007)
HEARTBEAT = b": heartbeat\n\n"
NOT_AUTHENTICATED = "Not authenticated: log in and send 'Authorization: Bearer <token>'"
SHUTTING_DOWN = "The server is restarting; the screen will reconnect shortly"
OVERFLOW = "too slow: more events queued than the limit"
BURST_FACTOR = 8
DOWN_DB_TIMEOUT_S = 1.0  # how long a new stream waits for a database known to be down
SESSION_EXPIRED = "session expired"
SESSION_ENDED = "session ended"
TOO_MANY_ACCOUNT = ("too many live streams for this account: this older one was closed; "
                    "close other tabs or screens using the same login")
TOO_MANY_ADDRESS = ("too many live streams from this network address: this older one was "
                    "closed")
ADDRESS_FULL = ("too many live streams from this network address: close another screen "
                "here, or ask the administrator to raise web_streams_per_address")

# What the page does after a `close` event (its `action`): reconnect (and reload), show the
# login form (the session is over), or stop and say why (reconnecting would only close
# another of this account's streams).
RECONNECT, LOGIN, STOP = "reconnect", "login", "stop"

# Sessions still open (expiry is judged by the token's `exp`, in `_close_expired`).
_SESSIONS = "SELECT id FROM sessions WHERE id = ANY(%s) AND revoked_at IS NULL"

_FETCH = f"""
SELECT {_ALERT_COLUMNS}, a.uid
FROM alerts a JOIN residents r ON r.id = a.resident_id
WHERE a.id = ANY(%(ids)s)
ORDER BY a.id
"""

_USERS = """
SELECT id, username, full_name, role, site_id, active FROM users WHERE id = ANY(%s)
"""


@dataclass
class StreamSettings:
    """Tunables of the live feed (tests shorten them)."""

    heartbeat_s: float = 15.0
    retry_ms: int = 3000
    queue_limit: int = 500
    close_grace_s: float = 5.0
    db_timeout_s: float = 5.0
    db_ping_s: float = 30.0
    scope_refresh_s: float = 30.0
    auth_cache_s: float = 3600.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    # Open streams allowed per account and per client address (IPv4, or IPv6 /64); a new
    # stream beyond either closes the oldest one, so a screen that reconnects after losing
    # its connection is never locked out by its own half-open old stream.
    max_per_account: int = 5
    max_per_address: int = 50


class StreamAlert(AlertOut):
    """An alert as pushed on the stream: the list item plus the pipeline's `uid`."""

    uid: UUID | None = None


class FamilyStreamAlert(FamilyAlertOut):
    """The family view of an alert as pushed on the stream, with the pipeline's `uid` so the
    page can match it to the pending event it replaces."""

    uid: UUID | None = None


def _family_event(alert: StreamAlert) -> bytes:
    """The `alert` event a family member receives: the family view, never staff internals."""
    view = FamilyStreamAlert(**family_alert(alert).model_dump(), uid=alert.uid)
    return sse("alert", view.model_dump_json())


def sse(event: str, data: str) -> bytes:
    """One SSE message: an `event:` line and a `data:` line per line of `data`."""
    lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    return f"event: {event}\n{lines}\n".encode()


class Backoff:
    """Exponential reconnect delays with jitter, from `low` up to `high` seconds."""

    def __init__(self, low: float, high: float) -> None:
        self._low, self._high = low, high
        self._next = low

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self._next = self._low

    def delay(self) -> float:
        """The next delay (0.5x to 1x of the current step); doubles the step."""
        step = self._next
        self._next = min(self._high, self._next * 2)
        return step * (0.5 + secrets.randbelow(1000) / 2000)


# --- who receives what ----------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Which alerts one subscriber may receive: `dashboard.scope`'s rules on (site, resident)."""

    role: Role
    site_id: str | None
    residents: frozenset[int] = frozenset()

    def admits(self, site: str, resident_id: int) -> bool:
        """Whether an alert of this site and resident is in scope."""
        if self.role is Role.ADMIN:
            return True
        if self.role in SITE_ROLES:
            return site == self.site_id
        if self.role is Role.FAMILY:
            return resident_id in self.residents
        return False  # deny by default, like Scope


async def load_audience(conn: AsyncConn, scope: Scope) -> Audience:
    """The audience of a scope; family members' residents come from the scope's own SQL."""
    residents: frozenset[int] = frozenset()
    if scope.user.role is Role.FAMILY:
        where = Where()
        scope.restrict_residents(where)
        query = sql.SQL("SELECT r.id FROM residents r {}").format(where.clause())
        cur = await conn.execute(query, where.params)
        residents = frozenset(int(row[0]) for row in await cur.fetchall())
    return Audience(scope.user.role, scope.user.site_id, residents)


class Subscriber:
    """One open stream: a bounded queue of encoded SSE messages.

    The queue may hold `limit` messages while the client is still receiving earlier ones
    (a write is blocked); beyond that the client is too slow and its stream is closed. A burst
    that arrives before the sender had a chance to run may reach BURST_FACTOR x `limit`.
    """

    _serials = itertools.count()

    def __init__(self, user: UserOut, audience: Audience, claims: auth.TokenClaims,
                 limit: int, address: str = "unknown") -> None:
        self.user = user
        self.audience = audience
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
    """The open streams of this process, and fan-out to those whose audience admits a message."""

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
                family_data: bytes | None = None) -> int:
        """Queue a message for every subscriber in scope; returns how many took it.

        Family members get `family_data` instead when given (the family view, without
        staff notes, names or assignments); messages without staff internals (pending bus
        events) go to everyone in scope as they are."""
        family = data if family_data is None else family_data
        return sum(self._offer(sub, family if sub.audience.role is Role.FAMILY else data)
                   for sub in list(self._subs) if sub.audience.admits(site, resident_id))

    def publish_all(self, data: bytes, staff_only: bool = False) -> None:
        """Queue a message for every subscriber (only staff's with `staff_only`: which parts
        of the platform are down is the care centre's business, not families')."""
        for sub in list(self._subs):
            if not (staff_only and sub.audience.role is Role.FAMILY):
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


# --- the internal alert bus (MQTT) --------------------------------------------------------


class BusBridge:
    """The internal alert bus relayed into asyncio: one paho client (own thread) per process."""

    def __init__(self, endpoint: MqttEndpoint, on_event: Callable[[AlertEvent], None],
                 on_state: Callable[[bool], None], max_delay_s: float,
                 on_part: Callable[[PartState, bool], None] | None = None) -> None:
        self._endpoint = endpoint
        self._on_event = on_event
        self._on_part = on_part
        self._on_state = on_state
        self._max_delay = max(1, int(max_delay_s))
        self._loop: asyncio.AbstractEventLoop | None = None
        client_id = f"eldercare-web-{socket.gethostname()[:20]}-{os.getpid()}-" \
                    f"{secrets.token_hex(3)}"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   clean_session=True)
        self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.reconnect_delay_set(1, self._max_delay)
        self._client.on_connect = self._connected
        self._client.on_subscribe = self._subscribed
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._message

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connect in the background (retrying with backoff until the broker answers)."""
        self._loop = loop
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    async def stop(self) -> None:
        """Disconnect and join the network thread."""
        self._loop = None  # no more callbacks into the event loop
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn(*args)` on the event loop (from paho's thread)."""
        loop = self._loop
        if loop is None:
            return
        # RuntimeError: the loop closed while the network thread was stopping.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def _connected(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                   _props: Any) -> None:
        if reason.is_failure:
            logger.error("alert bus: the broker at %s:%d refused the login of %r: %s",
                         self._endpoint.host, self._endpoint.port, self._endpoint.username,
                         reason)
            return
        client.subscribe([(BUS_FILTER, 1), (PARTS_FILTER, 1)])

    def _subscribed(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any,
                    _props: Any) -> None:
        if any(code.is_failure for code in reasons):
            logger.error("alert bus: the broker refused the subscription to %s; the service "
                         "account needs read access to eldercare/internal/#", BUS_FILTER)
            return
        logger.info("alert bus: subscribed to %s", BUS_FILTER)
        self._call(self._on_state, True)

    def _disconnected(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                      _props: Any) -> None:
        if self._loop is not None:
            logger.warning("alert bus: disconnected (%s); reconnecting", reason)
        self._call(self._on_state, False)

    def _message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith(PARTS_ROOT + "/"):
            if not msg.payload:
                return  # an operator cleared a retired part's retained state
            state = read_state(msg.topic, bytes(msg.payload))
            if state is not None and self._on_part is not None:
                self._call(self._on_part, state, bool(msg.retain))
            return
        try:
            event = decode_event(bytes(msg.payload))
        except ValidationError as exc:
            logger.warning("alert bus: unreadable event on %s: %s", msg.topic,
                           exc.errors(include_url=False)[:1])
            return
        self._call(self._on_event, event)


# --- the process-wide feed ----------------------------------------------------------------


@dataclass
class _Known:
    """A user's scope as last confirmed by the database (used while it is unreachable)."""

    user: UserOut
    audience: Audience
    confirmed: float = field(default_factory=time.monotonic)


class AlertStream:
    """The live feed of one process: LISTEN connection, bus client, subscribers."""

    def __init__(self, database_url: str, mqtt_endpoint: MqttEndpoint | None = None,
                 settings: StreamSettings | None = None) -> None:
        self.settings = settings or StreamSettings()
        self.hub = Hub()
        self.database_up = False
        self.bus_up: bool | None = None if mqtt_endpoint is None else False
        self._url = database_url
        self._mqtt = mqtt_endpoint
        self._pool: Pool | None = None
        self._bus: BusBridge | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._changed: set[int] = set()
        self._have_changes = asyncio.Event()
        self._known: dict[int, _Known] = {}
        self._accepting = False
        self._backoff = Backoff(self.settings.backoff_min_s, self.settings.backoff_max_s)
        self.parts: dict[str, PartState] = {}

    # --- life cycle ---

    async def start(self, pool: Pool) -> None:
        """Start listening (database and bus); both retry in the background until reachable."""
        self._pool = pool
        self._accepting = True
        self._backoff = Backoff(self.settings.backoff_min_s, self.settings.backoff_max_s)
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("alert-stream-listen", self._listen_forever()),
            ("alert-stream-fetch", self._fetch_forever()),
            ("alert-stream-refresh", self._refresh_forever()),
        )]
        if self._mqtt is not None:
            self._bus = BusBridge(self._mqtt, self._on_bus_event, self._set_bus,
                                  self.settings.backoff_max_s, self._on_part)
            self._bus.start(asyncio.get_running_loop())

    def end_streams(self, reason: str = SHUTTING_DOWN) -> None:
        """Refuse new streams and end the open ones (before a server's graceful shutdown)."""
        self._accepting = False
        self.hub.close_all(reason)

    async def stop(self) -> None:
        """End all streams and stop listening."""
        self.end_streams()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._bus is not None:
            await self._bus.stop()
            self._bus = None
        self._pool = None

    # --- subscribing ---

    async def subscribe(self, token: str | None, state: DashboardState, address: str
                        ) -> Subscriber:
        """Authenticate a bearer token and make its subscriber (401/403/503 on failure)."""
        if not self._accepting:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, SHUTTING_DOWN)
        if not token:
            raise auth.AuthError(NOT_AUTHENTICATED)
        claims = auth.decode_token(token, state.jwt_secret)  # 401 unless valid and current
        try:
            user, audience = await self._load_scope(token, state)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            user, audience = self._cached_scope(claims.user_id, exc)
        except HTTPException:
            self._known.pop(claims.user_id, None)  # logged out, deactivated, deleted...
            raise
        self._known[user.id] = _Known(user, audience)
        return Subscriber(user, audience, claims, self.settings.queue_limit, address)

    async def _load_scope(self, token: str, state: DashboardState) -> tuple[UserOut, Audience]:
        """The token's user and audience from the database (as every request does); while the
        feed knows the database is down it waits only briefly before using its cache."""
        if self._pool is None:
            raise PoolTimeout("the alert stream has not started")
        timeout = self.settings.db_timeout_s if self.database_up else DOWN_DB_TIMEOUT_S
        async with self._pool.connection(timeout=timeout) as conn:
            user = (await auth.authenticate(token, conn, state)).user
            return user, await load_audience(conn, Scope.for_user(user))

    def _cached_scope(self, user_id: int, exc: Exception) -> tuple[UserOut, Audience]:
        """While the database is down: the scope it last confirmed for this user, if recent."""
        known = self._known.get(user_id)
        if known is None or time.monotonic() - known.confirmed > self.settings.auth_cache_s:
            logger.warning("alert stream refused: database unavailable (%s)", exc)
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, DB_UNAVAILABLE) from None
        logger.info("database unavailable: streaming to %s with the scope confirmed %.0f s ago",
                    known.user.username, time.monotonic() - known.confirmed)
        return known.user, known.audience

    def attach(self, sub: Subscriber) -> None:
        """Start delivering to a subscriber; its first message is `ready`."""
        hello = {"user": sub.user.username, "role": sub.user.role.value,
                 "site_id": sub.user.site_id, "heartbeat_s": self.settings.heartbeat_s,
                 **self._status(),
                 "parts": {} if sub.user.role is Role.FAMILY else self._parts()}
        sub.offer(f"retry: {self.settings.retry_ms}\n\n".encode()
                  + sse("ready", json.dumps(hello)))
        if self._accepting:
            self.hub.add(sub, self.settings.max_per_account, self.settings.max_per_address)
        else:
            sub.close(SHUTTING_DOWN)

    def detach(self, sub: Subscriber) -> None:
        """Stop delivering to a subscriber (its response has ended)."""
        sub.close(sub.close_reason or "stream ended")
        self.hub.remove(sub)

    # --- sources ---

    def _status(self) -> dict[str, bool | None]:
        return {"database": self.database_up, "bus": self.bus_up}

    def _set_database(self, up: bool) -> None:
        if up == self.database_up:
            return
        self.database_up = up
        if up:
            self._backoff.reset()
            logger.info("alert stream: listening for alert changes")
        self.hub.publish_all(sse("status", json.dumps(self._status())))

    def _set_bus(self, up: bool) -> None:
        if up == self.bus_up:
            return
        self.bus_up = up
        self.hub.publish_all(sse("status", json.dumps(self._status())))

    def _parts(self) -> dict[str, Any]:
        return {name: state.model_dump(mode="json", exclude={"part"})
                for name, state in sorted(self.parts.items())}

    def _on_part(self, state: PartState, retained: bool) -> None:
        """A part came up or went down (runs on the event loop). A Last Will carries no
        time: one that arrives live is stamped now; a retained one (the part went down
        before this process connected) stays without a time."""
        before = self.parts.get(state.part)
        if not state.up and state.since is None:
            if before is not None and not before.up:
                return  # the same outage again (the retained copy after a reconnect)
            if not retained:
                state = state.model_copy(update={"since": datetime.now(UTC)})
        if before == state:
            return
        self.parts[state.part] = state
        if not state.up:
            logger.warning("part %s is down (%s)", state.part, state.reason or "unknown")
        self.hub.publish_all(sse("parts", json.dumps(self._parts())), staff_only=True)

    def _on_bus_event(self, event: AlertEvent) -> None:
        """Relay a bus event to the subscribers in scope (runs on the event loop)."""
        self.hub.publish(sse("pending", event.model_dump_json()), event.site, event.resident_id)

    async def _listen_forever(self) -> None:
        """Hold the one LISTEN connection; reconnect with backoff whenever it is lost."""
        warned = False
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if self.database_up or not warned:  # once per outage
                    logger.warning("alert stream: no database (%s); retrying with backoff",
                                   _first_line(exc))
                    warned = True
            except Exception:
                logger.exception("alert stream: listener failed; restarting it")
            self._set_database(False)
            await asyncio.sleep(self._backoff.delay())

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=max(1, int(self.settings.db_timeout_s)),
            application_name="eldercare-dashboard-listen")
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            await conn.execute(f"LISTEN {SESSIONS_CHANNEL}")
            self._set_database(True)
            while True:
                async for note in conn.notifies(timeout=self.settings.db_ping_s):
                    if note.channel == SESSIONS_CHANNEL:
                        self._session_ended(note.payload)
                    else:
                        self._note_change(note.payload)
                # Quiet for a while: prove the connection is still alive.
                await asyncio.wait_for(conn.execute("SELECT 1"), self.settings.db_timeout_s)

    def _session_ended(self, payload: str) -> None:
        """A session was revoked (logout, deactivation) or deleted: end its streams now, and
        forget its user's cached scope so an outage cannot let the token back in."""
        try:
            note = json.loads(payload)
            session_id, user_id = UUID(str(note["session"])), int(note["user"])
            reason = str(note.get("reason") or SESSION_ENDED)[:100]
        except (ValueError, KeyError, TypeError):
            logger.warning("alert stream: ignoring session notification %r", payload[:80])
            return
        self._known.pop(user_id, None)
        if closed := self.hub.close_session(session_id, reason):
            logger.info("alert stream: ended %d stream(s) of user %d: %s", closed, user_id,
                        reason)

    def _note_change(self, payload: str) -> None:
        try:
            self._changed.add(int(payload))
        except ValueError:
            logger.warning("alert stream: ignoring notification %r", payload[:40])
            return
        self._have_changes.set()

    async def _fetch_forever(self) -> None:
        """Fetch every changed alert once (batched) and fan it out."""
        while True:
            await self._have_changes.wait()
            self._have_changes.clear()
            ids, self._changed = sorted(self._changed), set()
            try:
                alerts = await self._fetch(ids)
            except (PoolTimeout, psycopg.Error) as exc:
                logger.warning("alert stream: could not fetch %d changed alert(s) (%s); "
                               "asking screens to reload", len(ids), _first_line(exc))
                self._resync()
                continue
            except Exception:  # e.g. a row the model cannot read: never stop the feed
                logger.exception("alert stream: reading changed alerts %s failed", ids[:10])
                self._resync()
                continue
            for alert in alerts:
                self.hub.publish(sse("alert", alert.model_dump_json()), alert.site_id,
                                 alert.resident_id, family_data=_family_event(alert))

    def _resync(self) -> None:
        """Tell every screen that it missed changes and should reload its list."""
        self.hub.publish_all(sse("resync", json.dumps({"reason": "missed changes"})))

    async def _fetch(self, ids: list[int]) -> list[StreamAlert]:
        if self._pool is None:
            raise PoolTimeout("the alert stream has stopped")
        async with (self._pool.connection(timeout=self.settings.db_timeout_s) as conn,
                    conn.cursor(row_factory=class_row(StreamAlert)) as cur):
            await cur.execute(_FETCH, {"ids": ids})
            return await cur.fetchall()

    # --- keeping scopes current ---

    async def _refresh_forever(self) -> None:
        """Periodically end expired sessions and apply account changes to open streams."""
        while True:
            await asyncio.sleep(self.settings.scope_refresh_s)
            self._close_expired()
            try:
                await self._refresh_scopes()
            except (PoolTimeout, psycopg.Error) as exc:
                logger.info("alert stream: scopes not refreshed (%s)", exc)
            except Exception:
                logger.exception("alert stream: refreshing scopes failed")

    def _close_expired(self) -> None:
        now = time.time()
        for sub in self.hub.subscribers():
            if sub.expires_at <= now:
                sub.close(SESSION_EXPIRED, LOGIN)
                self.hub.remove(sub)
        horizon = time.monotonic() - self.settings.auth_cache_s
        self._known = {k: v for k, v in self._known.items() if v.confirmed >= horizon}

    async def _refresh_scopes(self) -> None:
        subs = self.hub.subscribers()
        if not subs or self._pool is None:
            return
        async with self._pool.connection(timeout=self.settings.db_timeout_s) as conn:
            current = await _current_scopes(conn, sorted({s.user.id for s in subs}))
            cur = await conn.execute(_SESSIONS, (sorted({s.session_id for s in subs}),))
            open_sessions = {row[0] for row in await cur.fetchall()}
        for sub in subs:
            known = current.get(sub.user.id)
            if sub.session_id not in open_sessions:  # a missed notification: end it now
                sub.close(SESSION_ENDED, LOGIN)
                self.hub.remove(sub)
            elif known is None or (known.user.role, known.user.site_id) != (sub.user.role,
                                                                          sub.user.site_id):
                sub.close("account changed")
                self.hub.remove(sub)
            else:
                sub.user, sub.audience = known.user, known.audience
        for user_id in {s.user.id for s in subs} - current.keys():
            self._known.pop(user_id, None)
        self._known.update(current)


async def _current_scopes(conn: AsyncConn, user_ids: list[int]) -> dict[int, _Known]:
    """Active users among `user_ids` with their current audiences."""
    cur = await conn.execute(_USERS, (user_ids,))
    found: dict[int, _Known] = {}
    for uid, username, full_name, role, site_id, active in await cur.fetchall():
        if not active or role not in Role.__members__.values():
            continue
        user = UserOut(id=uid, username=username, full_name=full_name, role=Role(role),
                       site_id=site_id)
        try:
            scope = Scope.for_user(user)
        except HTTPException:
            continue
        found[int(uid)] = _Known(user, await load_audience(conn, scope))
    return found


def _first_line(exc: BaseException) -> str:
    """The first line of an error message (libpq's run over several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- HTTP ---------------------------------------------------------------------------------


class EventStreamResponse(Response):
    """A `text/event-stream` response fed by one subscriber until it or the client ends it."""

    media_type = "text/event-stream"

    def __init__(self, stream: AlertStream, sub: Subscriber) -> None:
        self.status_code = status.HTTP_200_OK
        self.background = None
        self._stream = stream
        self._sub = sub
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        self._stream.attach(self._sub)
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await self._pump(receive, send)
        finally:
            self._stream.detach(self._sub)

    async def _pump(self, receive: Receive, send: Send) -> None:
        """Send until the client leaves or the stream is closed (then finish within a grace)."""
        sender = asyncio.create_task(self._send_all(send))
        gone = asyncio.create_task(_client_gone(receive))
        closed = asyncio.create_task(self._sub.wait_closed())
        tasks = (sender, gone, closed)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if closed.done() and not (sender.done() or gone.done()):
                await asyncio.wait((sender, gone), timeout=self._stream.settings.close_grace_s,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if sender.done() and not sender.cancelled() and sender.exception() is not None:
            logger.error("alert stream to %s failed", self._sub.user.username,
                         exc_info=sender.exception())

    async def _send_all(self, send: Send) -> None:
        sub = self._sub
        try:
            while (chunk := await sub.take(self._stream.settings.heartbeat_s)) is not None:
                sub.sending = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sub.sending = False
            farewell = sse("close", json.dumps({"reason": sub.close_reason,
                                                "action": sub.close_action}))
            await send({"type": "http.response.body", "body": farewell, "more_body": False})
        except OSError:  # the client went away mid-write
            sub.close("client disconnected")


async def _client_gone(receive: Receive) -> None:
    """Return when the client disconnects."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


def get_alert_stream(request: Request) -> AlertStream:
    """The live feed of the application serving this request."""
    stream = request.app.state.alert_stream
    assert isinstance(stream, AlertStream)
    return stream


TokenDep = Annotated[str | None, Depends(auth.oauth2_scheme)]
AlertStreamDep = Annotated[AlertStream, Depends(get_alert_stream)]


@router.get(
    "/alerts/stream", response_class=EventStreamResponse, status_code=status.HTTP_200_OK,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "Events: ready, alert, pending, status, parts, resync, close."},
               401: {"description": "Missing, invalid or expired token"},
               503: {"description": "Database unavailable and your scope not known yet"}},
)
async def alert_stream(token: TokenDep, state: StateDep, stream: AlertStreamDep,
                       request: Request) -> EventStreamResponse:
    """Live alert changes in your scope as Server-Sent Events (protocol: docs/alerts.md)."""
    address = request.client.host if request.client is not None else "unknown"
    sub = await stream.subscribe(token, state, address)
    logger.info("alert stream opened for %s (%d open)", sub.user.username, len(stream.hub) + 1)
    return EventStreamResponse(stream, sub)
