"""Provision many simulated homes (sites, residents, devices, broker accounts) in bulk.

`eldercare.add_device` creates one broker account per call (two round trips);
for thousands of devices this module inserts the device rows the same way and creates the
broker accounts with `BrokerAdmin.add_devices` in a few round trips, in one transaction.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from gateway.broker_admin import BrokerAdmin
from gateway.provisioning import DeviceCredentials, new_device_id
from gateway.schema import DeviceType, device_topic_prefix
from kernel import accounts
from kernel.endpoint import MqttEndpoint
from kernel.sites import add_resident, add_site

logger = logging.getLogger(__name__)

# ~800 bytes of dynamic-security commands per device; the broker's max_packet_size is 64 KiB
# (BrokerAdmin.add_devices' default chunk of 100 exceeds it and the broker never answers).
ACCOUNT_CHUNK = 50


def provision_homes(conn: psycopg.Connection[Any], admin: BrokerAdmin, broker: MqttEndpoint,
                    homes: int, *, site_prefix: str = "sim", homes_per_site: int = 500,
                    buttons: bool = True, timezone: str = "UTC") -> list[DeviceCredentials]:
    """Create `homes` residents, each with a bed sensor (and a call button); commit; return
    the devices' credentials. Sites are `{site_prefix}-1`, `-2`, ... of `homes_per_site`."""
    if homes < 1 or homes_per_site < 1:
        raise ValueError("homes and homes_per_site must be positive")
    types = [DeviceType.BED_SENSOR, *([DeviceType.CALL_BUTTON] if buttons else [])]
    creds: list[DeviceCredentials] = []
    rows: list[tuple[str, str, int, str, str]] = []
    with conn.transaction():
        for i in range(homes):
            site = f"{site_prefix}-{i // homes_per_site + 1}"
            if i % homes_per_site == 0:
                add_site(conn, site, f"Simulated {site}", timezone)
            rid = add_resident(conn, site, f"Simulated resident {i + 1}")
            for typ in types:
                device_id = new_device_id(typ)
                password = secrets.token_urlsafe(18)
                rows.append((device_id, site, rid, typ.value,
                             accounts.hash_device_secret(password)))
                creds.append(DeviceCredentials(
                    device_id, typ.value, site, rid, device_id, password,
                    device_topic_prefix(site, device_id), broker.host, broker.port))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (id, site_id, resident_id, type, "
                            "credentials_hash) VALUES (%s, %s, %s, %s, %s)", rows)
        # Broker accounts inside the transaction: if they fail, nothing is stored.
        admin.add_devices([(c.device_id, c.site, c.password) for c in creds],
                          chunk=ACCOUNT_CHUNK)
    logger.info("provisioned %d homes (%d devices) in %d site(s)", homes, len(creds),
                (homes - 1) // homes_per_site + 1)
    return creds


def write_credentials(creds: Sequence[DeviceCredentials], path: Path) -> Path:
    """Write device credentials as a JSON list (owner-only), as `load_credentials` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([c.as_dict() for c in creds], indent=1))
    path.chmod(0o600)
    return path
