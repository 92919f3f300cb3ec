"""Escalation: an alert's timetable (pure), the tick that carries out due steps, and the runner.

Each step is one row of `alert_escalations`. A step is carried out in one transaction that
queues its notifications and sets `done_at`, so a crash or restart neither loses nor repeats
a step. Steps are due by wall clock: staff response time is real time, even in replays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from alerts.config import AlertSettings
from alerts.model import Audience, NotificationKind, Severity
from alerts.notify.outbox import enqueue_alert_notifications
from kernel.db import Conn
from kernel.listen import Backoff, ListenWorker

logger = logging.getLogger(__name__)

Enqueue = Callable[[Conn, int, Audience, NotificationKind, int], int]
Clock = Callable[[], datetime]

ASSIGNED_STEP = 0  # step 0: tell the assigned care worker (or the duty officers) at once
# Step 0 of alerts at least this loud also goes to the site's group chats (WeCom/DingTalk).
GROUP_MIN_SEVERITY = Severity.HIGH
MAX_STEPS_PER_TICK = 500


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One escalation step: notify `audience` at `due_at` unless acknowledged by then."""

    step: int
    audience: Audience
    due_at: datetime


def plan(severity: Severity | str, settings: AlertSettings, now: datetime,
         assigned: bool) -> list[PlannedStep]:
    """The timetable of a new alert: step 0 at once to the assigned worker (or, with nobody
    assigned, to the duty officers for high and louder), then the severity's escalation
    steps counted from `now`."""
    steps: list[PlannedStep] = []
    if assigned:
        steps.append(PlannedStep(ASSIGNED_STEP, Audience.ASSIGNED, now))
    elif Severity(severity).rank >= GROUP_MIN_SEVERITY.rank:
        steps.append(PlannedStep(ASSIGNED_STEP, Audience.DUTY_OFFICERS, now))
    configured = sorted(settings.escalation.get(Severity(severity), []), key=lambda s: s.after_s)
    steps += [PlannedStep(n, s.audience, now + timedelta(seconds=s.after_s))
              for n, s in enumerate(configured, start=1)]
    return steps


def replan(severity: Severity | str, settings: AlertSettings, now: datetime,
           done: Collection[Audience], next_step: int) -> list[PlannedStep]:
    """The steps after a severity upgrade: the new severity's plan from `now`, without the
    audiences already notified, numbered from `next_step`."""
    todo = [p for p in plan(severity, settings, now, assigned=False)
            if p.step != ASSIGNED_STEP and p.audience not in done]
    return [PlannedStep(next_step + i, p.audience, p.due_at) for i, p in enumerate(todo)]


_INSERT_PLAN = """
INSERT INTO alert_escalations (alert_id, step, audience, due_at)
SELECT %(alert_id)s, t.step, t.audience, t.due_at
FROM unnest(%(steps)s::smallint[], %(audiences)s::text[], %(due)s::timestamptz[])
     AS t(step, audience, due_at)
"""


def insert_plan(conn: Conn, alert_id: int, steps: Sequence[PlannedStep]) -> None:
    """Write planned steps for an alert (one statement; nothing when `steps` is empty)."""
    if not steps:
        return
    conn.execute(_INSERT_PLAN, {
        "alert_id": alert_id, "steps": [s.step for s in steps],
        "audiences": [s.audience.value for s in steps], "due": [s.due_at for s in steps]})


# Steps of alerts that are no longer open (normally already skipped by ack/resolve/cancel).
_SKIP_NOT_OPEN = """
UPDATE alert_escalations SET done_at = %(now)s, skipped = true
WHERE (alert_id, step) IN (
    SELECT e.alert_id, e.step FROM alert_escalations e JOIN alerts a ON a.id = e.alert_id
    WHERE e.done_at IS NULL AND e.due_at <= %(now)s AND a.status <> 'open'
    FOR UPDATE OF e SKIP LOCKED)
"""

# The alert row is locked too (never waiting: SKIP LOCKED), in the same order as
# acknowledge/resolve (alert, then steps), so a tick and a staff action cannot deadlock.
_NEXT_DUE = """
SELECT e.alert_id, e.step, e.audience, a.severity
FROM alert_escalations e JOIN alerts a ON a.id = e.alert_id
WHERE e.done_at IS NULL AND e.due_at <= %(now)s AND a.status = 'open'
  AND e.alert_id <> ALL(%(exclude)s::bigint[])
ORDER BY e.due_at, e.alert_id, e.step
LIMIT 1
FOR NO KEY UPDATE OF e, a SKIP LOCKED
"""

_MARK_DONE = "UPDATE alert_escalations SET done_at = %s WHERE alert_id = %s AND step = %s"
_LEVEL = "UPDATE alerts SET escalation_level = GREATEST(escalation_level, %s) WHERE id = %s"
_HISTORY = """
INSERT INTO alert_history (alert_id, at, action, status, note) VALUES (%s, %s, %s, 'open', %s)
"""


@dataclass(frozen=True, slots=True)
class _Due:
    alert_id: int
    step: int
    audience: Audience
    severity: Severity


def step_action(step: int, audience: Audience) -> str:
    """History action for a step carried out ('notified assigned', 'escalated to ...')."""
    return f"notified {audience}" if step == ASSIGNED_STEP else f"escalated to {audience}"


def escalation_tick(conn: Conn, now: datetime,
                    enqueue: Enqueue = enqueue_alert_notifications) -> int:
    """Carry out every step due at `now`, one transaction each; return the steps carried out.

    `conn` must be in autocommit mode. A step whose `enqueue` fails is rolled back and retried
    on the next tick (later steps of that alert wait); a lost connection propagates.
    """
    if not conn.autocommit:
        raise ValueError("escalation_tick needs an autocommit connection (one transaction "
                         "per step)")
    with conn.transaction():
        skipped = conn.execute(_SKIP_NOT_OPEN, {"now": now}).rowcount
    if skipped > 0:
        logger.info("skipped %d escalation steps of alerts no longer open", skipped)
    failed: list[int] = []
    done = 0
    while done < MAX_STEPS_PER_TICK:
        outcome = _tick_one(conn, now, enqueue, failed)
        if outcome is None:
            break
        done += outcome
    return done


def _tick_one(conn: Conn, now: datetime, enqueue: Enqueue, failed: list[int]) -> int | None:
    """Carry out the next due step: 1 done, 0 failed (rolled back), None when nothing is due."""
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_NEXT_DUE, {"now": now, "exclude": failed}).fetchone()
        if row is None:
            return None
        due = _Due(int(row["alert_id"]), int(row["step"]), Audience(row["audience"]),
                   Severity(row["severity"]))
        try:
            with conn.transaction():  # savepoint: a failing step leaves no trace
                _carry_out(conn, due, now, enqueue)
        except psycopg.OperationalError:
            raise
        except Exception:
            logger.exception("escalation step %d of alert %d failed; retrying next tick",
                             due.step, due.alert_id)
            failed.append(due.alert_id)
            return 0
    return 1


def _carry_out(conn: Conn, due: _Due, now: datetime, enqueue: Enqueue) -> None:
    kind = NotificationKind.ALERT if due.step == ASSIGNED_STEP else NotificationKind.ESCALATION
    queued = enqueue(conn, due.alert_id, due.audience, kind, due.step)
    if due.step == ASSIGNED_STEP and due.severity.rank >= GROUP_MIN_SEVERITY.rank:
        queued += enqueue(conn, due.alert_id, Audience.SITE_GROUP, kind, due.step)
    conn.execute(_MARK_DONE, (now, due.alert_id, due.step))
    if due.step != ASSIGNED_STEP:
        conn.execute(_LEVEL, (due.step, due.alert_id))
    conn.execute(_HISTORY, (due.alert_id, now, step_action(due.step, due.audience),
                            f"step {due.step}: {queued} notification(s) queued"))
    logger.info("alert %d step %d (%s): %d notification(s) queued", due.alert_id, due.step,
                due.audience, queued)


def utc_now() -> datetime:
    """Wall-clock time (UTC)."""
    return datetime.now(UTC)


class EscalationRunner:
    """Runs `escalation_tick` every `interval_s` and at once when an alert changes
    (notify topic `alerts`), on its own connection; reconnects with backoff
    (kernel.listen.ListenWorker)."""

    def __init__(self, database_url: str, interval_s: float = 2.0, clock: Clock = utc_now,
                 enqueue: Enqueue = enqueue_alert_notifications, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0) -> None:
        self._interval = interval_s
        self._clock = clock
        self._enqueue = enqueue
        self._worker = ListenWorker(database_url, ("alerts",), name="escalation",
                                    cycle=self._tick, backoff=Backoff(backoff_s, max_backoff_s),
                                    on_connect=self._connected, on_lost=self._lost)
        self.ticks = 0
        self.processed = 0
        self.backend_pid: int | None = None

    def start(self) -> None:
        """Start the runner thread."""
        self._worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current tick."""
        self._worker.stop(timeout)

    def is_alive(self) -> bool:
        """Whether the runner thread is running."""
        return self._worker.is_alive()

    def _connected(self, conn: Conn) -> None:
        self.backend_pid = conn.info.backend_pid
        logger.info("escalation runner connected (every %.1f s and on new alerts)",
                    self._interval)

    def _tick(self, conn: Conn) -> float:
        """One tick; then wait until `interval_s` passes or an alert changes (a burst of
        notifications is served by one tick)."""
        self.processed += escalation_tick(conn, self._clock(), self._enqueue)
        self.ticks += 1
        return self._interval

    def _lost(self, exc: Exception, delay: float) -> None:
        if isinstance(exc, psycopg.OperationalError):
            logger.warning("escalation: database unavailable (%s); retrying in %.1f s",
                           exc, delay)
        else:
            logger.exception("escalation runner failed; restarting in %.1f s", delay)
        self.backend_pid = None
