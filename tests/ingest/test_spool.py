"""The local spool: order, durability across a crash, the disk budget, the figures."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.records import DeadLetter, EventRecord, StatusRecord, TelemetryRecord
from gateway.schema import EventType
from ingest.batch import Batch
from ingest.spool import Spool, SpoolCorruptError, decode_batch, encode_batch
from tests.support.ingest import SPOOL_T0 as T0
from tests.support.ingest import Clock
from tests.support.ingest import spool_batch as batch


def test_every_record_kind_round_trips_exactly() -> None:
    b = Batch(
        telemetry=[TelemetryRecord(T0, "bed-1", 1, 7, False, None, 14.25, 3, T0 - timedelta(
            days=3000), T0)],
        events=[EventRecord(T0, "btn-1", 2, "north", 8, EventType.SOS, "x", None, T0),
                EventRecord(T0, "btn-1", 2, "north", 9, EventType.FALL, None, T0, T0, "ts?")],
        status=[StatusRecord(T0, "btn-1", 2, None, True, 88, -60, "1.0", 60, None, T0),
                StatusRecord(T0, "btn-1", 2, 3, False, None, None, None, None, None, T0)],
        dead_letters=[DeadLetter(T0, "a/b", b"\x00\xff raw", 9, "not json")],
        tokens=[1, 2, 3])
    back = decode_batch(encode_batch(b))
    assert (back.telemetry, back.events, back.status, back.dead_letters) == \
        (b.telemetry, b.events, b.status, b.dead_letters)
    assert back.tokens == []  # tokens belong to the connection, never to the disk


def test_an_unknown_format_is_refused_not_misread() -> None:
    with pytest.raises(SpoolCorruptError):
        decode_batch(b"\x63" + encode_batch(batch(0))[1:])
    with pytest.raises(SpoolCorruptError):
        decode_batch(encode_batch(batch(0))[:20])


def test_batches_come_back_oldest_first_and_the_figures_follow(tmp_path: Path) -> None:
    clock = Clock()
    spool = Spool(tmp_path / "spool.sqlite", clock=clock)
    assert spool.oldest() is None and spool.oldest_age_s is None
    first = spool.append(batch(0))
    clock.now += 10
    spool.append(batch(3))
    clock.now += 5
    assert (spool.batches, spool.rows) == (2, 6)
    assert spool.oldest_age_s == 15
    oldest = spool.oldest()
    assert oldest is not None and oldest[0] == first
    assert [r.seq for r in oldest[1].telemetry] == [0, 1, 2]
    spool.remove(first)
    assert spool.oldest_age_s == 5
    nxt = spool.oldest()
    assert nxt is not None and [r.seq for r in nxt[1].telemetry] == [3, 4, 5]
    peak = spool.peak_bytes
    spool.remove(nxt[0])
    assert spool.stats().as_dict() == {"batches": 0, "rows": 0, "bytes": 0,
                                       "oldest_age_s": None, "peak_bytes": peak}
    assert peak > 0


_CHILD = """
import os, sys
from tests.support.ingest import spool_batch as batch
from ingest.spool import Spool
spool = Spool(__import__("pathlib").Path(sys.argv[1]))
for i in range(50):
    spool.append(batch(3 * i))
print("appended", flush=True)
os._exit(0)  # no close, no flush: what a SIGKILL leaves
"""


def test_every_appended_batch_survives_a_process_that_never_closed(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert "appended" in out.stdout
    spool = Spool(path)
    assert (spool.batches, spool.rows) == (50, 150)
    seqs: list[int] = []
    while (item := spool.oldest()) is not None:
        seqs += [r.seq for r in item[1].telemetry]
        spool.remove(item[0])
    assert seqs == list(range(150))


def test_the_budget_counts_bodies_and_the_free_disk(tmp_path: Path) -> None:
    free = [10**12]
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=500, min_free_bytes=1000,
                  free_bytes=lambda _: free[0])
    assert spool.has_room()
    while spool.has_room():
        spool.append(batch(0))
    assert spool.bytes >= 500
    item = spool.oldest()
    assert item is not None
    spool.remove(item[0])
    assert spool.bytes < 500 and spool.has_room()
    free[0] = 999
    assert not spool.has_room()


def test_reopening_restores_the_figures(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, clock=clock)
    spool.append(batch(0))
    spool.append(batch(3, 5))
    size = spool.bytes
    spool.close()
    clock.now += 60
    again = Spool(path, clock=clock)
    assert (again.batches, again.rows, again.bytes) == (2, 8, size)
    assert again.oldest_age_s == 60


def test_a_batch_this_release_cannot_read_is_set_aside_not_retried_forever(tmp_path: Path
                                                                           ) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append(batch(0))
    spool.append(batch(3))
    body = bytes(spool._db.execute("SELECT body FROM batches WHERE id = 1").fetchone()[0])
    spool._db.execute("UPDATE batches SET body = ? WHERE id = 1", (b"\x63" + body[1:],))
    item = spool.oldest()
    assert item is not None and [r.seq for r in item[1].telemetry] == [3, 4, 5]
    assert spool.batches == 1
    assert spool._db.execute("SELECT count(*) FROM set_aside").fetchone() == (1,)
