"""Replays a timeline onto simulated devices, all driven from one network thread.

`Engine` builds one `BedSensorSim`/`CallButtonSim` per credential on a shared `NetLoop`
(each device keeps its own connection, credentials and client id) and a simulated clock.
`replay` applies the timeline's actions in order, either paced against the wall clock
(`pace=1.0`: real time) or as fast as the broker acknowledges (`pace=None`: at most
`window` QoS 1 messages unacknowledged; simulated time only advances as acks return).
Call buttons repeat unconfirmed alarms on simulated time: the shared loop has no per-device
timer threads, so the replay asks the buttons with alarms waiting after every action.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType, to_epoch_ms
from simulators.alarms import ALARM_EVENTS
from simulators.clock import ManualClock, system_clock
from simulators.devices import BedSensorSim, CallButtonSim, DeviceSim
from simulators.fleet import group_by_resident
from simulators.incidents import HomeScript, HomeSpec, Incident
from simulators.netloop import NetLoop
from simulators.resident import ResidentModel, derive_seed
from simulators.timeline import Action, ActionKind

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 1000  # unacknowledged QoS 1 messages across the fleet (paho mids wrap at 65535)
CONNECT_CHUNK = 100
RECONNECT_WAIT_S = 5.0  # accelerated: simulated time waits this long for a device to return


@dataclass
class ReplayStats:
    """What a replay did."""

    actions: int = 0
    readings: int = 0
    published: int = 0
    wall_s: float = 0.0
    max_lag_s: float = 0.0
    reached: datetime | None = None


class Engine:
    """Simulated homes on one network loop: build, connect, replay, drain, close."""

    def __init__(self, creds: Sequence[DeviceCredentials], host: str, port: int, *,
                 clock: ManualClock, seed: int = 1, heartbeat_s: int = 60,
                 resident_tz: tzinfo = UTC, loop: NetLoop | None = None,
                 keepalive: int = 60) -> None:
        self.loop = loop or NetLoop(seed=seed)
        self.clock = clock
        self.devices: dict[str, DeviceSim] = {}
        self.beds: list[BedSensorSim] = []
        self.specs: list[HomeSpec] = []
        self._alarming: set[DeviceSim] = set()  # devices with alarms not yet confirmed
        seq_start = to_epoch_ms(system_clock())
        for rid, home_creds in group_by_resident(creds).items():
            model = ResidentModel.random(derive_seed("resident", seed, rid), resident_tz)
            beds: list[str] = []
            buttons: list[str] = []
            for c in home_creds:
                dev: DeviceSim
                if c.type == DeviceType.BED_SENSOR.value:
                    bed = BedSensorSim(c, model, host=host, port=port, clock=clock, seed=seed,
                                       heartbeat_s=heartbeat_s, seq_start=seq_start,
                                       keepalive=keepalive, network=self.loop)
                    self.beds.append(bed)
                    beds.append(c.device_id)
                    dev = bed
                elif c.type == DeviceType.CALL_BUTTON.value:
                    dev = CallButtonSim(c, host=host, port=port, clock=clock, seed=seed,
                                        heartbeat_s=heartbeat_s, seq_start=seq_start,
                                        keepalive=keepalive, network=self.loop)
                    buttons.append(c.device_id)
                else:
                    logger.warning("skipping device %s of unknown type %r", c.device_id, c.type)
                    continue
                self.devices[c.device_id] = dev
            if beds or buttons:
                self.specs.append(HomeSpec(rid, model, tuple(beds), tuple(buttons)))

    def scripts(self, incidents: Iterable[Incident]) -> list[HomeScript]:
        """One script per home with its incidents."""
        incs = list(incidents)
        return [HomeScript(spec, incs) for spec in self.specs]

    # --- connecting ------------------------------------------------------------------------

    def connect(self, timeout: float, stop: threading.Event | None = None) -> int:
        """Connect every device (in chunks), wait (bounded) until ready; return how many are."""
        devices = list(self.devices.values())
        for i, d in enumerate(devices):
            d.connect()
            if i % CONNECT_CHUNK == CONNECT_CHUNK - 1:
                self.loop.poll(0)

        def done() -> bool:
            return (stop is not None and stop.is_set()) or all(d.ready.is_set()
                                                               for d in devices)

        self.loop.run_until(done, timeout)
        ready = sum(d.ready.is_set() for d in devices)
        if ready < len(devices):
            logger.warning("%d of %d devices not connected yet; they keep retrying",
                           len(devices) - ready, len(devices))
        return ready

    # --- replaying -------------------------------------------------------------------------

    def replay(self, actions: Iterable[Action], stop: threading.Event, *,
               pace: float | None = None, window: int = DEFAULT_WINDOW,
               on_progress: Callable[[datetime], None] | None = None) -> ReplayStats:
        """Apply the actions in order until they end or `stop` is set."""
        if window < 1:
            raise ValueError("window must be at least 1")
        loop = self.loop
        stats = ReplayStats()
        published0 = loop.published
        wall0 = loop.now()
        sim0: datetime | None = None
        for a in actions:
            if sim0 is None:
                sim0 = a.t
            lag = self._wait_turn(a, stop, pace, window, wall0, sim0)
            if lag is None:
                break
            stats.max_lag_s = max(stats.max_lag_s, lag)
            self.clock.set(a.t)
            self.apply(a, wait_online=RECONNECT_WAIT_S if pace is None else None)
            self._repeat_alarms()
            stats.actions += 1
            stats.readings += a.kind is ActionKind.READING
            stats.reached = a.t
            loop.poll(0)
            if on_progress is not None:
                on_progress(a.t)
        stats.wall_s = loop.now() - wall0
        stats.published = loop.published - published0
        return stats

    def _wait_turn(self, a: Action, stop: threading.Event, pace: float | None, window: int,
                   wall0: float, sim0: datetime) -> float | None:
        """Block (running the loop) until action `a` may go; its lateness, None if stopped."""
        loop = self.loop
        lag = 0.0
        if pace is not None:
            due = wall0 + (a.t - sim0).total_seconds() / pace
            while (left := due - loop.now()) > 0:
                if stop.is_set():
                    return None
                loop.poll(min(left, 0.05))
            lag = loop.now() - due
        else:
            while loop.inflight >= window:
                if stop.is_set():
                    return None
                loop.poll(0.05)
        return None if stop.is_set() else lag

    def apply(self, a: Action, wait_online: float | None = None) -> None:
        """Do one action on its device; `wait_online`: block (bounded) until it is back.

        In an accelerated replay a reconnect takes milliseconds of wall time but minutes of
        simulated time; waiting keeps the device's return at its ground-truth time.
        """
        dev = self.devices[a.device_id]
        if a.kind is ActionKind.READING:
            assert isinstance(dev, BedSensorSim)
            dev.sample(a.t, a.reading)
        elif a.kind is ActionKind.STATUS:
            dev.publish_status(a.battery_scale)
        elif a.kind is ActionKind.EVENT:
            assert a.event is not None
            dev.send_event(a.event, a.detail, ts=a.t)
            if a.event in ALARM_EVENTS:
                self._alarming.add(dev)
        elif a.kind is ActionKind.OFFLINE:
            if a.battery_scale == 0.0:
                dev.publish_status(0.0)  # its last breath, if the network lets it
            dev.go_offline(abrupt=True)
        else:
            dev.go_online(wait=wait_online)

    def _repeat_alarms(self) -> None:
        """Repeat the alarms that are due (device clock = simulated time); forget devices
        whose alarms are all confirmed."""
        for dev in list(self._alarming):
            dev.resend_due()
            if not dev.outbox:
                self._alarming.discard(dev)

    def drain(self, timeout: float) -> bool:
        """Run the loop until every message is acknowledged and every store flushed."""
        devices = list(self.devices.values())

        def done() -> bool:
            return (self.loop.inflight <= 0
                    and all(d.ready.is_set() or not d.wants_online() for d in devices)
                    and all(b.buffered == 0 for b in self.beds if b.wants_online()))

        ok = self.loop.run_until(done, timeout)
        if not ok:
            logger.warning("drain: %d messages unacknowledged, %d readings still stored",
                           self.loop.inflight, sum(b.buffered for b in self.beds))
        return ok

    def close(self, timeout: float = 10.0) -> None:
        """Announce every device offline (retained), disconnect all, close the loop."""
        devices = list(self.devices.values())
        infos = [i for i in (d.announce_offline() for d in devices) if i is not None]
        self.loop.run_until(lambda: all(i.is_published() for i in infos), timeout)
        for d in devices:
            d.shutdown()
        deadline = time.monotonic() + timeout
        self.loop.run_until(lambda: not any(d.has_socket for d in devices),
                            max(0.0, deadline - time.monotonic()))
        self.loop.close()

    def messages(self) -> dict[str, int]:
        """Messages published so far, by kind."""
        total: Counter[str] = Counter()
        for d in self.devices.values():
            total.update(d.sent)
        return dict(total)
