"""The measurement: start the pipeline and web app, warm up, press under background load
(then the flood phase), settle, collect; `run` is the whole benchmark."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.alerts.background import Background
from benchmarks.alerts.buttons import ButtonPanel, Flood, Press
from benchmarks.alerts.common import (
    ADMIN_USERNAME,
    BACKGROUND_SHARE,
    BENCH_SITE,
    HEALTH_PATH,
    WARMUP_HOMES,
    AlertBenchConfig,
)
from benchmarks.alerts.figures import Phases, flood_figures, latencies
from benchmarks.alerts.listen import CommitListener
from benchmarks.alerts.registry import (
    Home,
    alert_rows,
    ensure_admin,
    provision,
    resolve_open_alerts,
)
from benchmarks.alerts.sse import SseListener
from benchmarks.ingest import bare_subscriber_ceiling
from benchmarks.loadgen import LoadGenerator, discard_session, forget_part
from benchmarks.stats import percentiles
from eldercare.embedded import ManagedProcess, ServiceError, die_with_parent, free_port, wait_for
from eldercare.pipeline import session_client_ids
from eldercare.runtime import Runtime
from gateway.presence import part_name
from gateway.provisioning import DeviceCredentials

logger = logging.getLogger(__name__)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


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
        stack.callback(forget_part, rt.mqtt, part_name("pipeline", name))
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


def _measure_presses(s: _Session, homes: list[Home], cfg: AlertBenchConfig, rate: float
                     ) -> tuple[Phases, dict[str, Any]]:
    """Background load on, the measured presses (then the flood phase), load off."""
    buttons = [h.button.device_id for h in homes[:cfg.buttons_needed]]
    order = buttons[:cfg.presses]
    random.Random(cfg.seed).shuffle(order)  # noqa: S311 - benchmark order, not security
    background = Background([h.bed for h in homes], s.rt.mqtt.host, s.rt.mqtt.port, rate)
    try:
        time.sleep(cfg.load_warmup_s)  # measure in the steady state, not the load's onset
        phases = Phases(_press_all(s.panel, order, cfg.press_rate, cfg.seed))
        _settle(s, phases.presses, cfg.settle_s)
        if cfg.flooding:
            _flood_phase(s, buttons[cfg.presses:], cfg, phases)
    finally:
        load = background.stop()
    return phases, load


def _flood_phase(s: _Session, buttons: list[str], cfg: AlertBenchConfig, phases: Phases
                 ) -> None:
    """The last button floods; the others press once each while it does."""
    phases.flooder, others = buttons[-1], buttons[:-1]
    flood = Flood(s.panel, phases.flooder, cfg.flood_rate)
    try:
        time.sleep(cfg.flood_lead_s)
        phases.flood_presses = _press_all(s.panel, others, cfg.press_rate, cfg.seed + 1)
    finally:
        phases.flood_sent = flood.stop()
    _settle(s, phases.flood_presses, cfg.settle_s)


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
