"""Test helpers: waiting on conditions and seeding a small registry."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from eldercare.pipeline import Pipeline
from gateway import provisioning
from gateway.broker_admin import BrokerAdmin
from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType
from kernel import db, sites
from kernel.endpoint import MqttEndpoint

T = TypeVar("T")


def wait_until(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> T:
    """Poll `fn` until it returns a truthy value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class Home:
    """A seeded resident with a bed sensor and a call button."""

    resident_id: int
    site: str
    bed: DeviceCredentials
    button: DeviceCredentials


def seed_home(database_url: str, admin: MqttEndpoint, site: str = "north",
              name: str = "Test Resident") -> Home:
    """Create a site (if needed), a resident and both devices with broker accounts."""
    with db.connect(database_url) as conn, BrokerAdmin(admin) as ba:
        sites.add_site(conn, site, site.title())
        rid = sites.add_resident(conn, site, name)
        conn.commit()
        bed = provisioning.add_device(conn, ba, admin, rid, DeviceType.BED_SENSOR)
        button = provisioning.add_device(conn, ba, admin, rid, DeviceType.CALL_BUTTON)
    return Home(rid, site, bed, button)


def count(database_url: str, sql: str, *params: object) -> int:
    """Run a COUNT query."""
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(str(row[0])) if row else 0


@contextmanager
def running_pipeline(endpoint: MqttEndpoint, database_url: str, sites: Sequence[str] = (),
                     prefix: str = "t") -> Iterator[Pipeline]:
    """A connected pipeline with a fresh persistent session and short batches; stopped after."""
    pipe = Pipeline(endpoint, database_url, sites=list(sites), name=f"{prefix}{time.time_ns()}",
                    batch_ms=50)
    pipe.start()
    try:
        wait_until(pipe.connected.is_set, what="pipeline connected")
        yield pipe
    finally:
        pipe.stop()
