"""The alert benchmark's probes: how it presses call buttons and how it sees the results.

`ButtonPanel` holds one raw MQTT connection per call button, so a press is one pre-framed
PUBLISH with nothing of paho on the measured path; `CommitListener` (`LISTEN alerts`) takes
the commit time of each alert, `SseListener` the arrival of its event on the web app's
stream. All three stamp with the same monotonic clock. What is measured, and the report,
are in benchmarks/alerts.py.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from benchmarks.loadgen import connect_packet, publish_packet
from eldercare.embedded import wait_for
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, DeviceEvent, EventType, encode, topic_for
from kernel.db import connect

logger = logging.getLogger(__name__)

STREAM_PATH = "/api/v1/alerts/stream"
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a URL, not a secret


@dataclass(frozen=True)
class Press:
    """One SOS: which button, its seq, and when it was written to the socket (monotonic)."""

    device_id: str
    seq: int
    t0: float


@dataclass(frozen=True)
class SseEvent:
    """One event of the alert stream that names a device, and when it arrived (monotonic)."""

    t: float
    name: str
    device_id: str


class ButtonPanel:
    """One idle MQTT connection per call button; a press is one pre-framed QoS 1 PUBLISH."""

    def __init__(self, buttons: Sequence[DeviceCredentials], host: str, port: int) -> None:
        self._socks: dict[str, socket.socket] = {}
        self._topics: dict[str, bytes] = {}
        self._mids: dict[str, int] = {}
        for c in buttons:
            sock = socket.create_connection((host, port), timeout=10)
            self._socks[c.device_id] = sock
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(connect_packet(c.device_id, c.username, c.password))
            ack = _recv_exactly(sock, 4)
            if ack[0] != 0x20 or ack[3] != 0:
                self.close()
                raise ConnectionError(f"broker refused {c.device_id}: {ack!r}")
            self._topics[c.device_id] = topic_for(c.site, c.device_id, Channel.EVENT).encode()
            self._mids[c.device_id] = 0

    def press(self, device_id: str) -> Press:
        """Publish one SOS with a fresh seq; the press time is taken just before the write."""
        seq = time.time_ns() // 1000
        body = encode(DeviceEvent(ts=datetime.now(UTC), seq=seq, type=EventType.SOS))
        mid = self._mids[device_id] = self._mids[device_id] % 65535 + 1
        packet = publish_packet(self._topics[device_id], mid, body)
        t0 = time.monotonic()
        self._socks[device_id].sendall(packet)
        return Press(device_id, seq, t0)

    def unacknowledged(self, presses: Sequence[Press], timeout: float = 5.0) -> int:
        """Presses the broker did not PUBACK (read after the run, off the measured path)."""
        counts: dict[str, int] = {}
        for p in presses:
            counts[p.device_id] = counts.get(p.device_id, 0) + 1
        missing = 0
        for device_id, n in counts.items():
            sock = self._socks[device_id]
            sock.settimeout(timeout)
            try:
                data = _recv_exactly(sock, 4 * n)
                missing += sum(1 for i in range(n) if data[4 * i] != 0x40)
            except (OSError, ConnectionError):
                missing += n
        return missing

    def close(self) -> None:
        """Disconnect every button."""
        for sock in self._socks.values():
            try:
                sock.sendall(b"\xe0\x00")
            except OSError:
                logger.debug("disconnect failed")
            sock.close()
        self._socks.clear()


def describe(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return bytes(data)


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
