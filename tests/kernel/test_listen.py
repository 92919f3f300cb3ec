"""The LISTEN-with-backoff worker: its pure backoff policy, and the worker on a real PostgreSQL
(NOTIFY from another connection, a terminated backend, a failing cycle, stop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pytest

from kernel import db
from kernel.db import AsyncConn, Conn
from kernel.listen import AsyncListener, Backoff, ListenWorker, Notify, random_share
from tests.support.wait import wait_until

# --- the backoff policy (pure) -----------------------------------------------------------


def test_backoff_doubles_up_to_its_ceiling_and_resets() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.delay() == 0.5


def test_backoff_with_a_fixed_delay() -> None:
    backoff = Backoff(2.0, 2.0)
    assert [backoff.delay() for _ in range(3)] == [2.0, 2.0, 2.0]


def test_jitter_shapes_each_delay_but_not_the_doubling() -> None:
    backoff = Backoff(1.0, 8.0, jitter=lambda d: d / 2)
    assert [backoff.delay() for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]


def test_random_share_keeps_half_to_all_of_the_delay() -> None:
    shares = [random_share(4.0) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in shares)


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_backoff_refuses_nonsense(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(low, high)


# --- the worker on a real database --------------------------------------------------------


@dataclass
class Owner:
    """What a worker's owner sees: connects (backend pids), cycles, notifications, failures."""

    cycle_s: float = 3600.0
    pids: list[int] = field(default_factory=list)
    cycles: int = 0
    notes: list[tuple[str, str]] = field(default_factory=list)
    lost: list[tuple[Exception, float]] = field(default_factory=list)
    closed: list[Conn | None] = field(default_factory=list)
    fail_next_cycle: bool = False
    woken: threading.Event = field(default_factory=threading.Event)

    def on_connect(self, conn: Conn) -> None:
        self.pids.append(conn.info.backend_pid)

    def cycle(self, _conn: Conn) -> float:
        self.cycles += 1
        if self.fail_next_cycle:
            self.fail_next_cycle = False
            raise ValueError("a bug in the cycle")
        return self.cycle_s

    def on_notify(self, note: Notify) -> None:
        self.notes.append((note.channel, note.payload))

    def on_lost(self, exc: Exception, delay: float) -> None:
        self.lost.append((exc, delay))

    def on_close(self, conn: Conn | None) -> None:
        self.closed.append(conn)
        if conn is not None:
            conn.execute("SELECT 1")  # still usable: the owner finishes its work on it


def topics() -> tuple[str, str]:
    """Two notify topics of this test alone (the session database is shared)."""
    tag = uuid.uuid4().hex[:8]
    return f"kernel_a_{tag}", f"kernel_b_{tag}"


def notify(url: str, topic: str, payload: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (topic, payload))


@contextmanager
def running(url: str, owner: Owner, listen_on: tuple[str, ...],
            backoff: Backoff | None = None,
            wake: Callable[[], bool] | None = None) -> Iterator[ListenWorker]:
    worker = ListenWorker(url, listen_on, name="test-listen", cycle=owner.cycle,
                          backoff=backoff or Backoff(0.05, 0.2), on_connect=owner.on_connect,
                          on_notify=owner.on_notify, on_lost=owner.on_lost,
                          on_close=owner.on_close, wake=wake or owner.woken.is_set)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
    assert not worker.is_alive()


def test_notifications_from_another_connection_reach_the_owner(database_url: str) -> None:
    a, b = topics()
    owner = Owner()
    with running(database_url, owner, (a, b)):
        wait_until(lambda: owner.pids, what="worker connected")
        notify(database_url, a, "one")
        notify(database_url, b, "two")
        wait_until(lambda: len(owner.notes) == 2, what="both notifications")
        notify(database_url, "kernel_not_listened", "three")
        notify(database_url, a, "four")
        wait_until(lambda: len(owner.notes) == 3, what="the next notification")
    assert owner.notes == [(a, "one"), (b, "two"), (a, "four")]
    assert owner.cycles >= 2  # each notification ends a wait, and a cycle follows
    assert owner.lost == []


def test_the_cycle_decides_how_long_to_wait(database_url: str) -> None:
    owner = Owner(cycle_s=0.01)
    with running(database_url, owner, topics()):
        wait_until(lambda: owner.cycles >= 5, what="cycles without notifications")


def test_wake_ends_a_wait(database_url: str) -> None:
    owner = Owner()  # an hour between cycles unless woken
    with running(database_url, owner, topics()):
        wait_until(lambda: owner.cycles == 1, what="first cycle")
        owner.woken.set()
        wait_until(lambda: owner.cycles >= 2, what="a cycle after wake")


def test_survives_a_terminated_backend_and_resyncs(database_url: str) -> None:
    a, _ = topics()
    owner = Owner()
    with running(database_url, owner, (a,)):
        first = wait_until(lambda: owner.pids, what="worker connected")[0]
        with db.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (first,))
        wait_until(lambda: len(owner.pids) == 2, timeout=30, what="reconnected")
        assert owner.pids[1] != first
        assert isinstance(owner.lost[0][0], psycopg.OperationalError)
        assert owner.lost[0][1] == 0.05
        notify(database_url, a, "after")  # listening again on the new connection
        wait_until(lambda: owner.notes == [(a, "after")], what="notification after reconnect")


def test_a_failing_cycle_reconnects_with_backoff(database_url: str) -> None:
    owner = Owner(fail_next_cycle=True)
    with running(database_url, owner, topics()):
        wait_until(lambda: len(owner.pids) == 2, timeout=30, what="reconnected after the bug")
    assert [type(exc) for exc, _ in owner.lost] == [ValueError]


def test_backoff_grows_while_the_database_is_away_and_stop_still_works() -> None:
    owner = Owner()
    unreachable = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    with running(unreachable, owner, topics(), backoff=Backoff(0.01, 0.04)):
        wait_until(lambda: len(owner.lost) >= 4, timeout=30, what="four failed connects")
    assert [delay for _, delay in owner.lost[:4]] == [0.01, 0.02, 0.04, 0.04]
    assert owner.pids == [] and owner.closed == [None]


def test_on_close_gets_the_live_connection(database_url: str) -> None:
    owner = Owner()
    with running(database_url, owner, topics()):
        wait_until(lambda: owner.cycles, what="first cycle")
    assert len(owner.closed) == 1 and owner.closed[0] is not None
    assert owner.closed[0].closed  # the worker closed it after on_close


def test_an_on_lost_that_raises_ends_the_worker(database_url: str) -> None:
    owner = Owner(fail_next_cycle=True)

    def give_up(exc: Exception, _delay: float) -> None:
        raise exc

    worker = ListenWorker(database_url, topics(), name="test-listen-fatal", cycle=owner.cycle,
                          backoff=Backoff(0.05, 0.2), on_connect=owner.on_connect,
                          on_lost=give_up)
    seen: list[type[BaseException]] = []
    hook, threading.excepthook = threading.excepthook, lambda a: seen.append(a.exc_type)
    try:
        worker.start()
        wait_until(lambda: not worker.is_alive(), what="the worker to end")
    finally:
        threading.excepthook = hook
    assert seen == [ValueError] and len(owner.pids) == 1


# --- the same loop for asyncio code -------------------------------------------------------


async def until(fn: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Wait on the event loop until `fn()` is true (fail after a generous deadline)."""
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class AsyncOwner:
    """What an AsyncListener's owner sees."""

    url: str
    pids: list[int] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    idles: int = 0
    lost: list[tuple[Exception, float]] = field(default_factory=list)

    async def connect(self) -> AsyncConn:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def on_connect(self, conn: AsyncConn) -> None:
        self.pids.append(conn.info.backend_pid)

    async def on_idle(self, conn: AsyncConn) -> None:
        self.idles += 1
        await conn.execute("SELECT 1")  # a dead connection raises here

    def on_notify(self, note: Notify) -> None:
        self.notes.append((note.channel, note.payload))

    def on_lost(self, exc: Exception, delay: float) -> None:
        self.lost.append((exc, delay))

    def listener(self, listen_on: tuple[str, ...], backoff: Backoff) -> AsyncListener:
        return AsyncListener(self.connect, listen_on, backoff=backoff, on_notify=self.on_notify,
                             on_lost=self.on_lost, idle_s=0.05, on_connect=self.on_connect,
                             on_idle=self.on_idle)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_async_listener_survives_a_terminated_backend(database_url: str) -> None:
    a, b = topics()
    owner = AsyncOwner(database_url)

    async def scenario() -> None:
        task = asyncio.create_task(owner.listener((a, b), Backoff(0.05, 0.2)).run())
        try:
            await until(lambda: owner.pids, "listener connected")
            await asyncio.to_thread(notify, database_url, b, "one")
            await until(lambda: owner.notes == [(b, "one")], "first notification")
            await until(lambda: owner.idles, "an idle check")
            with db.connect(database_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (owner.pids[0],))
            await until(lambda: len(owner.pids) == 2, "reconnected")
            await asyncio.to_thread(notify, database_url, a, "two")
            await until(lambda: owner.notes == [(b, "one"), (a, "two")], "after reconnect")
        finally:
            await _cancel(task)
        assert task.cancelled()

    asyncio.run(scenario())
    assert owner.pids[0] != owner.pids[1]
    assert [(type(exc), delay) for exc, delay in owner.lost] == [
        (psycopg.OperationalError, 0.05)]


def test_async_listener_backs_off_while_the_database_is_away() -> None:
    owner = AsyncOwner("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")

    async def scenario() -> None:
        task = asyncio.create_task(owner.listener(topics(), Backoff(0.01, 0.04)).run())
        try:
            await until(lambda: len(owner.lost) >= 4, "four failed connects")
        finally:
            await _cancel(task)

    asyncio.run(scenario())
    assert [delay for _, delay in owner.lost[:4]] == [0.01, 0.02, 0.04, 0.04]
