"""Storage jobs with an injected clock: retention, reconcile, the scheduler's lifecycle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest import jobs, rollups
from ingest.jobs import JobSettings, run_minute_rollup, run_reconcile, run_retention
from kernel import db
from tests.support.database import count
from tests.support.rollups import ROLLUP_TABLES, insert_readings
from tests.support.wait import wait_until

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FAST = JobSettings(chunk=timedelta(days=1))


@pytest.fixture
def conn(clean_db: str, owner_url: str) -> Iterator[Any]:
    """An autocommit connection (the application role's) on emptied tables (including the
    rollup tables, emptied by the owner: the application role may not TRUNCATE)."""
    with db.connect(owner_url, autocommit=True) as c:
        c.execute(f"TRUNCATE {ROLLUP_TABLES}")
    with db.connect(clean_db, autocommit=True) as c:
        yield c


def day_of_readings(conn: Any, start: datetime, seq0: int) -> None:
    insert_readings(conn, [(start + timedelta(minutes=m), True, 60.0, 14.0, 1)
                           for m in range(60)], seq0=seq0)
    conn.execute("INSERT INTO device_status (time, device_id, resident_id, online, "
                 "received_at) VALUES (%s, 'bed-1', 1, true, %s)", (start, start))
    conn.execute("INSERT INTO device_events (time, device_id, resident_id, seq, type, "
                 "received_at) VALUES (%s, 'btn-1', 1, %s, 'test', %s)", (start, seq0, start))


def chunks(conn: Any, table: str) -> int:
    return int(conn.execute("SELECT count(*) FROM show_chunks(%s::regclass)",
                            (table,)).fetchone()[0])


def test_retention_drops_old_raw_chunks_and_keeps_rollups(conn):
    for i, days_ago in enumerate((100, 95, 89, 1)):
        day_of_readings(conn, NOW - timedelta(days=days_ago), seq0=1000 * i)
    run_minute_rollup(conn, NOW, FAST)
    assert conn.execute("SELECT count(*) FROM vitals_1m").fetchone()[0] == 240
    assert chunks(conn, "bed_telemetry") == 4

    dropped = run_retention(conn, NOW, JobSettings())
    assert len(dropped["bed_telemetry"]) == 2 and len(dropped["device_status"]) == 2
    assert chunks(conn, "bed_telemetry") == 2
    oldest = conn.execute("SELECT min(time) FROM bed_telemetry").fetchone()[0]
    assert oldest == NOW - timedelta(days=89)
    assert conn.execute("SELECT count(*) FROM device_status").fetchone()[0] == 2
    # device events are raw data too (an SOS's alert is kept in `alerts`)
    assert len(dropped["device_events"]) == 2
    assert conn.execute("SELECT min(time) FROM device_events").fetchone()[0] == (
        NOW - timedelta(days=89))
    # rollups are never dropped
    assert conn.execute("SELECT count(*) FROM vitals_1m").fetchone()[0] == 240
    # daily: not due again until a day later
    assert run_retention(conn, NOW + timedelta(hours=1), JobSettings()) == {}


def test_retention_is_configurable(conn):
    for i, days_ago in enumerate((40, 20, 1)):
        day_of_readings(conn, NOW - timedelta(days=days_ago), seq0=1000 * i)
    run_minute_rollup(conn, NOW, FAST)
    dropped = run_retention(conn, NOW, JobSettings(retention=timedelta(days=30)))
    assert len(dropped["bed_telemetry"]) == 1
    assert chunks(conn, "bed_telemetry") == 2


def test_retention_never_drops_raw_data_not_yet_rolled_up(conn):
    day_of_readings(conn, NOW - timedelta(days=100), seq0=0)
    dropped = run_retention(conn, NOW, JobSettings(), force=True)
    assert "bed_telemetry" not in dropped
    assert len(dropped["device_status"]) == 1
    assert count_rows(conn) == 60


def count_rows(conn: Any) -> int:
    return int(conn.execute("SELECT count(*) FROM bed_telemetry").fetchone()[0])


def test_reconcile_picks_up_data_that_arrived_hours_late(conn):
    start = NOW - timedelta(hours=6)
    insert_readings(conn, [(start + timedelta(minutes=m), True, 60.0, 14.0, 1)
                           for m in range(6 * 60)])
    run_minute_rollup(conn, NOW, JobSettings())
    # a device flushes its store-and-forward buffer: readings from 5 hours ago
    insert_readings(conn, [(start + timedelta(hours=1, seconds=30), True, 80.0, 14.0, 1)],
                    seq0=10_000)
    run_minute_rollup(conn, NOW + timedelta(minutes=1), JobSettings())
    bucket = start + timedelta(hours=1)
    sql = "SELECT samples, hr_avg FROM vitals_1m WHERE bucket = %s"
    assert conn.execute(sql, (bucket,)).fetchone()[0] == 1  # beyond the relook window
    assert run_reconcile(conn, NOW + timedelta(minutes=1), JobSettings()) == 1
    assert conn.execute(sql, (bucket,)).fetchone() == (2, pytest.approx(70.0))
    assert run_reconcile(conn, NOW + timedelta(minutes=2), JobSettings()) == 0  # not due


def test_run_job_skips_when_another_process_holds_the_job(clean_db):
    calls: list[datetime] = []

    def record(_conn: Any, now: datetime, _cfg: JobSettings) -> None:
        calls.append(now)

    with db.connect(clean_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('eldercare.job.probe'))")
        jobs.run_job(clean_db, "probe", record, JobSettings(), lambda: NOW)
        assert calls == []
    jobs.run_job(clean_db, "probe", record, JobSettings(), lambda: NOW)
    assert calls == [NOW]


def test_run_job_logs_failures_instead_of_raising(clean_db, caplog):
    def boom(_conn: Any, _now: datetime, _cfg: JobSettings) -> None:
        raise RuntimeError("kaput")

    jobs.run_job(clean_db, "boom", boom, JobSettings(), lambda: NOW)
    assert "job boom failed" in caplog.text


def test_scheduler_runs_the_jobs_and_stops_cleanly(conn, clean_db):
    insert_readings(conn, [(NOW - timedelta(minutes=30) + timedelta(seconds=30 * i), True,
                            60.0, 14.0, 1) for i in range(60)])
    conn.execute("INSERT INTO sites (id, name) VALUES ('north', 'North')")
    conn.execute("INSERT INTO residents (id, site_id, full_name) VALUES (1, 'north', 'Ida')")
    quick = JobSettings(rollup_interval_s=0.2, daily_interval_s=0.2, maintenance_interval_s=0.2)
    ran: list[datetime] = []

    def extra(_conn: Any, now: datetime, _cfg: JobSettings) -> None:
        ran.append(now)

    scheduler = jobs.start_scheduler(clean_db, quick, clock=lambda: NOW,
                                     extra=[("learning", extra, 0.2)])
    try:
        assert {j.id for j in scheduler.get_jobs()} == {"vitals_1m", "resident_daily",
                                                        "retention", "reconcile", "learning"}
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM job_watermarks") == 4,
                   what="every job to record a run")
        wait_until(lambda: bool(ran), what="the extra job to run")
        assert ran[0] == NOW
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM resident_daily") == 1,
                   what="the daily summary")
    finally:
        scheduler.shutdown(wait=True)
    assert not scheduler.running
    with db.connect(clean_db, autocommit=True) as c:
        assert rollups.read_watermark(c, "vitals_1m") == NOW - timedelta(minutes=2)
    assert count(clean_db, "SELECT count(*) FROM vitals_1m") == 28


def test_retention_prunes_the_audit_trail_and_leaves_it_verifiable(conn, clean_db):
    from kernel import audit

    with db.connect(clean_db, autocommit=True) as c:
        for days in (200, 190, 170, 1):
            audit.append(c, audit.Event(NOW - timedelta(days=days), audit.Actor("ana", 1),
                                        audit.Action.VITALS_READ))
    run_retention(conn, NOW, JobSettings(audit_retention=timedelta(days=180)))
    with db.connect(clean_db, autocommit=True) as c:
        kept = [r[0] for r in c.execute("SELECT at FROM audit_log ORDER BY id")]
        verdict = audit.verify(c)
    assert kept == [NOW - timedelta(days=170), NOW - timedelta(days=1)]
    assert verdict.intact and verdict.checked == 2


def test_the_application_role_drops_raw_chunks_only(conn):
    """Dropping chunks needs the owner; the application role does it through
    raw_drop_chunks, which refuses every table but the raw hypertables."""
    import psycopg

    assert conn.execute("SELECT current_user").fetchone() == ("eldercare_app",)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT drop_chunks('bed_telemetry'::regclass, older_than => %s)", (NOW,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not a raw telemetry"):
        conn.execute("SELECT raw_drop_chunks('vitals_1m'::regclass, %s)", (NOW,))
    assert rollups.drop_chunks(conn, "bed_telemetry", NOW) == []
