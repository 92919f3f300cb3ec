"""The live feed's route: `GET /api/v1/alerts/stream` (protocol: docs/alerts.md).

Authentication is the ordinary `Authorization: Bearer` header: the pages read the stream with
`fetch()`, so no token ever appears in a URL or an access log.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from dashboard import auth
from dashboard.deps import StateDep
from dashboard.live.feed import AlertStream
from dashboard.live.response import EventStreamResponse

logger = logging.getLogger(__name__)

router = APIRouter(tags=["alerts"])


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
