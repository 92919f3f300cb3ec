"""The pipeline's alert path: detector over every record, the live bus, and a worker that
stores decisions on its own connection (never behind ingest batching).

Threads: the MQTT thread calls `on_records` (detection is a few comparisons per reading);
a ticker evaluates time-based rules on the wall clock, saves detector state and refreshes
resident contexts; the worker stores decisions and retries while the database is down. While
it is down, new alerts still reach the live feed (bus) and the sites' group channels
(`direct`), and are stored as soon as the database returns.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts.bus import AlertEvent, bus_topic, encode_event
from alerts.config import AlertSettings
from alerts.context import History, load_contexts, load_history, load_states, save_states
from alerts.detector import Detector, DeviceContext, ResidentContext
from alerts.model import AlertCancel, AlertClear, AlertTrigger, Decision
from alerts.store import store_cancel, store_clear, store_trigger
from gateway.records import DeviceInfo, Record
from kernel.db import connect

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Publish = Callable[[str, bytes], None]
DirectNotify = Callable[[AlertEvent], None]
Refresh = Callable[[psycopg.Connection[Any]], None]
AlarmStored = Callable[[str, int, int], None]  # device id, alarm seq, alert id


def wall_clock() -> datetime:
    """The wall clock (UTC): the production `Clock`."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class EngineTiming:
    """How often the ticker does its chores (seconds)."""

    tick_s: float = 1.0
    save_state_s: float = 30.0
    refresh_context_s: float = 60.0
    refresh_history_s: float = 3600.0
    # After a start, the broker first delivers what it held for us; until that backlog is in,
    # every device would look silent. Time-based rules wait this long before ticking.
    start_grace_s: float = 60.0
    # A device's repeated trigger (same resident, device, type) is queued for storage at most
    # once per this interval; presses in between are merged into it (see _Pending).
    repeat_interval_s: float = 1.0


_Key = tuple[int, str | None, str]  # resident, device, alert type


@dataclass
class _Pending:
    """A trigger waiting for the worker, into which later triggers of its key are merged.

    One button pressed 2,000 times must not queue 2,000 stores in front of another resident's
    SOS: while a device's trigger waits (queued, or parked by the per-device rate limit),
    its later presses only move `latest` on. The worker stores `first` (it opens the alert, or
    repeats the open one) and then `latest` (the newest press, as one repeat). A merged press
    is released to the ack gate at once: its event row is the ingest path's, and the press it
    was merged into still holds its own message until stored, so the emergency is stored
    even after a crash (holding merged presses instead would let one flooding button fill the
    events session's receive window and delay everyone else's alarms in the broker). A cancel
    or clear of the resident closes the entry to further merging (see `_submit`): a press
    after a cancel is a new emergency and must be stored after it, not folded into the press
    before it.
    """

    first: AlertTrigger
    token: int | None
    latest: AlertTrigger | None = None
    merged: int = 0


_Item = (tuple[Decision, int | None] | _Pending | dict[int, dict[str, Any]] | None)


class AlertEngine:
    """Detector + live bus + storing worker for one pipeline process."""

    def __init__(self, database_url: str, settings: AlertSettings, sites: Sequence[str],
                 publish: Publish, release: Callable[[int], None],
                 hold: Callable[[int, int], None],
                 lookup: Callable[[str], DeviceInfo | None],
                 direct: DirectNotify | None = None, on_refresh: Refresh | None = None,
                 clock: Clock = wall_clock, timing: EngineTiming = EngineTiming(),
                 on_alarm_stored: AlarmStored | None = None) -> None:
        self._url = database_url
        self._settings = settings
        self._sites = list(sites)
        self._publish = publish
        self._release = release
        self._hold = hold
        self._lookup = lookup
        self._direct = direct
        self._on_refresh = on_refresh
        self._on_alarm_stored = on_alarm_stored
        self._clock = clock
        self._timing = timing
        self._contexts: dict[int, ResidentContext] = {}
        self._history: History | None = None
        self._history_at = 0.0
        self._detector = Detector(self._context_of)
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._db_down = threading.Event()
        self._direct_sent: set[str] = set()
        self._qlock = threading.Lock()  # guards the three dicts below
        self._pending: dict[_Key, _Pending] = {}  # not yet taken by the worker
        self._parked: dict[_Key, float] = {}  # rate-limited: queue at this monotonic time
        self._last_queued: dict[_Key, float] = {}
        self._unfinished = 0  # items queued for the worker and not yet done (under _qlock)
        self.coalesced = 0
        self._worker = threading.Thread(target=self._run_worker, name="alert-worker",
                                        daemon=True)
        self._ticker = threading.Thread(target=self._run_ticker, name="alert-ticker",
                                        daemon=True)
        self.stored = 0
        self.raised = 0
        self.failed = 0  # items the worker could not store (logged; see _with_retry)
        self.restored = 0
        self.taken = 0  # messages the detector has taken (on_records calls; see `settled`)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Load contexts and persisted state (if the database is up), start the threads."""
        try:
            with connect(self._url, autocommit=True) as conn:
                self._history = load_history(conn, self._sites)
                self._history_at = time.monotonic()
                self._contexts = load_contexts(conn, self._settings, self._sites, self._history)
                states = load_states(conn, self._contexts)
                if self._on_refresh is not None:
                    self._on_refresh(conn)
            self._detector = Detector(self._context_of, states)
            self._detector.open_all(self._contexts)
            self.restored = len(states)
            # The platform itself was down: devices get a grace period (docs/alerts.md).
            down_since = self._detector.resume(self._clock())
            if down_since is not None:
                logger.info("alert engine: platform down since %s; devices get a grace "
                            "period before they are judged offline", down_since.isoformat())
            logger.info("alert engine: %d residents, %d saved detector states",
                        len(self._contexts), len(states))
        except psycopg.OperationalError as exc:
            logger.error("alert engine starts without contexts (database down: %s)", exc)
        self._worker.start()
        self._ticker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Save state, store what is queued, then stop."""
        self._stop.set()
        self._ticker.join(timeout)
        self._save_state(everything=True)
        self._queue.put(None)
        self._worker.join(timeout)

    # --- detection (MQTT thread and ticker) ----------------------------------------

    def on_records(self, records: Sequence[Record], token: int | None) -> None:
        """Run the detector over one message's records (one device's); queue decisions."""
        with self._lock:
            self.taken += 1  # under the lock: the two MQTT sessions' threads call this
            if not records:
                return
            if records[0].resident_id not in self._contexts:
                self._fallback_context(records[0].device_id)
            decisions = self._detector.process(records)
            # Queued under the lock that snapshots are taken under, so a saved detector
            # state can never overtake the alert of a press it has seen: after a crash in
            # between, the redelivered press would look like a copy and no alert be stored.
            if decisions:
                self._submit(decisions, token)

    def _submit(self, decisions: list[Decision], token: int | None) -> None:
        if token is not None:
            self._hold(token, 1 + len(decisions))
        for decision in decisions:
            if isinstance(decision, AlertTrigger):
                self._submit_trigger(decision, token)
                continue
            # a cancel or clear must not overtake the resident's parked trigger, and no later
            # trigger may be merged into one queued before it
            self._queue_parked(resident=decision.resident_id, close=True)
            self._put((decision, token))

    def _submit_trigger(self, trig: AlertTrigger, token: int | None) -> None:
        """Queue a trigger, merge it into its key's waiting one, or park it (rate limit)."""
        key: _Key = (trig.resident_id, trig.device_id, trig.type)
        now = time.monotonic()
        with self._qlock:
            entry = self._pending.get(key)
            if entry is not None:
                entry.latest = trig
                entry.merged += 1
                self.coalesced += 1
            else:
                entry = self._pending[key] = _Pending(trig, token)
                last = self._last_queued.get(key)
                park = last is not None and now - last < self._timing.repeat_interval_s
                if park:
                    self._parked[key] = (last or now) + self._timing.repeat_interval_s
                else:
                    self._last_queued[key] = now
        if entry.first is not trig:  # merged: the alert path is done with this message
            if token is not None:
                self._release(token)
            return
        self._announce(trig)
        if not park:
            self._put(entry)

    def _queue_parked(self, *, resident: int | None = None, due_by: float | None = None,
                      close: bool = False) -> None:
        """Queue parked triggers: all, a resident's, or those due by `due_by` (monotonic).
        With `close`, the resident's waiting entries take no more merges afterwards."""
        now = time.monotonic()
        with self._qlock:
            keys = [k for k, at in self._parked.items()
                    if (resident is None or k[0] == resident) and (due_by is None or at <= due_by)]
            entries = []
            for key in keys:
                del self._parked[key]
                self._last_queued[key] = now
                entries.append(self._pending[key])
            self._unfinished += len(entries)  # never neither parked nor queued (`settled`)
            if close and resident is not None:
                for key in [k for k in self._pending if k[0] == resident]:
                    del self._pending[key]
            if not self._parked:  # forget devices that went quiet (bounded memory)
                limit = now - self._timing.repeat_interval_s
                self._last_queued = {k: t for k, t in self._last_queued.items() if t > limit}
        for entry in entries:
            self._queue.put(entry)

    def _put(self, item: _Item) -> None:
        """Queue an item for the worker, counted until it is done (see `settled`)."""
        with self._qlock:
            self._unfinished += 1
        self._queue.put(item)

    @property
    def settled(self) -> bool:
        """True when every decision made so far is stored (or given up as unstorable):
        nothing is being detected, parked by the rate limit, queued or being stored.

        A caller that knows every record of interest went through `on_records` (e.g. the
        end-to-end sample, after a barrier message) can read the store then, without
        guessing how long the worker may still take."""
        with self._lock, self._qlock:  # the order of on_records/_tick_once -> _submit
            return self._unfinished == 0 and not self._parked

    def _take(self, entry: _Pending) -> list[AlertTrigger]:
        """The worker takes `entry`: later triggers of its key start a new one."""
        with self._qlock:
            key: _Key = (entry.first.resident_id, entry.first.device_id, entry.first.type)
            if self._pending.get(key) is entry:
                del self._pending[key]
            return [entry.first] if entry.latest is None else [entry.first, entry.latest]

    def _announce(self, trig: AlertTrigger) -> None:
        """Put a new trigger on the live bus at once, and notify directly if the DB is down."""
        self.raised += 1
        event = AlertEvent.raised(trig)
        try:
            self._publish(bus_topic(trig.site), encode_event(event))
        except Exception:  # the bus is best effort; storing is what must not fail
            logger.exception("alert bus publish failed for %s", trig.uid)
        if self._db_down.is_set():
            self._notify_direct(event)

    def _notify_direct(self, event: AlertEvent) -> None:
        if self._direct is None or event.uid in self._direct_sent:
            return
        self._direct_sent.add(event.uid)
        try:
            self._direct(event)
        except Exception:
            logger.exception("direct notification failed for alert %s", event.uid)

    def _context_of(self, resident_id: int) -> ResidentContext | None:
        return self._contexts.get(resident_id)

    def _fallback_context(self, device_id: str) -> None:
        """A resident not (yet) loaded, e.g. the database was down at start: detect with the
        platform defaults until the next refresh, so an SOS is never ignored."""
        info = self._lookup(device_id)
        if info is None:
            return
        known = self._contexts.get(info.resident_id)
        if known is not None:
            return
        self._contexts[info.resident_id] = ResidentContext(
            resident_id=info.resident_id, site=info.site, timezone="UTC",
            settings=self._settings, devices=(DeviceContext(info.device_id, info.type),))
        self._detector.refresh(info.resident_id)

    # --- ticker ------------------------------------------------------------------------

    def _run_ticker(self) -> None:
        started = last_save = last_refresh = time.monotonic()
        while not self._stop.wait(self._timing.tick_s):
            try:
                last_save, last_refresh = self._tick_once(started, last_save, last_refresh)
            except Exception:  # time rules, saves and parked presses must outlive a bug
                logger.exception("alert ticker: one pass failed; going on")

    def _tick_once(self, started: float, last_save: float, last_refresh: float
                   ) -> tuple[float, float]:
        """One ticker pass; returns the new (last_save, last_refresh) times."""
        now = time.monotonic()
        if now - started >= self._timing.start_grace_s:
            with self._lock:  # decided and queued in one step, as in on_records
                decisions = self._detector.tick(self._clock())
                if decisions:
                    self._submit(decisions, None)
        if now - last_save >= self._timing.save_state_s:
            last_save = now
            self._save_state()
        if self._parked or self._last_queued:  # release due triggers, forget quiet keys
            self._queue_parked(due_by=now)
        if now - last_refresh >= self._timing.refresh_context_s:
            last_refresh = now
            self._refresh_contexts()
        return last_save, last_refresh

    def _save_state(self, everything: bool = False) -> None:
        """Queue the detector states for saving, behind every trigger they have seen: parked
        (rate-limited) triggers are queued first, under the same lock as new decisions."""
        with self._lock:
            self._queue_parked()
            changed = self._detector.snapshots()
            if changed or everything:
                self._put(changed)

    def _refresh_contexts(self) -> None:
        try:
            with connect(self._url, autocommit=True) as conn:
                if (self._history is None or time.monotonic() - self._history_at
                        >= self._timing.refresh_history_s):
                    self._history = load_history(conn, self._sites)
                    self._history_at = time.monotonic()
                contexts = load_contexts(conn, self._settings, self._sites, self._history)
                if self._on_refresh is not None:
                    self._on_refresh(conn)
        except psycopg.OperationalError as exc:
            logger.warning("resident contexts not refreshed: %s", exc)
            return
        with self._lock:
            previous, self._contexts = self._contexts, contexts
            for rid in previous.keys() | contexts.keys():
                if previous.get(rid) != contexts.get(rid):
                    self._detector.refresh(rid)

    def settings_of(self, resident_id: int) -> AlertSettings:
        """Effective settings of a resident (platform defaults if unknown)."""
        ctx = self._contexts.get(resident_id)
        return ctx.settings if ctx is not None else self._settings

    # --- worker --------------------------------------------------------------------

    def _run_worker(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._work(item)
            finally:
                with self._qlock:
                    self._unfinished -= 1
        if self._conn is not None:
            self._conn.close()

    def _work(self, item: _Item) -> None:
        """Store one queued item: detector states, a (merged) trigger, or a decision."""
        if item is None:
            return
        if isinstance(item, dict):
            self._with_retry(functools.partial(_save, states=item), None)
            return
        if isinstance(item, _Pending):
            stored = [self._with_retry(functools.partial(self._store, decision=trig), trig)
                      for trig in self._take(item)]
            self.stored += 1
            self._release_unless_lost(item.token, stored[0])
            return
        decision, token = item
        ok = self._with_retry(functools.partial(self._store, decision=decision), decision)
        self.stored += 1
        self._release_unless_lost(token, ok or not isinstance(decision, AlertTrigger))

    def _release_unless_lost(self, token: int | None, stored: bool) -> None:
        """Release a message to the ack gate, unless the alarm it raised could not be stored:
        then it stays unacknowledged (no PUBACK, no alarm receipt), the device keeps
        repeating and the broker redelivers it to the next run."""
        if token is None:
            return
        if stored:
            self._release(token)
        else:
            logger.error("alert not stored: its message stays unacknowledged (redelivered on "
                         "the next connection)")

    def _store(self, conn: psycopg.Connection[Any], *, decision: Decision) -> None:
        now = self._clock()
        settings = self.settings_of(decision.resident_id)
        if isinstance(decision, AlertTrigger):
            result = store_trigger(conn, decision, settings, now)
            if result is not None:
                what = ("suppressed (refractory)" if result.suppressed
                        else "opened" if result.created else "repeated")
                logger.info("alert %d %s %s for resident %d", result.alert_id, what,
                            decision.type, decision.resident_id)
                self._alarm_stored(decision, result.alert_id)
        elif isinstance(decision, AlertCancel):
            store_cancel(conn, decision, settings, now)
        elif isinstance(decision, AlertClear):
            store_clear(conn, decision, now)

    def _alarm_stored(self, trig: AlertTrigger, alert_id: int) -> None:
        """Name the alert in the device's alarm receipt (alerts/receipts.py), sent once the
        message is released: the device learns which alert its press opened or joined."""
        if (self._on_alarm_stored is not None and trig.device_id is not None
                and trig.source_seq is not None):
            self._on_alarm_stored(trig.device_id, trig.source_seq, alert_id)

    def _with_retry(self, action: Callable[[psycopg.Connection[Any]], None],
                    decision: Decision | None) -> bool:
        """Run `action` until it succeeds (True), retrying while the database is unreachable
        or refuses every write (outage, read-only failover, a schema not yet migrated: alarms
        go to the bus and direct channels meanwhile). An item the database refuses for its
        own sake (bad data, a constraint) or a bug is logged and skipped (False): retrying it
        forever would hold back every other resident's alarms. A skipped trigger's message
        is then never acknowledged (see _run_worker), so the broker keeps it."""
        delay = 0.05
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self._url, autocommit=True)
                action(self._conn)
                if self._db_down.is_set():
                    logger.warning("database is back; alerts are being stored again")
                    self._db_down.clear()
                    self._direct_sent.clear()
                return True
            except (psycopg.DataError, psycopg.IntegrityError):
                self._skip(decision)
                return False
            except psycopg.DatabaseError as exc:
                if not self._db_down.is_set():
                    logger.error("cannot store alerts (%s); retrying, notifying directly", exc)
                    self._db_down.set()
                if isinstance(decision, AlertTrigger):
                    self._notify_direct(AlertEvent.raised(decision))
                if self._conn is not None and not self._conn.closed:
                    self._conn.close()
                self._conn = None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                self._skip(decision)
                return False

    def _skip(self, decision: Decision | None) -> None:
        """Log an item that cannot be stored; tell people directly about a trigger (the bus
        announced it live already)."""
        self.failed += 1
        logger.exception("could not store %s; skipped", decision or "detector states")
        if isinstance(decision, AlertTrigger):
            self._notify_direct(AlertEvent.raised(decision))
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    @property
    def database_down(self) -> bool:
        """True while the worker cannot reach the database."""
        return self._db_down.is_set()


def _save(conn: psycopg.Connection[Any], *, states: dict[int, dict[str, Any]]) -> None:
    save_states(conn, states)

