"""One resident's thresholds as plain floats, and the event-time helpers every rule uses.

Times are float Unix seconds of event (device) time: the hot path compares floats, never
datetimes. Nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from alerts.config import AlertSettings, VitalBands
from alerts.model import AlertType, Severity

INF = math.inf
_DAY = timedelta(days=1)
_NOON = time(12, 0)


def iso(t: float) -> str:
    """Event time (float seconds) as an ISO-8601 UTC string, for alert details."""
    return to_dt(t).isoformat()


def to_dt(t: float) -> datetime:
    """Event time (float seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(t, UTC)


def num(x: float) -> float | None:
    """A float for a JSON snapshot (infinity becomes null)."""
    return None if math.isinf(x) else x


@dataclass(frozen=True, slots=True)
class VitalSpec:
    """One vital sign's bands as plain floats, with the alert types of its two sides."""

    low: AlertType
    high: AlertType
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
        return cls(low, high, b.urgent_at_or_below, b.urgent_at_or_above,
                   b.warning_at_or_above, b.normal_low, b.normal_high,
                   float(b.urgent_sustain_s), float(b.warning_sustain_s), float(b.clear_after_s))


def night_start(default: time, usual_bedtime: time | None) -> time:
    """Where a resident's night starts: at their usual bedtime (learned) when that is an
    evening time earlier than the settings' night start, else the settings' night start.
    Only ever earlier: an early sleeper's exits after going to bed are watched, and a late
    sleeper keeps the default night (an exit after 22:00 is still watched)."""
    if usual_bedtime is None or not (_NOON <= usual_bedtime < default):
        return default
    return usual_bedtime


class Params:
    """One resident's thresholds, precomputed from AlertSettings for the hot path."""

    __slots__ = ("absence_margin", "apnea_s", "cancel_window", "default_hb", "exit_min",
                 "exit_return", "hr", "long_absence", "low_battery", "low_battery_clear",
                 "never_heard", "night_end", "night_start", "not_up_after", "not_up_at",
                 "offline_hb", "rise", "rise_margin", "rr", "severity", "test_overdue", "tz",
                 "usual_day", "usual_rise")

    def __init__(self, s: AlertSettings, tz: tzinfo, usual_rise: time | None,
                 usual_day_s: float | None = None, usual_bedtime: time | None = None) -> None:
        self.tz = tz
        self.usual_rise = usual_rise  # learned only (not_up)
        self.rise = usual_rise if usual_rise is not None else s.usual_rise_default
        self.rise_margin = timedelta(seconds=s.rise_margin_s)
        self.usual_day = float(usual_day_s if usual_day_s is not None
                               else s.usual_day_default_s)
        self.absence_margin = float(s.long_absence_margin_s)
        self.hr = VitalSpec.of(s.heart_rate, AlertType.HEART_RATE_LOW, AlertType.HEART_RATE_HIGH)
        self.rr = VitalSpec.of(s.respiration, AlertType.RESPIRATION_LOW,
                               AlertType.RESPIRATION_HIGH)
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
        self.night_start = night_start(s.night_start, usual_bedtime)
        self.night_end = s.night_end
        self.not_up_at = s.not_up_at
        self.not_up_after = timedelta(seconds=s.not_up_after_usual_rise_s)
        self.severity: dict[AlertType, Severity] = {a: s.severity_of(a) for a in AlertType}

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
