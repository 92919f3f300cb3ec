"""The writer with a spool, against a PostgreSQL the test stops and starts: durable before
acknowledged, drained in order, and a refusal (no acknowledgement) at the disk budget."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eldercare.embedded import start_postgres
from gateway.records import TelemetryRecord
from ingest.batch import Batch
from ingest.spool import Spool
from ingest.writer import IngestWriter
from tests.support.database import count
from tests.support.wait import wait_until

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def reading(seq: int) -> TelemetryRecord:
    return TelemetryRecord(T0 + timedelta(seconds=seq), "bed-1", 1, seq, True, 60.0, 14.0,
                           seq % 100, None, T0)


class Committed:
    """The commit hook: the seqs of every committed batch, in commit order."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    def __call__(self, batch: Batch, at: float) -> None:
        self.seqs += [r.seq for r in batch.telemetry]


def _writer(url: str, spool: Spool, acked: list[int], hook: Committed) -> IngestWriter:
    writer = IngestWriter(url, acked.extend, max_rows=50, max_age_s=0.02, spool=spool,
                          on_commit=hook)
    writer.start()
    return writer


def _feed(writer: IngestWriter, seqs: range) -> None:
    for seq in seqs:
        writer.add((reading(seq),), token=seq + 1)


def _stored(url: str) -> int:
    return count(url, "SELECT count(*) FROM bed_telemetry")


def test_an_outage_is_spooled_acknowledged_and_drained_in_order(
        own_pg: tuple[Any, list[Any]], tmp_path: Path) -> None:
    cfg, procs = own_pg
    acked: list[int] = []
    hook = Committed()
    writer = _writer(cfg.url, Spool(tmp_path / "spool.sqlite"), acked, hook)
    try:
        _feed(writer, range(100))
        wait_until(lambda: len(acked) == 100, what="direct writes acked")
        procs[0].stop()
        _feed(writer, range(100, 400))
        wait_until(lambda: len(acked) == 400, timeout=30, what="the outage's messages acked")
        stats = writer.spool_stats()
        assert stats is not None and stats["rows"] == 300 and writer.spooling
        assert _stored_while_down(hook) == 100
        procs[0] = start_postgres(cfg)
        _feed(writer, range(400, 500))  # arrives while draining: behind the spooled rows
        wait_until(lambda: not writer.spooling and len(hook.seqs) == 500, timeout=60,
                   what="the spool drained")
    finally:
        writer.stop()
    assert hook.seqs == list(range(500))
    assert sorted(acked) == list(range(1, 501))
    assert _stored(cfg.url) == 500
    stats = writer.spool_stats()
    assert stats is not None and stats["rows"] == 0 and stats["peak_bytes"] > 0


def _stored_while_down(hook: Committed) -> int:
    return len(hook.seqs)


def test_at_the_disk_budget_nothing_more_is_acknowledged_until_drained(
        own_pg: tuple[Any, list[Any]], tmp_path: Path) -> None:
    cfg, procs = own_pg
    acked: list[int] = []
    hook = Committed()
    procs[0].stop()
    writer = _writer(cfg.url, Spool(tmp_path / "spool.sqlite", max_bytes=1), acked, hook)
    try:
        _feed(writer, range(10))
        wait_until(lambda: len(acked) == 10, timeout=30, what="the first batch spooled")
        _feed(writer, range(10, 20))
        wait_until(lambda: (writer.spool_stats() or {}).get("full"), timeout=30,
                   what="the spool refusing")
        assert sorted(acked) == list(range(1, 11))  # the second batch is held, not acked
        procs[0] = start_postgres(cfg)
        wait_until(lambda: len(acked) == 20 and not writer.spooling, timeout=60,
                   what="drained, then the held batch written and acked")
    finally:
        writer.stop()
    assert hook.seqs == list(range(20))
    assert _stored(cfg.url) == 20


def test_a_spool_left_by_an_earlier_run_is_drained_first(clean_db: str, tmp_path: Path
                                                         ) -> None:
    path = tmp_path / "spool.sqlite"
    earlier = Spool(path)
    earlier.append(Batch(telemetry=[reading(s) for s in range(30)]))
    earlier.close()
    acked: list[int] = []
    hook = Committed()
    writer = _writer(clean_db, Spool(path), acked, hook)
    try:
        _feed(writer, range(30, 40))
        wait_until(lambda: len(hook.seqs) == 40, timeout=30, what="spool and new rows stored")
    finally:
        writer.stop()
    assert hook.seqs == list(range(40))
    assert sorted(acked) == list(range(31, 41))
    assert Spool(path).batches == 0


def _instance_pids(postmaster: int) -> list[int]:
    """The postmaster and every process under it (backends, checkpointer, ...)."""
    pids, todo = [postmaster], [postmaster]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            kids = [int(k) for k in task.read_text().split()]
            pids += kids
            todo += kids
    return pids


def test_a_database_that_stops_answering_is_spooled_past_the_write_deadline(
        own_pg: tuple[Any, list[Any]], tmp_path: Path) -> None:
    """A frozen PostgreSQL (SIGSTOP: it neither answers nor refuses) must not stop the
    pipeline from acknowledging: the write is given up after its deadline, the batch is
    spooled and acknowledged, and everything is stored once the server runs again."""
    cfg, procs = own_pg
    acked: list[int] = []
    hook = Committed()
    writer = IngestWriter(cfg.url, acked.extend, max_rows=50, max_age_s=0.02,
                          spool=Spool(tmp_path / "spool.sqlite"), on_commit=hook,
                          write_timeout_s=1.0)
    writer.start()
    frozen: list[int] = []
    try:
        _feed(writer, range(100))
        wait_until(lambda: len(acked) == 100, what="direct writes acked")
        frozen = _instance_pids(procs[0].proc.pid)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        _feed(writer, range(100, 300))
        wait_until(lambda: len(acked) == 300, timeout=60,
                   what="the frozen database's messages acked from the spool")
        assert writer.spooling
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    try:
        wait_until(lambda: not writer.spooling and len(set(hook.seqs)) == 300, timeout=90,
                   what="the spool drained")
    finally:
        writer.stop()
    assert sorted(acked) == list(range(1, 301))
    assert _stored(cfg.url) == 300
