"""`simulate()`: the four simulation modes behind `eldercare simulate`, with a summary.

* realtime: the homes in real time, with incidents and their ground truth (the demo);
* accelerated: replay `days` of simulated time as fast as the broker takes it, device
  timestamps in simulated time (ending now, so the platform accepts them);
* fleet: realtime for thousands of homes from one network thread; reports the achieved
  message rate against the expected one;
* load: a fixed total telemetry rate across the fleet (no heartbeats, no incidents).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Literal, Never

from tqdm import tqdm

from gateway.provisioning import DeviceCredentials
from simulators.clock import Clock, ManualClock, system_clock
from simulators.engine import DEFAULT_WINDOW, Engine, ReplayStats
from simulators.incidents import ALL_TYPES, Incident, IncidentType, plan_incidents
from simulators.incidents import write_ground_truth as _write_truth
from simulators.timeline import Action, fleet_timeline

logger = logging.getLogger(__name__)

Mode = Literal["realtime", "accelerated", "fleet", "load"]
MODES: tuple[Mode, ...] = ("realtime", "accelerated", "fleet", "load")
INCIDENT_HORIZON = timedelta(days=7)  # incidents planned ahead when running until stopped
STOPPED_DRAIN_S = 5.0  # after Ctrl-C, wait at most this long for the last acknowledgements


@dataclass
class SimulationSummary:
    """What a simulation run did (the CLI prints `lines()`)."""

    mode: str
    homes: int
    devices: int
    connected: int
    sim_start: datetime
    sim_end: datetime
    wall_s: float
    messages: dict[str, int] = field(default_factory=dict)
    incidents: dict[str, int] = field(default_factory=dict)
    truth_path: Path | None = None
    readings: int = 0
    readings_dropped: int = 0
    unacked: int = 0
    sos_acks: int = 0
    target_rate: float | None = None
    achieved_rate: float = 0.0
    max_lag_s: float = 0.0

    @property
    def total_messages(self) -> int:
        """Messages published, all kinds."""
        return sum(self.messages.values())

    @property
    def total_incidents(self) -> int:
        """Incidents injected, all types."""
        return sum(self.incidents.values())

    def lines(self) -> list[str]:
        """A human-readable summary, one line per aspect."""
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.messages.items())) or "none"
        incs = ", ".join(f"{k}={v}" for k, v in sorted(self.incidents.items())) or "none"
        rate = f"{self.achieved_rate:.0f} msg/s acknowledged"
        if self.target_rate:
            rate += (f" (scheduled {self.target_rate:.0f}, "
                     f"{100 * self.achieved_rate / self.target_rate:.0f}%; at most "
                     f"{self.max_lag_s:.2f} s behind schedule)")
        return [
            f"mode {self.mode}: {self.homes} homes, {self.connected}/{self.devices} devices "
            f"connected",
            f"simulated {self.sim_start:%Y-%m-%d %H:%M:%S} to {self.sim_end:%Y-%m-%d %H:%M:%S} "
            f"UTC in {self.wall_s:.1f} s wall time",
            f"messages sent: {self.total_messages} ({kinds}); {rate}",
            f"readings measured: {self.readings} ({self.readings_dropped} dropped, "
            f"{self.unacked} messages unacknowledged at the end)",
            f"incidents injected: {self.total_incidents} ({incs})",
            f"ground truth: {self.truth_path if self.truth_path else 'not written'}",
        ]


def _progress_bar(total_s: float | None, progress: bool) -> tqdm[Never]:
    enabled = progress and sys.stderr.isatty()
    return tqdm(total=round(total_s) if total_s else None, unit="sim-s", disable=not enabled,
                dynamic_ncols=True, mininterval=0.5)


def simulate(mode: Mode, creds: Sequence[DeviceCredentials], host: str, port: int,
             stop: threading.Event, *, start: datetime | None = None,
             days: float | None = None, duration_s: float | None = None,
             telemetry_period_s: float = 5.0, heartbeat_s: int = 60,
             rate: float | None = None, seed: int = 1, truth_path: Path | None = None,
             incidents_per_home_day: float | None = 0.5,
             incident_types: Iterable[IncidentType] = ALL_TYPES,
             incidents: Sequence[Incident] | None = None, window: int = DEFAULT_WINDOW,
             resident_tz: tzinfo = UTC, connect_timeout_s: float = 30.0,
             drain_timeout_s: float = 60.0, progress: bool = True,
             clock: Clock = system_clock) -> SimulationSummary:
    """Run one simulation mode until its span ends or `stop` is set; return a summary.

    `days`/`duration_s` set the simulated span (accelerated: default 1 day ending now;
    realtime, fleet and load run until stopped when neither is given). Incidents are
    planned from `seed` (`incidents_per_home_day=None`: one of each type per home, 0: none)
    unless given, and their ground truth is written to `truth_path` (JSON Lines).
    `start` fixes the simulated start (an aware datetime); `clock` is the real time the
    default start is derived from, injected so a run (and a test) need not depend on the
    hour it is started at.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    span = _span(days, duration_s)
    now = clock()
    if mode == "accelerated":
        span = span or timedelta(days=1)
        start = start or (now - span).replace(second=0, microsecond=0)
    else:
        start = start or now
    end = start + span if span else None
    if mode == "accelerated" and end is not None and end > now + timedelta(minutes=5):
        logger.warning("accelerated replay ends %s, in the future: the platform will treat "
                       "those device clocks as implausible and store receive times", end)
    clock = ManualClock(start)
    engine = Engine(creds, host, port, clock=clock, seed=seed, heartbeat_s=heartbeat_s,
                    resident_tz=resident_tz)
    period, heartbeat, spread = _shape(mode, engine, telemetry_period_s, heartbeat_s, rate)
    if mode == "load":
        planned: list[Incident] = []
    elif incidents is not None:
        planned = list(incidents)
    elif incidents_per_home_day == 0:
        planned = []
    else:
        planned = plan_incidents(engine.specs, start, end or start + INCIDENT_HORIZON, seed,
                                 types=incident_types, per_home_per_day=incidents_per_home_day)
    scripts = engine.scripts(planned)
    actions = fleet_timeline(scripts, start, end, telemetry_period_s=period,
                             heartbeat_s=heartbeat, seed=seed, spread=spread)
    wall0 = time.monotonic()
    stats = ReplayStats()
    connected = 0
    busy_s, acked = 0.0, 0
    try:
        connected = engine.connect(connect_timeout_s, stop)
        busy0, acked0 = time.monotonic(), engine.loop.acked
        stats = _replay(engine, actions, stop, mode, start, end, window, progress)
        engine.drain(min(drain_timeout_s, STOPPED_DRAIN_S) if stop.is_set() else drain_timeout_s)
        busy_s, acked = time.monotonic() - busy0, engine.loop.acked - acked0
    finally:
        reached = stats.reached or start
        injected = [i for i in planned if i.start <= reached]
        if truth_path is not None:
            _write_truth(injected, truth_path)
        unacked = engine.loop.inflight
        engine.close()
    sim_s = ((end or reached) - start).total_seconds()
    target = rate if mode == "load" else (
        stats.published / sim_s if mode in ("fleet", "realtime") and sim_s > 0 else None)
    summary = SimulationSummary(
        mode=mode, homes=len(engine.specs), devices=len(engine.devices), connected=connected,
        sim_start=start, sim_end=reached, wall_s=time.monotonic() - wall0,
        messages=engine.messages(), incidents=dict(Counter(i.type.value for i in injected)),
        truth_path=truth_path, readings=stats.readings,
        readings_dropped=sum(b.dropped for b in engine.beds), unacked=unacked,
        sos_acks=sum(len(d.acks) for d in engine.devices.values()), target_rate=target,
        achieved_rate=acked / busy_s if busy_s > 0 else 0.0, max_lag_s=stats.max_lag_s)
    logger.info("simulation finished: %s", "; ".join(summary.lines()))
    return summary


def _span(days: float | None, duration_s: float | None) -> timedelta | None:
    if days is not None and duration_s is not None:
        raise ValueError("give days or duration_s, not both")
    if days is not None:
        return timedelta(days=days)
    if duration_s is not None:
        return timedelta(seconds=duration_s)
    return None


def _shape(mode: Mode, engine: Engine, period: float, heartbeat_s: int, rate: float | None
           ) -> tuple[float, float | None, Literal["random", "even"]]:
    """Telemetry period, heartbeat and bed phases for a mode."""
    beds = len(engine.beds)
    if mode == "load":
        if not rate or rate <= 0:
            raise ValueError("load mode needs a positive rate (messages per second)")
        if beds == 0:
            raise ValueError("load mode needs bed sensors")
        return beds / rate, None, "even"
    return period, float(heartbeat_s), "random"


def _replay(engine: Engine, actions: Iterable[Action], stop: threading.Event, mode: Mode,
            start: datetime, end: datetime | None, window: int, progress: bool
            ) -> ReplayStats:
    total = (end - start).total_seconds() if end else None
    with _progress_bar(total, progress) as bar:
        shown = [0]

        def on_progress(t: datetime) -> None:
            done = int((t - start).total_seconds())
            if done > shown[0]:
                bar.update(done - shown[0])
                shown[0] = done

        pace = None if mode == "accelerated" else 1.0
        return engine.replay(actions, stop, pace=pace, window=window, on_progress=on_progress)
