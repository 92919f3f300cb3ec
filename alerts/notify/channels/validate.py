"""What a notification channel may be set to: which kinds each owner may add, the shape of each
kind's target (e-mail address, https:// URL, push subscription keys) and secret, quiet hours and
their time zone.

This is where a channel is checked when it is saved, next to `guard`, which checks the URL's
addresses again when a message is sent. Every check raises ValueError with a sentence meant
for the person filling in the form (the dashboard turns it into a readable 422 detail); the
checks are pure and know nothing about HTTP or the database.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import time
from urllib.parse import urlsplit

from alerts.model import ChannelKind
from alerts.notify.channels.guard import url_shape_problem
from kernel.i18n import N_, Said
from kernel.sites import is_valid_timezone

ROBOT_KINDS = (ChannelKind.WEBHOOK, ChannelKind.WECOM, ChannelKind.DINGTALK)
PERSONAL_KINDS = (ChannelKind.WEBPUSH, ChannelKind.EMAIL, *ROBOT_KINDS)
SITE_KINDS = ROBOT_KINDS
SIGNED_KINDS = (ChannelKind.DINGTALK, ChannelKind.WEBHOOK)
UNSIGNED_KIND_ERROR = "only dingtalk and webhook channels take a signing secret"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
P256DH_BYTES = 65  # uncompressed P-256 point
AUTH_BYTES = 16

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


# --- single values ------------------------------------------------------------------------


def parse_hhmm(value: object) -> time:
    """A local time of day from "HH:MM" (24-hour)."""
    if isinstance(value, time):
        return value
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(N_("use a 24-hour time HH:MM, e.g. 22:00"))
    return time(int(match.group(1)), int(match.group(2)))


def check_timezone(name: str) -> str:
    """An IANA time zone name that zoneinfo knows."""
    if len(name) > 64 or not is_valid_timezone(name):
        raise ValueError(Said(N_("unknown time zone {name!r}; use an IANA name such as "
                                 "Europe/Oslo or Asia/Shanghai"), name=name[:64]))
    return name


def check_email(value: str) -> str:
    """An e-mail address (shape only; delivery proves the rest)."""
    address = value.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise ValueError(N_("not a valid e-mail address, e.g. name@example.com"))
    return address


def check_url(value: str) -> str:
    """An https:// URL (http:// only for localhost, for tests) without credentials.

    Only the URL's shape is checked here; where its host points is checked by
    `guard.check_public_url` when a message is sent, since DNS answers change.
    """
    url = value.strip()
    shape = url_shape_problem(url)
    if shape is not None:
        raise ValueError(f"the URL {shape}")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise ValueError(N_("not a valid URL")) from None
    if not host:
        raise ValueError(N_("must be a full URL such as https://example.com/hook"))
    if parts.username is not None or parts.password is not None:
        raise ValueError(N_("must not contain a user name or password"))
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOCAL_HOSTS):
        return url
    raise ValueError(N_("must start with https:// (http:// is allowed only for localhost)"))


def check_push_key(value: str, size: int, name: str) -> str:
    """A base64url-encoded key of `size` bytes (a PushSubscription's p256dh or auth)."""
    if not _B64URL.match(value):
        raise ValueError(Said(N_("{name} must be base64url-encoded"), name=name))
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(Said(N_("{name} must be base64url-encoded"), name=name)) from None
    if len(raw) != size:
        raise ValueError(Said(N_("{name} must encode {size} bytes (got {got})"), name=name,
                              size=size, got=len(raw)))
    return value


def check_quiet_hours(start: time | None, end: time | None) -> None:
    """Quiet hours need both ends (or neither), and they must differ."""
    if (start is None) != (end is None):
        raise ValueError(N_("quiet hours need both quiet_start and quiet_end (HH:MM), or neither"))
    if start is not None and start == end:
        raise ValueError(N_("quiet_start and quiet_end must differ"))


# --- what each kind takes -----------------------------------------------------------------


def check_kind(value: object, allowed: tuple[ChannelKind, ...]) -> object:
    """`value` if it is one of the kinds this owner may add (a person, or a site)."""
    if value not in allowed:
        raise ValueError(Said(N_("choose one of {choices}"), choices=", ".join(allowed)))
    return value


def check_subscription(kind: ChannelKind | None, present: bool) -> None:
    """Web push channels, and only they, come with the browser's PushSubscription."""
    if kind is ChannelKind.WEBPUSH and not present:
        raise ValueError(N_("a webpush channel needs the browser's PushSubscription "
                         "JSON ({endpoint, keys: {p256dh, auth}})"))
    if kind not in (None, ChannelKind.WEBPUSH) and present:
        raise ValueError(N_("only webpush channels take a subscription"))


def check_target(kind: ChannelKind | None, value: str | None) -> str | None:
    """The target a `kind` needs: an e-mail address, an https:// URL, or none for web push
    (whose target is the subscription's endpoint). `kind` None: the kind itself was invalid."""
    if kind is None:
        return value
    if kind is ChannelKind.WEBPUSH:
        if value is not None:
            raise ValueError(N_("leave empty for webpush: the subscription's endpoint is used"))
        return None
    if value is None or not value.strip():
        what = "an e-mail address" if kind is ChannelKind.EMAIL else "an https:// URL"
        raise ValueError(f"a {kind} channel needs {what}")
    return check_email(value) if kind is ChannelKind.EMAIL else check_url(value)


def check_secret(kind: ChannelKind | None, present: bool) -> None:
    """Only DingTalk robots and webhooks sign their requests, so only they take a secret."""
    if present and kind is not None and kind not in SIGNED_KINDS:
        raise ValueError(UNSIGNED_KIND_ERROR)
