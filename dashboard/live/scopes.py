"""Keeping open streams' scopes current: expiry, revocation missed, account changes.

A stream's scope is checked when it opens; afterwards accounts change (a role or site edited,
a user deactivated) and tokens expire. Every `scope_refresh_s` the refresher ends expired
streams, ends streams of sessions no longer open (a missed `sessions` notification), ends
streams whose role or site changed, and updates the others' viewers. The scopes it confirms
are remembered (`KnownScopes`) so a screen can reconnect while the database is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from fastapi import HTTPException
from psycopg_pool import PoolTimeout

from dashboard.deps import AsyncConn, Pool
from dashboard.live.hub import Hub
from dashboard.live.settings import StreamSettings
from dashboard.live.sse import LOGIN
from dashboard.live.viewer import Viewer, load_viewer
from dashboard.models import UserOut
from dashboard.scope import Scope
from kernel.accounts import Role
from kernel.i18n import N_

logger = logging.getLogger(__name__)

SESSION_EXPIRED = N_("session expired")
SESSION_ENDED = N_("session ended")

# Sessions still open (expiry is judged by the token's `exp`, in `_close_expired`).
_SESSIONS = "SELECT id FROM sessions WHERE id = ANY(%s) AND revoked_at IS NULL"

_USERS = """
SELECT id, username, full_name, role, site_id, active FROM users WHERE id = ANY(%s)
"""


@dataclass
class Known:
    """A user's scope as last confirmed by the database (used while it is unreachable)."""

    user: UserOut
    viewer: Viewer
    confirmed: float = field(default_factory=time.monotonic)


class KnownScopes:
    """Users' scopes as last confirmed by the database, by user id."""

    def __init__(self) -> None:
        self._known: dict[int, Known] = {}

    def get(self, user_id: int) -> Known | None:
        """The last confirmed scope of a user, if any."""
        return self._known.get(user_id)

    def remember(self, user: UserOut, viewer: Viewer) -> None:
        """The database has just confirmed this user's scope."""
        self._known[user.id] = Known(user, viewer)

    def forget(self, user_id: int) -> None:
        """Never use this user's cached scope again (logged out, deactivated, deleted...)."""
        self._known.pop(user_id, None)

    def update(self, current: dict[int, Known]) -> None:
        """Scopes the database has just confirmed."""
        self._known.update(current)

    def prune(self, horizon: float) -> None:
        """Forget scopes confirmed before `horizon` (monotonic seconds)."""
        self._known = {k: v for k, v in self._known.items() if v.confirmed >= horizon}


class ScopeRefresher:
    """Periodically ends expired sessions' streams and applies account changes to the others."""

    def __init__(self, hub: Hub, known: KnownScopes, settings: StreamSettings,
                 pool: Callable[[], Pool | None]) -> None:
        self._hub = hub
        self._known = known
        self._settings = settings
        self._pool = pool  # the feed's pool; None once it has stopped

    async def run_forever(self) -> None:
        """Refresh every `scope_refresh_s`; a failed round is logged and the next one tried."""
        while True:
            await asyncio.sleep(self._settings.scope_refresh_s)
            self._close_expired()
            try:
                await self._refresh_scopes()
            except (PoolTimeout, psycopg.Error) as exc:
                logger.info("alert stream: scopes not refreshed (%s)", exc)
            except Exception:
                logger.exception("alert stream: refreshing scopes failed")

    def _close_expired(self) -> None:
        now = time.time()
        for sub in self._hub.subscribers():
            if sub.expires_at <= now:
                sub.close(SESSION_EXPIRED, LOGIN)
                self._hub.remove(sub)
        self._known.prune(time.monotonic() - self._settings.auth_cache_s)

    async def _refresh_scopes(self) -> None:
        subs = self._hub.subscribers()
        pool = self._pool()
        if not subs or pool is None:
            return
        async with pool.connection(timeout=self._settings.db_timeout_s) as conn:
            current = await current_scopes(conn, sorted({s.user.id for s in subs}))
            cur = await conn.execute(_SESSIONS, (sorted({s.session_id for s in subs}),))
            open_sessions = {row[0] for row in await cur.fetchall()}
        for sub in subs:
            known = current.get(sub.user.id)
            if sub.session_id not in open_sessions:  # a missed notification: end it now
                sub.close(SESSION_ENDED, LOGIN)
                self._hub.remove(sub)
            elif known is None or (known.user.role, known.user.site_id) != (sub.user.role,
                                                                          sub.user.site_id):
                sub.close(N_("account changed"))
                self._hub.remove(sub)
            else:
                sub.user, sub.viewer = known.user, known.viewer
        for user_id in {s.user.id for s in subs} - current.keys():
            self._known.forget(user_id)
        self._known.update(current)


async def current_scopes(conn: AsyncConn, user_ids: list[int]) -> dict[int, Known]:
    """Active users among `user_ids` with their current viewers."""
    cur = await conn.execute(_USERS, (user_ids,))
    found: dict[int, Known] = {}
    for uid, username, full_name, role, site_id, active in await cur.fetchall():
        if not active or role not in Role.__members__.values():
            continue
        user = UserOut(id=uid, username=username, full_name=full_name, role=Role(role),
                       site_id=site_id)
        try:
            scope = Scope.for_user(user)
        except HTTPException:
            continue
        found[int(uid)] = Known(user, await load_viewer(conn, scope))
    return found
