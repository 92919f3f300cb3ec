"""The one shape every detector's output is scored in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert as scored: who, what, when (event time). Rule alerts come from the store's
    decisions (opened alerts); a daily detector (routine change) yields these directly."""

    resident_id: int
    type: str
    at: datetime
    severity: str = ""
    count: int = 1
    detail: str = ""  # routine_change: the feature judged changed (one row per feature)
