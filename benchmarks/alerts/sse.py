"""When an alert reached the web app's live feed: an SSE client of the separate web-app
process, reading in a thread and timing each device event on the presses' monotonic clock."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.alerts.common import STREAM_PATH, TOKEN_PATH, describe
from eldercare.embedded import wait_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SseEvent:
    """One event of the alert stream that names a device, and when it arrived (monotonic)."""

    t: float
    name: str
    device_id: str


@dataclass
class _SseParser:
    """Assembles SSE lines into (event, data) messages."""

    name: str = "message"
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str] | None:
        """One line; returns a complete message at the blank line that ends it."""
        if not line:
            message = (self.name, "\n".join(self.data)) if self.data else None
            self.name, self.data = "message", []
            return message
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            self.name = value
        elif key == "data":
            self.data.append(value)
        return None


class SseListener:
    """Reads the web app's alert stream in a thread; records device events as they arrive."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.events: list[SseEvent] = []
        self.status: dict[str, Any] = {}  # from the `ready` and `status` events
        self.error: str | None = None
        self.other: dict[str, int] = {}
        self._base = base_url
        self._login = {"username": username, "password": password}
        self._opened = threading.Event()
        self._closing = False
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="bench-sse", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Log in and open the stream; on failure `error` says why and (b) is not measured."""
        self._thread.start()
        wait_for(lambda: self._opened.is_set() or self.error is not None, timeout,
                 "the alert stream to open")

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self._base, timeout=httpx.Timeout(10.0, read=None)
                              ) as client:
                token = client.post(TOKEN_PATH, data=self._login).raise_for_status().json()
                headers = {"Authorization": f"Bearer {token['access_token']}",
                           "Accept": "text/event-stream"}
                with client.stream("GET", STREAM_PATH, headers=headers) as resp:
                    resp.raise_for_status()
                    self._sock = resp.extensions["network_stream"].get_extra_info("socket")
                    self._read(resp.iter_lines())
        except Exception as exc:  # reported with the figures; the bench goes on without (b)
            if not self._closing:
                self.error = describe(exc)
                logger.warning("alert stream failed: %s", self.error)

    def _read(self, lines: Iterator[str]) -> None:
        parser = _SseParser()
        self._opened.set()
        for line in lines:
            message = parser.feed(line)
            if message is not None:
                self._on_message(time.monotonic(), *message)
        if not self._closing:
            self.error = "the server ended the stream"

    def _on_message(self, t: float, name: str, data: str) -> None:
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        device = body.get("device_id") if isinstance(body, dict) else None
        if name in ("alert", "pending") and isinstance(device, str):
            self.events.append(SseEvent(t, name, device))
            return
        if name in ("ready", "status") and isinstance(body, dict):
            self.status.update(body)
        self.other[name] = self.other.get(name, 0) + 1

    def seen(self, device_id: str, name: str | None = None) -> bool:
        """Whether an event for this device (of this name) has arrived."""
        return any(e.device_id == device_id and (name is None or e.name == name)
                   for e in list(self.events))

    def close(self) -> None:
        """Close the stream (shut the socket under the reading thread)."""
        self._closing = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("stream socket already closed")
        self._thread.join(10)
