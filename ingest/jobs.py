"""Scheduled storage jobs: per-minute rollup, daily summaries, reconcile and retention.

The job functions take an autocommit connection and an injected `now`; each processes a
bounded window per transaction and records how far it got in `job_watermarks`, so it is
idempotent and catches up after downtime. `start_scheduler` runs them with APScheduler,
each run on its own short-lived connection (never the ingest writer's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ingest import rollups
from ingest.rollups import DayRules
from kernel import audit, db
from kernel.db import Conn

logger = logging.getLogger(__name__)

ROLLUP_JOB = rollups.ROLLUP_JOB
DAILY_JOB = "resident_daily"
RECONCILE_JOB = "reconcile"
RETENTION_JOB = "retention"
DAY = timedelta(days=1)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobSettings:
    """Tunables of the storage jobs (defaults are the production values)."""

    retention: timedelta = timedelta(days=90)
    audit_retention: timedelta = timedelta(days=audit.DEFAULT_RETENTION_DAYS)
    retention_tables: tuple[str, ...] = ("bed_telemetry", "device_status", "device_events")
    lateness: timedelta = timedelta(minutes=2)
    relook: timedelta = timedelta(minutes=10)
    chunk: timedelta = timedelta(hours=1)
    reconcile_lookback: timedelta = timedelta(hours=48)
    daily_catchup_limit: timedelta = timedelta(days=14)
    retention_every: timedelta = DAY
    reconcile_every: timedelta = DAY
    rollup_interval_s: float = 60.0
    daily_interval_s: float = 15 * 60.0
    maintenance_interval_s: float = 60 * 60.0
    misfire_grace_s: int = 60
    lock_timeout_ms: int = 5000
    day_rules: DayRules = field(default_factory=DayRules)


@dataclass(frozen=True)
class RollupRun:
    """What one per-minute rollup run did."""

    windows: int
    rows: int
    done_until: datetime | None


def run_minute_rollup(conn: Conn, now: datetime, cfg: JobSettings) -> RollupRun:
    """Roll raw telemetry into vitals_1m from the watermark (minus `relook`) to now - lateness."""
    target = rollups.floor_minute(now - cfg.lateness)
    done = rollups.read_watermark(conn, ROLLUP_JOB)
    if done is None:
        first = rollups.earliest_telemetry(conn)
        if first is None:
            return RollupRun(0, 0, None)  # nothing to roll up yet; start from the first row
        start = rollups.floor_minute(first)
    else:
        start = rollups.floor_minute(done - cfg.relook)
    count = rows = 0
    for a, b in rollups.windows(start, target, cfg.chunk):
        with conn.transaction():
            rows += rollups.rollup_minutes(conn, a, b)
            rollups.write_watermark(conn, ROLLUP_JOB, b, now)
        count += 1
    if count > 1:
        logger.info("vitals_1m: %d windows up to %s, %d rows", count, target.isoformat(), rows)
    return RollupRun(count, rows, max(target, done) if done else target)


def run_daily_summaries(conn: Conn, now: datetime, cfg: JobSettings) -> int:
    """Recompute resident_daily for yesterday and today, or since the last run after downtime."""
    data_until = rollups.read_watermark(conn, ROLLUP_JOB)
    if data_until is None:
        return 0  # no per-minute data yet
    last = rollups.read_watermark(conn, DAILY_JOB)
    since = now - DAY if last is None else min(now - DAY, last)
    since = max(since, now - cfg.daily_catchup_limit)
    rows = _summarize(conn, since, now, data_until, now, cfg)
    with conn.transaction():
        rollups.write_watermark(conn, DAILY_JOB, data_until, now)
    return rows


def _summarize(conn: Conn, since: datetime, until: datetime, data_until: datetime,
               now: datetime, cfg: JobSettings) -> int:
    """Summaries for the local dates of [since, until], one day-window per transaction."""
    rows = 0
    for a, b in rollups.windows(since, until, DAY) if since < until else [(until, until)]:
        with conn.transaction():
            rows += rollups.summarize_days(conn, a, b, data_until, now, cfg.day_rules)
    return rows


def run_reconcile(conn: Conn, now: datetime, cfg: JobSettings, force: bool = False) -> int:
    """Re-roll the last `reconcile_lookback` (late store-and-forward data) and its days."""
    if not force and not _due(conn, RECONCILE_JOB, now, cfg.reconcile_every):
        return 0
    done = rollups.read_watermark(conn, ROLLUP_JOB)
    if done is None:
        return 0
    start = rollups.floor_minute(now - cfg.reconcile_lookback)
    rows = 0
    for a, b in rollups.windows(start, done, cfg.chunk):
        with conn.transaction():
            rows += rollups.rollup_minutes(conn, a, b)
    _summarize(conn, start, now, done, now, cfg)
    with conn.transaction():
        rollups.write_watermark(conn, RECONCILE_JOB, now, now)
    logger.info("reconcile: %d late per-minute rows corrected since %s", rows, start.isoformat())
    return rows


def run_retention(conn: Conn, now: datetime, cfg: JobSettings, force: bool = False
                  ) -> dict[str, list[str]]:
    """Drop raw chunks older than `retention` (never rollups, never raw not yet rolled up),
    and prune the audit trail past `audit_retention`."""
    if not force and not _due(conn, RETENTION_JOB, now, cfg.retention_every):
        return {}
    cutoff = now - cfg.retention
    rolled = rollups.read_watermark(conn, ROLLUP_JOB)
    dropped: dict[str, list[str]] = {}
    for table in cfg.retention_tables:
        older_than = cutoff
        if table == "bed_telemetry":
            if rolled is None:
                logger.warning("retention: bed_telemetry kept, it was never rolled up")
                continue
            older_than = min(cutoff, rolled - cfg.reconcile_lookback)
        dropped[table] = _drop(conn, table, older_than, cfg.lock_timeout_ms)
    prune_audit(conn, now, cfg)
    with conn.transaction():
        rollups.write_watermark(conn, RETENTION_JOB, now, now)
    return dropped


def prune_audit(conn: Conn, now: datetime, cfg: JobSettings) -> int:
    """Delete audit records older than `audit_retention` (the only path allowed to: the
    hash of the last one deleted becomes the anchor the remaining chain verifies from)."""
    pruned = audit.prune(conn, now - cfg.audit_retention)
    if pruned:
        logger.info("retention: pruned %d audit records older than %s", pruned,
                    (now - cfg.audit_retention).isoformat())
    return pruned


def _drop(conn: Conn, table: str, older_than: datetime, lock_timeout_ms: int) -> list[str]:
    """Drop one table's old chunks; give up (until the next run) rather than wait on locks."""
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            chunks = rollups.drop_chunks(conn, table, older_than)
    except psycopg.errors.LockNotAvailable:
        logger.warning("retention: %s is busy; will retry on the next run", table)
        return []
    if chunks:
        logger.info("retention: dropped %d chunks of %s older than %s", len(chunks), table,
                    older_than.isoformat())
    return chunks


def _due(conn: Conn, job: str, now: datetime, every: timedelta) -> bool:
    """True when `job` last completed at least `every` before `now` (or never)."""
    last = rollups.read_watermark(conn, job)
    return last is None or now - last >= every


JobFn = Callable[[Conn, datetime, JobSettings], Any]


def run_job(database_url: str, name: str, fn: JobFn, cfg: JobSettings, clock: Clock) -> None:
    """One run of `fn` on its own connection, skipped if another process is running it."""
    try:
        with db.connect(database_url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                               (f"eldercare.job.{name}",)).fetchone()
            if not row or not row[0]:
                logger.info("job %s is running elsewhere; skipped", name)
                return
            fn(conn, clock(), cfg)
    except psycopg.OperationalError as exc:
        logger.warning("job %s: database unavailable (%s); will retry", name, exc)
    except Exception:
        logger.exception("job %s failed", name)


def start_scheduler(database_url: str, cfg: JobSettings | None = None,
                    clock: Clock = utc_now,
                    extra: Sequence[tuple[str, JobFn, float]] = ()) -> BackgroundScheduler:
    """Start the storage jobs in a background scheduler; call `.shutdown()` to stop it.

    `extra` (name, job, period in seconds) are jobs of other packages run the same way (own
    connection, advisory lock, once at start), e.g. the outlier digest after the daily
    summaries: the composition root passes them, as this package imports no feature."""
    cfg = cfg or JobSettings()
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": cfg.misfire_grace_s},
    )
    start = datetime.now(UTC)
    # Every job also runs once at start, so the service catches up after downtime at once;
    # retention and reconcile check each hour whether their daily run is due.
    jobs: list[tuple[str, JobFn, float]] = [
        (ROLLUP_JOB, run_minute_rollup, cfg.rollup_interval_s),
        (DAILY_JOB, run_daily_summaries, cfg.daily_interval_s),
        (RETENTION_JOB, run_retention, cfg.maintenance_interval_s),
        (RECONCILE_JOB, run_reconcile, cfg.maintenance_interval_s),
        *extra,
    ]
    for name, fn, every_s in jobs:
        scheduler.add_job(run_job, IntervalTrigger(seconds=every_s, timezone=UTC),
                          args=(database_url, name, fn, cfg, clock), id=name, name=name,
                          next_run_time=start)
    scheduler.start()
    logger.info("storage jobs started: %s", ", ".join(name for name, *_ in jobs))
    return scheduler
