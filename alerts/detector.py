"""The pure alert detector: a resident's device records in, alert decisions out.

No I/O and no clock reads: detection runs on event (device) time with per-device watermarks,
and `tick(wall_now)` moves the time-based rules on while devices are silent. The bed rules
live in `alerts.rules`; this module adds the device rules (sos/fall/cancel, device offline,
low battery, test overdue), the per-resident `ResidentDetector` and the pipeline-wide
`Detector`. See docs/alerts.md, "Detection rules".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.config import AlertSettings
from alerts.model import PLATFORM_RESTART, AlertCancel, AlertClear, AlertType, Decision
from alerts.rules import BedState, DeviceState, Emitter, Params, iso, to_dt
from gateway.records import EventRecord, Record, StatusRecord, TelemetryRecord
from gateway.schema import DeviceType, EventType

logger = logging.getLogger(__name__)

STATE_VERSION = 1
BATTERY_REPEAT_S = 86_400.0  # at most one low_battery trigger per device per 24 h
_RECENT = 16  # sos/fall/cancel (seq, time) pairs kept per device for redelivery dedup

_BED = DeviceType.BED_SENSOR.value
_BUTTON = DeviceType.CALL_BUTTON.value
_OFFLINE = AlertType.DEVICE_OFFLINE.value
_TEST = AlertType.TEST_OVERDUE.value
_BATTERY = AlertType.LOW_BATTERY.value
_ALARMS = {EventType.SOS: AlertType.SOS.value, EventType.FALL: AlertType.FALL.value}
_BUTTON_EVENTS = frozenset({EventType.SOS, EventType.FALL, EventType.SOS_CANCEL,
                            EventType.TEST})
_BED_EVENTS = frozenset({EventType.BED_EXIT, EventType.BED_ENTRY})


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """A device assigned to a resident, as the registry knows it."""

    device_id: str
    type: DeviceType
    heartbeat_s: int | None = None
    registered_at: datetime | None = None  # set only while the device has never been heard


@dataclass(frozen=True, slots=True)
class ResidentContext:
    """What the detector needs to know about a resident besides the records."""

    resident_id: int
    site: str
    timezone: str
    settings: AlertSettings
    devices: tuple[DeviceContext, ...]
    usual_rise: time | None = None
    last_test_at: datetime | None = None
    usual_day_s: float | None = None  # usual time out of bed per day, once learned


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r; using UTC", name)
        return UTC


class ResidentDetector:
    """Every rule for one resident, on event time with per-device watermarks."""

    def __init__(self, ctx: ResidentContext, state: Mapping[str, Any] | None = None) -> None:
        self._devices: dict[str, DeviceState] = {}
        self._em = Emitter(ctx.resident_id, ctx.site, self._devices)
        self._ctx = ctx
        self._p = Params(ctx.settings, _zone(ctx.timezone), ctx.usual_rise, ctx.usual_day_s)
        self._dirty = False
        self._orphaned: set[str] = set()  # alert types left open by devices no longer assigned
        self._resume: tuple[float, float] | None = None  # platform (down since, up at), wall
        self.stale = 0  # telemetry readings ignored because they were older than the watermark
        self.update_context(ctx)
        if state:
            self._restore(state)

    @property
    def context(self) -> ResidentContext:
        """The resident's current context."""
        return self._ctx

    @property
    def watermark(self) -> datetime | None:
        """The latest event time seen from any of the resident's devices."""
        times = [d.seen_t for d in self._devices.values() if d.seen_t is not None]
        return to_dt(max(times)) if times else None

    def update_context(self, ctx: ResidentContext) -> None:
        """Take new settings or devices; state of devices no longer assigned is dropped."""
        self._ctx = ctx
        self._p = Params(ctx.settings, _zone(ctx.timezone), ctx.usual_rise, ctx.usual_day_s)
        self._em.site = ctx.site
        known = {d.device_id: d for d in ctx.devices}
        for device_id in [i for i in self._devices if i not in known]:
            logger.info("resident %d: device %s no longer assigned; its state is dropped",
                        ctx.resident_id, device_id)
            self._orphaned.update(self._devices.pop(device_id).open)
        for d in ctx.devices:
            dev = self._devices.get(d.device_id)
            if dev is None:
                dev = self._devices[d.device_id] = DeviceState(d.device_id, d.type.value, None)
            dev.kind = d.type.value
            dev.ctx_hb = d.heartbeat_s
            dev.registered = None if d.registered_at is None else d.registered_at.timestamp()
        for dev in self._devices.values():
            dev.set_limit(self._p)
            if dev.bed is not None:
                dev.bed.retime(self._p)
        self._anchor_tests()

    def on_records(self, records: Sequence[Record]) -> list[Decision]:
        """Apply this resident's records, in arrival order."""
        out: list[Decision] = []
        for rec in records:
            self._feed(rec, out)
        return out

    def tick(self, wall_now: datetime) -> list[Decision]:
        """Evaluate the time-based rules at each device's effective time for `wall_now`."""
        out: list[Decision] = []
        self._tick(wall_now, out)
        return out

    def resume(self, down_since: datetime, up_at: datetime) -> None:
        """The platform itself was down from `down_since` to `up_at` (wall clock): a planned
        stop is not a device fault. Until a device is heard again, it gets a grace period of
        `offline_heartbeats` heartbeats from `up_at` before it is judged offline; a silence
        across the downtime is not reported; an offline episode that began when the platform
        stopped is cleared as caused by the restart once the device speaks again."""
        self._resume = (down_since.timestamp(), up_at.timestamp())

    def snapshot(self) -> dict[str, Any]:
        """The whole state, JSON-serialisable; pass it back as `state=` to resume."""
        wm = self.watermark
        return {"v": STATE_VERSION, "watermark": None if wm is None else wm.timestamp(),
                "devices": {i: d.to_json() for i, d in self._devices.items()}}

    # --- internals ---------------------------------------------------------------------

    def _restore(self, state: Mapping[str, Any]) -> None:
        if state.get("v") != STATE_VERSION:
            logger.warning("resident %d: detector state version %r ignored",
                           self._ctx.resident_id, state.get("v"))
            return
        try:
            for device_id, d in state["devices"].items():
                dev = self._devices.get(device_id)
                if dev is None:
                    dev = self._devices[device_id] = DeviceState(device_id, "", None)
                dev.load(d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("resident %d: detector state unreadable (%r); starting afresh",
                           self._ctx.resident_id, exc)
            self._devices.clear()
        self.update_context(self._ctx)

    def _anchor_tests(self) -> None:
        last = self._ctx.last_test_at
        if last is None:
            return
        t = last.timestamp()
        for dev in self._devices.values():
            if dev.kind == _BUTTON and (dev.test_anchor is None or t > dev.test_anchor):
                dev.test_anchor, dev.test_src = t, "last_test"

    def _device(self, device_id: str, kind: str) -> DeviceState:
        dev = self._devices.get(device_id)
        if dev is None:
            logger.info("resident %d: records from unregistered device %s",
                        self._ctx.resident_id, device_id)
            dev = self._devices[device_id] = DeviceState(device_id, kind, None)
            dev.set_limit(self._p)
        elif kind and not dev.kind:
            dev.kind = kind
        if dev.kind == _BUTTON and dev.test_anchor is None and dev.seen_t is not None:
            dev.test_anchor, dev.test_src = dev.seen_t, "first_seen"
        return dev

    def _feed(self, rec: Record, out: list[Decision]) -> None:
        self._em.out = out
        self._dirty = True
        if type(rec) is TelemetryRecord:
            self._telemetry(rec)
        elif type(rec) is EventRecord:
            self._event(rec)
        elif type(rec) is StatusRecord:
            self._status(rec)

    def _telemetry(self, rec: TelemetryRecord) -> None:
        dev = self._devices.get(rec.device_id) or self._device(rec.device_id, _BED)
        t = rec.time.timestamp()
        self._data_gap(dev, t, rec.received_at)
        seen = dev.seen_t
        if seen is None or t > seen:
            self._alive(dev, t, rec.received_at)
        bed = dev.bed
        if bed is None:
            bed = dev.bed = BedState()
        tel = bed.tel_t
        if tel is not None and t <= tel:
            self.stale += 1
            return
        bed.reading(t, rec, self._p, self._em, dev)

    def _restarted(self, dev: DeviceState) -> bool:
        """True while `dev` has not been heard since the platform restarted."""
        r, recv = self._resume, dev.seen_recv
        return r is not None and recv is not None and recv.timestamp() < r[1]

    def _in_grace(self, dev: DeviceState, wall: float) -> bool:
        """Not heard since the restart, and the restart less than the offline limit ago."""
        r = self._resume
        return r is not None and self._restarted(dev) and wall < r[1] + dev.limit

    def _in_restart_window(self, dev: DeviceState, wall: float) -> bool:
        """Within the grace period after a restart (whether or not `dev` was heard since)."""
        r = self._resume
        return r is not None and wall < r[1] + dev.limit

    def _from_the_downtime(self, dev: DeviceState, at: float, received_at: datetime) -> bool:
        """Sent (event time `at`) while the platform was down, and received in the grace."""
        r = self._resume
        return (r is not None and self._in_restart_window(dev, received_at.timestamp())
                and r[0] - dev.limit <= at < r[1])

    def _downtime_gap(self, dev: DeviceState, prev: float, t: float) -> bool:
        """A gap that began while the platform was down (its last record before the gap was
        sent then, and delivered only after the restart) and ended within the grace: the
        platform's silence, as for a device heard until the stop (`_across_restart`)."""
        r = self._resume
        return r is not None and r[0] - dev.limit <= prev < r[1] and t < r[1] + dev.limit

    def _across_restart(self, dev: DeviceState, received_at: datetime) -> bool:
        """A record received after the restart from a device heard until the platform
        stopped: the silence between them is the platform's, not the device's."""
        r, recv = self._resume, dev.seen_recv
        return (r is not None and recv is not None and recv.timestamp() < r[1]
                <= received_at.timestamp() and recv.timestamp() >= r[0] - dev.limit)

    def _caused_by_stop(self, dev: DeviceState) -> bool:
        """The open offline episode began (wall clock) when the platform stopped: not long
        before it went down, and before it came back (one reported after the grace, or from
        a Last Will received after the restart, is the device's own)."""
        r, recv, seen, off = self._resume, dev.seen_recv, dev.seen_t, dev.off_at
        if r is None or recv is None or seen is None or off is None:
            return False
        began = recv.timestamp() + (off - seen)
        return r[0] - dev.limit <= began < r[1]

    def _data_gap(self, dev: DeviceState, t: float, received_at: datetime) -> None:
        """A telemetry or status record (the data session): a silence no tick saw (replay,
        backlog) is a gap in this session's stream longer than the offline limit that no
        event of the device fell into.

        Events travel on their own MQTT session, so after a reconnect a device's event can
        arrive before its own older readings: the gap is judged on the data stream, where
        records of a device arrive in order, never between an event and readings still on
        their way.
        """
        prev = dev.data_t
        if prev is not None and t <= prev:
            return
        dev.data_t = t
        if (prev is None or t <= prev + dev.limit or _OFFLINE in dev.open
                or self._across_restart(dev, received_at) or self._downtime_gap(dev, prev, t)):
            return
        marks = [prev, *sorted(e for e in dev.ev_t if prev < e < t), t]
        for a, b in pairwise(marks):
            if b - a > dev.limit:
                self._offline(dev, a + dev.limit, "silent")
                self._clear_offline(dev, b)
                return

    def _alive(self, dev: DeviceState, t: float, received_at: datetime) -> None:
        """A record newer than the device's watermark: it speaks."""
        seen = dev.seen_t
        if seen is None:
            if dev.kind == _BUTTON and dev.test_anchor is None:
                dev.test_anchor, dev.test_src = t, "first_seen"
        elif (dev.data_t is None and t > seen + dev.limit and _OFFLINE not in dev.open
              and not self._across_restart(dev, received_at)):
            # a device heard only through events so far: a gap no tick saw (replay)
            self._offline(dev, seen + dev.limit, "silent")
        dev.will_recv = None  # a pending Last Will is overtaken: the device speaks
        if dev.open and _OFFLINE in dev.open:
            restart = self._restarted(dev) and self._caused_by_stop(dev)
            self._clear_offline(dev, t, PLATFORM_RESTART if restart else None)
        dev.seen_t = t
        dev.seen_recv = received_at
        anchor = dev.test_anchor
        if anchor is not None and t >= anchor + self._p.test_overdue:
            self._test_overdue(dev)

    def _spoke(self, dev: DeviceState, t: float, received_at: datetime) -> None:
        """A status or event (not a reading): liveness, and a bed's clock moves on."""
        if dev.seen_t is None or t > dev.seen_t:
            self._alive(dev, t, received_at)
            if dev.bed is not None:
                dev.bed.alive(t, self._p, self._em, dev)

    def _event(self, rec: EventRecord) -> None:
        typ = rec.type
        kind = _BUTTON if typ in _BUTTON_EVENTS else _BED if typ in _BED_EVENTS else ""
        dev = self._device(rec.device_id, kind)
        t = rec.time.timestamp()
        dev.ev_t.append(t)
        del dev.ev_t[:-_RECENT]
        self._spoke(dev, t, rec.received_at)
        alarm = _ALARMS.get(typ)
        if alarm is not None:
            self._alarm(dev, rec, t, alarm)
        elif typ is EventType.SOS_CANCEL:
            self._cancel(dev, rec, t)
        elif typ is EventType.TEST:
            self._test(dev, t)
        elif typ is EventType.LOW_BATTERY:
            self._battery(dev, t, None, rec.seq, {"source": "event", "detail": rec.detail})

    def _redelivered(self, dev: DeviceState, rec: EventRecord, t: float) -> bool:
        """True for a copy of an sos/fall/cancel already handled: a QoS 1 redelivery or the
        device's own repeat until its alarm receipt, both with the same seq and device `ts`.

        The device's `ts` is the key, not the row time: with a flagged clock the row time is
        the receive time, which differs between copies, and each copy would be a new press.
        An alarm rescued from a malformed message has no usable `ts`, so its key is its `ts`
        exactly as sent: the same on every repeat, unlike the receive time, and unlike `seq`
        alone it still tells a new press apart after the device's counter restarted at 0.
        """
        key: tuple[int, float | str] = (
            (rec.seq, f"rescued:{rec.rescued_ts}") if rec.rescued_ts is not None
            else (rec.seq, t if rec.device_time is None else rec.device_time.timestamp()))
        if key in dev.recent:
            return True
        dev.recent.append(key)
        del dev.recent[:-_RECENT]
        return False

    def _alarm(self, dev: DeviceState, rec: EventRecord, t: float, alarm: str) -> None:
        if self._redelivered(dev, rec, t):
            return
        dev.sos_times.append(t)
        dev.sos_times.sort()
        del dev.sos_times[:-_RECENT]
        self._em.trigger(dev, alarm, self._p.severity[alarm], rec.time,
                         {"detail": rec.detail} if rec.detail else None, rec.seq,
                         episode=False)

    def _cancel(self, dev: DeviceState, rec: EventRecord, t: float) -> None:
        if self._redelivered(dev, rec, t):
            return
        last = max((s for s in dev.sos_times if s <= t), default=None)
        in_window = last is not None and t - last <= self._p.cancel_window
        em = self._em
        em.out.append(AlertCancel(em.resident_id, em.site, dev.device_id, rec.time, in_window,
                                  rec.seq))
        em.changed = True

    def _test(self, dev: DeviceState, t: float) -> None:
        if dev.test_anchor is not None and t <= dev.test_anchor:
            return
        dev.test_anchor, dev.test_src = t, "test"
        self._em.clear(dev, _TEST, t)

    def _test_overdue(self, dev: DeviceState) -> None:
        anchor = dev.test_anchor
        if anchor is None or _TEST in dev.open:
            return
        p = self._p
        self._em.trigger(dev, _TEST, p.severity[_TEST], anchor + p.test_overdue,
                         {"anchor": dev.test_src, "anchor_at": iso(anchor),
                          "overdue_s": p.test_overdue})

    def _battery(self, dev: DeviceState, t: float, level: int | None, seq: int | None,
                 details: dict[str, Any]) -> None:
        if dev.batt_t is not None and t < dev.batt_t:
            return  # older than the latest battery report (a redelivery or a stored batch)
        dev.batt_t = t
        if dev.batt_last is not None and t < dev.batt_last + BATTERY_REPEAT_S:
            return
        dev.batt_last = t
        self._em.trigger(dev, _BATTERY, self._p.severity[_BATTERY], t,
                         {"battery": level, **details}, seq)

    def _battery_level(self, dev: DeviceState, t: float, level: int, seq: int | None) -> None:
        """A reported level: low opens (or repeats) low_battery; a charged battery clears it.

        Only the latest report counts, so an old low reading arriving late cannot reopen an
        alert a newer charged reading cleared.
        """
        p = self._p
        if dev.batt_t is not None and t <= dev.batt_t:
            return
        dev.batt_t = t
        if level <= p.low_battery:
            self._battery(dev, t, level, seq, {"source": "status"})
        elif level >= p.low_battery_clear and _BATTERY in dev.open:
            dev.batt_last = None  # a new low battery alerts at once
            self._em.clear(dev, _BATTERY, t)

    def _status(self, rec: StatusRecord) -> None:
        dev = self._device(rec.device_id, "")
        if not rec.online:
            self._last_will(dev, rec)
            return
        t = rec.time.timestamp()
        self._data_gap(dev, t, rec.received_at)
        self._spoke(dev, t, rec.received_at)
        if rec.heartbeat_s and rec.heartbeat_s != dev.hb:
            dev.hb = rec.heartbeat_s
            dev.set_limit(self._p)
        if rec.battery is not None:
            self._battery_level(dev, t, rec.battery, rec.seq)

    def _last_will(self, dev: DeviceState, rec: StatusRecord) -> None:
        """`online: false` (Last Will or clean power-off): offline at its event time.

        A Last Will is stamped by the platform on arrival (wall clock). It is put on the
        device's event-time clock (its watermark plus the wall time since that record
        arrived), or on the clock of the resident's most recently heard device; with no
        clock at all it waits (`will_recv`) for the next tick or record. Stamping it with
        the wall clock in a replay or backlog would leave the alert ahead of every later
        event: its clear would come before its opening and later silences would be dropped.
        """
        recv = dev.seen_recv
        if recv is not None and rec.received_at < recv:
            return  # the device spoke after this was sent
        if self._in_grace(dev, rec.received_at.timestamp()):
            dev.will_recv = rec.received_at.timestamp()  # held from the stop: judged after
            return                                       # the grace, unless the device speaks
        own = rec.seq is not None and rec.device_time is None  # a power-off with its own ts
        at = rec.time.timestamp() if own else self._event_time(dev, rec.received_at)
        if own and dev.seen_t is not None and at is not None and at < dev.seen_t:
            return  # the device spoke after it (event time)
        if own and at is not None and self._from_the_downtime(dev, at, rec.received_at):
            # A power-off sent while the platform itself was down (the demo's homes stop
            # after the pipeline) and delivered after readings from the downtime: those do
            # not end the grace, so this is held like a Last Will from the stop.
            dev.will_recv = rec.received_at.timestamp()
            return
        if at is None:
            dev.will_recv = rec.received_at.timestamp()
            return
        self._went_offline(dev, at)

    def _went_offline(self, dev: DeviceState, at: float) -> None:
        if _OFFLINE not in dev.open:
            self._offline(dev, at, "last_will")
        bed = dev.bed
        if bed is not None and bed.tel_t is not None:
            bed.cap_until = min(bed.cap_until, max(bed.tel_t, at))

    def _event_time(self, dev: DeviceState, wall: datetime) -> float | None:
        """`wall` on the event-time clock of `dev`, else of the resident's device heard last."""
        if dev.seen_t is not None and dev.seen_recv is not None:
            return dev.seen_t + (wall - dev.seen_recv).total_seconds()
        heard = [d for d in self._devices.values()
                 if d.seen_t is not None and d.seen_recv is not None]
        if not heard:
            return None
        ref = max(heard, key=lambda d: d.seen_recv or wall)
        assert ref.seen_t is not None and ref.seen_recv is not None
        return ref.seen_t + (wall - ref.seen_recv).total_seconds()

    def _clear_offline(self, dev: DeviceState, t: float, reason: str | None = None) -> None:
        """The device speaks: its offline episode ends, never before it began (a record older
        than the alert, e.g. a backlog forwarded after the Last Will, ends it at its start)."""
        off = dev.off_at
        self._em.clear(dev, _OFFLINE, t if off is None else max(t, off), reason)
        dev.off_at = None

    def _offline(self, dev: DeviceState, at: float, reason: str) -> None:
        seen = dev.seen_t
        details: dict[str, Any] = {
            "device_id": dev.device_id, "device_type": dev.kind or None, "reason": reason,
            "last_seen": None if seen is None else iso(seen),
            "silent_s": None if seen is None else at - seen}
        if seen is None and dev.registered is not None:
            details["registered_at"] = iso(dev.registered)
        details.update(self._occupancy())
        dev.off_at = at
        dev.will_recv = None
        self._em.trigger(dev, _OFFLINE, self._p.severity[_OFFLINE], at, details)

    def _occupancy(self) -> dict[str, Any]:
        """The last known bed occupancy, so staff can tell an offline mat from an empty bed."""
        for dev in self._devices.values():
            bed = dev.bed
            if bed is not None and bed.occupied is not None:
                since = bed.occ_since if bed.occupied else bed.out_since
                return {"last_occupied": bed.occupied, "bed_device_id": dev.device_id,
                        "occupancy_since": None if since is None else iso(since)}
        return {"last_occupied": None}

    def _tick(self, wall_now: datetime, out: list[Decision]) -> None:
        em, p = self._em, self._p
        em.out = out
        em.changed = False
        if self._orphaned:
            self._clear_orphaned(wall_now)
        wall = wall_now.timestamp()
        for dev in self._devices.values():
            seen, recv = dev.seen_t, dev.seen_recv
            grace = self._in_grace(dev, wall)
            if dev.will_recv is not None and not self._in_restart_window(dev, wall):
                self._pending_will(dev)
            if seen is None or recv is None:
                if seen is None and dev.will_recv is None:
                    self._never_heard(dev, wall_now)
                continue
            now = seen + (wall_now - recv).total_seconds()
            if now >= seen + dev.limit and _OFFLINE not in dev.open and not grace:
                self._offline(dev, self._silent_from(dev, seen, recv), "silent")
            anchor = dev.test_anchor
            if anchor is not None and now >= anchor + p.test_overdue:
                self._test_overdue(dev)
            bed = dev.bed
            if bed is not None and bed.tel_t is not None and now > bed.tel_t:
                bed.tick(now, p, em, dev)
        if em.changed:
            self._dirty = True

    def _silent_from(self, dev: DeviceState, seen: float, recv: datetime) -> float:
        """When a silent device became offline: `offline_heartbeats` heartbeats after its last
        record, or, if it has not been heard since a platform restart, after the grace."""
        at = seen + dev.limit
        r = self._resume
        if r is not None and self._restarted(dev):
            at = max(at, seen + (r[1] - recv.timestamp()) + dev.limit)
        return at

    def _clear_orphaned(self, wall_now: datetime) -> None:
        """Clear what removed devices left open (unless another device still has it): a
        condition of a device that is gone can no longer clear by itself."""
        devices = self._devices.values()
        for alert in sorted(self._orphaned):
            if not any(alert in d.open for d in devices):
                self._em.out.append(AlertClear(self._ctx.resident_id, self._ctx.site, alert,
                                               wall_now))
        self._orphaned.clear()
        self._em.changed = True

    def _pending_will(self, dev: DeviceState) -> None:
        """A Last Will that waited (no event-time clock yet, or received during the restart
        grace) and was not overtaken by the device: on the device's or the resident's clock
        if one exists now, else on the wall clock (ticks assume the pipeline is caught up)."""
        will = dev.will_recv
        assert will is not None
        dev.will_recv = None
        wall = to_dt(will)
        at = self._event_time(dev, wall)
        self._went_offline(dev, will if at is None else at)

    def _never_heard(self, dev: DeviceState, wall_now: datetime) -> None:
        """A registered device silent since it was registered: offline after never_heard_s
        (wall time, as there is no device time yet)."""
        reg = dev.registered
        if reg is None or _OFFLINE in dev.open:
            return
        due = reg + self._p.never_heard
        if wall_now.timestamp() >= due:
            self._offline(dev, due, "never_heard")


class Detector:
    """The detector of every resident a pipeline serves."""

    def __init__(self, context_of: Callable[[int], ResidentContext | None],
                 states: Mapping[int, Mapping[str, Any]] | None = None) -> None:
        self._context_of = context_of
        self._residents: dict[int, ResidentDetector] = {}
        self._unknown: set[int] = set()
        for resident_id, state in (states or {}).items():
            self._open(int(resident_id), state)  # keys may have been through JSON

    def process(self, records: Sequence[Record]) -> list[Decision]:
        """Apply records (any residents, arrival order); records of unknown residents are
        skipped."""
        out: list[Decision] = []
        residents = self._residents
        for rec in records:
            det = residents.get(rec.resident_id)
            if det is None:
                det = self._open(rec.resident_id)
                if det is None:
                    continue
            det._feed(rec, out)
        return out

    def open_all(self, resident_ids: Iterable[int]) -> None:
        """Track these residents even before any record of theirs arrives (so a device that
        never speaks is noticed)."""
        for resident_id in resident_ids:
            if resident_id not in self._residents:
                self._open(resident_id)

    def tick(self, wall_now: datetime) -> list[Decision]:
        """Evaluate every resident's time-based rules for the wall clock `wall_now`."""
        out: list[Decision] = []
        for resident_id, det in self._residents.items():
            try:
                det._tick(wall_now, out)
            except Exception:  # one resident's bug must not drop the others' decisions
                logger.exception("resident %d: time rules failed on this tick", resident_id)
        return out

    def resume(self, up_at: datetime) -> datetime | None:
        """Start-up after the platform itself was down: the platform was processing until
        the latest receive time in the restored states (None: nothing restored, nothing to
        do). See `ResidentDetector.resume`; returns that time."""
        last = [d.seen_recv for det in self._residents.values()
                for d in det._devices.values() if d.seen_recv is not None]
        if not last:
            return None
        down_since = max(last)
        for det in self._residents.values():
            det.resume(down_since, up_at)
        return down_since

    def snapshots(self) -> dict[int, dict[str, Any]]:
        """Snapshots of the residents whose state changed since the last call."""
        out: dict[int, dict[str, Any]] = {}
        for resident_id, det in self._residents.items():
            if det._dirty:
                det._dirty = False
                out[resident_id] = det.snapshot()
        return out

    def refresh(self, resident_id: int) -> None:
        """Look the resident's context up again (settings, devices or time zone changed)."""
        self._unknown.discard(resident_id)
        ctx = self._context_of(resident_id)
        det = self._residents.get(resident_id)
        if ctx is None:
            self._residents.pop(resident_id, None)
        elif det is None:
            self._residents[resident_id] = ResidentDetector(ctx)
        else:
            det.update_context(ctx)

    def resident(self, resident_id: int) -> ResidentDetector | None:
        """The detector of one resident, if it is active."""
        return self._residents.get(resident_id)

    def _open(self, resident_id: int, state: Mapping[str, Any] | None = None
              ) -> ResidentDetector | None:
        if resident_id in self._unknown:
            return None
        ctx = self._context_of(resident_id)
        if ctx is None:
            logger.warning("records for unknown resident %d ignored", resident_id)
            self._unknown.add(resident_id)
            return None
        det = self._residents[resident_id] = ResidentDetector(ctx, state)
        return det
