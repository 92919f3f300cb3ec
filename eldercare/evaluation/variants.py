"""The configurations the harness runs side by side: the platform as configured, and the
ablations that switch one mechanism off at a time.

Each mechanism is switched off through switches that already exist, so the detection code
is the services' own: persistence and hysteresis are alert settings (`AlertSettings`, the
same model per-site and per-resident overrides use), deduplication is the store's (the
in-memory book's `dedup`), learned habits are the resident context's `usual_rise` and
`usual_day_s`. Personal baselines (issue 15's learning package) are not wired yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.config import AlertSettings, effective_settings


@dataclass(frozen=True, slots=True)
class Variant:
    """One configuration: its settings, whether the store dedups and habits are learned."""

    name: str
    title: str
    settings: AlertSettings
    dedup: bool = True
    habits: bool = True

    @property
    def detector_key(self) -> tuple[str, bool]:
        """Variants with the same key share one detector (only the store differs)."""
        return (self.settings.model_dump_json(), self.habits)


def _no_persistence(base: AlertSettings) -> dict[str, Any]:
    """Vital signs alert on the first reading in a band; apnea after one second."""
    vitals = {"urgent_sustain_s": 0, "warning_sustain_s": 0}
    return {"heart_rate": vitals, "respiration": vitals, "apnea_s": 1}


def _no_hysteresis(base: AlertSettings) -> dict[str, Any]:
    """No dead band between normal and alerting, and a clear on the first normal reading;
    a battery clears as soon as it is above the threshold."""
    out: dict[str, Any] = {"low_battery_clear_margin": 1}
    for name in ("heart_rate", "respiration"):
        b = getattr(base, name)
        out[name] = {"clear_after_s": 0, "normal_low": b.urgent_at_or_below + 0.1,
                     "normal_high": b.warning_at_or_above - 0.1}
    return out


def variants(base: AlertSettings) -> list[Variant]:
    """The platform as configured first, then one ablation per mechanism."""
    return [
        Variant("default", "as configured", base),
        Variant("no_persistence", "persistence off",
                effective_settings(base, _no_persistence(base))),
        Variant("no_hysteresis", "hysteresis off",
                effective_settings(base, _no_hysteresis(base))),
        Variant("no_dedup", "deduplication off", base, dedup=False),
        Variant("no_habits", "learned habits off (population rise time and day length)",
                base, habits=False),
    ]


NOT_WIRED = [("personal_baselines", "personal baselines off",
              "not wired: the learning package (alerts/learning/) is not part of this run")]
