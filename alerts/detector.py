"""The pure alert detector: a resident's device records in, alert decisions out.

No I/O and no clock reads: detection runs on event (device) time with per-device watermarks,
and `tick(wall_now)` moves the time-based rules on while devices are silent. This module is
the orchestrator: it keeps each device's identity and watermark, routes records and ticks to
the rules it is built from (`alerts.rules.DEFAULT_RULES`, behind `alerts.rules.Rule`), and
saves and restores their state. The rules themselves live in `alerts.rules`. See
docs/alerts.md, "Detection rules" and "How rules plug in".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.model import AlertClear, AlertType, Decision
from alerts.rules import DEFAULT_RULES, Rule
from alerts.rules.base import overrides
from alerts.rules.params import to_dt
from alerts.rules.state import DeviceContext, DeviceState, ResidentContext, ResidentState
from gateway.records import EventRecord, Record, StatusRecord, TelemetryRecord
from gateway.schema import DeviceType, EventType

__all__ = ["STATE_VERSION", "Detector", "DeviceContext", "ResidentContext",
           "ResidentDetector"]

logger = logging.getLogger(__name__)

STATE_VERSION = 1

_BED = DeviceType.BED_SENSOR.value
_BUTTON = DeviceType.CALL_BUTTON.value
_BUTTON_EVENTS = frozenset({EventType.SOS, EventType.FALL, EventType.SOS_CANCEL,
                            EventType.TEST})
_BED_EVENTS = frozenset({EventType.BED_EXIT, EventType.BED_ENTRY})
_RECORDS = (TelemetryRecord, EventRecord, StatusRecord)


class ResidentDetector:
    """Every rule for one resident, on event time with per-device watermarks."""

    def __init__(self, ctx: ResidentContext, state: Mapping[str, Any] | None = None,
                 rules: Sequence[Rule] = DEFAULT_RULES) -> None:
        self._rs = ResidentState(ctx)
        self._rules = tuple(rules)
        # Each hook's rules, in registry order; a rule that keeps RuleBase's no-op is left out.
        self._on_context = tuple(r for r in rules if overrides(r, "on_context"))
        self._before = tuple(r for r in rules if overrides(r, "before"))
        self._on_alive = tuple(r for r in rules if overrides(r, "on_alive"))
        self._on_tick = tuple(r for r in rules if overrides(r, "on_tick"))
        self._consumers: dict[type, tuple[Rule, ...]] = {
            typ: tuple(r for r in rules if typ in r.consumes) for typ in _RECORDS}
        self._dirty = False
        # alert types left open by devices no longer assigned
        self._orphaned: set[AlertType] = set()
        self.update_context(ctx)
        if state:
            self._restore(state)

    @property
    def context(self) -> ResidentContext:
        """The resident's current context."""
        return self._rs.ctx

    @property
    def stale(self) -> int:
        """Telemetry readings ignored because they were older than the watermark."""
        return self._rs.stale

    @property
    def devices(self) -> Iterable[DeviceState]:
        """The state of each of the resident's devices."""
        return self._rs.devices.values()

    @property
    def watermark(self) -> datetime | None:
        """The latest event time seen from any of the resident's devices."""
        times = [d.seen_t for d in self._rs.devices.values() if d.seen_t is not None]
        return to_dt(max(times)) if times else None

    def update_context(self, ctx: ResidentContext) -> None:
        """Take new settings or devices; state of devices no longer assigned is dropped."""
        rs = self._rs
        rs.set_context(ctx)
        devices = rs.devices
        known = {d.device_id: d for d in ctx.devices}
        for device_id in [i for i in devices if i not in known]:
            logger.info("resident %d: device %s no longer assigned; its state is dropped",
                        ctx.resident_id, device_id)
            self._orphaned.update(devices.pop(device_id).open)
        for d in ctx.devices:
            dev = devices.get(d.device_id)
            if dev is None:
                dev = devices[d.device_id] = DeviceState(d.device_id, d.type.value, None)
            dev.kind = d.type.value
            dev.ctx_hb = d.heartbeat_s
            dev.registered = None if d.registered_at is None else d.registered_at.timestamp()
        for dev in devices.values():
            dev.set_limit(rs.p)
            for rule in self._on_context:
                rule.on_context(rs, dev)

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
        self._rs.resume = (down_since.timestamp(), up_at.timestamp())

    def snapshot(self) -> dict[str, Any]:
        """The whole state, JSON-serialisable; pass it back as `state=` to resume."""
        wm = self.watermark
        return {"v": STATE_VERSION, "watermark": None if wm is None else wm.timestamp(),
                "devices": {i: self._dump(d) for i, d in self._rs.devices.items()}}

    # --- internals ---------------------------------------------------------------------

    def _dump(self, dev: DeviceState) -> dict[str, Any]:
        """One device's snapshot: the detector's slots and every rule's."""
        out = dev.to_json()
        for rule in self._rules:
            out.update(rule.dump(dev))
        return out

    def _restore(self, state: Mapping[str, Any]) -> None:
        rs = self._rs
        if state.get("v") != STATE_VERSION:
            logger.warning("resident %d: detector state version %r ignored",
                           rs.ctx.resident_id, state.get("v"))
            return
        try:
            for device_id, d in state["devices"].items():
                dev = rs.devices.get(device_id)
                if dev is None:
                    dev = rs.devices[device_id] = DeviceState(device_id, "", None)
                dev.load(d)
                for rule in self._rules:
                    rule.load(dev, d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("resident %d: detector state unreadable (%r); starting afresh",
                           rs.ctx.resident_id, exc)
            rs.devices.clear()
        self.update_context(rs.ctx)

    def _device(self, device_id: str, kind: str) -> DeviceState:
        rs = self._rs
        dev = rs.devices.get(device_id)
        if dev is None:
            logger.info("resident %d: records from unregistered device %s",
                        rs.ctx.resident_id, device_id)
            dev = rs.devices[device_id] = DeviceState(device_id, kind, None)
            dev.set_limit(rs.p)
        elif kind and not dev.kind:
            dev.kind = kind
        return dev

    def _feed(self, rec: Record, out: list[Decision]) -> None:
        """Route one record: `before` hooks, `on_alive` hooks if the device speaks (a record
        newer than its watermark, which then moves; an `online: false` status is not the
        device speaking), then `on_record` of the rules that consume its type."""
        rs = self._rs
        rs.em.out = out
        self._dirty = True
        typ = type(rec)
        if typ is TelemetryRecord:
            dev = rs.devices.get(rec.device_id) or self._device(rec.device_id, _BED)
        elif type(rec) is EventRecord:
            etyp = rec.type
            dev = self._device(rec.device_id, _BUTTON if etyp in _BUTTON_EVENTS
                               else _BED if etyp in _BED_EVENTS else "")
        elif typ is StatusRecord:
            dev = self._device(rec.device_id, "")
        else:
            return
        t = rec.time.timestamp()
        for rule in self._before:
            rule.before(rs, dev, rec, t)
        if type(rec) is not StatusRecord or rec.online:
            seen = dev.seen_t
            if seen is None or t > seen:
                for rule in self._on_alive:
                    rule.on_alive(rs, dev, rec, t)
                dev.seen_t = t
                dev.seen_recv = rec.received_at
        for rule in self._consumers[typ]:
            rule.on_record(rs, dev, rec, t)

    def _tick(self, wall_now: datetime, out: list[Decision]) -> None:
        rs = self._rs
        em = rs.em
        em.out = out
        em.changed = False
        if self._orphaned:
            self._clear_orphaned(wall_now)
        for dev in rs.devices.values():
            seen, recv = dev.seen_t, dev.seen_recv
            now = None if seen is None or recv is None else (
                seen + (wall_now - recv).total_seconds())
            for rule in self._on_tick:
                rule.on_tick(rs, dev, now, wall_now)
        if em.changed:
            self._dirty = True

    def _clear_orphaned(self, wall_now: datetime) -> None:
        """Clear what removed devices left open (unless another device still has it): a
        condition of a device that is gone can no longer clear by itself."""
        rs = self._rs
        devices = rs.devices.values()
        for alert in sorted(self._orphaned):
            if not any(alert in d.open for d in devices):
                rs.em.out.append(AlertClear(rs.ctx.resident_id, rs.ctx.site, alert, wall_now))
        self._orphaned.clear()
        rs.em.changed = True


class Detector:
    """The detector of every resident a pipeline serves."""

    def __init__(self, context_of: Callable[[int], ResidentContext | None],
                 states: Mapping[int, Mapping[str, Any]] | None = None,
                 rules: Sequence[Rule] = DEFAULT_RULES) -> None:
        self._context_of = context_of
        self._rules = tuple(rules)
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
                for d in det.devices if d.seen_recv is not None]
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
            self._residents[resident_id] = ResidentDetector(ctx, rules=self._rules)
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
        det = self._residents[resident_id] = ResidentDetector(ctx, state, self._rules)
        return det
