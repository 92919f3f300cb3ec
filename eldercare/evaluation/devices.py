"""What a home's devices send, as the records the gateway would hand the alert engine.

The direct run does not encode MQTT messages: each simulator action becomes the record the
gateway makes of the message the simulated device would publish (simulators.devices:
`BedSensorSim.sample`, `publish_status`, `send_event`, store-and-forward while offline and
the broker's Last Will on an abrupt disconnect). Records are received at their event time,
as in a live system keeping up; readings kept while a device was offline arrive when it
reconnects, received then. The `--e2e-sample` compares this with the real path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from random import Random

from gateway.records import EventRecord, Record, StatusRecord, TelemetryRecord
from gateway.schema import EventType
from simulators.cohort import HEARTBEAT_S, Resident
from simulators.devices import FW_VERSION, LOW_BATTERY_PCT
from simulators.resident import MatReading, derive_seed
from simulators.timeline import Action, ActionKind
from simulators.wire import device_time


@dataclass
class _Device:
    """One device's sending state: seq, connection, battery, what waits for the network."""

    device_id: str
    bed: bool
    started: datetime
    battery0: float
    drain_per_day: float
    connected: bool = True
    seq: int = 0
    last_occupied: bool | None = None
    low_battery_sent: bool = False
    events: deque[tuple[datetime, int, EventType, str | None]] = field(default_factory=deque)
    readings: list[tuple[datetime, int, bool, float | None, float | None, int]] = field(
        default_factory=list)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def battery(self, t: datetime, scale: float) -> int:
        """As `DeviceSim.battery_at`, rounded as the status message carries it."""
        days = (t - self.started).total_seconds() / 86_400
        return round(min(100.0, max(0.0, self.battery0 - self.drain_per_day * days)) * scale)


class DirectHome:
    """A home's devices as records: `apply(action)` gives what the engine receives then."""

    def __init__(self, resident: Resident, site: str, seed: int, start: datetime,
                 registered: Mapping[str, str] | None = None) -> None:
        self.resident_id = resident.resident_id
        self.site = site
        self.devices: dict[str, _Device] = {}
        for device_id in resident.home.devices:
            # a simulated device seeds its battery on its registered id (`DeviceSim`)
            seed_id = (registered or {}).get(device_id, device_id)
            rng = Random(derive_seed("device", seed, seed_id))
            self.devices[device_id] = _Device(device_id, device_id in resident.home.beds,
                                              start, rng.uniform(70.0, 100.0),
                                              rng.uniform(0.05, 0.4))

    def connect_all(self, t: datetime) -> list[Record]:
        """Every device connects at the start and reports its status."""
        return [self._status(d, t, 1.0) for d in self.devices.values()]

    def apply(self, a: Action) -> list[Record]:
        """The records the engine receives because of action `a` (at its time, to the
        millisecond as the wire carries it)."""
        dev = self.devices[a.device_id]
        out: list[Record] = []
        kind = a.kind
        t = a.t
        if t.microsecond % 1000:
            t = device_time(t)
        if kind is ActionKind.READING:
            assert a.reading is not None
            self._reading(dev, t, a.reading, out)
        elif kind is ActionKind.STATUS:
            if dev.connected:
                status = self._status(dev, t, a.battery_scale)
                out.append(status)
                self._low_battery(dev, t, status.battery, out)
        elif kind is ActionKind.EVENT:
            assert a.event is not None
            self._event(dev, t, a.event, a.detail, out)
        elif kind is ActionKind.OFFLINE:
            if a.battery_scale == 0.0 and dev.connected:
                status = self._status(dev, t, 0.0)
                out.append(status)
                self._low_battery(dev, t, status.battery, out)
            if dev.connected:
                dev.connected = False
                out.append(StatusRecord(t, dev.device_id, self.resident_id, None, False,
                                        None, None, None, None, None, t))
        elif not dev.connected:
            dev.connected = True
            out.append(self._status(dev, t, 1.0))
            self._flush(dev, t, out)
        return out

    def _reading(self, dev: _Device, t: datetime, r: MatReading, out: list[Record]) -> None:
        dev.seq = seq = dev.seq + 1  # (next_seq, inlined: one per reading)
        occupied, hr, rr, move = r
        if dev.connected:
            out.append(TelemetryRecord(t, dev.device_id, self.resident_id, seq, occupied,
                                       hr, rr, move, None, t))
        else:
            dev.readings.append((t, seq, occupied, hr, rr, move))
        last = dev.last_occupied
        if last is not None and occupied != last:
            self._event(dev, t, EventType.BED_ENTRY if occupied else EventType.BED_EXIT,
                        None, out)
        dev.last_occupied = occupied

    def _event(self, dev: _Device, t: datetime, typ: EventType, detail: str | None,
               out: list[Record]) -> None:
        seq = dev.next_seq()
        if dev.connected:
            out.append(EventRecord(t, dev.device_id, self.resident_id, self.site, seq, typ,
                                   detail, None, t))
        else:
            dev.events.append((t, seq, typ, detail))

    def _status(self, dev: _Device, t: datetime, scale: float) -> StatusRecord:
        return StatusRecord(t, dev.device_id, self.resident_id, dev.next_seq(), True,
                            dev.battery(t, scale), -60, FW_VERSION, HEARTBEAT_S, None, t)

    def _low_battery(self, dev: _Device, t: datetime, level: int | None,
                     out: list[Record]) -> None:
        """The device's own low-battery event, once per low spell (as `publish_status`), on
        the level its status just reported."""
        assert level is not None
        if level >= LOW_BATTERY_PCT + 10:
            dev.low_battery_sent = False
        elif not dev.low_battery_sent:
            dev.low_battery_sent = True
            self._event(dev, t, EventType.LOW_BATTERY, f"battery {level}%", out)

    def _flush(self, dev: _Device, now: datetime, out: list[Record]) -> None:
        """Back online: kept events (in seq order), then the stored readings, received now."""
        for t, seq, typ, detail in sorted(dev.events, key=lambda e: e[1]):
            out.append(EventRecord(t, dev.device_id, self.resident_id, self.site, seq, typ,
                                   detail, None, now))
        dev.events.clear()
        for t, seq, occ, hr, rr, move in dev.readings:
            out.append(TelemetryRecord(t, dev.device_id, self.resident_id, seq, occ, hr, rr,
                                       move, None, now))
        dev.readings.clear()
