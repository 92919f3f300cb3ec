"""What the simulators send is accepted by the real pipeline: stored, never dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from eldercare.pipeline import Pipeline
from simulators.clock import ManualClock
from simulators.devices import BedSensorSim, CallButtonSim
from tests.support.database import count
from tests.support.homes import Home
from tests.support.pipeline import running_pipeline
from tests.support.services import Broker
from tests.support.wait import wait_until


@pytest.fixture
def pipeline(clean_db: str, broker: Broker, home: Home) -> Iterator[Pipeline]:
    with running_pipeline(broker.pipeline, clean_db, prefix="sim") as p:
        yield p


def test_pipeline_stores_live_readings_batches_events_and_status(pipeline, home, clean_db,
                                                                sims):
    start = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    clock = ManualClock(start)
    bed = sims(BedSensorSim(home.bed, clock=clock, seed=1))
    button = sims(CallButtonSim(home.button, clock=clock, seed=1))
    assert bed.connect(wait=10) and button.connect(wait=10)
    for i in range(300):  # 10 minutes of readings, most of them stored while offline
        if i == 5:
            bed.go_offline()
        bed.sample()
        clock.advance(2)
    assert bed.buffered == 295
    assert bed.go_online(wait=10)
    assert bed.sent["telemetry_batch"] >= 2  # more than fits in one 16 KiB batch
    button.press_sos()
    bed_events = sum(n for k, n in bed.sent.items() if k.startswith("event:"))

    wait_until(lambda: count(clean_db, "SELECT count(*) FROM bed_telemetry") == 300,
               what="every reading stored once")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM alerts WHERE type = 'sos' "
                                       "AND resident_id = %s", home.resident_id),
               what="sos alert")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM device_events") == 1 + bed_events,
               what="events stored")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM device_status WHERE NOT online "
                                       "AND device_id = %s", home.bed.device_id) == 1,
               what="Last Will stored")
    # (Retained messages of earlier tests' devices, unknown to this database, may be there.)
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE topic LIKE %s "
                 "OR topic LIKE %s", f"%/{bed.device_id}/%", f"%/{button.device_id}/%") == 0
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry WHERE device_time IS NOT NULL"
                 ) == 0  # device clock judged plausible
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry WHERE time < %s OR time > %s",
                 start, clock()) == 0
