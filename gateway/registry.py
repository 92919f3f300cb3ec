"""Device registry cache for the gateway: loaded from the database, kept fresh by NOTIFY."""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from eldercare.db import connect
from gateway.records import DeviceInfo
from gateway.schema import DeviceType

logger = logging.getLogger(__name__)

_SELECT = "SELECT id, site_id, resident_id, type FROM devices WHERE active"


class Registry:
    """device_id -> DeviceInfo, with a database fallback for devices added a moment ago."""

    def __init__(self, database_url: str, negative_ttl_s: float = 5.0) -> None:
        self._url = database_url
        self._devices: dict[str, DeviceInfo] = {}
        self._misses: dict[str, float] = {}
        self._negative_ttl = negative_ttl_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    def load(self) -> int:
        """Load every active device; return how many."""
        with connect(self._url) as conn:
            rows = conn.execute(_SELECT).fetchall()
        devices = {str(r[0]): _info(r) for r in rows}
        with self._lock:
            self._devices = devices
            self._misses.clear()
        return len(devices)

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
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self._url, autocommit=True)
            row = self._conn.execute(_SELECT + " AND id = %s", (device_id,)).fetchone()
        except psycopg.Error as exc:
            logger.warning("registry lookup of %s failed: %s", device_id, exc)
            self._conn = None
            return None
        with self._lock:
            if row is None:
                self._devices.pop(device_id, None)
                self._misses[device_id] = time.monotonic()
                return None
            info = _info(row)
            self._devices[device_id] = info
            self._misses.pop(device_id, None)
            return info

    def forget(self, device_id: str) -> None:
        """Drop a cached entry so the next lookup asks the database."""
        with self._lock:
            self._devices.pop(device_id, None)
            self._misses.pop(device_id, None)

    def start_listener(self) -> None:
        """Follow registry changes (NOTIFY devices) in a background thread."""
        self._listener = threading.Thread(target=self._listen, name="registry-listen",
                                          daemon=True)
        self._listener.start()

    def stop(self) -> None:
        """Stop the listener thread and close the lookup connection."""
        self._stop.set()
        if self._listener is not None:
            self._listener.join(5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._url, autocommit=True) as conn:
                    conn.execute("LISTEN devices")
                    self.load()  # catch up on anything missed while disconnected
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.forget(note.payload)
                            self._fetch(note.payload)
            except psycopg.Error as exc:
                logger.warning("registry listener lost its connection: %s; retrying", exc)
                self._stop.wait(2.0)


def _info(row: tuple[object, ...]) -> DeviceInfo:
    device_id, site, resident_id, dtype = row
    return DeviceInfo(str(device_id), str(site), int(str(resident_id)), DeviceType(str(dtype)))
