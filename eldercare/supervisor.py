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
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
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


@dataclass
class Child:
    """A supervised child: how to start it, its running process and its restart policy."""

    name: str
    start: Starter
    policy: RestartPolicy
    process: ManagedProcess | None = None


class Supervisor:
    """Starts children in order, restarts the ones that exit, stops them in reverse order."""

    def __init__(self, clock: Monotonic = time.monotonic, backoff: Backoff | None = None
                 ) -> None:
        self._clock = clock
        self._backoff = backoff or Backoff()
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
        """Notice exits and run the restarts that are due; never raises for a child."""
        for child in self.children:
            now = self._clock()
            proc = child.process
            if proc is not None and not proc.alive():
                self._on_exit(child, proc, now)
            if child.process is None and child.policy.due(now):
                self._restart(child, now)

    def _on_exit(self, child: Child, proc: ManagedProcess, now: float) -> None:
        child.process = None
        delay = child.policy.exited(now)
        cause = exit_cause(proc.proc.returncode)
        if child.policy.crash_looping:
            logger.error("%s exited (%s); it keeps failing (%d times in a row), restarting "
                         "in %.1fs", child.name, cause, child.policy.failures, delay)
        else:
            logger.warning("%s exited (%s); restarting in %.1fs", child.name, cause, delay)

    def _restart(self, child: Child, now: float) -> None:
        try:
            child.process = child.start()
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
        """Stop every child, the last started first (the web app before the database)."""
        for child in reversed(self.children):
            if child.process is not None:
                child.process.stop()
                child.process = None
