"""Run many simulated homes in real time from one process.

One scheduler thread (a heap of next-due times) drives every device: bed telemetry, status
heartbeats and demo incidents. Each paho client still runs its own network loop
(`loop_start`), which is fine for a demo of up to ~100 homes; for thousands use
`simulators.simulate` (fleet/load modes), which drives every connection from one thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType, to_epoch_ms
from simulators.clock import Clock, system_clock
from simulators.devices import DEFAULT_HEARTBEAT_S, BedSensorSim, CallButtonSim, DeviceSim
from simulators.resident import ResidentModel, derive_seed
from simulators.wire import wait_published

logger = logging.getLogger(__name__)

PROGRESS_LOG_S = 60.0


def _wait(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)


class Scheduler:
    """Single-threaded timer heap: runs callables when they are due.

    `now` and `wait` are injectable, so the same scheduler can run on real time (the
    default), on a manual clock in tests, or as fast as possible in a replay.
    """

    def __init__(self, now: Callable[[], float] = time.monotonic,
                 wait: Callable[[threading.Event, float], None] = _wait) -> None:
        self.now = now
        self._wait = wait
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(self, due: float, fn: Callable[[], object]) -> None:
        """Run `fn` at time `due` (on the scheduler's clock)."""
        heapq.heappush(self._heap, (due, next(self._order), fn))

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run `fn` after `delay` seconds."""
        self.call_at(self.now() + delay, fn)

    def every(self, period: float, fn: Callable[[], object], first_delay: float = 0.0) -> None:
        """Run `fn` every `period` seconds at a fixed rate; missed ticks are skipped, not piled."""
        if period <= 0:
            raise ValueError("period must be positive")

        def tick(due: float) -> None:
            fn()
            nxt = due + period
            now = self.now()
            if nxt < now:
                nxt = now + period
            self.call_at(nxt, lambda: tick(nxt))

        first = self.now() + first_delay
        self.call_at(first, lambda: tick(first))

    def run(self, stop: threading.Event, max_wait: float = 1.0) -> None:
        """Run due callables until `stop` is set; a failing callable is logged and skipped."""
        while not stop.is_set():
            if not self._heap:
                self._wait(stop, max_wait)
                continue
            due, _, fn = self._heap[0]
            delay = due - self.now()
            if delay > 0:
                self._wait(stop, min(delay, max_wait))
                continue
            heapq.heappop(self._heap)
            try:
                fn()
            except Exception:
                logger.exception("scheduled task failed")


@dataclass
class FleetStats:
    """What a fleet run did."""

    homes: int = 0
    devices: int = 0
    connected: int = 0  # connected at least once and not refused by the broker since
    refused: int = 0  # whose login the broker now refuses (revoked, wrong secret)
    messages: dict[str, int] = field(default_factory=dict)
    incidents: int = 0
    cancelled: int = 0
    acks: int = 0
    readings_dropped: int = 0
    duration_s: float = 0.0

    @property
    def total_messages(self) -> int:
        """Messages published, all types."""
        return sum(self.messages.values())

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One line for a log."""
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.messages.items())) or "none"
        refused = f" ({self.refused} refused by the broker)" if self.refused else ""
        return (f"{self.homes} homes, {self.connected}/{self.devices} devices connected"
                f"{refused}, "
                f"{self.total_messages} messages in {self.duration_s:.0f}s ({kinds}); "
                f"{self.incidents} SOS incidents, {self.cancelled} cancelled, "
                f"{self.acks} acknowledged")


@dataclass
class SimHome:
    """One resident's devices."""

    resident_id: int
    beds: list[BedSensorSim]
    buttons: list[CallButtonSim]

    @property
    def devices(self) -> list[DeviceSim]:
        """Every device in the home."""
        return [*self.beds, *self.buttons]


def group_by_resident(creds: Sequence[DeviceCredentials]
                      ) -> dict[int, list[DeviceCredentials]]:
    """Device credentials grouped per resident, in first-seen order."""
    homes: dict[int, list[DeviceCredentials]] = {}
    for c in creds:
        homes.setdefault(c.resident_id, []).append(c)
    return homes


def local_tz() -> tzinfo:
    """This machine's current UTC offset, as a tzinfo."""
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


class Fleet:
    """Simulated homes driven by one scheduler; `run_fleet` is the usual entry point."""

    def __init__(self, creds: Sequence[DeviceCredentials], host: str, port: int, *,
                 telemetry_period_s: float = 5.0, heartbeat_s: int = DEFAULT_HEARTBEAT_S,
                 sos_mean_interval_s: float | None = 180.0, cancel_probability: float = 0.3,
                 cancel_within_s: float = 30.0, seed: int = 1, clock: Clock = system_clock,
                 resident_tz: tzinfo | None = None,
                 site_tz: Mapping[str, tzinfo] | None = None) -> None:
        if telemetry_period_s <= 0:
            raise ValueError("telemetry_period_s must be positive")
        if heartbeat_s < 1:
            raise ValueError("heartbeat_s must be at least 1")
        if not 0.0 <= cancel_probability <= 1.0:
            raise ValueError("cancel_probability must be between 0 and 1")
        self.telemetry_period_s = telemetry_period_s
        self.heartbeat_s = heartbeat_s
        self.sos_mean_interval_s = sos_mean_interval_s
        self.cancel_probability = cancel_probability
        self.cancel_within_s = cancel_within_s
        self.scheduler = Scheduler()
        self._rng = random.Random(derive_seed("fleet", seed))
        self._incidents = 0
        self._cancelled = 0
        fallback_tz = resident_tz or local_tz()
        zones = dict(site_tz or {})
        # Real devices keep their counter across reboots; starting from the epoch milliseconds
        # means a restarted demo never reuses a seq (while it sends under 1000 messages/s).
        seq_start = to_epoch_ms(clock())
        self.homes: list[SimHome] = []
        for resident_id, home_creds in group_by_resident(creds).items():
            home = SimHome(resident_id, [], [])
            for c in home_creds:
                if c.type == DeviceType.BED_SENSOR.value:
                    tz = zones.get(c.site, fallback_tz)  # the resident lives on the site's clock
                    model = ResidentModel.random(derive_seed("resident", seed, resident_id), tz)
                    home.beds.append(BedSensorSim(
                        c, model, host=host, port=port, clock=clock, seed=seed,
                        heartbeat_s=heartbeat_s, seq_start=seq_start))
                elif c.type == DeviceType.CALL_BUTTON.value:
                    home.buttons.append(CallButtonSim(
                        c, host=host, port=port, clock=clock, seed=seed,
                        heartbeat_s=heartbeat_s, seq_start=seq_start))
                else:
                    logger.warning("skipping device %s of unknown type %r", c.device_id, c.type)
            if home.devices:
                self.homes.append(home)

    @property
    def devices(self) -> list[DeviceSim]:
        """Every simulated device."""
        return [d for h in self.homes for d in h.devices]

    def start(self, connect_timeout_s: float = 10.0, stop: threading.Event | None = None
              ) -> int:
        """Connect every device; wait (bounded) until they are ready; return how many are."""
        devices = self.devices
        for d in devices:
            d.connect()
        deadline = time.monotonic() + connect_timeout_s
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            if all(d.ready.is_set() for d in devices):
                break
            time.sleep(0.02)
        ready = sum(d.ready.is_set() for d in devices)
        if ready < len(devices):
            logger.warning("%d of %d devices not connected yet; they keep retrying and store "
                           "their readings meanwhile", len(devices) - ready, len(devices))
        logger.info("fleet: %d homes, %d/%d devices connected", len(self.homes), ready,
                    len(devices))
        return ready

    def run(self, stop: threading.Event) -> None:
        """Drive the devices until `stop` is set (in the calling thread)."""
        rng = self._rng
        sched = self.scheduler
        for home in self.homes:
            for bed in home.beds:
                sched.every(self.telemetry_period_s, bed.sample,
                            first_delay=rng.uniform(0, self.telemetry_period_s))
            for dev in home.devices:
                # A status went out on connect; spread the next ones over the heartbeat period.
                sched.every(self.heartbeat_s, dev.publish_status,
                            first_delay=self.heartbeat_s * rng.uniform(0.5, 1.0))
        if self.sos_mean_interval_s and any(h.buttons for h in self.homes):
            sched.call_later(rng.expovariate(1.0 / self.sos_mean_interval_s), self._incident)
        sched.every(PROGRESS_LOG_S, self._log_progress, first_delay=PROGRESS_LOG_S)
        sched.run(stop)

    def _incident(self) -> None:
        """A random resident presses SOS; some cancel it shortly after."""
        assert self.sos_mean_interval_s
        rng = self._rng
        home = rng.choice([h for h in self.homes if h.buttons])
        button = rng.choice(home.buttons)
        event = button.press_sos()
        self._incidents += 1
        logger.info("demo incident: resident %d pressed SOS on %s (seq %d)", home.resident_id,
                    button.device_id, event.seq)
        if rng.random() < self.cancel_probability:
            delay = rng.uniform(min(3.0, self.cancel_within_s), self.cancel_within_s)
            self.scheduler.call_later(delay, lambda: self._cancel(home.resident_id, button))
        self.scheduler.call_later(rng.expovariate(1.0 / self.sos_mean_interval_s),
                                  self._incident)

    def _cancel(self, resident_id: int, button: CallButtonSim) -> None:
        button.cancel_sos()
        self._cancelled += 1
        logger.info("demo incident: resident %d cancelled the SOS on %s", resident_id,
                    button.device_id)

    def _log_progress(self) -> None:
        logger.info("fleet: %s", self.stats().summary())

    def close(self, timeout: float = 5.0) -> None:
        """Announce every device offline, wait (bounded) for the broker, disconnect all."""
        devices = self.devices
        infos = [d.announce_offline() for d in devices]
        deadline = time.monotonic() + timeout
        for info in infos:
            if info is not None:
                wait_published(info, max(0.0, deadline - time.monotonic()))
        for d in devices:
            d.shutdown()

    def stats(self, duration_s: float = 0.0) -> FleetStats:
        """Counters so far."""
        devices = self.devices
        messages: Counter[str] = Counter()
        for d in devices:
            messages.update(d.sent)
        return FleetStats(
            homes=len(self.homes), devices=len(devices),
            connected=sum(d.connects > 0 and d.refused is None for d in devices),
            refused=sum(d.refused is not None for d in devices), messages=dict(messages),
            incidents=self._incidents, cancelled=self._cancelled,
            acks=sum(len(d.acks) for d in devices),
            readings_dropped=sum(b.dropped for h in self.homes for b in h.beds),
            duration_s=duration_s,
        )


def run_fleet(creds: Sequence[DeviceCredentials], host: str, port: int,
              stop: threading.Event, *, telemetry_period_s: float = 5.0,
              sos_mean_interval_s: float | None = 180.0, seed: int = 1,
              heartbeat_s: int = DEFAULT_HEARTBEAT_S, cancel_probability: float = 0.3,
              cancel_within_s: float = 30.0, clock: Clock = system_clock,
              resident_tz: tzinfo | None = None, connect_timeout_s: float = 10.0,
              site_tz: Mapping[str, tzinfo] | None = None) -> FleetStats:
    """Simulate every home in real time until `stop` is set; disconnect all; return stats."""
    fleet = Fleet(creds, host, port, telemetry_period_s=telemetry_period_s,
                  heartbeat_s=heartbeat_s, sos_mean_interval_s=sos_mean_interval_s,
                  cancel_probability=cancel_probability, cancel_within_s=cancel_within_s,
                  seed=seed, clock=clock, resident_tz=resident_tz, site_tz=site_tz)
    started = time.monotonic()
    try:
        fleet.start(connect_timeout_s, stop)
        fleet.run(stop)
    finally:
        fleet.close()
    return fleet.stats(time.monotonic() - started)
