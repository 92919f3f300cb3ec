"""What both owners' channel routes share: saving a channel from a request, answering 409
when the store refuses it and 201 or 200 for a new or an updated channel."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Response, status

from alerts.model import Severity
from dashboard.channels import store
from dashboard.channels.models import ChannelIn
from dashboard.deps import AsyncConn
from dashboard.errors import words_of
from dashboard.models import UserOut

logger = logging.getLogger(__name__)

STAFF_DEFAULT_SEVERITY = Severity.INFO


async def save_channel(conn: AsyncConn, user: UserOut, body: ChannelIn, *,
                       user_id: int | None, site_id: str | None, severity: Severity
                       ) -> tuple[store.StoredChannel, bool]:
    """Create or update the channel for its owner (a person or a site); 409 when refused.

    Without a time zone in `body`, the channel takes the site's (or the person's resident's).
    """
    new = store.NewChannel(
        user_id=user_id, site_id=site_id, kind=body.kind, target=body.stored_target(),
        secret=body.stored_secret(), min_severity=body.min_severity or severity,
        quiet_start=body.quiet_start, quiet_end=body.quiet_end,
        timezone=body.timezone or await store.default_timezone(
            conn, site_id or user.site_id, user.id),
        active=body.active)
    try:
        return await store.save(conn, new)
    except store.EndpointTakenError as exc:
        logger.warning("user %s presented a push endpoint that another account registered; "
                       "refused", user.username)
        raise HTTPException(status.HTTP_409_CONFLICT, words_of(exc)) from None
    except store.ChannelConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, words_of(exc)) from None


def created_or_updated(response: Response, inserted: bool) -> None:
    """201 for a new channel, 200 for an existing one that was updated."""
    response.status_code = status.HTTP_201_CREATED if inserted else status.HTTP_200_OK
