"""A local, append-only, fsync'd spool of batches: durable before acknowledged.

While TimescaleDB is away the writer appends each batch here and releases its tokens only
after the append has returned (the SQLite commit is fsync'd: WAL mode, `synchronous=FULL`),
then drains the spool into the database, oldest batch first, when it is back. SQLite is in
the standard library, gives atomic appends (a torn write is rolled back on open, never read
as half a batch) and survives a SIGKILL or a power loss at the last committed append.

Bodies use an encoding of our own (`encode_batch`): a version byte, then `marshal` of plain
tuples of ints, floats, strings, bytes, bools and None (times as UTC microseconds). It never
stores objects, only values, so a release that changes the record classes still reads an
older spool, and it is several times cheaper than JSON.
"""

from __future__ import annotations

import logging
import marshal
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.records import DeadLetter, EventRecord, StatusRecord, TelemetryRecord
from gateway.schema import EventType
from ingest.batch import Batch

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class SpoolCorruptError(Exception):
    """A spooled body this release cannot read (unknown version or damaged)."""


def _us(t: datetime) -> int:
    return (t - _EPOCH) // _US


def _us_or_none(t: datetime | None) -> int | None:
    return None if t is None else (t - _EPOCH) // _US


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _time_or_none(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def encode_batch(batch: Batch) -> bytes:
    """The batch's rows (not its tokens: they belong to this connection) as bytes."""
    tel = [(_us(r.time), r.device_id, r.resident_id, r.seq, r.occupied, r.heart_rate,
            r.respiration_rate, r.movement, _us_or_none(r.device_time), _us(r.received_at))
           for r in batch.telemetry]
    ev = [(_us(r.time), r.device_id, r.resident_id, r.site, r.seq, r.type.value, r.detail,
           _us_or_none(r.device_time), _us(r.received_at), r.rescued_ts)
          for r in batch.events]
    st = [(_us(r.time), r.device_id, r.resident_id, r.seq, r.online, r.battery, r.rssi, r.fw,
           r.heartbeat_s, _us_or_none(r.device_time), _us(r.received_at))
          for r in batch.status]
    dl = [(_us(d.received_at), d.topic, d.payload, d.payload_size, d.reason)
          for d in batch.dead_letters]
    return bytes([FORMAT_VERSION]) + marshal.dumps((tel, ev, st, dl))


def decode_batch(body: bytes) -> Batch:
    """The rows `encode_batch` wrote (a batch without tokens)."""
    if not body or body[0] != FORMAT_VERSION:
        raise SpoolCorruptError(f"unknown spool format {body[:1]!r}")
    try:
        # Our own file, written by encode_batch: plain values only, never code or objects.
        tel, ev, st, dl = marshal.loads(body[1:])  # noqa: S302
        return Batch(
            telemetry=[TelemetryRecord(_time(t), d, r, s, o, h, rr, m, _time_or_none(dt),
                                       _time(ra))
                       for t, d, r, s, o, h, rr, m, dt, ra in tel],
            events=[EventRecord(_time(t), d, r, site, s, EventType(ty), de, _time_or_none(dt),
                                _time(ra), rts)
                    for t, d, r, site, s, ty, de, dt, ra, rts in ev],
            status=[StatusRecord(_time(t), d, r, s, on, b, rs, fw, hb, _time_or_none(dt),
                                 _time(ra))
                    for t, d, r, s, on, b, rs, fw, hb, dt, ra in st],
            dead_letters=[DeadLetter(_time(ra), tp, p, n, why) for ra, tp, p, n, why in dl])
    except (ValueError, TypeError, EOFError) as exc:
        raise SpoolCorruptError(f"damaged spool body: {exc}") from exc


@dataclass(frozen=True)
class SpoolStats:
    """What the spool holds now (for logs, the stats file and the presence message)."""

    batches: int
    rows: int
    bytes: int
    oldest_age_s: float | None
    peak_bytes: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"batches": self.batches, "rows": self.rows, "bytes": self.bytes,
                "oldest_age_s": self.oldest_age_s, "peak_bytes": self.peak_bytes}


class Spool:
    """Batches in a SQLite file, oldest first; one batch in memory at a time.

    `append` returns once the batch is on disk. `has_room` says whether the disk budget
    (`max_bytes` of bodies, and `min_free_bytes` left on the file system) allows another
    append. The clock is the wall clock by default because ages must survive a restart.
    Meant for one writer thread; the figures may be read from any thread.
    """

    def __init__(self, path: Path, max_bytes: int = 10 * 2**30, min_free_bytes: int = 2**30,
                 clock: Callable[[], float] = time.time,
                 free_bytes: Callable[[Path], int] | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self._clock = clock
        self._free = free_bytes or (lambda p: shutil.disk_usage(p).free)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY "
                         "AUTOINCREMENT, created REAL NOT NULL, rows INTEGER NOT NULL, "
                         "body BLOB NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS set_aside (id INTEGER PRIMARY KEY, "
                         "created REAL NOT NULL, rows INTEGER NOT NULL, body BLOB NOT NULL)")
        self._lock = threading.Lock()
        row = self._db.execute("SELECT count(*), coalesce(sum(rows), 0), "
                               "coalesce(sum(length(body)), 0), min(created) FROM batches"
                               ).fetchone()
        self.batches, self.rows, self.bytes = int(row[0]), int(row[1]), int(row[2])
        self._oldest: float | None = row[3]
        self.peak_bytes = self.bytes

    def append(self, batch: Batch) -> int:
        """Store the batch's rows; when this returns they survive a crash. Returns its id."""
        body = encode_batch(batch)
        now = self._clock()
        cur = self._db.execute("INSERT INTO batches (created, rows, body) VALUES (?, ?, ?)",
                               (now, batch.rows, body))
        with self._lock:
            self.batches += 1
            self.rows += batch.rows
            self.bytes += len(body)
            self.peak_bytes = max(self.peak_bytes, self.bytes)
            if self._oldest is None:
                self._oldest = now
        assert cur.lastrowid is not None
        return cur.lastrowid

    def oldest(self) -> tuple[int, Batch] | None:
        """The oldest batch still spooled, or None when empty. A body this release cannot
        read (a spool written by a newer release) is set aside, kept in the file's
        `set_aside` table and logged, not retried forever: it would block the drain."""
        while True:
            row = self._db.execute("SELECT id, body FROM batches ORDER BY id LIMIT 1"
                                   ).fetchone()
            if row is None:
                return None
            try:
                return int(row[0]), decode_batch(bytes(row[1]))
            except SpoolCorruptError:
                logger.exception("spool %s: batch %d unreadable; set aside in the file's "
                                 "set_aside table", self.path, row[0])
                self._db.execute("INSERT INTO set_aside SELECT * FROM batches WHERE id = ?",
                                 (row[0],))
                self.remove(int(row[0]))

    def remove(self, batch_id: int) -> None:
        """Forget a batch (it is in the database now)."""
        row = self._db.execute("DELETE FROM batches WHERE id = ? RETURNING rows, length(body)",
                               (batch_id,)).fetchone()
        nxt = self._db.execute("SELECT min(created) FROM batches").fetchone()
        with self._lock:
            if row is not None:
                self.batches -= 1
                self.rows -= int(row[0])
                self.bytes -= int(row[1])
            self._oldest = None if nxt is None else nxt[0]
        if self.batches == 0:
            self._shrink()

    def _shrink(self) -> None:
        """Give the disk back once empty (the file keeps its pages otherwise)."""
        try:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            logger.warning("could not shrink the empty spool %s", self.path, exc_info=True)

    def has_room(self) -> bool:
        """Whether the disk budget allows another append."""
        if self.bytes >= self.max_bytes:
            return False
        return self._free(self.path.parent) > self.min_free_bytes

    @property
    def oldest_age_s(self) -> float | None:
        """Seconds since the oldest spooled batch was appended; None when empty."""
        oldest = self._oldest
        return None if oldest is None else max(0.0, self._clock() - oldest)

    def stats(self) -> SpoolStats:
        """The figures, taken together."""
        with self._lock:
            return SpoolStats(self.batches, self.rows, self.bytes, self.oldest_age_s,
                              self.peak_bytes)

    def close(self) -> None:
        """Close the file (everything appended is already durable)."""
        self._db.close()
