"""Device registry cache for the gateway: loaded from the database, kept fresh by NOTIFY.

The last good registry is also kept in a file (`cache_path`, in the data folder), so a
pipeline can start, and alarms from known devices flow, while the database is down: the
registry starts from the file and reloads from the database when it returns. A device the
file does not know while the database is down raises `RegistryUnavailable`: the pipeline
holds its messages (unacknowledged) until the registry can answer, instead of rejecting them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

from gateway.records import DeviceInfo
from gateway.schema import DeviceType
from gateway.text import printable
from kernel.db import Conn, connect
from kernel.listen import Backoff, ListenWorker, Notify

logger = logging.getLogger(__name__)

_SELECT = "SELECT id, site_id, resident_id, type FROM devices WHERE active"
CACHE_VERSION = 1
DB_RETRY_S = 2.0
"""After a failed lookup, unknown devices skip the database for this long (no connect per
message while it is down)."""
LISTEN_RETRY_S = 2.0  # the listener reconnects after this long (no growing backoff)
PASS_S = 1.0  # the listener's pass that retries held messages


class RegistryUnavailable(Exception):  # noqa: N818 - reads as a state, like TimeoutError
    """The device is not in the cached registry and the database cannot be asked now."""


class Registry:
    """device_id -> DeviceInfo, with a database fallback for devices added a moment ago."""

    def __init__(self, database_url: str, negative_ttl_s: float = 5.0,
                 cache_path: Path | None = None,
                 on_load: Callable[[], None] | None = None) -> None:
        self._url = database_url
        self._cache_path = cache_path
        self._on_load = on_load
        self._db_down_until = 0.0
        self.from_cache = False
        self._devices: dict[str, DeviceInfo] = {}
        self._misses: dict[str, float] = {}
        self._negative_ttl = negative_ttl_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._listener: ListenWorker | None = None
        self._next_pass = 0.0

    def load(self) -> int:
        """Load every active device from the database; return how many.

        The result is saved to the cache file. With the database down, the cache file is
        used instead (`from_cache` is set) and the listener reloads once the database is
        back; without a cache file, the registry starts empty and waits the same way.
        """
        try:
            with connect(self._url) as conn:
                rows = conn.execute(_SELECT).fetchall()
        except psycopg.OperationalError as exc:
            if self._cache_path is None:
                raise
            return self._load_cache(exc)
        devices = {str(r[0]): _info(r) for r in rows}
        with self._lock:
            self._devices = devices
            self._misses.clear()
            self._db_down_until = 0.0
            was_cached, self.from_cache = self.from_cache, False
        self._save()
        if was_cached:
            logger.info("registry reloaded from the database: %d devices", len(devices))
        if self._on_load is not None:
            self._on_load()
        return len(devices)

    def _load_cache(self, exc: Exception) -> int:
        reason = (str(exc).strip().splitlines() or ["refused"])[0]
        devices = read_cache(self._cache_path) if self._cache_path is not None else {}
        with self._lock:
            self._devices = devices
            self._misses.clear()
            self.from_cache = True
            self._db_down_until = time.monotonic() + DB_RETRY_S
        if devices:
            logger.warning("database unavailable (%s); registry of %d devices from %s until "
                           "it is back", reason, len(devices), self._cache_path)
        else:
            logger.warning("database unavailable (%s) and no cached registry at %s; devices "
                           "wait until it is back", reason, self._cache_path)
        return len(devices)

    def _save(self) -> None:
        """Write the registry to the cache file atomically (a crash leaves the old one)."""
        if self._cache_path is None:
            return
        with self._lock:
            rows = [[d.device_id, d.site, d.resident_id, d.type.value]
                    for d in self._devices.values()]
        try:
            write_cache(self._cache_path, rows)
        except OSError as exc:
            logger.warning("could not save the registry cache %s: %s", self._cache_path, exc)

    def lookup(self, device_id: str) -> DeviceInfo | None:
        """The device's registration, or None when unknown or revoked."""
        info = self._devices.get(device_id)
        if info is not None:
            return info
        missed = self._misses.get(device_id)
        if missed is not None and time.monotonic() - missed < self._negative_ttl:
            return None
        return self._fetch(device_id)

    def _fetch(self, device_id: str) -> DeviceInfo | None:
        if time.monotonic() < self._db_down_until:
            raise RegistryUnavailable(device_id)
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self._url, autocommit=True)
            row = self._conn.execute(_SELECT + " AND id = %s", (device_id,)).fetchone()
        except psycopg.Error as exc:
            logger.warning("registry lookup of %s failed: %s", printable(device_id), exc)
            self._conn = None
            if self._cache_path is None:
                return None
            self._db_down_until = time.monotonic() + DB_RETRY_S
            raise RegistryUnavailable(device_id) from exc
        with self._lock:
            if row is None:
                changed = self._devices.pop(device_id, None) is not None
                self._misses[device_id] = time.monotonic()
                info = None
            else:
                info = _info(row)
                changed = self._devices.get(device_id) != info
                self._devices[device_id] = info
                self._misses.pop(device_id, None)
        if changed:
            self._save()
        return info

    def forget(self, device_id: str) -> None:
        """Drop a cached entry so the next lookup asks the database."""
        with self._lock:
            self._devices.pop(device_id, None)
            self._misses.pop(device_id, None)

    def start_listener(self) -> None:
        """Follow registry changes (notify topic `devices`) in a background thread."""
        self._listener = ListenWorker(self._url, ("devices",), name="registry-listen",
                                      cycle=self._pass, backoff=Backoff(LISTEN_RETRY_S,
                                                                        LISTEN_RETRY_S),
                                      on_connect=self._resync, on_notify=self._changed,
                                      on_lost=self._listener_lost)
        self._listener.start()

    def stop(self) -> None:
        """Stop the listener thread and close the lookup connection."""
        if self._listener is not None:
            self._listener.stop(5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _resync(self, _conn: Conn) -> None:
        """(Re)connected: catch up on anything missed while disconnected."""
        self.load()
        self._next_pass = time.monotonic() + PASS_S

    def _changed(self, note: Notify) -> None:
        """A device was added, changed or revoked: ask the database about it now."""
        self.forget(note.payload)
        with contextlib.suppress(RegistryUnavailable):
            self._fetch(note.payload)

    def _pass(self, _conn: Conn) -> float:
        """Once a second: retry the messages held while a lookup failed (a stale lookup
        connection after a database restart), not only on a reload."""
        now = time.monotonic()
        if now >= self._next_pass:
            if self._on_load is not None:
                self._on_load()
            self._next_pass = now + PASS_S
        return self._next_pass - now

    def _listener_lost(self, exc: Exception, _delay: float) -> None:
        """A database error is retried; anything else (a bug) ends the listener thread, which
        the pipeline's watchdog notices (`registry-listen`), as it always did."""
        if not isinstance(exc, psycopg.Error):
            raise exc
        logger.warning("registry listener lost its connection: %s; retrying", exc)


def write_cache(path: Path, rows: Sequence[Sequence[object]]) -> None:
    """Replace the cache file by `rows`: temporary file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"version": CACHE_VERSION, "devices": rows}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_cache(path: Path) -> dict[str, DeviceInfo]:
    """The devices of a cache file; {} (logged) when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != CACHE_VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        return {str(r[0]): _info(tuple(r)) for r in data["devices"]}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        logger.warning("ignoring the unreadable registry cache %s: %s", path, exc)
        return {}


def _info(row: tuple[object, ...]) -> DeviceInfo:
    device_id, site, resident_id, dtype = row
    return DeviceInfo(str(device_id), str(site), int(str(resident_id)), DeviceType(str(dtype)))
