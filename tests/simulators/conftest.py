"""Fixtures for simulator tests: a raw subscriber on the pipeline account, seeded homes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, topic_for
from simulators.devices import DeviceSim
from tests.conftest import Broker
from tests.helpers import Home, seed_home, wait_until
from tests.simulators.tap import Tap

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


def forget_device(creds: DeviceCredentials, port: int) -> None:
    """Remove a device's retained status and persistent session from the session broker.

    Otherwise a pipeline started by a later test (on an emptied database) receives the
    retained status of a device it does not know and dead-letters it.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.device_id,
                         clean_session=True)
    client.username_pw_set(creds.username, creds.password)
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        info = client.publish(topic_for(creds.site, creds.device_id, Channel.STATUS), b"",
                              qos=1, retain=True)
        info.wait_for_publish(5)
    except (OSError, RuntimeError, ValueError):
        pass
    finally:
        client.disconnect()
        client.loop_stop()


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
