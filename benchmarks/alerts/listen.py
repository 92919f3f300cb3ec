"""When an alert committed: `LISTEN alerts` (NOTIFY is delivered at COMMIT, so its arrival
is the commit time, late by the wake-up of our own backend)."""

from __future__ import annotations

import logging
import threading
import time

from kernel.db import connect

logger = logging.getLogger(__name__)


class CommitListener:
    """`LISTEN alerts`: the first NOTIFY of an alert id arrives when its INSERT commits."""

    def __init__(self, database_url: str) -> None:
        self.first: dict[int, float] = {}
        self._conn = connect(database_url, autocommit=True)
        self._conn.execute("LISTEN alerts")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                t = time.monotonic()
                try:
                    self.first.setdefault(int(note.payload), t)
                except ValueError:
                    logger.warning("ignoring notification %r", note.payload)

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(5)
        self._conn.close()
