"""The pipeline process: MQTT in -> gateway -> ingest (batched COPY) and alerts (own path).

Each message is received and decoded once. Messages are acknowledged to the broker only
after everything they produced is committed (at-least-once, persistent session).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from alerts.engine import AlertWorker, event_trigger
from alerts.model import AlertTrigger
from alerts.store import StoredAlert
from gateway.broker_admin import MqttEndpoint
from gateway.gateway import Accepted, Gateway
from gateway.records import EventRecord
from gateway.registry import Registry
from gateway.schema import ALL_SITES_FILTER, site_filter
from ingest.writer import IngestWriter

logger = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 10_000
SESSION_EXPIRY_S = 7 * 24 * 3600


class AckGate:
    """Acknowledges a message once every consumer that holds it has released it."""

    def __init__(self, ack: Callable[[int], None]) -> None:
        self._ack = ack
        self._extra: dict[int, int] = {}
        self._lock = threading.Lock()

    def hold(self, token: int, holders: int) -> None:
        """Declare that `holders` consumers must release `token` before it is acked."""
        if holders > 1:
            with self._lock:
                self._extra[token] = self._extra.get(token, 0) + holders - 1

    def release(self, token: int) -> None:
        """One consumer is done with `token`."""
        self.release_many([token])

    def release_many(self, tokens: list[int]) -> None:
        """Several tokens released by one consumer (a committed batch)."""
        ready: list[int] = []
        with self._lock:
            extra = self._extra
            for token in tokens:
                left = extra.get(token)
                if left is None:
                    ready.append(token)
                elif left <= 1:
                    del extra[token]
                else:
                    extra[token] = left - 1
        for token in ready:
            self._ack(token)


def topic_filters(sites: list[str]) -> list[str]:
    """Subscription filters for the sites this pipeline owns ([] = every site)."""
    return [site_filter(s) for s in sites] if sites else [ALL_SITES_FILTER]


class Pipeline:
    """One pipeline process's worth of gateway, ingest and alerts."""

    def __init__(self, mqtt_endpoint: MqttEndpoint, database_url: str, sites: list[str],
                 name: str = "main", batch_rows: int = 5000, batch_ms: int = 200,
                 on_alert: Callable[[StoredAlert, AlertTrigger], None] | None = None) -> None:
        self.sites = sites
        self.filters = topic_filters(sites)
        self._endpoint = mqtt_endpoint
        self.registry = Registry(database_url)
        self.gateway = Gateway(self.registry.lookup)
        self._client = self._make_client(f"eldercare-pipeline-{name}")
        self.gate = AckGate(self._ack)
        self.writer = IngestWriter(database_url, self.gate.release_many, batch_rows,
                                   batch_ms / 1000)
        self.alerts = AlertWorker(database_url, self.gate.release, on_alert)
        self.connected = threading.Event()
        self.received = 0
        self.dead_letters = 0

    def _make_client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
        client.username_pw_set(self._endpoint.username, self._endpoint.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 5)
        return client

    def start(self) -> None:
        """Load the registry, start the workers and connect to the broker."""
        count = self.registry.load()
        logger.info("registry: %d devices; subscribing to %s", count, ", ".join(self.filters))
        self.registry.start_listener()
        self.writer.start()
        self.alerts.start()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30,
                                   clean_start=False, properties=props)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect, then flush everything pending (unflushed messages are redelivered)."""
        self._client.disconnect()
        self._client.loop_stop()
        self.alerts.stop()
        self.writer.stop()
        self.registry.stop()

    def _ack(self, token: int) -> None:
        self._client.ack(token, 1)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            logger.error("broker refused the pipeline login: %s", reason)
            return
        logger.info("connected to broker (session present: %s)", flags.session_present)
        # retainHandling=2: never replay retained messages. The persistent session already
        # delivered every status live; a replayed Last Will would be a stale duplicate.
        opts = SubscribeOptions(qos=1, retainHandling=2)
        client.subscribe([(f, opts) for f in self.filters])
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self.connected.clear()
        if reason.is_failure:
            logger.warning("disconnected from broker: %s; reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        token = msg.mid if msg.qos > 0 else None
        result = self.gateway.process(msg.topic, bytes(msg.payload), datetime.now(UTC))
        if not isinstance(result, Accepted):
            self.dead_letters += 1
            logger.info("dead letter on %s: %s", result.topic, result.reason)
            self.writer.add_dead_letter(result, token)
            return
        for rec in result.records:
            if type(rec) is EventRecord:
                trigger = event_trigger(rec)
                if trigger is not None:
                    if token is not None:
                        self.gate.hold(token, 2)
                    self.alerts.submit(trigger, token)
        self.writer.add(result.records, token)
