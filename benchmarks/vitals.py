"""Benchmark: vitals read path and storage jobs on a 1,000-home, 30-day dataset.

Run: .venv/bin/python -m benchmarks.vitals [--homes 1000] [--days 30]
Starts a throwaway PostgreSQL+TimescaleDB, fills vitals_1m for `days - 1` days (synthetic,
as the rollup would leave it), raw bed_telemetry (5 s readings) for the last day rolled up by
the real job, then times GET /api/v1/residents/{id}/vitals for 7 days at 1-minute buckets.
Target: p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from dashboard.app import create_app
from eldercare.embedded import PostgresConfig, free_port, start_postgres
from eldercare.migrate import migrate
from ingest import jobs, rollups
from kernel import accounts, db
from kernel.sites import add_site

logger = logging.getLogger("bench")
SECRET = "bench-secret-0123456789abcdef0123456789"  # noqa: S105 (throwaway app)
BENCH_PASSWORD = "vitals bench admin password"  # noqa: S105 (throwaway database)


def fill(url: str, homes: int, days: int, now: datetime) -> None:
    """Residents, synthetic per-minute rollups, and one day of raw readings."""
    with db.connect(url, autocommit=True) as conn:
        add_site(conn, "bench", "Bench", "Europe/Oslo")
        conn.execute("INSERT INTO residents (site_id, full_name) "
                     "SELECT 'bench', 'Resident ' || g FROM generate_series(1, %s) g", (homes,))
        accounts.add_user(conn, "admin", BENCH_PASSWORD, "admin")
        raw_start = (now - timedelta(days=1)).replace(second=0, microsecond=0)
        start = raw_start - timedelta(days=days - 1)
        t0 = time.perf_counter()
        for day in range(days - 1):
            a = start + timedelta(days=day)
            conn.execute(
                "INSERT INTO vitals_1m SELECT r, b, 60 + 10 * random(), 55, 75, "
                "14 + 2 * random(), 12, 18, 2 * random(), 0.4, 12, 5, 5 "
                "FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute', "
                "interval '1 minute') b, generate_series(1, %s) r",
                (a, a + timedelta(days=1), homes))
        logger.info("vitals_1m: %d days in %.0f s", days - 1, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for hour in range(24):
            a = raw_start + timedelta(hours=hour)
            conn.execute(
                "INSERT INTO bed_telemetry (time, device_id, resident_id, seq, occupied, "
                "heart_rate, respiration_rate, movement, received_at) "
                "SELECT t, 'bed-' || r, r, extract(epoch FROM t)::bigint, random() < 0.4, "
                "60 + 10 * random(), 14 + 2 * random(), (random() * 10)::int, t "
                "FROM generate_series(%s::timestamptz, %s::timestamptz - interval '5 seconds', "
                "interval '5 seconds') t, generate_series(1, %s) r",
                (a, a + timedelta(hours=1), homes))
        logger.info("bed_telemetry: 24 h raw in %.0f s", time.perf_counter() - t0)
        conn.execute("INSERT INTO job_watermarks VALUES ('vitals_1m', %s, now())", (raw_start,))
        conn.execute("ANALYZE")


def time_jobs(url: str, now: datetime) -> None:
    """The storage jobs at this scale."""
    cfg = jobs.JobSettings()
    with db.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        run = jobs.run_minute_rollup(conn, now, cfg)
        logger.info("rollup catch-up of 24 h raw: %d windows, %d rows in %.1f s",
                    run.windows, run.rows, time.perf_counter() - t0)
        t0 = time.perf_counter()
        jobs.run_minute_rollup(conn, now + timedelta(minutes=1), cfg)
        logger.info("steady-state per-minute run (10 min relook): %.2f s",
                    time.perf_counter() - t0)
        t0 = time.perf_counter()
        rows = jobs.run_daily_summaries(conn, now, cfg)
        logger.info("daily summaries (yesterday + today): %d rows in %.1f s", rows,
                    time.perf_counter() - t0)
        conn.execute("ANALYZE vitals_1m")


async def time_reads(url: str, homes: int, now: datetime, n: int) -> None:
    """Latency of the vitals endpoint for random residents."""
    app = create_app(url, SECRET)
    cases = {"7d @ 1m (1m source)": (timedelta(days=7), "1m"),
             "6h @ 1m (raw source)": (timedelta(hours=6), "1m"),
             "24h @ 5m (1m source)": (timedelta(hours=24), "5m"),
             "30d @ 1d (1d source)": (timedelta(days=30), "1d")}
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://bench") as client):
        resp = await client.post("/api/v1/auth/token",
                                 data={"username": "admin", "password": BENCH_PASSWORD})
        headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
        for label, (span, bucket) in cases.items():
            times = []
            for i in range(n + 3):
                rid = random.randint(1, homes)  # noqa: S311
                params = {"from": (now - span).isoformat(), "to": now.isoformat(),
                          "bucket": bucket}
                t0 = time.perf_counter()
                resp = await client.get(f"/api/v1/residents/{rid}/vitals", params=params,
                                        headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                assert resp.status_code == 200, resp.text
                if i >= 3:  # warm-up
                    times.append(elapsed)
            body = resp.json()
            times.sort()
            logger.info("%-22s points=%5d source=%s  p50=%.1f ms  p95=%.1f ms  max=%.1f ms",
                        label, len(body["points"]), body["source"], statistics.median(times),
                        times[int(0.95 * (len(times) - 1))], times[-1])


def main() -> None:
    """Run the benchmark on a throwaway database."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="reuse/keep this data directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("dashboard").setLevel(logging.WARNING)
    path = args.keep or Path(tempfile.mkdtemp(prefix="eldercare-bench-"))
    path.chmod(0o755)
    cfg = PostgresConfig(path, free_port(), "bench-pw", "bench-app-pw", durable=False)
    proc = start_postgres(cfg)
    try:
        migrate(cfg.owner_url)
        now = datetime.now(UTC)
        with db.connect(cfg.url, autocommit=True) as conn:
            filled = conn.execute("SELECT count(*) FROM residents").fetchone()
        if not filled or not filled[0]:
            fill(cfg.url, args.homes, args.days, now)
            time_jobs(cfg.url, now)
        with db.connect(cfg.url, autocommit=True) as conn:
            wm = rollups.read_watermark(conn, "vitals_1m")
        asyncio.run(time_reads(cfg.url, args.homes, (wm or now) + timedelta(minutes=2),
                               args.requests))
    finally:
        proc.stop()
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
