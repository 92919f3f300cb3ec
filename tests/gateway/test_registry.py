"""The registry's cache file: a pipeline starts, and known devices work, with the database
down; unknown devices wait; the registry reloads when the database returns."""

from __future__ import annotations

import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from eldercare.embedded import start_postgres
from gateway.registry import Registry, RegistryUnavailable, read_cache, write_cache
from gateway.schema import DeviceType
from tests.support.homes import seed_home
from tests.support.services import Broker
from tests.support.wait import wait_until


def test_cache_round_trip_and_an_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    write_cache(path, [["bed-1", "north", 7, "bed_sensor"]])
    info = read_cache(path)["bed-1"]
    assert (info.site, info.resident_id, info.type) == ("north", 7, DeviceType.BED_SENSOR)
    path.write_text("{not json")
    assert read_cache(path) == {}
    assert read_cache(tmp_path / "missing.json") == {}


def test_registry_without_cache_still_fails_fast_when_the_database_is_down(
        own_pg: tuple[Any, list[Any]]) -> None:
    cfg, procs = own_pg
    procs[0].stop()
    try:
        import psycopg

        with pytest.raises(psycopg.OperationalError):
            Registry(cfg.url).load()
    finally:
        procs[0] = start_postgres(cfg)


def test_registry_starts_from_its_cache_while_the_database_is_down(
        own_pg: tuple[Any, list[Any]], broker: Broker) -> None:
    cfg, procs = own_pg
    cache = Path(tempfile.mkdtemp(prefix="eldercare-registry-")) / "registry.json"
    known = seed_home(cfg.url, broker.admin)
    first = Registry(cfg.url, cache_path=cache)
    assert first.load() == 2 and cache.exists()
    first.stop()
    later = seed_home(cfg.url, broker.admin, name="Added later")  # not in the cache file
    procs[0].stop()
    loads: list[int] = []
    reg = Registry(cfg.url, cache_path=cache, on_load=lambda: loads.append(1))
    try:
        assert reg.load() == 2 and reg.from_cache
        info = reg.lookup(known.button.device_id)
        assert info is not None and info.resident_id == known.resident_id
        with pytest.raises(RegistryUnavailable):
            reg.lookup(later.button.device_id)
        reg.start_listener()
        procs[0] = start_postgres(cfg)
        wait_until(lambda: not reg.from_cache and loads, timeout=60,
                   what="registry reloaded from the database")
        back = reg.lookup(later.button.device_id)
        assert back is not None and back.resident_id == later.resident_id
        assert later.button.device_id in read_cache(cache)  # the file follows the database
    finally:
        reg.stop()


def test_a_hung_database_does_not_hold_the_registry_start(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A server that accepts the TCP connection and never answers (PostgreSQL stopped with
    SIGSTOP) must not keep a restarted pipeline from starting on its cached registry."""
    monkeypatch.setattr("kernel.db.CONNECT_TIMEOUT_S", 1)
    cache = tmp_path / "registry.json"
    write_cache(cache, [["bed-1", "north", 7, "bed_sensor"]])
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        registry = Registry(f"postgresql://u:p@127.0.0.1:{port}/db", cache_path=cache)
        done: list[int] = []
        thread = threading.Thread(target=lambda: done.append(registry.load()), daemon=True)
        thread.start()
        wait_until(lambda: bool(done), timeout=30, what="the registry start giving up")
    assert done == [1] and registry.from_cache
