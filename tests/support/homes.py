"""Seeded homes: one resident with a bed sensor and a call button, the unit most tests need.

One `Home` shape for both builders: `seed_home` provisions real devices (broker accounts,
so `bed`/`button` are their credentials), `add_home` registers bare device rows (no broker:
`bed`/`button` are the device ids) for tests of the alert store and its consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway import provisioning
from gateway.broker_admin import BrokerAdmin
from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType
from kernel import db, sites
from kernel.endpoint import MqttEndpoint

D = TypeVar("D", DeviceCredentials, str)

BUTTON = "btn-1"  # device ids of add_home (with its suffix)
BED = "bed-1"


@dataclass(frozen=True)
class Home(Generic[D]):
    """A seeded resident with a bed sensor and a call button (credentials or ids)."""

    resident_id: int
    site: str
    bed: D
    button: D


def seed_home(database_url: str, admin: MqttEndpoint, site: str = "north",
              name: str = "Test Resident") -> Home[DeviceCredentials]:
    """Create a site (if needed), a resident and both devices with broker accounts."""
    with db.connect(database_url) as conn, BrokerAdmin(admin) as ba:
        sites.add_site(conn, site, site.title())
        rid = sites.add_resident(conn, site, name)
        conn.commit()
        bed = provisioning.add_device(conn, ba, admin, rid, DeviceType.BED_SENSOR)
        button = provisioning.add_device(conn, ba, admin, rid, DeviceType.CALL_BUTTON)
    return Home(rid, site, bed, button)


def add_home(url: str, site: str = "north", name: str = "Agnes", suffix: str = "") -> Home[str]:
    """A site (if needed), a resident and two registered devices (no broker accounts)."""
    with db.connect(url) as conn:
        sites.add_site(conn, site, site.title())
        rid = sites.add_resident(conn, site, name)
        button, bed = f"{BUTTON}{suffix}", f"{BED}{suffix}"
        for dev, kind in ((button, "call_button"), (bed, "bed_sensor")):
            conn.execute("INSERT INTO devices (id, site_id, resident_id, type, credentials_hash)"
                         " VALUES (%s, %s, %s, %s, 'x')", (dev, site, rid, kind))
    return Home(rid, site, bed, button)
