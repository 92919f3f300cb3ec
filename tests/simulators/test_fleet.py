"""The fleet runner and the CLI entry point on a real broker."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.provisioning import DeviceCredentials
from gateway.schema import (
    LAST_WILL_PAYLOAD,
    Channel,
    EventType,
    decode_event,
    decode_status,
    decode_telemetry,
)
from kernel import db
from kernel.sites import add_site
from simulators.cli import load_credentials, simulate_demo, site_zones
from simulators.fleet import Fleet, FleetStats, Scheduler, run_fleet
from tests.support.homes import seed_home
from tests.support.wait import wait_until


def paho_threads_alive(device_ids: list[str]) -> list[str]:
    names = {f"paho-mqtt-client-{d}" for d in device_ids}
    return [t.name for t in threading.enumerate() if t.name in names]


def run_in_thread(target: Callable[..., FleetStats], *args: Any, **kwargs: Any
                  ) -> tuple[threading.Thread, list[FleetStats]]:
    result: list[FleetStats] = []
    thread = threading.Thread(target=lambda: result.append(target(*args, **kwargs)),
                              daemon=True)
    thread.start()
    return thread, result


def test_fleet_runs_homes_injects_incidents_and_stops_cleanly(clean_db, broker, tap, forget,
                                                               caplog):
    caplog.set_level(logging.INFO, logger="simulators")
    homes = [seed_home(clean_db, broker.admin, name=f"Resident {i}") for i in range(2)]
    creds = [c for h in homes for c in (h.bed, h.button)]
    for c in creds:
        forget(c)
    ids = [c.device_id for c in creds]
    stop = threading.Event()
    thread, result = run_in_thread(
        run_fleet, creds, "127.0.0.1", broker.port, stop, telemetry_period_s=0.1,
        sos_mean_interval_s=0.3, cancel_probability=1.0, cancel_within_s=0.5, heartbeat_s=1,
        seed=3)

    def busy() -> bool:
        events = Counter(decode_event(m.payload).type for h in homes
                         for m in tap.of(h.button.device_id, Channel.EVENT))
        return (all(len(tap.of(h.bed.device_id, Channel.TELEMETRY)) >= 3 for h in homes)
                and all(len(tap.of(d, Channel.STATUS)) >= 2 for d in ids)  # + a heartbeat
                and events[EventType.SOS] >= 1 and events[EventType.SOS_CANCEL] >= 1)

    wait_until(busy, timeout=20, what="telemetry, heartbeats, an SOS and a cancel")
    stop.set()
    thread.join(15)
    assert not thread.is_alive()
    stats = result[0]
    assert (stats.homes, stats.devices, stats.connected) == (2, 4, 4)
    assert stats.incidents >= 1 and stats.cancelled >= 1
    assert stats.messages["telemetry"] >= 6 and stats.messages["event:sos"] == stats.incidents
    assert stats.total_messages == sum(stats.messages.values())
    assert paho_threads_alive(ids) == []
    for d in ids:
        def offline(d: str = d) -> bool:
            return decode_status(tap.of(d, Channel.STATUS)[-1].payload).online is False

        wait_until(offline, what=f"{d} announced offline")
        msgs = tap.of(d)
        assert msgs[-1].payload != LAST_WILL_PAYLOAD  # a clean goodbye, not a dropped link
        seqs: list[int | None] = []
        for m in msgs:
            if m.channel is Channel.TELEMETRY:
                seqs.append(decode_telemetry(m.payload).seq)
            elif m.channel is Channel.EVENT:
                seqs.append(decode_event(m.payload).seq)
            else:
                seqs.append(decode_status(m.payload).seq)
        assert None not in seqs
        assert seqs == sorted(s for s in seqs if s is not None) and len(set(seqs)) == len(seqs)
    assert "demo incident" in caplog.text


def test_simulate_demo_reads_the_seeded_credentials(clean_db, broker, tap, forget, tmp_path,
                                                     caplog):
    caplog.set_level(logging.INFO, logger="simulators")
    home = seed_home(clean_db, broker.admin)
    forget(home.bed)
    forget(home.button)
    path = tmp_path / "demo-devices.json"
    path.write_text(json.dumps([home.bed.as_dict(), home.button.as_dict()]))
    stop = threading.Event()
    thread, result = run_in_thread(simulate_demo, path, "127.0.0.1", broker.port, stop,
                                   telemetry_period_s=0.1, sos_mean_interval_s=None)
    wait_until(lambda: len(tap.of(home.bed.device_id, Channel.TELEMETRY)) >= 2,
               what="telemetry")
    stop.set()
    thread.join(15)
    assert not thread.is_alive()
    stats = result[0]
    assert (stats.homes, stats.devices, stats.incidents) == (1, 2, 0)
    assert "simulation stopped" in caplog.text


def test_fleet_stops_even_when_the_broker_refuses(clean_db, broker, caplog):
    caplog.set_level(logging.INFO, logger="simulators")
    home = seed_home(clean_db, broker.admin)
    bad = [home.bed.__class__(**{**home.bed.as_dict(), "password": "wrong"})]
    stop = threading.Event()
    thread, result = run_in_thread(run_fleet, bad, "127.0.0.1", broker.port, stop,
                                   telemetry_period_s=0.05, connect_timeout_s=0.5)
    wait_until(lambda: "not connected yet" in caplog.text, what="fleet running unconnected")
    wait_until(lambda: "the broker refuses the device" in caplog.text, what="login refused")
    stop.set()
    thread.join(15)
    assert not thread.is_alive()
    assert result[0].connected == 0 and result[0].total_messages == 0
    assert result[0].refused == 1
    assert paho_threads_alive([home.bed.device_id]) == []


def test_load_credentials_explains_bad_files(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        load_credentials(path)
    path.write_text(json.dumps([{"device_id": "x"}]))
    with pytest.raises(ValueError, match="device credentials"):
        load_credentials(path)
    path.write_text("[]")
    with pytest.raises(ValueError, match="no devices"):
        load_credentials(path)
    with pytest.raises(ValueError, match="cannot read"):
        load_credentials(tmp_path / "missing.json")


def test_scheduler_runs_in_due_order_at_a_fixed_rate():
    now = [0.0]

    def sleep(stop: threading.Event, seconds: float) -> None:
        now[0] += seconds

    sched = Scheduler(now=lambda: now[0], wait=sleep)
    stop = threading.Event()
    log: list[tuple[float, str]] = []

    def record(name: str):
        def fn() -> None:
            log.append((now[0], name))
            now[0] += 0.25  # time passes while callables run
            if now[0] >= 3:
                stop.set()
        return fn

    sched.every(1.0, record("tick"))
    sched.call_later(1.5, record("once"))
    sched.run(stop)
    assert log[:4] == [(0.0, "tick"), (1.0, "tick"), (1.5, "once"), (2.0, "tick")]


def _bed(resident_id: int, site: str) -> DeviceCredentials:
    return DeviceCredentials(device_id=f"bed-{resident_id}", type="bed_sensor", site=site,
                             resident_id=resident_id, username=f"bed-{resident_id}",
                             password="x" * 16, topic_prefix=f"eldercare/v1/{site}/bed",
                             mqtt_host="127.0.0.1", mqtt_port=1)


def test_simulated_residents_live_on_their_sites_clock():
    """At 03:00 in Shanghai the demo's residents are asleep whatever the machine's zone."""
    shanghai, berlin = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")
    fleet = Fleet([_bed(1, "east"), _bed(2, "west"), _bed(3, "elsewhere")], "127.0.0.1", 1,
                  resident_tz=UTC, site_tz={"east": shanghai, "west": berlin})
    zones = {home.resident_id: home.beds[0].model.tz for home in fleet.homes}
    assert zones == {1: shanghai, 2: berlin, 3: UTC}


def test_site_zones_reads_every_sites_zone(clean_db):
    with db.connect(clean_db, autocommit=True) as conn:
        add_site(conn, "east", "East", "Asia/Shanghai")
        add_site(conn, "west", "West", "Europe/Berlin")
    assert site_zones(clean_db) == {"east": ZoneInfo("Asia/Shanghai"),
                                    "west": ZoneInfo("Europe/Berlin")}


def test_site_zones_is_empty_when_the_database_cannot_be_read(caplog):
    url = "postgresql://nobody:x@127.0.0.1:1/none?connect_timeout=1"
    assert site_zones(url) == {}
    assert "follow this machine's time zone" in caplog.text
