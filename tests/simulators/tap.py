"""A raw MQTT subscriber on the pipeline account, for checking what simulated devices send."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.schema import ALL_SITES_FILTER, Channel, parse_topic
from kernel.endpoint import MqttEndpoint


@dataclass(frozen=True)
class Received:
    """One message the tap saw."""

    topic: str
    device_id: str
    channel: Channel
    payload: bytes
    retain: bool


class Tap:
    """Subscribes to every device topic as the pipeline account and records what arrives."""

    def __init__(self, endpoint: MqttEndpoint) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self.subscribed = threading.Event()
        self.refused = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"sim-tap-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(endpoint.username, endpoint.password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        # The pipeline account may subscribe eldercare/v1/+/+/+ (all device channels);
        # its ACL refuses eldercare/v1/#.
        client.subscribe(ALL_SITES_FILTER, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reasons: Any,
                      props: Any) -> None:
        (self.refused if any(r.is_failure for r in reasons) else self.subscribed).set()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        t = parse_topic(msg.topic)
        with self._lock:
            self._messages.append(Received(msg.topic, t.device_id, t.channel,
                                           bytes(msg.payload), bool(msg.retain)))

    def of(self, device_id: str, channel: Channel | None = None,
           live_only: bool = True) -> list[Received]:
        """Messages of one device (optionally one channel); retained replays skipped."""
        with self._lock:
            return [m for m in self._messages
                    if m.device_id == device_id and (channel is None or m.channel == channel)
                    and not (live_only and m.retain)]

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish as the pipeline account (e.g. a command to a device)."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
