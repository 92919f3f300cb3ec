"""Alert engine: immediate rules for device events, and the worker that stores alerts."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from alerts.model import AlertTrigger
from alerts.store import StoredAlert, store_trigger
from eldercare.db import connect
from gateway.records import EventRecord
from gateway.schema import EventType

logger = logging.getLogger(__name__)

IMMEDIATE_EVENTS: dict[EventType, tuple[str, str]] = {
    EventType.SOS: ("sos", "critical"),
    EventType.FALL: ("fall", "critical"),
}


def event_trigger(event: EventRecord) -> AlertTrigger | None:
    """The alert a device event raises at once (SOS, fall), or None."""
    rule = IMMEDIATE_EVENTS.get(event.type)
    if rule is None:
        return None
    alert_type, severity = rule
    return AlertTrigger(
        resident_id=event.resident_id, site=event.site, device_id=event.device_id,
        type=alert_type, severity=severity, at=event.time, source_seq=event.seq,
        details={"detail": event.detail} if event.detail else None,
    )


class AlertWorker:
    """Stores alert triggers on their own connection, never behind ingest batching."""

    def __init__(self, database_url: str, release: Callable[[int], None],
                 on_stored: Callable[[StoredAlert, AlertTrigger], None] | None = None) -> None:
        self._url = database_url
        self._release = release
        self._on_stored = on_stored
        self._queue: queue.SimpleQueue[tuple[AlertTrigger, int | None] | None] = (
            queue.SimpleQueue())
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="alert-worker", daemon=True)
        self.stored = 0

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def submit(self, trigger: AlertTrigger, token: int | None) -> None:
        """Queue a trigger; `token` is released once it is stored."""
        self._queue.put((trigger, token))

    def stop(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            trigger, token = item
            self._store_with_retry(trigger)
            if token is not None:
                self._release(token)
        if self._conn is not None:
            self._conn.close()

    def _store_with_retry(self, trigger: AlertTrigger) -> None:
        delay = 0.05
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self._url, autocommit=True)
                result = store_trigger(self._conn, trigger)
                break
            except psycopg.OperationalError as exc:
                logger.warning("storing %s alert failed (%s); retrying", trigger.type, exc)
                self._conn = None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.stored += 1
        if result is not None:
            logger.info("alert %d %s %s for resident %d", result.alert_id,
                        "opened" if result.created else "repeated", trigger.type,
                        trigger.resident_id)
            if self._on_stored is not None:
                self._on_stored(result, trigger)
