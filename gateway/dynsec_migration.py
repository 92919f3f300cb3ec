"""Move device accounts made before record 0006 out of the dynamic-security plugin.

Until migration 0012 every device had a dynamic-security client and role; since then device
accounts live in the broker's password/ACL files, rendered from `devices.broker_hash`
(gateway/device_accounts.py). Devices provisioned the old way have `broker_hash` NULL and
still log in through the plugin: they cannot be re-synced, a reload does not re-check them,
and each one slows every plugin command. This step converts them, idempotently:

1. Their plugin password hash becomes their `broker_hash`: the plugin keeps PBKDF2-SHA512
   with a salt and an iteration count, the same algorithm as the password file's `$7$`
   format, so the device's secret stays valid and nobody has to touch the device.
2. The files are re-rendered with them (`broker_change`: one transaction; the broker has
   loaded the files before the rows commit).
3. Their plugin client and role are deleted. Mosquitto asks the plugin first and the files
   for names it does not know, so from then on the files decide. Deleting a client ends its
   live session once; the device reconnects with the same secret.

Step 3 also runs for devices converted by an earlier run whose deletion failed, so running
it again finishes the job. `eldercare device migrate-accounts` runs it, and `eldercare
serve`/`demo` run it at every start (a no-op once done).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from gateway.broker_admin import DEVICE_ROLE_PREFIX, BrokerAdmin
from gateway.device_accounts import DeviceAccounts
from gateway.device_lifecycle import broker_change

logger = logging.getLogger(__name__)

DYNSEC_FILE = "dynamic-security.json"
COMMANDS_PER_MESSAGE = 40  # the broker's max_packet_size (64 KiB) bounds one control message


@dataclass
class MigrationResult:
    """What one run did."""

    converted: list[str] = field(default_factory=list)
    removed_from_plugin: list[str] = field(default_factory=list)
    without_account: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the CLI's JSON."""
        return {"converted": len(self.converted),
                "removed_from_plugin": len(self.removed_from_plugin),
                "without_account": self.without_account}


def plugin_hashes(config: dict[str, Any]) -> dict[str, str]:
    """username → the client's password as a password-file `$7$` hash, from the plugin's
    configuration (clients without a password are left out)."""
    out = {}
    for client in config.get("clients", []):
        username, password = client.get("username"), client.get("password")
        salt, rounds = client.get("salt"), client.get("iterations")
        if username and password and salt and rounds:
            out[str(username)] = f"$7${int(rounds)}${salt}${password}"
    return out


def read_plugin_config(path: Path) -> dict[str, Any] | None:
    """The plugin's configuration file (the broker writes it after every change); None if
    this process cannot see it (a broker on another machine)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def migrate_plugin_devices(conn: psycopg.Connection[Any], accounts: DeviceAccounts,
                           admin: BrokerAdmin, plugin_file: Path | None = None
                           ) -> MigrationResult:
    """Convert every device whose account is only in the plugin, then delete the plugin's
    device clients (see the module's docstring). Safe to run any number of times."""
    result = MigrationResult()
    config = read_plugin_config(plugin_file or accounts.directory / DYNSEC_FILE)
    legacy = [str(r[0]) for r in conn.execute(
        "SELECT id FROM devices WHERE active AND broker_hash IS NULL ORDER BY id").fetchall()]
    conn.commit()
    if config is None:
        if legacy:
            logger.warning("%d device(s) still have their broker account in the "
                           "dynamic-security plugin, whose file %s this process cannot read: "
                           "not migrated", len(legacy), plugin_file or accounts.directory)
        return result
    hashes = plugin_hashes(config)
    found = {d: hashes[d] for d in legacy if d in hashes}
    result.without_account = [d for d in legacy if d not in hashes]
    for device_id in result.without_account:
        logger.warning("device %s has no broker account (neither file nor plugin): revoke it "
                       "and provision it again", device_id)
    if found:
        with broker_change(conn, accounts), conn.cursor() as cur:
            cur.executemany("UPDATE devices SET broker_hash = %s WHERE id = %s "
                            "AND broker_hash IS NULL",
                            [(h, d) for d, h in found.items()])
        result.converted = sorted(found)
        logger.info("moved %d device account(s) from the dynamic-security plugin to the "
                    "password file", len(found))
    result.removed_from_plugin = _remove_from_plugin(conn, admin, hashes)
    return result


def _remove_from_plugin(conn: psycopg.Connection[Any], admin: BrokerAdmin,
                        hashes: dict[str, str]) -> list[str]:
    """Delete the plugin clients (and roles) of registered devices whose account is in the
    files now, or who were revoked: services (not devices) are never touched."""
    if not hashes:
        return []
    rows = conn.execute("SELECT id FROM devices WHERE id = ANY(%s) "
                        "AND (broker_hash IS NOT NULL OR NOT active) ORDER BY id",
                        (sorted(hashes),)).fetchall()
    conn.commit()
    devices = [str(r[0]) for r in rows]
    commands: list[dict[str, Any]] = []
    for device_id in devices:
        commands += [{"command": "deleteClient", "username": device_id},
                     {"command": "deleteRole", "rolename": DEVICE_ROLE_PREFIX + device_id}]
    for start in range(0, len(commands), COMMANDS_PER_MESSAGE):
        admin.run(commands[start:start + COMMANDS_PER_MESSAGE], ok_errors=("not found",))
    if devices:
        logger.info("removed %d device account(s) from the dynamic-security plugin",
                    len(devices))
    return devices
