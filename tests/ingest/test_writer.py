"""COPY writer against the real database: batching, duplicates, acknowledgement after commit."""

from __future__ import annotations

from datetime import timedelta

from eldercare.embedded import free_port
from gateway.gateway import dead_letter
from gateway.records import EventRecord, StatusRecord, TelemetryRecord
from gateway.schema import EventType
from ingest.batch import Batch
from ingest.store import write_batch
from ingest.writer import IngestWriter, outage_warnings_due
from kernel import db
from tests.support.database import count
from tests.support.ingest import T0, readings
from tests.support.wait import wait_until


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


def _stored_dead_letters(url: str) -> list[tuple[str, bytes, int, str]]:
    with db.connect(url) as conn:
        return [(r[0], bytes(r[1]), r[2], r[3]) for r in conn.execute(
            "SELECT topic, payload, payload_size, reason FROM dead_letters ORDER BY id")]


def test_a_nul_in_a_key_name_is_dead_lettered_with_topic_and_reason(clean_db):
    from gateway.gateway import Gateway
    from gateway.records import DeviceInfo
    from gateway.schema import DeviceType

    gw = Gateway({"bed-1": DeviceInfo("bed-1", "north", 1, DeviceType.BED_SENSOR)}.get,
                 raw_retention=timedelta(days=90))
    topic = "eldercare/v1/north/bed-1/telemetry"
    payload = b'{"ts":1772402400000,"seq":1,"occupied":true,"movement":1,"k\\u0000\\ny":1}'
    letter = gw.process(topic, payload, T0)
    acked: list[int] = []
    writer = IngestWriter(clean_db, acked.extend, max_rows=10, max_age_s=0.05)
    writer.start()
    try:
        writer.add_dead_letter(letter, token=1)  # type: ignore[arg-type]
        wait_until(lambda: acked == [1], what="dead letter acked")
    finally:
        writer.stop()
    [(stored_topic, raw, size, reason)] = _stored_dead_letters(clean_db)
    assert stored_topic == topic
    assert raw == payload and size == len(payload)
    assert reason == "k\\x00\\ny: Extra inputs are not permitted"


def test_a_dead_letter_the_database_refuses_keeps_its_topic(clean_db):
    from gateway.records import DeadLetter

    acked: list[int] = []
    bad = DeadLetter(T0, "eldercare/v1/north/bed-1/event", b"\x00raw", 4, "bad\x00reason")
    writer = IngestWriter(clean_db, acked.extend, max_rows=10, max_age_s=0.05)
    writer.start()
    try:
        writer.add_dead_letter(bad, token=7)
        wait_until(lambda: acked == [7], what="dead letter acked")
    finally:
        writer.stop()
    [(topic, raw, _size, reason)] = _stored_dead_letters(clean_db)
    assert topic == "eldercare/v1/north/bed-1/event"
    assert raw == b"\x00raw"
    assert reason == "bad\\x00reason"


def test_the_commit_hook_sees_every_committed_batch(clean_db):
    seen: list[tuple[int, float]] = []
    acked: list[int] = []
    writer = IngestWriter(clean_db, acked.extend, max_rows=50, max_age_s=0.05,
                          on_commit=lambda batch, at: seen.append((batch.rows, at)))
    writer.start()
    try:
        for i, rec in enumerate(readings(120)):
            writer.add((rec,), token=i + 1)
        wait_until(lambda: len(acked) == 120, what="all tokens acked")
    finally:
        writer.stop()
    assert sum(rows for rows, _ in seen) == 120
    assert all(at > 0 for _, at in seen)


def test_outage_warnings_are_due_at_fractions_of_the_broker_budget():
    assert [outage_warnings_due(s, 600) for s in (0, 299, 300, 479, 480, 600, 9_999)] \
        == [0, 0, 1, 1, 2, 3, 3]
    assert outage_warnings_due(9_999, None) == 0


class SteppingClock:
    """A monotonic clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_database_outage_is_warned_of_against_the_broker_budget(caplog):
    caplog.set_level("WARNING", logger="ingest.writer")
    down = f"postgresql://nobody:x@127.0.0.1:{free_port()}/none?connect_timeout=1"
    writer = IngestWriter(down, lambda tokens: None, max_rows=1, max_age_s=0.01,
                          clock=SteppingClock(100.0), outage_budget_s=600)
    writer.start()
    try:
        writer.add((readings(1)[0],), token=1)
        wait_until(lambda: sum("the broker's queue holds" in r.getMessage()
                               for r in caplog.records) == 3, timeout=60,
                   what="three outage warnings")
    finally:
        writer.stop(timeout=0.1)
    warned = [m for m in (r.getMessage() for r in caplog.records)
              if "the broker's queue holds" in m]
    assert [m.split(", ")[1].split(" %")[0] for m in warned] == ["50", "80", "100"]
