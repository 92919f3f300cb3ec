"""The live feed of one process: its sources, its subscribers, and their life cycle.

`AlertStream` ties the parts together: the database listener (`listener`), the alert bus
bridge (`bus`), the fan-out hub (`hub`) and the scope refresher (`scopes`). It authenticates
new streams (falling back to a recently confirmed scope while the database is down), greets
them with the `ready` event, tells every stream when a source goes up or down (`status`), and
relays the platform parts' states (`parts`, staff only). A bus alert (`pending`) goes out
with its site's zone (`site_timezone`, as stored alerts carry it), from the sites' zones read
whenever a stream is authenticated on the database, so it still comes while the database is
down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import HTTPException, status
from psycopg_pool import PoolTimeout

from alerts.bus import AlertEvent
from dashboard import auth
from dashboard.deps import DB_UNAVAILABLE, DashboardState, Pool
from dashboard.live.bus import BusBridge
from dashboard.live.hub import Hub, Subscriber
from dashboard.live.listener import DatabaseListener
from dashboard.live.scopes import KnownScopes, ScopeRefresher
from dashboard.live.settings import StreamSettings
from dashboard.live.sse import retry, sse
from dashboard.live.viewer import Viewer, load_viewer
from dashboard.models import UserOut
from dashboard.scope import Scope
from gateway.presence import PartState
from kernel.accounts import Role
from kernel.endpoint import MqttEndpoint
from kernel.i18n import DEFAULT_LANGUAGE, N_

logger = logging.getLogger(__name__)

NOT_AUTHENTICATED = N_("Not authenticated: log in and send 'Authorization: Bearer <token>'")
SHUTTING_DOWN = N_("The server is restarting; the screen will reconnect shortly")
DOWN_DB_TIMEOUT_S = 1.0  # how long a new stream waits for a database known to be down


class AlertStream:
    """The live feed of one process: LISTEN connection, bus client, subscribers."""

    def __init__(self, database_url: str, mqtt_endpoint: MqttEndpoint | None = None,
                 settings: StreamSettings | None = None) -> None:
        self.settings = settings or StreamSettings()
        self.hub = Hub()
        self.bus_up: bool | None = None if mqtt_endpoint is None else False
        self.parts: dict[str, PartState] = {}
        self.site_zones: dict[str, str] = {}  # site id -> IANA zone, for `pending` events
        self._mqtt = mqtt_endpoint
        self._pool: Pool | None = None
        self._known = KnownScopes()
        self._listener = DatabaseListener(database_url, self.hub, self._known,
                                          self._current_pool, self._database_changed)
        self._bus: BusBridge | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False

    @property
    def database_up(self) -> bool:
        """Whether the LISTEN connection is up."""
        return self._listener.up

    # --- life cycle ---

    async def start(self, pool: Pool) -> None:
        """Start listening (database and bus); both retry in the background until reachable.

        The parts take the settings as they are now (tests replace them before starting)."""
        self._pool = pool
        self._accepting = True
        self._listener.configure(self.settings)
        refresher = ScopeRefresher(self.hub, self._known, self.settings, self._current_pool)
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("alert-stream-listen", self._listener.listen_forever()),
            ("alert-stream-fetch", self._listener.fetch_forever()),
            ("alert-stream-refresh", refresher.run_forever()),
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

    def _current_pool(self) -> Pool | None:
        return self._pool

    # --- subscribing ---

    async def subscribe(self, token: str | None, state: DashboardState, address: str,
                        lang: str = DEFAULT_LANGUAGE) -> Subscriber:
        """Authenticate a bearer token and make its subscriber (401/403/503 on failure);
        `lang` is the language its family-view sentences are written in."""
        if not self._accepting:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, SHUTTING_DOWN)
        if not token:
            raise auth.AuthError(NOT_AUTHENTICATED)
        claims = auth.decode_token(token, state.jwt_secret)  # 401 unless valid and current
        try:
            user, viewer = await self._load_scope(token, state)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            user, viewer = self._cached_scope(claims.user_id, exc)
        except HTTPException:
            self._known.forget(claims.user_id)  # logged out, deactivated, deleted...
            raise
        self._known.remember(user, viewer)
        return Subscriber(user, viewer, claims, self.settings.queue_limit, address, lang)

    async def _load_scope(self, token: str, state: DashboardState) -> tuple[UserOut, Viewer]:
        """The token's user and viewer from the database (as every request does); while the
        feed knows the database is down it waits only briefly before using its cache."""
        if self._pool is None:
            raise PoolTimeout("the alert stream has not started")
        timeout = self.settings.db_timeout_s if self.database_up else DOWN_DB_TIMEOUT_S
        async with self._pool.connection(timeout=timeout) as conn:
            session = await auth.authenticate(token, conn, state)
            auth.require_unrestricted(session)
            user = session.user
            cur = await conn.execute("SELECT id, timezone FROM sites")
            self.site_zones = {str(site): str(zone) for site, zone in await cur.fetchall()}
            return user, await load_viewer(conn, Scope.for_user(user))

    def _cached_scope(self, user_id: int, exc: Exception) -> tuple[UserOut, Viewer]:
        """While the database is down: the scope it last confirmed for this user, if recent."""
        known = self._known.get(user_id)
        if known is None or time.monotonic() - known.confirmed > self.settings.auth_cache_s:
            logger.warning("alert stream refused: database unavailable (%s)", exc)
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, DB_UNAVAILABLE) from None
        logger.info("database unavailable: streaming to %s with the scope confirmed %.0f s ago",
                    known.user.username, time.monotonic() - known.confirmed)
        return known.user, known.viewer

    def attach(self, sub: Subscriber) -> None:
        """Start delivering to a subscriber; its first message is `ready`."""
        hello = {"user": sub.user.username, "role": sub.user.role.value,
                 "site_id": sub.user.site_id, "heartbeat_s": self.settings.heartbeat_s,
                 **self._status(),
                 "parts": {} if sub.user.role is Role.FAMILY else self._parts()}
        sub.offer(retry(self.settings.retry_ms) + sse("ready", json.dumps(hello)))
        if self._accepting:
            self.hub.add(sub, self.settings.max_per_account, self.settings.max_per_address)
        else:
            sub.close(SHUTTING_DOWN)

    def detach(self, sub: Subscriber) -> None:
        """Stop delivering to a subscriber (its response has ended)."""
        sub.close(sub.close_reason or N_("stream ended"))
        self.hub.remove(sub)

    # --- sources ---

    def _status(self) -> dict[str, bool | None]:
        return {"database": self.database_up, "bus": self.bus_up}

    def _database_changed(self, _up: bool) -> None:
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
        pending = {**event.model_dump(mode="json"),
                   "site_timezone": self.site_zones.get(event.site, "UTC")}
        self.hub.publish(sse("pending", json.dumps(pending)), event.site, event.resident_id)
