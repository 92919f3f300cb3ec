"""Fixtures for simulator tests: a raw subscriber on the pipeline account, seeded homes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from gateway.provisioning import DeviceCredentials
from simulators.devices import DeviceSim
from tests.simulators.tap import Tap
from tests.support.devices import forget_device
from tests.support.homes import Home, seed_home
from tests.support.services import Broker
from tests.support.wait import wait_until

S = TypeVar("S", bound=DeviceSim)


@pytest.fixture
def tap(broker: Broker) -> Iterator[Tap]:
    """A subscriber that sees every device message from now on."""
    t = Tap(broker.pipeline)
    wait_until(lambda: t.subscribed.is_set() or t.refused.is_set(), what="tap subscription")
    assert t.subscribed.is_set(), "the pipeline account may not subscribe to device topics"
    yield t
    t.close()


@pytest.fixture
def home(clean_db: str, broker: Broker) -> Home:
    """A resident with a bed sensor and a call button, with real broker accounts."""
    return seed_home(clean_db, broker.admin)


@pytest.fixture
def forget(broker: Broker) -> Iterator[Callable[[DeviceCredentials], None]]:
    """Register devices whose retained status is removed after the test."""
    devices: list[DeviceCredentials] = []
    yield devices.append
    for creds in devices:
        forget_device(creds, broker.port)


@pytest.fixture
def sims(forget: Callable[[DeviceCredentials], None]) -> Iterator[Callable[[S], S]]:
    """Register simulated devices to be shut down (and forgotten) after the test."""
    made: list[DeviceSim] = []

    def register(sim: S) -> S:
        made.append(sim)
        forget(sim.creds)
        return sim

    yield register
    for sim in made:
        sim.shutdown()
