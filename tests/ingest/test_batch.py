"""Pure tests of the batching logic (no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.gateway import dead_letter
from gateway.records import TelemetryRecord
from ingest.batch import Batcher

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def reading(seq: int) -> TelemetryRecord:
    return TelemetryRecord(T0, "bed-1", 1, seq, True, 60.0, 14.0, 3, None, T0)


def test_empty_batcher_is_never_due():
    b = Batcher(max_rows=10, max_age_s=0.2)
    assert not b.due(now=100.0)
    assert b.wait_time(100.0) is None


def test_due_by_size():
    b = Batcher(max_rows=3, max_age_s=60)
    for seq in range(2):
        b.add((reading(seq),), token=seq + 1, now=0.0)
    assert not b.due(0.0)
    b.add((reading(2),), token=3, now=0.0)
    assert b.due(0.0)
    batch = b.take()
    assert [r.seq for r in batch.telemetry] == [0, 1, 2]
    assert batch.tokens == [1, 2, 3]
    assert b.pending == 0


def test_due_by_age_counts_from_first_record():
    b = Batcher(max_rows=1000, max_age_s=0.2)
    b.add((reading(0),), token=1, now=10.0)
    b.add((reading(1),), token=2, now=10.15)
    assert not b.due(10.19)
    wait = b.wait_time(10.1)
    assert wait is not None and abs(wait - 0.1) < 1e-9
    assert b.due(10.25)


def test_multi_record_message_has_one_token_and_qos0_none():
    b = Batcher(max_rows=1000, max_age_s=1)
    b.add(tuple(reading(s) for s in range(5)), token=7, now=0)
    b.add((reading(5),), token=None, now=0)
    batch = b.take()
    assert batch.rows == 6 and batch.tokens == [7]


def test_dead_letters_are_batched_with_their_token():
    b = Batcher(max_rows=1000, max_age_s=1)
    b.add_dead_letter(dead_letter("t", b"x", T0, "bad"), token=9, now=0)
    batch = b.take()
    assert len(batch.dead_letters) == 1 and batch.tokens == [9]
