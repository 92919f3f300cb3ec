"""The SQL of notification channels: one owner's list, create-or-update, change and delete.

An owner is a person (`user_id`) or a site (`site_id`), never both. Nothing here knows HTTP:
refusals are `ChannelConflictError` exceptions whose text the routes answer with (409).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time

from psycopg import sql
from psycopg.types.json import Jsonb

from alerts.model import ChannelKind, Severity
from dashboard.deps import AsyncConn
from kernel.i18n import N_, Said

MAX_CHANNELS = 20  # per person or per site

ENDPOINT_TAKEN = N_("Another account has registered this browser's push subscription; "
                    "unsubscribe and subscribe again in this browser for a new one (the phone "
                    "page does this by itself)")

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

_DEFAULT_TZ = """
SELECT COALESCE(
    (SELECT timezone FROM sites WHERE id = %(site)s),
    (SELECT s.timezone FROM family_contacts f JOIN residents r ON r.id = f.resident_id
     JOIN sites s ON s.id = r.site_id WHERE f.user_id = %(user)s ORDER BY r.id LIMIT 1),
    'UTC')
"""

Row = tuple[object, ...]


class ChannelConflictError(Exception):
    """The channel cannot be saved as asked; the text says why, for the person asking."""


class TooManyChannelsError(ChannelConflictError):
    """The owner already has MAX_CHANNELS other channels."""

    def __init__(self) -> None:
        super().__init__(Said(N_("At most {most} notification channels; remove one first"),
                              most=MAX_CHANNELS))


class EndpointTakenError(ChannelConflictError):
    """Another account registered this push endpoint first."""

    def __init__(self) -> None:
        super().__init__(ENDPOINT_TAKEN)


@dataclass(frozen=True)
class StoredChannel:
    """A channel row as its owner may see it (whether a secret is stored, not the secret)."""

    id: int
    site_id: str | None
    kind: ChannelKind
    target: str
    has_secret: bool
    min_severity: str
    quiet_start: time | None
    quiet_end: time | None
    timezone: str
    active: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> StoredChannel:
        """A row of `_COLUMNS`."""
        cid, site_id, kind, target, has_secret, severity, qs, qe, tz, active, created = row[:11]
        return cls(id=int(str(cid)), site_id=None if site_id is None else str(site_id),
                   kind=ChannelKind(str(kind)), target=str(target),
                   has_secret=bool(has_secret), min_severity=str(severity),
                   quiet_start=qs if isinstance(qs, time) else None,
                   quiet_end=qe if isinstance(qe, time) else None, timezone=str(tz),
                   active=bool(active), created_at=_datetime(created))


def _datetime(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"created_at is not a timestamp: {value!r}")
    return value


@dataclass(frozen=True)
class NewChannel:
    """A channel to create, or to update when its owner has one with this kind and target."""

    user_id: int | None
    site_id: str | None
    kind: ChannelKind
    target: str
    secret: Mapping[str, str]
    min_severity: Severity
    quiet_start: time | None
    quiet_end: time | None
    timezone: str
    active: bool


def _owner(user_id: int | None, site_id: str | None) -> tuple[sql.Composable, dict[str, object]]:
    """The WHERE condition selecting one owner's channels."""
    if user_id is not None:
        return sql.SQL("user_id = %(owner_user)s"), {"owner_user": user_id}
    return sql.SQL("site_id = %(owner_site)s"), {"owner_site": site_id}


async def list_channels(conn: AsyncConn, user_id: int | None, site_id: str | None
                        ) -> list[StoredChannel]:
    """One owner's channels, oldest first."""
    owner, params = _owner(user_id, site_id)
    cur = await conn.execute(sql.SQL(_LIST).format(owner=owner), params)
    return [StoredChannel.from_row(row) for row in await cur.fetchall()]


async def default_timezone(conn: AsyncConn, site_id: str | None, user_id: int) -> str:
    """The site's time zone, else that of the person's (first) resident, else UTC."""
    cur = await conn.execute(_DEFAULT_TZ, {"site": site_id, "user": user_id})
    row = await cur.fetchone()
    return str(row[0]) if row else "UTC"


async def _check_room(conn: AsyncConn, channel: NewChannel) -> None:
    """TooManyChannelsError when the owner already has MAX_CHANNELS other channels."""
    owner, params = _owner(channel.user_id, channel.site_id)
    cur = await conn.execute(sql.SQL(_OTHERS).format(owner=owner),
                             {**params, "kind": channel.kind.value, "target": channel.target})
    row = await cur.fetchone()
    if row is not None and int(row[0]) >= MAX_CHANNELS:
        raise TooManyChannelsError


async def save(conn: AsyncConn, channel: NewChannel) -> tuple[StoredChannel, bool]:
    """Create or update (same kind and target) a channel; returns it and whether it is new."""
    await _check_room(conn, channel)
    params = {
        "user_id": channel.user_id, "site_id": channel.site_id, "kind": channel.kind.value,
        "target": channel.target, "secret": Jsonb(dict(channel.secret)),
        "min_severity": channel.min_severity.value,
        "quiet_start": channel.quiet_start, "quiet_end": channel.quiet_end,
        "timezone": channel.timezone, "active": channel.active,
    }
    async with conn.transaction():
        if channel.kind is ChannelKind.WEBPUSH:
            await _claim_endpoint(conn, params)
        cur = await conn.execute(_UPSERT, params)
        row = await cur.fetchone()
    assert row is not None
    return StoredChannel.from_row(row), bool(row[11])


async def _claim_endpoint(conn: AsyncConn, params: Mapping[str, object]) -> None:
    """EndpointTakenError when another account owns this push endpoint (inside the transaction)."""
    await conn.execute(_LOCK_ENDPOINT, params)
    cur = await conn.execute(_ENDPOINT_TAKEN, params)
    if await cur.fetchone() is not None:
        raise EndpointTakenError


async def personal_kind(conn: AsyncConn, channel_id: int, user_id: int) -> ChannelKind | None:
    """The kind of one of the person's channels; None for anyone else's."""
    cur = await conn.execute(
        "SELECT kind FROM notification_channels WHERE id = %s AND user_id = %s",
        (channel_id, user_id))
    row = await cur.fetchone()
    return None if row is None else ChannelKind(str(row[0]))


async def update_personal(conn: AsyncConn, channel_id: int, user_id: int,
                          values: Mapping[str, object]) -> None:
    """Set columns (name -> value; a `secret` is a mapping) of one of the person's channels."""
    params = {name: Jsonb(dict(value)) if name == "secret" and isinstance(value, Mapping)
              else value for name, value in values.items()}
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = %({})s").format(sql.Identifier(name), sql.SQL(name)) for name in params)
    await conn.execute(
        sql.SQL("UPDATE notification_channels SET {} "
                "WHERE id = %(id)s AND user_id = %(user_id)s").format(assignments),
        {**params, "id": channel_id, "user_id": user_id})


async def get_personal(conn: AsyncConn, channel_id: int, user_id: int) -> StoredChannel | None:
    """One of the person's channels; None for anyone else's (or one deleted meanwhile)."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM notification_channels WHERE id = %s AND user_id = %s",
        (channel_id, user_id))
    row = await cur.fetchone()
    return None if row is None else StoredChannel.from_row(row)


async def delete_personal(conn: AsyncConn, channel_id: int, user_id: int) -> bool:
    """Remove one of the person's channels; False when there is none with this id."""
    cur = await conn.execute(
        "DELETE FROM notification_channels WHERE id = %s AND user_id = %s", (channel_id, user_id))
    return bool(cur.rowcount)


async def site_exists(conn: AsyncConn, site_id: str) -> bool:
    """Whether the site is registered."""
    cur = await conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,))
    return await cur.fetchone() is not None


async def delete_site_channel(conn: AsyncConn, channel_id: int, site_id: str) -> bool:
    """Remove one of the site's channels; False when the site has none with this id."""
    cur = await conn.execute(
        "DELETE FROM notification_channels WHERE id = %s AND site_id = %s", (channel_id, site_id))
    return bool(cur.rowcount)
