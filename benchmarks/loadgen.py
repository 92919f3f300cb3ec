"""A lean MQTT 3.1.1 load generator: many device connections, QoS 1, one thread, no paho.

paho costs ~200 µs per QoS 1 publish on this class of machine, which would make the load
generator the bottleneck of an ingest benchmark. This writes pre-framed PUBLISH packets
straight to the sockets and counts PUBACKs. Payloads still come from the contract models.
"""

from __future__ import annotations

import logging
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from benchmarks.ledger import DeviceLedger
from gateway import schema
from gateway.presence import part_topic
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, topic_for
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)

WINDOW = 200  # unacknowledged messages per connection, far below the 65,535 id space


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 0) -> bytes:
    """MQTT 3.1.1 CONNECT with username/password and a clean session."""
    var = _utf8("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive)
    body = var + _utf8(client_id) + _utf8(username) + _utf8(password)
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: bytes, mid: int, payload: bytes) -> bytes:
    """MQTT 3.1.1 PUBLISH at QoS 1."""
    body_len = 2 + len(topic) + 2 + len(payload)
    return (b"\x32" + _remaining_length(body_len) + struct.pack("!H", len(topic)) + topic
            + struct.pack("!H", mid) + payload)


@dataclass
class _Conn:
    creds: DeviceCredentials
    sock: socket.socket
    topic: bytes
    seq: int = 0
    mid: int = 0
    # packet id -> (ledger, index) of each message awaiting its PUBACK
    pending: dict[int, tuple[DeviceLedger, int]] = field(default_factory=dict)
    buf: bytearray = field(default_factory=bytearray)


@dataclass
class LoadResult:
    """What the generator did."""

    sent: int
    acked: int
    seconds: float
    ledgers: list[DeviceLedger] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Acknowledged messages per second."""
        return self.acked / self.seconds if self.seconds else 0.0


def reading_payload(seq: int, now_ms: int) -> bytes:
    """One bed reading stamped with the publish time (lets the benchmark measure lag)."""
    return schema.encode(schema.BedReading(
        ts=datetime.fromtimestamp(now_ms / 1000, UTC), seq=seq, occupied=True,
        heart_rate=55 + seq % 20, respiration_rate=12 + seq % 6, movement=seq % 30))


class LoadGenerator:
    """Publishes bed telemetry for many devices at a fixed total rate."""

    def __init__(self, creds: list[DeviceCredentials], host: str, port: int,
                 payload: Callable[[int, int], bytes] = reading_payload) -> None:
        self._sel = selectors.DefaultSelector()
        self._conns: list[_Conn] = []
        self._payload = payload
        self.sent = 0
        self.acked = 0
        for c in creds:
            sock = socket.create_connection((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(connect_packet(c.device_id, c.username, c.password))
            ack = sock.recv(4)
            if len(ack) < 4 or ack[3] != 0:
                raise ConnectionError(f"broker refused {c.device_id}: {ack!r}")
            sock.setblocking(False)
            conn = _Conn(c, sock, topic_for(c.site, c.device_id, Channel.TELEMETRY).encode(),
                         seq=time.time_ns() // 1_000_000)
            self._conns.append(conn)
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _read_acks(self, timeout: float) -> None:
        for key, _ in self._sel.select(timeout):
            conn: _Conn = key.data
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError(f"broker closed {conn.creds.device_id}")
            conn.buf += data
            self._take_pubacks(conn)

    def _take_pubacks(self, conn: _Conn) -> None:
        """Mark the message of each complete PUBACK (always 4 bytes: 0x40 0x02 id id) in its
        device's ledger, by packet id: which (device, seq) pairs were acknowledged."""
        buf, pending = conn.buf, conn.pending
        end = len(buf) // 4 * 4
        for i in range(0, end, 4):
            if buf[i] != 0x40:
                raise ConnectionError(f"unexpected packet {buf[i]:#x} from the broker for "
                                      f"{conn.creds.device_id}")
            entry = pending.pop(buf[i + 2] << 8 | buf[i + 3], None)
            if entry is not None:
                entry[0].ack(entry[1])
                self.acked += 1
        del buf[:end]

    def run(self, rate: float, seconds: float, should_stop: Callable[[], bool] = lambda: False
            ) -> LoadResult:
        """Publish at `rate` msg/s in total for `seconds`, then wait for the acks. The result
        holds each device's ledger: which seqs of this run were sent and PUBACKed."""
        start = time.monotonic()
        sent0, acked0 = self.sent, self.acked
        index = 0
        total = int(rate * seconds)
        conns = self._conns
        ledgers = [DeviceLedger(c.creds.device_id, c.seq + 1) for c in conns]
        for i in range(total):
            due = start + i / rate
            while True:
                now = time.monotonic()
                self._read_acks(0 if now >= due else min(due - now, 0.01))
                if time.monotonic() >= due:
                    break
            conn, ledger = conns[index], ledgers[index]
            index = (index + 1) % len(conns)
            while len(conn.pending) >= WINDOW:
                self._read_acks(0.01)
            conn.seq += 1
            conn.mid = conn.mid % 65535 + 1
            while conn.mid in conn.pending:  # an id whose PUBACK never came stays taken
                conn.mid = conn.mid % 65535 + 1
            conn.pending[conn.mid] = (ledger, ledger.add_sent())
            body = self._payload(conn.seq, time.time_ns() // 1_000_000)
            conn.sock.setblocking(True)
            conn.sock.sendall(publish_packet(conn.topic, conn.mid, body))
            conn.sock.setblocking(False)
            self.sent += 1
            if should_stop():
                break
        deadline = time.monotonic() + 60
        while self.acked < self.sent and time.monotonic() < deadline:
            self._read_acks(0.05)
        return LoadResult(self.sent - sent0, self.acked - acked0, time.monotonic() - start,
                          [led for led in ledgers if led.sent])

    def close(self) -> None:
        """Disconnect every device."""
        for conn in self._conns:
            self._sel.unregister(conn.sock)
            try:
                conn.sock.sendall(b"\xe0\x00")
            except OSError:
                logger.debug("disconnect of %s failed", conn.creds.device_id)
            conn.sock.close()
        self._conns.clear()


def forget_part(ep: MqttEndpoint, part: str) -> None:
    """Clear the retained presence of a benchmark's own pipeline (gateway.presence): a
    stopped throwaway pipeline must not stay on the duty screen as a part that is down."""
    topic = part_topic(part).encode()
    body = len(topic).to_bytes(2, "big") + topic  # QoS 0, empty payload: deletes the retained
    try:
        with socket.create_connection((ep.host, ep.port), timeout=5) as sock:
            sock.sendall(connect_packet(f"bench-forget-{part}"[:64], ep.username or "",
                                        ep.password or ""))
            sock.recv(4)
            sock.sendall(bytes([0x31, len(body)]) + body + b"\xe0\x00")
    except OSError as exc:
        logger.warning("could not clear the presence of %s: %s", part, exc)


def discard_session(ep: MqttEndpoint, client_id: str) -> None:
    """Drop a persistent broker session (else it queues the next run's messages)."""
    try:
        with socket.create_connection((ep.host, ep.port), timeout=5) as sock:
            sock.sendall(connect_packet(client_id, ep.username or "", ep.password or ""))
            sock.recv(4)
            sock.sendall(b"\xe0\x00")
    except OSError as exc:
        logger.warning("could not discard the broker session %s: %s", client_id, exc)
