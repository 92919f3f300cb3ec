"""Keep the platform's processes running: restart a crashed child with capped backoff.

`eldercare serve`/`demo` start the embedded broker and database, the pipeline, the web app,
the jobs and (demo) the simulators as children. One child's crash must never take the
others down (the duty screen above all), so a child that exits is started again:

- the first restart comes after `Backoff.initial` (0.5 s): a crashed child is back within
  seconds;
- each further consecutive failure doubles the wait, up to `Backoff.cap` (30 s), so a child
  that cannot start (a broken config, a port taken) is retried for ever without burning
  the CPU, and logged as crash-looping;
- a child that ran `Backoff.reset_after_s` (60 s) before it exited counts as healthy again:
  its next restart is quick.

The policy (`RestartPolicy`) is pure: a function of exits and an injected monotonic clock,
tested without processes. `Supervisor` is the thin part that polls real processes.

A restart can block: an embedded PostgreSQL is started and then waited for until it accepts
logins (1-3 s, up to 60 s). So restarts run off the polling loop, each child's on its own
restart thread, and polling (and the restarts of other children) goes on meanwhile. The
threads only call the start function; all bookkeeping stays on the polling thread, which
collects a finished restart at its next poll. A child whose restart is in progress is not
restarted again. Shutdown stops the children in reverse order and, reaching one whose restart
is in progress, waits for it and stops what it started.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from eldercare.embedded import ManagedProcess

logger = logging.getLogger(__name__)

Monotonic = Callable[[], float]
Starter = Callable[[], ManagedProcess]


@dataclass(frozen=True)
class Backoff:
    """How long to wait before restarting a child that failed `n` times in a row."""

    initial_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    reset_after_s: float = 60.0
    crash_loop_after: int = 5

    def delay(self, failures: int) -> float:
        """Wait before restart number `failures` (1 = the first restart after a crash)."""
        return float(min(self.cap_s, self.initial_s * self.factor ** max(0, failures - 1)))


def exit_cause(returncode: int | None) -> str:
    """`exit code 3` or `signal SIGKILL`: what the log says about why a child went away."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class RestartPolicy:
    """When one child is restarted: pure bookkeeping over its exits and start attempts."""

    name: str
    backoff: Backoff = field(default_factory=Backoff)
    failures: int = 0
    started_at: float | None = None
    down_since: float | None = None
    restart_at: float | None = None
    restarts: int = 0

    def started(self, now: float) -> None:
        """The child is running (again)."""
        self.started_at = now
        self.down_since = None
        self.restart_at = None

    def exited(self, now: float) -> float:
        """The child went away at `now`: schedule its restart; return the delay."""
        ran = now - self.started_at if self.started_at is not None else 0.0
        if ran >= self.backoff.reset_after_s:
            self.failures = 0  # it ran long enough to count as healthy: restart at once
        return self._schedule(now)

    def start_failed(self, now: float) -> float:
        """A restart attempt raised (port taken, service not ready): try again later."""
        return self._schedule(now)

    def _schedule(self, now: float) -> float:
        self.failures += 1
        self.started_at = None
        if self.down_since is None:
            self.down_since = now
        delay = self.backoff.delay(self.failures)
        self.restart_at = now + delay
        return delay

    def due(self, now: float) -> bool:
        """Whether a restart is scheduled and its time has come."""
        return self.restart_at is not None and now >= self.restart_at

    @property
    def crash_looping(self) -> bool:
        """Failed so often in a row that the waits have reached (or near) the cap."""
        return self.failures >= self.backoff.crash_loop_after


class _RestartThread:
    """Runs one child's restarts, one at a time, off the polling loop.

    Long-lived on purpose (started at the child's first restart, ended by `close`): the
    children of `serve` die with the *thread* that started them (PR_SET_PDEATHSIG fires when
    the forking thread ends, not the process), so a thread per restart would have the child
    it just started killed as soon as it returned.
    """

    def __init__(self, name: str, start: Starter) -> None:
        self._start = start
        self._requests: queue.SimpleQueue[Future[ManagedProcess] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"restart-{name}", daemon=True)
        self._thread.start()

    def submit(self) -> Future[ManagedProcess]:
        """Start the child on this thread; the future holds its process or why it failed."""
        future: Future[ManagedProcess] = Future()
        self._requests.put(future)
        return future

    def _run(self) -> None:
        while (future := self._requests.get()) is not None:
            if not future.set_running_or_notify_cancel():
                continue  # cancelled by shutdown before it began
            try:
                future.set_result(self._start())
            except BaseException as exc:  # reported by the polling thread, not here
                future.set_exception(exc)

    def close(self) -> None:
        """End the thread once its restart, if any, is done (its children are stopped)."""
        self._requests.put(None)
        self._thread.join()


@dataclass
class Child:
    """A supervised child: how to start it, its running process and its restart policy."""

    name: str
    start: Starter
    policy: RestartPolicy
    process: ManagedProcess | None = None
    restarting: Future[ManagedProcess] | None = None
    restart_thread: _RestartThread | None = None


class Supervisor:
    """Starts children in order, restarts the ones that exit, stops them in reverse order.

    `add`, `poll` and `stop_all` are called from one thread (the owner's loop); only the
    start functions of restarts run elsewhere.
    """

    def __init__(self, clock: Monotonic = time.monotonic, backoff: Backoff | None = None
                 ) -> None:
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._stopping = False
        self.children: list[Child] = []

    def add(self, name: str, start: Starter, process: ManagedProcess | None = None) -> Child:
        """Supervise `name`; start it now unless `process` is its already-running process."""
        child = Child(name, start, RestartPolicy(name, self._backoff))
        self.children.append(child)
        if process is None:
            process = start()  # a failure at first start is the caller's to report
        child.process = process
        child.policy.started(self._clock())
        return child

    def poll(self) -> None:
        """Collect finished restarts, notice exits and begin the restarts that are due;
        never blocks on a restart and never raises for a child."""
        if self._stopping:
            return
        for child in self.children:
            self._collect(child)
            now = self._clock()
            proc = child.process
            if proc is not None and not proc.alive():
                self._on_exit(child, proc, now)
            if child.process is None and child.restarting is None and child.policy.due(now):
                self._begin_restart(child)

    def _on_exit(self, child: Child, proc: ManagedProcess, now: float) -> None:
        child.process = None
        delay = child.policy.exited(now)
        cause = exit_cause(proc.proc.returncode)
        if child.policy.crash_looping:
            logger.error("%s exited (%s); it keeps failing (%d times in a row), restarting "
                         "in %.1fs", child.name, cause, child.policy.failures, delay)
        else:
            logger.warning("%s exited (%s); restarting in %.1fs", child.name, cause, delay)

    def _begin_restart(self, child: Child) -> None:
        if child.restart_thread is None:
            child.restart_thread = _RestartThread(child.name, child.start)
        child.restarting = child.restart_thread.submit()

    def _collect(self, child: Child) -> None:
        """Take over the outcome of a restart that has finished since the last poll."""
        future = child.restarting
        if future is None or not future.done():
            return
        child.restarting = None
        try:
            child.process = future.result()
        except Exception as exc:  # a child that cannot start must not stop the others
            delay = child.policy.start_failed(self._clock())
            logger.error("%s could not be restarted: %s; next attempt in %.1fs",
                         child.name, exc, delay)
            return
        child.policy.restarts += 1
        child.policy.started(self._clock())
        logger.warning("%s restarted (pid %d, restart #%d)", child.name,
                       child.process.proc.pid, child.policy.restarts)

    def down(self) -> dict[str, float]:
        """Children not running now, with the monotonic time since which they are down."""
        return {c.name: c.policy.down_since for c in self.children
                if c.process is None and c.policy.down_since is not None}

    def stop_all(self) -> None:
        """Stop every child, the last started first (the web app before the database).

        No restart begins once this has been called. A restart in progress is waited for
        when its child's turn comes, and what it started is stopped: a restart that finishes
        after shutdown began must not leave a process running.
        """
        self._stopping = True
        for child in reversed(self.children):
            self._settle_restart(child)
            if child.process is not None:
                child.process.stop()
                child.process = None
            if child.restart_thread is not None:
                child.restart_thread.close()
                child.restart_thread = None

    def _settle_restart(self, child: Child) -> None:
        """At shutdown: cancel the child's restart if it has not begun, else wait for it and
        keep its process (to be stopped)."""
        future, child.restarting = child.restarting, None
        if future is None or future.cancel():
            return
        if not future.done():
            logger.info("waiting for the %s restart in progress, to stop it", child.name)
        try:
            child.process = future.result()
        except Exception as exc:
            logger.warning("%s restart failed during shutdown: %s", child.name, exc)
