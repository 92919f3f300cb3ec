"""BufferedClient against a real broker: chunked reads and batched PUBACKs."""

from __future__ import annotations

import array
import fcntl
import random
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from eldercare.embedded import free_port, wait_for
from gateway import mqttclient
from gateway.mqttclient import NO_PROPERTIES, READ_CHUNK, READS_PER_PASS, BufferedClient
from tests.support.services import Broker

NEVER_SUBSCRIBED = "eldercare/internal/v1/test/never-subscribed"
"""Unsubscribing from it is a round trip with no effect: proof the broker read what came before."""


class Receiver:
    """A BufferedClient on a persistent session that records what it receives."""

    def __init__(self, broker: Broker, client_id: str, topic: str) -> None:
        self.messages: list[tuple[int, bytes]] = []
        self.full: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.unsubscribed = threading.Event()
        ep = broker.pipeline
        self.client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id,
                                     protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
        self.client.username_pw_set(ep.username, ep.password)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_unsubscribe = lambda *_: self.unsubscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300
        props.ReceiveMaximum = 5000
        self.client.connect(ep.host, ep.port, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, 10, "subscription")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.mid, bytes(msg.payload)))
            self.full.append(msg)

    def payloads(self) -> list[bytes]:
        """Payloads received so far, in order."""
        with self._lock:
            return [p for _, p in self.messages]

    def close(self) -> None:
        """Disconnect, keeping the broker session, once the broker has read what was sent.

        Without the round trip a reconnect with the same client id can take the session
        over while the broker still holds unread PUBACKs of this connection, which are
        then discarded (the messages are redelivered, as MQTT allows).
        """
        if self.client.is_connected():
            self.client.unsubscribe(NEVER_SUBSCRIBED)
            wait_for(self.unsubscribed.is_set, 10, "the broker to read all we sent")
        self.client.disconnect()
        self.client.loop_stop()


def _publisher(broker: Broker) -> mqtt.Client:
    ep = broker.pipeline
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(ep.username, ep.password)
    client.connect(ep.host, ep.port)
    client.loop_start()
    return client


@pytest.fixture
def publisher(broker: Broker) -> Iterator[mqtt.Client]:
    client = _publisher(broker)
    yield client
    client.disconnect()
    client.loop_stop()


def _topic() -> str:
    return f"eldercare/internal/v1/test/{uuid.uuid4().hex}"


def _publish_all(publisher: mqtt.Client, topic: str, payloads: list[bytes]) -> None:
    infos = [publisher.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)


def test_every_packet_arrives_intact_across_chunk_boundaries(broker: Broker,
                                                             publisher: mqtt.Client) -> None:
    topic = _topic()
    rx = Receiver(broker, f"buffered-{uuid.uuid4().hex[:8]}", topic)
    try:
        rng = random.Random(7)
        # Tiny, typical and near-maximum payloads; several exceed the read chunk's share,
        # so packets are split across reads at every position.
        sizes = [rng.choice([1, 150, 1_000, 20_000, 60_000]) for _ in range(600)]
        payloads = [i.to_bytes(4, "big") + rng.randbytes(n) for i, n in enumerate(sizes)]
        assert sum(sizes) > 20 * READ_CHUNK
        _publish_all(publisher, topic, payloads)
        wait_for(lambda: len(rx.payloads()) >= len(payloads), 30, "all messages")
        assert rx.payloads() == payloads
        rx.client.ack_many((mid for mid, _ in rx.messages), rx.client.connection)
    finally:
        rx.close()


def test_ack_many_acknowledges_and_unacked_messages_are_redelivered(
        broker: Broker, publisher: mqtt.Client) -> None:
    topic = _topic()
    client_id = f"buffered-{uuid.uuid4().hex[:8]}"
    rx = Receiver(broker, client_id, topic)
    payloads = [f"m{i}".encode() for i in range(400)]
    try:
        _publish_all(publisher, topic, payloads)
        wait_for(lambda: len(rx.payloads()) >= len(payloads), 30, "all messages")
        acked = {p for _, p in rx.messages[::2]}
        rx.client.ack_many((mid for mid, _ in rx.messages[::2]), rx.client.connection)
        rx.client.ack_many([], rx.client.connection)  # nothing to send is fine
        wait_for(lambda: not rx.client.want_write(), 10, "PUBACKs written")
    finally:
        rx.close()
    again = Receiver(broker, client_id, topic)  # same persistent session
    try:
        expected = [p for p in payloads if p not in acked]
        wait_for(lambda: len(again.payloads()) >= len(expected), 30, "redelivery")
        assert again.payloads() == expected
        again.client.ack_many((mid for mid, _ in again.messages), again.client.connection)
        wait_for(lambda: not again.client.want_write(), 10, "PUBACKs written")
    finally:
        again.close()
    last = Receiver(broker, client_id, topic)
    try:
        _publish_all(publisher, topic, [b"after"])
        wait_for(lambda: b"after" in last.payloads(), 10, "new message")
        assert last.payloads() == [b"after"]  # everything acknowledged stayed acknowledged
    finally:
        last.client.ack_many((mid for mid, _ in last.messages), last.client.connection)
        last.close()


def test_messages_keep_topic_flags_and_properties(broker: Broker,
                                                  publisher: mqtt.Client) -> None:
    topic = _topic()
    publisher.publish(topic, b"retained", qos=1, retain=True).wait_for_publish(10)
    rx = Receiver(broker, f"buffered-{uuid.uuid4().hex[:8]}", topic)
    try:
        wait_for(lambda: len(rx.full) >= 1, 10, "the retained message")
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = ("origin", "test")
        props.ContentType = "application/json"
        publisher.publish(topic, b"with-properties", qos=1, properties=props
                          ).wait_for_publish(10)
        publisher.publish(topic, b"plain", qos=1).wait_for_publish(10)
        publisher.publish(topic, b"qos0", qos=0).wait_for_publish(10)
        wait_for(lambda: len(rx.full) >= 4, 10, "all messages")
        retained, with_props, plain, qos0 = rx.full
        assert (retained.payload, retained.retain, retained.qos) == (b"retained", True, 1)
        assert retained.topic == topic
        # A message with properties takes paho's own path and keeps them.
        assert with_props.properties.UserProperty == [("origin", "test")]
        assert with_props.properties.ContentType == "application/json"
        # Property-less QoS 1 messages take the fast path.
        assert plain.properties is NO_PROPERTIES
        assert (plain.payload, plain.retain, plain.qos, plain.dup) == (b"plain", False, 1, False)
        assert plain.topic == topic and plain.mid > 0
        assert (qos0.payload, qos0.qos) == (b"qos0", 0)
        rx.client.ack_many((m.mid for m in rx.full if m.qos == 1), rx.client.connection)
        publisher.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)  # clear it
    finally:
        rx.close()


def _unread_bytes(client: mqtt.Client) -> int:
    """Bytes waiting in the client's socket (FIONREAD)."""
    sock = client.socket()
    assert sock is not None
    out = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, out)
    return out[0]


def test_a_read_pass_is_bounded_and_resumes_a_split_packet(
        broker: Broker, publisher: mqtt.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a continuous stream paho must get back to sending acks and pings."""
    chunk = 4096  # small reads, so a backlog of several chunks fits the socket's buffer
    monkeypatch.setattr(mqttclient, "READ_CHUNK", chunk)
    topic = _topic()
    ep = broker.pipeline
    got: list[mqtt.MQTTMessage] = []
    client = BufferedClient(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5,
                            manual_ack=True)
    client.username_pw_set(ep.username, ep.password)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda c, u, m: got.append(m)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = 5000
    client.connect(ep.host, ep.port, properties=props)
    try:
        deadline = time.monotonic() + 10
        while not subscribed.is_set() and time.monotonic() < deadline:
            client.loop(0.05)  # no network thread: this test drives the passes itself
        assert subscribed.is_set()
        payloads = [i.to_bytes(4, "big") + bytes(997) for i in range(1500)]
        _publish_all(publisher, topic, payloads)
        wait_for(lambda: _unread_bytes(client) > 4 * chunk, 10, "a backlog in the socket")

        client.loop_read()

        per_pass = READS_PER_PASS * chunk // 1000
        assert 0 < len(got) <= per_pass, "one pass reads at most READS_PER_PASS chunks"
        assert _unread_bytes(client) > 0
        deadline = time.monotonic() + 30
        while len(got) < len(payloads) and time.monotonic() < deadline:
            client.loop(0.05)
        assert [bytes(m.payload) for m in got] == payloads  # split packets resumed intact
        client.ack_many((m.mid for m in got), client.connection)
        while client.want_write():
            client.loop(0.05)
    finally:
        client.disconnect()


def _manual_client(broker: Broker, client_id: str, topic: str,
                   got: list[mqtt.MQTTMessage], subscribed: threading.Event) -> BufferedClient:
    """A BufferedClient on a persistent session, driven by the test (no network thread)."""
    ep = broker.pipeline
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
    client.username_pw_set(ep.username, ep.password)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda c, u, m: got.append(m)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 300
    client.connect(ep.host, ep.port, clean_start=False, properties=props)
    return client


def _loop_until(client: mqtt.Client, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        client.loop(0.05)


def _loop_until_read(client: mqtt.Client) -> None:
    """Drive the client until the broker has read everything sent so far (see Receiver.close)."""
    done = threading.Event()
    client.on_unsubscribe = lambda *_: done.set()
    client.unsubscribe(NEVER_SUBSCRIBED)
    _loop_until(client, done.is_set, "the broker to read all we sent")


def test_acks_of_an_earlier_connection_are_dropped(broker: Broker,
                                                  publisher: mqtt.Client) -> None:
    """After a reconnect an old PUBACK could acknowledge another message with the same id."""
    topic = _topic()
    got: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    client = _manual_client(broker, f"buffered-{uuid.uuid4().hex[:8]}", topic, got, subscribed)
    try:
        # Until the SUBACK, the broker may not yet route the publisher's messages to us.
        _loop_until(client, lambda: bool(client.connection) and not client.want_write()
                    and client.is_connected() and subscribed.is_set(), "subscribed")
        first = client.connection
        _publish_all(publisher, topic, [b"a", b"b"])
        _loop_until(client, lambda: len(got) == 2, "two messages")

        client.reconnect()  # e.g. the broker dropped the connection
        _loop_until(client, client.is_connected, "reconnected")

        assert client.connection == first + 1
        assert client.ack_many([m.mid for m in got], first) == MQTTErrorCode.MQTT_ERR_NO_CONN
        _loop_until(client, lambda: len(got) == 4, "the redelivered copies")
        copies = got[2:]
        assert [m.payload for m in copies] == [b"a", b"b"] and all(m.dup for m in copies)
        client.ack_many([m.mid for m in copies], client.connection)
        _loop_until_read(client)

        client.reconnect()
        _publish_all(publisher, topic, [b"c"])
        _loop_until(client, lambda: len(got) == 5, "the next message")
        assert got[4].payload == b"c"  # nothing else was redelivered: the acks counted
        client.ack_many([got[4].mid], client.connection)
        _loop_until(client, lambda: not client.want_write(), "PUBACKs written")
    finally:
        client.disconnect()


def test_ack_many_needs_manual_ack(broker: Broker) -> None:
    client = BufferedClient(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    with pytest.raises(ValueError, match="manual_ack"):
        client.ack_many([1], client.connection)


# --- service_client: how every platform service makes its client ---------------------------


def _logs_in(client: mqtt.Client, broker: Broker) -> bool:
    """Connect on the test broker; True when the login is accepted."""
    answer: list[bool] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answer.append(not reason.is_failure)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        wait_for(lambda: answer, 10, "CONNACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


def test_service_client_logs_in_with_the_service_account(broker: Broker) -> None:
    client_id = f"t-service-{uuid.uuid4().hex[:8]}"
    client = mqttclient.service_client(broker.pipeline, client_id, clean_session=True,
                                       reconnect_max_s=10)
    assert client.protocol == MQTTProtocolVersion.MQTTv311
    assert client.username == broker.pipeline.username
    assert client._client_id == client_id.encode()
    assert (client._reconnect_min_delay, client._reconnect_max_delay) == (1, 10)
    assert _logs_in(client, broker)


def test_service_client_for_the_high_rate_subscriber(broker: Broker) -> None:
    client = mqttclient.service_client(broker.pipeline, f"t-fast-{uuid.uuid4().hex[:8]}",
                                       client_class=BufferedClient, manual_ack=True,
                                       protocol=MQTTProtocolVersion.MQTTv5, reconnect_max_s=5)
    assert isinstance(client, BufferedClient) and client._manual_ack
    assert client.protocol == MQTTProtocolVersion.MQTTv5
    assert client._reconnect_max_delay == 5
    assert _logs_in(client, broker)


def test_service_client_defaults_are_pahos(broker: Broker) -> None:
    client = mqttclient.service_client(broker.pipeline, "t-defaults")
    stock = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-defaults")
    assert client.protocol == stock.protocol
    assert client._clean_session == stock._clean_session
    assert client._reconnect_max_delay == stock._reconnect_max_delay
    assert client._manual_ack == stock._manual_ack


def test_login_accepted_answers_whether_the_broker_accepts_a_login(broker: Broker) -> None:
    ep = broker.pipeline
    threads = set(threading.enumerate())
    assert mqttclient.login_accepted(ep.host, ep.port, ep.username, ep.password,
                                     client_id=f"t-login-{uuid.uuid4().hex[:8]}")
    assert not mqttclient.login_accepted(ep.host, ep.port, ep.username, "wrong-password",
                                         client_id=f"t-login-{uuid.uuid4().hex[:8]}")
    assert not mqttclient.login_accepted(ep.host, ep.port, "t-nobody", ep.password,
                                         client_id=f"t-login-{uuid.uuid4().hex[:8]}")
    assert set(threading.enumerate()) == threads  # paho ran in this thread: none was started


def test_login_accepted_is_false_when_no_broker_listens() -> None:
    assert not mqttclient.login_accepted("127.0.0.1", free_port(), "someone", "secret",
                                         client_id="t-login-nowhere")
