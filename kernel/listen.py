"""One LISTEN-with-backoff worker: a thread that holds a database connection listening on
notify topics, runs its owner's cycle when notified (or when the cycle's wait runs out), and
reconnects with exponential backoff whenever the connection is lost.

Part of the shared kernel. The device registry (gateway), the escalation runner and the
notification dispatcher (alerts) all need exactly this loop; written once, the three behave
alike on a database restart: reconnect, LISTEN again, resynchronise (their `on_connect`),
carry on. `AsyncListener` is the same loop for asyncio code (the web app's live feed), with
the same `Backoff` policy. A notification only says "look again", so whatever was missed
while disconnected is caught up by `on_connect`, never by replaying notifications.

Vocabulary: PostgreSQL calls the name given to LISTEN/NOTIFY a "channel"; here it is a
*notify topic* (`listen_on`), because "channel" in this project means a notification
channel (alerts/notify) or a level of an MQTT topic (gateway.schema.Channel).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from kernel.db import AsyncConn, Conn, connect

logger = logging.getLogger(__name__)

Notify = psycopg.Notify
Cycle = Callable[[Conn], float]
"""Do the work that is due; return how long to wait for a notification before the next cycle
(0 runs the next cycle at once)."""
Lost = Callable[[Exception, float], None]
"""Told why the connection (or a cycle) failed and how long the worker waits before it
reconnects; called inside the `except` block, so `logger.exception` shows the traceback."""


def _as_is(delay: float) -> float:
    return delay


@dataclass
class Backoff:
    """Reconnect delays: `low` seconds, doubling up to `high`; back to `low` on `reset`.

    Pure (it never sleeps, the worker does). `jitter` maps each delay to the one used, e.g. a
    random share of it so that many processes do not reconnect in step; by default the
    delay itself, which keeps logs and tests predictable.
    """

    low: float
    high: float
    jitter: Callable[[float], float] = _as_is
    _next: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.low <= 0 or self.high < self.low:
            raise ValueError(f"backoff needs 0 < low <= high, got {self.low}, {self.high}")
        self._next = self.low

    def reset(self) -> None:
        """Start again from the shortest delay (after a successful connect)."""
        self._next = self.low

    def delay(self) -> float:
        """The next delay to wait; the one after it is twice as long (at most `high`)."""
        step = self._next
        self._next = min(self.high, step * 2)
        return self.jitter(step)


def random_share(delay: float) -> float:
    """Jitter for `Backoff`: a random 50 % to 100 % of `delay`, so that many processes
    that lost the same database do not all come back at the same instant."""
    return delay * (0.5 + secrets.randbelow(1000) / 2000)


def _nothing(_conn: Conn) -> None:
    pass


def _ignore(_note: Notify) -> None:
    pass


def _never() -> bool:
    return False


class ListenWorker:
    """A daemon thread: connect, LISTEN `listen_on`, `on_connect`, then cycles until stop().

    One round is `cycle(conn)` (the owner's work; it returns the longest wait), then a wait
    that ends at the first notification (the whole burst already received is handed to
    `on_notify`, one by one), when `wake()` turns true, when the wait runs out, or at
    stop(). The wait is cut into slices of `slice_s` seconds (a number or a function of the
    owner's state) so that stop() and `wake` are noticed promptly.

    Any exception (a lost connection, a failing cycle) closes the connection, goes to
    `on_lost` with the backoff delay, and the worker reconnects after that delay; the backoff
    resets once `on_connect` has succeeded. An `on_lost` that raises ends the thread instead
    (for an owner whose thread is watched, so that a bug is seen rather than retried). After
    stop(), `on_close` gets the live connection (None while disconnected) before it is
    closed, to finish its work on it.
    """

    def __init__(self, database_url: str, listen_on: Sequence[str], *, name: str,
                 cycle: Cycle, backoff: Backoff,
                 on_connect: Callable[[Conn], None] = _nothing,
                 on_notify: Callable[[Notify], None] = _ignore,
                 on_lost: Lost | None = None,
                 on_close: Callable[[Conn | None], None] | None = None,
                 slice_s: float | Callable[[], float] = 0.25,
                 wake: Callable[[], bool] = _never,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._url = database_url
        self._listen_on = tuple(listen_on)
        self._cycle = cycle
        self._backoff = backoff
        self._on_connect = on_connect
        self._on_notify = on_notify
        self._on_lost = on_lost or self._log_lost
        self._on_close = on_close
        self._slice = slice_s if callable(slice_s) else (lambda: float(slice_s))
        self._wake = wake
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the worker thread (it connects in the background)."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current cycle and wait up to `timeout` seconds for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    def _run(self) -> None:
        conn: Conn | None = None
        while not self._stop.is_set():
            try:
                conn = connect(self._url, autocommit=True)
                self._serve(conn)
            except Exception as exc:  # the worker must outlive any one failure
                if conn is not None:
                    conn.close()
                    conn = None
                delay = self._backoff.delay()
                self._on_lost(exc, delay)
                self._stop.wait(delay)
        try:
            if self._on_close is not None:
                self._on_close(conn)
        finally:
            if conn is not None:
                conn.close()

    def _serve(self, conn: Conn) -> None:
        for topic in self._listen_on:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(topic)))
        self._on_connect(conn)
        self._backoff.reset()
        while not self._stop.is_set():
            for note in self.wait(conn, self._cycle(conn)):
                self._on_notify(note)

    def wait(self, conn: Conn, seconds: float) -> list[Notify]:
        """Notifications received within `seconds` (empty at timeout, wake() or stop())."""
        deadline = self._monotonic() + seconds
        while not self._stop.is_set():
            remaining = deadline - self._monotonic()
            if remaining <= 0 or self._wake():
                return []
            notes = list(conn.notifies(timeout=min(remaining, self._slice()), stop_after=1))
            if notes:
                notes += conn.notifies(timeout=0)  # the rest of the burst, already here
                return notes
        return []

    def _log_lost(self, exc: Exception, delay: float) -> None:
        if isinstance(exc, psycopg.Error):
            logger.warning("%s: database connection lost (%s); reconnecting in %.1f s",
                           self.name, exc, delay)
        else:
            logger.exception("%s failed; restarting in %.1f s", self.name, delay)


async def _nothing_async(_conn: AsyncConn) -> None:
    pass


class AsyncListener:
    """The same loop for asyncio code: `await run()` until the task is cancelled.

    `connect()` opens an autocommit connection (the caller chooses its timeout and
    application name); the listener LISTENs `listen_on`, awaits `on_connect`, then hands
    every notification to `on_notify`. After `idle_s` seconds without one it awaits
    `on_idle(conn)` (e.g. a bounded `SELECT 1`: a quiet connection is proved alive, a dead
    one raises). Any exception goes to `on_lost` with the backoff delay, and the listener
    reconnects after that delay; the backoff resets once `on_connect` has succeeded.
    Cancellation (`CancelledError`) is not an exception here: it ends `run()`.
    """

    def __init__(self, connect: Callable[[], Awaitable[AsyncConn]], listen_on: Sequence[str],
                 *, backoff: Backoff, on_notify: Callable[[Notify], None],
                 on_lost: Lost, idle_s: float,
                 on_connect: Callable[[AsyncConn], Awaitable[None]] = _nothing_async,
                 on_idle: Callable[[AsyncConn], Awaitable[None]] = _nothing_async,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._connect = connect
        self._listen_on = tuple(listen_on)
        self._backoff = backoff
        self._on_notify = on_notify
        self._on_lost = on_lost
        self._idle_s = idle_s
        self._on_connect = on_connect
        self._on_idle = on_idle
        self._sleep = sleep

    async def run(self) -> None:
        """Hold the connection; reconnect with backoff whenever it is lost."""
        while True:
            try:
                await self._serve()
            except Exception as exc:  # the listener must outlive any one failure
                delay = self._backoff.delay()
                self._on_lost(exc, delay)
                await self._sleep(delay)

    async def _serve(self) -> None:
        conn = await self._connect()
        async with conn:
            for topic in self._listen_on:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(topic)))
            await self._on_connect(conn)
            self._backoff.reset()
            while True:
                async for note in conn.notifies(timeout=self._idle_s):
                    self._on_notify(note)
                await self._on_idle(conn)
