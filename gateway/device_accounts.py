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
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from gateway.mqttclient import login_accepted
from gateway.schema import Channel, topic_for

logger = logging.getLogger(__name__)

PASSWORD_FILE = "devices.passwd"  # noqa: S105 (a file name)
ACL_FILE = "devices.acl"
PID_FILE = "mosquitto.pid"
# Mosquitto 2.0's own default for `$7$` hashes (mosquitto_passwd): PBKDF2-SHA512, 101 rounds.
# Device secrets are 144 random bits, so the rounds are not what protects them.
PBKDF2_ROUNDS = 101
_SYNC_LOCK = 0x0E1DE2CA  # pg advisory lock key: one renderer at a time
# A login written into every rendering with a fresh password: once it is accepted, the
# broker has loaded that rendering (SIGHUP only asks; the reload happens in its own loop).
RELOAD_CHECK_USER = "eldercare-reload-check"
RESERVED_PREFIX = "eldercare-"  # service and check logins; never a device id
RELOAD_TIMEOUT_S = 30.0


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


def render_password_file(accounts: Iterable[DeviceAccount], check_hash: str | None = None
                         ) -> str:
    """`username:hash` lines (and the reload check's login, if given)."""
    lines = [f"{a.device_id}:{a.broker_hash}\n" for a in accounts]
    if check_hash is not None:
        lines.append(f"{RELOAD_CHECK_USER}:{check_hash}\n")
    return "".join(lines)


def render_acl_file() -> str:
    """The ACL: patterns on the username (= device id), the same for every device, so the
    file's size does not grow with the fleet (Mosquitto 2.0 parses `user` blocks with a
    linear search per line: 20,000 blocks took 17 s per reload). A device publishes its own
    telemetry, events and status and reads its own commands; the site level is `+` here
    and checked by the gateway against the registry (gateway.py refuses a device's message
    on another site's topic), so a device can only ever speak as itself."""
    lines = [f"pattern write {topic_for('+', '%u', ch)}\n"
             for ch in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS)]
    lines.append(f"pattern read {topic_for('+', '%u', Channel.CMD)}\n")
    return "".join(lines)


def ensure_files(directory: Path) -> None:
    """Create empty account files if missing (the broker refuses to start without them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in ((PASSWORD_FILE, ""), (ACL_FILE, render_acl_file())):
        path = directory / name
        if not path.exists():
            path.write_text(text)
            path.chmod(0o644)


class DeviceAccounts:
    """The broker's device account files in `directory` and the broker to reload."""

    def __init__(self, directory: Path, broker: tuple[str, int] | None = None,
                 pid_file: Path | None = None) -> None:
        """`broker` (host, port): where to confirm each reload by logging in; None = only
        signal (the change reaches the broker a moment after `sync` returns)."""
        self.directory = directory
        self.broker = broker
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
            check = secrets.token_urlsafe(18)
            self._write(ACL_FILE, render_acl_file())
            self._write(PASSWORD_FILE, render_password_file(accounts, broker_hash(check)))
            self.reload()
            if self.broker is not None:
                wait_reloaded(self.broker, check)
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


def wait_reloaded(broker: tuple[str, int], password: str,
                  timeout: float = RELOAD_TIMEOUT_S) -> None:
    """Log in as the reload check until the broker accepts `password`: the rendering that
    holds it is loaded (and every connected client was re-checked against it)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if _login(broker, RELOAD_CHECK_USER, password):
            return
        if time.monotonic() > deadline:
            raise DeviceAccountsError(f"the broker at {broker[0]}:{broker[1]} did not load the "
                                      f"new device accounts within {timeout:.0f} s")
        time.sleep(delay)  # polling an external process: nothing to wait on
        delay = min(delay * 2, 0.2)


def _login(broker: tuple[str, int], username: str, password: str) -> bool:
    """One login as `username`; True if the broker accepted it (5 s for the connection and
    5 s for its answer; paho in this thread, so no client thread per check)."""
    return login_accepted(broker[0], broker[1], username, password,
                          client_id=f"{RELOAD_CHECK_USER}-{secrets.token_hex(4)}")
