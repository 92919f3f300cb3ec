"""What every rule shares about a resident: the context, the per-device state and the emitter
that keeps one episode per device and alert type.

The per-device state is one object with a slot per rule family (listed below), because the
families read each other's facts (an offline alert reports the bed's last occupancy) and one
flat record per device is also the stored snapshot format (`detector_state`). Each rule saves
and restores its own slots (`Rule.dump`/`Rule.load`); the slots of `DeviceState.to_json` are
the detector's own: kind, heartbeat, watermark and open episodes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.config import AlertSettings
from alerts.model import AlertClear, AlertTrigger, AlertType, Decision, Severity
from alerts.rules.params import INF, Params, to_dt
from gateway.schema import DeviceType

if TYPE_CHECKING:
    from alerts.rules.bed import BedState

logger = logging.getLogger(__name__)

RECENT = 16
"""How many recent event times (offline) and sos/fall/cancel keys (alarms) a device keeps."""


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
    usual_bedtime: time | None = None  # personal baseline (alerts/learning), once learned


def zone(name: str) -> tzinfo:
    """The resident's time zone; an unknown name falls back to UTC (logged), never fails."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r; using UTC", name)
        return UTC


class DeviceState:
    """What the detector remembers about one device.

    Slots by owner: the detector (kind, ctx_hb, registered, hb, limit, seen_t, seen_recv,
    open); `OfflineRule` (off_at, will_recv, data_t, ev_t); `ButtonTestRule` (test_anchor,
    test_src); `AlarmRule` (sos_times, recent); `BatteryRule` (batt_last, batt_t,
    batt_ok_t); `BedRule` (bed). `extra` is for rules added later, keyed by their name.
    """

    __slots__ = ("batt_last", "batt_ok_t", "batt_t", "bed", "ctx_hb", "data_t", "device_id", "ev_t",
                 "extra", "hb", "kind", "limit", "off_at", "open", "recent", "registered",
                 "seen_recv", "seen_t", "sos_times", "test_anchor", "test_src", "will_recv")

    def __init__(self, device_id: str, kind: str, ctx_hb: int | None) -> None:
        self.device_id = device_id
        self.kind = kind  # DeviceType value, "" while unknown
        self.ctx_hb = ctx_hb  # heartbeat interval from the registry
        self.registered: float | None = None  # when the registry got it (from the context)
        self.hb: int | None = None  # heartbeat interval the device last reported
        self.limit = INF  # silence that makes it offline (set by the detector)
        self.seen_t: float | None = None  # watermark: latest event time of any record
        self.seen_recv: datetime | None = None  # when the watermark record was received
        self.open: dict[AlertType, Severity] = {}  # this device's open episodes
        self.batt_last: float | None = None  # last low_battery trigger (event time)
        self.batt_t: float | None = None  # latest battery report applied (event time)
        self.batt_ok_t: float | None = None  # latest charged report (event time)
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
        self.extra: dict[str, Any] = {}

    def set_limit(self, p: Params) -> None:
        """Recompute the offline limit: offline_heartbeats x the heartbeat interval."""
        self.limit = p.offline_hb * float(self.hb or self.ctx_hb or p.default_hb)

    def to_json(self) -> dict[str, Any]:
        """The detector's own slots, JSON-serialisable (the rules add theirs)."""
        return {"kind": self.kind, "hb": self.hb, "seen_t": self.seen_t,
                "seen_recv": None if self.seen_recv is None else self.seen_recv.timestamp(),
                "open": dict(self.open)}

    def load(self, d: dict[str, Any]) -> None:
        """Restore the detector's own slots from `to_json` output."""
        self.kind = self.kind or str(d["kind"])
        self.hb = d["hb"]
        self.seen_t = d["seen_t"]
        recv = d["seen_recv"]
        self.seen_recv = None if recv is None else to_dt(recv)
        self.open = {AlertType(k): Severity(v) for k, v in d["open"].items()}


class Emitter:
    """Collects one resident's decisions; one open episode per device and type."""

    __slots__ = ("changed", "devices", "out", "resident_id", "site")

    def __init__(self, resident_id: int, site: str, devices: dict[str, DeviceState]) -> None:
        self.resident_id = resident_id
        self.site = site
        self.devices = devices
        self.out: list[Decision] = []
        self.changed = False

    def trigger(self, dev: DeviceState, alert: AlertType, severity: Severity,
                at: float | datetime, details: dict[str, Any] | None,
                seq: int | None = None, episode: bool = True) -> None:
        """Open (or upgrade) `dev`'s episode of `alert` and emit its trigger."""
        if episode:
            dev.open[alert] = severity
        when = at if isinstance(at, datetime) else to_dt(at)
        self.out.append(AlertTrigger(self.resident_id, self.site, dev.device_id, alert,
                                     severity, when, seq, details))
        self.changed = True

    def clear(self, dev: DeviceState, alert: AlertType, at: float,
              reason: str | None = None) -> None:
        """End `dev`'s episode; the alert clears once no device of the resident has one."""
        if dev.open.pop(alert, None) is None:
            return
        self.changed = True
        if not any(alert in d.open for d in self.devices.values()):
            self.out.append(AlertClear(self.resident_id, self.site, alert, to_dt(at), reason))


class ResidentState:
    """One resident as every rule sees it: context, thresholds, devices, emitter, and the
    platform's own downtime (`resume`) that the offline rule must not blame on devices."""

    __slots__ = ("ctx", "devices", "em", "p", "resume", "stale")

    def __init__(self, ctx: ResidentContext) -> None:
        self.ctx = ctx
        self.p = Params(ctx.settings, zone(ctx.timezone), ctx.usual_rise, ctx.usual_day_s,
                        ctx.usual_bedtime)
        self.devices: dict[str, DeviceState] = {}
        self.em = Emitter(ctx.resident_id, ctx.site, self.devices)
        self.resume: tuple[float, float] | None = None  # platform (down since, up at), wall
        self.stale = 0  # telemetry readings ignored because they were older than the watermark

    def set_context(self, ctx: ResidentContext) -> None:
        """New settings, devices, time zone or learned habits."""
        self.ctx = ctx
        self.p = Params(ctx.settings, zone(ctx.timezone), ctx.usual_rise, ctx.usual_day_s,
                        ctx.usual_bedtime)
        self.em.site = ctx.site
