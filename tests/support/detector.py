"""Builders for the pure detector's tests: a resident's context, a feed of its devices'
records (with seqs and the platform's receive lag), and picking decisions apart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings
from alerts.detector import DeviceContext, ResidentContext, ResidentDetector
from alerts.model import AlertCancel, AlertClear, AlertTrigger, Decision
from gateway.records import EventRecord, Record, StatusRecord, TelemetryRecord
from gateway.schema import DeviceType, EventType

BED = "bed-1"
BTN = "btn-1"
SITE = "north"
RID = 7
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
LAG = timedelta(milliseconds=200)  # device time -> received by the platform


def at(seconds: float) -> datetime:
    """T0 + seconds."""
    return T0 + timedelta(seconds=seconds)


def context(tz: str = "UTC", settings: AlertSettings | None = None,
            usual_rise: time | None = None, last_test_at: datetime | None = None,
            devices: Sequence[DeviceContext] | None = None) -> ResidentContext:
    """A resident with one bed sensor and one call button."""
    if devices is None:
        devices = (DeviceContext(BED, DeviceType.BED_SENSOR, 60),
                   DeviceContext(BTN, DeviceType.CALL_BUTTON, 60))
    return ResidentContext(RID, SITE, tz, settings or AlertSettings(), tuple(devices),
                           usual_rise, last_test_at)


class Feed:
    """Builds a resident's records: one seq counter per device, received LAG after `ts`."""

    def __init__(self) -> None:
        self.seq: dict[str, int] = defaultdict(int)

    def _next(self, device: str) -> int:
        self.seq[device] += 1
        return self.seq[device]

    def reading(self, t: datetime, occupied: bool = True, hr: float | None = 60.0,
                rr: float | None = 14.0, mv: int = 3, device: str = BED) -> TelemetryRecord:
        """One bed-sensor reading (out of bed: no vitals, no movement)."""
        if not occupied:
            hr, rr, mv = None, None, 0
        return TelemetryRecord(t, device, RID, self._next(device), occupied, hr, rr, mv, None,
                               t + LAG)

    def readings(self, start: datetime, seconds: float, step: float = 1.0,
                 **kw: Any) -> list[TelemetryRecord]:
        """Readings every `step` s in [start, start + seconds)."""
        n = round(seconds / step)
        return [self.reading(start + timedelta(seconds=i * step), **kw) for i in range(n)]

    def event(self, t: datetime, typ: EventType, device: str = BTN,
              detail: str | None = None) -> EventRecord:
        """One device event."""
        return EventRecord(t, device, RID, SITE, self._next(device), typ, detail, None, t + LAG)

    def status(self, t: datetime, device: str = BED, battery: int | None = 80,
               heartbeat_s: int | None = 60) -> StatusRecord:
        """One status heartbeat."""
        return StatusRecord(t, device, RID, self._next(device), True, battery, -60, "fw",
                            heartbeat_s, None, t + LAG)

    def will(self, received: datetime, device: str = BED) -> StatusRecord:
        """The broker's Last Will: stored at its receive time."""
        return StatusRecord(received, device, RID, None, False, None, None, None, None, None,
                            received)


def triggers(decisions: Iterable[Decision], typ: str | None = None) -> list[AlertTrigger]:
    """The triggers (of one type)."""
    return [d for d in decisions if isinstance(d, AlertTrigger) and typ in (None, d.type)]


def clears(decisions: Iterable[Decision], typ: str | None = None) -> list[AlertClear]:
    """The clears (of one type)."""
    return [d for d in decisions if isinstance(d, AlertClear) and typ in (None, d.type)]


def comparable(decisions: Iterable[Decision]) -> list[Decision]:
    """Decisions without their random uid, in a stable order."""
    out = [replace(d, uid="") if isinstance(d, AlertTrigger) else d for d in decisions]
    return sorted(out, key=lambda d: (d.at, type(d).__name__, d.type if not isinstance(
        d, AlertCancel) else "cancel"))


def run(det: ResidentDetector, *batches: Sequence[Record]) -> list[Decision]:
    """Feed batches in order; all decisions."""
    out: list[Decision] = []
    for batch in batches:
        out += det.on_records(batch)
    return out


def vitals(feed: Feed, start: float, seconds: float, **kw: Any) -> list[TelemetryRecord]:
    """1 Hz in-bed readings from T0 + start."""
    return feed.readings(at(start), seconds, **kw)


# --- local time in a site's zone (the bed rules) ------------------------------------------

SH = ZoneInfo("Asia/Shanghai")


def local(hh: int, mm: int = 0, day: int = 1) -> datetime:
    """Shanghai wall time on 2026-03-<day>, as UTC (what records carry)."""
    return datetime(2026, 3, day, hh, mm, tzinfo=SH).astimezone(UTC)


def minutes(n: float) -> timedelta:
    """n minutes."""
    return timedelta(minutes=n)
