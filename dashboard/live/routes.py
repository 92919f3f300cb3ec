"""The live feed's route: `GET /api/v1/alerts/stream` (protocol: docs/alerts.md).

Authentication is the ordinary `Authorization: Bearer` header: the pages read the stream with
`fetch()`, so no token ever appears in a URL or an access log.
"""

from __future__ import annotations

import logging
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Request, status
from psycopg_pool import PoolTimeout

from dashboard import auth
from dashboard.audit import record
from dashboard.deps import DashboardState, StateDep
from dashboard.language import api_language
from dashboard.live.feed import AlertStream
from dashboard.live.response import EventStreamResponse
from dashboard.models import UserOut
from kernel.audit import Action, Actor, Target

logger = logging.getLogger(__name__)

router = APIRouter(tags=["alerts"])


def get_alert_stream(request: Request) -> AlertStream:
    """The live feed of the application serving this request."""
    stream = request.app.state.alert_stream
    assert isinstance(stream, AlertStream)
    return stream


async def _audit_start(stream: AlertStream, state: DashboardState, user: UserOut,
                       address: str) -> None:
    """Record the opening of a live feed. The feed is the duty screen's lifeline and keeps
    running on a cached scope while the database is down (feed.py), so this record is the
    one that may be missing: its absence is logged as a warning instead of refusing the
    feed (docs/dashboard.md, "Audit trail")."""
    try:
        if state.pool is None or not stream.database_up:
            raise psycopg.OperationalError("the live feed knows it is down")
        async with state.pool.connection(timeout=stream.settings.db_timeout_s) as conn:
            await record(conn, Actor(user.username, user.id, address), Action.ALERT_STREAM,
                         Target("alert"))
    except (psycopg.OperationalError, PoolTimeout) as exc:
        logger.warning("audit: live feed opened by %s without a record (database "
                       "unavailable: %s)", user.username, exc)


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
    sub = await stream.subscribe(token, state, address, api_language(request))
    await _audit_start(stream, state, sub.user, address)
    logger.info("alert stream opened for %s (%d open)", sub.user.username, len(stream.hub) + 1)
    return EventStreamResponse(stream, sub, api_language(request))
