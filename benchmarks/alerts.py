"""`python -m benchmarks alerts`: SOS publish → alert committed, and → event on the web
app's SSE feed.

Under background bed telemetry at a share of the bare-subscriber ceiling (same lean load
generator as `bench ingest`, run in its own process so it does not share our GIL), every SOS
is one QoS 1 PUBLISH on a distinct call button. Both receivers live in this process and use
the same monotonic clock as the presses: a `LISTEN alerts` connection (NOTIFY is delivered at
COMMIT, so its arrival is the commit time, late by the wake-up of our own backend) and an
SSE client of the separate web-app process.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import queue
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import httpx

from benchmarks.ingest import bare_subscriber_ceiling, create_residents
from benchmarks.loadgen import (
    LoadGenerator,
    connect_packet,
    discard_session,
    publish_packet,
)
from benchmarks.stats import percentiles
from eldercare.embedded import ManagedProcess, ServiceError, die_with_parent, free_port, wait_for
from eldercare.pipeline import session_client_ids
from eldercare.runtime import Runtime
from gateway.provisioning import DeviceCredentials
from gateway.schema import (
    Channel,
    DeviceEvent,
    DeviceType,
    EventType,
    encode,
    topic_for,
)
from kernel import accounts
from kernel.db import connect

logger = logging.getLogger(__name__)

BENCH_SITE = "bench-alerts"
ADMIN_USERNAME = "bench-alerts-admin"
WARMUP_HOMES = 3  # extra homes pressed before the measurement (readiness, warm caches)
BACKGROUND_SHARE = 0.6
TARGET_COMMIT_P99_MS = 50.0
TARGET_SSE_P99_MS = 250.0
STREAM_PATH = "/api/v1/alerts/stream"
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a URL, not a secret
HEALTH_PATH = "/api/v1/health"
BACKGROUND_MAX_S = 24 * 3600.0  # the background load runs until told to stop


@dataclass(frozen=True)
class AlertBenchConfig:
    """What to run."""

    homes: int = 200
    presses: int = 200  # each on a distinct call button, so at most `homes`
    rate: float | None = None  # background msg/s; None: 60 % of the bare-subscriber ceiling
    press_rate: float = 10.0
    drain_messages: int = 30_000
    settle_s: float = 30.0  # how long to wait for outstanding results after the last press
    load_warmup_s: float = 5.0  # background load before the first measured press
    seed: int = 1
    # Flood phase (off when flood_rate is 0): one call button presses SOS at flood_rate/s
    # while `flood_presses` other residents press theirs (distinct buttons, at press_rate).
    flood_rate: float = 0.0
    flood_presses: int = 50
    flood_lead_s: float = 1.0  # the flood runs this long before the first measured press

    @property
    def flooding(self) -> bool:
        """Whether the run has a flood phase."""
        return self.flood_rate > 0

    @property
    def buttons_needed(self) -> int:
        """Distinct measured call buttons (the flooder included)."""
        return self.presses + (self.flood_presses + 1 if self.flooding else 0)


@dataclass(frozen=True)
class Home:
    """A bench resident's bed sensor and call button."""

    bed: DeviceCredentials
    button: DeviceCredentials


@dataclass(frozen=True)
class Press:
    """One SOS: which button, its seq, and when it was written to the socket (monotonic)."""

    device_id: str
    seq: int
    t0: float


@dataclass(frozen=True)
class SseEvent:
    """One event of the alert stream that names a device, and when it arrived (monotonic)."""

    t: float
    name: str
    device_id: str


# --- registry setup -------------------------------------------------------------------------


def provision(rt: Runtime, count: int) -> list[Home]:
    """`count` homes with a bed sensor and a call button (created once, reused)."""
    path = rt.data_dir / f"bench-alerts-homes-{count}.json"
    if path.exists():
        homes = [Home(DeviceCredentials(**h["bed"]), DeviceCredentials(**h["button"]))
                 for h in json.loads(path.read_text())]
        if _registered(rt, homes):
            return homes
        logger.warning("cached bench devices in %s are not registered; provisioning anew", path)
    homes = _create_homes(rt, count)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"bed": h.bed.as_dict(), "button": h.button.as_dict()}
                                for h in homes]))
    return homes


def _registered(rt: Runtime, homes: list[Home]) -> bool:
    ids = [d.device_id for h in homes for d in (h.bed, h.button)]
    with connect(rt.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM devices WHERE id = ANY(%s) AND active",
                           (ids,)).fetchone()
    return row is not None and int(str(row[0])) == len(ids)


def _create_homes(rt: Runtime, count: int) -> list[Home]:
    devices = create_residents(rt, BENCH_SITE, "Alert", count,
                               (DeviceType.BED_SENSOR, DeviceType.CALL_BUTTON))
    return [Home(bed, button) for bed, button in devices]


def resolve_open_alerts(rt: Runtime) -> int:
    """Resolve the bench site's open alerts (one open alert per resident and type)."""
    with connect(rt.database_url) as conn:
        ids = [int(str(r[0])) for r in conn.execute(
            "UPDATE alerts SET status = 'resolved', outcome = 'other', resolved_at = now(), "
            "note = 'closed by python -m benchmarks alerts' "
            "WHERE site_id = %s AND status IN ('open', 'acknowledged') RETURNING id",
            (BENCH_SITE,)).fetchall()]
        conn.execute("UPDATE alert_escalations SET done_at = now(), skipped = true "
                     "WHERE done_at IS NULL AND alert_id = ANY(%s)", (ids,))
        conn.commit()
    return len(ids)


def ensure_admin(rt: Runtime) -> str:
    """The bench's admin account with a fresh password (returned) for the SSE login."""
    password = secrets.token_urlsafe(18)
    with connect(rt.database_url) as conn:
        row = conn.execute(
            "UPDATE users SET password_hash = %s, active = true WHERE username = %s "
            "AND role = 'admin' RETURNING id",
            (accounts.hash_password(password), ADMIN_USERNAME)).fetchone()
        if row is None:
            accounts.add_user(conn, ADMIN_USERNAME, password, accounts.Role.ADMIN.value,
                              full_name="Alert benchmark")
        conn.commit()
    return password


# --- the raw limit ---------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


# --- devices ---------------------------------------------------------------------------------


class ButtonPanel:
    """One idle MQTT connection per call button; a press is one pre-framed QoS 1 PUBLISH."""

    def __init__(self, buttons: Sequence[DeviceCredentials], host: str, port: int) -> None:
        self._socks: dict[str, socket.socket] = {}
        self._topics: dict[str, bytes] = {}
        self._mids: dict[str, int] = {}
        for c in buttons:
            sock = socket.create_connection((host, port), timeout=10)
            self._socks[c.device_id] = sock
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(connect_packet(c.device_id, c.username, c.password))
            ack = _recv_exactly(sock, 4)
            if ack[0] != 0x20 or ack[3] != 0:
                self.close()
                raise ConnectionError(f"broker refused {c.device_id}: {ack!r}")
            self._topics[c.device_id] = topic_for(c.site, c.device_id, Channel.EVENT).encode()
            self._mids[c.device_id] = 0

    def press(self, device_id: str) -> Press:
        """Publish one SOS with a fresh seq; the press time is taken just before the write."""
        seq = time.time_ns() // 1000
        body = encode(DeviceEvent(ts=datetime.now(UTC), seq=seq, type=EventType.SOS))
        mid = self._mids[device_id] = self._mids[device_id] % 65535 + 1
        packet = publish_packet(self._topics[device_id], mid, body)
        t0 = time.monotonic()
        self._socks[device_id].sendall(packet)
        return Press(device_id, seq, t0)

    def unacknowledged(self, presses: Sequence[Press], timeout: float = 5.0) -> int:
        """Presses the broker did not PUBACK (read after the run, off the measured path)."""
        counts: dict[str, int] = {}
        for p in presses:
            counts[p.device_id] = counts.get(p.device_id, 0) + 1
        missing = 0
        for device_id, n in counts.items():
            sock = self._socks[device_id]
            sock.settimeout(timeout)
            try:
                data = _recv_exactly(sock, 4 * n)
                missing += sum(1 for i in range(n) if data[4 * i] != 0x40)
            except (OSError, ConnectionError):
                missing += n
        return missing

    def close(self) -> None:
        """Disconnect every button."""
        for sock in self._socks.values():
            try:
                sock.sendall(b"\xe0\x00")
            except OSError:
                logger.debug("disconnect failed")
            sock.close()
        self._socks.clear()


def _describe(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return bytes(data)


# --- receivers -------------------------------------------------------------------------------


class CommitListener:
    """`LISTEN alerts`: the first NOTIFY of an alert id arrives when its INSERT commits."""

    def __init__(self, database_url: str) -> None:
        self.first: dict[int, float] = {}
        self._conn = connect(database_url, autocommit=True)
        self._conn.execute("LISTEN alerts")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                t = time.monotonic()
                try:
                    self.first.setdefault(int(note.payload), t)
                except ValueError:
                    logger.warning("ignoring notification %r", note.payload)

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(5)
        self._conn.close()


@dataclass
class _SseParser:
    """Assembles SSE lines into (event, data) messages."""

    name: str = "message"
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str] | None:
        """One line; returns a complete message at the blank line that ends it."""
        if not line:
            message = (self.name, "\n".join(self.data)) if self.data else None
            self.name, self.data = "message", []
            return message
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            self.name = value
        elif key == "data":
            self.data.append(value)
        return None


class SseListener:
    """Reads the web app's alert stream in a thread; records device events as they arrive."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.events: list[SseEvent] = []
        self.status: dict[str, Any] = {}  # from the `ready` and `status` events
        self.error: str | None = None
        self.other: dict[str, int] = {}
        self._base = base_url
        self._login = {"username": username, "password": password}
        self._opened = threading.Event()
        self._closing = False
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="bench-sse", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Log in and open the stream; on failure `error` says why and (b) is not measured."""
        self._thread.start()
        wait_for(lambda: self._opened.is_set() or self.error is not None, timeout,
                 "the alert stream to open")

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self._base, timeout=httpx.Timeout(10.0, read=None)
                              ) as client:
                token = client.post(TOKEN_PATH, data=self._login).raise_for_status().json()
                headers = {"Authorization": f"Bearer {token['access_token']}",
                           "Accept": "text/event-stream"}
                with client.stream("GET", STREAM_PATH, headers=headers) as resp:
                    resp.raise_for_status()
                    self._sock = resp.extensions["network_stream"].get_extra_info("socket")
                    self._read(resp.iter_lines())
        except Exception as exc:  # reported with the figures; the bench goes on without (b)
            if not self._closing:
                self.error = _describe(exc)
                logger.warning("alert stream failed: %s", self.error)

    def _read(self, lines: Iterator[str]) -> None:
        parser = _SseParser()
        self._opened.set()
        for line in lines:
            message = parser.feed(line)
            if message is not None:
                self._on_message(time.monotonic(), *message)
        if not self._closing:
            self.error = "the server ended the stream"

    def _on_message(self, t: float, name: str, data: str) -> None:
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        device = body.get("device_id") if isinstance(body, dict) else None
        if name in ("alert", "pending") and isinstance(device, str):
            self.events.append(SseEvent(t, name, device))
            return
        if name in ("ready", "status") and isinstance(body, dict):
            self.status.update(body)
        self.other[name] = self.other.get(name, 0) + 1

    def seen(self, device_id: str, name: str | None = None) -> bool:
        """Whether an event for this device (of this name) has arrived."""
        return any(e.device_id == device_id and (name is None or e.name == name)
                   for e in list(self.events))

    def close(self) -> None:
        """Close the stream (shut the socket under the reading thread)."""
        self._closing = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("stream socket already closed")
        self._thread.join(10)


# --- background telemetry (own process) -----------------------------------------------------


def _background_main(creds: list[DeviceCredentials], host: str, port: int, rate: float,
                     started: MpEvent, stop: MpEvent, out: Any) -> None:
    """Child process: publish bed telemetry at `rate` until `stop`; report what was sent."""
    try:
        gen = LoadGenerator(creds, host, port)
    except Exception as exc:
        out.put({"error": _describe(exc)})
        started.set()
        return
    stopped: list[float] = []

    def should_stop() -> bool:
        if stop.is_set():
            stopped.append(time.monotonic())
            return True
        return False

    try:
        started.set()
        t0 = time.monotonic()
        load = gen.run(rate, BACKGROUND_MAX_S, should_stop)
        seconds = (stopped[0] if stopped else time.monotonic()) - t0
        out.put({"sent": load.sent, "acked": load.acked, "seconds": seconds})
    except Exception as exc:
        out.put({"error": _describe(exc)})
    finally:
        gen.close()


class Background:
    """Bed telemetry at a fixed rate from a separate process (the lean load generator)."""

    def __init__(self, beds: list[DeviceCredentials], host: str, port: int, rate: float
                 ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.rate = rate
        self._started = ctx.Event()
        self._stop = ctx.Event()
        self._out: Any = ctx.Queue()
        self._proc = ctx.Process(target=_background_main, name="bench-background", daemon=True,
                                 args=(beds, host, port, rate, self._started, self._stop,
                                       self._out))
        self._proc.start()
        if not self._started.wait(60):
            self._proc.terminate()
            raise ServiceError("the background load generator did not start")

    def stop(self) -> dict[str, Any]:
        """Stop the load; what it sent and acknowledged, and the achieved msg/s."""
        self._stop.set()
        try:
            result: dict[str, Any] = self._out.get(timeout=120)
        except queue.Empty:
            result = {"error": "the background load generator did not report"}
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.terminate()
        if "error" not in result:
            result["msgs_per_s"] = result["sent"] / result["seconds"] if result["seconds"] else 0
        return result


# --- the platform's processes ----------------------------------------------------------------


def _start(rt: Runtime, name: str, argv: list[str]) -> ManagedProcess:
    proc = subprocess.Popen([sys.executable, "-m", "eldercare.cli", *argv],
                            preexec_fn=die_with_parent, env=rt.child_env())
    return ManagedProcess(name, proc)


def _alive(proc: ManagedProcess) -> bool:
    if not proc.alive():
        raise ServiceError(f"the {proc.name} process exited with code {proc.proc.returncode}")
    return True


def _dashboard_up(proc: ManagedProcess, base_url: str) -> bool:
    _alive(proc)
    try:
        resp = httpx.get(base_url + HEALTH_PATH, timeout=2)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200 and bool(resp.json().get("database"))


def alert_rows(rt: Runtime, presses: Sequence[Press]) -> dict[tuple[str, int], int]:
    """Alert id of each press that opened an alert, keyed by (device_id, seq)."""
    if not presses:
        return {}
    with connect(rt.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT device_id, source_seq, id FROM alerts WHERE site_id = %s AND type = 'sos' "
            "AND device_id = ANY(%s) AND source_seq = ANY(%s)",
            (BENCH_SITE, [p.device_id for p in presses], [p.seq for p in presses])).fetchall()
    return {(str(r[0]), int(str(r[1]))): int(str(r[2])) for r in rows}


@dataclass
class _Session:
    """The running measurement: processes, devices and receivers."""

    rt: Runtime
    pipeline: ManagedProcess
    dashboard: ManagedProcess
    panel: ButtonPanel
    commits: CommitListener
    sse: SseListener


@contextmanager
def _session(rt: Runtime, homes: list[Home], stats_file: Path) -> Iterator[_Session]:
    """Pipeline and web app as subprocesses, the SSE and LISTEN receivers, the buttons."""
    name = f"bench-alerts-{time.time_ns()}"
    web_port = free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    password = ensure_admin(rt)
    with ExitStack() as stack:
        pipeline = _start(rt, "pipeline", ["pipeline", "--sites", BENCH_SITE, "--name", name,
                                           "--stats-file", str(stats_file)])
        # The pipeline's persistent sessions would queue the next run's messages.
        for client_id in session_client_ids(name):
            stack.callback(discard_session, rt.mqtt, client_id)
        stack.callback(pipeline.stop, 60)
        dashboard = _start(rt, "dashboard", ["dashboard", "--web-port", str(web_port)])
        stack.callback(dashboard.stop, 15)
        panel = ButtonPanel([h.button for h in homes], rt.mqtt.host, rt.mqtt.port)
        stack.callback(panel.close)
        commits = CommitListener(rt.database_url)
        stack.callback(commits.close)
        wait_for(lambda: _dashboard_up(dashboard, base_url), 60, "the web app", interval=0.2)
        sse = SseListener(base_url, ADMIN_USERNAME, password)
        stack.callback(sse.close)
        sse.start()
        yield _Session(rt, pipeline, dashboard, panel, commits, sse)


def _warm_up(s: _Session, buttons: Sequence[DeviceCredentials]) -> None:
    """Press the spare buttons until the pipeline stores alerts and the stream shows them."""
    first = buttons[0].device_id
    deadline = time.monotonic() + 60
    pressed: list[Press] = []
    while not alert_rows(s.rt, pressed):
        _alive(s.pipeline)
        if time.monotonic() > deadline:
            raise ServiceError("the pipeline stored no alert for 60 s of SOS presses")
        pressed.append(s.panel.press(first))
        time.sleep(1.0)
    for b in buttons[1:]:
        s.panel.press(b.device_id)
        time.sleep(0.2)
    try:
        wait_for(lambda: s.sse.error is not None
                 or all(s.sse.seen(b.device_id, "alert") for b in buttons), 15,
                 "warm-up alerts on the stream", interval=0.1)
    except ServiceError as exc:
        logger.warning("%s; measuring anyway", exc)


def _press_all(panel: ButtonPanel, device_ids: Sequence[str], rate: float, seed: int
               ) -> list[Press]:
    """One press per device, one per 1/rate slot at a random point in the slot."""
    jitter = random.Random(seed)  # noqa: S311 - spacing, not security
    start = time.monotonic() + 0.1
    presses: list[Press] = []
    for i, device_id in enumerate(device_ids):
        delay = start + (i + jitter.random()) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        presses.append(panel.press(device_id))
    return presses


def _complete(s: _Session, presses: Sequence[Press]) -> bool:
    rows = alert_rows(s.rt, presses)
    if len(rows) < len(presses) or any(a not in s.commits.first for a in rows.values()):
        return False
    return s.sse.error is not None or all(s.sse.seen(p.device_id, "alert") for p in presses)


def _settle(s: _Session, presses: Sequence[Press], timeout: float) -> None:
    try:
        wait_for(lambda: _complete(s, presses), timeout, "every SOS's alert", interval=0.25)
    except ServiceError as exc:
        logger.warning("%s; reporting what arrived", exc)


class _Flood:
    """One call button pressing SOS at a fixed rate in a thread, until stopped."""

    def __init__(self, panel: ButtonPanel, device_id: str, rate: float) -> None:
        self.sent = 0
        self._panel, self._device, self._rate = panel, device_id, rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-flood", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            delay = start + self.sent / self._rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._panel.press(self._device)
            self.sent += 1

    def stop(self) -> int:
        """Stop pressing; how many presses were sent."""
        self._stop.set()
        self._thread.join(10)
        return self.sent


@dataclass
class _Phases:
    """What the measured presses of a run were: without a flood, and during one."""

    presses: list[Press]
    flood_presses: list[Press] = field(default_factory=list)
    flood_sent: int = 0
    flooder: str | None = None


def _measure_presses(s: _Session, homes: list[Home], cfg: AlertBenchConfig, rate: float
                     ) -> tuple[_Phases, dict[str, Any]]:
    """Background load on, the measured presses (then the flood phase), load off."""
    buttons = [h.button.device_id for h in homes[:cfg.buttons_needed]]
    order = buttons[:cfg.presses]
    random.Random(cfg.seed).shuffle(order)  # noqa: S311 - benchmark order, not security
    background = Background([h.bed for h in homes], s.rt.mqtt.host, s.rt.mqtt.port, rate)
    try:
        time.sleep(cfg.load_warmup_s)  # measure in the steady state, not the load's onset
        phases = _Phases(_press_all(s.panel, order, cfg.press_rate, cfg.seed))
        _settle(s, phases.presses, cfg.settle_s)
        if cfg.flooding:
            _flood_phase(s, buttons[cfg.presses:], cfg, phases)
    finally:
        load = background.stop()
    return phases, load


def _flood_phase(s: _Session, buttons: list[str], cfg: AlertBenchConfig, phases: _Phases
                 ) -> None:
    """The last button floods; the others press once each while it does."""
    phases.flooder, others = buttons[-1], buttons[:-1]
    flood = _Flood(s.panel, phases.flooder, cfg.flood_rate)
    try:
        time.sleep(cfg.flood_lead_s)
        phases.flood_presses = _press_all(s.panel, others, cfg.press_rate, cfg.seed + 1)
    finally:
        phases.flood_sent = flood.stop()
    _settle(s, phases.flood_presses, cfg.settle_s)


def flood_figures(phases: _Phases, rows: dict[tuple[str, int], int],
                  commits: dict[int, float], cfg: AlertBenchConfig,
                  baseline_p99_ms: float | None) -> dict[str, Any]:
    """Other residents' SOS → committed during the flood, and its p99 against the baseline."""
    samples = [_ms(commits.get(rows.get((p.device_id, p.seq), -1)), p.t0)
               for p in phases.flood_presses]
    values = [v / 1000 for v in samples if v is not None]
    commit = percentiles(values)
    p99 = commit["p99_ms"]
    return {"rate": cfg.flood_rate, "flood_sent": phases.flood_sent, "flooder": phases.flooder,
            "presses": len(phases.flood_presses),
            "lost": sum(1 for p in phases.flood_presses if (p.device_id, p.seq) not in rows),
            "commit": commit,
            "p99_ratio": (p99 / baseline_p99_ms if p99 is not None and baseline_p99_ms
                          else None)}


def latencies(presses: Sequence[Press], rows: dict[tuple[str, int], int],
              commits: dict[int, float], events: Sequence[SseEvent]) -> dict[str, Any]:
    """Per-press latencies to commit, to the first stream event and to the stored-alert event."""
    by_device: dict[str, list[SseEvent]] = {}
    for e in events:
        by_device.setdefault(e.device_id, []).append(e)
    samples = [_sample(p, presses[0].t0, rows, commits, by_device.get(p.device_id, []))
               for p in presses]
    lost = sum(1 for p in presses if (p.device_id, p.seq) not in rows)
    figures: dict[str, Any] = {"presses": len(presses), "lost": lost}
    for key in ("commit", "sse_first", "sse_stored"):
        values = [v / 1000 for v in (s[key] for s in samples) if v is not None]
        figures[key] = percentiles(values)
        figures[f"missing_{key}"] = len(presses) - len(values)
    figures["missing_commit_notify"] = figures.pop("missing_commit") - lost
    figures["samples"] = samples
    return figures


def _sample(p: Press, start: float, rows: dict[tuple[str, int], int],
            commits: dict[int, float], events: list[SseEvent]) -> dict[str, float | None]:
    """One press: when it was sent (s into the run) and its three latencies (ms)."""
    alert_id = rows.get((p.device_id, p.seq))
    after = [e for e in events if e.t >= p.t0]
    return {"at_s": p.t0 - start,
            "commit": _ms(commits.get(alert_id) if alert_id is not None else None, p.t0),
            "sse_first": _ms(min((e.t for e in after), default=None), p.t0),
            "sse_stored": _ms(min((e.t for e in after if e.name == "alert"), default=None),
                              p.t0)}


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else (t - t0) * 1000


def measure(rt: Runtime, homes: list[Home], cfg: AlertBenchConfig, rate: float,
            workdir: Path) -> dict[str, Any]:
    """The measurement proper: `homes[-WARMUP_HOMES:]` warm up, `homes[:presses]` are pressed."""
    stats_file = workdir / "pipeline.json"
    with _session(rt, homes, stats_file) as s:
        _warm_up(s, [h.button for h in homes[-WARMUP_HOMES:]])
        phases, load = _measure_presses(s, homes[:-WARMUP_HOMES], cfg, rate)
        presses = phases.presses
        commits = dict(s.commits.first)
        result = latencies(presses, alert_rows(rt, presses), commits, list(s.sse.events))
        if cfg.flooding:
            result["flood"] = flood_figures(phases, alert_rows(rt, phases.flood_presses),
                                            commits, cfg, result["commit"]["p99_ms"])
        result.update({"unacknowledged_by_broker":
                       s.panel.unacknowledged([*presses, *phases.flood_presses]),
                       "stream_error": s.sse.error, "stream_status": dict(s.sse.status),
                       "stream_other_events": dict(s.sse.other)})
    result["background"] = load
    pipeline = _read_json(stats_file)
    samples = pipeline.pop("lag_samples", [])
    pipeline["lag"] = percentiles([float(lag) for _, lag in samples])
    result["pipeline"] = pipeline
    return result


def run(rt: Runtime, cfg: AlertBenchConfig) -> dict[str, Any]:
    """The whole benchmark; returns the figures (the CLI prints them)."""
    if not 1 <= cfg.presses <= cfg.homes:
        raise ValueError("presses must be between 1 and the number of homes")
    if cfg.buttons_needed > cfg.homes:
        raise ValueError("the flood phase needs presses + flood_presses + 1 homes")
    homes = provision(rt, cfg.homes + WARMUP_HOMES)
    resolve_open_alerts(rt)
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-alerts-") as tmp:
        ceiling = None
        if cfg.rate is None:
            gen = LoadGenerator([h.bed for h in homes], rt.mqtt.host, rt.mqtt.port)
            try:
                ceiling = bare_subscriber_ceiling(rt, gen, cfg.drain_messages, Path(tmp),
                                                  site=BENCH_SITE)["msgs_per_s"]
            finally:
                gen.close()
        rate = cfg.rate if cfg.rate is not None else BACKGROUND_SHARE * (ceiling or 0.0)
        try:
            result = measure(rt, homes, cfg, rate, Path(tmp))
        finally:
            resolve_open_alerts(rt)
    return {"homes": cfg.homes, "press_rate": cfg.press_rate, "bare_subscriber_msgs_per_s":
            ceiling, "background_target_msgs_per_s": rate, **result}


# --- report ----------------------------------------------------------------------------------


def _verdict(p99: float | None, target: float) -> str:
    if p99 is None:
        return f"target p99 ≤ {target:.0f} ms: no data"
    met = "met" if p99 <= target else "NOT met"
    return f"target p99 ≤ {target:.0f} ms: {met} ({p99 / target:.2f} of target)"


def _line(label: str, pct: dict[str, float | None], target: float | None) -> str:
    if pct["p50_ms"] is None:
        figures = "no data"
    else:
        figures = (f"p50 {pct['p50_ms']:.1f} ms, p99 {pct['p99_ms']:.1f} ms, "
                   f"max {pct['max_ms']:.1f} ms")
    tail = f"   {_verdict(pct['p99_ms'], target)}" if target is not None else ""
    return f"  {label:<36} {figures}{tail}"


def _background_line(r: dict[str, Any]) -> str:
    bg, ceiling = r["background"], r["bare_subscriber_msgs_per_s"]
    if "error" in bg:
        return f"  background telemetry FAILED: {bg['error']}"
    share = (f" = {r['background_target_msgs_per_s'] / ceiling:.0%} of the bare-subscriber "
             f"ceiling {ceiling:.0f} msg/s" if ceiling else " (--rate)")
    return (f"  background: {r['homes']} bed sensors, offered "
            f"{r['background_target_msgs_per_s']:.0f} msg/s{share}; achieved "
            f"{bg['msgs_per_s']:.0f} msg/s, {bg['sent']} sent, {bg['sent'] - bg['acked']} "
            "unacknowledged")


def _pipeline_line(r: dict[str, Any]) -> str:
    lag = r["pipeline"].get("lag") or {}
    if lag.get("p50_ms") is None:
        return "  background telemetry publish→commit: no data"
    return (f"  background telemetry publish→commit: p50 {lag['p50_ms']:.0f} ms, "
            f"p99 {lag['p99_ms']:.0f} ms, max {lag['max_ms']:.0f} ms")


def _bus_state(r: dict[str, Any]) -> str:
    if "bus" not in r["stream_status"]:
        return "unknown (the stream did not open)"
    bus = r["stream_status"]["bus"]
    if bus is None:
        return "not connected to the web app (no pending events expected)"
    return "up" if bus else "down"


def report(r: dict[str, Any]) -> str:
    """Human-readable summary of a run."""
    lines = [
        f"alert benchmark: {r['presses']} SOS presses on distinct call buttons "
        f"({r['press_rate']:g}/s, random order), site {BENCH_SITE}",
        _background_line(r),
        _pipeline_line(r),
        _line("(a) publish → alert committed:", r["commit"], TARGET_COMMIT_P99_MS),
        _line("(b) publish → first SSE event:", r["sse_first"], TARGET_SSE_P99_MS),
        _line("    publish → stored-alert SSE event:", r["sse_stored"], None),
        f"  lost: {r['lost']} of {r['presses']} SOS opened no alert (must be 0); "
        f"broker unacknowledged {r['unacknowledged_by_broker']}; no commit NOTIFY "
        f"{r['missing_commit_notify']}",
        f"  stream: missing first event {r['missing_sse_first']}, missing stored-alert event "
        f"{r['missing_sse_stored']}; live alert bus in the web app: {_bus_state(r)}",
    ]
    if "flood" in r:
        lines += _flood_lines(r["flood"])
    if r["stream_error"]:
        lines.append(f"  stream error: {r['stream_error']}")
    return "\n".join(lines)


def _flood_lines(f: dict[str, Any]) -> list[str]:
    ratio = f"{f['p99_ratio']:.2f}" if f["p99_ratio"] is not None else "n/a"
    return [
        f"  flood: one call button pressed SOS {f['flood_sent']} times ({f['rate']:g}/s) while "
        f"{f['presses']} other residents pressed theirs",
        _line("(c) other SOS → committed in a flood:", f["commit"], None),
        f"      p99 during the flood / p99 of (a) in this run: {ratio}; lost {f['lost']} "
        f"of {f['presses']}",
    ]
