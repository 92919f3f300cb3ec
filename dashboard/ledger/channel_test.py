"""POST /sites/{site}/channels/{id}/test: send a test message through a site's group channel,
with the real sender the dispatcher uses (alerts.notify.channels), so "it works" means the
robot or webhook really answered.

The result is the answer (200 with `sent` true or false and the reason), not a queued
notification: an administrator setting up a channel wants to know now."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from py_vapid import Vapid02
from starlette.concurrency import run_in_threadpool

from alerts.model import ChannelKind, NotificationKind, Severity
from alerts.notify.channels import ChannelSenders, SendError
from alerts.notify.messages import Message
from alerts.notify.settings import NotifySettings
from dashboard.channels.site import ManagedSite
from dashboard.deps import ConnDep, StateDep
from dashboard.language import api_language
from dashboard.ledger.models import ChannelTestOut
from dashboard.params import IdPath
from dashboard.scope import ScopeDep, not_found
from kernel.i18n import DEFAULT_LANGUAGE, N_, Said, say, translate

logger = logging.getLogger(__name__)

router = APIRouter(tags=["channels"])


DELIVERED = N_("The test message was delivered")


def channel_test_message(site: str, username: str, lang: str = DEFAULT_LANGUAGE) -> Message:
    """The test message: says what it is, so nobody in the group acts on it (in the
    language the group's alerts come in: its site's, sites.language)."""
    return Message(kind=NotificationKind.ALERT, severity=Severity.INFO,
                   title=translate(N_("Test message for site {site}"), lang).format(site=site),
                   body=translate(N_("This is a test of the group channel of site {site}, sent "
                                     "by {username} from the administration page. No action "
                                     "is needed."), lang).format(site=site, username=username),
                   data={"site": site, "test": True}, lang=lang)


def send_test(settings: NotifySettings, kind: ChannelKind, target: str,
              secret: dict[str, Any], message: Message, vapid: Vapid02 | None = None
              ) -> str | None:
    """Send `message` through one channel; None when delivered, else the reason (web push
    needs the platform's VAPID signer)."""
    senders = ChannelSenders(settings, vapid=vapid)
    try:
        sender = senders.senders.get(kind)
        if sender is None:
            return Said(N_("{kind} channels cannot be tested from the web app"), kind=kind.value)
        sender.send(target, secret, message)
        return None
    except SendError as exc:
        return str(exc)
    finally:
        senders.close()


@router.post("/sites/{site}/channels/{channel_id}/test", response_model=ChannelTestOut,
             responses={404: {"description": "No such channel at this site"}})
async def test_site_channel(channel_id: IdPath, site: ManagedSite, scope: ScopeDep,
                            conn: ConnDep, state: StateDep, request: Request) -> ChannelTestOut:
    """Send a test message through one of the site's channels now (admin or the site's
    duty officer); `sent` says whether the receiver accepted it, `detail` why not."""
    cur = await conn.execute("SELECT c.kind, c.target, c.secret, s.language "
                             "FROM notification_channels c JOIN sites s ON s.id = c.site_id "
                             "WHERE c.id = %s AND c.site_id = %s", (channel_id, site))
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Channel"))
    kind, target, secret = ChannelKind(row[0]), str(row[1] or ""), dict(row[2] or {})
    # The group reads it in the language its alerts come in (the site's), not the tester's.
    message = channel_test_message(site, scope.user.username, str(row[3]))
    failure = await run_in_threadpool(send_test, state.notify, kind, target, secret, message)
    logger.info("user %s tested channel %d of site %s: %s", scope.user.username, channel_id,
                site, failure or "sent")
    return ChannelTestOut(channel_id=channel_id, sent=failure is None,
                          detail=say(failure or DELIVERED, api_language(request)))
