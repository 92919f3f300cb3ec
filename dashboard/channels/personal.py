"""A person's own notification channels: /me/channels (any logged-in account)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response, status
from py_vapid import Vapid02
from starlette.concurrency import run_in_threadpool

from alerts.model import ChannelKind, NotificationKind, Severity
from alerts.notify.channels.validate import check_secret
from alerts.notify.messages import Message
from alerts.notify.vapid import VAPID_KEY_NAME, vapid_from_value
from dashboard.auth import CurrentUser
from dashboard.channels import store
from dashboard.channels.models import ChannelIn, ChannelOut, ChannelPatch, channel_out
from dashboard.channels.saving import STAFF_DEFAULT_SEVERITY, created_or_updated, save_channel
from dashboard.deps import ConnDep, StateDep
from dashboard.language import api_language
from dashboard.ledger.channel_test import DELIVERED, send_test
from dashboard.ledger.models import ChannelTestOut
from dashboard.models import UserOut
from dashboard.params import IdPath
from dashboard.scope import not_found
from kernel.accounts import Role
from kernel.i18n import N_, Said, say, translate

logger = logging.getLogger(__name__)

router = APIRouter(tags=["channels"])

FAMILY_DEFAULT_SEVERITY = Severity.HIGH
FAMILY_KINDS = frozenset({ChannelKind.EMAIL, ChannelKind.WEBPUSH})


def default_severity(user: UserOut) -> Severity:
    """Family members hear only high and above unless they choose; staff hear everything."""
    return FAMILY_DEFAULT_SEVERITY if user.role is Role.FAMILY else STAFF_DEFAULT_SEVERITY


@router.get("/me/channels", response_model=list[ChannelOut])
async def list_my_channels(user: CurrentUser, conn: ConnDep) -> list[ChannelOut]:
    """Your notification channels."""
    return [channel_out(channel) for channel in await store.list_channels(conn, user.id, None)]


@router.post("/me/channels", response_model=ChannelOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": ChannelOut, "description": "Updated (same kind and "
                                                                  "target existed)"},
                        409: {"description": "Too many channels"}})
async def add_my_channel(body: ChannelIn, user: CurrentUser, conn: ConnDep,
                         response: Response) -> ChannelOut:
    """Add a channel (201), or update yours with the same kind and target (200)."""
    if user.role == Role.FAMILY and body.kind not in FAMILY_KINDS:
        # Webhooks POST residents' names and addresses to any URL: staff and sites only.
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("Family members can be notified by e-mail or on their phone "
                               "(web push); ask the care centre for other channels"))
    channel, inserted = await save_channel(conn, user, body, user_id=user.id, site_id=None,
                                   severity=default_severity(user))
    logger.info("user %s %s %s channel %s", user.username,
                "added" if inserted else "updated", body.kind, channel.id)
    created_or_updated(response, inserted)
    return channel_out(channel)


def _patch_values(kind: ChannelKind, patch: ChannelPatch) -> dict[str, object]:
    """Column -> new value for the fields a PATCH sets (422 for a secret it cannot take)."""
    sent = patch.model_fields_set
    values: dict[str, object] = {}
    if "secret" in sent:
        try:
            check_secret(kind, present=True)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                Said(N_("Invalid request: {problems}"),
                                     problems=Said(str(exc)))) from None
        values["secret"] = {"secret": patch.secret} if patch.secret else {}
    if "quiet_start" in sent:
        values["quiet_start"], values["quiet_end"] = patch.quiet_start, patch.quiet_end
    for name in ("min_severity", "timezone", "active"):
        value = getattr(patch, name)
        if value is not None:
            values[name] = value.value if isinstance(value, Severity) else value
    return values


@router.patch("/me/channels/{channel_id}", response_model=ChannelOut)
async def update_my_channel(channel_id: IdPath, body: ChannelPatch, user: CurrentUser,
                            conn: ConnDep) -> ChannelOut:
    """Change severity, quiet hours, time zone, active or signing secret of your channel."""
    kind = await store.personal_kind(conn, channel_id, user.id)
    if kind is None:
        raise not_found(N_("Channel"))
    values = _patch_values(kind, body)
    if values:
        await store.update_personal(conn, channel_id, user.id, values)
        logger.info("user %s changed channel %d (%s)", user.username, channel_id,
                    ", ".join(values))
    channel = await store.get_personal(conn, channel_id, user.id)
    if channel is None:  # deleted concurrently
        raise not_found(N_("Channel"))
    return channel_out(channel)


@router.delete("/me/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_my_channel(channel_id: IdPath, user: CurrentUser, conn: ConnDep) -> Response:
    """Remove one of your channels (404 for anyone else's)."""
    if not await store.delete_personal(conn, channel_id, user.id):
        raise not_found(N_("Channel"))
    logger.info("user %s removed channel %d", user.username, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def personal_test_message(username: str, lang: str) -> Message:
    """The test message of a personal channel: says what it is, so nobody acts on it."""
    return Message(kind=NotificationKind.ALERT, severity=Severity.INFO,
                   title=translate(N_("Test message for {username}"), lang).format(
                       username=username),
                   body=translate(N_("This is a test of your notification channel, sent from "
                                     "your settings page. No action is needed."), lang),
                   data={"test": True}, lang=lang)


async def _platform_vapid(conn: ConnDep) -> Vapid02 | None:
    """The platform's VAPID signer if it exists (a push subscription implies it does)."""
    cur = await conn.execute("SELECT value FROM platform_keys WHERE name = %s",
                             (VAPID_KEY_NAME,))
    row = await cur.fetchone()
    return vapid_from_value(str(row[0])) if row else None


@router.post("/me/channels/{channel_id}/test", response_model=ChannelTestOut,
             responses={404: {"description": "No such channel of yours"}})
async def test_my_channel(channel_id: IdPath, user: CurrentUser, conn: ConnDep,
                          state: StateDep, request: Request) -> ChannelTestOut:
    """Send a test message through one of your channels now, with the sender the platform
    uses for alerts; `sent` says whether the receiver accepted it, `detail` why not."""
    cur = await conn.execute("SELECT c.kind, c.target, c.secret, u.language "
                             "FROM notification_channels c JOIN users u ON u.id = c.user_id "
                             "WHERE c.id = %s AND c.user_id = %s", (channel_id, user.id))
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Channel"))
    kind, target, secret = ChannelKind(row[0]), str(row[1] or ""), dict(row[2] or {})
    vapid = await _platform_vapid(conn) if kind is ChannelKind.WEBPUSH else None
    message = personal_test_message(user.username, str(row[3]))
    failure = await run_in_threadpool(send_test, state.notify, kind, target, secret, message,
                                      vapid)
    logger.info("user %s tested channel %d: %s", user.username, channel_id, failure or "sent")
    return ChannelTestOut(channel_id=channel_id, sent=failure is None,
                          detail=say(failure or DELIVERED, api_language(request)))
