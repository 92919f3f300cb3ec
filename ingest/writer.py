"""The writer thread: batches records, stores each batch (ingest/store.py) and acknowledges
its messages only once the batch is durable: committed, or fsync'd to the local spool while
the database is away (ingest/spool.py)."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from gateway.records import DeadLetter, Record
from ingest.batch import Batch, Batcher
from ingest.spool import Spool
from ingest.store import STAGING, write_isolating
from kernel.db import CONNECT_TIMEOUT_S as DB_CONNECT_TIMEOUT_S
from kernel.db import connect

logger = logging.getLogger(__name__)

Ack = Callable[[list[int]], None]
OnCommit = Callable[[Batch, float], None]
"""Called after each batch commits, with the batch and the commit's wall-clock time."""


OUTAGE_WARN_FRACTIONS = (0.5, 0.8, 1.0)
"""Fractions of the outage budget (the broker queue's, in seconds, without a spool; the
spool's disk budget, in bytes, with one) at which a database outage is warned of."""
SPOOL_REPORT_EVERY_S = 30.0


def outage_warnings_due(used: float, budget: float | None) -> int:
    """How many of the outage warnings (OUTAGE_WARN_FRACTIONS) this much of the budget
    used has earned; 0 without a budget."""
    if budget is None:
        return 0
    return sum(1 for f in OUTAGE_WARN_FRACTIONS if used >= f * budget)


_STOPPED = Batch()
"""Returned by `_next_batch` when the writer stops."""


WRITE_TIMEOUT_S = 30.0
"""A batch write the database has not answered in this long is given up (the connection is
cut) and the batch goes to the spool: a database that hangs (stopped, stuck disk, network
black hole) must not stop the pipeline from acknowledging. A healthy write takes well under
a second."""
CONNECT_TIMEOUT_S = DB_CONNECT_TIMEOUT_S
"""The same for opening a connection (libpq's connect_timeout, which psycopg enforces)."""


class _Deadline:
    """Cut a connection's socket if the work inside the `with` block outlasts `seconds`.

    PostgreSQL's own statement_timeout cannot help when the server does not run at all, and
    a blocked libpq read or write has no client-side timeout; shutting the socket down from
    a timer thread makes the blocked call fail at once with an OperationalError, which the
    writer treats like any outage (the batch goes to the spool). If the write had in fact
    committed, its rows come back from the spool as duplicates, which the store skips.
    """

    def __init__(self, conn: psycopg.Connection[Any], seconds: float) -> None:
        self._conn = conn
        self._seconds = seconds
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self.fired = False

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _cut(self) -> None:
        self.fired = True
        logger.warning("the database did not answer a write within %.0f s; cutting the "
                       "connection (the batch goes to the spool)", self._seconds)
        try:
            with socket.socket(fileno=os.dup(self._conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            logger.debug("cutting the connection failed (already closed?)", exc_info=True)


class IngestWriter:
    """Thread that batches records, COPYs them, and acknowledges after each commit.

    Without a spool, memory is bounded by the broker's in-flight window: messages are
    acknowledged only after commit, so while the database is away the broker stops sending
    (and queues, up to its limits). With a `spool`, a batch the database cannot take is
    appended to the spool (fsync'd) and acknowledged then; while the spool holds anything,
    every new batch goes there too (the order is kept) and the oldest spooled batch is
    written to the database whenever it answers. When the spool's disk budget is reached the
    writer stops taking batches, so nothing more is acknowledged and the broker holds back.
    """

    def __init__(self, database_url: str, ack: Ack, max_rows: int = 5000,
                 max_age_s: float = 0.2, clock: Callable[[], float] = time.monotonic,
                 outage_budget_s: float | None = None, spool: Spool | None = None,
                 on_commit: OnCommit | None = None,
                 write_timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self._url = database_url
        self.write_timeout_s = write_timeout_s
        self.outage_budget_s = outage_budget_s
        self._outage_since: float | None = None
        self._outage_warned = 0
        self._ack = ack
        self._clock = clock
        self._batcher = Batcher(max_rows, max_age_s)
        self._cond = threading.Condition()
        self._stop = False
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self.committed_rows = 0
        self.committed_batches = 0
        self.failures = 0
        self.on_commit = on_commit
        self.spool = spool
        self._retry_at = 0.0
        self._delay = 0.1
        self._full = False
        self._episode: tuple[float, int] | None = None  # (start, rows spooled) of this episode
        self._next_report = 0.0
        self.spool_episodes: list[tuple[int, float]] = []  # (rows, seconds) of each drained

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def add(self, records: tuple[Record, ...], token: int | None) -> None:
        """Queue one message's records."""
        with self._cond:
            self._batcher.add(records, token, self._clock())
            if self._batcher.due(self._clock()):
                self._cond.notify()

    @property
    def pending(self) -> int:
        """Messages' rows waiting for the next batch (not the one being written)."""
        with self._cond:
            return self._batcher.pending

    @property
    def spooling(self) -> bool:
        """Whether batches go to the spool now (it holds something)."""
        return self.spool is not None and self.spool.batches > 0

    def spool_stats(self) -> dict[str, Any] | None:
        """The spool's figures plus whether it refuses (full); None without a spool."""
        if self.spool is None:
            return None
        return {**self.spool.stats().as_dict(), "full": self._full,
                "episodes": [{"rows": r, "seconds": round(t, 3)}
                             for r, t in self.spool_episodes]}

    def add_dead_letter(self, letter: DeadLetter, token: int | None) -> None:
        """Queue a dead letter."""
        with self._cond:
            self._batcher.add_dead_letter(letter, token, self._clock())
            self._cond.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is pending and stop."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)

    def _next_batch(self, max_wait: float | None = None) -> Batch | None:
        """The next due batch; `_STOPPED` when stopping with nothing pending; None when
        `max_wait` seconds passed first. While the spool is full, no batch is taken."""
        with self._cond:
            while True:
                now = self._clock()
                if not self._full and (self._batcher.due(now)
                                       or (self._stop and self._batcher.pending)):
                    return self._batcher.take()
                if self._stop:
                    return _STOPPED
                if max_wait is not None and max_wait <= 0:
                    return None
                wait = 0.5 if self._full else (self._batcher.wait_time(now) or 0.5)
                self._cond.wait(wait if max_wait is None else min(wait, max_wait))
                if max_wait is not None:
                    max_wait -= max(0.0, self._clock() - now)

    def _run(self) -> None:
        if self.spooling:
            assert self.spool is not None
            logger.warning("spool %s holds %d rows from an earlier run; draining them first",
                           self.spool.path, self.spool.rows)
            self._episode = (self._clock(), 0)
        while True:
            if self.spool is None:
                batch = self._next_batch()
                if batch is _STOPPED or batch is None:
                    break
                self._write_with_retry(batch)
                continue
            batch = self._next_batch(self._retry_at - self._clock() if self.spooling else None)
            if batch is _STOPPED:
                break
            if batch is not None:
                self._take(batch)
            if self.spooling and self._clock() >= self._retry_at:
                self._drain_one()
            self._report_spool()
        if self._conn is not None:
            self._conn.close()
        if self.spool is not None:
            self.spool.close()

    def _take(self, batch: Batch) -> None:
        """A spool is configured: write directly while it is empty, else spool."""
        if not self.spooling:
            try:
                self._write(batch)
                return
            except psycopg.OperationalError as exc:
                self._failed(exc)
        self._to_spool(batch)

    def _write(self, batch: Batch) -> None:
        """Write, commit, hook, acknowledge. Connection errors propagate, and so does a
        write the database does not answer in `write_timeout_s` (see _Deadline)."""
        started = self._clock()
        try:
            conn = self._connection()
            with _Deadline(conn, self.write_timeout_s):
                write_isolating(conn, batch)
        except psycopg.OperationalError:
            if self._outage_since is None:  # the outage began when this write was sent,
                self._outage_since = started  # not when its deadline gave up on it
            raise
        self._delay = 0.1
        if self._outage_since is not None:
            logger.info("database back after %.0f s of outage", self._clock() - self._outage_since)
            self._outage_since, self._outage_warned = None, 0
        self.committed_rows += batch.rows
        self.committed_batches += 1
        if self.on_commit is not None:
            self.on_commit(batch, time.time())
        if batch.tokens:
            self._ack(batch.tokens)

    def _failed(self, exc: psycopg.OperationalError) -> None:
        """A connection error: back off (0.1 s doubling to 5 s) before the next try."""
        self.failures += 1
        self._drop_connection()
        now = self._clock()
        if self._outage_since is None:
            self._outage_since = now
        logger.warning("database write failed (%s); retrying in %.1fs", exc, self._delay)
        self._retry_at = now + self._delay
        self._delay = min(self._delay * 2, 5.0)
        self._warn_outage(now)

    def _to_spool(self, batch: Batch) -> None:
        """Append the batch to the spool, then acknowledge it (durable before acknowledged).
        With the budget reached, the batch waits in memory unacknowledged and no new batch
        is taken until the drain makes room."""
        spool = self.spool
        assert spool is not None
        if self._episode is None:
            self._episode = (self._clock(), 0)
            logger.warning("database unavailable: spooling batches to %s (acknowledged once "
                           "on disk; drained in order when the database is back)", spool.path)
        while not self._append(spool, batch):
            self._refuse(spool)
            self._report_spool()
            if self._stop:
                logger.error("spool full at stop: %d rows not acknowledged; the broker "
                             "redelivers them", batch.rows)
                return
            if self._make_room(spool, batch):
                return
        if self._full:
            self._full = False
            logger.warning("spool below its budget again (%.2f GB): acknowledging again",
                           spool.bytes / 1e9)
        start, rows = self._episode or (self._clock(), 0)
        self._episode = (start, rows + batch.rows)
        self._warn_spool(spool)
        if batch.tokens:
            self._ack(batch.tokens)

    def _append(self, spool: Spool, batch: Batch) -> bool:
        """Append if the budget allows; False if not (or the disk refused the write)."""
        if not spool.has_room():
            return False
        try:
            spool.append(batch)
        except sqlite3.Error:
            logger.exception("could not append to the spool %s", spool.path)
            return False
        return True

    def _make_room(self, spool: Spool, batch: Batch) -> bool:
        """The spool is full: drain one batch when the database may answer, else wait.
        With nothing spooled (the disk itself is full) try `batch` directly; True if it
        was written (and acknowledged)."""
        now = self._clock()
        if now >= self._retry_at:
            try:
                if spool.batches == 0:
                    self._write(batch)
                    self._full = False
                    return True
                before = spool.batches
                self._drain_one()
                if spool.batches < before:
                    return False
            except psycopg.OperationalError as exc:
                self._failed(exc)
        time.sleep(max(0.05, min(self._retry_at - self._clock(), 1.0)))
        return False

    def _refuse(self, spool: Spool) -> None:
        if not self._full:
            self._full = True
            logger.error("spool full at %.2f GB (budget %.2f GB, or less than %.2f GB free on "
                         "disk): not acknowledging; the broker queues for this pipeline up "
                         "to its limits, devices keep what it refuses", spool.bytes / 1e9,
                         spool.max_bytes / 1e9, spool.min_free_bytes / 1e9)

    def _drain_one(self) -> None:
        """Write the oldest spooled batch to the database and forget it."""
        spool = self.spool
        assert spool is not None
        item = spool.oldest()
        if item is None:
            return
        batch_id, batch = item
        try:
            self._write(batch)
        except psycopg.OperationalError as exc:
            self._failed(exc)
            return
        spool.remove(batch_id)
        if spool.batches == 0 and self._episode is not None:
            start, rows = self._episode or (self._clock(), 0)
            took = self._clock() - start
            logger.warning("spool drained: %d rows spooled in %.0f s; writing directly again",
                           rows, took)
            self.spool_episodes.append((rows, took))
            self._episode, self._outage_warned = None, 0

    def _report_spool(self) -> None:
        """Every 30 s while the spool holds anything: its size, rows and age."""
        spool = self.spool
        now = self._clock()
        if spool is None or spool.batches == 0 or now < self._next_report:
            return
        self._next_report = now + SPOOL_REPORT_EVERY_S
        age = spool.oldest_age_s or 0.0
        logger.warning("spool: %d rows in %d batches, %.1f MB of %.0f MB, oldest %.0f s old%s",
                       spool.rows, spool.batches, spool.bytes / 1e6, spool.max_bytes / 1e6,
                       age, " (FULL: not acknowledging)" if self._full else "")

    def _warn_spool(self, spool: Spool) -> None:
        """Warn as the spool fills its disk budget (50 %, 80 %, 100 %)."""
        due = outage_warnings_due(spool.bytes, spool.max_bytes)
        if due > self._outage_warned:
            self._outage_warned = due
            logger.warning("spool at %.0f %% of its %.1f GB budget (%d rows); at the budget "
                           "the pipeline stops acknowledging and the broker queues",
                           100 * OUTAGE_WARN_FRACTIONS[due - 1], spool.max_bytes / 1e9,
                           spool.rows)

    def _write_with_retry(self, batch: Batch) -> None:
        """Without a spool: retry the batch until it commits (nothing is acknowledged
        meanwhile, so the broker holds back)."""
        while True:
            try:
                self._write(batch)
                return
            except psycopg.OperationalError as exc:
                delay = self._delay
                self._failed(exc)
                if self._stop and delay > 5:
                    logger.error("giving up on %d rows at shutdown; broker will redeliver",
                                 batch.rows)
                    return
                time.sleep(delay)

    def _warn_outage(self, now: float) -> None:
        """Without a spool: warn as the outage nears what the broker's queue holds for this
        pipeline.

        The broker's queue depth for us cannot be observed (Mosquitto 2.0 publishes no
        per-client depth, and the pipeline account may not read $SYS), and the pipeline
        stops receiving at its window; so the outage's duration against the queue's
        budget in seconds (docs/ingest.md) is the signal. With a spool the broker's queue
        is not the limit (the pipeline keeps acknowledging); `_warn_spool` warns instead.
        """
        if self.spool is not None or self._outage_since is None:
            return
        due = outage_warnings_due(now - self._outage_since, self.outage_budget_s)
        if due > self._outage_warned:
            self._outage_warned = due
            logger.warning(
                "database down for %.0f s, %.0f %% of the %.0f s the broker's queue holds for "
                "this pipeline; past that the broker drops new messages while still "
                "acknowledging them (docs/ingest.md)", now - self._outage_since,
                100 * OUTAGE_WARN_FRACTIONS[due - 1], self.outage_budget_s)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url, connect_timeout=CONNECT_TIMEOUT_S)
            with _Deadline(self._conn, self.write_timeout_s):
                self._conn.execute(STAGING)
                self._conn.commit()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                logger.debug("closing a broken connection failed", exc_info=True)
        self._conn = None
