"""The care-centre web app: JSON API under /api/v1 and the duty screen at /."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from dashboard import api, auth
from dashboard.deps import DB_UNAVAILABLE, AsyncConn, DashboardState, StateDep
from dashboard.models import HealthOut

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_PREFIX = "/api/v1"
HEALTH_TIMEOUT_S = 2.0
POOL_MAX_SIZE = 10
MIN_SECRET_BYTES = 32

# The duty screen loads only its own files: no inline script, no third-party origins.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def create_app(database_url: str, jwt_secret: str, token_ttl_minutes: int = 720) -> FastAPI:
    """Build the dashboard application; the connection pool opens with the app's lifespan."""
    if not jwt_secret:
        raise ValueError("jwt_secret must not be empty")
    if len(jwt_secret.encode()) < MIN_SECRET_BYTES:
        logger.warning("jwt_secret is shorter than %d bytes; use a long random value",
                       MIN_SECRET_BYTES)
    if token_ttl_minutes < 1:
        raise ValueError("token_ttl_minutes must be at least 1")
    state = DashboardState(database_url, jwt_secret, timedelta(minutes=token_ttl_minutes))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            database_url, min_size=1, max_size=POOL_MAX_SIZE, open=False,
            name="dashboard", check=AsyncConnectionPool.check_connection,
            kwargs={"autocommit": True,
                    "options": "-c timezone=UTC -c application_name=eldercare-dashboard"},
        )
        await pool.open()  # connects in the background: the app starts even if the DB is down
        state.pool = pool
        logger.info("dashboard started")
        try:
            yield
        finally:
            state.pool = None
            await pool.close()
            logger.info("dashboard stopped")

    app = FastAPI(title="eldercare dashboard", version="1", lifespan=lifespan)
    app.state.dashboard = state

    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(auth.router)
    v1.include_router(api.router)
    v1.add_api_route("/health", health, methods=["GET"], response_model=HealthOut,
                     tags=["health"])
    app.include_router(v1)

    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def health(state: StateDep) -> HealthOut:
    """Liveness (no auth): the process answers; `database` says whether SQL works."""
    return HealthOut(status="ok", database=await _database_ok(state))


async def _database_ok(state: DashboardState) -> bool:
    if state.pool is None:
        return False
    try:
        async with state.pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except (PoolTimeout, psycopg.Error) as exc:
        logger.warning("health check: database unavailable (%s)", exc)
        return False
    return True


async def index() -> FileResponse:
    """The duty screen."""
    return FileResponse(STATIC_DIR / "index.html", headers=_PAGE_HEADERS)


def _describe(error: dict[str, Any]) -> str:
    """One readable line for a validation error, e.g. "query parameter 'limit': ..."."""
    loc = [str(part) for part in error.get("loc", ())]
    where = loc[0] if loc else "request"
    name = ".".join(part for part in loc[1:] if not part.isdigit())
    kind = {"query": "query parameter", "path": "path parameter", "body": "form field"}.get(
        where, where)
    text = f"{kind} '{name}': {error.get('msg', 'invalid value')}" if name else str(
        error.get("msg", "invalid request"))
    value = error.get("input")
    if where in ("query", "path") and isinstance(value, str | int):
        text += f" (got {value!r})"  # never echo form input: it may be a password
    return text


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a readable `detail` string plus the structured errors (without inputs)."""
    errors = list(exc.errors())
    detail = "Invalid request: " + "; ".join(_describe(e) for e in errors)
    slim = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                        content={"detail": detail, "errors": jsonable_encoder(slim)})


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    """503 when the database is unreachable mid-request."""
    logger.warning("database error: %s", exc)
    return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        content={"detail": DB_UNAVAILABLE})
