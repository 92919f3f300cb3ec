"""End to end on real services: device -> broker -> pipeline -> TimescaleDB and alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from eldercare.pipeline import Pipeline
from gateway.schema import Channel
from tests.support.database import count
from tests.support.devices import RawDevice
from tests.support.homes import Home, seed_home
from tests.support.pipeline import running_pipeline
from tests.support.services import Broker
from tests.support.wait import wait_until


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def home(clean_db: str, broker: Broker) -> Home:
    return seed_home(clean_db, broker.admin)


@pytest.fixture
def pipeline(clean_db: str, broker: Broker, home: Home) -> Iterator[Pipeline]:
    with running_pipeline(broker.pipeline, clean_db, prefix="t") as p:
        yield p


def test_sos_becomes_critical_alert(pipeline, home, clean_db, broker):
    # Behaviour only; the SOS publish -> alert committed latency is measured (p50/p99) by
    # `python -m benchmarks alerts` (benchmarks/alerts/, docs/benchmarks.md).
    dev = RawDevice(home.button, broker.port)
    wait_until(dev.connected.is_set, what="device connected")
    dev.publish(Channel.EVENT, json.dumps({"ts": now_ms(), "seq": 1, "type": "sos"}).encode())
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM alerts WHERE type='sos' "
                                       "AND severity='critical' AND resident_id=%s",
                             home.resident_id), timeout=30, what="sos alert")
    dev.close()


def test_telemetry_lands_in_hypertable(pipeline, home, clean_db, broker):
    dev = RawDevice(home.bed, broker.port)
    wait_until(dev.connected.is_set)
    for seq in range(20):
        dev.publish(Channel.TELEMETRY, json.dumps({
            "ts": now_ms() - (20 - seq) * 1000, "seq": seq, "occupied": True,
            "heart_rate": 62, "respiration_rate": 14, "movement": 2}).encode())
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM bed_telemetry") == 20,
               what="20 rows")
    dev.close()


def test_bad_messages_are_dead_lettered_and_good_ones_kept(pipeline, home, clean_db, broker):
    dev = RawDevice(home.bed, broker.port)
    wait_until(dev.connected.is_set)
    good = {"ts": now_ms(), "occupied": False, "movement": 0}
    dev.publish(Channel.TELEMETRY, json.dumps({**good, "seq": 1}).encode())
    dev.publish(Channel.TELEMETRY, b"not json at all")
    dev.publish(Channel.TELEMETRY, json.dumps({**good, "seq": "x"}).encode())
    dev.publish(Channel.TELEMETRY, json.dumps({**good, "seq": 2, "pad": "x" * 17000}).encode())
    dev.publish(Channel.TELEMETRY, json.dumps({**good, "seq": 3}).encode())
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 3,
               what="3 dead letters")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM bed_telemetry") == 2,
               what="2 good rows")
    dev.close()


def test_unknown_device_and_wrong_site_are_dead_lettered(pipeline, home, clean_db, broker):
    from gateway.broker_admin import BrokerAdmin
    from gateway.provisioning import DeviceCredentials

    # Broker accounts that the registry does not back: a device missing from the
    # database, and a registered device whose broker ACL names another site.
    with BrokerAdmin(broker.admin) as ba:
        ba.add_device("ghost-1", "north", "ghost-secret")
        ba.add_device(home.bed.device_id, "south", home.bed.password)
    ghost = RawDevice(DeviceCredentials("ghost-1", "bed_sensor", "north", 0, "ghost-1",
                                        "ghost-secret", "", "", 0), broker.port)
    moved = RawDevice(home.bed, broker.port)
    wait_until(lambda: ghost.connected.is_set() and moved.connected.is_set())
    body = json.dumps({"ts": now_ms(), "seq": 1, "occupied": True, "movement": 1}).encode()
    ghost.publish(Channel.TELEMETRY, body)
    moved.publish(Channel.TELEMETRY, body, site="south")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 2)
    reasons = count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason LIKE "
                              "'unknown device%%' OR reason LIKE '%%registered to site%%'")
    assert reasons == 2
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry") == 0
    ghost.close()
    moved.close()


def test_status_updates_device_health(pipeline, home, clean_db, broker):
    dev = RawDevice(home.button, broker.port)
    wait_until(dev.connected.is_set)
    dev.publish(Channel.STATUS, json.dumps({"ts": now_ms(), "seq": 1, "online": True,
                                            "battery": 77, "fw": "2.1.0",
                                            "heartbeat_s": 60}).encode())
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM devices WHERE id=%s AND "
                                       "battery=77 AND online AND firmware='2.1.0'",
                             home.button.device_id), what="device health updated")
    dev.close()


def _reading(seq: int) -> bytes:
    return json.dumps({"ts": now_ms(), "seq": seq, "occupied": False, "movement": 0}).encode()


def test_a_processing_bug_dead_letters_the_message_and_the_stream_goes_on(
        pipeline, home, clean_db, broker):
    process = pipeline.gateway.process

    def buggy(topic: str, payload: bytes, now: object) -> object:
        if json.loads(payload).get("seq") == 2:
            raise RuntimeError("a bug")
        return process(topic, payload, now)  # type: ignore[arg-type]

    pipeline.gateway.process = buggy  # type: ignore[method-assign]
    dev = RawDevice(home.bed, broker.port)
    wait_until(dev.connected.is_set)
    for seq in (1, 2, 3):
        dev.publish(Channel.TELEMETRY, _reading(seq))
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM bed_telemetry") == 2,
               what="the good rows")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason LIKE "
                                       "'internal error in the pipeline: %%a bug%%'"),
               what="the message kept as a dead letter")
    assert pipeline.connected.is_set()
    dev.close()


def test_a_clean_stop_acknowledges_every_message_it_took(home, clean_db, broker):
    """Rows still waiting for their batch at stop are committed and acknowledged, so the
    next run of the same pipeline gets no redeliveries."""
    name = f"stop{time.time_ns()}"
    first = Pipeline(broker.pipeline, clean_db, sites=[], name=name, batch_ms=60_000)
    first.start()
    dev = RawDevice(home.bed, broker.port)
    try:
        wait_until(first.connected.is_set, what="pipeline connected")
        wait_until(dev.connected.is_set)
        for seq in range(1, 6):
            dev.publish(Channel.TELEMETRY, _reading(seq))
        wait_until(lambda: first.received == 5, what="five messages taken, not yet written")
        assert count(clean_db, "SELECT count(*) FROM bed_telemetry") == 0
    finally:
        first.stop()
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry") == 5
    second = Pipeline(broker.pipeline, clean_db, sites=[], name=name, batch_ms=50)
    second.start()
    try:
        wait_until(second.connected.is_set, what="pipeline reconnected")
        dev.publish(Channel.TELEMETRY, _reading(6))
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM bed_telemetry") == 6,
                   what="the next message")
        assert second.received == 1  # nothing of the first run came back
    finally:
        second.stop()
        dev.close()
