"""Alert persistence for the pipeline (sync psycopg): open an alert or attach a repeat to the
open one, suppress reopening within the refractory period, assign it and plan its escalation,
cancel an SOS from the resident's button, mark a condition cleared. One short transaction per
call, indexed lookups only; every change appends to the (append-only) `alert_history`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.config import AlertSettings
from alerts.escalation import insert_plan, plan, replan
from alerts.learning.merge import merge_changes
from alerts.model import (
    PLATFORM_RESTART,
    AlertCancel,
    AlertClear,
    AlertStatus,
    AlertTrigger,
    AlertType,
    Audience,
    Outcome,
    Severity,
)
from kernel.db import Conn
from kernel.roster import on_duty_at_site
from kernel.sites import site_time

logger = logging.getLogger(__name__)

Row = dict[str, Any]

CANCELLABLE_TYPES = (AlertType.SOS.value, AlertType.FALL.value)
SYSTEM = "system"
RESIDENT = "resident"


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """Result of storing a trigger: the alert it opened or attached to, or (`suppressed`) the
    recently finished alert that kept it from reopening."""

    alert_id: int
    created: bool
    uid: str | None
    status: AlertStatus
    severity: Severity
    assigned_to: int | None = None
    count: int = 1
    suppressed: bool = False
    upgraded: bool = False  # a repeat raised the alert's severity


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One `alert_history` row: what happened and the alert's status after it."""

    action: str
    status: AlertStatus
    note: str | None = None


# Several entries in one statement, in order.
HISTORY_SQL = """
INSERT INTO alert_history (alert_id, at, action, actor_id, actor, status, note)
SELECT %(alert_id)s, %(at)s, t.action, %(actor_id)s, %(actor)s, t.status, t.note
FROM unnest(%(actions)s::text[], %(statuses)s::text[], %(notes)s::text[])
     WITH ORDINALITY AS t(action, status, note, n)
ORDER BY t.n
"""

# Skip the steps not yet carried out (acknowledged, resolved or cancelled alerts).
SKIP_PENDING_STEPS_SQL = """
UPDATE alert_escalations SET done_at = %(at)s, skipped = true
WHERE alert_id = %(alert_id)s AND done_at IS NULL
"""


def history_params(alert_id: int, at: datetime, entries: Sequence[HistoryEntry],
                   actor_id: int | None = None, actor: str = SYSTEM) -> dict[str, Any]:
    """Parameters of HISTORY_SQL."""
    return {"alert_id": alert_id, "at": at, "actor_id": actor_id, "actor": actor,
            "actions": [e.action for e in entries],
            "statuses": [e.status.value for e in entries], "notes": [e.note for e in entries]}


def add_history(conn: Conn, alert_id: int, at: datetime, *entries: HistoryEntry,
                actor_id: int | None = None, actor: str = SYSTEM) -> None:
    """Append history entries to an alert."""
    conn.execute(HISTORY_SQL, history_params(alert_id, at, entries, actor_id, actor))


# A device message can be redelivered: append its note only once.
_HISTORY_ONCE = """
INSERT INTO alert_history (alert_id, at, action, actor, status, note)
SELECT %(alert_id)s, %(at)s, %(action)s, %(actor)s, %(status)s, %(note)s
WHERE NOT EXISTS (SELECT 1 FROM alert_history
                  WHERE alert_id = %(alert_id)s AND action = %(action)s AND note = %(note)s)
RETURNING id
"""


def _add_history_once(conn: Conn, alert_id: int, at: datetime, entry: HistoryEntry,
                      actor: str = SYSTEM) -> bool:
    row = conn.execute(_HISTORY_ONCE, {
        "alert_id": alert_id, "at": at, "action": entry.action, "actor": actor,
        "status": entry.status.value, "note": entry.note}).fetchone()
    return row is not None


def _one(conn: Conn, sql: str, params: dict[str, Any]) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchone()


def _uid(value: object) -> str | None:
    return None if value is None else str(value)


def _ts(at: datetime, zone: str | None) -> str:
    """An event time in a history note: the site's zone, 24 h, to the second (issue 14)."""
    return site_time(at, zone, seconds=True)


# --- triggers ---------------------------------------------------------------------------------

# The zone an alert's history notes write their times in (issue 14: the site's, 24 h).
_ZONE = "(SELECT s.timezone FROM sites s WHERE s.id = alerts.site_id) AS timezone"

_ACTIVE = """
SELECT id, uid, severity, status, last_seen, count, cleared_at, assigned_to, """ + _ZONE + """
FROM alerts WHERE resident_id = %(resident_id)s AND type = %(type)s
  AND status IN ('open', 'acknowledged')
FOR UPDATE
"""

# Event time on both sides: `finished_event_at` is the event-time equivalent of the
# resolution (migration 0008), never the wall-clock resolved_at. Served by
# alerts_finished_event_idx.
_RECENTLY_FINISHED = """
SELECT id, uid, severity, status, finished_event_at AS finished_at, """ + _ZONE + """
FROM alerts WHERE resident_id = %(resident_id)s AND type = %(type)s
  AND status IN ('resolved', 'cancelled') AND finished_event_at > %(since)s
ORDER BY finished_event_at DESC
LIMIT 1
"""

# The on-duty care worker of the site (kernel.roster: roster or override at the alert's
# event time) with the fewest active alerts; ties -> lowest id.
_ASSIGNEE = """
SELECT u.id, u.username,
       (SELECT count(*) FROM alerts a
        WHERE a.assigned_to = u.id AND a.status IN ('open', 'acknowledged')) AS load
FROM users u
WHERE u.site_id = %(site)s AND u.role = 'care_worker' AND u.id = ANY(%(on_duty)s)
  AND u.active
ORDER BY load, u.id
LIMIT 1
"""

_INSERT = """
INSERT INTO alerts (uid, resident_id, site_id, device_id, type, severity, opened_at, last_seen,
                    source_seq, details, assigned_to, assigned_at, created_at)
VALUES (%(uid)s, %(resident_id)s, %(site)s, %(device_id)s, %(type)s, %(severity)s, %(at)s,
        %(at)s, %(source_seq)s, %(details)s, %(assigned_to)s, %(assigned_at)s, %(now)s)
ON CONFLICT (resident_id, type) WHERE status IN ('open', 'acknowledged') DO NOTHING
RETURNING id, """ + _ZONE + """
"""

_REPEAT = """
UPDATE alerts SET count = count + %(inc)s, last_seen = GREATEST(last_seen, %(at)s),
                  severity = %(severity)s,
                  cleared_at = CASE WHEN %(returned)s THEN NULL ELSE cleared_at END
WHERE id = %(id)s
RETURNING count
"""


def store_trigger(conn: Conn, trig: AlertTrigger, settings: AlertSettings,
                  now: datetime) -> StoredAlert | None:
    """Open an alert, attach a repeat to the open one, or suppress it (refractory period);
    None when the trigger adds nothing (a redelivered or stale message). `now`: wall clock."""
    try:
        with conn.transaction():
            return _store_trigger(conn, trig, settings, now)
    except psycopg.errors.UniqueViolation as exc:
        logger.info("duplicate %s trigger from %s seq %s ignored (%s)", trig.type,
                    trig.device_id, trig.source_seq, exc.diag.constraint_name)
        return None


def _store_trigger(conn: Conn, trig: AlertTrigger, settings: AlertSettings,
                   now: datetime) -> StoredAlert | None:
    key = {"resident_id": trig.resident_id, "type": trig.type}
    for _attempt in range(3):
        active = _one(conn, _ACTIVE, key)
        if active is not None:
            stored = _repeat(conn, active, trig, settings, now)
            if stored is not None and trig.type == AlertType.ROUTINE_CHANGE:
                _join_changes(conn, int(active["id"]), active["status"], trig, now)
            return stored
        finished = _recently_finished(conn, trig, settings)
        if finished is not None:
            return _suppress(conn, finished, trig, settings, now)
        opened = _open(conn, trig, settings, now)
        if opened is not None:
            return opened
        # A concurrent writer opened this alert first: attach to it.
    raise RuntimeError(f"could not open or attach {trig.type} for resident {trig.resident_id}")


def _recently_finished(conn: Conn, trig: AlertTrigger, settings: AlertSettings) -> Row | None:
    refractory_s = settings.refractory_of(trig.type)
    if refractory_s <= 0:
        return None
    return _one(conn, _RECENTLY_FINISHED, {
        "resident_id": trig.resident_id, "type": trig.type,
        "since": trig.at - timedelta(seconds=refractory_s)})


def _suppress(conn: Conn, finished: Row, trig: AlertTrigger, settings: AlertSettings,
              now: datetime) -> StoredAlert | None:
    status = AlertStatus(finished["status"])
    zone = finished["timezone"]
    note = (f"{trig.type} ({trig.severity}) at {_ts(trig.at, zone)}: {status} at "
            f"{_ts(finished['finished_at'], zone)} (event time), within the "
            f"{settings.refractory_of(trig.type)} s refractory period; not reopened")
    alert_id = int(finished["id"])
    if not _add_history_once(conn, alert_id, now,
                             HistoryEntry("suppressed (refractory)", status, note)):
        return None  # the same trigger again
    logger.info("alert %d: %s suppressed (refractory)", alert_id, trig.type)
    return StoredAlert(alert_id, False, _uid(finished["uid"]), status,
                       Severity(finished["severity"]), suppressed=True)


def _open(conn: Conn, trig: AlertTrigger, settings: AlertSettings,
          now: datetime) -> StoredAlert | None:
    severity = Severity(trig.severity)
    on_duty = on_duty_at_site(conn, trig.site, trig.at, roles=("care_worker",))
    assignee = _one(conn, _ASSIGNEE, {"site": trig.site, "on_duty": sorted(on_duty)})
    assigned_to = int(assignee["id"]) if assignee else None
    row = conn.execute(_INSERT, {
        "uid": trig.uid, "resident_id": trig.resident_id, "site": trig.site,
        "device_id": trig.device_id, "type": trig.type, "severity": severity.value,
        "at": trig.at, "source_seq": trig.source_seq, "details": Jsonb(trig.details or {}),
        "assigned_to": assigned_to, "assigned_at": now if assignee else None,
        "now": now}).fetchone()
    if row is None:
        return None
    alert_id = int(row[0])
    insert_plan(conn, alert_id, plan(severity, settings, now, assigned=assignee is not None))
    source = f" from {trig.device_id}" if trig.device_id else ""
    add_history(conn, alert_id, now,
                HistoryEntry("opened", AlertStatus.OPEN,
                             f"{trig.type} ({severity}) at {_ts(trig.at, row[1])}{source}"),
                _assignment_entry(assignee, trig.site))
    return StoredAlert(alert_id, True, trig.uid, AlertStatus.OPEN, severity, assigned_to)


def _assignment_entry(assignee: Row | None, site: str) -> HistoryEntry:
    if assignee is None:
        return HistoryEntry("unassigned", AlertStatus.OPEN,
                            f"no care worker on duty at site {site}; not assigned")
    return HistoryEntry("assigned", AlertStatus.OPEN,
                        f"assigned to {assignee['username']} (user {assignee['id']}, "
                        f"{assignee['load']} other active alert(s))")


def _repeat(conn: Conn, active: Row, trig: AlertTrigger, settings: AlertSettings,
            now: datetime) -> StoredAlert | None:
    alert_id, status = int(active["id"]), AlertStatus(active["status"])
    old, new = Severity(active["severity"]), Severity(trig.severity)
    upgraded = new.rank > old.rank
    newer = trig.at > active["last_seen"]
    if not newer and not upgraded:
        logger.debug("alert %d: stale or redelivered %s trigger ignored", alert_id, trig.type)
        return None
    cleared_at = active["cleared_at"]
    returned = newer and cleared_at is not None and trig.at > cleared_at
    row = conn.execute(_REPEAT, {"id": alert_id, "inc": int(newer), "at": trig.at,
                                 "severity": (new if upgraded else old).value,
                                 "returned": returned}).fetchone()
    assert row is not None
    count = int(row[0])
    entries = []
    if newer:
        again = "; condition back" if returned else ""
        when = _ts(trig.at, active["timezone"])
        entries.append(HistoryEntry("repeated", status, f"repeat {count} at {when}{again}"))
    if upgraded:
        entries.append(HistoryEntry("escalated severity", status, f"{old} -> {new}"))
        if status is AlertStatus.OPEN:
            _replan(conn, alert_id, new, settings, now)
    add_history(conn, alert_id, now, *entries)
    return StoredAlert(alert_id, False, _uid(active["uid"]), status, new if upgraded else old,
                       active["assigned_to"], count, upgraded=upgraded)


def _join_changes(conn: Conn, alert_id: int, status: str, trig: AlertTrigger,
                  now: datetime) -> None:
    """A routine change joining the open routine-change alert: its changes are added to the
    alert's details (alerts/learning/merge.py) and each one to its history, so a care worker
    sees every feature that changed, not just the first."""
    row = conn.execute("SELECT details FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    details, added = merge_changes(row[0] if row else None, trig.details)
    if not added:
        return
    conn.execute("UPDATE alerts SET details = %s WHERE id = %s", (Jsonb(details), alert_id))
    add_history(conn, alert_id, now, *(
        HistoryEntry("routine change added", AlertStatus(status),
                     str(c.get("explanation") or c.get("feature"))) for c in added))
    logger.info("alert %d: routine change of %s joined", alert_id,
                ", ".join(str(c.get("feature")) for c in added))


_DROP_PENDING = """
DELETE FROM alert_escalations WHERE alert_id = %(alert_id)s AND done_at IS NULL AND step > 0
"""
_REMAINING = """
SELECT COALESCE(max(step) + 1, 1) AS next_step,
       COALESCE(array_agg(audience) FILTER (WHERE done_at IS NOT NULL AND NOT skipped),
                '{}') AS done
FROM alert_escalations WHERE alert_id = %(alert_id)s
"""


def _replan(conn: Conn, alert_id: int, severity: Severity, settings: AlertSettings,
            now: datetime) -> None:
    """Replace the pending steps with the new severity's plan from `now`; done audiences stay
    done (never notified twice)."""
    key = {"alert_id": alert_id}
    conn.execute(_DROP_PENDING, key)
    row = _one(conn, _REMAINING, key)
    assert row is not None
    done = {Audience(a) for a in row["done"]}
    insert_plan(conn, alert_id, replan(severity, settings, now, done, int(row["next_step"])))


# --- resident cancel and condition cleared ----------------------------------------------------

_CANCELLABLE = """
SELECT id, status, opened_at FROM alerts
WHERE resident_id = %(resident_id)s AND type = ANY(%(types)s) AND device_id = %(device_id)s
  AND status IN ('open', 'acknowledged')
ORDER BY opened_at DESC
LIMIT 1
FOR UPDATE
"""

_CANCEL = """
UPDATE alerts SET status = 'cancelled', outcome = %(outcome)s, cancelled_at = %(at)s
WHERE id = %(id)s
"""


def store_cancel(conn: Conn, cancel: AlertCancel, settings: AlertSettings,
                 now: datetime) -> int | None:
    """Cancel the resident's open sos/fall alert from this device if pressed within the cancel
    window; otherwise (or once acknowledged) only note it. Returns the cancelled alert's id."""
    with conn.transaction():
        alert = _one(conn, _CANCELLABLE, {"resident_id": cancel.resident_id,
                                          "types": list(CANCELLABLE_TYPES),
                                          "device_id": cancel.device_id})
        if alert is None:
            logger.info("sos_cancel from %s: no open sos/fall alert", cancel.device_id)
            return None
        alert_id, status = int(alert["id"]), AlertStatus(alert["status"])
        elapsed = (cancel.at - alert["opened_at"]).total_seconds()
        if status is AlertStatus.OPEN and 0 <= elapsed <= settings.sos_cancel_window_s:
            conn.execute(_CANCEL, {"id": alert_id, "at": cancel.at,
                                   "outcome": Outcome.CANCELLED_BY_RESIDENT.value})
            conn.execute(SKIP_PENDING_STEPS_SQL, {"alert_id": alert_id, "at": now})
            add_history(conn, alert_id, now, HistoryEntry(
                "cancelled by resident", AlertStatus.CANCELLED,
                f"resident pressed cancel {elapsed:.0f} s after the alarm"), actor=RESIDENT)
            logger.info("alert %d cancelled by the resident after %.0f s", alert_id, elapsed)
            return alert_id
        _add_history_once(conn, alert_id, now, HistoryEntry(
            "cancel ignored", status, _ignored_cancel_note(status, elapsed)), actor=RESIDENT)
    return None


def _ignored_cancel_note(status: AlertStatus, elapsed: float) -> str:
    when = (f"{elapsed:.0f} s after" if elapsed >= 0 else f"{-elapsed:.0f} s before")
    if status is AlertStatus.ACKNOWLEDGED:
        return f"resident pressed cancel {when} the alarm; already acknowledged, stays open"
    return f"resident pressed cancel {when} the alarm; alert stays open"


# Never before the alert opened: the condition cannot end before it began.
_CLEAR = """
UPDATE alerts SET cleared_at = GREATEST(%(at)s, opened_at)
WHERE resident_id = %(resident_id)s AND type = %(type)s AND status IN ('open', 'acknowledged')
  AND cleared_at IS NULL
RETURNING id, status, cleared_at, """ + _ZONE + """
"""


# An alert the platform's own stop caused (a device_offline from the shutdown): not a device
# fault, so it is resolved by the platform instead of waiting for staff.
_RESOLVE_RESTART = """
UPDATE alerts SET cleared_at = COALESCE(cleared_at, GREATEST(%(at)s, opened_at)),
                  status = 'resolved', resolved_at = %(now)s, outcome = 'false_alarm',
                  note = %(note)s,
                  -- not a device fault: never the start of a refractory period
                  finished_event_at = '-infinity'
WHERE resident_id = %(resident_id)s AND type = %(type)s AND status IN ('open', 'acknowledged')
RETURNING id, cleared_at, """ + _ZONE + """
"""

RESTART_NOTE = ("caused by the platform's own stop and restart, not by the device: it spoke "
                "again after the restart; resolved automatically")


def store_clear(conn: Conn, clear: AlertClear, now: datetime) -> int | None:
    """Mark the condition behind the resident's open alert of this type as cleared (the alert
    stays open until a person resolves it); returns the alert id, None if nothing changed.
    A clear caused by a platform restart (`reason`) resolves the alert instead."""
    if clear.reason == PLATFORM_RESTART:
        return _resolve_restart(conn, clear, now)
    with conn.transaction():
        row = _one(conn, _CLEAR, {"resident_id": clear.resident_id, "type": clear.type,
                                  "at": clear.at})
        if row is None:
            return None
        alert_id = int(row["id"])
        add_history(conn, alert_id, now, HistoryEntry(
            "condition cleared", AlertStatus(row["status"]),
            f"{clear.type} cleared at {_ts(row['cleared_at'], row['timezone'])}"))
    return alert_id


def _resolve_restart(conn: Conn, clear: AlertClear, now: datetime) -> int | None:
    with conn.transaction():
        row = _one(conn, _RESOLVE_RESTART, {"resident_id": clear.resident_id,
                                            "type": clear.type, "at": clear.at, "now": now,
                                            "note": RESTART_NOTE})
        if row is None:
            return None
        alert_id = int(row["id"])
        conn.execute(SKIP_PENDING_STEPS_SQL, {"alert_id": alert_id, "at": now})
        add_history(conn, alert_id, now, HistoryEntry(
            "resolved", AlertStatus.RESOLVED,
            f"{clear.type} cleared at {_ts(row['cleared_at'], row['timezone'])}: "
            f"{RESTART_NOTE}"))
    logger.info("alert %d (%s) resolved: caused by the platform restart", alert_id, clear.type)
    return alert_id
