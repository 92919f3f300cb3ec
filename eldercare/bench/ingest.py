"""`eldercare bench ingest`: pipeline throughput, loss, lag and CPU against raw limits.

Everything runs on this machine with the same load generator: (1) the bare-subscriber
ceiling (receive + JSON-decode only, QoS 1), (2) the bare binary COPY ceiling, (3) the
pipeline under a fixed load, with loss and duplicates counted in the database.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eldercare import accounts
from eldercare.accounts import DeviceCredentials
from eldercare.bench.loadgen import LoadGenerator, discard_session
from eldercare.db import connect
from eldercare.pipeline import session_client_ids
from eldercare.runtime import Runtime
from eldercare.services import die_with_parent, wait_for
from gateway.broker_admin import BrokerAdmin
from gateway.records import TelemetryRecord
from gateway.schema import DeviceType, site_filter
from ingest.batch import Batch
from ingest.writer import TELEMETRY_COLS, TELEMETRY_TYPES

logger = logging.getLogger(__name__)

BENCH_SITE = "bench"


@dataclass(frozen=True)
class BenchConfig:
    """What to run."""

    homes: int = 200
    rate: float | None = None  # None: `load` x the measured bare-subscriber ceiling
    load: float = 0.95
    seconds: float = 300.0
    drain_messages: int = 60_000


def create_residents(rt: Runtime, site: str, label: str, count: int,
                     types: Sequence[DeviceType]) -> list[tuple[DeviceCredentials, ...]]:
    """`count` new residents of a bench `site`, each with one device of each of `types`."""
    out: list[tuple[DeviceCredentials, ...]] = []
    with connect(rt.database_url) as conn, BrokerAdmin(rt.mqtt_admin) as admin:
        accounts.add_site(conn, site, f"{label} benchmark")
        for i in range(count):
            rid = accounts.add_resident(conn, site, f"{label} bench resident {i}")
            conn.commit()
            out.append(tuple(accounts.add_device(conn, admin, rt.mqtt, rid, t) for t in types))
    return out


def provision(rt: Runtime, homes: int) -> list[DeviceCredentials]:
    """Bed sensors for the benchmark site (created once, reused)."""
    path = rt.data_dir / f"bench-devices-{homes}.json"
    if path.exists():
        return [DeviceCredentials(**c) for c in json.loads(path.read_text())]
    creds = [bed for (bed,) in create_residents(rt, BENCH_SITE, "Ingest", homes,
                                                   (DeviceType.BED_SENSOR,))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([c.as_dict() for c in creds]))
    return creds


def _wait_json(path: Path, key: str, timeout: float) -> dict[str, Any]:
    def ready() -> bool:
        try:
            return key in json.loads(path.read_text())
        except (OSError, ValueError):
            return False

    wait_for(ready, timeout, f"{key} in {path}")
    return dict(json.loads(path.read_text()))


def bare_subscriber_ceiling(rt: Runtime, gen: LoadGenerator, messages: int,
                            workdir: Path, site: str = BENCH_SITE, buffered: bool = False
                            ) -> dict[str, Any]:
    """Publish `messages` as fast as the generator can to a live bare subscriber of `site`;
    time it. Its broker session is discarded afterwards. `buffered`: the subscriber uses
    the pipeline's receive path (BufferedClient, batched PUBACKs) instead of stock paho."""
    stats = workdir / ("bare-buffered.json" if buffered else "bare.json")
    client_id = f"bench-bare-{time.time_ns()}"
    argv = [sys.executable, "-m", "eldercare.bench.baresub", rt.mqtt.url(),
            site_filter(site), str(stats), client_id] + (["buffered"] if buffered else [])
    proc = subprocess.Popen(argv)
    try:
        _wait_json(stats, "ready", 30)
        gen.run(rate=1e9, seconds=messages / 1e9)
        wait_for(lambda: _count_in(stats) >= messages, 600, "bare subscriber", interval=0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        discard_session(rt.mqtt, client_id)
    result = json.loads(stats.read_text())
    rate = result["count"] / result["seconds"] if result["seconds"] else 0.0
    return {"msgs_per_s": rate, "cpu_us_per_msg": 1e6 * result["cpu_s"] / result["count"],
            "messages": result["count"]}


def _count_in(path: Path) -> int:
    """Messages the bare subscriber has reported so far (it reports every 0.25 s)."""
    return 0 if not path.exists() else int(json.loads(path.read_text()).get("count", 0))


def copy_ceiling(rt: Runtime, rows: int) -> dict[str, float]:
    """Bare binary COPY of the same rows into a scratch hypertable shaped like telemetry."""
    now = datetime.now(UTC)
    recs = [TelemetryRecord(now + timedelta(milliseconds=i), "bench-copy", 1, i, True, 60.0,
                            14.0, i % 100, None, now) for i in range(rows)]
    batch = Batch(telemetry=recs)
    with connect(rt.database_url) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_bench")
        conn.execute("CREATE TABLE copy_bench (LIKE bed_telemetry INCLUDING ALL)")
        conn.execute("SELECT create_hypertable('copy_bench', 'time', "
                     "chunk_time_interval => interval '1 day')")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                f"COPY copy_bench ({', '.join(TELEMETRY_COLS)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(list(TELEMETRY_TYPES))
            for r in batch.telemetry:
                copy.write_row((r.time, r.device_id, r.resident_id, r.seq, r.occupied,
                                r.heart_rate, r.respiration_rate, r.movement, r.device_time,
                                r.received_at))
        conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE copy_bench")
        conn.commit()
    return {"rows_per_s": rows / elapsed}


def _bench_rows(rt: Runtime, since: datetime) -> int:
    """Rows of the benchmark site stored with a time since `since` (this run's rows: the
    generator stamps each reading with its publish time)."""
    with connect(rt.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM bed_telemetry t JOIN devices d ON "
                           "d.id = t.device_id WHERE d.site_id = %s AND t.time >= %s",
                           (BENCH_SITE, since)).fetchone()
    return int(str(row[0])) if row else 0


def _duplicates(rt: Runtime, since: datetime) -> int:
    with connect(rt.database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) - count(DISTINCT (device_id, seq)) FROM bed_telemetry t "
            "WHERE device_id IN (SELECT id FROM devices WHERE site_id = %s) AND t.time >= %s",
            (BENCH_SITE, since)).fetchone()
    return int(str(row[0])) if row else 0


def pipeline_run(rt: Runtime, gen: LoadGenerator, rate: float, seconds: float,
                 workdir: Path) -> dict[str, Any]:
    """Run the real pipeline process under a fixed load; count what it stored."""
    stats = workdir / "pipeline.json"
    since = datetime.now(UTC) - timedelta(seconds=1)
    before = _bench_rows(rt, since)
    name = f"bench-{time.time_ns()}"
    proc = subprocess.Popen([sys.executable, "-m", "eldercare.cli", "pipeline", "--sites",
                             BENCH_SITE, "--name", name, "--stats-file", str(stats)],
                            env=rt.child_env(), preexec_fn=die_with_parent)
    try:
        wait_for(lambda: _probe(rt, gen, before, since), 60, "pipeline subscribed",
                 interval=0.5)
        base = _bench_rows(rt, since)
        load_start = time.time()
        load = gen.run(rate=rate, seconds=seconds)
        load_end = time.time()
        wait_for(lambda: _bench_rows(rt, since) - base >= load.sent, 300, "pipeline drain",
                 interval=0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        for client_id in session_client_ids(name):  # else they queue the next run's load
            discard_session(rt.mqtt, client_id)
    result = _wait_json(stats, "received", 30)
    # The last batch's commit time, from the pipeline itself: the drain is not inflated by
    # how often the benchmark polls the table.
    drain = max(0.0, float(result.get("last_telemetry_commit") or load_end) - load_end)
    stored = _bench_rows(rt, since) - base
    return {"sent": load.sent, "stored": stored, "loss": load.sent - stored,
            "duplicates": _duplicates(rt, since), "offered_msgs_per_s": load.sent / load.seconds,
            "sustained_msgs_per_s": load.sent / (load_end - load_start + drain),
            "drain_after_load_s": drain, "lag": result["lag"],
            "lag_timeline": result.get("lag_timeline", []),
            "cpu_us_per_msg": 1e6 * result["cpu_s"] / max(1, result["received"]),
            "peak_rss_mib": result["peak_rss_mib"]}


def _probe(rt: Runtime, gen: LoadGenerator, before: int, since: datetime) -> bool:
    """Publish one message and see whether the pipeline stores it."""
    gen.run(rate=1000, seconds=0.001)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if _bench_rows(rt, since) > before:
            return True
        time.sleep(0.05)
    return False


def run(rt: Runtime, cfg: BenchConfig) -> dict[str, Any]:
    """The whole benchmark; returns the figures (the CLI prints them)."""
    creds = provision(rt, cfg.homes)
    gen = LoadGenerator(creds, rt.mqtt.host, rt.mqtt.port)
    try:
        with tempfile.TemporaryDirectory(prefix="eldercare-bench-") as tmp:
            work = Path(tmp)
            bare = bare_subscriber_ceiling(rt, gen, cfg.drain_messages, work)
            bare_buffered = bare_subscriber_ceiling(rt, gen, cfg.drain_messages, work,
                                                    buffered=True)
            copy = copy_ceiling(rt, 200_000)
            rate = cfg.rate or cfg.load * bare["msgs_per_s"]
            pipe = pipeline_run(rt, gen, rate, cfg.seconds, work)
    finally:
        gen.close()
    return {
        "homes": cfg.homes, "seconds": cfg.seconds, "target_msgs_per_s": rate,
        "bare_subscriber": bare, "bare_subscriber_buffered": bare_buffered,
        "bare_copy": copy, "pipeline": pipe,
        "ratio_vs_bare_subscriber": pipe["sustained_msgs_per_s"] / bare["msgs_per_s"],
        "ratio_vs_bare_copy": pipe["sustained_msgs_per_s"] / copy["rows_per_s"],
        "cpu_ratio_vs_bare_subscriber": pipe["cpu_us_per_msg"] / bare["cpu_us_per_msg"],
        "ratio_vs_bare_buffered": pipe["sustained_msgs_per_s"] / bare_buffered["msgs_per_s"],
        "cpu_ratio_vs_bare_buffered": pipe["cpu_us_per_msg"] / bare_buffered["cpu_us_per_msg"],
    }


def _targets(r: dict[str, Any]) -> str:
    """The issue's targets, each marked met or not."""
    p = r["pipeline"]
    checks = [
        (f"throughput >= 0.90 of bare ({r['ratio_vs_bare_subscriber']:.3f})",
         r["ratio_vs_bare_subscriber"] >= 0.90),
        (f"p99 lag < 500 ms ({p['lag']['p99_ms']:.0f})", (p["lag"]["p99_ms"] or 1e9) < 500),
        (f"CPU <= 1.3x bare ({r['cpu_ratio_vs_bare_subscriber']:.2f}x)",
         r["cpu_ratio_vs_bare_subscriber"] <= 1.3),
        (f"loss 0 ({p['loss']}), duplicates 0 ({p['duplicates']})",
         p["loss"] == 0 and p["duplicates"] == 0),
    ]
    return "  targets: " + "; ".join(f"{text} {'met' if ok else 'NOT MET'}"
                                     for text, ok in checks)


def report(r: dict[str, Any]) -> str:
    """Human-readable summary of a run."""
    p, b, c = r["pipeline"], r["bare_subscriber"], r["bare_copy"]
    bb = r["bare_subscriber_buffered"]
    lag = p["lag"]
    worst = max(p["lag_timeline"], key=lambda t: t[1], default=[0.0, 0.0])
    return "\n".join([
        f"ingest benchmark: {r['homes']} bed sensors, {r['seconds']:.0f} s at "
        f"{r['target_msgs_per_s']:.0f} msg/s offered (QoS 1, ack after commit)",
        f"  raw limit, bare paho subscriber (receive + JSON decode): {b['msgs_per_s']:.0f} msg/s,"
        f" {b['cpu_us_per_msg']:.1f} µs CPU/msg",
        f"  raw limit, bare binary COPY:                            {c['rows_per_s']:.0f} rows/s",
        f"  reference, bare subscriber on the pipeline's receive path (BufferedClient): "
        f"{bb['msgs_per_s']:.0f} msg/s, {bb['cpu_us_per_msg']:.1f} µs CPU/msg",
        f"  pipeline sustained: {p['sustained_msgs_per_s']:.0f} msg/s "
        f"(offered {p['offered_msgs_per_s']:.0f}; backlog drained {p['drain_after_load_s']:.2f}"
        " s after the load)",
        f"  stored {p['stored']} of {p['sent']} sent: loss {p['loss']}, "
        f"duplicates {p['duplicates']}",
        f"  publish→commit lag: p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms, "
        f"max {lag['max_ms']:.0f} ms (worst second: {worst[1]:.0f} ms at {worst[0]:.0f} s)",
        f"  pipeline CPU: {p['cpu_us_per_msg']:.1f} µs/msg; peak memory "
        f"{p['peak_rss_mib']:.0f} MiB",
        f"  ratio vs bare subscriber: throughput {r['ratio_vs_bare_subscriber']:.3f}, "
        f"CPU {r['cpu_ratio_vs_bare_subscriber']:.2f}x;  vs bare COPY: "
        f"{r['ratio_vs_bare_copy']:.3f};  vs the buffered reference: throughput "
        f"{r['ratio_vs_bare_buffered']:.3f}, CPU {r['cpu_ratio_vs_bare_buffered']:.2f}x",
        _targets(r),
    ])
