"""Notification channels: a person's own (/me/channels) and a site's group chats.

Secrets (Web Push keys, robot signing secrets) are stored in `notification_channels.secret`
and never returned; robot URLs are returned with their query values masked, since the
`key=` / `access_token=` in a WeCom or DingTalk robot URL is itself a credential.

Stored `secret` shapes (read by the notification dispatcher):
- webpush: `{"p256dh": "<base64url>", "auth": "<base64url>"}` (target = push endpoint)
- dingtalk or webhook with signing: `{"secret": "..."}` (DingTalk's SEC... secret, or the
  key of the webhook's HMAC-SHA256 signature)
- everything else: `{}`
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Mapping
from datetime import datetime, time
from typing import Annotated, ClassVar
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerts.model import ChannelKind, Severity
from alerts.notify.channels.guard import url_shape_problem
from dashboard.api import SITE_REGEX, IdPath
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep
from dashboard.models import KeyText, SecretText, UrlText, UserOut, ZoneText
from dashboard.scope import ScopeDep, not_found
from kernel.accounts import Role
from kernel.sites import is_valid_timezone

logger = logging.getLogger(__name__)

router = APIRouter(tags=["channels"])

ROBOT_KINDS = (ChannelKind.WEBHOOK, ChannelKind.WECOM, ChannelKind.DINGTALK)
PERSONAL_KINDS = (ChannelKind.WEBPUSH, ChannelKind.EMAIL, *ROBOT_KINDS)
SITE_KINDS = ROBOT_KINDS
SIGNED_KINDS = (ChannelKind.DINGTALK, ChannelKind.WEBHOOK)
UNSIGNED_KIND_ERROR = "only dingtalk and webhook channels take a signing secret"
MAX_CHANNELS = 20  # per person or per site
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
FAMILY_DEFAULT_SEVERITY = Severity.HIGH
STAFF_DEFAULT_SEVERITY = Severity.INFO
P256DH_BYTES = 65  # uncompressed P-256 point
AUTH_BYTES = 16

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


# --- field checks (ValueError messages become readable 422 details) -----------------------


def parse_hhmm(value: object) -> time:
    """A local time of day from "HH:MM" (24-hour)."""
    if isinstance(value, time):
        return value
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("use a 24-hour time HH:MM, e.g. 22:00")
    return time(int(match.group(1)), int(match.group(2)))


def check_timezone(name: str) -> str:
    """An IANA time zone name that zoneinfo knows."""
    if len(name) > 64 or not is_valid_timezone(name):
        raise ValueError(f"unknown time zone {name[:64]!r}; use an IANA name such as "
                         "Europe/Oslo or Asia/Shanghai")
    return name


def check_email(value: str) -> str:
    """An e-mail address (shape only; delivery proves the rest)."""
    address = value.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise ValueError("not a valid e-mail address, e.g. name@example.com")
    return address


def check_url(value: str) -> str:
    """An https:// URL (http:// only for localhost, for tests) without credentials."""
    url = value.strip()
    shape = url_shape_problem(url)
    if shape is not None:
        raise ValueError(f"the URL {shape}")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if not host:
        raise ValueError("must be a full URL such as https://example.com/hook")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOCAL_HOSTS):
        return url
    raise ValueError("must start with https:// (http:// is allowed only for localhost)")


def _key(value: str, size: int, name: str) -> str:
    """A base64url-encoded key of `size` bytes."""
    if not _B64URL.match(value):
        raise ValueError(f"{name} must be base64url-encoded")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} must be base64url-encoded") from None
    if len(raw) != size:
        raise ValueError(f"{name} must encode {size} bytes (got {len(raw)})")
    return value


QuietTime = Annotated[time, BeforeValidator(parse_hhmm),
                      Field(description="Local time HH:MM (24-hour).")]
TimezoneName = Annotated[ZoneText, AfterValidator(check_timezone),
                         Field(description="IANA time zone of the quiet hours.")]
# Texts are typed in dashboard.models (lengths, no NUL or control characters); the shape
# checks here then run on text that is known to be clean.
TargetText = UrlText


# --- request and response models ----------------------------------------------------------


class PushKeysIn(BaseModel):
    """The `keys` of a browser PushSubscription."""

    p256dh: KeyText
    auth: KeyText

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, value: str) -> str:
        return _key(value, P256DH_BYTES, "p256dh")

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str) -> str:
        return _key(value, AUTH_BYTES, "auth")


class PushSubscriptionIn(BaseModel):
    """A browser PushSubscription as JSON (`subscription.toJSON()`); other fields ignored."""

    endpoint: Annotated[TargetText, AfterValidator(check_url)]
    keys: PushKeysIn


def _kind_of(info: ValidationInfo) -> ChannelKind | None:
    kind = info.data.get("kind")
    return kind if isinstance(kind, ChannelKind) else None


class ChannelIn(BaseModel):
    """A channel to create, or to update when (kind, target) already exists."""

    model_config = ConfigDict(extra="forbid")
    allowed_kinds: ClassVar[tuple[ChannelKind, ...]] = PERSONAL_KINDS

    kind: ChannelKind
    subscription: PushSubscriptionIn | None = Field(
        default=None, validate_default=True,
        description="webpush only: the browser's PushSubscription JSON.")
    target: TargetText | None = Field(
        default=None, validate_default=True,
        description="email: the address; webhook/wecom/dingtalk: the https:// URL.")
    secret: SecretText | None = Field(default=None, validate_default=True,
                                      description="dingtalk/webhook only: signing secret.")
    min_severity: Severity | None = Field(
        default=None, description="Default: high for family members, info for staff.")
    quiet_start: QuietTime | None = None
    quiet_end: QuietTime | None = Field(default=None, validate_default=True)
    timezone: TimezoneName | None = Field(
        default=None, description="Default: the time zone of your site (or your resident's).")
    active: bool = True

    @field_validator("kind", mode="before")
    @classmethod
    def _allowed_kind(cls, value: object) -> object:
        if value not in cls.allowed_kinds:
            raise ValueError("choose one of " + ", ".join(cls.allowed_kinds))
        return value

    @field_validator("subscription")
    @classmethod
    def _subscription(cls, value: PushSubscriptionIn | None, info: ValidationInfo
                      ) -> PushSubscriptionIn | None:
        kind = _kind_of(info)
        if kind is ChannelKind.WEBPUSH and value is None:
            raise ValueError("a webpush channel needs the browser's PushSubscription "
                             "JSON ({endpoint, keys: {p256dh, auth}})")
        if kind not in (None, ChannelKind.WEBPUSH) and value is not None:
            raise ValueError("only webpush channels take a subscription")
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = _kind_of(info)
        if kind is None:
            return value
        if kind is ChannelKind.WEBPUSH:
            if value is not None:
                raise ValueError("leave empty for webpush: the subscription's endpoint is used")
            return None
        if value is None or not value.strip():
            what = "an e-mail address" if kind is ChannelKind.EMAIL else "an https:// URL"
            raise ValueError(f"a {kind} channel needs {what}")
        return check_email(value) if kind is ChannelKind.EMAIL else check_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = _kind_of(info)
        if value is not None and kind is not None and kind not in SIGNED_KINDS:
            raise ValueError(UNSIGNED_KIND_ERROR)
        return value

    @field_validator("quiet_end")
    @classmethod
    def _quiet_pair(cls, value: time | None, info: ValidationInfo) -> time | None:
        if "quiet_start" not in info.data:  # quiet_start itself was invalid
            return value
        check_quiet_hours(info.data["quiet_start"], value)
        return value

    def stored_target(self) -> str:
        """What goes into notification_channels.target."""
        if self.subscription is not None:
            return self.subscription.endpoint
        assert self.target is not None  # guaranteed by validation
        return self.target

    def stored_secret(self) -> dict[str, str]:
        """What goes into notification_channels.secret."""
        if self.subscription is not None:
            return {"p256dh": self.subscription.keys.p256dh,
                    "auth": self.subscription.keys.auth}
        return {"secret": self.secret} if self.secret is not None else {}


class SiteChannelIn(ChannelIn):
    """A site's group-chat robot (webhook, wecom or dingtalk)."""

    allowed_kinds: ClassVar[tuple[ChannelKind, ...]] = SITE_KINDS


def check_quiet_hours(start: time | None, end: time | None) -> None:
    """Quiet hours need both ends (or neither), and they must differ."""
    if (start is None) != (end is None):
        raise ValueError("quiet hours need both quiet_start and quiet_end (HH:MM), or neither")
    if start is not None and start == end:
        raise ValueError("quiet_start and quiet_end must differ")


class ChannelPatch(BaseModel):
    """Changes to one of your channels; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    min_severity: Severity | None = None
    quiet_start: QuietTime | None = Field(
        default=None, description="Set together with quiet_end; both null turns quiet "
                                  "hours off.")
    quiet_end: QuietTime | None = None
    timezone: TimezoneName | None = None
    active: bool | None = None
    secret: SecretText | None = Field(default=None,
                                      description="dingtalk/webhook only; null removes it.")

    @model_validator(mode="after")
    def _quiet_together(self) -> ChannelPatch:
        sent = {"quiet_start", "quiet_end"} & self.model_fields_set
        if len(sent) == 1:
            raise ValueError("send quiet_start and quiet_end together (both HH:MM, or both "
                             "null to turn quiet hours off)")
        if sent:
            check_quiet_hours(self.quiet_start, self.quiet_end)
        return self


class ChannelOut(BaseModel):
    """A channel as shown to its owner: secrets are never included."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: ChannelKind
    target: str = Field(description="Push endpoint, e-mail address or URL; query values "
                                    "of robot URLs are masked.")
    has_secret: bool = Field(description="Whether keys or a signing secret are stored.")
    min_severity: Severity
    quiet_start: str | None = Field(description="HH:MM local time, or null.")
    quiet_end: str | None
    timezone: str
    active: bool
    created_at: datetime


class SiteChannelOut(ChannelOut):
    """A site's group-chat channel."""

    site_id: str


# --- storage ----------------------------------------------------------------------------

_COLUMNS = ("id, site_id, kind, target, secret <> jsonb_build_object(), min_severity, "
            "quiet_start, quiet_end, timezone, active, created_at")

_LIST = f"SELECT {_COLUMNS} FROM notification_channels WHERE {{owner}} ORDER BY id"

_UPSERT = f"""
INSERT INTO notification_channels AS c (user_id, site_id, kind, target, secret, min_severity,
                                        quiet_start, quiet_end, timezone, active)
VALUES (%(user_id)s, %(site_id)s, %(kind)s, %(target)s, %(secret)s, %(min_severity)s,
        %(quiet_start)s, %(quiet_end)s, %(timezone)s, %(active)s)
ON CONFLICT ((COALESCE(user_id, 0)), (COALESCE(site_id, '')), kind, target) DO UPDATE SET
    secret = EXCLUDED.secret, min_severity = EXCLUDED.min_severity,
    quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end,
    timezone = EXCLUDED.timezone, active = EXCLUDED.active
RETURNING {_COLUMNS}, (xmax = 0)
"""

_OTHERS = """
SELECT count(*) FROM notification_channels
WHERE {owner} AND NOT (kind = %(kind)s AND target = %(target)s)
"""

# A push endpoint is the secret address of one browser's subscription, so it belongs to the
# account that registered it first. Anyone else presenting it is refused (409) and nothing of
# the owner's changes: knowing an endpoint must not let an account silence or take over another
# person's alerts. A phone that changes hands gets a fresh endpoint instead (the phone page
# unsubscribes and subscribes again on this 409), and the old owner's endpoint then expires at
# the push service. The lock serializes registrations of one endpoint without a schema change.
_LOCK_ENDPOINT = "SELECT pg_advisory_xact_lock(hashtextextended(%(target)s, 0))"

_ENDPOINT_TAKEN = """
SELECT 1 FROM notification_channels
WHERE kind = 'webpush' AND target = %(target)s AND user_id IS DISTINCT FROM %(user_id)s
LIMIT 1
"""

ENDPOINT_TAKEN = ("Another account has registered this browser's push subscription; "
                  "unsubscribe and subscribe again in this browser for a new one (the phone "
                  "page does this by itself)")

_DEFAULT_TZ = """
SELECT COALESCE(
    (SELECT timezone FROM sites WHERE id = %(site)s),
    (SELECT s.timezone FROM family_contacts f JOIN residents r ON r.id = f.resident_id
     JOIN sites s ON s.id = r.site_id WHERE f.user_id = %(user)s ORDER BY r.id LIMIT 1),
    'UTC')
"""

Row = tuple[object, ...]


def _hhmm(value: object) -> str | None:
    return value.strftime("%H:%M") if isinstance(value, time) else None


def mask_target(kind: ChannelKind, target: str) -> str:
    """The target for display: query values of robot URLs reduced to their last 4 chars."""
    if kind not in ROBOT_KINDS:
        return target
    parts = urlsplit(target)
    if not parts.query:
        return target
    masked = "&".join(f"{name}=***{value[-4:] if len(value) > 12 else ''}"
                      for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return parts._replace(query=masked, fragment="").geturl()


def _fields(row: Row) -> dict[str, object]:
    """A channel row (`_COLUMNS`) as response fields, with the target masked."""
    cid, site_id, kind, target, has_secret, severity, qs, qe, tz, active, created = row[:11]
    channel_kind = ChannelKind(str(kind))
    return {"id": cid, "site_id": site_id, "kind": channel_kind,
            "target": mask_target(channel_kind, str(target)), "has_secret": has_secret,
            "min_severity": severity, "quiet_start": _hhmm(qs), "quiet_end": _hhmm(qe),
            "timezone": tz, "active": active, "created_at": created}


def _channel(row: Row) -> ChannelOut:
    """A personal channel row as its response model."""
    fields = _fields(row)
    del fields["site_id"]
    return ChannelOut.model_validate(fields)


def _site_channel(row: Row) -> SiteChannelOut:
    """A site channel row as its response model."""
    return SiteChannelOut.model_validate(_fields(row))


def _owner(user_id: int | None, site_id: str | None) -> tuple[sql.Composable, dict[str, object]]:
    """The WHERE condition selecting one owner's channels."""
    if user_id is not None:
        return sql.SQL("user_id = %(owner_user)s"), {"owner_user": user_id}
    return sql.SQL("site_id = %(owner_site)s"), {"owner_site": site_id}


async def _list(conn: AsyncConn, user_id: int | None, site_id: str | None) -> list[Row]:
    owner, params = _owner(user_id, site_id)
    cur = await conn.execute(sql.SQL(_LIST).format(owner=owner), params)
    return await cur.fetchall()


async def _default_timezone(conn: AsyncConn, user: UserOut, site_id: str | None) -> str:
    cur = await conn.execute(_DEFAULT_TZ, {"site": site_id or user.site_id, "user": user.id})
    row = await cur.fetchone()
    return str(row[0]) if row else "UTC"


async def _check_room(conn: AsyncConn, body: ChannelIn, user_id: int | None,
                      site_id: str | None) -> None:
    """409 when the owner already has MAX_CHANNELS other channels."""
    owner, params = _owner(user_id, site_id)
    cur = await conn.execute(sql.SQL(_OTHERS).format(owner=owner),
                             {**params, "kind": body.kind.value, "target": body.stored_target()})
    row = await cur.fetchone()
    if row is not None and int(row[0]) >= MAX_CHANNELS:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"At most {MAX_CHANNELS} notification channels; remove one first")


async def _upsert(conn: AsyncConn, user: UserOut, body: ChannelIn, *, user_id: int | None,
                  site_id: str | None, default_severity: Severity) -> tuple[Row, bool]:
    """Create or update (same kind and target) a channel; returns the row and if it is new."""
    await _check_room(conn, body, user_id, site_id)
    params = {
        "user_id": user_id, "site_id": site_id, "kind": body.kind.value,
        "target": body.stored_target(), "secret": Jsonb(body.stored_secret()),
        "min_severity": (body.min_severity or default_severity).value,
        "quiet_start": body.quiet_start, "quiet_end": body.quiet_end,
        "timezone": body.timezone or await _default_timezone(conn, user, site_id),
        "active": body.active,
    }
    async with conn.transaction():
        if body.kind is ChannelKind.WEBPUSH:
            await _claim_endpoint(conn, user, params)
        cur = await conn.execute(_UPSERT, params)
        row = await cur.fetchone()
    assert row is not None
    return row, bool(row[11])


async def _claim_endpoint(conn: AsyncConn, user: UserOut, params: Mapping[str, object]
                          ) -> None:
    """409 when another account owns this push endpoint (call inside the transaction)."""
    await conn.execute(_LOCK_ENDPOINT, params)
    cur = await conn.execute(_ENDPOINT_TAKEN, params)
    if await cur.fetchone() is not None:
        logger.warning("user %s presented a push endpoint that another account registered; "
                       "refused", user.username)
        raise HTTPException(status.HTTP_409_CONFLICT, ENDPOINT_TAKEN)


def _created_or_updated(response: Response, inserted: bool) -> None:
    response.status_code = status.HTTP_201_CREATED if inserted else status.HTTP_200_OK


# --- a person's own channels ------------------------------------------------------------


def default_severity(user: UserOut) -> Severity:
    """Family members hear only high and above unless they choose; staff hear everything."""
    return FAMILY_DEFAULT_SEVERITY if user.role is Role.FAMILY else STAFF_DEFAULT_SEVERITY


@router.get("/me/channels", response_model=list[ChannelOut])
async def list_my_channels(user: CurrentUser, conn: ConnDep) -> list[ChannelOut]:
    """Your notification channels."""
    return [_channel(row) for row in await _list(conn, user.id, None)]


FAMILY_KINDS = frozenset({ChannelKind.EMAIL, ChannelKind.WEBPUSH})


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
                            "Family members can be notified by e-mail or on their phone "
                            "(web push); ask the care centre for other channels")
    row, inserted = await _upsert(conn, user, body, user_id=user.id, site_id=None,
                                  default_severity=default_severity(user))
    logger.info("user %s %s %s channel %s", user.username,
                "added" if inserted else "updated", body.kind, row[0])
    _created_or_updated(response, inserted)
    return _channel(row)


async def _my_channel_kind(conn: AsyncConn, user: UserOut, channel_id: int) -> ChannelKind:
    """The kind of one of the caller's channels; 404 for anyone else's."""
    cur = await conn.execute(
        "SELECT kind FROM notification_channels WHERE id = %s AND user_id = %s",
        (channel_id, user.id))
    row = await cur.fetchone()
    if row is None:
        raise not_found("Channel")
    return ChannelKind(str(row[0]))


def _patch_assignments(kind: ChannelKind, patch: ChannelPatch) -> dict[str, object]:
    """Column -> new value for the fields a PATCH sets."""
    sent = patch.model_fields_set
    values: dict[str, object] = {}
    if "secret" in sent:
        if kind not in SIGNED_KINDS:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"Invalid request: {UNSIGNED_KIND_ERROR}")
        values["secret"] = Jsonb({"secret": patch.secret} if patch.secret else {})
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
    kind = await _my_channel_kind(conn, user, channel_id)
    values = _patch_assignments(kind, body)
    if values:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %({})s").format(sql.Identifier(name), sql.SQL(name))
            for name in values)
        await conn.execute(
            sql.SQL("UPDATE notification_channels SET {} "
                    "WHERE id = %(id)s AND user_id = %(user_id)s").format(assignments),
            {**values, "id": channel_id, "user_id": user.id})
        logger.info("user %s changed channel %d (%s)", user.username, channel_id,
                    ", ".join(values))
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM notification_channels WHERE id = %s AND user_id = %s",
        (channel_id, user.id))
    row = await cur.fetchone()
    if row is None:  # deleted concurrently
        raise not_found("Channel")
    return _channel(row)


@router.delete("/me/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_my_channel(channel_id: IdPath, user: CurrentUser, conn: ConnDep) -> Response:
    """Remove one of your channels (404 for anyone else's)."""
    cur = await conn.execute(
        "DELETE FROM notification_channels WHERE id = %s AND user_id = %s", (channel_id, user.id))
    if not cur.rowcount:
        raise not_found("Channel")
    logger.info("user %s removed channel %d", user.username, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- a site's group channels ------------------------------------------------------------

SitePath = Annotated[str, Path(pattern=SITE_REGEX, description="Site id.")]


async def managed_site(site: SitePath, scope: ScopeDep, conn: ConnDep) -> str:
    """Dependency: the site in the path, if the caller is an admin or its duty officer."""
    role = scope.user.role
    if role not in (Role.ADMIN, Role.DUTY_OFFICER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only an administrator or the site's "
                                                       "duty officer can manage site channels")
    scope.check_site(site)  # 403 for another site's duty officer
    cur = await conn.execute("SELECT 1 FROM sites WHERE id = %s", (site,))
    if await cur.fetchone() is None:
        raise not_found("Site")
    return site


ManagedSite = Annotated[str, Depends(managed_site)]


@router.get("/sites/{site}/channels", response_model=list[SiteChannelOut])
async def list_site_channels(site: ManagedSite, conn: ConnDep) -> list[SiteChannelOut]:
    """The site's group-chat channels (admin or the site's duty officer)."""
    return [_site_channel(row) for row in await _list(conn, None, site)]


@router.post("/sites/{site}/channels", response_model=SiteChannelOut,
             status_code=status.HTTP_201_CREATED,
             responses={200: {"model": SiteChannelOut, "description": "Updated"}})
async def add_site_channel(body: SiteChannelIn, site: ManagedSite, scope: ScopeDep,
                           conn: ConnDep, response: Response) -> SiteChannelOut:
    """Add a webhook/wecom/dingtalk robot for the site (201), or update it (200)."""
    row, inserted = await _upsert(conn, scope.user, body, user_id=None, site_id=site,
                                  default_severity=STAFF_DEFAULT_SEVERITY)
    logger.info("user %s %s %s channel %s of site %s", scope.user.username,
                "added" if inserted else "updated", body.kind, row[0], site)
    _created_or_updated(response, inserted)
    return _site_channel(row)


@router.delete("/sites/{site}/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_site_channel(channel_id: IdPath, site: ManagedSite, scope: ScopeDep,
                              conn: ConnDep) -> Response:
    """Remove one of the site's channels."""
    cur = await conn.execute(
        "DELETE FROM notification_channels WHERE id = %s AND site_id = %s", (channel_id, site))
    if not cur.rowcount:
        raise not_found("Channel")
    logger.info("user %s removed channel %d of site %s", scope.user.username, channel_id, site)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
