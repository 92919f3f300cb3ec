"""The pipeline starts while PostgreSQL is down: it works from its cached registry, alarms
from known devices reach the bus at once, and everything is stored when the database returns.
Messages of a device the cache does not know wait (unacknowledged) instead of being rejected."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from eldercare.embedded import start_postgres
from eldercare.pipeline import Pipeline
from gateway.registry import Registry
from gateway.schema import Channel, EventType
from tests.support.bus import BusListener, count_alerts, event_payload
from tests.support.database import count
from tests.support.devices import RawDevice
from tests.support.homes import seed_home
from tests.support.services import Broker
from tests.support.wait import wait_until


def test_pipeline_starts_with_the_database_down_and_alarms_flow(
        own_pg: tuple[Any, list[Any]], broker: Broker) -> None:
    cfg, procs = own_pg
    cache = Path(tempfile.mkdtemp(prefix="eldercare-pipe-cache-")) / "registry.json"
    known = seed_home(cfg.url, broker.admin)
    warm = Registry(cfg.url, cache_path=cache)
    warm.load()  # what an earlier run of the pipeline left in the data folder
    warm.stop()
    newer = seed_home(cfg.url, broker.admin, name="Not yet cached")
    procs[0].stop()
    bus = BusListener(broker)
    pipe = Pipeline(broker.pipeline, cfg.url, sites=[], name=f"dbdown{time.time_ns()}",
                    batch_ms=50, registry_cache=cache)
    pipe.start()  # before: registry.load() raised and `eldercare pipeline` exited 1
    known_button = RawDevice(known.button, broker.port)
    newer_button = RawDevice(newer.button, broker.port)
    try:
        assert pipe.registry.from_cache
        wait_until(lambda: pipe.connected.is_set() and known_button.connected.is_set()
                   and newer_button.connected.is_set(), what="pipeline and buttons connected")
        known_button.publish(Channel.EVENT, event_payload(EventType.SOS, 1))
        newer_button.publish(Channel.EVENT, event_payload(EventType.SOS, 1))
        wait_until(lambda: any(e.type == "sos" and e.resident_id == known.resident_id
                               for e in bus.events), timeout=30,
                   what="the known device's SOS announced on the bus")
        wait_until(lambda: pipe.parked == 1, what="the unknown device's SOS held")
        procs[0] = start_postgres(cfg)
        wait_until(lambda: count_alerts(cfg.url, "type = 'sos'") == 2, timeout=60,
                   what="both SOS alerts stored once the database is back")
        assert count(cfg.url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        known_button.close()
        newer_button.close()
        pipe.stop()
        bus.close()


def test_a_held_devices_later_messages_wait_behind_its_held_ones(
        own_pg: tuple[Any, list[Any]], broker: Broker) -> None:
    """An SOS held (its device not in the cache) and then its cancel: the cancel waits behind
    it, so the SOS is not opened after the resident cancelled it."""
    cfg, procs = own_pg
    cache = Path(tempfile.mkdtemp(prefix="eldercare-pipe-cache-")) / "registry.json"
    home = seed_home(cfg.url, broker.admin, name="Not cached")
    procs[0].stop()
    pipe = Pipeline(broker.pipeline, cfg.url, sites=[], name=f"held{time.time_ns()}",
                    batch_ms=50, registry_cache=cache)
    pipe.start()
    button = RawDevice(home.button, broker.port)
    now_ms = int(time.time() * 1000)
    try:
        wait_until(lambda: pipe.connected.is_set() and button.connected.is_set(),
                   what="pipeline and button connected")
        button.publish(Channel.EVENT, event_payload(EventType.SOS, 1, now_ms))
        wait_until(lambda: pipe.parked == 1, what="the SOS held")
        button.publish(Channel.EVENT, event_payload(EventType.SOS_CANCEL, 2, now_ms + 5_000))
        wait_until(lambda: pipe.parked == 2, what="the cancel held behind it")
        procs[0] = start_postgres(cfg)
        wait_until(lambda: count_alerts(cfg.url, "type = 'sos' AND status = 'cancelled'") == 1,
                   timeout=60, what="the SOS stored, then cancelled")
        assert count_alerts(cfg.url, "type = 'sos' AND status <> 'cancelled'") == 0
    finally:
        button.close()
        pipe.stop()
