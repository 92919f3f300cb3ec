"""Builders of DayFeatures series for the learning tests (deterministic: seeded numpy)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np

from alerts.learning.features import PERSON_FEATURES, DayFeatures

DAY0 = date(2026, 1, 1)


def series(n: int, *, seed: int = 7, coverage: float = 1.0, resident: int = 1,
           shift: Callable[[int, str], float] | None = None,
           alerted: frozenset[int] = frozenset(), noise: float = 1.0) -> list[DayFeatures]:
    """`n` days from DAY0 of ordinary values around each feature's population default (noise:
    that many population MADs), plus `shift(day_index, feature)`."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        values: dict[str, float | None] = {}
        for f in PERSON_FEATURES:
            v = f.default_median + noise * f.default_mad * float(rng.normal())
            values[f.name] = v + (shift(i, f.name) if shift else 0.0)
        values.update(coverage=coverage * 100, offline_min=(1 - coverage) * 1440,
                      min_battery=80.0)
        out.append(DayFeatures(resident, DAY0 + timedelta(days=i), values, coverage,
                               i in alerted))
    return out


def day(i: int) -> date:
    return DAY0 + timedelta(days=i)
