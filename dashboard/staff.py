"""Staff and family accounts for administrators: list, create, edit, deactivate, reset a
password, see and end sessions, override the roster, invite and link family members.

Who may do what (least privilege): administrators manage every account. A duty officer may
*see* the staff of their own site and turn a person's duty override on or off there (the
roster is theirs to run, dashboard/roster.py), but creates, edits or resets no account: an
account change is an administrator's act. Everyone else gets 403.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, HTTPException, Query, status
from psycopg.rows import dict_row
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dashboard.audit import audited
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep
from dashboard.errors import FieldRefusal, registry_refusal
from dashboard.models import Password, PhoneText, Username, single_line
from dashboard.params import MAX_ID, SITE_REGEX, IdPath, SiteQuery
from dashboard.scope import not_found
from kernel.accounts import (
    RegistryError,
    Role,
    check_password_policy,
    check_username,
    generate_password,
    hash_password,
    role_word,
)
from kernel.audit import Action
from kernel.i18n import N_, Said
from kernel.roster import DutyOverride, override_of

logger = logging.getLogger(__name__)
router = APIRouter(tags=["staff"])

INVITE_TTL = timedelta(hours=72)
STAFF_ROLES = frozenset({Role.DUTY_OFFICER, Role.CARE_WORKER})

FullName = Annotated[str, Field(max_length=200), AfterValidator(single_line)]
SiteId = Annotated[str, Field(pattern=SITE_REGEX)]


class AccountOut(BaseModel):
    """An account as administrators see it (never its password hash or TOTP secret)."""

    model_config = ConfigDict(frozen=True)

    id: int
    username: str
    full_name: str
    role: Role
    site_id: str | None
    phone: str | None
    active: bool
    duty_override: DutyOverride | None = Field(description="Manual override of the roster.")
    must_change_password: bool
    totp_enabled: bool
    residents: list[int] = Field(description="Linked residents (family accounts).")


def _not_display(role: Role | None) -> Role | None:
    """A wall display's account is made by setting the display up (dashboard/displays.py),
    never given to a person or made by hand."""
    if role is Role.DISPLAY:
        raise ValueError(N_("wall displays are set up from the duty screen, not as accounts"))
    return role


PersonRole = Annotated[Role, AfterValidator(_not_display)]


class AccountIn(BaseModel):
    """A new account. Without `password` a temporary one is generated and shown once."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    full_name: FullName = ""
    role: PersonRole
    site_id: SiteId | None = None
    phone: PhoneText | None = None
    password: Password | None = None
    residents: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list,
                                                                     max_length=50)


class AccountPatch(BaseModel):
    """Fields to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    full_name: FullName | None = None
    role: PersonRole | None = None
    site_id: SiteId | None = None
    phone: PhoneText | None = None
    active: bool | None = None


class CreatedOut(BaseModel):
    """The new account, and its temporary password when one was generated (shown once)."""

    model_config = ConfigDict(frozen=True)

    account: AccountOut
    temporary_password: str | None


class ResetIn(BaseModel):
    """A temporary password chosen by the administrator, or none to generate one."""

    model_config = ConfigDict(extra="forbid")

    password: Password | None = None


class ResetOut(BaseModel):
    """The temporary password (shown once); the person must change it at their next login."""

    model_config = ConfigDict(frozen=True)

    temporary_password: str


class SessionOut(BaseModel):
    """One login session of an account."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    client_address: str | None
    user_agent: str | None
    live: bool
    site_timezone: str = Field("UTC", description="IANA zone pages show the times in: the "
                                      "account's site's (see account_timezone).")


class OverrideIn(BaseModel):
    """"on" or "off" whatever the roster says, or null to follow the roster."""

    model_config = ConfigDict(extra="forbid")

    override: DutyOverride | None


class InviteOut(BaseModel):
    """A one-time link for a family member to set their password (valid 72 h)."""

    model_config = ConfigDict(frozen=True)

    token: str
    path: str = Field(description="Page path to share: /invite#<token>.")
    expires_at: datetime
    site_timezone: str = Field("UTC", description="IANA zone to show `expires_at` in: the "
                                      "family member's residents' site's (account_timezone).")


# --- access --------------------------------------------------------------------------------

def require_admin(user: CurrentUser) -> None:
    """403 unless an administrator."""
    if user.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Only administrators manage accounts"))


_ACCOUNT = """
SELECT u.id, u.username, u.full_name, u.role, u.site_id, u.phone, u.active, u.on_duty,
       u.duty_forced_off, u.must_change_password, u.totp_enabled,
       coalesce(array_agg(f.resident_id ORDER BY f.resident_id)
                FILTER (WHERE f.resident_id IS NOT NULL), '{{}}') AS residents
FROM users u LEFT JOIN family_contacts f ON f.user_id = u.id
{where}
GROUP BY u.id
ORDER BY u.role, u.username
"""


def _account(row: dict[str, Any]) -> AccountOut:
    return AccountOut(
        id=row["id"], username=row["username"], full_name=row["full_name"],
        role=Role(row["role"]), site_id=row["site_id"], phone=row["phone"],
        active=row["active"], duty_override=override_of(row["on_duty"], row["duty_forced_off"]),
        must_change_password=row["must_change_password"], totp_enabled=row["totp_enabled"],
        residents=list(row["residents"]))


async def _accounts(conn: AsyncConn, where: str, params: dict[str, Any]) -> list[AccountOut]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ACCOUNT.format(where=where), params)
        return [_account(r) for r in await cur.fetchall()]


async def load_account(conn: AsyncConn, user_id: int) -> AccountOut:
    """One account, or 404."""
    found = await _accounts(conn, "WHERE u.id = %(id)s", {"id": user_id})
    if not found:
        raise not_found(N_("User"))
    return found[0]


async def _visible_account(conn: AsyncConn, user: Any, user_id: int) -> AccountOut:
    """An account the caller may see: any for an administrator, a staff member of their own
    site for a duty officer; 404 otherwise (ids are not probed), 403 for other roles."""
    if user.role not in (Role.ADMIN, Role.DUTY_OFFICER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Only administrators and duty officers"))
    account = await load_account(conn, user_id)
    if user.role is Role.DUTY_OFFICER and (account.site_id != user.site_id
                                           or account.role not in STAFF_ROLES):
        raise not_found(N_("User"))
    return account


def _bad(exc: RegistryError, field: str) -> FieldRefusal:
    """A 422 on the refused field (the registry's own, else `field`)."""
    return registry_refusal(exc, field)


# --- accounts ------------------------------------------------------------------------------

@router.get("/users", response_model=list[AccountOut],
            dependencies=[audited(Action.USER_READ, "user")],
            responses={403: {"description": "Care workers and family members"}})
async def list_users(user: CurrentUser, conn: ConnDep, site: SiteQuery = None,
                     role: Annotated[Role | None, Query()] = None,
                     active: Annotated[bool | None, Query()] = None) -> list[AccountOut]:
    """Accounts: all for administrators; the staff of their own site for duty officers."""
    params: dict[str, Any] = {}
    conditions = ["u.role <> 'display'"]  # wall displays are listed at /displays
    if user.role is Role.DUTY_OFFICER:
        if site is not None and site != user.site_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                Said(N_("You can only see site '{site}'"), site=user.site_id))
        site = user.site_id
        conditions.append("u.role IN ('duty_officer', 'care_worker')")
    elif user.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Only administrators and duty officers"))
    if site is not None:
        conditions.append("u.site_id = %(site)s")
        params["site"] = site
    if role is not None:
        conditions.append("u.role = %(role)s")
        params["role"] = role.value
    if active is not None:
        conditions.append("u.active = %(active)s")
        params["active"] = active
    return await _accounts(conn, "WHERE " + " AND ".join(conditions), params)


@router.get("/users/{user_id}", response_model=AccountOut,
            dependencies=[audited(Action.USER_READ, "user", id_param="user_id")])
async def get_user(user_id: IdPath, user: CurrentUser, conn: ConnDep) -> AccountOut:
    """One account (administrators; duty officers for their own site's staff)."""
    return await _visible_account(conn, user, user_id)


def _check_new(body: AccountIn) -> str:
    """Validate a new account; the password to set (generated when none was given)."""
    try:
        check_username(body.username)
        if body.role in STAFF_ROLES and body.site_id is None:
            raise RegistryError(Said(N_("a {role} needs a site"), role=role_word(body.role.value)),
                                "site_id")
        if body.role is Role.FAMILY and not body.residents:
            raise RegistryError(N_("a family member needs at least one resident"),
                                "residents")
        password = body.password if body.password is not None else generate_password()
        check_password_policy(password, body.username)
    except RegistryError as exc:
        raise _bad(exc, "username") from None
    return password


@router.post("/users", response_model=CreatedOut, status_code=status.HTTP_201_CREATED,
             dependencies=[audited(Action.USER_CREATE, "user")],
             responses={403: {"description": "Not an administrator"},
                        409: {"description": "Username taken"}})
async def create_user(body: AccountIn, user: CurrentUser, conn: ConnDep) -> CreatedOut:
    """Create an account with a temporary password (given, or generated and shown once); the
    person must change it at their first login."""
    require_admin(user)
    password = _check_new(body)
    password_hash = await run_in_threadpool(hash_password, password)
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO users (username, password_hash, full_name, role, site_id, phone, "
                "must_change_password) VALUES (%s, %s, %s, %s, %s, %s, true) RETURNING id",
                (body.username, password_hash, body.full_name, body.role.value,
                 body.site_id if body.role is not Role.FAMILY else None, body.phone))
            row = await cur.fetchone()
            assert row is not None
            for resident_id in body.residents:
                await conn.execute("INSERT INTO family_contacts (user_id, resident_id) "
                                   "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                                   (row[0], resident_id))
    except psycopg.errors.UniqueViolation:
        raise FieldRefusal("username", Said(N_("user {name!r} already exists"),
            name=body.username), status_code=status.HTTP_409_CONFLICT) from None
    except psycopg.errors.ForeignKeyViolation:
        raise _bad(RegistryError(N_("unknown site or resident")), "site_id") from None
    logger.info("user %s created %s account %s", user.username, body.role.value, body.username)
    return CreatedOut(account=await load_account(conn, int(row[0])),
                      temporary_password=None if body.password is not None else password)


@router.patch("/users/{user_id}", response_model=AccountOut,
              dependencies=[audited(Action.USER_UPDATE, "user", id_param="user_id")],
              responses={403: {"description": "Not an administrator"}})
async def update_user(user_id: IdPath, body: AccountPatch, user: CurrentUser,
                      conn: ConnDep) -> AccountOut:
    """Edit name, role, site, phone; deactivate (ends every session at once) or reactivate."""
    require_admin(user)
    current = await load_account(conn, user_id)
    if user_id == user.id and (body.active is False or body.role not in (None, Role.ADMIN)):
        raise HTTPException(status.HTTP_409_CONFLICT,
                            N_("You cannot deactivate or demote your own account"))
    # Null clears only what may be empty (site, phone); a null name, role or state is ignored.
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()
               if v is not None or k in ("site_id", "phone")}
    role = Role(changes.get("role", current.role))
    site = changes.get("site_id", current.site_id)
    if role in STAFF_ROLES and site is None:
        raise _bad(RegistryError(Said(N_("a {role} needs a site"), role=role_word(role.value))),
                   "site_id")
    if not changes:
        return current
    assignments = ", ".join(f"{name} = %({name})s" for name in changes)
    try:
        await conn.execute(f"UPDATE users SET {assignments} WHERE id = %(id)s",
                           {**{k: (v.value if isinstance(v, Role) else v)
                               for k, v in changes.items()}, "id": user_id})
    except psycopg.errors.ForeignKeyViolation:
        raise _bad(RegistryError(Said(N_("no site {site!r}"), site=site)), "site_id") from None
    except psycopg.errors.CheckViolation:
        raise _bad(RegistryError(N_("staff need a site")), "site_id") from None
    logger.info("user %s changed account %s: %s", user.username, current.username,
                sorted(changes))
    return await load_account(conn, user_id)


@router.post("/users/{user_id}/reset-password", response_model=ResetOut,
             dependencies=[audited(Action.PASSWORD_RESET, "user", id_param="user_id")],
             responses={403: {"description": "Not an administrator"}})
async def reset_user_password(user_id: IdPath, body: ResetIn, user: CurrentUser,
                              conn: ConnDep) -> ResetOut:
    """Set a temporary password (given or generated, shown once) the person must change at
    their next login; ends their sessions and removes their second factor (the recovery for
    a lost authenticator)."""
    require_admin(user)
    account = await load_account(conn, user_id)
    password = body.password if body.password is not None else generate_password()
    try:
        check_password_policy(password, account.username)
    except RegistryError as exc:
        raise _bad(exc, "password") from None
    password_hash = await run_in_threadpool(hash_password, password)
    async with conn.transaction():
        await conn.execute(
            "UPDATE users SET password_hash = %s, must_change_password = true, "
            "totp_enabled = false, totp_secret = NULL, totp_last_step = NULL WHERE id = %s",
            (password_hash, user_id))
        await conn.execute(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = 'password reset' "
            "WHERE user_id = %s AND revoked_at IS NULL", (user_id,))
    logger.info("user %s reset the password of %s", user.username, account.username)
    return ResetOut(temporary_password=password)


# --- the zone an account's times are shown in -------------------------------------------------

# Issue 14's rule: times are shown in the site's zone, never the browser's. An account's site,
# else (a family member) the site of the first resident they are linked to, else the one zone
# every site shares, else UTC (the audit page's fallback, dashboard/audit.py).
_ACCOUNT_ZONE = """
SELECT COALESCE(
    (SELECT s.timezone FROM users u JOIN sites s ON s.id = u.site_id WHERE u.id = %(user)s),
    (SELECT s.timezone FROM family_contacts f JOIN residents r ON r.id = f.resident_id
       JOIN sites s ON s.id = r.site_id WHERE f.user_id = %(user)s ORDER BY r.id LIMIT 1),
    (SELECT min(timezone) FROM sites HAVING count(DISTINCT timezone) = 1),
    'UTC')"""


async def account_timezone(conn: AsyncConn, user_id: int) -> str:
    """The IANA zone in which an account's times (sessions, invitation) are shown."""
    cur = await conn.execute(_ACCOUNT_ZONE, {"user": user_id})
    row = await cur.fetchone()
    return str(row[0]) if row else "UTC"


# --- sessions ------------------------------------------------------------------------------

@router.get("/users/{user_id}/sessions", response_model=list[SessionOut],
            dependencies=[audited(Action.SESSION_READ, "user", id_param="user_id")],
            responses={403: {"description": "Not an administrator"}})
async def list_sessions(user_id: IdPath, user: CurrentUser, conn: ConnDep
                        ) -> list[SessionOut]:
    """An account's sessions, newest first (ended ones are kept 30 days)."""
    require_admin(user)
    await load_account(conn, user_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, created_at, expires_at, revoked_at, revoked_reason, client_address, "
            "user_agent, revoked_at IS NULL AND expires_at > now() AS live FROM sessions "
            "WHERE user_id = %s ORDER BY created_at DESC LIMIT 200", (user_id,))
        rows = await cur.fetchall()
    zone = await account_timezone(conn, user_id)
    return [SessionOut(**r, site_timezone=zone) for r in rows]


async def _end(conn: AsyncConn, user_id: int, session_id: UUID | None, by: str) -> int:
    reason = f"ended by administrator {by}"
    if session_id is None:
        cur = await conn.execute(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = %s "
            "WHERE user_id = %s AND revoked_at IS NULL", (reason, user_id))
    else:
        cur = await conn.execute(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = %s "
            "WHERE user_id = %s AND id = %s AND revoked_at IS NULL",
            (reason, user_id, session_id))
    return cur.rowcount


@router.delete("/users/{user_id}/sessions/{session_id}",
               dependencies=[audited(Action.SESSION_END, "user", id_param="user_id")],
               status_code=status.HTTP_204_NO_CONTENT,
               responses={403: {"description": "Not an administrator"},
                          404: {"description": "No such live session"}})
async def end_session(user_id: IdPath, session_id: UUID, user: CurrentUser,
                      conn: ConnDep) -> None:
    """End one session now: its token stops working and its live streams close."""
    require_admin(user)
    if await _end(conn, user_id, session_id, user.username) == 0:
        raise not_found(N_("Live session"))
    logger.info("user %s ended session %s of user %s", user.username, session_id, user_id)


@router.delete("/users/{user_id}/sessions", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[audited(Action.SESSION_END, "user", id_param="user_id")],
               responses={403: {"description": "Not an administrator"}})
async def end_all_sessions(user_id: IdPath, user: CurrentUser, conn: ConnDep) -> None:
    """End every live session of an account."""
    require_admin(user)
    await load_account(conn, user_id)
    ended = await _end(conn, user_id, None, user.username)
    logger.info("user %s ended %d sessions of user %s", user.username, ended, user_id)


# --- duty override -------------------------------------------------------------------------

@router.put("/users/{user_id}/duty-override", response_model=AccountOut,
            dependencies=[audited(Action.DUTY_CHANGE, "user", id_param="user_id")],
            responses={403: {"description": "Not an administrator or duty officer"}})
async def set_duty_override(user_id: IdPath, body: OverrideIn, user: CurrentUser,
                            conn: ConnDep) -> AccountOut:
    """Put a duty officer or care worker on or off duty whatever the roster says, or (null)
    hand the decision back to the roster (administrators; duty officers for their site)."""
    account = await _visible_account(conn, user, user_id)
    if account.role not in STAFF_ROLES:
        raise FieldRefusal("override", N_("only duty officers and care workers go on duty"))
    await conn.execute("UPDATE users SET on_duty = %s, duty_forced_off = %s WHERE id = %s",
                       (body.override is DutyOverride.ON, body.override is DutyOverride.OFF,
                        user_id))
    logger.info("user %s set the duty override of %s to %s", user.username, account.username,
                body.override)
    return await load_account(conn, user_id)


# --- family --------------------------------------------------------------------------------

async def _family(conn: AsyncConn, user: Any, user_id: int) -> AccountOut:
    require_admin(user)
    account = await load_account(conn, user_id)
    if account.role is not Role.FAMILY:
        raise FieldRefusal("user_id", N_("not a family account"), where="path")
    return account


@router.put("/users/{user_id}/residents/{resident_id}", response_model=AccountOut,
            dependencies=[audited(Action.USER_UPDATE, "user", id_param="user_id",
                                  resident="resident_id")],
            responses={403: {"description": "Not an administrator"}})
async def link_resident(user_id: IdPath, resident_id: IdPath, user: CurrentUser,
                        conn: ConnDep) -> AccountOut:
    """Let a family member see a resident (idempotent)."""
    await _family(conn, user, user_id)
    try:
        await conn.execute("INSERT INTO family_contacts (user_id, resident_id) VALUES (%s, %s) "
                           "ON CONFLICT DO NOTHING", (user_id, resident_id))
    except psycopg.errors.ForeignKeyViolation:
        raise not_found(N_("Resident")) from None
    return await load_account(conn, user_id)


@router.delete("/users/{user_id}/residents/{resident_id}", response_model=AccountOut,
               dependencies=[audited(Action.USER_UPDATE, "user", id_param="user_id",
                                  resident="resident_id")],
               responses={403: {"description": "Not an administrator"}})
async def unlink_resident(user_id: IdPath, resident_id: IdPath, user: CurrentUser,
                          conn: ConnDep) -> AccountOut:
    """Stop a family member seeing a resident (at once: every request checks the link)."""
    await _family(conn, user, user_id)
    await conn.execute("DELETE FROM family_contacts WHERE user_id = %s AND resident_id = %s",
                       (user_id, resident_id))
    return await load_account(conn, user_id)


def invite_hash(token: str) -> str:
    """What is stored of an invitation token (its SHA-256: the link itself is the secret)."""
    return hashlib.sha256(token.encode()).hexdigest()


@router.post("/users/{user_id}/invite", response_model=InviteOut,
             dependencies=[audited(Action.USER_UPDATE, "user", id_param="user_id")],
             status_code=status.HTTP_201_CREATED,
             responses={403: {"description": "Not an administrator"}})
async def invite_family(user_id: IdPath, user: CurrentUser, conn: ConnDep,
                        ) -> InviteOut:
    """A one-time link (72 h) with which a family member sets their own password; earlier
    unused links of the account stop working."""
    await _family(conn, user, user_id)
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + INVITE_TTL
    async with conn.transaction():
        await conn.execute("DELETE FROM account_invites WHERE user_id = %s AND used_at IS NULL",
                           (user_id,))
        await conn.execute("INSERT INTO account_invites (token_hash, user_id, expires_at) "
                           "VALUES (%s, %s, %s)", (invite_hash(token), user_id, expires))
    logger.info("user %s invited family account %s", user.username, user_id)
    return InviteOut(token=token, path=f"/invite#{token}", expires_at=expires,
                     site_timezone=await account_timezone(conn, user_id))


