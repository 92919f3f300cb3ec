"""Storing one batch in TimescaleDB: binary COPY, deduplication of redelivered rows, and
isolation of a row the database refuses (it becomes a dead letter, the rest is stored).

The writer thread (ingest/writer.py) decides *when* and *where* a batch goes (directly, or
through the local spool during an outage); this module only knows *how* it is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any

import psycopg

from gateway.records import DeadLetter
from gateway.text import printable
from ingest.batch import Batch

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

STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_bed_telemetry
    (LIKE bed_telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_device_events
    (LIKE device_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
"""

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
