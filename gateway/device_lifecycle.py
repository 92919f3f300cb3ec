"""A device's life: provisioned for a resident, moved to another, revoked; each step recorded.

Each change runs in `broker_change`: inside its transaction, once the rows are written,
`DeviceAccounts.sync` regenerates the broker's account files from them and reloads the
broker; if the transaction then fails, the files are regenerated again from what is
committed. The broker never keeps an account the registry lacks, and a broker that cannot
be reloaded makes the change fail whole (the registry is the only source of truth;
record 0006).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from gateway.broker_admin import BrokerAdmin, BrokerAdminError
from gateway.device_accounts import (
    RESERVED_PREFIX,
    DeviceAccounts,
    DeviceAccountsError,
    broker_hash,
)
from gateway.provisioning import DeviceCredentials, new_device_id
from gateway.schema import DeviceType, EventType, device_topic_prefix, is_valid_device_id
from kernel import audit
from kernel.accounts import RegistryError, hash_device_secret
from kernel.endpoint import MqttEndpoint
from kernel.i18n import N_, Said

logger = logging.getLogger(__name__)


@contextmanager
def broker_change(conn: psycopg.Connection[Any], accounts: DeviceAccounts) -> Iterator[None]:
    """One transaction for the rows written in the block and the broker accounts made from
    them. The advisory lock taken by the sync is held until the commit, so no other sync can
    render the files from a state without these rows in between."""
    synced = False
    try:
        with conn.transaction():
            yield
            accounts.sync(conn)
            synced = True
    except BaseException:
        if synced:  # the commit itself failed: take the accounts out again
            try:
                accounts.sync(conn)
            except DeviceAccountsError:
                logger.exception("could not remove the accounts of a failed change")
        raise


@dataclass(frozen=True)
class NewDevice:
    """A device to create: for which resident, what type, optionally a chosen id."""

    resident_id: int
    site: str
    type: DeviceType
    device_id: str | None = None


def insert_devices(conn: psycopg.Connection[Any], broker: MqttEndpoint,
                   devices: Sequence[NewDevice], actor: str | None) -> list[DeviceCredentials]:
    """Insert device rows (with both hashes) and their `provision` history in the caller's
    transaction; return the credentials (the secrets exist only in this return value)."""
    creds: list[DeviceCredentials] = []
    rows: list[tuple[str, str, int, str, str, str]] = []
    for d in devices:
        device_id = d.device_id or new_device_id(d.type)
        if device_id.startswith(RESERVED_PREFIX):
            raise RegistryError(Said(N_("device ids must not start with {prefix!r}"),
                                     prefix=RESERVED_PREFIX))
        if not is_valid_device_id(device_id):
            raise RegistryError(Said(N_("device id {device!r} must be 1-64 of A-Z, a-z, "
                                        "0-9, '_', '-'"),
                                     device=device_id))
        password = secrets.token_urlsafe(18)
        rows.append((device_id, d.site, d.resident_id, d.type.value,
                     hash_device_secret(password), broker_hash(password)))
        creds.append(DeviceCredentials(device_id, d.type.value, d.site, d.resident_id,
                                       device_id, password, device_topic_prefix(d.site, device_id),
                                       broker.host, broker.port))
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO devices (id, site_id, resident_id, type, credentials_hash, "
                "broker_hash) VALUES (%s, %s, %s, %s, %s, %s)", rows)
            cur.executemany(
                "INSERT INTO device_history (device_id, action, site_id, resident_id, actor) "
                "VALUES (%s, 'provision', %s, %s, %s)",
                [(r[0], r[1], r[2], actor) for r in rows])
    except psycopg.errors.UniqueViolation:
        raise RegistryError(N_("a device with that id is already registered")) from None
    return creds


def provision(conn: psycopg.Connection[Any], accounts: DeviceAccounts, broker: MqttEndpoint,
              resident_id: int, device_type: DeviceType, actor: str | None = None,
              device_id: str | None = None) -> DeviceCredentials:
    """Provision one device for an active resident; its broker account works on return."""
    with broker_change(conn, accounts):
        row = conn.execute("SELECT site_id FROM residents WHERE id = %s AND active",
                           (resident_id,)).fetchone()
        if row is None:
            raise RegistryError(Said(N_("no active resident with id {id}"), id=resident_id))
        [cred] = insert_devices(conn, broker, [NewDevice(resident_id, str(row[0]), device_type,
                                                         device_id)], actor)
    return cred


def _active_device(conn: psycopg.Connection[Any], device_id: str) -> tuple[str, int]:
    row = conn.execute("SELECT site_id, resident_id FROM devices WHERE id = %s AND active "
                       "FOR UPDATE", (device_id,)).fetchone()
    if row is None:
        raise RegistryError(Said(N_("no active device {device!r}"), device=device_id))
    return str(row[0]), int(row[1])


def revoke(conn: psycopg.Connection[Any], accounts: DeviceAccounts, device_id: str,
           actor: str | None = None, admin: BrokerAdmin | None = None) -> tuple[str, int]:
    """Deactivate a device and cut its broker account; a live session ends at once (the
    broker re-checks connected clients on reload). Devices whose account is in the
    dynamic-security plugin (provisioned before record 0006) are removed there too.
    Returns the site and resident the device had (for the audit record)."""
    with broker_change(conn, accounts):
        site, resident = _active_device(conn, device_id)
        conn.execute("UPDATE devices SET active = false, online = false WHERE id = %s",
                     (device_id,))
        conn.execute("INSERT INTO device_history (device_id, action, site_id, resident_id, "
                     "actor) VALUES (%s, 'revoke', %s, %s, %s)", (device_id, site, resident, actor))
    if admin is not None:
        try:
            admin.remove_device(device_id)
        except BrokerAdminError:
            logger.exception("device %s: dynamic-security removal failed", device_id)
            raise
    return site, resident


def move(conn: psycopg.Connection[Any], accounts: DeviceAccounts, device_id: str,
         resident_id: int, actor: str | None = None) -> tuple[str, str]:
    """Give a device to another active resident; return (old site, new site).

    Topics carry the site: moving to another site changes the device's topic prefix, so the
    broker ACL is regenerated for the new site (the old topics are refused from the reload on)
    and the installer must set the new prefix on the device; credentials stay the same. The
    pipelines' registry caches follow through the `devices` NOTIFY trigger."""
    with broker_change(conn, accounts):
        old_site, old_resident = _active_device(conn, device_id)
        row = conn.execute("SELECT site_id FROM residents WHERE id = %s AND active",
                           (resident_id,)).fetchone()
        if row is None:
            raise RegistryError(Said(N_("no active resident with id {id}"), id=resident_id))
        new_site = str(row[0])
        conn.execute("UPDATE devices SET resident_id = %s, site_id = %s WHERE id = %s",
                     (resident_id, new_site, device_id))
        conn.execute(
            "INSERT INTO device_history (device_id, action, site_id, resident_id, from_site_id, "
            "from_resident_id, actor) VALUES (%s, 'move', %s, %s, %s, %s, %s)",
            (device_id, new_site, resident_id, old_site, old_resident, actor))
    return old_site, new_site


# --- what the audit trail says (the web app's and the CLI's recorders add actor and outcome)


def provision_entry(cred: DeviceCredentials, **extra: Any) -> audit.Entry:
    """The record of one provisioned device: the device is the target, its resident named."""
    return audit.Entry(audit.Action.DEVICE_PROVISION,
                       audit.Target("device", cred.device_id, cred.resident_id),
                       {"type": cred.type, "site": cred.site, "resident": cred.resident_id,
                        **extra})


def revoke_entry(device_id: str, site: str, resident_id: int) -> audit.Entry:
    """The record of a revoked device (what `revoke` returned)."""
    return audit.Entry(audit.Action.DEVICE_REVOKE,
                       audit.Target("device", device_id, resident_id),
                       {"site": site, "resident": resident_id})


def move_entry(device_id: str, resident_id: int, old_site: str, new_site: str
               ) -> audit.Entry:
    """The record of a device given to resident `resident_id` (what `move` returned)."""
    return audit.Entry(audit.Action.DEVICE_UPDATE,
                       audit.Target("device", device_id, resident_id),
                       {"resident": resident_id, "before": {"site": old_site},
                        "after": {"site": new_site, "resident": resident_id}})


_LIST = """
SELECT d.id, d.type, d.site_id, d.resident_id, r.full_name, d.active, d.online, d.battery,
       d.last_seen
FROM devices d JOIN residents r ON r.id = d.resident_id
WHERE (%(id)s::text IS NULL OR d.id = %(id)s)
  AND (%(site)s::text IS NULL OR d.site_id = %(site)s)
  AND (%(type)s::text IS NULL OR d.type = %(type)s)
  AND (%(online)s::boolean IS NULL OR coalesce(d.online, false) = %(online)s)
  AND (d.active OR %(inactive)s)
ORDER BY d.site_id, r.full_name, d.type, d.id
LIMIT 5000
"""
_LIST_KEYS = ("id", "type", "site_id", "resident_id", "resident_name", "active", "online",
              "battery", "last_seen")


def list_devices(conn: psycopg.Connection[Any], *, site: str | None = None,
                 device_type: DeviceType | None = None, online: bool | None = None,
                 include_revoked: bool = False, device_id: str | None = None
                 ) -> list[dict[str, Any]]:
    """Devices with their resident's name, filtered (the API and the CLI list the same)."""
    rows = conn.execute(_LIST, {"id": device_id, "site": site,
                                "type": device_type.value if device_type else None,
                                "online": online, "inactive": include_revoked}).fetchall()
    return [dict(zip(_LIST_KEYS, r, strict=True)) for r in rows]


def device_detail(conn: psycopg.Connection[Any], device_id: str, limit: int = 50
                  ) -> dict[str, Any] | None:
    """A device with its health history: status reports (online, battery), the last test
    press, and its provision/move/revoke events, newest first."""
    found = list_devices(conn, device_id=device_id, include_revoked=True)
    if not found:
        return None
    detail = found[0]
    row = conn.execute("SELECT d.firmware, s.timezone FROM devices d JOIN sites s "
                       "ON s.id = d.site_id WHERE d.id = %s", (device_id,)).fetchone()
    detail["firmware"] = row[0] if row else None
    detail["site_timezone"] = str(row[1]) if row else "UTC"  # pages show times in it
    row = conn.execute("SELECT max(time) FROM device_events WHERE device_id = %s "
                       "AND type = %s", (device_id, EventType.TEST.value)).fetchone()
    detail["last_test_press"] = row[0] if row else None
    keys = ("time", "action", "site_id", "resident_id", "from_site_id", "from_resident_id",
            "actor")
    detail["history"] = [dict(zip(keys, h, strict=True)) for h in conn.execute(
        "SELECT time, action, site_id, resident_id, from_site_id, from_resident_id, actor "
        "FROM device_history WHERE device_id = %s ORDER BY time DESC, id DESC LIMIT %s",
        (device_id, limit)).fetchall()]
    detail["status"] = [{"time": t, "online": o, "battery": b} for t, o, b in conn.execute(
        "SELECT time, online, battery FROM device_status WHERE device_id = %s "
        "ORDER BY time DESC LIMIT %s", (device_id, limit)).fetchall()]
    return detail
