"""Pure detection rules and their per-device state: runs of readings, vital-sign bands, apnea
and bed occupancy (bed exit, not up, long absence).

Times are float Unix seconds of event (device) time. Nothing here reads a clock or does I/O;
`alerts.detector` feeds records in and turns what the rules decide into alert decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from alerts.config import AlertSettings, VitalBands
from alerts.model import AlertClear, AlertTrigger, AlertType, Decision, Severity
from gateway.records import TelemetryRecord

INF = math.inf
HOLD_S = 15.0
"""A reading stands for at most this long (or until the next reading): longer gaps in the
telemetry break a run, and a silent bed's last reading is extrapolated no further."""

A = AlertType
URGENT = Severity.URGENT.value
WARNING = Severity.WARNING.value
_BED_EXIT = A.BED_EXIT_NO_RETURN.value
_ABSENCE = A.LONG_ABSENCE.value
_NOT_UP = A.NOT_UP.value
_APNEA = A.APNEA.value
_DAY = timedelta(days=1)
_NOON = time(12, 0)


def iso(t: float) -> str:
    """Event time (float seconds) as an ISO-8601 UTC string, for alert details."""
    return to_dt(t).isoformat()


def to_dt(t: float) -> datetime:
    """Event time (float seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(t, UTC)


def _num(x: float) -> float | None:
    """A float for a JSON snapshot (infinity becomes null)."""
    return None if math.isinf(x) else x


# --- thresholds ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VitalSpec:
    """One vital sign's bands as plain floats, with the alert types of its two sides."""

    low: str
    high: str
    urgent_low: float
    urgent_high: float
    warning_high: float
    normal_low: float
    normal_high: float
    urgent_s: float
    warning_s: float
    clear_s: float

    @classmethod
    def of(cls, b: VitalBands, low: AlertType, high: AlertType) -> VitalSpec:
        """Precompute from the settings' bands."""
        return cls(low.value, high.value, b.urgent_at_or_below, b.urgent_at_or_above,
                   b.warning_at_or_above, b.normal_low, b.normal_high,
                   float(b.urgent_sustain_s), float(b.warning_sustain_s), float(b.clear_after_s))


class Params:
    """One resident's thresholds, precomputed from AlertSettings for the hot path."""

    __slots__ = ("absence_margin", "apnea_s", "cancel_window", "default_hb", "exit_min",
                 "exit_return", "hr", "long_absence", "low_battery", "low_battery_clear",
                 "never_heard", "night_end", "night_start", "not_up_after", "not_up_at",
                 "offline_hb", "rise", "rise_margin", "rr", "severity", "test_overdue", "tz",
                 "usual_day", "usual_rise")

    def __init__(self, s: AlertSettings, tz: tzinfo, usual_rise: time | None,
                 usual_day_s: float | None = None) -> None:
        self.tz = tz
        self.usual_rise = usual_rise  # learned only (not_up)
        self.rise = usual_rise if usual_rise is not None else s.usual_rise_default
        self.rise_margin = timedelta(seconds=s.rise_margin_s)
        self.usual_day = float(usual_day_s if usual_day_s is not None
                               else s.usual_day_default_s)
        self.absence_margin = float(s.long_absence_margin_s)
        self.hr = VitalSpec.of(s.heart_rate, A.HEART_RATE_LOW, A.HEART_RATE_HIGH)
        self.rr = VitalSpec.of(s.respiration, A.RESPIRATION_LOW, A.RESPIRATION_HIGH)
        self.apnea_s = float(s.apnea_s)
        self.exit_min = float(s.bed_exit_min_occupied_s)
        self.exit_return = float(s.bed_exit_return_s)
        self.long_absence = float(s.long_absence_s)
        self.offline_hb = float(s.offline_heartbeats)
        self.default_hb = float(s.default_heartbeat_s)
        self.low_battery = s.low_battery_percent
        self.low_battery_clear = min(100, s.low_battery_percent + s.low_battery_clear_margin)
        self.never_heard = float(s.never_heard_s)
        self.test_overdue = float(s.test_overdue_s)
        self.cancel_window = float(s.sos_cancel_window_s)
        self.night_start = s.night_start
        self.night_end = s.night_end
        self.not_up_at = s.not_up_at
        self.not_up_after = timedelta(seconds=s.not_up_after_usual_rise_s)
        self.severity = {a.value: s.severity_of(a).value for a in AlertType}

    def local(self, t: float) -> datetime:
        """Event time in the resident's time zone."""
        return datetime.fromtimestamp(t, self.tz)

    def is_night(self, t: float) -> bool:
        """True when `t` falls in [night_start, night_end) local time (may cross midnight)."""
        tod = self.local(t).time()
        start, end = self.night_start, self.night_end
        if start <= end:
            return start <= tod < end
        return tod >= start or tod < end

    def is_night_exit(self, t: float) -> bool:
        """An exit at night that is not getting up for the day: in the night window and
        before `usual rise - rise_margin` of that morning (population default until the rise
        time is learned). An exit at 05:10 of someone who rises at 05:30 starts the day."""
        if not self.is_night(t):
            return False
        local = self.local(t)
        rise_from = datetime.combine(local.date(), self.rise, self.tz) - self.rise_margin
        morning = rise_from.timestamp() <= t and local.time() < self.night_end
        return not morning

    def absence_deadline(self, out_since: float) -> float:
        """When an absence that began at `out_since` is long: after `long_absence_s` and past
        the end of the resident's usual day (the day's start + usual day + margin), so an
        ordinary long day without a nap is not an alarm. The day starts at the exit itself
        when that is a morning rise (from `usual rise - rise_margin` to noon, so a late rise
        counts from when it happened), else at the day's usual rise (after a nap)."""
        local = self.local(out_since)
        rise = datetime.combine(local.date(), self.rise, self.tz)
        morning = rise - self.rise_margin <= local and local.time() < _NOON
        start = out_since if morning else min(out_since, rise.timestamp())
        return max(out_since + self.long_absence, start + self.usual_day + self.absence_margin)

    def not_up_deadline(self, day: date) -> float:
        """When the not-up check of a local day is due: max(not_up_at, usual rise + delay)."""
        at = datetime.combine(day, self.not_up_at, self.tz)
        if self.usual_rise is not None:
            at = max(at, datetime.combine(day, self.usual_rise, self.tz) + self.not_up_after)
        return at.timestamp()

    def first_not_up_after(self, t: float) -> float:
        """The first not-up deadline after `t`."""
        day = self.local(t).date()
        due = self.not_up_deadline(day)
        return due if due > t else self.not_up_deadline(day + _DAY)

    def next_not_up(self, due: float) -> float:
        """The deadline of the local day after the one of `due`."""
        return self.not_up_deadline(self.local(due).date() + _DAY)


# --- device state and what the rules emit --------------------------------------------------


class DeviceState:
    """What the detector remembers about one device (JSON round-trip via to_json/from_json)."""

    __slots__ = ("batt_last", "batt_t", "bed", "ctx_hb", "data_t", "device_id", "ev_t", "hb",
                 "kind", "limit", "off_at", "open", "recent", "registered", "seen_recv",
                 "seen_t", "sos_times", "test_anchor", "test_src", "will_recv")

    def __init__(self, device_id: str, kind: str, ctx_hb: int | None) -> None:
        self.device_id = device_id
        self.kind = kind  # DeviceType value, "" while unknown
        self.ctx_hb = ctx_hb  # heartbeat interval from the registry
        self.registered: float | None = None  # when the registry got it (from the context)
        self.hb: int | None = None  # heartbeat interval the device last reported
        self.limit = INF  # silence that makes it offline (set by the detector)
        self.seen_t: float | None = None  # watermark: latest event time of any record
        self.seen_recv: datetime | None = None  # when the watermark record was received
        self.open: dict[str, str] = {}  # alert type -> severity of this device's open episodes
        self.batt_last: float | None = None  # last low_battery trigger (event time)
        self.batt_t: float | None = None  # latest battery report applied (event time)
        self.test_anchor: float | None = None  # last test (or first seen) of a call button
        self.test_src = ""
        self.sos_times: list[float] = []  # recent sos/fall event times
        # (seq, device time) of recent sos/fall/cancel; a rescued alarm's `ts` as sent is text
        self.recent: list[tuple[int, float | str]] = []
        self.bed: BedState | None = None
        self.off_at: float | None = None  # event time the open device_offline episode began
        self.will_recv: float | None = None  # a Last Will waiting for an event-time clock
        self.data_t: float | None = None  # watermark of the data session (telemetry, status)
        self.ev_t: list[float] = []  # recent event times (events travel on their own session)

    def set_limit(self, p: Params) -> None:
        """Recompute the offline limit: offline_heartbeats x the heartbeat interval."""
        self.limit = p.offline_hb * float(self.hb or self.ctx_hb or p.default_hb)

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {"kind": self.kind, "hb": self.hb, "seen_t": self.seen_t,
                "seen_recv": None if self.seen_recv is None else self.seen_recv.timestamp(),
                "open": dict(self.open), "batt_last": self.batt_last, "batt_t": self.batt_t,
                "test_anchor": self.test_anchor, "test_src": self.test_src,
                "sos_times": list(self.sos_times), "recent": [list(r) for r in self.recent],
                "bed": None if self.bed is None else self.bed.to_json(),
                "off_at": self.off_at, "will_recv": self.will_recv, "data_t": self.data_t,
                "ev_t": list(self.ev_t)}

    def load(self, d: dict[str, Any]) -> None:
        """Restore from `to_json` output."""
        self.kind = self.kind or str(d["kind"])
        self.hb = d["hb"]
        self.seen_t = d["seen_t"]
        recv = d["seen_recv"]
        self.seen_recv = None if recv is None else to_dt(recv)
        self.open = {str(k): str(v) for k, v in d["open"].items()}
        self.batt_last = d["batt_last"]
        self.batt_t = d.get("batt_t")
        if "batt_t" not in d and self.batt_last is not None:
            # Saved before low_battery had episodes: its alert may still be open; let the
            # next charged reading clear it (clearing a resolved alert changes nothing).
            self.open.setdefault(A.LOW_BATTERY.value, "info")
        self.test_anchor = d["test_anchor"]
        self.test_src = str(d["test_src"])
        self.sos_times = [float(x) for x in d["sos_times"]]
        self.recent = [(int(seq), t if isinstance(t, str) else float(t))
                       for seq, t in d["recent"]]
        self.bed = None if d["bed"] is None else BedState.from_json(d["bed"])
        self.off_at = d.get("off_at")
        self.will_recv = d.get("will_recv")
        self.data_t = d.get("data_t")
        self.ev_t = [float(x) for x in d.get("ev_t", [])]


class Emitter:
    """Collects one resident's decisions; one open episode per device and type."""

    __slots__ = ("changed", "devices", "out", "resident_id", "site")

    def __init__(self, resident_id: int, site: str, devices: dict[str, DeviceState]) -> None:
        self.resident_id = resident_id
        self.site = site
        self.devices = devices
        self.out: list[Decision] = []
        self.changed = False

    def trigger(self, dev: DeviceState, alert: str, severity: str, at: float | datetime,
                details: dict[str, Any] | None, seq: int | None = None,
                episode: bool = True) -> None:
        """Open (or upgrade) `dev`'s episode of `alert` and emit its trigger."""
        if episode:
            dev.open[alert] = severity
        when = at if isinstance(at, datetime) else to_dt(at)
        self.out.append(AlertTrigger(self.resident_id, self.site, dev.device_id, alert,
                                     severity, when, seq, details))
        self.changed = True

    def clear(self, dev: DeviceState, alert: str, at: float, reason: str | None = None) -> None:
        """End `dev`'s episode; the alert clears once no device of the resident has one."""
        if dev.open.pop(alert, None) is None:
            return
        self.changed = True
        if not any(alert in d.open for d in self.devices.values()):
            self.out.append(AlertClear(self.resident_id, self.site, alert, to_dt(at), reason))


# --- runs of readings ----------------------------------------------------------------------


class Run:
    """Consecutive readings in one band; `due` is when it has lasted long enough (inf: spent)."""

    __slots__ = ("due", "last", "start", "value")

    def __init__(self) -> None:
        self.start: float | None = None
        self.last = 0.0
        self.value = 0.0
        self.due = INF

    def check(self, now: float) -> float | None:
        """The due time, once, when the run (last reading held HOLD_S) lasts to it by `now`."""
        due = self.due
        if due <= now and due <= self.last + HOLD_S:
            self.due = INF
            return due
        return None

    def extend(self, t: float, v: float, sustain: float) -> float:
        """Add a reading in the band (a gap longer than HOLD_S starts a new run); the due
        time of a run it started, else inf."""
        if self.start is None or t - self.last > HOLD_S:
            self.start = self.last = t
            self.value = v
            self.due = t + sustain
            return self.due
        self.last = t
        self.value = v
        return INF

    def stop(self) -> None:
        """A reading outside the band (or a missing one) ends the run."""
        self.start = None
        self.due = INF

    def to_json(self) -> list[float | None]:
        """JSON-serialisable state."""
        return [self.start, self.last, self.value, _num(self.due)]

    @classmethod
    def from_json(cls, d: list[float | None]) -> Run:
        """Restore from `to_json` output."""
        run = cls()
        start, last, value, due = d
        run.start = start
        run.last = float(last or 0.0)
        run.value = float(value or 0.0)
        run.due = INF if due is None else float(due)
        return run


class Vital:
    """Heart rate or respiration: urgent low, urgent high and warning high runs, and the run
    back in the normal band that clears an episode (hysteresis)."""

    __slots__ = ("due", "high", "low", "normal", "warn")

    def __init__(self) -> None:
        self.low = Run()
        self.high = Run()
        self.warn = Run()
        self.normal = Run()
        self.due = INF  # never later than the earliest due run

    def feed(self, t: float, v: float | None, spec: VitalSpec, em: Emitter,
             dev: DeviceState) -> None:
        """One reading (None: not measured or out of bed, which breaks every run)."""
        if self.due <= t:
            self.check(t, spec, em, dev)
        low, high, warn, normal = self.low, self.high, self.warn, self.normal
        if v is None:
            if low.start is not None:
                low.stop()
            if warn.start is not None:
                warn.stop()
                high.stop()
            if normal.start is not None:
                normal.stop()
            return
        due = self.due
        if spec.normal_low <= v <= spec.normal_high:
            started = normal.extend(t, v, spec.clear_s)
            if started < due:
                due = started
            if low.start is not None:
                low.stop()
            if warn.start is not None:
                warn.stop()
                high.stop()
        else:
            if normal.start is not None:
                normal.stop()
            due = min(due, self._abnormal(t, v, spec))
        self.due = due
        if due <= t:  # zero sustain
            self.check(t, spec, em, dev)

    def _abnormal(self, t: float, v: float, spec: VitalSpec) -> float:
        """Extend or stop the low, warning and high runs; the earliest due it started."""
        low, high, warn = self.low, self.high, self.warn
        due = INF
        if v <= spec.urgent_low:
            due = low.extend(t, v, spec.urgent_s)
        elif low.start is not None:
            low.stop()
        if v >= spec.warning_high:
            due = min(due, warn.extend(t, v, spec.warning_s))
            if v >= spec.urgent_high:
                due = min(due, high.extend(t, v, spec.urgent_s))
            elif high.start is not None:
                high.stop()
        elif warn.start is not None:
            warn.stop()
            high.stop()
        return due

    def check(self, now: float, spec: VitalSpec, em: Emitter, dev: DeviceState) -> None:
        """Act on the runs that have lasted long enough by `now`."""
        if (at := self.low.check(now)) is not None and spec.low not in dev.open:
            em.trigger(dev, spec.low, URGENT, at,
                       _vital_details(self.low, URGENT, spec.urgent_low, spec.urgent_s))
        first, second = ((self.warn, self.high) if self.warn.due <= self.high.due
                         else (self.high, self.warn))
        self._high(first, now, spec, em, dev)
        self._high(second, now, spec, em, dev)
        if (at := self.normal.check(now)) is not None:
            em.clear(dev, spec.low, at)
            em.clear(dev, spec.high, at)
        self.due = min(self.low.due, self.high.due, self.warn.due, self.normal.due)

    def _high(self, run: Run, now: float, spec: VitalSpec, em: Emitter,
              dev: DeviceState) -> None:
        at = run.check(now)
        if at is None:
            return
        urgent = run is self.high
        current = dev.open.get(spec.high)
        if current is None or (urgent and current == WARNING):
            severity = URGENT if urgent else WARNING
            threshold = spec.urgent_high if urgent else spec.warning_high
            sustain = spec.urgent_s if urgent else spec.warning_s
            em.trigger(dev, spec.high, severity, at,
                       _vital_details(run, severity, threshold, sustain))

    def to_json(self) -> dict[str, list[float | None]]:
        """JSON-serialisable state."""
        return {"low": self.low.to_json(), "high": self.high.to_json(),
                "warn": self.warn.to_json(), "normal": self.normal.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, list[float | None]]) -> Vital:
        """Restore from `to_json` output."""
        vital = cls()
        vital.low = Run.from_json(d["low"])
        vital.high = Run.from_json(d["high"])
        vital.warn = Run.from_json(d["warn"])
        vital.normal = Run.from_json(d["normal"])
        vital.due = min(vital.low.due, vital.high.due, vital.warn.due, vital.normal.due)
        return vital


def _vital_details(run: Run, band: str, threshold: float, sustain: float) -> dict[str, Any]:
    return {"value": run.value, "band": band, "threshold": threshold, "sustained_s": sustain,
            "since": iso(run.start) if run.start is not None else None}


# --- the bed sensor ------------------------------------------------------------------------


class BedState:
    """A bed sensor's telemetry state: vitals, apnea, occupancy and the deadlines of bed exit,
    long absence and not up, on the bed's own event-time clock."""

    __slots__ = ("absence_due", "apnea", "cap_until", "exit_due", "hr", "next_due",
                 "not_up_due", "occ_since", "occupied", "out_since", "rr", "session_occ",
                 "tel_t")

    def __init__(self) -> None:
        self.tel_t: float | None = None  # telemetry watermark
        self.cap_until = INF  # the online clock stops here while the bed is silent or offline
        self.occupied: bool | None = None
        self.occ_since = 0.0  # first reading of the current time in bed
        self.out_since: float | None = None  # first reading of the current absence
        self.session_occ = 0.0  # time in bed this session (absences < bed_exit_return_s)
        self.exit_due: float | None = None
        self.absence_due: float | None = None
        self.not_up_due: float | None = None
        self.next_due = INF
        self.hr = Vital()
        self.rr = Vital()
        self.apnea = Run()

    def reading(self, t: float, rec: TelemetryRecord, p: Params, em: Emitter,
                dev: DeviceState) -> None:
        """Apply one in-order reading at event time `t`."""
        if t >= self.next_due:  # after a gap the online clock ran only until the bed went quiet
            self.advance(t, min(t, self.cap_until), -INF, p, em, dev)
        occupied = rec.occupied
        if occupied:
            rr = rec.respiration_rate
            self.hr.feed(t, rec.heart_rate, p.hr, em, dev)
            self.rr.feed(t, rr or None, p.rr, em, dev)  # 0 is "no breathing": apnea's
            self._apnea(t, (not rr) and rec.movement == 0, p, em, dev)
        else:
            self.hr.feed(t, None, p.hr, em, dev)
            self.rr.feed(t, None, p.rr, em, dev)
            self._apnea(t, False, p, em, dev)
        if occupied is not self.occupied:
            self._occupancy(t, occupied, p, em, dev)
        if t >= self.next_due:  # deadlines that fell into a gap: known only now
            self.advance(t, t, t, p, em, dev)
        self.tel_t = t
        self.cap_until = t + dev.limit

    def alive(self, t: float, p: Params, em: Emitter, dev: DeviceState) -> None:
        """The device spoke at `t` (status or event) without a reading: its clock moves on,
        and the online clock too unless it had gone quiet (offline) before."""
        if self.tel_t is None or t <= self.tel_t:
            return
        if t <= self.cap_until:
            self.cap_until = max(self.cap_until, t + dev.limit)
        if t >= self.next_due:
            self.advance(t, min(t, self.cap_until), -INF, p, em, dev)

    def tick(self, now: float, p: Params, em: Emitter, dev: DeviceState) -> bool:
        """Evaluate time-based rules at the bed's clock `now` (no reading); True if any was due."""
        self.hr.check(now, p.hr, em, dev)
        self.rr.check(now, p.rr, em, dev)
        self._apnea_check(now, p, em, dev)
        if now < self.next_due:
            return False
        self.advance(now, min(now, self.cap_until), -INF, p, em, dev)
        return True

    def _apnea(self, t: float, apneic: bool, p: Params, em: Emitter, dev: DeviceState) -> None:
        run = self.apnea
        if run.due <= t:
            self._apnea_check(t, p, em, dev)
        if apneic:
            run.extend(t, 0.0, p.apnea_s)
            return
        if run.start is not None:
            run.stop()
        if dev.open and _APNEA in dev.open:
            em.clear(dev, _APNEA, t)

    def _apnea_check(self, now: float, p: Params, em: Emitter, dev: DeviceState) -> None:
        run = self.apnea
        if (at := run.check(now)) is not None and _APNEA not in dev.open:
            em.trigger(dev, _APNEA, p.severity[_APNEA], at,
                       {"since": iso(run.start or at), "sustained_s": p.apnea_s})

    def _occupancy(self, t: float, occupied: bool, p: Params, em: Emitter,
                   dev: DeviceState) -> None:
        previous, self.occupied = self.occupied, occupied
        if occupied:
            if self.out_since is None or t - self.out_since >= p.exit_return:
                self.session_occ = 0.0  # a new night (or the first reading)
            self.occ_since = t
            self.exit_due = self.absence_due = None
            em.clear(dev, _BED_EXIT, t)
            em.clear(dev, _ABSENCE, t)
        else:
            if previous:
                self.session_occ += t - self.occ_since
                if self.session_occ >= p.exit_min and p.is_night_exit(t):
                    self.exit_due = t + p.exit_return
            self.out_since = t
            self.absence_due = p.absence_deadline(t)
            em.clear(dev, _NOT_UP, t)
        if self.not_up_due is None:
            self.not_up_due = p.first_not_up_after(t)
        self._plan()

    def retime(self, p: Params) -> None:
        """New settings or usual rise: move the pending not-up check (same local day)."""
        if self.not_up_due is not None:
            self.not_up_due = p.not_up_deadline(p.local(self.not_up_due).date())
            self._plan()

    def _plan(self) -> None:
        self.next_due = min(INF if self.exit_due is None else self.exit_due,
                            INF if self.absence_due is None else self.absence_due,
                            INF if self.not_up_due is None else self.not_up_due)

    def advance(self, now: float, online: float, floor: float, p: Params, em: Emitter,
                dev: DeviceState) -> None:
        """Fire, in time order, the bed exit due by `now` and the not-up and long-absence
        deadlines due by `online` (the clock while the bed is heard), at `floor` at the earliest.
        """
        while True:
            exit_due = self.exit_due if self.exit_due is not None else INF
            absence = self.absence_due if self.absence_due is not None else INF
            not_up = self.not_up_due if self.not_up_due is not None else INF
            if exit_due > now:
                exit_due = INF
            if absence > online:
                absence = INF
            if not_up > online:
                not_up = INF
            due = min(exit_due, absence, not_up)
            if due == INF:
                return
            if due == exit_due:
                self.exit_due = None
                self._bed_exit(max(due, floor), p, em, dev)
            elif due == absence:
                self.absence_due = None
                self._long_absence(max(due, floor), p, em, dev)
            else:
                self._not_up(online, floor, p, em, dev)
            self._plan()
            em.changed = True

    def _bed_exit(self, at: float, p: Params, em: Emitter, dev: DeviceState) -> None:
        if _BED_EXIT not in dev.open and self.out_since is not None:
            em.trigger(dev, _BED_EXIT, p.severity[_BED_EXIT], at,
                       {"exit_at": iso(self.out_since), "away_s": at - self.out_since,
                        "in_bed_s": self.session_occ})

    def _long_absence(self, at: float, p: Params, em: Emitter, dev: DeviceState) -> None:
        if _ABSENCE not in dev.open and self.out_since is not None:
            em.trigger(dev, _ABSENCE, p.severity[_ABSENCE], at,
                       {"out_since": iso(self.out_since), "absent_s": at - self.out_since})

    def _not_up(self, online: float, floor: float, p: Params, em: Emitter,
                dev: DeviceState) -> None:
        due = self.not_up_due
        assert due is not None
        following = p.next_not_up(due)
        while following <= online:  # days the bed was not heard at their deadline: skipped
            due, following = following, p.next_not_up(following)
        self.not_up_due = following
        if self.occupied and self.occ_since <= due and _NOT_UP not in dev.open:
            em.trigger(dev, _NOT_UP, p.severity[_NOT_UP], max(due, floor),
                       {"deadline": iso(due), "in_bed_since": iso(self.occ_since),
                        "local_day": p.local(due).date().isoformat()})

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {"tel_t": self.tel_t,
                "cap_until": _num(self.cap_until), "occupied": self.occupied,
                "occ_since": self.occ_since, "out_since": self.out_since,
                "session_occ": self.session_occ, "exit_due": self.exit_due,
                "absence_due": self.absence_due, "not_up_due": self.not_up_due,
                "hr": self.hr.to_json(), "rr": self.rr.to_json(),
                "apnea": self.apnea.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BedState:
        """Restore from `to_json` output."""
        bed = cls()
        bed.tel_t = d["tel_t"]
        bed.cap_until = INF if d["cap_until"] is None else float(d["cap_until"])
        bed.occupied = d["occupied"]
        bed.occ_since = float(d["occ_since"])
        bed.out_since = d["out_since"]
        bed.session_occ = float(d["session_occ"])
        bed.exit_due = d["exit_due"]
        bed.absence_due = d["absence_due"]
        bed.not_up_due = d["not_up_due"]
        bed.hr = Vital.from_json(d["hr"])
        bed.rr = Vital.from_json(d["rr"])
        bed.apnea = Run.from_json(d["apnea"])
        bed._plan()
        return bed
