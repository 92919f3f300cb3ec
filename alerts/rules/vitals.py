"""Vital signs: heart rate and respiration bands with persistence and hysteresis, and apnea.

A run is consecutive readings in one band; each reading stands until the next one, for at most
`HOLD_S`, so a gap in the telemetry, a null value or an out-of-bed reading breaks it. An alert
fires when a run has lasted its sustain time and clears after a run back in the normal band
(`clear_after_s`); values between normal and warning neither raise nor clear. These run inside
the bed rule (`alerts.rules.bed.BedRule`), on each reading of a bed sensor, in that rule's
order; their state is part of the bed's (`BedState.hr`, `.rr`, `.apnea`).
"""

from __future__ import annotations

from typing import Any

from alerts.model import AlertType, Severity
from alerts.rules.params import INF, Params, VitalSpec, iso, num
from alerts.rules.state import DeviceState, Emitter

HOLD_S = 15.0
"""A reading stands for at most this long (or until the next reading): longer gaps in the
telemetry break a run, and a silent bed's last reading is extrapolated no further."""

URGENT = Severity.URGENT
WARNING = Severity.WARNING
_APNEA = AlertType.APNEA



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
        return [self.start, self.last, self.value, num(self.due)]

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


def _vital_details(run: Run, band: Severity, threshold: float,
                   sustain: float) -> dict[str, Any]:
    return {"value": run.value, "band": band, "threshold": threshold, "sustained_s": sustain,
            "since": iso(run.start) if run.start is not None else None}


def apnea_reading(run: Run, t: float, apneic: bool, p: Params, em: Emitter,
                  dev: DeviceState) -> None:
    """One reading for the apnea run: in bed, no breathing and no movement extends it; any
    other reading (breathing, movement, out of bed) ends it and clears an open apnea."""
    if run.due <= t:
        apnea_check(run, t, p, em, dev)
    if apneic:
        run.extend(t, 0.0, p.apnea_s)
        return
    if run.start is not None:
        run.stop()
    if dev.open and _APNEA in dev.open:
        em.clear(dev, _APNEA, t)


def apnea_check(run: Run, now: float, p: Params, em: Emitter, dev: DeviceState) -> None:
    """Trigger apnea once the run has lasted `apnea_s` by `now`."""
    if (at := run.check(now)) is not None and _APNEA not in dev.open:
        em.trigger(dev, _APNEA, p.severity[_APNEA], at,
                   {"since": iso(run.start or at), "sustained_s": p.apnea_s})
