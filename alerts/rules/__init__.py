"""Detection rules, grouped by family, behind one interface (`Rule`, in `base`).

- `offline`: device offline (silence, Last Will, never heard) and the restart grace;
- `device`: alarms (sos, fall, cancel), the call button's test, low battery;
- `bed`: a bed sensor's readings: bed exit, not up, long absence, and through `vitals` heart
  rate, respiration and apnea;
- `state`, `params`: what the rules share (per-resident and per-device state, the emitter of
  decisions, thresholds precomputed from `AlertSettings`).

`DEFAULT_RULES` is the registry the detector is built from; its order is the order of the
rules' hooks and so of their decisions for one record or tick. A new rule is one more entry
(docs/alerts.md, "How rules plug in").
"""

from __future__ import annotations

from alerts.rules.base import Rule, RuleBase
from alerts.rules.bed import BedRule
from alerts.rules.device import AlarmRule, BatteryRule, ButtonTestRule
from alerts.rules.offline import OfflineRule

DEFAULT_RULES: tuple[Rule, ...] = (OfflineRule(), ButtonTestRule(), AlarmRule(),
                                   BatteryRule(), BedRule())
"""Offline first (it judges the silence before a record counts as the device speaking),
the bed last (a reading's decisions follow the device's)."""

__all__ = ["DEFAULT_RULES", "AlarmRule", "BatteryRule", "BedRule", "ButtonTestRule",
           "OfflineRule", "Rule", "RuleBase"]
