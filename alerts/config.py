"""Every alert threshold and escalation delay in one settings model, with per-site and
per-resident overrides (table `alert_overrides`) merged over the platform defaults."""

from __future__ import annotations

from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.model import AlertType, Audience, Severity


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VitalBands(_Frozen):
    """Alert bands for one vital sign (NEWS2-style): urgent extremes, a warning band, normal."""

    urgent_at_or_below: float = Field(description="Urgent 'low' alert at or below this value.")
    urgent_at_or_above: float = Field(description="Urgent 'high' alert at or above this value.")
    urgent_sustain_s: int = Field(default=120, ge=0, description="Seconds sustained (urgent).")
    warning_at_or_above: float = Field(
        description="Warning 'high' alert from this value up to the urgent band.")
    warning_sustain_s: int = Field(ge=0, description="Seconds sustained (warning).")
    normal_low: float = Field(description="Normal band, lower bound (inclusive).")
    normal_high: float = Field(description="Normal band, upper bound (inclusive).")
    clear_after_s: int = Field(default=300, ge=0,
                               description="Seconds back in the normal band before it clears.")

    @model_validator(mode="after")
    def _ordered(self) -> VitalBands:
        if not (self.urgent_at_or_below < self.normal_low <= self.normal_high
                < self.warning_at_or_above < self.urgent_at_or_above):
            raise ValueError("bands must be ordered: urgent low < normal low <= normal high "
                             "< warning < urgent high")
        return self


class EscalationStep(_Frozen):
    """After `after_s` without acknowledgement, notify `audience`."""

    after_s: int = Field(ge=0)
    audience: Audience


def _steps(*pairs: tuple[int, Audience]) -> list[EscalationStep]:
    return [EscalationStep(after_s=s, audience=a) for s, a in pairs]


_W, _D, _F = Audience.SITE_WORKERS, Audience.DUTY_OFFICERS, Audience.FAMILY

DEFAULT_ESCALATION: dict[Severity, list[EscalationStep]] = {
    Severity.CRITICAL: _steps((60, _W), (180, _D), (600, _F)),
    Severity.URGENT: _steps((180, _W), (600, _D), (1200, _F)),
    Severity.HIGH: _steps((300, _W), (900, _D), (1800, _F)),
    Severity.WARNING: _steps((1800, _W), (3600, _D)),
    Severity.INFO: [],
}

DEFAULT_SEVERITY: dict[AlertType, Severity] = {
    AlertType.SOS: Severity.CRITICAL,
    AlertType.FALL: Severity.CRITICAL,
    AlertType.APNEA: Severity.CRITICAL,
    AlertType.BED_EXIT_NO_RETURN: Severity.HIGH,
    AlertType.NOT_UP: Severity.HIGH,
    AlertType.LONG_ABSENCE: Severity.HIGH,
    AlertType.DEVICE_OFFLINE: Severity.WARNING,
    AlertType.LOW_BATTERY: Severity.INFO,
    AlertType.TEST_OVERDUE: Severity.INFO,
    # issue 15's "medium": worth a look today, never a page in the night
    AlertType.ROUTINE_CHANGE: Severity.WARNING,
    # vital-sign alerts take their severity from the band (urgent or warning)
}

# After an alert of this type is resolved, the same condition does not reopen it for this long.
# A new SOS or fall is always a new emergency: no refractory period.
DEFAULT_REFRACTORY_S: dict[AlertType, int] = {
    AlertType.SOS: 0,
    AlertType.FALL: 0,
    AlertType.APNEA: 300,
    AlertType.BED_EXIT_NO_RETURN: 1800,
    AlertType.HEART_RATE_LOW: 1800,
    AlertType.HEART_RATE_HIGH: 1800,
    AlertType.RESPIRATION_LOW: 1800,
    AlertType.RESPIRATION_HIGH: 1800,
    AlertType.NOT_UP: 6 * 3600,
    AlertType.LONG_ABSENCE: 6 * 3600,
    AlertType.DEVICE_OFFLINE: 1800,
    AlertType.LOW_BATTERY: 24 * 3600,
    AlertType.TEST_OVERDUE: 24 * 3600,
    # Routine change keeps its own per-feature cooldown (routine_change.cooldown_days): a
    # resolved night-exits change must not hide a heart-rate change the next day.
    AlertType.ROUTINE_CHANGE: 0,
}


class RoutineChangeSettings(_Frozen):
    """Routine-change detection of one resident (alerts/learning/routine.py)."""

    enabled: bool = Field(default=True, description="Watch this resident's daily routine.")
    sensitivity: float = Field(
        default=1.0, ge=0.25, le=4.0,
        description="Above 1 alerts on smaller changes (sooner), below 1 only on larger ones.")
    cooldown_days: int = Field(default=7, ge=1, le=90,
                               description="At most one alert per feature in this many days.")
    ewma_lambda: float = Field(default=0.5, gt=0, le=1,
                               description="Weight of the newest day in the EWMA.")
    threshold: float = Field(default=2.0, gt=0,
                             description="EWMA of the robust z-score that alerts "
                                         "(divided by the sensitivity).")
    z_clip: float = Field(default=3.0, gt=0,
                          description="A day's robust z-score counts at most this much: one "
                                      "extreme day alone does not make a routine change.")
    rearm: float = Field(default=0.5, ge=0,
                         description="After an alert, the feature alerts again in the same "
                                     "direction only once its EWMA has come back down to "
                                     "this (hysteresis: a lasting change is one alert).")


class OutlierDigestSettings(_Frozen):
    """The daily digest's outlier model (alerts/learning/outliers.py): a second signal for
    the duty officer, never a page. Per resident through the usual overrides, e.g.
    `{"outlier_digest": {"enabled": false}}` or `{"outlier_digest": {"sensitivity": 0.1}}`."""

    enabled: bool = Field(default=True, description="Score this resident for the digest.")
    sensitivity: float = Field(
        default=0.05, gt=0, le=0.5,
        description="Share of the resident's own usual days that would look as unusual as "
                    "the flagged nights: higher flags more (0.01 = only the strangest).")
    min_nights: int = Field(default=14, ge=7, description="Nights of good data before a "
                                                          "model is fitted.")
    recent_nights: int = Field(default=3, ge=1, le=14,
                               description="The last nights scored together.")
    min_z: float = Field(default=2.0, ge=0,
                         description="A flagged resident needs at least one feature this many "
                                     "robust standard deviations from usual (the 'why').")


class AlertSettings(_Frozen):
    """All detection thresholds, refractory periods and escalation delays (one model)."""

    sos_cancel_window_s: int = Field(default=30, ge=0,
                                     description="An sos_cancel within this closes the SOS.")
    night_start: time = Field(default=time(22, 0), description="Resident local time.")
    night_end: time = Field(default=time(7, 0), description="Resident local time.")
    bed_exit_min_occupied_s: int = Field(default=600, ge=0,
                                         description="In bed at least this long before an exit "
                                                     "counts (bed_exit_no_return).")
    bed_exit_return_s: int = Field(default=1200, ge=1,
                                   description="Not back in bed within this -> alert.")
    heart_rate: VitalBands = VitalBands(
        urgent_at_or_below=40, urgent_at_or_above=131, urgent_sustain_s=120,
        warning_at_or_above=111, warning_sustain_s=600, normal_low=51, normal_high=90,
        clear_after_s=300)
    respiration: VitalBands = VitalBands(
        urgent_at_or_below=8, urgent_at_or_above=25, urgent_sustain_s=120,
        warning_at_or_above=21, warning_sustain_s=900, normal_low=12, normal_high=20,
        clear_after_s=300)
    apnea_s: int = Field(default=20, ge=1, description="Occupied, no breathing, no movement.")
    not_up_at: time = Field(default=time(10, 0), description="Still in bed at this local time.")
    not_up_after_usual_rise_s: int = Field(
        default=3600, ge=0, description="Or this long after the resident's usual rise time, "
                                        "whichever is later.")
    usual_rise_default: time = Field(
        default=time(6, 0),
        description="Population default of a resident's usual rise time (local), until it is "
                    "learned (the median of the last 14 days' rise times).")
    rise_margin_s: int = Field(
        default=3600, ge=0,
        description="An exit this long before the usual rise (or later) is getting up for the "
                    "day, not a night exit (bed_exit_no_return).")
    long_absence_s: int = Field(default=12 * 3600, ge=1,
                                description="Out of bed at least this long (long_absence) ...")
    usual_day_default_s: int = Field(
        default=16 * 3600, ge=0,
        description="Population default of a resident's usual day (time out of bed per day) "
                    "until it is learned.")
    long_absence_margin_s: int = Field(
        default=3600, ge=0,
        description="... and past the day's usual end: rise + usual day + this margin.")
    offline_heartbeats: float = Field(default=3.0, gt=1,
                                      description="Silent for this many heartbeat intervals.")
    default_heartbeat_s: int = Field(default=60, ge=1,
                                     description="When a device has not reported its interval.")
    low_battery_percent: int = Field(default=20, ge=0, le=100,
                                     description="A status battery level at or below this "
                                                 "opens low_battery.")
    low_battery_clear_margin: int = Field(
        default=10, ge=1, le=100,
        description="low_battery clears when a status reports at least low_battery_percent "
                    "+ this (a new or recharged battery); the gap stops a level hovering at "
                    "the threshold from flapping.")
    never_heard_s: int = Field(default=86400, ge=1,
                               description="A registered device that has never sent anything "
                                           "is reported offline this long after it was "
                                           "registered.")
    test_overdue_s: int = Field(default=7 * 86400, ge=1,
                                description="No 'test' press from a call button for this long.")
    routine_change: RoutineChangeSettings = RoutineChangeSettings()
    outlier_digest: OutlierDigestSettings = Field(default_factory=OutlierDigestSettings)
    severity: dict[AlertType, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    refractory_s: dict[AlertType, int] = Field(
        default_factory=lambda: dict(DEFAULT_REFRACTORY_S))
    escalation: dict[Severity, list[EscalationStep]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_ESCALATION.items()})

    def severity_of(self, alert_type: AlertType) -> Severity:
        """Configured severity of a non-vital alert type."""
        return self.severity.get(alert_type, Severity.WARNING)

    def refractory_of(self, alert_type: str) -> int:
        """Seconds after resolution during which the same type does not reopen."""
        try:
            return self.refractory_s.get(AlertType(alert_type), 0)
        except ValueError:
            return 0


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`, recursing into nested mappings."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def effective_settings(base: AlertSettings, *overrides: dict[str, Any] | None) -> AlertSettings:
    """Platform defaults, then site, then resident overrides (later wins); validated."""
    merged = base.model_dump(mode="json")
    for override in overrides:
        if override:
            merged = deep_merge(merged, override)
    return AlertSettings.model_validate(merged)
