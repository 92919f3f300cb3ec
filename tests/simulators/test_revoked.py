"""A device the broker refuses or cuts (revoked) stops being counted as connected, and the
simulator says so once, not at every retry (issue 13 trial)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from gateway import device_lifecycle
from gateway.device_accounts import DeviceAccounts
from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType
from kernel import db
from kernel.sites import add_resident, add_site
from simulators.fleet import Fleet
from tests.support.services import Broker
from tests.support.wait import wait_until


def test_a_revoked_device_is_no_longer_counted_and_logged_once(
        clean_db: str, broker: Broker, caplog: pytest.LogCaptureFixture,
        forget: Callable[[DeviceCredentials], None]) -> None:
    caplog.set_level(logging.DEBUG, logger="simulators")
    accounts = DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))
    with db.connect(clean_db) as conn:
        add_site(conn, "north", "North")
        rid = add_resident(conn, "north", "Dagny")
        conn.commit()
        creds = [device_lifecycle.provision(conn, accounts, broker.pipeline, rid, t)
                 for t in (DeviceType.BED_SENSOR, DeviceType.CALL_BUTTON)]
    for c in creds:
        forget(c)
    button = creds[1]
    fleet = Fleet(creds, "127.0.0.1", broker.port, telemetry_period_s=60.0,
                  sos_mean_interval_s=None)
    stop = threading.Event()
    try:
        assert fleet.start(20.0, stop) == 2
        assert (fleet.stats().connected, fleet.stats().refused) == (2, 0)
        with db.connect(clean_db) as conn:
            device_lifecycle.revoke(conn, accounts, button.device_id, "tester")
        sim = next(d for d in fleet.devices if d.device_id == button.device_id)
        wait_until(lambda: sim.refusals >= 2, timeout=30,
                   what="the revoked button cut and refused twice")
        stats = fleet.stats()
        assert (stats.connected, stats.refused) == (1, 1)
        assert "1/2 devices connected (1 refused by the broker)" in stats.summary()
    finally:
        fleet.close()
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING
                and button.device_id in r.getMessage() and "refuse" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert fleet.stats().connected == 1  # after the shutdown too: the final summary's count
