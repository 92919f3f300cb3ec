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
from tests.conftest import Broker
from tests.devices import RawDevice
from tests.helpers import Home, count, running_pipeline, seed_home, wait_until

STEP_MS = 5_000


@pytest.fixture
def home(clean_db: str, broker: Broker) -> Home:
    return seed_home(clean_db, broker.admin)


@pytest.fixture
def pipeline(clean_db: str, broker: Broker, home: Home) -> Iterator[Pipeline]:
    with running_pipeline(broker.pipeline, clean_db, prefix="backlog") as p:
        yield p


def _reading(ts_ms: int, seq: int) -> bytes:
    return json.dumps({"ts": ts_ms, "seq": seq, "occupied": True, "heart_rate": 62,
                       "respiration_rate": 14, "movement": 2}).encode()


def _rows(url: str) -> int:
    return count(url, "SELECT count(*) FROM bed_telemetry")


def test_an_event_processed_before_its_older_readings_is_no_silence(
        pipeline: Pipeline, home: Home, clean_db: str, broker: Broker) -> None:
    """Readings are in up to minute 1 of the backlog; the bed's entry event at 12:30 is
    processed next; then the stored readings of minutes 1-13 arrive. Nothing was silent."""
    start = int(time.time() * 1000) - 20 * 60_000  # the backlog began 20 minutes ago
    bed = RawDevice(home.bed, broker.port)
    try:
        wait_until(bed.connected.is_set, what="bed connected")
        seq = 0
        for i in range(12):  # minute 0-1: in live
            seq += 1
            bed.publish(Channel.TELEMETRY, _reading(start + i * STEP_MS, seq))
        wait_until(lambda: _rows(clean_db) == 12, what="the first minute stored")
        seq += 1
        bed.publish(Channel.EVENT, json.dumps({"ts": start + 750_000, "seq": seq,
                                               "type": "bed_entry"}).encode())
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM device_events") == 1,
                   what="the event stored")
        for i in range(12, 12 * 13):  # minutes 1-13, forwarded after the event
            seq += 1
            bed.publish(Channel.TELEMETRY, _reading(start + i * STEP_MS, seq))
        wait_until(lambda: _rows(clean_db) == 12 * 13, what="the backlog stored")
    finally:
        bed.close()
    # The detector ran over every record before ingest stored it; triggers are counted as
    # they are raised, so nothing can still be on its way.
    assert pipeline.alerts.raised == 0
    assert count(clean_db, "SELECT count(*) FROM alerts WHERE type = 'device_offline'") == 0
