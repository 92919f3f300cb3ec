"""Device commands (e.g. sos_ack) published with QoS 1 through the platform service account."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion

from alerts.notify.channels.base import SendError
from alerts.notify.messages import Message
from gateway.mqttclient import service_client
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)


class MqttCommandSender:
    """One persistent connection; `send` publishes `message.data` as JSON to the target topic
    and waits for the broker's PUBACK."""

    def __init__(self, endpoint: MqttEndpoint, timeout_s: float = 5.0,
                 client_id: str | None = None) -> None:
        self._timeout = timeout_s
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._acks: dict[int, int] = {}  # mid -> PUBACK reason code
        self._client = service_client(endpoint,
                                      client_id or f"eldercare-notify-{uuid.uuid4().hex}",
                                      protocol=MQTTProtocolVersion.MQTTv5, reconnect_max_s=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.connect_async(endpoint.host, endpoint.port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            logger.warning("notify MQTT connection refused: %s", reason)
            return
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        self._connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any = None) -> None:
        with self._lock:
            self._acks[mid] = int(getattr(reason, "value", 0))

    def send(self, target: str, secret: Mapping[str, Any], message: Message) -> None:
        """Publish the command; not connected or no PUBACK in time -> retryable error."""
        if not self._connected.wait(self._timeout):
            raise SendError("MQTT broker not connected", retryable=True)
        payload = json.dumps(message.data, separators=(",", ":")).encode()
        info = self._client.publish(target, payload, qos=1)
        try:
            info.wait_for_publish(self._timeout)
        except (RuntimeError, ValueError) as exc:
            raise SendError(f"MQTT publish failed: {exc}", retryable=True) from exc
        if not info.is_published():
            raise SendError("MQTT publish not acknowledged in time", retryable=True)
        with self._lock:
            reason = self._acks.pop(info.mid, 0)
        if reason >= 0x80:
            raise SendError(f"broker refused the publish (reason {reason:#x})", retryable=False)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()
