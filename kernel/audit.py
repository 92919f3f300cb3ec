"""The audit trail: who read or changed what, when, from where, and with what result.

Health data is sensitive personal information (PIPL); a graded-protection (等级保护) system
keeps such records for at least six months, protected from tampering. Every part of the
platform that reads or changes people's data (the web app, the CLI, device provisioning)
appends through this module, which is why it sits in the kernel.

The table is append-only and hash-chained (migration 0016_audit_trail): each row stores
`prev_hash` and `hash = sha256(prev_hash || canonical JSON of its fields)`. The canonical
text is made here (`canonical`) and handed to the database function `audit_append`, which
serializes writers (so concurrent appends never fork the chain), parses the fields out of
that same text and stores them; `verify` recomputes every hash from the stored columns, so a
row changed, removed or reordered behind the application's back is found. Appends are one
statement, made before the caller answers: an acknowledged action always has its record.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kernel.db import AsyncConn, Conn
from kernel.i18n import N_

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
"""The `prev_hash` of the first row ever written (before any pruning)."""
DEFAULT_RETENTION_DAYS = 180
_APPEND = "SELECT audit_append(%s)"


class Outcome(StrEnum):
    """How an audited attempt ended."""

    OK = "ok"
    DENIED = "denied"  # not logged in, not allowed, or out of scope (the 404 of scope.py)
    ERROR = "error"  # refused as invalid, a conflict, or a failure


class Action(StrEnum):
    """What was done. New actions are added here once, with their label below."""

    LOGIN = "auth.login"
    LOGOUT = "auth.logout"
    RESIDENT_LIST = "resident.list"
    RESIDENT_READ = "resident.read"
    RESIDENT_CREATE = "resident.create"
    RESIDENT_UPDATE = "resident.update"
    RESIDENT_ACCESS_READ = "resident.access_read"
    VITALS_READ = "vitals.read"
    ALERT_LIST = "alert.list"
    ALERT_READ = "alert.read"
    ALERT_ACK = "alert.ack"
    ALERT_RESOLVE = "alert.resolve"
    ALERT_STREAM = "alert.stream"
    VISIT_READ = "visit.read"
    VISIT_CREATE = "visit.create"
    VISIT_CHANGE = "visit.change"
    VISIT_PLAN_READ = "visit_plan.read"
    VISIT_PLAN_CHANGE = "visit_plan.change"
    CHANNEL_CHANGE = "channel.change"
    DUTY_CHANGE = "duty.change"
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    USER_ACTIVATE = "user.activate"
    USER_DEACTIVATE = "user.deactivate"
    USER_READ = "user.read"
    DISPLAY_CREATE = "display.create"
    DISPLAY_REVOKE = "display.revoke"
    PASSWORD_RESET = "user.password_reset"  # noqa: S105 (an action name)
    PASSWORD_CHANGE = "user.password_change"  # noqa: S105
    SESSION_READ = "session.read"
    SESSION_END = "session.end"
    ROSTER_READ = "roster.read"
    ROSTER_CHANGE = "roster.change"
    SITE_CREATE = "site.create"
    SITE_UPDATE = "site.update"
    DEVICE_PROVISION = "device.provision"
    DEVICE_REVOKE = "device.revoke"
    DEVICE_UPDATE = "device.update"
    DEVICE_READ = "device.read"
    IMPORT = "import"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    EXPORT = "export"
    REPORT_READ = "report.read"
    DIGEST_READ = "digest.read"


ACTION_LABELS: dict[str, str] = {
    Action.LOGIN: N_("Logged in"),
    Action.LOGOUT: N_("Logged out"),
    Action.RESIDENT_LIST: N_("List residents"),
    Action.RESIDENT_READ: N_("Read resident record"),
    Action.RESIDENT_CREATE: N_("Create resident"),
    Action.RESIDENT_UPDATE: N_("Change resident record"),
    Action.RESIDENT_ACCESS_READ: N_("Reveal how to get in (door code)"),
    Action.VITALS_READ: N_("Read vital signs"),
    Action.ALERT_LIST: N_("List alerts"),
    Action.ALERT_READ: N_("Read an alert"),
    Action.ALERT_ACK: N_("Acknowledge an alert"),
    Action.ALERT_RESOLVE: N_("Resolve an alert"),
    Action.ALERT_STREAM: N_("Open live alert feed"),
    Action.DISPLAY_CREATE: N_("Set up a wall display"),
    Action.DISPLAY_REVOKE: N_("Switch off a wall display"),
    Action.VISIT_READ: N_("Read visits"),
    Action.VISIT_CREATE: N_("Plan a new visit"),
    Action.VISIT_CHANGE: N_("Record or change a visit"),
    Action.VISIT_PLAN_READ: N_("Read visit plan"),
    Action.VISIT_PLAN_CHANGE: N_("Change visit plan"),
    Action.CHANNEL_CHANGE: N_("Change notification channel"),
    Action.DUTY_CHANGE: N_("Change on-duty status"),
    Action.USER_CREATE: N_("Create account"),
    Action.USER_UPDATE: N_("Change account"),
    Action.USER_ACTIVATE: N_("Activate account"),
    Action.USER_DEACTIVATE: N_("Deactivate account"),
    Action.USER_READ: N_("Read accounts"),
    Action.PASSWORD_RESET: N_("Reset a password"),
    Action.PASSWORD_CHANGE: N_("Change own password or second factor"),
    Action.SESSION_READ: N_("Read sessions"),
    Action.SESSION_END: N_("End sessions"),
    Action.ROSTER_READ: N_("Read duty roster"),
    Action.ROSTER_CHANGE: N_("Change duty roster"),
    Action.SITE_CREATE: N_("Create site"),
    Action.SITE_UPDATE: N_("Change site"),
    Action.DEVICE_PROVISION: N_("Provision device"),
    Action.DEVICE_REVOKE: N_("Revoke device"),
    Action.DEVICE_UPDATE: N_("Move or change a device"),
    Action.DEVICE_READ: N_("Read devices"),
    Action.IMPORT: N_("Bulk import residents and devices"),
    Action.AUDIT_READ: N_("Search audit trail"),
    Action.AUDIT_EXPORT: N_("Export audit trail"),
    Action.EXPORT: N_("Export data"),
    Action.REPORT_READ: N_("Read answer-time statistics"),
    Action.DIGEST_READ: N_("Read the daily digest"),
}

OUTCOME_LABELS: dict[str, str] = {
    Outcome.OK: N_("Done"),
    Outcome.DENIED: N_("Denied"),
    Outcome.ERROR: N_("Failed"),
}


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (id and username at the time) or a CLI user, and from where."""

    name: str
    user_id: int | None = None
    address: str | None = None


CLI_ADDRESS = "local"
"""The address of a CLI actor: the command ran on the server itself."""


def cli_actor() -> Actor:
    """The actor of a CLI command: `cli:<os user>` (the CLI has no platform login)."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in a container
        who = "unknown"
    return Actor(f"cli:{who}", address=CLI_ADDRESS)


@dataclass(frozen=True)
class Target:
    """What was acted on: a type and id, and the resident it concerns when there is one."""

    type: str | None = None
    id: str | int | None = None
    resident_id: int | None = None


@dataclass(frozen=True)
class Entry:
    """What one record will say, before its actor, time and outcome are known: what a core
    function (gateway.device_lifecycle, gateway.bulk_import) hands to the web app's and the
    CLI's recorders, so both record the same thing."""

    action: str
    target: Target
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """One audit record, before it is chained."""

    at: datetime
    actor: Actor
    action: str
    outcome: Outcome = Outcome.OK
    target: Target = field(default_factory=Target)
    detail: dict[str, Any] = field(default_factory=dict)


def _text(value: str) -> str:
    """Text PostgreSQL stores and UTF-8 encodes: NUL and lone surrogates (a path parameter
    can carry either) become "?", so recording a bad request never fails."""
    return value.replace("\x00", "?").encode("utf-8", "replace").decode("utf-8")


def _plain(value: Any) -> Any:
    """A JSON value that survives jsonb unchanged: floats become text (jsonb would print
    1e20 as 100000000000000000000, and the hash would no longer match)."""
    if isinstance(value, dict):
        return {_text(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int) or value is None:
        return value
    return _text(str(value))


def fields(event: Event) -> dict[str, Any]:
    """The row's hashed fields, as stored."""
    target = event.target
    return {
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor.user_id,
        "actor": _text(event.actor.name[:200]),
        "address": _text(event.actor.address[:64]) if event.actor.address else None,
        "action": str(event.action),
        "target_type": target.type,
        "target_id": None if target.id is None else _text(str(target.id)[:200]),
        "resident_id": target.resident_id,
        "outcome": str(event.outcome),
        "detail": _plain(event.detail),
    }


def canonical(row: dict[str, Any]) -> str:
    """The text a row's hash covers: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, canon: str) -> str:
    """sha256(prev_hash || canon), hex: the same computation as audit_append's."""
    return hashlib.sha256((prev_hash + canon).encode()).hexdigest()


def append(conn: Conn, event: Event) -> int:
    """Append one record (in the caller's transaction, if any); return its id."""
    row = conn.execute(_APPEND, (canonical(fields(event)),)).fetchone()
    assert row is not None
    return int(row[0])


async def append_async(conn: AsyncConn, event: Event) -> int:
    """`append` for asyncio code (the web app)."""
    cur = await conn.execute(_APPEND, (canonical(fields(event)),))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def prune(conn: Conn, before: datetime) -> int:
    """Delete the records older than `before` (the retention job's, the only path allowed
    to delete); the hash of the last one deleted becomes the chain's anchor."""
    row = conn.execute("SELECT audit_prune(%s)", (before,)).fetchone()
    return int(row[0]) if row else 0


# ---- verification ---------------------------------------------------------------------

_COLUMNS = ("id, at, actor_id, actor, address, action, target_type, target_id, resident_id, "
            "outcome, detail, prev_hash, hash")


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: rows checked, and the first broken row with the reason."""

    checked: int
    broken_id: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        """Whether every checked row chains to the one before."""
        return self.broken_id is None


def _row_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    (_id, at, actor_id, actor, address, action, target_type, target_id, resident_id,
     outcome, detail, _prev, _hash) = row
    return {"at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_id": actor_id, "actor": actor, "address": address, "action": action,
            "target_type": target_type, "target_id": target_id, "resident_id": resident_id,
            "outcome": outcome, "detail": detail}


def check_chain(rows: Iterable[tuple[Any, ...]], expected_prev: str | None) -> Verdict:
    """Walk rows in id order; each must name the previous hash and hash to its own.
    `expected_prev` None trusts the first row's prev_hash (a partial check, `--since`)."""
    checked = 0
    prev = expected_prev
    for row in rows:
        row_id, prev_hash, stored = int(row[0]), str(row[11]), str(row[12])
        if prev is not None and prev_hash != prev:
            return Verdict(checked, row_id, "does not follow the previous row (a row before "
                                            "it was removed or changed)")
        if chain_hash(prev_hash, canonical(_row_fields(row))) != stored:
            return Verdict(checked, row_id, "its content does not match its hash (changed)")
        prev = stored
        checked += 1
    return Verdict(checked)


def _stream(conn: Conn, since: datetime | None) -> Iterator[tuple[Any, ...]]:
    """The rows to check, in id order, without loading them all at once."""
    with conn.transaction(), conn.cursor(name="audit_verify") as cur:
        if since is None:
            cur.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY id")
        else:
            cur.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE id >= (SELECT min(id) "
                        "FROM audit_log WHERE at >= %s) ORDER BY id", (since,))
        yield from cur


def verify(conn: Conn, since: datetime | None = None) -> Verdict:
    """Check the chain from its anchor (GENESIS, or the last pruned row's hash), or, with
    `since`, from the first record at or after that time."""
    expected: str | None = None
    if since is None:
        row = conn.execute("SELECT hash FROM audit_anchor WHERE id = 1").fetchone()
        expected = str(row[0]) if row else GENESIS
    return check_chain(_stream(conn, since), expected)
