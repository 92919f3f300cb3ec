"""`python -m benchmarks ingest`: pipeline throughput, loss, lag and CPU against raw limits.

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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.ledger import DeviceLedger, account
from benchmarks.loadgen import LoadGenerator, LoadResult, discard_session, forget_part
from benchmarks.stats import lag_timeline, percentiles
from eldercare.embedded import die_with_parent, wait_for
from eldercare.pipeline import session_client_ids
from eldercare.runtime import Runtime
from gateway.broker_admin import BrokerAdmin
from gateway.presence import part_name
from gateway.provisioning import DeviceCredentials, add_device
from gateway.records import TelemetryRecord
from gateway.schema import DeviceType, site_filter
from ingest.batch import Batch
from ingest.store import TELEMETRY_COLS, TELEMETRY_TYPES
from kernel.db import connect
from kernel.sites import add_resident, add_site

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
    drain_timeout_s: float = 300.0  # after the load, wait at most this long for the pipeline
    drain_quiet_s: float = 30.0  # ... and stop waiting once it stored nothing for this long
    db_outage_s: float = 0.0  # stop the database this long, a third into the load


@dataclass(frozen=True)
class DatabaseControl:
    """How the benchmark stops and starts the (embedded) database for `--db-outage`."""

    stop: Callable[[], None]
    start: Callable[[], None]


@dataclass
class _Outage:
    """When the database was stopped and started again (epoch seconds)."""

    began: float = 0.0
    ended: float = 0.0


def _load_with_outage(gen: LoadGenerator, rate: float, seconds: float,
                      control: DatabaseControl, outage_s: float) -> tuple[LoadResult, _Outage]:
    """Run the load in a thread and the outage here, a third into the load.

    The database is started again from this (the main) thread on purpose: children die with
    the thread that started them (`die_with_parent`), and a helper thread that ends would
    take the restarted database down with it.
    """
    out: list[LoadResult] = []
    load = threading.Thread(target=lambda: out.append(gen.run(rate=rate, seconds=seconds)),
                            name="bench-load", daemon=True)
    cut = _Outage()
    start = time.monotonic()
    load.start()
    time.sleep(seconds / 3)
    cut.began = time.time()
    control.stop()
    time.sleep(max(0.0, outage_s - (time.time() - cut.began)))
    control.start()
    cut.ended = time.time()
    load.join(max(0.0, seconds - (time.monotonic() - start)) + 120)
    if not out:
        raise RuntimeError("the load generator did not finish")
    return out[0], cut


def create_residents(rt: Runtime, site: str, label: str, count: int,
                     types: Sequence[DeviceType]) -> list[tuple[DeviceCredentials, ...]]:
    """`count` new residents of a bench `site`, each with one device of each of `types`."""
    out: list[tuple[DeviceCredentials, ...]] = []
    with connect(rt.database_url) as conn, BrokerAdmin(rt.mqtt_admin) as admin:
        add_site(conn, site, f"{label} benchmark")
        for i in range(count):
            rid = add_resident(conn, site, f"{label} bench resident {i}")
            conn.commit()
            out.append(tuple(add_device(conn, admin, rt.mqtt, rid, t) for t in types))
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
    argv = [sys.executable, "-m", "benchmarks.baresub", rt.mqtt.url(),
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
    # as the owner: the scratch table is a schema change the application role may not make
    with connect(rt.owner_url) as conn:
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


def _run_filter(ledgers: Sequence[DeviceLedger], since: datetime) -> tuple[str, tuple[Any, ...]]:
    """SQL (a CTE `run_rows(device_id, seq)`) for the stored rows of one load run: per
    device, its seq range in that run; `since` lets TimescaleDB skip older chunks (the
    generator stamps each reading with its publish time)."""
    sql = ("WITH run(device_id, lo, hi) AS (SELECT * FROM unnest(%s::text[], %s::int8[], "
           "%s::int8[])), run_rows AS (SELECT t.device_id, t.seq FROM bed_telemetry t "
           "JOIN run r ON t.device_id = r.device_id AND t.seq BETWEEN r.lo AND r.hi "
           "WHERE t.time >= %s) ")
    return sql, ([led.device_id for led in ledgers], [led.first_seq for led in ledgers],
                 [led.last_seq for led in ledgers], since)


def _run_rows(rt: Runtime, ledgers: Sequence[DeviceLedger], since: datetime) -> int:
    """Rows stored so far for one load run's (device, seq) pairs."""
    sql, params = _run_filter(ledgers, since)
    with connect(rt.database_url, autocommit=True) as conn:
        row = conn.execute(sql + "SELECT count(*) FROM run_rows", params).fetchone()
    return int(str(row[0])) if row else 0


def count_loss(rt: Runtime, ledgers: Sequence[DeviceLedger], since: datetime
               ) -> dict[str, Any]:
    """PUBACKed against stored (device, seq) pairs of one load run, as sets (ledger.py).

    The database returns each device's stored seqs as islands of consecutive seqs (one
    island per device when nothing is missing), not millions of rows.
    """
    sql, params = _run_filter(ledgers, since)
    islands = sql + (
        "SELECT device_id, min(seq), max(seq), sum(n) FROM ("
        " SELECT device_id, seq, n, seq - row_number() OVER (PARTITION BY device_id "
        " ORDER BY seq) AS island FROM ("
        "  SELECT device_id, seq, count(*) AS n FROM run_rows GROUP BY device_id, seq) d) i "
        "GROUP BY device_id, island")
    stored: dict[str, list[tuple[int, int]]] = {}
    rows = 0
    with connect(rt.database_url, autocommit=True) as conn:
        for device_id, lo, hi, n in conn.execute(islands, params):
            stored.setdefault(str(device_id), []).append((int(str(lo)), int(str(hi))))
            rows += int(str(n))
    return account(ledgers, stored, rows)


def await_drain(rt: Runtime, load: LoadResult, since: datetime, timeout_s: float,
                quiet_s: float) -> tuple[str, float]:
    """Wait until every PUBACKed message of `load` is stored, the pipeline has stored
    nothing new for `quiet_s`, or `timeout_s` has passed; say which and after how long.

    It never fails: whatever is missing then is reported as lost by `count_loss`.
    """
    start = time.monotonic()
    last, last_change = -1, start
    pubacked = sum(led.acked_bits().bit_count() for led in load.ledgers)
    while True:
        now = time.monotonic()
        rows = _run_rows(rt, load.ledgers, since)
        if rows >= pubacked:
            return "complete", now - start
        if rows != last:
            last, last_change = rows, now
        if now - last_change >= quiet_s:
            return f"stalled (nothing stored for {quiet_s:.0f} s)", now - start
        if now - start >= timeout_s:
            return f"deadline ({timeout_s:.0f} s)", now - start
        time.sleep(0.5)


def pipeline_run(rt: Runtime, gen: LoadGenerator, rate: float, seconds: float,
                 workdir: Path, drain_timeout_s: float = 300.0, drain_quiet_s: float = 30.0,
                 outage: tuple[DatabaseControl, float] | None = None) -> dict[str, Any]:
    """Run the real pipeline process under a fixed load; account for every PUBACKed
    (device, seq) pair in the database, whatever the outcome. `outage`: stop the database
    for that many seconds, a third into the load (the pipeline spools meanwhile)."""
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
        cut: _Outage | None = None
        load_start = time.time()
        if outage:
            load, cut = _load_with_outage(gen, rate, seconds, *outage)
        else:
            load = gen.run(rate=rate, seconds=seconds)
        load_end = time.time()
        drain_state, drain_wait = await_drain(rt, load, since, drain_timeout_s,
                                              drain_quiet_s)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        for client_id in session_client_ids(name):  # else they queue the next run's load
            discard_session(rt.mqtt, client_id)
        forget_part(rt.mqtt, part_name("pipeline", name))
    result = _wait_json(stats, "received", 30)
    samples = [(float(at), float(lag)) for at, lag in result.get("lag_samples", [])]
    if (result.get("spool") or {}).get("rows") == 0:  # each run's pipeline has its own
        for path in rt.data_dir.glob(f"spool-{name}.sqlite*"):
            path.unlink(missing_ok=True)
    # The last batch's commit time, from the pipeline itself: the drain is not inflated by
    # how often the benchmark polls the table.
    last_commit = max((at for at, _ in samples), default=load_end)
    drain = max(0.0, last_commit - load_end)
    loss = count_loss(rt, load.ledgers, since)  # after the stop: its last batch is in
    return {**loss, "drain_state": drain_state, "drain_wait_s": drain_wait,
            "offered_msgs_per_s": load.sent / load.seconds,
            "sustained_msgs_per_s": load.sent / (load_end - load_start + drain),
            "drain_after_load_s": drain, "lag": percentiles([lag for _, lag in samples]),
            "lag_timeline": lag_timeline(samples),
            "cpu_us_per_msg": 1e6 * result["cpu_s"] / max(1, result["received"]),
            "peak_rss_mib": result["peak_rss_mib"], "spool": result.get("spool"),
            "db_outage": None if cut is None else {
                "seconds": cut.ended - cut.began, "began_s_into_load": cut.began - load_start}}


def _probe(rt: Runtime, gen: LoadGenerator, before: int, since: datetime) -> bool:
    """Publish one message and see whether the pipeline stores it."""
    gen.run(rate=1000, seconds=0.001)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if _bench_rows(rt, since) > before:
            return True
        time.sleep(0.05)
    return False


def run(rt: Runtime, cfg: BenchConfig, database: DatabaseControl | None = None
        ) -> dict[str, Any]:
    """The whole benchmark; returns the figures (the CLI prints them). With
    `cfg.db_outage_s`, `database` stops and starts the database mid-load."""
    if cfg.db_outage_s and database is None:
        raise ValueError("a database outage needs a database the benchmark can stop")
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
            outage = (database, cfg.db_outage_s) if cfg.db_outage_s and database else None
            pipe = pipeline_run(rt, gen, rate, cfg.seconds, work, cfg.drain_timeout_s,
                                cfg.drain_quiet_s, outage)
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


def _checks(r: dict[str, Any]) -> list[tuple[str, bool]]:
    """The issue's targets, each with whether it held; the loss target comes first."""
    p = r["pipeline"]
    return [
        (f"no PUBACKed message lost ({p['lost']}) or duplicated ({p['duplicates']})",
         p["lost"] == 0 and p["duplicates"] == 0),
        (f"throughput >= 0.90 of bare ({r['ratio_vs_bare_subscriber']:.3f})",
         r["ratio_vs_bare_subscriber"] >= 0.90),
        (f"p99 lag < 500 ms ({p['lag']['p99_ms'] or 0:.0f})",
         (p["lag"]["p99_ms"] or 1e9) < 500),
        (f"CPU <= 1.3x bare ({r['cpu_ratio_vs_bare_subscriber']:.2f}x)",
         r["cpu_ratio_vs_bare_subscriber"] <= 1.3),
    ]


def exit_code(r: dict[str, Any]) -> int:
    """0: every target held; 1: a PUBACKed message was lost or duplicated; 2: nothing lost,
    but a performance target (throughput, lag, CPU) was missed."""
    (_, kept), *perf = _checks(r)
    if not kept:
        return 1
    return 0 if all(ok for _, ok in perf) else 2


def _targets(r: dict[str, Any]) -> str:
    return "  targets: " + "; ".join(f"{text} {'met' if ok else 'NOT MET'}"
                                     for text, ok in _checks(r))


def _loss_lines(p: dict[str, Any]) -> list[str]:
    lines = [
        f"  by (device, seq): sent {p['sent']}, PUBACKed {p['pubacked']}, stored "
        f"{p['stored']} (in {p['rows']} rows): lost {p['lost']} (PUBACKed, not stored), "
        f"duplicates {p['duplicates']}, stored but not PUBACKed {p['stored_not_pubacked']} "
        f"(allowed), not PUBACKed {p['not_pubacked']}",
        f"  drain: {p['drain_state']} after {p['drain_wait_s']:.1f} s",
    ]
    if p["lost_examples"]:
        lines.append(f"  first lost: {', '.join(p['lost_examples'])}")
    return lines + _spool_lines(p)


def _spool_lines(p: dict[str, Any]) -> list[str]:
    """The database outage and what the spool did about it."""
    lines = []
    cut = p.get("db_outage")
    if cut:
        lines.append(f"  database outage: {cut['seconds']:.1f} s, from "
                     f"{cut['began_s_into_load']:.1f} s into the load")
    spool = p.get("spool")
    if spool:
        episodes = spool.get("episodes") or []
        drained = "; ".join(f"{e['rows']} rows spooled and drained in {e['seconds']:.1f} s"
                            for e in episodes) or "never used"
        lines.append(f"  spool: peak {spool['peak_bytes'] / 1e6:.1f} MB; {drained}; "
                     f"left at stop {spool['rows']} rows")
    return lines


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
        *_loss_lines(p),
        f"  publish→commit lag (a uniform sample of messages): p50 {lag['p50_ms'] or 0:.0f} ms, "
        f"p99 {lag['p99_ms'] or 0:.0f} ms, max {lag['max_ms'] or 0:.0f} ms "
        f"(worst second: {worst[1]:.0f} ms at {worst[0]:.0f} s)",
        f"  pipeline CPU: {p['cpu_us_per_msg']:.1f} µs/msg; peak memory "
        f"{p['peak_rss_mib']:.0f} MiB",
        f"  ratio vs bare subscriber: throughput {r['ratio_vs_bare_subscriber']:.3f}, "
        f"CPU {r['cpu_ratio_vs_bare_subscriber']:.2f}x;  vs bare COPY: "
        f"{r['ratio_vs_bare_copy']:.3f};  vs the buffered reference: throughput "
        f"{r['ratio_vs_bare_buffered']:.3f}, CPU {r['cpu_ratio_vs_bare_buffered']:.2f}x",
        _targets(r),
    ])
