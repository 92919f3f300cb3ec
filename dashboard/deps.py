"""Per-application state and the database-connection dependency."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request, status
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from alerts.notify.settings import NotifySettings
from dashboard.throttle import LoginThrottle
from kernel.i18n import N_

logger = logging.getLogger(__name__)

AsyncConn = psycopg.AsyncConnection[TupleRow]
Pool = AsyncConnectionPool[AsyncConn]

# How long a request waits for a pooled connection before answering 503.
CONNECTION_TIMEOUT_S = 5.0
DB_UNAVAILABLE = N_("The database is unavailable; the screen will retry shortly")


@dataclass
class DashboardState:
    """What the routes need from `create_app`: settings and (once started) the pool."""

    database_url: str
    jwt_secret: str
    token_ttl: timedelta
    pool: Pool | None = None
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    # Roles that must use a second factor (TOTP): until enrolled, only /me and /me/totp work.
    totp_required_roles: frozenset[str] = frozenset()
    # How channel tests send (the jobs' dispatcher uses the same settings).
    notify: NotifySettings = field(default_factory=NotifySettings)
    # "Now" for views that describe the present in words (the family view): injected so a
    # test can show a seeded night at a fixed instant, never at the wall clock's.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # A wall display's access tokens live this long; the screen renews them with its display
    # secret (dashboard/displays.py), so a short life costs nothing.
    display_token_ttl: timedelta = timedelta(minutes=60)


def get_state(request: Request) -> DashboardState:
    """The dashboard state of the application serving this request."""
    state = request.app.state.dashboard
    assert isinstance(state, DashboardState)
    return state


StateDep = Annotated[DashboardState, Depends(get_state)]


async def get_conn(state: StateDep) -> AsyncIterator[AsyncConn]:
    """One pooled autocommit connection for the whole request."""
    if state.pool is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, DB_UNAVAILABLE)
    try:
        async with state.pool.connection(timeout=CONNECTION_TIMEOUT_S) as conn:
            yield conn
    except PoolTimeout:
        logger.warning("no database connection within %.0fs", CONNECTION_TIMEOUT_S)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, DB_UNAVAILABLE) from None


ConnDep = Annotated[AsyncConn, Depends(get_conn)]
