"""A paho client that records what the broker does to it (CONNACK, SUBACK, PUBACK, messages,
disconnects) for tests to wait on with deadlines: the broker-security, device-lifecycle and
device-administration tests' probe (the `probes` fixture in tests/conftest.py closes them)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.schema import LAST_WILL_PAYLOAD
from tests.support.services import Broker

TIMEOUT = 10.0
NOT_AUTHORIZED = 135  # paho normalises MQTT 3.1.1 CONNACK rc 5 to this v5 reason code too

class Probe:
    """A paho client that records what happens to it, for waiting on with deadlines."""

    def __init__(self, port: int, username: str | None, password: str | None,
                 client_id: str, protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
                 will_topic: str | None = None) -> None:
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.disconnected = threading.Event()
        self.connect_reason: ReasonCode | None = None
        self.disconnect_reason: ReasonCode | None = None
        self.messages: list[mqtt.MQTTMessage] = []
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._pubacks: dict[int, ReasonCode] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol)
        if username is not None:
            self.client.username_pw_set(username, password)
        if will_topic is not None:
            self.client.will_set(will_topic, LAST_WILL_PAYLOAD, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    @classmethod
    def pipeline(cls, broker: Broker) -> Probe:
        """Logged in as the platform's pipeline service account."""
        ep = broker.pipeline
        probe = cls(ep.port, ep.username, ep.password, f"test-pipeline-{uuid.uuid4().hex[:8]}",
                    MQTTProtocolVersion.MQTTv5)
        probe.wait_connected()
        return probe

    # callbacks (paho network thread)
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: ReasonCode,
                    props: Any) -> None:
        self.connect_reason = reason
        if reason.is_failure:
            client.disconnect()  # stop paho's automatic retries: they only slow teardown
            self.refused.set()
        else:
            self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: ReasonCode,
                       props: Any) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], props: Any) -> None:
        with self._cond:
            self._subacks[mid] = reason_codes
            self._cond.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: ReasonCode,
                    props: Any) -> None:
        with self._cond:
            self._pubacks[mid] = reason
            self._cond.notify_all()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    # test-side API
    def wait_connected(self) -> None:
        """Fail unless the broker accepted the login."""
        assert self.connected.wait(TIMEOUT), f"not connected (reason {self.connect_reason})"

    def wait_refused(self) -> ReasonCode:
        """Fail unless the broker refused the login; return the CONNACK reason."""
        assert self.refused.wait(TIMEOUT), "login was not refused"
        assert not self.connected.is_set()
        assert self.connect_reason is not None
        return self.connect_reason

    def _wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, TIMEOUT), f"timed out waiting for {what}"

    def subscribe(self, topic_filter: str) -> ReasonCode:
        """Subscribe (QoS 1) and return the broker's SUBACK reason code."""
        result, mid = self.client.subscribe(topic_filter, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS and mid is not None
        self._wait_for(lambda: mid in self._subacks, f"SUBACK for {topic_filter}")
        (code,) = self._subacks[mid]
        return code

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        """Publish QoS 1 and return the PUBACK reason (always Success in MQTT 3.1.1)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        self._wait_for(lambda: info.mid in self._pubacks, f"PUBACK for {topic}")
        return self._pubacks[info.mid]

    def wait_message(self, topic: str, payload: bytes | None = None) -> mqtt.MQTTMessage:
        """Wait for a message on `topic` (with `payload`, if given) and return it."""
        def find() -> mqtt.MQTTMessage | None:
            for m in self.messages:
                if m.topic == topic and (payload is None or m.payload == payload):
                    return m
            return None
        self._wait_for(lambda: find() is not None, f"a message on {topic}")
        found = find()
        assert found is not None
        return found

    def received(self, payload: bytes) -> list[str]:
        """Topics on which `payload` arrived so far."""
        with self._cond:
            return [m.topic for m in self.messages if m.payload == payload]

    def drop_connection(self) -> None:
        """Vanish without DISCONNECT (power cut): the broker publishes the Last Will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
