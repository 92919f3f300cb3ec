"""Held messages handed back to the gateway keep their device's order, even when a new
message of that device arrives (on the network thread) in the middle of the hand-back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from eldercare.pipeline import Pipeline
from gateway.broker_admin import MqttEndpoint
from gateway.gateway import Gateway
from gateway.records import DeviceInfo, Record
from gateway.registry import RegistryUnavailable
from gateway.schema import DeviceType

NOW = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
TOPIC = "eldercare/v1/north/bed-1/telemetry"


def reading(seq: int) -> bytes:
    ts = int((NOW + timedelta(seconds=seq)).timestamp() * 1000)
    return json.dumps({"ts": ts, "seq": seq, "occupied": True, "movement": 1}).encode()


def test_a_new_message_waits_behind_its_devices_messages_being_handed_back() -> None:
    down = [True]
    known = {"bed-1": DeviceInfo("bed-1", "north", 1, DeviceType.BED_SENSOR)}

    def lookup(device_id: str) -> DeviceInfo | None:
        if down[0]:
            raise RegistryUnavailable(device_id)
        return known.get(device_id)

    pipe = Pipeline(MqttEndpoint("127.0.0.1", 1, "unused", "unused"),
                    "postgresql://unused", sites=[], name="handback")
    pipe.gateway = Gateway(lookup, raw_retention=timedelta(days=90))
    stored: list[int] = []

    def add(records: tuple[Record, ...], token: int | None) -> None:
        stored.extend(r.seq for r in records if r.seq is not None)
        if stored == [1]:  # the network thread delivers seq 3 while seq 2 is still held
            pipe._take_safely(TOPIC, reading(3), NOW, 3, False)

    pipe.writer.add = add  # type: ignore[method-assign]
    pipe.alerts.on_records = lambda records, token: None  # type: ignore[method-assign]
    pipe._take_safely(TOPIC, reading(1), NOW, 1, False)
    pipe._take_safely(TOPIC, reading(2), NOW, 2, False)
    assert pipe.parked == 2 and stored == []

    down[0] = False
    pipe._take_parked()
    pipe._take_parked()  # the registry listener's next pass takes what waited behind
    assert stored == [1, 2, 3]
    assert pipe.parked == 0


def test_a_message_held_again_keeps_its_place_ahead_of_newer_ones() -> None:
    def lookup(device_id: str) -> DeviceInfo | None:
        raise RegistryUnavailable(device_id)

    pipe = Pipeline(MqttEndpoint("127.0.0.1", 1, "unused", "unused"),
                    "postgresql://unused", sites=[], name="handback2")
    pipe.gateway = Gateway(lookup, raw_retention=timedelta(days=90))
    pipe._take_safely(TOPIC, reading(1), NOW, 1, False)
    pipe._take_safely(TOPIC, reading(2), NOW, 2, False)
    original = pipe.gateway.process

    def process(topic: str, payload: bytes, now: datetime) -> object:
        if json.loads(payload)["seq"] == 1:  # seq 4 arrives while seq 1 is handed back
            pipe._take_safely(TOPIC, reading(4), NOW, 4, False)
        return original(topic, payload, now)

    pipe.gateway.process = process  # type: ignore[method-assign,assignment]
    pipe._take_parked()
    assert [json.loads(held[1])["seq"] for held in pipe._parked] == [1, 2, 4]
