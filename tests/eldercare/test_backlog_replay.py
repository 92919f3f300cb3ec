"""A device's store-and-forward backlog replayed through the real broker and pipeline gives
the same alert decisions as live: its event (own MQTT session) may be processed before its
own older readings, and that is no silence."""

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

STEP_MS = 5_000


@pytest.fixture
def home(clean_db: str, broker: Broker) -> Home:
    return seed_home(clean_db, broker.admin)


@pytest.fixture
def pipeline(clean_db: str, broker: Broker, home: Home) -> Iterator[Pipeline]:
    with running_pipeline(broker.pipeline, clean_db, prefix="backlog") as p:
        yield p


def _reading(ts_ms: int, seq: int, apnea: bool = False) -> bytes:
    return json.dumps({"ts": ts_ms, "seq": seq, "occupied": True, "heart_rate": 62,
                       "respiration_rate": 0 if apnea else 14,
                       "movement": 0 if apnea else 2}).encode()


def _rows(url: str) -> int:
    return count(url, "SELECT count(*) FROM bed_telemetry")


@pytest.mark.parametrize("order", ["live", "backlog"])
def test_a_backlog_gives_the_same_decisions_as_live(
        pipeline: Pipeline, home: Home, clean_db: str, broker: Broker, order: str) -> None:
    """13 minutes of readings (with a 40-s breathing pause at minute 6) and the bed's entry
    event at 12:30. Live: readings and event in time order. Backlog (after a reconnect):
    readings are in up to minute 1, the event is processed next (own session), then the
    stored readings of minutes 1-13. Both: one apnea alert, no device_offline."""
    start = int(time.time() * 1000) - 20 * 60_000  # the readings began 20 minutes ago
    readings = [_reading(start + i * STEP_MS, i + 1, apnea=72 <= i < 80)
                for i in range(12 * 13)]
    entry = json.dumps({"ts": start + 750_000, "seq": 1000, "type": "bed_entry"}).encode()
    first = 12 if order == "backlog" else 150  # readings before the event (150: 12:30)
    bed = RawDevice(home.bed, broker.port)
    try:
        wait_until(bed.connected.is_set, what="bed connected")
        for body in readings[:first]:
            bed.publish(Channel.TELEMETRY, body)
        wait_until(lambda: _rows(clean_db) == first, what="the readings before the event")
        bed.publish(Channel.EVENT, entry)
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM device_events") == 1,
                   what="the event stored")
        for body in readings[first:]:
            bed.publish(Channel.TELEMETRY, body)
        wait_until(lambda: _rows(clean_db) == len(readings), what="every reading stored")
    finally:
        bed.close()
    # The detector ran over every record before ingest stored it, and triggers are counted
    # as they are raised: nothing can still be on its way.
    assert pipeline.alerts.raised == 1
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM alerts") == 1, what="stored")
    assert count(clean_db, "SELECT count(*) FROM alerts WHERE type = 'apnea'") == 1
