"""Request and response models of the channel routes.

The checks themselves are `alerts.notify.channels.validate`; the models apply them field by
field so that each problem becomes a readable 422 detail naming its field.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, ClassVar
from urllib.parse import parse_qsl, urlsplit

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
from alerts.notify.channels.validate import (
    AUTH_BYTES,
    P256DH_BYTES,
    PERSONAL_KINDS,
    ROBOT_KINDS,
    SITE_KINDS,
    check_kind,
    check_push_key,
    check_quiet_hours,
    check_secret,
    check_subscription,
    check_target,
    check_timezone,
    check_url,
    parse_hhmm,
)
from dashboard.channels.store import StoredChannel
from dashboard.models import KeyText, SecretText, UrlText, ZoneText
from kernel.i18n import N_

QuietTime = Annotated[time, BeforeValidator(parse_hhmm),
                      Field(description="Local time HH:MM (24-hour).")]
TimezoneName = Annotated[ZoneText, AfterValidator(check_timezone),
                         Field(description="IANA time zone of the quiet hours.")]
# Texts are typed in dashboard.models (lengths, no NUL or control characters); the shape
# checks then run on text that is known to be clean.
TargetText = UrlText


class PushKeysIn(BaseModel):
    """The `keys` of a browser PushSubscription."""

    p256dh: KeyText
    auth: KeyText

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, value: str) -> str:
        return check_push_key(value, P256DH_BYTES, "p256dh")

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str) -> str:
        return check_push_key(value, AUTH_BYTES, "auth")


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
        return check_kind(value, cls.allowed_kinds)

    @field_validator("subscription")
    @classmethod
    def _subscription(cls, value: PushSubscriptionIn | None, info: ValidationInfo
                      ) -> PushSubscriptionIn | None:
        check_subscription(_kind_of(info), value is not None)
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_target(_kind_of(info), value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        check_secret(_kind_of(info), value is not None)
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
            raise ValueError(N_("send quiet_start and quiet_end together (both HH:MM, or both "
                             "null to turn quiet hours off)"))
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


def _hhmm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if isinstance(value, time) else None


def _fields(channel: StoredChannel) -> dict[str, object]:
    """A stored channel as response fields, with the target masked."""
    return {"id": channel.id, "site_id": channel.site_id, "kind": channel.kind,
            "target": mask_target(channel.kind, channel.target),
            "has_secret": channel.has_secret, "min_severity": channel.min_severity,
            "quiet_start": _hhmm(channel.quiet_start), "quiet_end": _hhmm(channel.quiet_end),
            "timezone": channel.timezone, "active": channel.active,
            "created_at": channel.created_at}


def channel_out(channel: StoredChannel) -> ChannelOut:
    """A personal channel as its response model."""
    fields = _fields(channel)
    del fields["site_id"]
    return ChannelOut.model_validate(fields)


def site_channel_out(channel: StoredChannel) -> SiteChannelOut:
    """A site channel as its response model."""
    return SiteChannelOut.model_validate(_fields(channel))
