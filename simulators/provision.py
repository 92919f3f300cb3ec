"""Provision many simulated homes (sites, residents, devices, broker accounts) in bulk.

Through the one provisioning path of every device (record 0006): the device rows and their
history are inserted with `gateway.device_lifecycle.insert_devices` and their broker
accounts rendered into the broker's password/ACL files by `broker_change`, all in one
transaction (if the broker cannot be reloaded, nothing is stored). Before, this used the
dynamic-security plugin, whose cost per account grows with the number of accounts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from gateway.device_accounts import DeviceAccounts
from gateway.device_lifecycle import NewDevice, broker_change, insert_devices
from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType
from kernel.endpoint import MqttEndpoint
from kernel.sites import add_resident, add_site

logger = logging.getLogger(__name__)


def provision_homes(conn: psycopg.Connection[Any], accounts: DeviceAccounts,
                    broker: MqttEndpoint, homes: int, *, site_prefix: str = "sim",
                    homes_per_site: int = 500, buttons: bool = True, timezone: str = "UTC"
                    ) -> list[DeviceCredentials]:
    """Create `homes` residents, each with a bed sensor (and a call button); commit; return
    the devices' credentials. Sites are `{site_prefix}-1`, `-2`, ... of `homes_per_site`."""
    if homes < 1 or homes_per_site < 1:
        raise ValueError("homes and homes_per_site must be positive")
    types = [DeviceType.BED_SENSOR, *([DeviceType.CALL_BUTTON] if buttons else [])]
    new: list[NewDevice] = []
    with broker_change(conn, accounts):
        for i in range(homes):
            site = f"{site_prefix}-{i // homes_per_site + 1}"
            if i % homes_per_site == 0:
                add_site(conn, site, f"Simulated {site}", timezone)
            rid = add_resident(conn, site, f"Simulated resident {i + 1}")
            new += [NewDevice(rid, site, typ) for typ in types]
        creds = insert_devices(conn, broker, new, "simulator")
    logger.info("provisioned %d homes (%d devices) in %d site(s)", homes, len(creds),
                (homes - 1) // homes_per_site + 1)
    return creds


def write_credentials(creds: Sequence[DeviceCredentials], path: Path) -> Path:
    """Write device credentials as a JSON list (owner-only), as `load_credentials` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([c.as_dict() for c in creds], indent=1))
    path.chmod(0o600)
    return path
