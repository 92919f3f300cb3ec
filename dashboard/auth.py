"""Authentication: OAuth2 password flow issuing HS256 JWTs, and the current-user dependency."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from dashboard.deps import AsyncConn, ConnDep, StateDep
from dashboard.models import LoginForm, TokenOut, UserOut
from eldercare.accounts import Role, hash_password, verify_password

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "eldercare-dashboard"
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a URL, not a secret)
BAD_LOGIN = "Incorrect username or password"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)
router = APIRouter(tags=["auth"])


class AuthError(HTTPException):
    """401 with the `WWW-Authenticate: Bearer` challenge and a readable reason."""

    def __init__(self, detail: str, invalid_token: bool = False) -> None:
        challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": challenge})


def create_token(user_id: int, secret: str, ttl: timedelta, now: datetime | None = None
                 ) -> str:
    """Sign an access token for a user: `sub` is the user id, `exp` is now + ttl."""
    issued = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "iss": ISSUER, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str) -> int:
    """Verify a token and return its user id; raise AuthError with the reason."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["sub", "exp", "iss"]},
        )
        return int(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise AuthError("Your session has expired; please log in again",
                        invalid_token=True) from None
    except (jwt.InvalidTokenError, ValueError):
        raise AuthError("Invalid access token; please log in again", invalid_token=True) from None


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


async def _load_user(conn: AsyncConn, user_id: int) -> tuple[UserOut, bool] | None:
    """The user with this id and whether the account is active, or None."""
    cur = await conn.execute(
        "SELECT id, username, full_name, role, site_id, active FROM users WHERE id = %s",
        (user_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    uid, username, full_name, role, site_id, active = row
    if role not in Role.__members__.values():
        logger.error("user %s has unknown role %r; denying access", username, role)
        return None
    return UserOut(id=uid, username=username, full_name=full_name, role=Role(role),
                   site_id=site_id), bool(active)


async def get_current_user(token: Annotated[str | None, Depends(oauth2_scheme)],
                           conn: ConnDep, state: StateDep) -> UserOut:
    """The logged-in user, loaded from the database on every request."""
    if not token:
        raise AuthError("Not authenticated: log in and send 'Authorization: Bearer <token>'")
    user_id = decode_token(token, state.jwt_secret)
    loaded = await _load_user(conn, user_id)
    if loaded is None or not loaded[1]:
        raise AuthError("This account no longer exists or has been deactivated",
                        invalid_token=True)
    return loaded[0]


CurrentUser = Annotated[UserOut, Depends(get_current_user)]


def _too_many(retry_after: int) -> HTTPException:
    minutes = max(1, -(-retry_after // 60))
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"Too many failed logins; try again in {minutes} minute{'s' if minutes > 1 else ''}, "
        "or ask an administrator to reset your password",
        headers={"Retry-After": str(retry_after)})


@router.post("/auth/token", response_model=TokenOut,
             responses={429: {"description": "Too many failed logins from this client"}})
async def login(form: Annotated[LoginForm, Depends()], request: Request,
                conn: ConnDep, state: StateDep) -> TokenOut:
    """Exchange a username and password for a bearer token (OAuth2 password flow)."""
    address = request.client.host if request.client is not None else "unknown"
    throttle = state.login_throttle
    wait = throttle.begin(address, form.username)
    if wait is not None:
        logger.warning("login for %r from %s throttled for %d s", form.username, address, wait)
        raise _too_many(wait)
    cur = await conn.execute(
        "SELECT id, password_hash, active FROM users WHERE username = %s", (form.username,))
    row = await cur.fetchone()
    # Argon2 is deliberately slow: keep it off the event loop.
    password_ok = await run_in_threadpool(
        _password_matches, form.password, str(row[1]) if row is not None else None)
    if row is None or not password_ok:
        logger.warning("failed login for %r from %s", form.username, address)
        throttle.failed(address)
        raise AuthError(BAD_LOGIN)
    throttle.succeeded(address, form.username)
    user_id, active = int(row[0]), bool(row[2])
    if not active:
        logger.warning("login refused for deactivated account %r", form.username)
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "This account has been deactivated; ask an administrator")
    loaded = await _load_user(conn, user_id)
    if loaded is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "This account has no valid role; ask an administrator")
    user = loaded[0]
    logger.info("user %s (%s) logged in", user.username, user.role.value)
    return TokenOut(
        access_token=create_token(user.id, state.jwt_secret, state.token_ttl),
        expires_in=int(state.token_ttl.total_seconds()), role=user.role,
        site_id=user.site_id, username=user.username, full_name=user.full_name,
    )


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    """Who the token belongs to."""
    return user
