"""The outbox dispatcher: claims due messages, sends them on worker threads, records results.

No transaction is held over a send: a message is claimed in one short statement (attempts + 1,
not_before pushed out by a lease), sent, and its result recorded in another. A dispatcher that
dies mid-send leaves the row to be claimed again when the lease ends (at-least-once delivery).
The attempt number fences late results, so a stale worker cannot overwrite a newer outcome.
Every attempt carries the row's `idempotency_key` (set when the row is queued), so receivers
can drop the repeat that at-least-once delivery implies (docs/alerts.md, "Idempotency").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import ValidationError

from alerts.model import ChannelKind, NotificationKind
from alerts.notify.channels import ChannelGoneError, ChannelSenders, Sender, SendError
from alerts.notify.messages import Message
from alerts.notify.outbox import enqueue_all_clears
from alerts.notify.settings import NotifySettings
from alerts.notify.vapid import load_or_create_vapid
from kernel.endpoint import MqttEndpoint
from kernel.listen import Backoff, ListenWorker

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 15.0
_IDLE_SLICE_S = 0.5   # longest uninterrupted wait (bounds how long stop() takes)
_BUSY_SLICE_S = 0.05  # wait slice while sends are in flight

_CLAIM_SQL = """
WITH due AS (
    SELECT id FROM notification_outbox
    WHERE status = 'pending' AND not_before <= %(now)s
    ORDER BY id LIMIT %(n)s FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notification_outbox o SET attempts = o.attempts + 1, not_before = %(until)s
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.alert_id, o.kind, o.channel, o.channel_id, o.target, o.payload,
              o.attempts, o.idempotency_key
)
SELECT cl.*, c.secret, COALESCE(c.active, false) AS channel_active,
       COALESCE(a.status IN ('resolved', 'cancelled'), false) AS alert_finished
FROM claimed cl
LEFT JOIN notification_channels c ON c.id = cl.channel_id
LEFT JOIN alerts a ON a.id = cl.alert_id
ORDER BY cl.id
"""
_NEXT_DUE_SQL = "SELECT min(not_before) FROM notification_outbox WHERE status = 'pending'"
_FENCE = " WHERE id = %(id)s AND attempts = %(attempts)s AND status = 'pending'"
_SENT_SQL = ("UPDATE notification_outbox SET status = 'sent', sent_at = %(now)s, "
             "last_error = NULL" + _FENCE)
_RETRY_SQL = ("UPDATE notification_outbox SET not_before = %(at)s, last_error = %(error)s"
              + _FENCE)
_FINAL_SQL = ("UPDATE notification_outbox SET status = %(status)s, last_error = %(error)s"
              + _FENCE)
_DEACTIVATE_SQL = "UPDATE notification_channels SET active = false WHERE id = %s"

_ORIGINALS = (NotificationKind.ALERT, NotificationKind.ESCALATION)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed outbox row."""

    id: int
    alert_id: int | None
    kind: NotificationKind
    channel: ChannelKind
    channel_id: int | None
    target: str
    payload: dict[str, Any]
    attempts: int
    key: str  # the row's idempotency key: the same on every attempt
    secret: dict[str, Any]
    channel_active: bool
    alert_finished: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        """Build from a claim row."""
        return cls(id=int(row["id"]), alert_id=row["alert_id"],
                   kind=NotificationKind(row["kind"]), channel=ChannelKind(row["channel"]),
                   channel_id=row["channel_id"], target=str(row["target"]),
                   payload=dict(row["payload"] or {}), attempts=int(row["attempts"]),
                   key=str(row["idempotency_key"]),
                   secret=dict(row["secret"] or {}), channel_active=bool(row["channel_active"]),
                   alert_finished=bool(row["alert_finished"]))


@dataclass(frozen=True, slots=True)
class Result:
    """How sending a job went (error None = delivered)."""

    job: Job
    error: SendError | None


def utc_now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def to_message(job: Job) -> Message:
    """The message a job carries, keyed by its row (a device command travels as `data`)."""
    if job.kind is NotificationKind.COMMAND:
        return Message(kind=job.kind, title=str(job.payload.get("type", "command")), body="",
                       alert_id=job.alert_id, data=job.payload, idempotency_key=job.key)
    return Message.model_validate(job.payload).with_key(job.key)


def skip_reason(job: Job) -> str | None:
    """Why a claimed job should not be sent at all, or None."""
    if job.kind in _ORIGINALS and job.alert_finished:
        return "alert finished before this was sent"
    if job.channel is not ChannelKind.MQTT and not job.channel_active:
        return "channel removed or deactivated"
    return None


def deliver(sender: Sender, job: Job) -> Result:
    """Send one job; any failure becomes a Result with a SendError."""
    try:
        sender.send(job.target, job.secret, to_message(job))
    except SendError as exc:
        return Result(job, exc)
    except ValidationError as exc:
        return Result(job, SendError(f"bad payload: {exc.error_count()} errors",
                                     retryable=False))
    except Exception as exc:  # a sender bug must not kill the dispatcher
        logger.exception("sender for %s crashed on outbox row %d", job.channel.value, job.id)
        return Result(job, SendError(f"{type(exc).__name__}: {exc}", retryable=True))
    return Result(job, None)


class Dispatcher:
    """Sends what the outbox holds: wakes on NOTIFY 'outbox' and every `poll_s`, retries with
    exponential backoff, queues all-clears for finished alerts, reconnects with backoff."""

    def __init__(self, database_url: str, settings: NotifySettings,
                 mqtt: MqttEndpoint | None = None, *,
                 senders: Mapping[ChannelKind, Sender] | None = None,
                 clock: Clock = utc_now, name: str = "notify-dispatcher") -> None:
        self._settings = settings
        self._mqtt = mqtt
        self._senders = senders
        self._owned: ChannelSenders | None = None
        self._clock = clock
        self._conn: psycopg.Connection[Any] | None = None
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix=f"{name}-send")
        self._results: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self._unrecorded: deque[Result] = deque()
        self._inflight = 0
        self._next_clear = 0.0
        self._worker = ListenWorker(database_url, ("outbox",), name=name, cycle=self._cycle,
                                    backoff=Backoff(RECONNECT_MIN_S, RECONNECT_MAX_S),
                                    on_connect=self._connected, on_lost=self._lost,
                                    on_close=self._shutdown, slice_s=self._slice,
                                    wake=self._results_waiting)
        self.connected = threading.Event()
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        """Start the dispatcher thread."""
        self._worker.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop claiming, finish and record the sends in flight, close everything."""
        self._worker.stop(timeout)

    # connection (kernel.listen.ListenWorker: LISTEN outbox, reconnect with backoff) -----

    def _connected(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        if self._senders is None:
            self._owned = ChannelSenders(self._settings, vapid=load_or_create_vapid(conn),
                                         mqtt=self._mqtt)
            self._senders = self._owned.senders
        self.connected.set()
        logger.info("notification dispatcher connected")

    def _lost(self, exc: Exception, delay: float) -> None:
        """The dispatcher outlives any one failure: log it, reconnect after `delay`."""
        if not isinstance(exc, psycopg.Error):
            logger.exception("notification dispatcher cycle failed")
        self.connected.clear()
        logger.warning("notification dispatcher reconnecting in %.1fs after: %s", delay, exc)
        self._conn = None  # the worker has closed it

    def _shutdown(self, conn: psycopg.Connection[Any] | None) -> None:
        self._conn = conn
        self._pool.shutdown(wait=True)  # each send is bounded by its own timeout
        try:
            if self._conn is not None and not self._conn.closed:
                self._record_results()
        except psycopg.Error as exc:
            logger.warning("could not record results at shutdown: %s", exc)
        left = len(self._unrecorded) + self._results.qsize()
        if left:
            logger.warning("%d send results unrecorded at shutdown; those messages will be "
                           "sent again when their lease ends", left)
        if self._conn is not None:
            self._conn.close()
        if self._owned is not None:
            self._owned.close()
        self.connected.clear()

    # one cycle --------------------------------------------------------------------------

    def _cycle(self, _conn: psycopg.Connection[Any]) -> float:
        """One cycle, then how long to wait for a NOTIFY, a finished send, the next due row,
        or the poll interval (no wait when a full batch was claimed: more may be waiting)."""
        if self._claim_and_start():
            return 0.0
        saturated = self._inflight >= self._settings.workers  # a finished send wakes us
        return self._settings.poll_s if saturated else self._seconds_until_due()

    def _claim_and_start(self) -> bool:
        """Record results, queue all-clears when due, claim and start sends; True when a
        full batch was claimed (more may be waiting)."""
        self._record_results()
        self._maybe_enqueue_all_clears()
        free = self._settings.workers - self._inflight
        if free <= 0:
            return False
        jobs = self._claim(free)
        for job in jobs:
            self._start(job)
        return len(jobs) == free

    def _db(self) -> psycopg.Connection[Any]:
        assert self._conn is not None
        return self._conn

    def _claim(self, n: int) -> list[Job]:
        now = self._clock()
        until = now + timedelta(seconds=self._settings.lease_s)
        with self._db().cursor(row_factory=dict_row) as cur:
            rows = cur.execute(_CLAIM_SQL, {"now": now, "until": until, "n": n}).fetchall()
        return [Job.from_row(r) for r in rows]

    def _start(self, job: Job) -> None:
        self._inflight += 1
        reason = skip_reason(job)
        sender = (self._senders or {}).get(job.channel)
        if reason is not None:
            self._results.put(Result(job, SendError(reason, retryable=False)))
        elif sender is None:
            self._results.put(Result(job, SendError(f"no sender for {job.channel.value}",
                                                    retryable=False)))
        else:
            self._pool.submit(self._send, sender, job)

    def _send(self, sender: Sender, job: Job) -> None:
        self._results.put(deliver(sender, job))

    def _maybe_enqueue_all_clears(self) -> None:
        if time.monotonic() < self._next_clear:
            return
        conn = self._db()
        with conn.transaction():
            enqueue_all_clears(conn, self._clock())
        self._next_clear = time.monotonic() + self._settings.all_clear_interval_s

    # results ----------------------------------------------------------------------------

    def _record_results(self) -> None:
        while True:
            try:
                self._unrecorded.append(self._results.get_nowait())
            except queue.Empty:
                break
        while self._unrecorded:
            self._record(self._unrecorded[0])
            self._unrecorded.popleft()
            self._inflight -= 1

    def _record(self, result: Result) -> None:
        job, error = result.job, result.error
        conn = self._db()
        fence = {"id": job.id, "attempts": job.attempts}
        if error is None:
            conn.execute(_SENT_SQL, {**fence, "now": self._clock()})
            self.sent += 1
            logger.info("sent %s %d via %s (attempt %d)", job.kind.value, job.id,
                        job.channel.value, job.attempts)
            return
        if isinstance(error, ChannelGoneError) and job.channel_id is not None:
            conn.execute(_DEACTIVATE_SQL, (job.channel_id,))
            logger.warning("channel %d deactivated: %s", job.channel_id, error)
        if error.retryable and job.attempts < self._settings.max_attempts:
            at = self._clock() + timedelta(seconds=self._settings.backoff_s(job.attempts))
            conn.execute(_RETRY_SQL, {**fence, "at": at, "error": str(error)})
            logger.info("%s %d via %s failed (attempt %d), retry at %s: %s", job.kind.value,
                        job.id, job.channel.value, job.attempts, at.isoformat(), error)
            return
        skipped = skip_reason(job) is not None
        conn.execute(_FINAL_SQL, {**fence, "status": "skipped" if skipped else "failed",
                                  "error": str(error)})
        if not skipped:
            self.failed += 1
            logger.warning("%s %d via %s failed for good after %d attempts: %s",
                           job.kind.value, job.id, job.channel.value, job.attempts, error)

    # waiting ----------------------------------------------------------------------------

    def _seconds_until_due(self) -> float:
        wait = self._settings.poll_s
        row = self._db().execute(_NEXT_DUE_SQL).fetchone()
        if row is not None and row[0] is not None:
            wait = min(wait, (row[0] - self._clock()).total_seconds())
        wait = min(wait, self._next_clear - time.monotonic())
        return max(0.0, wait)

    def _slice(self) -> float:
        """Longest uninterrupted wait: short while sends are in flight (their results are
        recorded promptly), longer when idle (bounds how long stop() takes)."""
        return _BUSY_SLICE_S if self._inflight else _IDLE_SLICE_S

    def _results_waiting(self) -> bool:
        """A send finished: end the wait to record it."""
        return bool(self._inflight) and not self._results.empty()
