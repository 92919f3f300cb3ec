"""The simulation modes on the real broker (and, for the accelerated replay, the real pipeline)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from eldercare.pipeline import Pipeline
from gateway.device_accounts import PASSWORD_FILE, DeviceAccounts
from gateway.schema import (
    Channel,
    EventType,
    SosAckCommand,
    decode_event,
    decode_status,
    encode,
    topic_for,
)
from simulators.cli import load_credentials, provision_to_file, simulate_from_file
from simulators.incidents import Incident, IncidentType, read_ground_truth
from simulators.simulate import SimulationSummary, simulate
from tests.support.database import count
from tests.support.devices import forget_device
from tests.support.homes import seed_home
from tests.support.pipeline import running_pipeline
from tests.support.services import Broker
from tests.support.wait import wait_until

T = IncidentType


@pytest.fixture
def pipeline(clean_db: str, broker: Broker) -> Iterator[Pipeline]:
    with running_pipeline(broker.pipeline, clean_db, prefix="acc") as p:
        yield p


def test_accelerated_day_for_two_homes_is_stored_by_the_real_pipeline(pipeline, clean_db,
                                                                       broker, forget,
                                                                       tmp_path):
    homes = [seed_home(clean_db, broker.admin, name=f"Resident {i}") for i in range(2)]
    creds = [c for h in homes for c in (h.bed, h.button)]
    for c in creds:
        forget(c)
    truth = tmp_path / "truth.jsonl"
    types = [T.SOS, T.FALL, T.DEVICE_OFFLINE, T.HEART_RATE_HIGH, T.BED_EXIT_NO_RETURN,
             T.DRIFT_RESTING_HR]
    summary = simulate("accelerated", creds, "127.0.0.1", broker.port, threading.Event(),
                       days=1, telemetry_period_s=60, heartbeat_s=900, seed=4,
                       truth_path=truth, incidents_per_home_day=None, incident_types=types,
                       window=200, progress=False)

    assert summary.readings == 2 * 24 * 60 and summary.readings_dropped == 0
    assert summary.unacked == 0 and summary.connected == 4
    assert summary.sim_end - summary.sim_start >= timedelta(hours=23, minutes=59)
    incidents = read_ground_truth(truth)
    assert Counter(i.type for i in incidents) == Counter(dict(summary.incidents))
    assert {i.type for i in incidents} == set(types)  # one of each per home fits in a day
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM bed_telemetry")
               == summary.readings, timeout=30, what="every reading stored once")
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry WHERE device_time IS NOT NULL"
                 ) == 0  # simulated time, all of it plausible to the platform
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry WHERE time < %s OR time > %s",
                 summary.sim_start, summary.sim_end) == 0
    for inc in incidents:
        if inc.type in (T.SOS, T.FALL):
            wait_until(lambda inc=inc: count(
                clean_db, "SELECT count(*) FROM device_events WHERE device_id = %s AND "
                "type = %s AND time = %s", inc.device_id, inc.type.value, inc.start),
                what=f"{inc.type} event at its ground-truth time")
            wait_until(lambda inc=inc: count(
                clean_db, "SELECT count(*) FROM alerts WHERE resident_id = %s AND type = %s",
                inc.resident_id, inc.type.value), what=f"{inc.type} alert")
        if inc.type is T.DEVICE_OFFLINE:  # back online at its ground-truth time
            wait_until(lambda inc=inc: count(
                clean_db, "SELECT count(*) FROM device_status WHERE device_id = %s AND online "
                "AND time BETWEEN %s AND %s", inc.device_id, inc.end,
                inc.end + timedelta(seconds=1)), what="the device's return")
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE topic LIKE ANY(%s)",
                 [f"%/{c.device_id}/%" for c in creds]) == 0
    assert summary.messages["telemetry_batch"] >= 1  # the offline device caught up
    assert any(line.startswith("ground truth: ") and str(truth) in line
               for line in summary.lines())


def test_provisioned_homes_connect_and_load_mode_sustains_its_rate(clean_db, broker, tmp_path):
    path = tmp_path / "fleet.json"
    accounts = DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))
    creds = provision_to_file(clean_db, accounts, broker.pipeline, 100, path,
                              site_prefix="load", homes_per_site=60)
    try:
        assert load_credentials(path) == creds
        assert len(creds) == 200 and len({c.site for c in creds}) == 2
        assert count(clean_db, "SELECT count(*) FROM devices WHERE site_id LIKE 'load-%%'") == 200
        # The one provisioning path (record 0006): the password file, not the plugin.
        assert count(clean_db, "SELECT count(*) FROM devices WHERE broker_hash IS NULL") == 0
        users = {line.split(":", 1)[0] for line in
                 (broker.data_dir / PASSWORD_FILE).read_text().splitlines()}
        assert {c.device_id for c in creds} <= users
        summary = simulate_from_file("load", path, "127.0.0.1", broker.port, threading.Event(),
                                     rate=400, duration_s=4, seed=2, progress=False)
        assert summary.connected == 200
        # Behaviour: every home connected, telemetry sent at the configured rate and all of
        # it acknowledged. How close to the rate a run gets depends on the machine; that is
        # measured, not asserted (the run's summary, and `python -m benchmarks ingest`).
        assert summary.target_rate == pytest.approx(400)
        assert summary.messages["telemetry"] > 0, summary.lines()
        assert summary.unacked == 0
    finally:
        for c in creds:
            forget_device(c, broker.port)


def test_fleet_mode_keeps_up_with_its_expected_rate(clean_db, broker):
    homes = [seed_home(clean_db, broker.admin, name=f"Resident {i}") for i in range(10)]
    creds = [c for h in homes for c in (h.bed, h.button)]
    try:
        summary = simulate("fleet", creds, "127.0.0.1", broker.port, threading.Event(),
                           duration_s=3, telemetry_period_s=0.1, heartbeat_s=1, seed=3,
                           incidents_per_home_day=0, progress=False)
        expected = 10 / 0.1 + 20 / 1  # readings and heartbeats a second
        assert summary.target_rate == pytest.approx(expected, rel=0.15)
        # Every scheduled reading is sent, however far behind schedule a loaded machine runs
        # (achieved rate and lag are reported in the summary, not asserted).
        assert summary.messages["telemetry"] == 300, summary.lines()
        assert summary.unacked == 0
    finally:
        for c in creds:
            forget_device(c, broker.port)


def test_realtime_runs_until_stopped_with_incidents_acks_and_ground_truth(clean_db, broker, tap,
                                                                          forget, tmp_path,
                                                                          caplog):
    caplog.set_level(logging.INFO, logger="simulators")
    home = seed_home(clean_db, broker.admin)
    forget(home.bed)
    forget(home.button)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    sos = Incident(home.resident_id, T.SOS, soon, soon, home.button.device_id)
    later = Incident(home.resident_id, T.FALL, soon + timedelta(hours=1),
                     soon + timedelta(hours=1), home.button.device_id)
    truth = tmp_path / "truth.jsonl"
    stop = threading.Event()
    result: list[SimulationSummary] = []
    thread = threading.Thread(target=lambda: result.append(simulate(
        "realtime", [home.bed, home.button], "127.0.0.1", broker.port, stop,
        telemetry_period_s=0.05, heartbeat_s=1, incidents=[sos, later], truth_path=truth,
        progress=False)), daemon=True)
    thread.start()

    def sos_seen() -> bool:
        return any(decode_event(m.payload).type is EventType.SOS
                   for m in tap.of(home.button.device_id, Channel.EVENT))

    wait_until(sos_seen, what="the SOS")
    ack = SosAckCommand(ts=datetime.now(UTC), alert_id=7, message="on our way")
    tap.publish(topic_for(home.site, home.button.device_id, Channel.CMD), encode(ack))
    wait_until(lambda: "help is coming for alert 7" in caplog.text, what="the ack logged")
    wait_until(lambda: len(tap.of(home.bed.device_id, Channel.TELEMETRY)) >= 10,
               what="telemetry")
    stop.set()
    thread.join(15)
    assert not thread.is_alive()
    summary = result[0]
    assert summary.sos_acks == 1 and summary.messages["telemetry"] >= 10
    assert [(i.type, i.start) for i in read_ground_truth(truth)] == [(T.SOS, sos.start)]
    events = [decode_event(m.payload) for m in tap.of(home.button.device_id, Channel.EVENT)]
    assert [e.ts for e in events if e.type is EventType.SOS] == [sos.start]
    # The clean power-off status was published before the thread ended; the tap may still
    # be receiving it.
    wait_until(lambda: decode_status(
        tap.of(home.bed.device_id, Channel.STATUS)[-1].payload).online is False,
        what="the clean power-off status")
    assert not [t for t in threading.enumerate() if t.name.startswith("paho-mqtt-client-")
                and home.bed.device_id in t.name]
