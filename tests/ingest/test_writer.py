"""COPY writer against the real database: batching, duplicates, acknowledgement after commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eldercare import db
from gateway.gateway import dead_letter
from gateway.records import EventRecord, StatusRecord, TelemetryRecord
from gateway.schema import EventType
from ingest.batch import Batch
from ingest.writer import IngestWriter, write_batch
from tests.helpers import count, wait_until

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def readings(n: int, device: str = "bed-1") -> list[TelemetryRecord]:
    return [TelemetryRecord(T0 + timedelta(seconds=i), device, 1, i, True, 60.0 + i % 5,
                            14.0, i % 100, None, T0) for i in range(n)]


def test_write_batch_skips_duplicates(clean_db):
    batch = Batch(telemetry=readings(100))
    with db.connect(clean_db) as conn:
        conn.execute("CREATE TEMP TABLE stage_bed_telemetry (LIKE bed_telemetry) "
                     "ON COMMIT DELETE ROWS")
        conn.execute("CREATE TEMP TABLE stage_device_events (LIKE device_events) "
                     "ON COMMIT DELETE ROWS")
        conn.commit()
        write_batch(conn, batch)
        write_batch(conn, Batch(telemetry=readings(150)))  # first 100 are redeliveries
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry") == 150


def test_writer_acks_after_commit_and_stores_every_table(clean_db):
    acked: list[int] = []
    writer = IngestWriter(clean_db, acked.extend, max_rows=50, max_age_s=0.05)
    writer.start()
    try:
        for i, rec in enumerate(readings(120)):
            writer.add((rec,), token=i + 1)
        writer.add((EventRecord(T0, "btn-1", 1, "north", 1, EventType.TEST, None, None, T0),),
                   token=500)
        writer.add((StatusRecord(T0, "btn-1", 1, 2, True, 88, -60, "1.0", 60, None, T0),),
                   token=501)
        writer.add_dead_letter(dead_letter("x/y", b"junk", T0, "not json"), token=502)
        wait_until(lambda: len(acked) == 123, what="all tokens acked")
    finally:
        writer.stop()
    assert sorted(acked) == [*range(1, 121), 500, 501, 502]
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry") == 120
    assert count(clean_db, "SELECT count(*) FROM device_events") == 1
    assert count(clean_db, "SELECT count(*) FROM device_status") == 1
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason='not json'") == 1


def test_a_row_the_database_refuses_is_isolated_and_dead_lettered(clean_db):
    acked: list[int] = []
    writer = IngestWriter(clean_db, acked.extend, max_rows=1000, max_age_s=0.05)
    good = readings(40)
    poison = TelemetryRecord(T0, "bed-\x00", 1, 999, True, 60.0, 14.0, 1, None, T0)
    writer.start()
    try:
        for i, rec in enumerate([*good[:20], poison, *good[20:]]):
            writer.add((rec,), token=i + 1)
        wait_until(lambda: len(acked) == 41, what="every token acked")
    finally:
        writer.stop()
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry") == 40
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason LIKE "
                           "'database refused the row%%'") == 1
