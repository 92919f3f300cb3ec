"""A paho-mqtt client for high-rate subscribers: chunked socket reads and batched PUBACKs.

Stock paho 2.x reads every incoming packet with three or four `recv` calls (command byte,
each length byte, body) and one `select` per packet, sends every PUBACK as its own packet
with its own wake-up of the network thread, and builds an MQTT 5 `Properties` object for
every PUBLISH. At ~15,000 msg/s that was about 40 % of the pipeline's CPU.
`BufferedClient` keeps paho's protocol handling, state machine, reconnects and callbacks
and replaces only how bytes move and how a plain PUBLISH is decoded:

- reads: one `recv` of up to 64 KiB fills a buffer that paho's packet parser then
  consumes; `loop_read` keeps parsing while the buffer holds data, so `select` is only
  consulted when the buffer is empty (no buffered packet can wait for a `select`), and
  a pass ends after two reads so acks and pings are sent in between;
- acks: `ack_many` (callable from any thread) hands the PUBACKs of a whole committed
  batch to the network thread, which sends them as one write. Acks are tied to the
  connection the messages came on (`connection`): after a reconnect, acks for the old
  connection are dropped (the broker redelivers those messages; duplicates are harmless
  downstream) so a stale PUBACK can never acknowledge a different message that reuses
  its id, and no PUBACK can be queued ahead of the new CONNECT;
- MQTT 5 QoS 1 PUBLISH packets without properties (what devices send) skip paho's
  per-message `Properties` object, which costs ~11 µs of the ~14 µs paho spends decoding
  a PUBLISH; such messages get one shared, empty `Properties` (do not modify it), and
  paho's per-message debug log line is skipped for them. Anything else (other QoS,
  packets with properties, MQTT 3.1.1) takes paho's own path.

It relies on internals of paho 2.2 (`_sock_recv`, `_handle_publish`, `_in_packet`,
`_handle_on_message`, `_packet_queue`, `_packet_write`, `_state`, `_sockpairW`); the
version is pinned and `tests/gateway/test_mqttclient.py` checks the behaviour against a
real broker (split packets, large payloads, properties, retained messages, bounded read
passes, acknowledged vs redelivered, acks of an earlier connection).

`service_client` is the one way a platform service (pipeline sessions, presence, broker
administration, device commands, the web app's bus bridge) makes its paho client; devices
make theirs with `simulators.wire.device_client`. `login_accepted` is the one way to ask
whether the broker accepts a login (the device accounts' reload check). The benchmarks' load
generators speak MQTT over raw sockets on purpose (paho would be the bottleneck there).
"""

from __future__ import annotations

import contextlib
import logging
import select
import struct
import threading
import time
from collections.abc import Iterable
from typing import Any, TypeVar, overload

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion, _ConnectionState
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)

READ_CHUNK = 1 << 16
READS_PER_PASS = 2  # socket reads per `loop_read` before paho may send acks and pings
_PUBACK = struct.Struct("!BBH")
_PUBACK_CMD = 0x40
_QOS1 = 1
NO_PROPERTIES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
"""The `properties` of every message taken by the fast path (shared: do not modify)."""
RECONNECT_MIN_S = 1
"""paho's first reconnect delay; it doubles up to the client's `reconnect_max_s`."""
PAHO_RECONNECT_MAX_S = 120  # paho's own default ceiling
LOGIN_TIMEOUT_S = 5.0
"""How long `login_accepted` waits for the TCP connection, and then for the CONNACK."""
LOGIN_KEEPALIVE_S = 10

C = TypeVar("C", bound=mqtt.Client)


@overload
def service_client(endpoint: MqttEndpoint, client_id: str, *,
                   protocol: MQTTProtocolVersion = ..., clean_session: bool | None = ...,
                   reconnect_max_s: int = ..., manual_ack: bool = ...) -> mqtt.Client: ...


@overload
def service_client(endpoint: MqttEndpoint, client_id: str, *, client_class: type[C],
                   protocol: MQTTProtocolVersion = ..., clean_session: bool | None = ...,
                   reconnect_max_s: int = ..., manual_ack: bool = ...) -> C: ...


def service_client(endpoint: MqttEndpoint, client_id: str, *,
                   client_class: type[mqtt.Client] = mqtt.Client,
                   protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
                   clean_session: bool | None = None,
                   reconnect_max_s: int = PAHO_RECONNECT_MAX_S,
                   manual_ack: bool = False) -> mqtt.Client:
    """A platform service's paho client, not yet connected: callback API 2, the service
    account of `endpoint`, reconnect delays from 1 s doubling to `reconnect_max_s`.

    Written once so every service sets credentials, protocol and reconnects the same way;
    what differs by role stays explicit at the call: the client id, the protocol (MQTT 5
    where flow control or PUBACK reason codes matter), the session flag (`clean_session`
    is MQTT 3.1.1's; an MQTT 5 session's clean start is an argument of `connect`), how
    long a reconnect may wait, `client_class=BufferedClient` with `manual_ack=True` for
    the high-rate subscriber. Callbacks, the will and the keepalive (a `connect`
    argument) are the caller's.
    """
    client = client_class(CallbackAPIVersion.VERSION2, client_id=client_id,
                          clean_session=clean_session, protocol=protocol,
                          manual_ack=manual_ack)
    client.username_pw_set(endpoint.username, endpoint.password)
    client.reconnect_delay_set(RECONNECT_MIN_S, reconnect_max_s)
    return client


def login_accepted(host: str, port: int, username: str, password: str, client_id: str,
                   timeout: float = LOGIN_TIMEOUT_S) -> bool:
    """One MQTT 3.1.1 login (clean session): True if the broker's CONNACK accepts it, after
    which the client disconnects cleanly; False if it is refused, the broker cannot be
    reached or no CONNACK comes within `timeout` (the caller decides whether to retry).

    paho is driven from the calling thread through its external-loop API (`loop_read` /
    `loop_write` on `socket()`), so a check starts no network thread and no wake-up socket
    pair: a caller may poll a login many times a second without threads piling up.
    """
    accepted: list[bool] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set(username, password)
    client.connect_timeout = timeout
    client.on_connect = lambda _c, _u, _f, reason, _p: accepted.append(not reason.is_failure)
    try:
        client.connect(host, port, keepalive=LOGIN_KEEPALIVE_S)
        _wait_connack(client, accepted, time.monotonic() + timeout)
        if accepted == [True]:
            client.disconnect()  # written at once: no network thread (paho's _packet_queue)
        return accepted == [True]
    except OSError:
        return False
    finally:
        sock = client.socket()
        if sock is not None:  # refused logins are closed by paho; this is the backstop
            sock.close()


def _wait_connack(client: mqtt.Client, answered: list[bool], deadline: float) -> None:
    """Run paho's reads and writes until the CONNACK was handled, the connection ended or
    `deadline` (monotonic) passed."""
    while not answered and (left := deadline - time.monotonic()) > 0:
        sock = client.socket()
        if sock is None:
            return
        readable, writable, _ = select.select([sock], [sock] if client.want_write() else [],
                                              [], left)
        if writable and client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return
        if readable and client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return


class BufferedClient(mqtt.Client):
    """paho `Client` with chunked reads and `ack_many` (use with `manual_ack=True`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object | None = None
        self._reads_left = READS_PER_PASS
        self._acks: list[bytes] = []
        self._acks_lock = threading.RLock()  # re-entered: _packet_queue may call want_write
        self.connection = 0  # incremented by every (re)connect; see ack_many

    def _sock_recv(self, bufsize: int) -> bytes:
        """Serve paho's small reads from a buffer filled by one large `recv`."""
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf) or self._rsock is not self._sock:
            if self._reads_left <= 0:
                # End of this pass. paho keeps a partly read packet and resumes it when
                # select() reports the rest, which is still in the socket.
                raise BlockingIOError
            self._reads_left -= 1
            buf = super()._sock_recv(max(bufsize, READ_CHUNK))
            if not buf:  # connection closed by the peer
                return buf
            self._rsock = self._sock
            pos = 0
        end = min(pos + bufsize, len(buf))
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    @property
    def buffered(self) -> int:
        """Bytes read from the current socket but not yet parsed."""
        if self._rsock is not self._sock:
            return 0
        return len(self._rbuf) - self._rpos

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Parse every complete packet read in this pass (at most READS_PER_PASS socket
        reads) before returning to `select`.

        No complete packet is ever left in the buffer, where `select` could not see it; the
        pass is bounded so that under a continuous stream paho still gets round to sending
        acknowledgements and keep-alive pings between passes.
        """
        self._reads_left = READS_PER_PASS
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self.buffered and self._sock is not None:
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        """Decode a property-less MQTT 5 QoS 1 PUBLISH without paho's Properties object."""
        header = self._in_packet["command"]
        if ((header & 0x06) >> 1 != _QOS1 or not self._manual_ack
                or self._protocol != MQTTProtocolVersion.MQTTv5):
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        if len(packet) < 2:
            return super()._handle_publish()
        tlen = (packet[0] << 8) | packet[1]
        pos = 2 + tlen
        if tlen == 0 or len(packet) < pos + 3 or packet[pos + 2] != 0:  # alias or properties
            return super()._handle_publish()
        message = mqtt.MQTTMessage((packet[pos] << 8) | packet[pos + 1], bytes(packet[2:pos]))
        message.dup = bool(header & 0x08)
        message.qos = _QOS1
        message.retain = bool(header & 0x01)
        message.properties = NO_PROPERTIES
        message.payload = bytes(memoryview(packet)[pos + 3:])
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Iterable[int], connection: int) -> MQTTErrorCode:
        """Acknowledge QoS 1 messages received on `connection` (the value of `connection`
        when they arrived) with one write for all their PUBACKs; any thread may call it.

        Acks for an earlier connection are dropped: the broker redelivers those messages.
        """
        if not self._manual_ack:
            raise ValueError("ack_many needs a client created with manual_ack=True")
        packet = b"".join(_PUBACK.pack(_PUBACK_CMD, 2, mid) for mid in mids)
        if not packet:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        with self._acks_lock:
            if connection != self.connection:
                logger.debug("dropped %d acks of an earlier connection", len(packet) // 4)
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            self._acks.append(packet)
        if self._sockpairW is not None:  # wake the network thread's select()
            with contextlib.suppress(BlockingIOError):
                self._sockpairW.send(b"0")
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def want_write(self) -> bool:
        """paho's check, plus acks waiting to be handed to the network thread.

        Under the lock, so an ack moving from the hand-off list to paho's queue is never
        seen in neither place.
        """
        with self._acks_lock:
            return bool(self._acks) or super().want_write()

    def _packet_write(self) -> MQTTErrorCode:
        """Queue the waiting acks (network thread only, so paho's queue has one writer)."""
        if self._acks:
            with self._acks_lock:
                acks, self._acks = self._acks, []
                if self._state == _ConnectionState.MQTT_CS_CONNECTED:
                    self._packet_queue(_PUBACK_CMD, b"".join(acks), 0, 0)
        return super()._packet_write()

    def reconnect(self) -> MQTTErrorCode:
        """Start a new connection: acks of the previous one are void."""
        with self._acks_lock:
            self.connection += 1
            self._acks.clear()
        return super().reconnect()
