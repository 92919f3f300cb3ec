"""GET /sites/{site}/notifications: what each recipient was sent, for an administrator or the
site's duty officer ("Sent notifications", /admin/notifications).

Read from the platform's own records (notification_outbox: the rendered message, who it was
for, the channel, the attempts and the result), not from any receiver, so the page works the
same in production as in the demo, whose local receivers only prove the messages left. A
notification belongs to a site when its alert does, or when it went to the site's group
channel; device commands (kind 'command') are not notifications and are left out.

Robot keys are credentials: a WeCom/DingTalk target is shown masked, as on the channel list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from alerts.model import ChannelKind, DeliveryStatus, NotificationKind
from alerts.notify.channels.validate import ROBOT_KINDS
from dashboard.channels.models import mask_target
from dashboard.channels.site import ManagedSite
from dashboard.deps import ConnDep, StateDep
from dashboard.language import api_language
from kernel.i18n import N_, translate

router = APIRouter(tags=["channels"])

MAX_ROWS = 500

_SQL = """
SELECT o.id, o.created_at, o.sent_at, o.alert_id, o.kind, o.channel, o.target, o.payload,
       o.status, o.attempts, o.last_error, o.user_id, u.username, u.full_name, u.role,
       COALESCE(u.language, 'en') AS language, c.site_id AS group_site
FROM notification_outbox o
LEFT JOIN alerts a ON a.id = o.alert_id
LEFT JOIN notification_channels c ON c.id = o.channel_id
LEFT JOIN users u ON u.id = o.user_id
WHERE o.kind <> 'command' AND (a.site_id = %(site)s OR c.site_id = %(site)s)
  AND (%(before)s::bigint IS NULL OR o.id < %(before)s)
ORDER BY o.id DESC
LIMIT %(limit)s
"""


class SentNotificationOut(BaseModel):
    """One notification to one recipient on one channel, and how delivering it went."""

    id: int
    created_at: datetime = Field(description="When it was queued.")
    sent_at: datetime | None = Field(description="When the receiver accepted it.")
    alert_id: int | None
    kind: NotificationKind
    channel: ChannelKind
    target: str = Field(description="Where it went (robot keys masked).")
    recipient: str = Field(description="The person's name, or the site's group.")
    recipient_username: str | None = Field(description="null for a site's group channel.")
    recipient_role: str | None
    language: str = Field(description="The language it was written in.")
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    title: str
    body: str


class SentNotificationsOut(BaseModel):
    """A site's notifications, newest first, with the zone its times are shown in."""

    site: str
    site_timezone: str
    notifications: list[SentNotificationOut]
    demo_inbox_url: str | None = Field(
        default=None, description="In the demo only: what its local receivers got.")


def shown_target(kind: ChannelKind, target: str) -> str:
    """The target for display: a robot's key (bare, or in its URL) masked."""
    if kind in ROBOT_KINDS and kind is not ChannelKind.WEBHOOK and "://" not in target:
        return f"***{target[-4:]}" if len(target) > 12 else "***"
    return mask_target(kind, target)


def sent_out(row: dict[str, Any], site: str, lang: str) -> SentNotificationOut:
    """One outbox row as the page shows it (a group channel named in `lang`)."""
    payload = row["payload"] or {}
    kind = ChannelKind(row["channel"])
    person = row["full_name"] or row["username"]
    return SentNotificationOut(
        id=row["id"], created_at=row["created_at"], sent_at=row["sent_at"],
        alert_id=row["alert_id"], kind=NotificationKind(row["kind"]), channel=kind,
        target=shown_target(kind, str(row["target"])),
        recipient=person or translate(N_("Group channel of site {site}"), lang).format(
            site=row["group_site"] or site),
        recipient_username=row["username"], recipient_role=row["role"],
        language=row["language"],
        status=DeliveryStatus.of(row["status"], int(row["attempts"])),
        attempts=row["attempts"], last_error=row["last_error"],
        title=str(payload.get("title", "")), body=str(payload.get("body", "")))


@router.get("/sites/{site}/notifications", response_model=SentNotificationsOut)
async def list_sent_notifications(
        site: ManagedSite, conn: ConnDep, state: StateDep, request: Request,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS, description="At most this many.")] = 200,
        before: Annotated[int | None, Query(ge=1, description="Only those older than this id "
                                                              "(the next page).")] = None,
) -> SentNotificationsOut:
    """What each recipient of the site was sent: recipient, channel, time, delivery status and
    the text (admin or the site's duty officer), newest first."""
    cur = await conn.execute("SELECT timezone FROM sites WHERE id = %s", (site,))
    tz_row = await cur.fetchone()
    async with conn.cursor(row_factory=dict_row) as rows_cur:
        await rows_cur.execute(_SQL, {"site": site, "before": before, "limit": limit})
        rows = await rows_cur.fetchall()
    return SentNotificationsOut(site=site, site_timezone=str(tz_row[0]) if tz_row else "UTC",
                                notifications=[sent_out(row, site, api_language(request))
                                               for row in rows],
                                demo_inbox_url=state.notify.demo_inbox_url)
