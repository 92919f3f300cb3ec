"""Write batches to TimescaleDB with binary COPY; acknowledge messages only after commit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import psycopg

from gateway.records import DeadLetter, Record
from gateway.text import printable
from ingest.batch import Batch, Batcher
from kernel.db import connect

logger = logging.getLogger(__name__)

TELEMETRY_COLS = ("time", "device_id", "resident_id", "seq", "occupied", "heart_rate",
                  "respiration_rate", "movement", "device_time", "received_at")
TELEMETRY_TYPES = ("timestamptz", "text", "int8", "int8", "bool", "float4", "float4", "int2",
                   "timestamptz", "timestamptz")
EVENT_COLS = ("time", "device_id", "resident_id", "seq", "type", "detail", "device_time",
              "received_at")
EVENT_TYPES = ("timestamptz", "text", "int8", "int8", "text", "text", "timestamptz",
               "timestamptz")
STATUS_COLS = ("time", "device_id", "resident_id", "seq", "online", "battery", "rssi", "fw",
               "heartbeat_s", "device_time", "received_at")
STATUS_TYPES = ("timestamptz", "text", "int8", "int8", "bool", "int2", "int2", "text", "int4",
                "timestamptz", "timestamptz")
DEAD_COLS = ("received_at", "topic", "payload", "payload_size", "reason")
DEAD_TYPES = ("timestamptz", "text", "bytea", "int4", "text")

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_bed_telemetry
    (LIKE bed_telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_device_events
    (LIKE device_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
"""

Ack = Callable[[list[int]], None]
LAG_SAMPLES_MAX = 400_000
LAG_SAMPLE_EVERY = 10
FLAGGED_DEDUP_WINDOW = "7 days"


def _insert_from_stage(table: str, cols: Sequence[str]) -> str:
    """Move staged rows into `table`, skipping copies of rows already stored.

    Normal rows are deduplicated by the unique (device_id, seq, time) index. Rows with a
    flagged device clock are stored at their receive time, so an earlier copy is found by
    (device_id, seq, device_time) instead.
    """
    names = ", ".join(cols)
    return (
        f"INSERT INTO {table} ({names}) "
        f"SELECT {names} FROM stage_{table} WHERE device_time IS NULL "
        "UNION ALL "
        f"SELECT DISTINCT ON (device_id, seq, device_time) {names} FROM stage_{table} s "
        "WHERE s.device_time IS NOT NULL AND NOT EXISTS ("
        f"SELECT 1 FROM {table} t WHERE t.device_id = s.device_id AND t.seq = s.seq "
        "AND t.device_time = s.device_time "
        f"AND t.time > s.received_at - interval '{FLAGGED_DEDUP_WINDOW}') "
        "ON CONFLICT DO NOTHING"
    )


def _copy(cur: psycopg.Cursor[Any], table: str, cols: Sequence[str], types: Sequence[str],
          rows: Sequence[Any]) -> None:
    values = attrgetter(*cols)
    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(types))
        write = copy.write_row
        for row in rows:
            write(values(row))


def _store(conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any], table: str,
           cols: Sequence[str], types: Sequence[str], rows: Sequence[Any]) -> None:
    """COPY rows straight into the hypertable; on a duplicate, take the deduplicating path.

    Redeliveries are rare, so the direct COPY (in a savepoint) nearly always succeeds and
    the database does half the work of staging + INSERT. Rows with a flagged clock always
    take the staging path, whose dedup does not rely on the unique index.
    """
    if all(r.device_time is None for r in rows):
        try:
            with conn.transaction():
                _copy(cur, table, cols, types, rows)
            return
        except psycopg.errors.UniqueViolation:
            logger.debug("duplicates in a %s batch; deduplicating", table)
    _copy(cur, f"stage_{table}", cols, types, rows)
    cur.execute(_insert_from_stage(table, cols))


def write_batch(conn: psycopg.Connection[Any], batch: Batch) -> None:
    """Store one batch in a single transaction; duplicates (device, seq, time) are skipped."""
    with conn.transaction(), conn.cursor() as cur:
        if batch.telemetry:
            _store(conn, cur, "bed_telemetry", TELEMETRY_COLS, TELEMETRY_TYPES, batch.telemetry)
        if batch.events:
            _store(conn, cur, "device_events", EVENT_COLS, EVENT_TYPES, batch.events)
        if batch.status:
            _copy(cur, "device_status", STATUS_COLS, STATUS_TYPES, batch.status)
            _update_device_health(cur, batch)
        if batch.dead_letters:
            _copy(cur, "dead_letters", DEAD_COLS, DEAD_TYPES,
                  [_storable(d) for d in batch.dead_letters])


def _storable(letter: DeadLetter) -> DeadLetter:
    """A dead letter whose text PostgreSQL accepts, whoever built it.

    `gateway.gateway.dead_letter` already escapes topic and reason; this guards letters made
    any other way, so a NUL or a control character never costs a dead letter its topic and
    reason (the payload is bytea and kept as it came).
    """
    if letter.topic.isprintable() and letter.reason.isprintable():
        return letter
    return replace(letter, topic=printable(letter.topic), reason=printable(letter.reason))


def _update_device_health(cur: psycopg.Cursor[Any], batch: Batch) -> None:
    latest: dict[str, Any] = {}
    for s in batch.status:
        prev = latest.get(s.device_id)
        if prev is None or s.time >= prev.time:
            latest[s.device_id] = s
    cur.executemany(
        "UPDATE devices SET online = %s, battery = COALESCE(%s, battery), "
        "firmware = COALESCE(%s, firmware), heartbeat_s = COALESCE(%s, heartbeat_s), "
        "last_seen = GREATEST(last_seen, %s) WHERE id = %s",
        [(s.online, s.battery, s.fw, s.heartbeat_s, s.received_at, s.device_id)
         for s in latest.values()],
    )


def _halves(batch: Batch) -> tuple[Batch, Batch]:
    """Split a batch's rows in two (tokens stay with the caller)."""
    rows: list[tuple[str, Any]] = [("telemetry", r) for r in batch.telemetry]
    rows += [("events", r) for r in batch.events]
    rows += [("status", r) for r in batch.status]
    rows += [("dead_letters", r) for r in batch.dead_letters]
    mid = len(rows) // 2
    out = (Batch(), Batch())
    for i, (kind, rec) in enumerate(rows):
        getattr(out[0 if i < mid else 1], kind).append(rec)
    return out


def _quarantine(conn: psycopg.Connection[Any], part: Batch, exc: psycopg.Error) -> None:
    """Keep a row the database refused as a dead letter, with the database's reason."""
    rec = (part.telemetry or part.events or part.status or part.dead_letters)[0]
    reason = printable(f"database refused the row: {exc}")
    if isinstance(rec, DeadLetter):
        letter = DeadLetter(rec.received_at, printable(rec.topic), rec.payload,
                            rec.payload_size, printable(f"{rec.reason} ({reason})"))
    else:
        site = getattr(rec, "site", "?")
        text = repr(rec).encode()
        letter = DeadLetter(rec.received_at, printable(f"eldercare/v1/{site}/{rec.device_id}/?"),
                            text[:4096], len(text), reason)
    logger.error("quarantined a row the database refused (%s): %s", printable(str(exc)),
                 printable(repr(rec), 2000))
    try:
        write_batch(conn, Batch(dead_letters=[letter]))
    except psycopg.OperationalError:
        raise
    except psycopg.Error:
        logger.exception("could not even store the dead letter; row dropped: %s",
                         printable(repr(rec), 2000))


def write_isolating(conn: psycopg.Connection[Any], batch: Batch) -> None:
    """Write a batch; if the database refuses some row, halve until it is isolated.

    The refused rows become dead letters; the rest is stored. Connection errors propagate
    so the caller can retry the whole batch.
    """
    parts = [batch]
    while parts:
        part = parts.pop()
        try:
            write_batch(conn, part)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            if part.rows <= 1:
                _quarantine(conn, part, exc)
            else:
                parts.extend(_halves(part))


OUTAGE_WARN_FRACTIONS = (0.5, 0.8, 1.0)
"""Fractions of the broker queue's outage budget at which a database outage is warned of."""


def outage_warnings_due(outage_s: float, budget_s: float | None) -> int:
    """How many of the outage warnings (OUTAGE_WARN_FRACTIONS) an outage this long has
    earned; 0 without a budget."""
    if budget_s is None:
        return 0
    return sum(1 for f in OUTAGE_WARN_FRACTIONS if outage_s >= f * budget_s)


class IngestWriter:
    """Thread that batches records, COPYs them, and acknowledges after each commit.

    Memory is bounded by the broker's in-flight window: messages are acknowledged only
    after commit, so while the database is away the broker stops sending.
    """

    def __init__(self, database_url: str, ack: Ack, max_rows: int = 5000,
                 max_age_s: float = 0.2, clock: Callable[[], float] = time.monotonic,
                 outage_budget_s: float | None = None) -> None:
        self._url = database_url
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
        self.lag_samples: list[tuple[float, float]] | None = None
        self._lag_every = LAG_SAMPLE_EVERY
        self._lag_skip = 0

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

    def _next_batch(self) -> Batch | None:
        with self._cond:
            while True:
                now = self._clock()
                if self._batcher.due(now) or (self._stop and self._batcher.pending):
                    return self._batcher.take()
                if self._stop:
                    return None
                self._cond.wait(self._batcher.wait_time(now) or 0.5)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._write_with_retry(batch)
        if self._conn is not None:
            self._conn.close()

    def _write_with_retry(self, batch: Batch) -> None:
        delay = 0.1
        while True:
            try:
                conn = self._connection()
                write_isolating(conn, batch)
                break
            except psycopg.OperationalError as exc:
                self.failures += 1
                logger.warning("database write failed (%s); retrying in %.1fs", exc, delay)
                self._warn_outage()
                self._drop_connection()
                if self._stop and delay > 5:
                    logger.error("giving up on %d rows at shutdown; broker will redeliver",
                                 batch.rows)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self._outage_since is not None:
            logger.info("database back after %.0f s of outage", self._clock() - self._outage_since)
            self._outage_since, self._outage_warned = None, 0
        self.committed_rows += batch.rows
        self.committed_batches += 1
        if batch.tokens:
            self._ack(batch.tokens)
        if self.lag_samples is not None and batch.telemetry:
            self._sample_lag(batch)

    def _warn_outage(self) -> None:
        """Warn as the outage nears what the broker's queue holds for this pipeline.

        The broker's queue depth for us cannot be observed (Mosquitto 2.0 publishes no
        per-client depth, and the pipeline account may not read $SYS), and the pipeline
        stops receiving at its window; so the outage's duration against the queue's
        budget in seconds (docs/ingest.md) is the signal.
        """
        now = self._clock()
        if self._outage_since is None:
            self._outage_since = now
        due = outage_warnings_due(now - self._outage_since, self.outage_budget_s)
        if due > self._outage_warned:
            self._outage_warned = due
            logger.warning(
                "database down for %.0f s, %.0f %% of the %.0f s the broker's queue holds for "
                "this pipeline; past that the broker drops new messages while still "
                "acknowledging them (docs/ingest.md)", now - self._outage_since,
                100 * OUTAGE_WARN_FRACTIONS[due - 1], self.outage_budget_s)

    def _sample_lag(self, batch: Batch) -> None:
        """Benchmarks: record (commit time, publish-to-commit lag) of every `_lag_every`-th
        telemetry row, counted across batches.

        Every sample then stands for the same number of messages, so plain percentiles of
        the samples are percentiles over messages: a 5,000-row backlog batch weighs as much
        as its 5,000 messages. (A fixed number of samples per batch under-weighted exactly
        the large, late batches in the p99.) When the list is full, every other sample is
        dropped and the stride doubled: memory stays bounded and the weights stay equal.
        """
        rows = batch.telemetry
        now = datetime.now(UTC)
        at = now.timestamp()
        samples = self.lag_samples
        assert samples is not None
        samples.extend([(at, (now - rec.time).total_seconds())
                        for rec in rows[self._lag_skip::self._lag_every]])
        self._lag_skip = (self._lag_skip - len(rows)) % self._lag_every
        if len(samples) >= LAG_SAMPLES_MAX:
            del samples[1::2]
            self._lag_every *= 2

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url)
            self._conn.execute(_STAGING)
            self._conn.commit()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                logger.debug("closing a broken connection failed", exc_info=True)
        self._conn = None
