"""Call buttons on raw sockets: one idle MQTT connection per button, a press is one
pre-framed QoS 1 PUBLISH written just after its time is taken (no client library on the
measured path); and one button flooding at a fixed rate."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from benchmarks.loadgen import connect_packet, publish_packet
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, DeviceEvent, EventType, encode, topic_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Press:
    """One SOS: which button, its seq, and when it was written to the socket (monotonic)."""

    device_id: str
    seq: int
    t0: float


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


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return bytes(data)


class Flood:
    """One call button pressing SOS at a fixed rate in a thread, until stopped."""

    def __init__(self, panel: ButtonPanel, device_id: str, rate: float) -> None:
        self.sent = 0
        self._panel, self._device, self._rate = panel, device_id, rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-flood", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            delay = start + self.sent / self._rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._panel.press(self._device)
            self.sent += 1

    def stop(self) -> int:
        """Stop pressing; how many presses were sent."""
        self._stop.set()
        self._thread.join(10)
        return self.sent
