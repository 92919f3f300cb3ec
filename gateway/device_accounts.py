"""Device broker accounts in Mosquitto's password_file and acl_file, generated from the registry.

Why files and not the dynamic-security plugin (docs/decisions/0006): the plugin's cost per
account command grows with the number of accounts (4,000 devices took 153 s), so 20,000
devices cannot be provisioned in a minute. Mosquitto reads a password file and an ACL file
of 20,000 devices in well under a second on SIGHUP, and on that reload it re-checks every
connected client, so a revoked device's live session is cut at once.

The database is the only source of truth: `sync()` renders both files from the active
devices (their `broker_hash`) under an advisory lock, swaps them in atomically and asks the
broker to reload. Rendering is pure (`render_password_file`, `render_acl_file`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from gateway.schema import Channel, topic_for

logger = logging.getLogger(__name__)

PASSWORD_FILE = "devices.passwd"  # noqa: S105 (a file name)
ACL_FILE = "devices.acl"
PID_FILE = "mosquitto.pid"
# Mosquitto 2.0's own default for `$7$` hashes (mosquitto_passwd): PBKDF2-SHA512, 101 rounds.
# Device secrets are 144 random bits, so the rounds are not what protects them.
PBKDF2_ROUNDS = 101
_SYNC_LOCK = 0x0E1DE2CA  # pg advisory lock key: one renderer at a time


class DeviceAccountsError(RuntimeError):
    """The broker's account files could not be written or the broker not reloaded."""


@dataclass(frozen=True)
class DeviceAccount:
    """One device's broker account: username = device id, topics under its site."""

    device_id: str
    site: str
    broker_hash: str


def broker_hash(password: str, salt: bytes | None = None) -> str:
    """Mosquitto's `$7$` password-file hash (PBKDF2-SHA512), as `mosquitto_passwd` writes."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ROUNDS)
    return (f"$7${PBKDF2_ROUNDS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def render_password_file(accounts: Iterable[DeviceAccount]) -> str:
    """`username:hash` lines."""
    return "".join(f"{a.device_id}:{a.broker_hash}\n" for a in accounts)


def render_acl_file(accounts: Iterable[DeviceAccount]) -> str:
    """One `user` block per device with literal topics of its own site and id: publish its
    telemetry, events and status; read (subscribe to and receive) its own commands only.
    Literal topics bound to the username (not `%c` patterns), so a device presenting another
    device's client id gains no topic of that device."""
    out: list[str] = []
    for a in accounts:
        out.append(f"user {a.device_id}\n")
        for ch in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS):
            out.append(f"topic write {topic_for(a.site, a.device_id, ch)}\n")
        out.append(f"topic read {topic_for(a.site, a.device_id, Channel.CMD)}\n\n")
    return "".join(out)


def ensure_files(directory: Path) -> None:
    """Create empty account files if missing (the broker refuses to start without them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in (PASSWORD_FILE, ACL_FILE):
        path = directory / name
        if not path.exists():
            path.write_text("")
            path.chmod(0o644)


class DeviceAccounts:
    """The broker's device account files in `directory` and the broker to reload."""

    def __init__(self, directory: Path, pid_file: Path | None = None) -> None:
        self.directory = directory
        self.pid_file = pid_file or directory / PID_FILE

    def sync(self, conn: psycopg.Connection[Any]) -> int:
        """Render the files from the committed active devices, swap them in and reload the
        broker. Returns the number of accounts. Call after the transaction that changed the
        devices has committed (a rolled-back change then never reaches the broker)."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SYNC_LOCK,))
            rows = conn.execute(
                "SELECT id, site_id, broker_hash FROM devices "
                "WHERE active AND broker_hash IS NOT NULL ORDER BY id").fetchall()
            accounts = [DeviceAccount(str(r[0]), str(r[1]), str(r[2])) for r in rows]
            self._write(PASSWORD_FILE, render_password_file(accounts))
            self._write(ACL_FILE, render_acl_file(accounts))
            self.reload()
        logger.info("broker device accounts: %d written to %s", len(accounts), self.directory)
        return len(accounts)

    def _write(self, name: str, text: str) -> None:
        """Atomic replace: the broker never reads a half-written file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o644)  # the broker may run as its own user
        os.replace(tmp, self.directory / name)

    def reload(self) -> None:
        """SIGHUP the broker (its pid file): it re-reads both files and re-checks every
        connected client, disconnecting those no longer allowed."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise DeviceAccountsError(
                f"could not reload the broker (pid file {self.pid_file}): {exc}") from exc
