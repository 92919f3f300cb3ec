"""The pipeline's alert path on real services: SOS to stored alert and live bus, cancel,
a telemetry rule end to end, and alerts while the database is down."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.bus import AlertEvent
from alerts.config import AlertSettings
from alerts.service import AlertEngine, EngineTiming
from eldercare.embedded import start_postgres
from eldercare.pipeline import Pipeline
from gateway.records import EventRecord
from gateway.schema import Channel, EventType
from kernel.db import connect
from tests.support.bus import BusListener, count_alerts, event_payload
from tests.support.database import count
from tests.support.devices import RawDevice
from tests.support.homes import Home, seed_home
from tests.support.services import Broker
from tests.support.wait import wait_until


@pytest.fixture
def bus(broker: Broker) -> Iterator[BusListener]:
    listener = BusListener(broker)
    yield listener
    listener.close()


@pytest.fixture
def pipeline_and_home(clean_db: str, broker: Broker) -> Iterator[tuple[Pipeline, Home]]:
    home = seed_home(clean_db, broker.admin)
    pipe = Pipeline(broker.pipeline, clean_db, sites=[], name=f"alerts{time.time_ns()}",
                    batch_ms=50)
    pipe.start()
    try:
        wait_until(pipe.connected.is_set, what="pipeline connected")
        yield pipe, home
    finally:
        pipe.stop()


def test_sos_is_stored_and_announced_on_the_bus(clean_db: str, broker: Broker,
                                                bus: BusListener,
                                                pipeline_and_home: tuple[Pipeline, Home]
                                                ) -> None:
    _, home = pipeline_and_home
    button = RawDevice(home.button, broker.port)
    try:
        wait_until(button.connected.is_set, what="button connected")
        button.publish(Channel.EVENT, event_payload(EventType.SOS, 1))
        wait_until(lambda: count_alerts(clean_db, "type = 'sos' AND status = 'open'") == 1,
                   what="SOS alert stored")
        wait_until(lambda: any(e.type == "sos" for e in bus.events), what="bus event")
    finally:
        button.close()
    event = next(e for e in bus.events if e.type == "sos")
    assert (event.resident_id, event.device_id, event.action) == (
        home.resident_id, home.button.device_id, "raised")
    assert event.severity == "critical" and event.site == home.site
    # The stored alert carries the uid the live feed saw first.
    assert count_alerts(clean_db, "uid = %s::uuid", event.uid) == 1


def test_sos_cancel_within_the_window_cancels(clean_db: str, broker: Broker,
                                              pipeline_and_home: tuple[Pipeline, Home]
                                              ) -> None:
    _, home = pipeline_and_home
    button = RawDevice(home.button, broker.port)
    now_ms = int(time.time() * 1000)
    try:
        wait_until(button.connected.is_set, what="button connected")
        button.publish(Channel.EVENT, event_payload(EventType.SOS, 1, now_ms))
        button.publish(Channel.EVENT, event_payload(EventType.SOS_CANCEL, 2, now_ms + 10_000))
        wait_until(lambda: count_alerts(clean_db, "status = 'cancelled'") == 1,
                   what="SOS cancelled by the resident")
    finally:
        button.close()
    assert count_alerts(clean_db, "outcome = 'cancelled_by_resident'") == 1


def test_apnea_from_telemetry_end_to_end(clean_db: str, broker: Broker,
                                         pipeline_and_home: tuple[Pipeline, Home]) -> None:
    _, home = pipeline_and_home
    bed = RawDevice(home.bed, broker.port)
    t0 = int(time.time() * 1000) - 120_000
    breathing = [{"ts": t0 + i * 1000, "seq": i + 1, "occupied": True, "heart_rate": 62.0,
                  "respiration_rate": 14.0, "movement": 1} for i in range(30)]
    stopped = [{"ts": t0 + (30 + i) * 1000, "seq": 31 + i, "occupied": True,
                "heart_rate": 60.0, "respiration_rate": 0.0, "movement": 0}
               for i in range(40)]
    batch = json.dumps({"ts": t0 + 70_000, "seq": 100, "samples": breathing + stopped}).encode()
    try:
        wait_until(bed.connected.is_set, what="bed connected")
        bed.publish(Channel.TELEMETRY, batch)
        wait_until(lambda: count_alerts(clean_db, "type = 'apnea'") == 1, what="apnea alert")
    finally:
        bed.close()
    assert count_alerts(clean_db, "type = 'apnea' AND severity = 'critical'") == 1


def test_detector_state_survives_a_restart(clean_db: str, broker: Broker) -> None:
    home = seed_home(clean_db, broker.admin)
    name = f"state{time.time_ns()}"
    reading = json.dumps({"ts": int(time.time() * 1000), "seq": 1, "occupied": True,
                          "heart_rate": 135.0, "respiration_rate": 14.0, "movement": 2})
    bed = RawDevice(home.bed, broker.port)
    pipe = Pipeline(broker.pipeline, clean_db, sites=[], name=name, batch_ms=50)
    pipe.start()
    try:
        wait_until(pipe.connected.is_set, what="pipeline connected")
        wait_until(bed.connected.is_set, what="bed connected")
        bed.publish(Channel.TELEMETRY, reading.encode())
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM bed_telemetry") == 1,
                   what="reading stored")
    finally:
        bed.close()
        pipe.stop()  # saves the detector state of every resident it saw
    assert count(clean_db, "SELECT count(*) FROM detector_state WHERE resident_id = %s",
                 home.resident_id) == 1
    again = Pipeline(broker.pipeline, clean_db, sites=[], name=name, batch_ms=50)
    again.start()
    try:
        assert again.alerts.restored == 1
    finally:
        again.stop()


def test_a_device_that_never_spoke_is_reported_offline(clean_db: str, broker: Broker) -> None:
    """Residents are watched from the start, not from their first message: a mat installed a
    day ago that has never sent anything is an offline device."""
    home = seed_home(clean_db, broker.admin)
    with connect(clean_db, autocommit=True) as conn:
        conn.execute("UPDATE devices SET created_at = now() - interval '2 days' "
                     "WHERE resident_id = %s", (home.resident_id,))
        # The call button spoke once (its detector state is gone): not "never heard".
        conn.execute("UPDATE devices SET last_seen = now() - interval '1 day' WHERE id = %s",
                     (home.button.device_id,))
    engine = AlertEngine(clean_db, AlertSettings(), [], publish=lambda *_: None,
                         release=lambda _: None, hold=lambda *_: None, lookup=lambda _: None,
                         timing=EngineTiming(tick_s=0.05, start_grace_s=0))
    engine.start()
    try:
        wait_until(lambda: count_alerts(clean_db, "type = 'device_offline'") == 1,
                   what="the never-heard mat reported offline")
    finally:
        engine.stop()
    with connect(clean_db) as conn:
        row = conn.execute("SELECT device_id, details->>'reason', count FROM alerts "
                           "WHERE type = 'device_offline'").fetchone()
    assert row == (home.bed.device_id, "never_heard", 1)  # one trigger: the mat's


def test_alerts_reach_the_bus_and_direct_channels_while_the_database_is_down(
        own_pg: tuple[Any, list[Any]], broker: Broker, bus: BusListener) -> None:
    cfg, procs = own_pg
    home = seed_home(cfg.url, broker.admin)
    direct: list[AlertEvent] = []
    pipe = Pipeline(broker.pipeline, cfg.url, sites=[], name=f"down{time.time_ns()}",
                    batch_ms=50, direct=direct.append)
    pipe.start()
    button = RawDevice(home.button, broker.port)
    try:
        wait_until(pipe.connected.is_set, what="pipeline connected")
        wait_until(button.connected.is_set, what="button connected")
        procs[0].stop()
        button.publish(Channel.EVENT, event_payload(EventType.SOS, 1))
        wait_until(lambda: any(e.type == "sos" for e in bus.events), what="bus event")
        wait_until(lambda: len(direct) == 1, timeout=20, what="direct notification")
        assert direct[0].type == "sos" and direct[0].resident_id == home.resident_id
        assert pipe.alerts.database_down
        procs[0] = start_postgres(cfg)
        wait_until(lambda: count_alerts(cfg.url, "type = 'sos'") == 1, timeout=60,
                   what="alert stored once the database is back")
        assert not pipe.alerts.database_down
    finally:
        button.close()
        pipe.stop()
    assert len(direct) == 1, "one direct notification per alert"


FLOOD = 2000


def _history_before(url: str, flooding: int, other: int) -> int:
    """History rows of the flooding resident's alerts written before the other's alert opened
    (history ids follow commit order on the alert worker's single connection)."""
    return count(url, "SELECT count(*) FROM alert_history h JOIN alerts a ON a.id = h.alert_id "
                      "WHERE a.resident_id = %s AND h.id < (SELECT min(h2.id) FROM "
                      "alert_history h2 JOIN alerts a2 ON a2.id = h2.alert_id "
                      "WHERE a2.resident_id = %s)", flooding, other)


def test_a_flooding_button_does_not_delay_another_residents_sos(clean_db: str,
                                                                broker: Broker) -> None:
    flooder = seed_home(clean_db, broker.admin, name="Flooder")
    other = seed_home(clean_db, broker.admin, name="Other")
    pipe = Pipeline(broker.pipeline, clean_db, sites=[], name=f"flood{time.time_ns()}",
                    batch_ms=50)
    pipe.start()
    a = RawDevice(flooder.button, broker.port)
    b = RawDevice(other.button, broker.port)
    t0 = int(time.time() * 1000) - 10_000
    try:
        wait_until(lambda: pipe.connected.is_set() and a.connected.is_set()
                   and b.connected.is_set(), what="pipeline and buttons connected")
        for i in range(FLOOD):
            a.publish(Channel.EVENT, event_payload(EventType.SOS, i + 1, t0 + i))
        b.publish(Channel.EVENT, event_payload(EventType.SOS, 1, t0 + FLOOD))
        wait_until(lambda: count_alerts(clean_db, "resident_id = %s", other.resident_id) == 1,
                   what="the other resident's SOS stored", timeout=60)
        # Every press of the flood is still stored as a device event (and acknowledged).
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM device_events WHERE "
                                 "device_id = %s", flooder.button.device_id) == FLOOD,
                   what="every press stored as an event", timeout=60)
    finally:
        a.close()
        b.close()
        pipe.stop()
    # Before coalescing the other SOS was stored behind ~2,000 repeats of the flood; now it
    # waits for at most a couple of the flooding device's stores.
    assert _history_before(clean_db, flooder.resident_id, other.resident_id) <= 4
    assert count_alerts(clean_db, "resident_id = %s AND type = 'sos' AND status = 'open'",
                   flooder.resident_id) == 1
    assert pipe.alerts.coalesced > 0


def test_a_cancel_after_rapid_presses_is_not_overtaken_by_a_parked_press(
        clean_db: str, broker: Broker, pipeline_and_home: tuple[Pipeline, Home]) -> None:
    pipe, home = pipeline_and_home
    button = RawDevice(home.button, broker.port)
    now_ms = int(time.time() * 1000)
    try:
        wait_until(button.connected.is_set, what="button connected")
        for i in range(5):  # presses within the rate-limit interval are merged or parked
            button.publish(Channel.EVENT, event_payload(EventType.SOS, i + 1, now_ms + i * 100))
        button.publish(Channel.EVENT, event_payload(EventType.SOS_CANCEL, 9, now_ms + 2_000))
        wait_until(lambda: count_alerts(clean_db, "status = 'cancelled'") == 1,
                   what="SOS cancelled by the resident")
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM device_events") == 6,
                   what="every press stored as an event")
        pipe.stop()  # stores whatever was still parked
    finally:
        button.close()
    assert count_alerts(clean_db, "TRUE") == 1  # no press reopened an alert after the cancel


def test_a_press_after_a_cancel_is_a_new_emergency_even_while_the_worker_lags(
        own_pg: tuple[Any, list[Any]], broker: Broker) -> None:
    """SOS, cancel, SOS again while alerts cannot be stored (database down): the second
    press must not be merged into the first one, which the cancel then cancels with it."""
    cfg, procs = own_pg
    home = seed_home(cfg.url, broker.admin)
    first = seed_home(cfg.url, broker.admin, name="First")
    pipe = Pipeline(broker.pipeline, cfg.url, sites=[], name=f"recancel{time.time_ns()}",
                    batch_ms=50)
    pipe.start()
    button = RawDevice(home.button, broker.port)
    other = RawDevice(first.button, broker.port)
    now_ms = int(time.time() * 1000)
    try:
        wait_until(pipe.connected.is_set, what="pipeline connected")
        wait_until(lambda: button.connected.is_set() and other.connected.is_set(),
                   what="buttons connected")
        procs[0].stop()
        # The worker takes this one and retries it until the database is back; the presses
        # below wait in its queue meanwhile.
        other.publish(Channel.EVENT, event_payload(EventType.SOS, 1, now_ms))
        wait_until(lambda: pipe.alerts.raised >= 1, what="the other SOS raised")
        button.publish(Channel.EVENT, event_payload(EventType.SOS, 10, now_ms))
        button.publish(Channel.EVENT, event_payload(EventType.SOS_CANCEL, 11, now_ms + 10_000))
        button.publish(Channel.EVENT, event_payload(EventType.SOS, 12, now_ms + 20_000))
        wait_until(lambda: pipe.alerts.raised >= 3, what="both presses raised")
        procs[0] = start_postgres(cfg)
        mine = f"type = 'sos' AND resident_id = {home.resident_id}"
        wait_until(lambda: count_alerts(cfg.url, f"{mine} AND status = 'cancelled'") == 1
                   and count_alerts(cfg.url, f"{mine} AND status = 'open'") == 1,
                   timeout=60, what="the first SOS cancelled, the second one open")
    finally:
        button.close()
        other.close()
        pipe.stop()


def _press(home: Home[Any], seq: int, at: datetime) -> EventRecord:
    return EventRecord(at, home.button.device_id, home.resident_id, home.site, seq,
                       EventType.SOS, None, at, at)


def test_settled_only_once_every_decision_is_stored(clean_db: str, broker: Broker) -> None:
    """`settled` is what a caller waits on before reading the store (the end-to-end
    sample): it must not be true while a decision is parked by the rate limit or queued."""
    home = seed_home(clean_db, broker.admin)
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    engine = AlertEngine(clean_db, AlertSettings(), [], publish=lambda *_: None,
                         release=lambda _: None, hold=lambda *_: None, lookup=lambda _: None,
                         clock=lambda: at, timing=EngineTiming(repeat_interval_s=3600))
    engine.start()
    try:
        engine.on_records([_press(home, 1, at)], None)
        wait_until(lambda: engine.settled, what="the first press stored")
        assert count_alerts(clean_db, "type = 'sos'") == 1  # settled: read at once
        engine.on_records([_press(home, 2, at + timedelta(seconds=5))], None)
        # the second press is parked for an hour by the rate limit: never settled meanwhile
        assert not engine.settled
    finally:
        engine.stop()  # stores what is parked
    with connect(clean_db) as conn:
        row = conn.execute("SELECT count FROM alerts WHERE type = 'sos'").fetchone()
    assert row == (2,)
