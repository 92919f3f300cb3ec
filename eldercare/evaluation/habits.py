"""What the platform learns of a resident's habits from its daily rollups, from the stream.

The service reads a resident's usual rise time (the median of the last 14 days' rise
times) and usual day (the 90th percentile of the time out of bed on days the mat covered,
>= 23 h of readings) from `resident_daily` (alerts/context.py, `_HISTORY`). The direct run
has no database, so this learner keeps the same two figures from the bed readings it
passes to the detector: a day's rise is the first time the bed empties between 04:00 and
14:00 local and then stays empty for an hour (a toilet trip is shorter).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

WINDOW_DAYS = 14
RISE_FROM = time(4, 0)
RISE_UNTIL = time(14, 0)
RISE_EMPTY_S = 3600.0
COVERED_S = 1380 * 60.0


@dataclass
class _Day:
    in_bed_s: float = 0.0
    data_s: float = 0.0
    rise: time | None = None


class HabitLearner:
    """Usual rise time and usual day of one resident, learned from bed readings."""

    def __init__(self, tz: tzinfo, period_s: float) -> None:
        self.tz = tz
        self.period_s = period_s
        self._days: OrderedDict[date, _Day] = OrderedDict()
        self._occupied: bool | None = None
        self._candidate: datetime | None = None

    def reading(self, t: datetime, occupied: bool) -> None:
        """One bed reading (in time order)."""
        local = t.astimezone(self.tz)
        day = self._day(local.date())
        day.data_s += self.period_s
        if occupied:
            day.in_bed_s += self.period_s
            self._candidate = None
        elif self._occupied and RISE_FROM <= local.time() < RISE_UNTIL:
            self._candidate = local
        cand = self._candidate
        if cand is not None and (local - cand).total_seconds() >= RISE_EMPTY_S:
            rise_day = self._day(cand.date())
            if rise_day.rise is None:
                rise_day.rise = cand.time().replace(microsecond=0)
            self._candidate = None
        self._occupied = occupied

    def _day(self, d: date) -> _Day:
        day = self._days.get(d)
        if day is None:
            day = self._days[d] = _Day()
            while len(self._days) > WINDOW_DAYS + 2:
                self._days.popitem(last=False)
        return day

    def usual(self, today: date) -> tuple[time | None, float | None]:
        """(usual rise, usual day in seconds) from the days since `today - 14` (the query's
        `d.day >= current_date - 14`), None while there are none."""
        since = today - timedelta(days=WINDOW_DAYS)
        days = [(d, v) for d, v in self._days.items() if since <= d]
        rises = sorted(v.rise for d, v in days if v.rise is not None)
        # percentile_disc(0.5): the first value whose cumulative share reaches one half
        rise = rises[math.ceil(len(rises) / 2) - 1] if rises else None
        lengths = [86_400 - v.in_bed_s for d, v in days if d < today and v.data_s >= COVERED_S]
        day_s = _percentile_cont(lengths, 0.9) if lengths else None
        return rise, day_s


def _percentile_cont(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the nearest ranks."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

