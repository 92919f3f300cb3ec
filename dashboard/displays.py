"""Wall displays: a screen set up once by a duty officer (or an administrator) that keeps
itself signed in, limited to read-and-acknowledge (docs/dashboard.md, "Wall displays").

Why not a longer personal session: a personal token ends after 12 hours and the wall would
drop to the login form at 03:00. A display instead holds a **display secret** (256 random
bits, kept in the screen's localStorage, stored here only hashed) and exchanges it for a
short-lived access token (`POST /displays/session`) whenever its token is about to expire or
is refused: the refresh-token pattern of OAuth2, with the secret as the refresh token. The
exchange slides the display's one server-side session forward, so nothing accumulates.

Each display has its own account (role `display`, no usable password, the site of whoever set
it up; migration 0018): its tokens name ordinary `sessions` rows, so everything that ends
sessions applies, and revoking the display deactivates the account, which ends its sessions
and its live streams at once (migration 0007's trigger and notification). What the display
may call is `dashboard.auth.DISPLAY_ROUTES` (deny by default); an acknowledgement from the
wall is recorded with the display account as actor ("acknowledged by Hall screen 1").
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dashboard.audit import AuditNote, audited
from dashboard.auth import CurrentUser, create_token, open_session
from dashboard.deps import AsyncConn, ConnDep, DashboardState, StateDep
from dashboard.errors import FieldRefusal
from dashboard.language import api_language
from dashboard.models import UserOut
from dashboard.params import IdPath
from dashboard.scope import not_found
from kernel.accounts import Role, hash_device_secret, verify_device_secret
from kernel.audit import Action, Target
from kernel.i18n import N_, Said, say

logger = logging.getLogger(__name__)

router = APIRouter(tags=["displays"])

SETUP_ROLES = frozenset({Role.ADMIN, Role.DUTY_OFFICER})
MAX_NAME = 100
# The display's session slides this far ahead at every exchange: a screen that has not
# renewed for a day (switched off over a holiday) must be set up again.
DISPLAY_SESSION_KEEP = timedelta(days=1)
SWITCHED_OFF = N_("This display was switched off by {who} at {at}; set it up again")
UNKNOWN_DISPLAY = N_("This screen is not a known wall display; set it up again")
DISPLAY_STATE_HEADER = "X-Display-State"  # "switched_off": the page stops retrying


class DisplayIn(BaseModel):
    """A new wall display: its name, and its site (an administrator's choice; a duty
    officer's display is of their own site)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, description='e.g. "Hall screen 1".')
    site_id: str | None = Field(default=None, max_length=64)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        name = " ".join(value.split())
        if not name:
            raise ValueError(N_("give the display a name"))
        return name


class DisplayOut(BaseModel):
    """A wall display as its site's officers see it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    site_id: str
    created_by: str
    created_at: datetime
    last_seen_at: datetime | None
    last_address: str | None
    revoked_at: datetime | None
    revoked_by: str | None


class DisplayCreated(DisplayOut):
    """The new display and its secret, shown this once: the screen keeps it."""

    secret: str = Field(description="Exchange at POST /displays/session; shown only once.")


class DisplaySessionIn(BaseModel):
    """The display secret, exchanged for an access token."""

    model_config = ConfigDict(extra="forbid")

    secret: str = Field(min_length=1, max_length=200)


class DisplaySessionOut(BaseModel):
    """A display's access token (the shape of a login's answer, plus the display)."""

    model_config = ConfigDict(frozen=True)

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires; renew before.")
    role: Role
    site_id: str
    username: str
    full_name: str
    display_id: int
    site_timezone: str


class SwitchedOffOut(BaseModel):
    """Why a display may no longer sign in, and who switched it off."""

    detail: str
    revoked_by: str | None
    revoked_at: datetime | None


_COLUMNS = """d.user_id, d.name, u.site_id, d.created_by_name, d.created_at, d.last_seen_at,
              d.last_address, d.revoked_at, d.revoked_by_name"""


def _out(row: tuple[Any, ...]) -> DisplayOut:
    return DisplayOut(id=row[0], name=row[1], site_id=row[2], created_by=row[3],
                      created_at=row[4], last_seen_at=row[5], last_address=row[6],
                      revoked_at=row[7], revoked_by=row[8])


def _setup_user(user: UserOut) -> UserOut:
    """403 unless the caller may set up and switch off displays."""
    if user.role not in SETUP_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("Only duty officers and administrators manage wall displays"))
    return user


def setup_user(user: CurrentUser) -> UserOut:
    """Dependency: the caller, if a duty officer or administrator."""
    return _setup_user(user)


SetupDep = Annotated[UserOut, Depends(setup_user)]


def _site_for(user: UserOut, asked: str | None) -> str:
    """The new display's site: a duty officer's own, an administrator's choice."""
    if user.role is Role.DUTY_OFFICER:
        if asked is not None and asked != user.site_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                Said(N_("You can only set up displays of site '{site}'"),
                                     site=user.site_id))
        assert user.site_id is not None
        return user.site_id
    if asked is None:
        raise FieldRefusal("site_id", N_("Choose the site whose alerts the display shows"))
    return asked


def _name_of(user: UserOut) -> str:
    return user.full_name or user.username


@router.post("/displays", response_model=DisplayCreated, status_code=status.HTTP_201_CREATED,
             responses={403: {"description": "Not a duty officer or administrator"}})
async def create_display(body: DisplayIn, user: SetupDep, conn: ConnDep,
                         note: Annotated[AuditNote, audited(Action.DISPLAY_CREATE, "display")]
                         ) -> DisplayCreated:
    """Set up a wall display: its account and its secret (shown once; the screen keeps it
    in localStorage and exchanges it at POST /displays/session)."""
    site = _site_for(user, body.site_id)
    cur = await conn.execute("SELECT 1 FROM sites WHERE id = %s", (site,))
    if await cur.fetchone() is None:
        raise FieldRefusal("site_id", Said(N_("no site {site!r}"), site=site))
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO users (username, password_hash, full_name, role, site_id) "
            "VALUES (%s, '!', %s, 'display', %s) RETURNING id",  # '!' matches no password
            (f"display-{secrets.token_hex(6)}", body.name, site))
        row = await cur.fetchone()
        assert row is not None
        display_id = int(row[0])
        secret = f"{display_id}.{secrets.token_urlsafe(32)}"
        await conn.execute(
            "INSERT INTO displays (user_id, name, secret_hash, created_by, created_by_name) "
            "VALUES (%s, %s, %s, %s, %s)",
            (display_id, body.name, hash_device_secret(secret), user.id, _name_of(user)))
        display = await _load(conn, display_id)
    note.target = Target("display", display_id)
    logger.info("user %s set up wall display %d (%s) of site %s", user.username, display_id,
                body.name, site)
    return DisplayCreated(**display.model_dump(), secret=secret)


async def _load(conn: AsyncConn, display_id: int) -> DisplayOut:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM displays d JOIN users u "
                             "ON u.id = d.user_id WHERE d.user_id = %s", (display_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Display"))
    return _out(row)


@router.get("/displays", response_model=list[DisplayOut],
            responses={403: {"description": "Not a duty officer or administrator"}})
async def list_displays(user: SetupDep, conn: ConnDep) -> list[DisplayOut]:
    """The wall displays of your site (an administrator: of every site), newest first."""
    only_site = user.site_id if user.role is Role.DUTY_OFFICER else None
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM displays d JOIN users u ON u.id = d.user_id "
        "WHERE %(site)s::text IS NULL OR u.site_id = %(site)s ORDER BY d.created_at DESC",
        {"site": only_site})
    return [_out(row) for row in await cur.fetchall()]


@router.post("/displays/{display_id}/revoke", response_model=DisplayOut,
             responses={404: {"description": "No such display of your site"}})
async def revoke_display(display_id: IdPath, user: SetupDep, conn: ConnDep,
                         note: Annotated[AuditNote, audited(Action.DISPLAY_REVOKE, "display",
                                                            id_param="display_id")]
                         ) -> DisplayOut:
    """Switch a display off: its account is deactivated, which ends its session and its
    live stream at once; the screen then says who switched it off."""
    display = await _load(conn, display_id)
    if user.role is Role.DUTY_OFFICER and display.site_id != user.site_id:
        raise not_found(N_("Display"))
    async with conn.transaction():
        await conn.execute(
            "UPDATE displays SET revoked_at = now(), revoked_by_name = %s "
            "WHERE user_id = %s AND revoked_at IS NULL", (_name_of(user), display_id))
        # The trigger of migration 0007 ends the account's sessions and their streams.
        await conn.execute("UPDATE users SET active = false WHERE id = %s", (display_id,))
    logger.info("user %s switched off wall display %d", user.username, display_id)
    return await _load(conn, display_id)


_EXCHANGE = """
SELECT d.secret_hash, d.name, d.revoked_at, d.revoked_by_name, u.username, u.site_id,
       u.active, s.timezone
FROM displays d JOIN users u ON u.id = d.user_id JOIN sites s ON s.id = u.site_id
WHERE d.user_id = %s
"""


def _display_id(secret: str) -> int | None:
    """The display a secret names ("<id>.<random>"), or None for a malformed one."""
    head, _, tail = secret.partition(".")
    return int(head) if head.isdigit() and tail and len(head) < 19 else None


def _switched_off(request: Request, detail: str, who: str | None = None,
                  at: datetime | None = None) -> JSONResponse:
    body = SwitchedOffOut(detail=say(detail, api_language(request)), revoked_by=who,
                          revoked_at=at)
    return JSONResponse(status_code=status.HTTP_403_FORBIDDEN,
                        content=body.model_dump(mode="json"),
                        headers={DISPLAY_STATE_HEADER: "switched_off"})


@router.post("/displays/session", response_model=DisplaySessionOut,
             responses={403: {"model": SwitchedOffOut,
                              "description": "Switched off or unknown: set it up again"}})
async def display_session(body: DisplaySessionIn, request: Request, conn: ConnDep,
                          state: StateDep) -> DisplaySessionOut | JSONResponse:
    """Exchange a display secret for a short-lived access token (no bearer token needed:
    the secret is the credential). Call it before the token expires and whenever it is
    refused; a 403 means the display was switched off and must be set up again."""
    display_id = _display_id(body.secret)
    row = None
    if display_id is not None:
        cur = await conn.execute(_EXCHANGE, (display_id,))
        row = await cur.fetchone()
    if row is None or display_id is None or not verify_device_secret(body.secret, str(row[0])):
        logger.warning("display session refused: unknown display or wrong secret")
        return _switched_off(request, UNKNOWN_DISPLAY)
    _, name, revoked_at, revoked_by, username, site_id, active, timezone = row
    if revoked_at is not None or not active:
        who = revoked_by or Said(N_("an administrator"))
        at = (revoked_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
              if revoked_at else "?")
        return _switched_off(request, Said(SWITCHED_OFF, who=who, at=at), revoked_by or who,
                             revoked_at)
    address = request.client.host if request.client is not None else None
    token = await _renew(conn, state, display_id, address, request.headers.get("user-agent"))
    return DisplaySessionOut(
        access_token=token, expires_in=int(state.display_token_ttl.total_seconds()),
        role=Role.DISPLAY, site_id=site_id, username=username, full_name=name,
        display_id=display_id, site_timezone=timezone)


async def _renew(conn: AsyncConn, state: DashboardState, display_id: int,
                 address: str | None, user_agent: str | None) -> str:
    """Slide the display's one open session forward (or open one) and sign a token for it:
    the token lives `display_token_ttl`, the session DISPLAY_SESSION_KEEP past now."""
    now = state.clock()
    cur = await conn.execute(
        "UPDATE sessions SET expires_at = %s WHERE id = (SELECT id FROM sessions "
        "WHERE user_id = %s AND revoked_at IS NULL AND expires_at > %s "
        "ORDER BY created_at DESC LIMIT 1) RETURNING id",
        (now + DISPLAY_SESSION_KEEP, display_id, now))
    row = await cur.fetchone()
    if row is not None:
        session_id = row[0]
    else:
        session_id, _ = await open_session(conn, display_id, DISPLAY_SESSION_KEEP, address,
                                           user_agent, now)
    await conn.execute("UPDATE displays SET last_seen_at = %s, last_address = %s "
                       "WHERE user_id = %s", (now, address, display_id))
    return create_token(display_id, state.jwt_secret, state.display_token_ttl, now,
                        session_id=session_id)
