"""The internal alert bus seen from outside (a listener on the platform's service account),
device event payloads, and counting alerts: the alert path's end-to-end tests."""

from __future__ import annotations

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.bus import BUS_FILTER, AlertEvent, decode_event
from gateway.schema import EventType
from tests.support.database import count
from tests.support.services import Broker


class BusListener:
    """Subscribes to the internal alert bus with the platform's service account."""

    def __init__(self, broker: Broker) -> None:
        self.events: list[AlertEvent] = []
        self._subscribed = threading.Event()
        ep = broker.pipeline
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"bus-listener-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(ep.username, ep.password)
        self.client.on_connect = lambda c, *a: c.subscribe(BUS_FILTER, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.events.append(decode_event(m.payload))
        self.client.connect(ep.host, ep.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "bus subscription"

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def event_payload(kind: EventType, seq: int, ts_ms: int | None = None) -> bytes:
    """A device event as the devices send it (now, unless `ts_ms` says when)."""
    ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
    return json.dumps({"ts": ts, "seq": seq, "type": kind.value}).encode()


def count_alerts(url: str, where: str = "TRUE", *params: object) -> int:
    """How many alerts match `where`."""
    return count(url, f"SELECT count(*) FROM alerts WHERE {where}", *params)
