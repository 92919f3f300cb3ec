"""Device provisioning: a registry row and a live broker account, made together.

Devices belong to the gateway: their ids, topics and broker accounts are the device
contract's. Sites, residents and users are the shared kernel's (kernel.sites, kernel.accounts).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from gateway.broker_admin import BrokerAdmin
from gateway.schema import DeviceType, device_topic_prefix, is_valid_device_id
from kernel import audit
from kernel.accounts import RegistryError, hash_device_secret
from kernel.endpoint import MqttEndpoint
from kernel.i18n import N_, Said


@dataclass(frozen=True)
class DeviceCredentials:
    """What an installer needs to configure a device (the password is shown once)."""

    device_id: str
    type: str
    site: str
    resident_id: int
    username: str
    password: str
    topic_prefix: str
    mqtt_host: str
    mqtt_port: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return asdict(self)


def new_device_id(device_type: DeviceType) -> str:
    """A fresh random device id with a readable prefix."""
    prefix = "bed" if device_type is DeviceType.BED_SENSOR else "btn"
    return f"{prefix}-{secrets.token_hex(5)}"


def add_device(conn: psycopg.Connection[Any], admin: BrokerAdmin, broker: MqttEndpoint,
               resident_id: int, device_type: DeviceType, device_id: str | None = None,
               *, actor: audit.Actor | None = None) -> DeviceCredentials:
    """Register a device for a resident and create its broker account, live; with `actor`,
    its audit record is written in the same transaction (stored only if the device is)."""
    row = conn.execute("SELECT site_id FROM residents WHERE id = %s AND active",
                       (resident_id,)).fetchone()
    if row is None:
        raise RegistryError(Said(N_("no active resident with id {id}"), id=resident_id))
    site = str(row[0])
    device_id = device_id or new_device_id(device_type)
    if not is_valid_device_id(device_id):
        raise RegistryError(Said(N_("device id {device!r} must be 1-64 of A-Z, a-z, "
                                        "0-9, '_', '-'"),
                                     device=device_id))
    password = secrets.token_urlsafe(18)
    with conn.transaction():
        try:
            conn.execute(
                "INSERT INTO devices (id, site_id, resident_id, type, credentials_hash) "
                "VALUES (%s, %s, %s, %s, %s)",
                (device_id, site, resident_id, device_type.value, hash_device_secret(password)),
            )
        except psycopg.errors.UniqueViolation:
            raise RegistryError(Said(N_("device {device!r} is already registered"),
                                     device=device_id)) from None
        if actor is not None:
            audit.append(conn, audit.Event(
                datetime.now(UTC), actor, audit.Action.DEVICE_PROVISION, audit.Outcome.OK,
                audit.Target("device", device_id, resident_id),
                {"type": device_type.value, "site": site}))
        # Create the broker account inside the transaction: if it fails, nothing is stored.
        admin.add_device(device_id, site, password)
    return DeviceCredentials(device_id, device_type.value, site, resident_id, device_id,
                             password, device_topic_prefix(site, device_id), broker.host,
                             broker.port)


