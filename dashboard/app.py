"""The care-centre web app: JSON API under /api/v1, the duty screen at / and the care
worker's phone page at /worker."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import uvicorn
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from alerts.notify.settings import NotifySettings
from dashboard import errors, language, routes, vocabulary
from dashboard.charts_ui import CHARTS_DIR, add_charts_assets
from dashboard.deps import DB_UNAVAILABLE, AsyncConn, DashboardState
from dashboard.devices import DevicesConfig
from dashboard.docs_ui import DOCS_UI_DIR, add_docs_ui
from dashboard.live.feed import AlertStream
from dashboard.live.settings import StreamSettings
from dashboard.routes import API_PREFIX
from kernel import db
from kernel.endpoint import MqttEndpoint
from kernel.i18n import LANGUAGE_NAMES, LANGUAGES, translate

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The pages: one layout (page.html: head, login form, top bar) that each page extends.
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
POOL_MAX_SIZE = 10
MIN_SECRET_BYTES = 32

# The pages load only their own files: no inline script, no third-party origins.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# The service worker must be served from the root so that its scope is the whole site.
_WORKER_SCRIPT_HEADERS = {
    "Content-Type": "text/javascript; charset=utf-8",
    "Service-Worker-Allowed": "/",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def create_app(database_url: str, jwt_secret: str, token_ttl_minutes: int = 720,
               mqtt: MqttEndpoint | None = None,
               stream_settings: StreamSettings | None = None,
               docs_ui: Path | None = DOCS_UI_DIR,
               charts: Path | None = CHARTS_DIR,
               totp_required_roles: frozenset[str] = frozenset(),
               notify_settings: NotifySettings | None = None,
               devices: DevicesConfig | None = None,
               clock: Callable[[], datetime] | None = None,
               display_token_minutes: float = 60) -> FastAPI:
    """Build the dashboard application; the pool and the live feed start with its lifespan.

    `mqtt` is the service account for the internal alert bus; without it the live feed
    carries database changes only (no `pending` events). `stream_settings` tunes the live
    feed (e.g. the open streams allowed per account and per address). `docs_ui` holds the
    Swagger UI files of /docs (dashboard/docs_ui.py); None turns /docs off. `charts` holds
    the ECharts files of the pages' charts (dashboard/charts_ui.py); None: no charts.
    `totp_required_roles`: roles that must enrol a TOTP second factor (dashboard/account.py).
    `notify_settings` is how a channel's "send test" sends (default: the defaults).
    `devices` configures device provisioning (dashboard/devices.py); None answers its
    routes 503. `clock` is "now" for the views that describe the present in words
    (default: the wall clock). `display_token_minutes`: the life of a wall display's access
    token (dashboard/displays.py; the screen renews it with its display secret).
    """
    if not jwt_secret:
        raise ValueError("jwt_secret must not be empty")
    if len(jwt_secret.encode()) < MIN_SECRET_BYTES:
        logger.warning("jwt_secret is shorter than %d bytes; use a long random value",
                       MIN_SECRET_BYTES)
    if token_ttl_minutes < 1:
        raise ValueError("token_ttl_minutes must be at least 1")
    state = DashboardState(database_url, jwt_secret, timedelta(minutes=token_ttl_minutes),
                           totp_required_roles=frozenset(totp_required_roles),
                           notify=notify_settings or NotifySettings())
    if clock is not None:
        state.clock = clock
    state.display_token_ttl = timedelta(minutes=display_token_minutes)
    live = AlertStream(database_url, mqtt, stream_settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            database_url, min_size=1, max_size=POOL_MAX_SIZE, open=False,
            name="dashboard", check=AsyncConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": db.CONNECT_TIMEOUT_S,
                    "options": "-c timezone=UTC -c application_name=eldercare-dashboard"},
        )
        await pool.open()  # connects in the background: the app starts even if the DB is down
        state.pool = pool
        await live.start(pool)
        logger.info("dashboard started")
        try:
            yield
        finally:
            await live.stop()
            state.pool = None
            await pool.close()
            logger.info("dashboard stopped")

    # FastAPI's own /docs and /redoc load scripts and fonts from public CDNs: off.
    app = FastAPI(title="eldercare dashboard", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.dashboard = state
    app.state.alert_stream = live
    app.state.devices = devices

    app.include_router(routes.api_router())

    app.add_exception_handler(RequestValidationError, errors.validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(errors.FieldRefusal, errors.field_refusal)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, errors.http_error)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/family", family_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/worker", worker_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/alerts/{alert_id}", worker_page, methods=["GET"],
                      include_in_schema=False)  # notification links (alerts.notify.messages)
    for path, template in ADMIN_PAGES.items():
        app.add_api_route(path, _template_page(template), methods=["GET"],
                          include_in_schema=False)
    app.add_api_route("/sw.js", service_worker, methods=["GET"], include_in_schema=False)
    app.add_api_route("/manifest.webmanifest", manifest, methods=["GET"],
                      include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_docs_ui(app, docs_ui, _PAGE_HEADERS)
    add_charts_assets(app, charts)
    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """Headers every response needs, set in one place (plain ASGI, so streams pass through
    untouched): `nosniff` everywhere (static files included), and `Cache-Control: no-store`
    on every API answer, since they carry tokens (RFC 6749 5.1) or personal data that no
    browser or proxy cache may keep."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith(API_PREFIX + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if api:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def index(request: Request) -> HTMLResponse:
    """The duty screen."""
    return _page(request, "index.html")


async def worker_page(request: Request) -> HTMLResponse:
    """The care worker's phone page (at /alerts/{id} it scrolls to that alert)."""
    return _page(request, "worker.html")


# Staff, roster, family accounts, my account and the invitation link (dashboard/staff.py,
# roster.py, account.py); each checks the role through the API it calls.
ADMIN_PAGES = {"/admin/staff": "staff.html", "/admin/roster": "roster.html",
               "/admin/family": "family.html", "/account": "account.html",
               "/invite": "invite.html", "/admin/audit": "audit.html",
               "/reports/answer-times": "answer_times.html",  # dashboard/answer_times.py
               "/admin/devices": "admin_devices.html",  # devices (dashboard/devices.py)
               "/admin/import": "admin_import.html",  # bulk import
               "/admin/notifications": "notifications.html",  # dashboard/channels/sent.py
                "/admin": "ledger.html"}  # residents and sites (dashboard/ledger/)


def _template_page(template: str) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def page(request: Request) -> HTMLResponse:
        return _page(request, template)
    page.__doc__ = f"The {template} page."
    return page


async def family_page(request: Request) -> HTMLResponse:
    """The family view on a phone: one card per relative (dashboard/family)."""
    return _page(request, "family_view.html")


def _page(request: Request, template: str) -> HTMLResponse:
    """A page in its reader's language (dashboard/language.py): its template's texts through
    the catalog (`_()`), the vocabulary (dashboard/vocabulary.py) and the translations its
    JavaScript needs (static/i18n.js) embedded as JSON data blocks."""
    lang = language.request_language(request)
    words = vocabulary.vocabulary(lang).model_dump(mode="json")

    def gettext(message: str) -> str:
        return translate(message, lang)

    context = {"vocabulary": words, "lang": lang, "_": gettext,
               "catalog": language.script_catalog(lang),
               "languages": [{"value": code, "label": LANGUAGE_NAMES[code]}
                             for code in LANGUAGES]}
    headers = {**_PAGE_HEADERS, "Content-Language": lang, "Vary": "Accept-Language, Cookie"}
    return TEMPLATES.TemplateResponse(request, template, context, headers=headers)


async def service_worker() -> FileResponse:
    """The service worker that shows push notifications (scope: the whole site)."""
    return FileResponse(STATIC_DIR / "sw.js", headers=_WORKER_SCRIPT_HEADERS)


async def manifest() -> FileResponse:
    """The phone page's web app manifest (lets it be added to the home screen)."""
    return FileResponse(STATIC_DIR / "manifest.webmanifest",
                        media_type="application/manifest+json",
                        headers={"Cache-Control": "no-cache"})


class DashboardServer(uvicorn.Server):
    """uvicorn's server, ending live streams first so a graceful shutdown never waits on them."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the alert streams, then shut down as usual."""
        live = getattr(getattr(self.config.app, "state", None), "alert_stream", None)
        if isinstance(live, AlertStream):
            live.end_streams()
        await super().shutdown(sockets)


def server_config(app: FastAPI, host: str, port: int, log_level: str = "warning",
                  trusted_proxies: Sequence[str] = ()) -> uvicorn.Config:
    """uvicorn's configuration for the dashboard.

    `X-Forwarded-For`/`-Proto` are honoured only from `trusted_proxies` (addresses or
    networks of your reverse proxies); with none (the default) they are ignored. uvicorn
    itself would trust them from 127.0.0.1, which let any local client pick its own address
    and so escape the per-client login throttle and stream limits.
    """
    trusted = [p.strip() for p in trusted_proxies if p.strip()]
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                          proxy_headers=bool(trusted),
                          forwarded_allow_ips=trusted or None)


def serve(app: FastAPI, host: str, port: int, log_level: str = "warning",
          trusted_proxies: Sequence[str] = ()) -> None:
    """Run the app with uvicorn until interrupted (use this rather than `uvicorn.run`)."""
    DashboardServer(server_config(app, host, port, log_level, trusted_proxies)).run()


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 when the database is unreachable mid-request (in the request's language)."""
    logger.warning("database error: %s", exc)
    return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        content={"detail": translate(DB_UNAVAILABLE,
                                                     language.api_language(request))})
