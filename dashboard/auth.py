"""Authentication: OAuth2 password flow issuing HS256 JWTs, and the current-user dependency."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any
from uuid import UUID, uuid4

import jwt
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from dashboard import language
from dashboard.deps import AsyncConn, ConnDep, DashboardState, StateDep
from dashboard.models import LoginForm, TokenOut, UserOut
from kernel import audit
from kernel.accounts import Role, hash_password, is_valid_username, username_key, verify_password
from kernel.i18n import DEFAULT_LANGUAGE, N_, Said
from kernel.totp import totp_step

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "eldercare-dashboard"
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a URL, not a secret)
BAD_LOGIN = N_("Incorrect username or password")
LOGGED_OUT = "logged out"
# Ended sessions are kept this long after they expire (who logged in from where), then
# deleted at that user's next login.
SESSION_KEEP = timedelta(days=30)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)
router = APIRouter(tags=["auth"])


class AuthError(HTTPException):
    """401 with the `WWW-Authenticate: Bearer` challenge and a readable reason."""

    def __init__(self, detail: str, invalid_token: bool = False) -> None:
        challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": challenge})


@dataclass(frozen=True)
class TokenClaims:
    """What a verified access token says: whose it is, which session, until when."""

    user_id: int
    session_id: UUID
    expires_at: float  # the token's `exp` (epoch seconds)


# Until a temporary password is changed or a required second factor enrolled, a session may
# only use these (and log out): the person is steered to "my account" first.
RESTRICTED_PATHS = frozenset({"/api/v1/me", "/api/v1/me/password", "/api/v1/me/totp",
                              "/api/v1/me/totp/confirm"})
# What a wall display's session may call (dashboard/displays.py): read the alerts, their live
# stream and the residents, acknowledge, and the duty screen's side panels (visits overdue,
# the shift in numbers). Everything else answers 403 (deny by default:
# a route added later is closed to displays until listed here).
DISPLAY_ROUTES = frozenset({
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/alerts/stream"),
    ("GET", "/api/v1/alerts/{alert_id}"),
    ("POST", "/api/v1/alerts/{alert_id}/ack"),
    ("GET", "/api/v1/residents"),
    ("GET", "/api/v1/visits/due"),
    ("GET", "/api/v1/sites/{site}/answer-times/shift"),
    ("GET", "/api/v1/homes/state"),  # the district at a glance
})
DISPLAY_REFUSED = N_("A wall display can only show alerts and acknowledge them")
PASSWORD_CHANGE = "password_change"  # noqa: S105 (an action name, not a password)
TOTP_ENROLMENT = "totp_enrolment"


@dataclass(frozen=True)
class AuthSession:
    """A request's authenticated user and the server-side session its token names;
    `restricted` says what the person must do first (PASSWORD_CHANGE, TOTP_ENROLMENT)."""

    user: UserOut
    claims: TokenClaims
    restricted: str | None = None


def create_token(user_id: int, secret: str, ttl: timedelta, now: datetime | None = None, *,
                 session_id: UUID) -> str:
    """Sign an access token: `sub` is the user id, `sid` the server-side session (which
    logout and deactivation revoke), `exp` is now + ttl."""
    issued = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "sid": str(session_id), "iss": ISSUER, "iat": issued,
              "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str) -> TokenClaims:
    """Verify a token's signature and expiry; raise AuthError with the reason. Whether its
    session is still open is the database's to say (`authenticate`)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["sub", "sid", "exp", "iss"]},
        )
        return TokenClaims(int(claims["sub"]), UUID(str(claims["sid"])), float(claims["exp"]))
    except jwt.ExpiredSignatureError:
        raise AuthError(N_("Your session has expired; please log in again"),
                        invalid_token=True) from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise AuthError(N_("Invalid access token; please log in again"),
                        invalid_token=True) from None


def _clean(text: str | None, limit: int) -> str | None:
    """A header value fit for a text column: bounded, without control characters (NUL would
    make PostgreSQL refuse the row)."""
    if text is None:
        return None
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


async def open_session(conn: AsyncConn, user_id: int, ttl: timedelta, address: str | None,
                       user_agent: str | None, now: datetime | None = None
                       ) -> tuple[UUID, datetime]:
    """Store a new session for a login; return its id and issue time. Also forgets this
    user's sessions that ended long ago, so the table does not grow without bound."""
    issued = now or datetime.now(UTC)
    session_id = uuid4()
    await conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, client_address, "
        "user_agent) VALUES (%s, %s, %s, %s, %s, %s)",
        (session_id, user_id, issued, issued + ttl, _clean(address, 64),
         _clean(user_agent, 512)))
    await conn.execute(
        "DELETE FROM sessions WHERE user_id = %s AND expires_at < %s",
        (user_id, issued - SESSION_KEEP))
    return session_id, issued


async def revoke_session(conn: AsyncConn, session_id: UUID, reason: str) -> bool:
    """End a session now (its live streams are told through the `sessions` notification);
    False when it had already ended."""
    cur = await conn.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = %s "
        "WHERE id = %s AND revoked_at IS NULL", (reason, session_id))
    return cur.rowcount > 0


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown usernames, so timing does not reveal them."""
    return hash_password("not-a-real-password")


def _password_matches(password: str, stored_hash: str | None) -> bool:
    """Verify a password; for an unknown user verify against a dummy hash and fail."""
    if stored_hash is None:
        verify_password(password, _dummy_hash())
        return False
    return verify_password(password, stored_hash)


def _user_of(row: tuple[Any, ...]) -> UserOut | None:
    """A user row (id, username, full_name, role, site_id) as UserOut; None for an unknown
    role (deny by default)."""
    uid, username, full_name, role, site_id = row
    if role not in Role.__members__.values():
        logger.error("user %s has unknown role %r; denying access", username, role)
        return None
    return UserOut(id=uid, username=username, full_name=full_name, role=Role(role),
                   site_id=site_id)


async def _load_user(conn: AsyncConn, user_id: int) -> tuple[UserOut, bool] | None:
    """The user with this id and whether the account is active, or None."""
    cur = await conn.execute(
        "SELECT id, username, full_name, role, site_id, active FROM users WHERE id = %s",
        (user_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    user = _user_of(row[:5])
    return None if user is None else (user, bool(row[5]))


# One indexed lookup per request: the session (primary key) joined to its user.
_SESSION_USER = """
SELECT u.id, u.username, u.full_name, u.role, u.site_id, u.active,
       s.revoked_at IS NULL AND s.expires_at > now(), s.revoked_reason,
       u.must_change_password, u.totp_enabled
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = %s AND s.user_id = %s
"""


async def authenticate(token: str | None, conn: AsyncConn, state: DashboardState
                       ) -> AuthSession:
    """The token's user, checked against its server-side session and the account on every
    request: a logged-out session, a deactivated or deleted account loses access at once."""
    if not token:
        raise AuthError(N_("Not authenticated: log in and send 'Authorization: Bearer <token>'"))
    claims = decode_token(token, state.jwt_secret)
    cur = await conn.execute(_SESSION_USER, (claims.session_id, claims.user_id))
    row = await cur.fetchone()
    if row is None:
        raise AuthError(N_("This account no longer exists, or the session is unknown; please "
                           "log in again"), invalid_token=True)
    active, live, reason = bool(row[5]), bool(row[6]), row[7]
    if not live:
        raise AuthError(Said(N_("Your session has ended ({reason}); please log in again"),
                             reason=ended_reason(reason)), invalid_token=True)
    if not active:
        raise AuthError(N_("This account has been deactivated"), invalid_token=True)
    user = _user_of(row[:5])
    if user is None:
        raise AuthError(N_("This account has no valid role; ask an administrator"),
                        invalid_token=True)
    return AuthSession(user, claims, restriction(user.role, bool(row[8]), bool(row[9]),
                                                 state.totp_required_roles))


def restriction(role: str, must_change_password: bool, totp_enabled: bool,
                totp_required_roles: frozenset[str]) -> str | None:
    """What a person must do before using the rest of the API, if anything."""
    if must_change_password:
        return PASSWORD_CHANGE
    if role in totp_required_roles and not totp_enabled:
        return TOTP_ENROLMENT
    return None


async def get_current_session(token: Annotated[str | None, Depends(oauth2_scheme)],
                              conn: ConnDep, state: StateDep, request: Request) -> AuthSession:
    """The request's session and user, loaded from the database on every request; a wall
    display's session only for DISPLAY_ROUTES."""
    session = await authenticate(token, conn, state)
    if session.user.role is Role.DISPLAY:
        require_display_route(request)
    return session


# The request paths DISPLAY_ROUTES admit, matched as the router matches them (an id is
# digits), so the check does not depend on how the framework names the matched route.
_DISPLAY_PATTERNS = tuple(
    (method, re.compile("^" + re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(path)) + "$"))
    for method, path in sorted(DISPLAY_ROUTES))


# Why a session ended (sessions.revoked_reason, as written by logout, the password change and
# reset, and an administrator), for the 401 that tells its owner; None: it expired.
_ENDED = {LOGGED_OUT: N_("logged out"), "password changed": N_("password changed"),
          "password reset": N_("password reset")}
_ENDED_BY = "ended by administrator "


def ended_reason(reason: str | None) -> Said:
    """The reason a session ended, as a `Said` (translated with the 401 it is part of)."""
    if reason and reason.startswith(_ENDED_BY):
        return Said(N_("ended by administrator {name}"), name=reason.removeprefix(_ENDED_BY))
    return Said(_ENDED.get(reason or "", reason or N_("expired")))


def require_display_route(request: Request) -> None:
    """403 unless the request is one a wall display may make (DISPLAY_ROUTES)."""
    path = request.url.path
    if not any(method == request.method and pattern.match(path)
               for method, pattern in _DISPLAY_PATTERNS):
        raise HTTPException(status.HTTP_403_FORBIDDEN, DISPLAY_REFUSED)


CurrentSession = Annotated[AuthSession, Depends(get_current_session)]


def require_unrestricted(session: AuthSession) -> None:
    """403 while the session is restricted (a temporary password to change, a required
    second factor to enrol); the live stream calls it too, so nothing is read meanwhile."""
    if session.restricted is None:
        return
    what = (N_("First change your temporary password under My account")
            if session.restricted == PASSWORD_CHANGE
            else N_("First set up your second factor (authenticator app) under My account"))
    raise HTTPException(status.HTTP_403_FORBIDDEN, what,
                        headers={"X-Account-Action": session.restricted})


async def get_current_user(session: CurrentSession, request: Request) -> UserOut:
    """The logged-in user (see `authenticate`); 403 while the session is restricted, except
    for RESTRICTED_PATHS (see `require_unrestricted`)."""
    if request.url.path not in RESTRICTED_PATHS:
        require_unrestricted(session)
    return session.user


CurrentUser = Annotated[UserOut, Depends(get_current_user)]


def _too_many(retry_after: int) -> HTTPException:
    minutes = max(1, -(-retry_after // 60))
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        Said(N_("Too many failed logins; try again in {minutes} minutes, or ask an "
                "administrator to reset your password") if minutes > 1 else
             N_("Too many failed logins; try again in {minutes} minute, or ask an "
                "administrator to reset your password"), minutes=minutes),
        headers={"Retry-After": str(retry_after)})


async def _audit_login(conn: AsyncConn, username: str, user_id: int | None, address: str,
                       outcome: audit.Outcome, reason: str | None = None) -> None:
    """The login's audit record (success and every failure), written before answering."""
    actor = audit.Actor(_clean(username, 200) or "?", user_id, address)
    await audit.append_async(conn, audit.Event(
        datetime.now(UTC), actor, audit.Action.LOGIN, outcome,
        audit.Target("user", user_id), {"reason": reason} if reason else {}))


@router.post("/auth/token", response_model=TokenOut,
             responses={429: {"description": "Too many failed logins from this client"}})
async def login(form: Annotated[LoginForm, Depends()], request: Request,
                conn: ConnDep, state: StateDep) -> TokenOut:
    """Exchange a username and password for a bearer token (OAuth2 password flow)."""
    address = request.client.host if request.client is not None else "unknown"
    throttle = state.login_throttle
    key = username_key(form.username)
    wait = throttle.begin(address, key)
    if wait is not None:
        logger.warning("login for %r from %s throttled for %d s", form.username, address, wait)
        await _audit_login(conn, form.username, None, address, audit.Outcome.DENIED, "throttled")
        raise _too_many(wait)
    row = None
    if is_valid_username(form.username):  # others can match no account (and must not: "İ")
        # Usernames are unique regardless of case (users_username_lower_idx).
        cur = await conn.execute("SELECT id, password_hash, active, totp_enabled, "
                                 "totp_secret, totp_last_step, must_change_password "
                                 "FROM users WHERE lower(username) = %s", (key,))
        row = await cur.fetchone()
    # Argon2 is deliberately slow: keep it off the event loop.
    password_ok = await run_in_threadpool(
        _password_matches, form.password, str(row[1]) if row is not None else None)
    if row is None or not password_ok:
        logger.warning("failed login for %r from %s", form.username, address)
        throttle.failed(address)
        await _audit_login(conn, form.username, int(row[0]) if row is not None else None,
                           address, audit.Outcome.DENIED, "bad username or password")
        raise AuthError(BAD_LOGIN)
    if row[3]:  # a second factor: a code guess is a login attempt like a password guess
        try:
            await _check_totp(conn, int(row[0]), str(row[4]), row[5], form.totp, address)
        except HTTPException:
            throttle.failed(address)
            raise
    throttle.succeeded(address, key)
    user_id, active = int(row[0]), bool(row[2])
    if not active:
        logger.warning("login refused for deactivated account %r", form.username)
        await _audit_login(conn, form.username, user_id, address, audit.Outcome.DENIED,
                           "account deactivated")
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("This account has been deactivated; ask an administrator"))
    loaded = await _load_user(conn, user_id)
    if loaded is None:
        await _audit_login(conn, form.username, user_id, address, audit.Outcome.DENIED,
                           "no valid role")
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("This account has no valid role; ask an administrator"))
    user = loaded[0]
    await _audit_login(conn, user.username, user.id, address, audit.Outcome.OK)
    session_id, issued = await open_session(conn, user.id, state.token_ttl, address,
                                            request.headers.get("user-agent"))
    logger.info("user %s (%s) logged in", user.username, user.role.value)
    language, chosen = await _login_language(conn, user.id, request)
    return TokenOut(
        access_token=create_token(user.id, state.jwt_secret, state.token_ttl, issued,
                                  session_id=session_id),
        expires_in=int(state.token_ttl.total_seconds()), role=user.role,
        site_id=user.site_id, username=user.username, full_name=user.full_name,
        must_change_password=bool(row[6]), language=language, language_chosen=chosen,
        totp_enrolment_required=restriction(user.role, False, bool(row[3]),
                                            state.totp_required_roles) is not None,
    )


async def _login_language(conn: AsyncConn, user_id: int, request: Request
                          ) -> tuple[str, bool]:
    """The person's language and whether they chose it. Someone who never chose follows
    their browser: its language is remembered at each login, so their notifications (sent
    when no page is open) come in the language they read the pages in."""
    cur = await conn.execute("SELECT language, language_chosen FROM users WHERE id = %s",
                             (user_id,))
    row = await cur.fetchone()
    if row is None:
        return DEFAULT_LANGUAGE, False
    if bool(row[1]):
        return str(row[0]), True
    browser = language.api_language(request)
    if browser != row[0]:
        await conn.execute("UPDATE users SET language = %s WHERE id = %s", (browser, user_id))
    return browser, False


TOTP_NEEDED = N_("Enter the 6-digit code from your authenticator app")
SECOND_FACTOR_HEADER = "X-Second-Factor"  # the login form shows its code field
BAD_TOTP = N_("Incorrect or already used one-time code")


async def _check_totp(conn: AsyncConn, user_id: int, secret: str, last_step: int | None,
                      code: str, address: str) -> None:
    """Accept a current TOTP code not used before (its time step is remembered), else 401.
    A wrong code counts against the client like a wrong password (the account attempt was
    counted before the password check), so codes cannot be guessed faster than passwords."""
    if not code:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, TOTP_NEEDED,
                            headers={"WWW-Authenticate": "Bearer",
                                     SECOND_FACTOR_HEADER: "totp"})
    step = totp_step(secret, code, datetime.now(UTC))
    if step is None or (last_step is not None and step <= int(last_step)):
        logger.warning("failed one-time code for user %s from %s", user_id, address)
        raise AuthError(BAD_TOTP)
    await conn.execute("UPDATE users SET totp_last_step = %s WHERE id = %s", (step, user_id))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT,
             responses={401: {"description": "Missing, invalid or already ended session"}})
async def logout(session: CurrentSession, conn: ConnDep, request: Request) -> Response:
    """End this session server-side: the token stops working at once and its live streams
    close (the page then shows the login form)."""
    await revoke_session(conn, session.claims.session_id, LOGGED_OUT)
    await _audit_login_out(conn, session.user, request)
    logger.info("user %s logged out", session.user.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _audit_login_out(conn: AsyncConn, user: UserOut, request: Request) -> None:
    address = request.client.host if request.client is not None else None
    await audit.append_async(conn, audit.Event(
        datetime.now(UTC), audit.Actor(user.username, user.id, address), audit.Action.LOGOUT,
        audit.Outcome.OK, audit.Target("user", user.id)))


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    """Who the token belongs to."""
    return user
