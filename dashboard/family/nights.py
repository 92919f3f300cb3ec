"""Last night's sleep and the last days, compared with the person's usual: pure functions.

"The night of day D" is the rollups' night (ingest.rollups.DayRules, docs/storage.md):
22:00 the evening before D to 07:00 on D, local time. Before 07:00 the night in progress is
not over, so "last night" is the one that ended this morning, or, before it ends, the one
that ended yesterday morning.

"Usual" is the median of the previous 14 nights that have a value, and only when at least
`MIN_NIGHTS` of them do: a median of two nights would call an ordinary night unusual.
A value is "about usual" within a tolerance a relative would not worry about.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dashboard.family.words import COMPARED
from ingest.rollups import DayRules

USUAL_NIGHTS = 14
MIN_NIGHTS = 5
RULES = DayRules()  # the rollups' night: 22:00-07:00 local
HR_TOLERANCE = 5.0   # beats per minute
RR_TOLERANCE = 2.0   # breaths per minute


@dataclass(frozen=True, slots=True)
class Night:
    """One night's facts (resident_daily and the in-bed minutes of the night window)."""

    day: date
    time_in_bed_s: int | None = None
    night_exits: int | None = None
    resting_hr: float | None = None
    median_rr: float | None = None
    alerts: int = 0


@dataclass(frozen=True, slots=True)
class Compared:
    """A value next to the usual one, and the words for the difference."""

    value: float | None
    usual: float | None
    kind: str
    text: str


def last_night(now: datetime, tz: ZoneInfo, rules: DayRules = RULES) -> date:
    """The day whose night ended most recently (its morning is past `night_end`)."""
    local = now.astimezone(tz)
    ended = local.time() >= time.fromisoformat(rules.night_end)
    return local.date() if ended else local.date() - timedelta(days=1)


def night_window(day: date, tz: ZoneInfo, rules: DayRules = RULES
                 ) -> tuple[datetime, datetime]:
    """The night of `day` as aware instants: [evening before at night_start, day at night_end)."""
    start = datetime.combine(day - timedelta(days=1), time.fromisoformat(rules.night_start), tz)
    end = datetime.combine(day, time.fromisoformat(rules.night_end), tz)
    return start, end


def usual(values: Sequence[float | None], min_nights: int = MIN_NIGHTS) -> float | None:
    """Median of the known values, or None with fewer than `min_nights` of them."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) >= min_nights else None


def compare(value: float | None, typical: float | None, tolerance: float) -> Compared:
    """`value` against `typical`: usual / higher / lower, or unknown without both."""
    if value is None or typical is None:
        kind = "unknown"
    elif abs(value - typical) <= tolerance:
        kind = "usual"
    else:
        kind = "higher" if value > typical else "lower"
    return Compared(value, typical, kind, COMPARED[kind])


def previous(nights: Sequence[Night], day: date, count: int = USUAL_NIGHTS) -> list[Night]:
    """The up to `count` nights before `day` (the ones its usual is taken from)."""
    first = day - timedelta(days=count)
    return sorted((n for n in nights if first <= n.day < day), key=lambda n: n.day)


def week(nights: Sequence[Night], day: date, days: int = 7) -> list[Night]:
    """The `days` nights ending with `day`, oldest first; a night without data is empty."""
    by_day = {n.day: n for n in nights}
    return [by_day.get(d, Night(d)) for d in
            (day - timedelta(days=offset) for offset in range(days - 1, -1, -1))]
