"""Helpers for the live-feed and page tests: a real uvicorn server in a thread, an SSE reader,
an MQTT publisher for the internal alert bus, a TCP proxy that can cut the database, and a
headless Chromium page that records script errors."""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import paho.mqtt.client as mqtt
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from alerts.bus import AlertEvent, bus_topic, encode_event
from alerts.model import Severity
from dashboard.app import DashboardServer, create_app, server_config
from dashboard.live.feed import AlertStream
from eldercare.embedded import free_port
from kernel.endpoint import MqttEndpoint
from tests.support.dashboard import PASSWORD, SECRET
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

STREAM = "/api/v1/alerts/stream"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE: ViewportSize = {"width": 390, "height": 844}
TOUCH: dict[str, Any] = {"is_mobile": True, "has_touch": True}
"""The browser-context options of a phone, with PHONE: `browser_page(PHONE, **TOUCH)`."""
WALL: ViewportSize = {"width": 1600, "height": 1000}  # the duty screen on a wall display
DESKTOP: ViewportSize = {"width": 1280, "height": 900}  # an office screen (administration)
# Chromium logs every non-2xx fetch as a console error (the pages show those answers to the
# user), and a notice when a page asks for Push in an incognito context (every Playwright
# context is one): both are expected, not problems.
_EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status"
                               r"|does not support the Push API in incognito mode")


# --- server -------------------------------------------------------------------------------


@dataclass
class Served:
    """A running server: its base URL and a way to stop it (graceful, as on SIGTERM)."""

    url: str
    port: int
    server: DashboardServer
    thread: threading.Thread

    def stop(self, timeout: float = 15.0) -> None:
        """Ask uvicorn to exit and wait for it (idempotent)."""
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "uvicorn did not stop"


@contextmanager
def running_server(app: FastAPI, port: int | None = None,
                   trusted_proxies: tuple[str, ...] = ()) -> Iterator[Served]:
    """`app` served by uvicorn (DashboardServer, configured as `serve` does) in a background
    thread (default: a free port)."""
    port = port or free_port()
    srv = DashboardServer(server_config(app, "127.0.0.1", port, "warning", trusted_proxies))
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    wait_until(lambda: srv.started or not thread.is_alive(), what="uvicorn to start")
    assert srv.started, "uvicorn did not start"
    served = Served(f"http://127.0.0.1:{port}", port, srv, thread)
    try:
        yield served
    finally:
        served.stop()


def live(app: FastAPI) -> AlertStream:
    """The app's live feed."""
    stream = app.state.alert_stream
    assert isinstance(stream, AlertStream)
    return stream


@contextmanager
def serving_live(database_url: str, mqtt: MqttEndpoint) -> Iterator[Served]:
    """A dashboard on the database and the alert bus, served once its live feed is up."""
    app = create_app(database_url, SECRET, mqtt=mqtt)
    stream = live(app)
    with running_server(app) as srv:
        wait_until(lambda: stream.database_up and stream.bus_up, what="the live feed")
        yield srv


# --- SSE client -----------------------------------------------------------------------------


@dataclass
class Event:
    """One received SSE message."""

    event: str
    data: str

    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)


@dataclass
class EventReader:
    """Reads an open text/event-stream response message by message."""

    response: httpx.Response
    retry: int | None = None
    heartbeats: int = 0
    ready: Any = None
    _lines: AsyncIterator[str] | None = field(default=None, repr=False)

    async def next(self) -> Event | None:
        """The next message (comments counted as heartbeats); None at the end of the stream."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        name, data = "message", list[str]()
        async for line in self._lines:
            if line == "":
                if data:
                    return Event(name, "\n".join(data))
                name = "message"
                continue
            if line.startswith(":"):
                self.heartbeats += 1
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
            elif key == "retry":
                self.retry = int(value)
        return None

    async def expect(self, event: str, match: dict[str, Any] | None = None,
                     timeout: float = 10.0) -> Any:
        """Skip messages until `event` whose JSON contains `match`; return its JSON."""
        with anyio.fail_after(timeout):
            while (msg := await self.next()) is not None:
                if msg.event == event and _contains(msg.json(), match or {}):
                    return msg.json()
        raise AssertionError(f"stream ended before a {event!r} event matching {match}")

    async def expect_heartbeat(self, timeout: float = 10.0) -> None:
        """Wait for the next heartbeat comment (no messages may come in between)."""
        assert self._lines is not None
        with anyio.fail_after(timeout):
            async for line in self._lines:
                if line.startswith(":"):
                    self.heartbeats += 1
                    return
                assert line == "", f"expected only a heartbeat, got {line!r}"
        raise AssertionError("stream ended before a heartbeat")

    async def next_of(self, event: str, timeout: float = 10.0) -> Any:
        """The JSON of the next `event` message (skipping other kinds)."""
        return await self.expect(event, None, timeout)


def _contains(data: Any, match: dict[str, Any]) -> bool:
    return isinstance(data, dict) and all(data.get(k) == v for k, v in match.items())


async def token_for(client: httpx.AsyncClient, username: str) -> str:
    """Log in and return the bearer token."""
    resp = await client.post("/api/v1/auth/token",
                             data={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, token: str,
                      headers: dict[str, str] | None = None) -> AsyncIterator[EventReader]:
    """An open alert stream for a token, positioned after its `ready` event."""
    async with client.stream("GET", STREAM,
                             headers={"Authorization": f"Bearer {token}", **(headers or {})},
                             timeout=httpx.Timeout(10.0, read=None)) as resp:
        assert resp.status_code == 200, (await resp.aread()).decode()
        assert resp.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(resp)
        reader.ready = await reader.next_of("ready")
        yield reader


# --- the internal alert bus -----------------------------------------------------------------


def bus_event(site: str, resident_id: int, type_: str = "sos",
              severity: Severity = Severity.CRITICAL, **fields: Any) -> AlertEvent:
    """A freshly raised, not yet stored alert event."""
    now = datetime.now(UTC)
    return AlertEvent(uid=str(uuid.uuid4()), action="raised", site=site,
                      resident_id=resident_id, device_id=fields.pop("device_id", None),
                      type=type_, severity=severity, at=now, emitted_at=now, **fields)


class BusPublisher:
    """Publishes on the internal alert bus as the pipeline does (service account, QoS 1)."""

    def __init__(self, endpoint: MqttEndpoint) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"test-bus-{uuid.uuid4().hex[:8]}")
        self._client.username_pw_set(endpoint.username, endpoint.password)
        self._connected = threading.Event()
        self._client.on_connect = lambda *_args: self._connected.set()
        self._client.connect(endpoint.host, endpoint.port, keepalive=30)
        self._client.loop_start()
        wait_until(self._connected.is_set, what="bus publisher connected")

    def publish(self, event: AlertEvent) -> None:
        """Publish one event and wait for the broker's PUBACK."""
        self.publish_raw(bus_topic(event.site), encode_event(event))

    def publish_raw(self, topic: str, payload: bytes, wait: bool = True,
                    retain: bool = False) -> None:
        """Publish any payload on a topic."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


@contextmanager
def bus_publisher(endpoint: MqttEndpoint) -> Iterator[BusPublisher]:
    """A connected bus publisher, disconnected afterwards."""
    pub = BusPublisher(endpoint)
    try:
        yield pub
    finally:
        pub.close()


# --- a database outage ------------------------------------------------------------------------


class TcpProxy:
    """Forwards a local port to `target_port`; `cut()` drops every connection and refuses new
    ones (the database is "down"), `restore()` accepts again."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.restore()

    def url_for(self, database_url: str, port: int) -> str:
        """`database_url` with its port replaced by the proxy's."""
        return database_url.replace(f":{port}/", f":{self.port}/")

    def restore(self) -> None:
        """Start accepting connections (again)."""
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Stop listening and reset every forwarded connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            doomed = list(self._sockets)
            self._sockets.clear()
        if listener is not None:
            listener.close()
        for sock in doomed:
            _close(sock)

    def close(self) -> None:
        """Cut and wait for the proxy's threads."""
        self.cut()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="tcp-proxy")
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by cut()
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
            self._spawn(_pump, client, upstream)
            self._spawn(_pump, upstream, client)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


# --- a browser ------------------------------------------------------------------------------


@dataclass
class BrowserPage:
    """A Playwright page plus the script errors and console errors it produced."""

    page: Page
    problems: list[str]


@contextmanager
def browser_page(viewport: ViewportSize, **context: Any) -> Iterator[BrowserPage]:
    """A fresh headless Chromium page; `context` goes to `new_context` (e.g. is_mobile)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=viewport, **context).new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: problems.append(f"console: {msg.text}")
                    if msg.type == "error" and not _EXPECTED_CONSOLE.search(msg.text)
                    else None)
            yield BrowserPage(page, problems)
        finally:
            browser.close()


@contextmanager
def logged_in_page(viewport: ViewportSize, url: str, username: str, password: str = PASSWORD,
                   **context: Any) -> Iterator[BrowserPage]:
    """`browser_page(viewport, **context)` with `username` logged in at `url` (the setup of
    almost every page test)."""
    with browser_page(viewport, **context) as browser:
        log_in(browser.page, url, username, password)
        yield browser


def log_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    """Open `url` and log in through its login form (every page but the invitation has the
    same one: templates/_login_form.html), by default with the test password."""
    page.goto(url)
    # By id, not by label: the same login works on a page in any language.
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("#login-button").click()


class Screenshots:
    """Saves full-page screenshots as NAME.png in the test's tmp_path, from where tests/
    conftest.py keeps them in test-artifacts/screenshots/<test>/ (the `screenshot` fixture of
    tests/dashboard/conftest.py)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, page: Page, name: str) -> Path:
        """Save `page` whole (not only the viewport) as NAME.png; return the file."""
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def bearer(url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in to the served app at `url` over HTTP: the Authorization header (for the API
    calls a page test makes beside the browser)."""
    resp = httpx.post(f"{url}/api/v1/auth/token",
                      data={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def fits_width(page: Page) -> bool:
    """Whether the page needs no horizontal scrolling."""
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))
