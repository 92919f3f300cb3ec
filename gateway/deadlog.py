"""Dead letters in the log: the first of a device with its reason, then a count per minute.

A device stuck sending bad messages (or an attacker) can produce thousands of dead letters a
second; one INFO line each flooded the log (20,000+ lines in one test) and cost the network
thread time. Every dead letter is still stored with its reason (`dead_letters` table); the
log only needs to say that a device is sending bad data, and how much.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.records import DeadLetter
from gateway.text import printable

logger = logging.getLogger(__name__)

WINDOW_S = 60.0
SWEEP_S = 1.0


@dataclass
class _Window:
    """One device's current minute: when it ends, how many letters were not logged."""

    ends: float
    count: int = 0
    last_reason: str = ""


def device_of(topic: str) -> str:
    """The device level of a topic (the whole topic when it has no such level)."""
    parts = topic.split("/")
    return parts[3] if len(parts) == 5 else topic


class DeadLetterLog:
    """Rate-limited logging of dead letters, per device, on an injected monotonic clock.

    Not thread-safe: the pipeline's MQTT network thread is its only caller (and `flush` runs
    after that thread has stopped taking messages).
    """

    def __init__(self, clock: Callable[[], float], window_s: float = WINDOW_S) -> None:
        self._clock = clock
        self._window_s = window_s
        self._windows: dict[str, _Window] = {}
        self._next_sweep = 0.0

    def record(self, letter: DeadLetter) -> None:
        """Log `letter` if it is its device's first in a while, else count it."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        device = device_of(letter.topic)
        window = self._windows.get(device)
        if window is not None and now >= window.ends:
            self._close(device, window, now)
            window = self._windows.get(device)
        if window is None:
            self._windows[device] = _Window(now + self._window_s)
            logger.info("dead letter on %s: %s", printable(letter.topic),
                        printable(letter.reason))
        else:
            window.count += 1
            window.last_reason = letter.reason

    def flush(self) -> None:
        """Write every pending count now (at shutdown)."""
        for device, window in list(self._windows.items()):
            self._summary(device, window)
        self._windows.clear()

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_S
        for device, window in list(self._windows.items()):
            if now >= window.ends:
                self._close(device, window, now)

    def _close(self, device: str, window: _Window, now: float) -> None:
        """End a device's minute: log its count and keep counting, or forget a quiet device."""
        if window.count == 0:
            del self._windows[device]
            return
        self._summary(device, window)
        if now >= window.ends + self._window_s:  # quiet for a whole minute since: start over
            del self._windows[device]
        else:
            self._windows[device] = _Window(window.ends + self._window_s)

    def _summary(self, device: str, window: _Window) -> None:
        if window.count:
            logger.info("%d more dead letters from %s in the last %.0f s (last: %s)",
                        window.count, printable(device), self._window_s,
                        printable(window.last_reason))
