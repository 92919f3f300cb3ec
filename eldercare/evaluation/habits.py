"""What the platform learns of a resident's habits from its daily rollups, from the stream.

The service takes the rule engine's personal parameters (usual rise time, usual day, usual
bedtime) from the resident's personal baselines once they count 14 days
(alerts/learning/baselines.py `personal_times`, over the baselines the learning job stored
for the last completed day), and until then from the last 14 days of `resident_daily`
(alerts/context.py, `_HISTORY`: the median rise time and the 90th percentile of the time out
of bed on days the mat covered). The direct run has no database, so this learner builds the
same day records from the bed readings it is passed, as the rollups would
(ingest/rollups.py: `_MINUTE_ROLLUP` then `_DAILY`: rise time, bedtime, longest empty-bed
stretch, time in bed, data coverage), marks the days on which an alert about the person was
opened (from the alert book it is given, as alerts/learning/store.py marks them), and calls
the SAME baseline code with the learning job's window, minimum and gap, so the rule engine
in the evaluation gets exactly the answers the service's would.

Differences left: a day is summarised once, when it is complete (the service re-summarises
the current day as data arrives; only complete days count for the figures used here), and
the fallback's 14 days count back from the resident's local day (the query's from the
database's date).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

from alerts.learning.baselines import PersonalTimes, baselines, personal_times
from alerts.learning.features import BY_NAME, DayFeatures
from alerts.learning.routine import RoutineSettings
from alerts.learning.store import NOT_ABOUT_THE_PERSON
from ingest.rollups import DayRules

FALLBACK_DAYS = 14  # alerts/context.py `_HISTORY`: `d.day >= current_date - 14`
COVERED_MINUTES = 1380  # ... `d.data_minutes >= 1380` for the usual day
# The features the rule engine's parameters come from (personal_times).
RULE_FEATURES = (BY_NAME["rise_time"], BY_NAME["bedtime"], BY_NAME["away_s"])
_MIN = 60
_ONE_MINUTE = timedelta(minutes=1)
_RULES = DayRules()  # the rollup's (ingest.jobs runs _DAILY with the defaults)
_ROUTINE = RoutineSettings()  # the learning job's window, minimum and gap


class _Alert(Protocol):
    """An opened alert as the alert book keeps it (eldercare.evaluation.book.BookedAlert)."""

    @property
    def type(self) -> str: ...
    @property
    def opened_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One local day as `resident_daily` would hold it (the columns the habits read)."""

    day: date
    data_minutes: int
    day_minutes: float
    time_in_bed_s: float
    rise: datetime | None  # the resident's local time
    bedtime: datetime | None
    away_s: float | None


def _clock(t: time) -> int:
    return t.hour * 60 + t.minute


class HabitLearner:
    """The rule engine's personal parameters of one resident, learned from bed readings.

    `alerts`: the resident's opened alerts (a list the alert book keeps appending to; None:
    no day is left out of the baselines)."""

    def __init__(self, tz: tzinfo, period_s: float, alerts: Sequence[_Alert] | None = None,
                 rules: DayRules = _RULES, routine: RoutineSettings = _ROUTINE) -> None:
        self.tz = tz
        self.period_s = period_s
        self.alerts = alerts
        self.rules = rules
        self.routine = routine
        self._minutes: dict[int, list[int]] = {}  # minute (epoch // 60): [readings, occupied]
        self._acc: list[int] | None = None  # the current minute's counts, [from, until)
        self._acc_from = self._acc_until = datetime.min.replace(tzinfo=UTC)
        self._first: date | None = None
        self._next_day: date | None = None  # the first day not yet summarised
        self.summaries: dict[date, DaySummary] = {}
        self._cache: tuple[date, tuple[time | None, float | None, time | None]] | None = None

    def reading(self, t: datetime, occupied: bool) -> None:
        """One bed reading (in time order). Hot: a reading in the minute of the one before
        costs two comparisons (datetime.timestamp is the expensive part)."""
        acc = self._acc
        if acc is None or not (self._acc_from <= t < self._acc_until):
            stamp = t.timestamp()
            minute = int(stamp) // _MIN
            self._acc_from = t - timedelta(seconds=stamp - minute * _MIN)
            self._acc_until = self._acc_from + _ONE_MINUTE
            acc = self._acc = self._minutes.get(minute)
            if acc is None:
                acc = self._acc = self._minutes[minute] = [0, 0]
                if self._first is None:
                    self._first = t.astimezone(self.tz).date()
        acc[0] += 1
        if occupied:
            acc[1] += 1

    def usual(self, today: date) -> tuple[time | None, float | None]:
        """(usual rise, usual day in seconds) as the service loads them on local `today`;
        None: not learned (the rule engine's population default)."""
        rise, day_s, _ = self.usual_times(today)
        return rise, day_s

    def usual_times(self, today: date) -> tuple[time | None, float | None, time | None]:
        """(usual rise, usual day in seconds, usual bedtime) on local `today`."""
        if self._cache is not None and self._cache[0] == today:
            return self._cache[1]
        times = self.personal(today)
        rise, day_s = self._fallback(today)
        out = (times.usual_rise or rise,
               day_s if times.usual_day_s is None else times.usual_day_s,
               times.usual_bedtime)
        self._cache = (today, out)
        return out

    def personal(self, today: date) -> PersonalTimes:
        """What the baselines give: those the learning job stored for the last complete day
        (the day before `today`), over the days the rollups summarised."""
        self._summarise_until(today)
        s = self.routine
        days = [self._features(d) for d in self.summaries.values()]
        return personal_times(baselines(days, today - timedelta(days=1), RULE_FEATURES,
                                        s.window_days, s.min_days, s.gap_days))

    def _fallback(self, today: date) -> tuple[time | None, float | None]:
        """`_HISTORY`'s figures: the median rise (percentile_disc) and the 90th percentile
        (percentile_cont) of the time out of bed on covered days, over the last 14 days."""
        since = today - timedelta(days=FALLBACK_DAYS)
        recent = [v for d, v in self.summaries.items() if since <= d]
        rises = sorted(v.rise.time().replace(second=0, microsecond=0)
                       for v in recent if v.rise is not None)
        rise = rises[math.ceil(len(rises) / 2) - 1] if rises else None
        lengths = [86_400 - v.time_in_bed_s for v in recent
                   if v.data_minutes >= COVERED_MINUTES]
        return rise, (_percentile_cont(lengths, 0.9) if lengths else None)

    # --- the daily rollup --------------------------------------------------------------------

    def _local(self, day: date, clock: str | time) -> int:
        """Epoch seconds of a local clock time of `day`."""
        t = clock if isinstance(clock, time) else time.fromisoformat(clock)
        return int(datetime.combine(day, t, self.tz).timestamp())

    def _summarise_until(self, today: date) -> None:
        """Summarise every complete local day before `today` not summarised yet, then forget
        the minutes no later day needs (a day reads from 18:00 the evening before)."""
        if self._first is None:
            return
        day = self._next_day or self._first
        while day < today:
            summary = self._summary(day)
            if summary is not None:
                self.summaries[day] = summary
            day += timedelta(days=1)
        self._next_day = day
        keep_from = self._local(day - timedelta(days=1), self.rules.evening_start) // _MIN
        for m in [m for m in self._minutes if m < keep_from]:
            del self._minutes[m]
        self._acc = None
        oldest = today - timedelta(days=self.routine.window_days + self.routine.gap_days + 2)
        for d in [d for d in self.summaries if d < min(oldest, today - timedelta(
                days=FALLBACK_DAYS))]:
            del self.summaries[d]

    def _summary(self, day: date) -> DaySummary | None:
        """`_DAILY` for one local day: minutes from 18:00 the evening before to the local
        midnight ending it; a minute is in bed when occupied at least half of it."""
        r = self.rules
        before = day - timedelta(days=1)
        day_start, day_end = self._local(day, time(0)), self._local(day + timedelta(1), time(0))
        evening = self._local(before, r.evening_start)
        first = min(evening, self._local(before, r.night_start), day_start)
        rows = sorted((m * _MIN, acc[1] / acc[0]) for m, acc in self._minutes.items()
                      if first <= m * _MIN < day_end)
        if not rows:
            return None
        in_day = [(b, f) for b, f in rows if b >= day_start]
        return DaySummary(
            day, len(in_day), (day_end - day_start) / _MIN, sum(f * _MIN for _, f in in_day),
            self._rise(day, rows), self._bedtime(before, day, rows), _away(in_day))

    def _rise(self, day: date, rows: list[tuple[int, float]]) -> datetime | None:
        """The last getting-up of the morning (04:00-12:00) followed by `stay_up` out of bed
        (a complete day: no later in-bed minute counts too)."""
        r = self.rules
        lo, hi = self._local(day, r.morning_start), self._local(day, r.morning_end)
        stay = r.stay_up.total_seconds()
        beds = [b for b, f in rows if f >= 0.5]
        ups = [b + _MIN for i, b in enumerate(beds)
               if lo <= b + _MIN < hi and (i + 1 == len(beds) or beds[i + 1] >= b + _MIN + stay)]
        return datetime.fromtimestamp(max(ups), self.tz) if ups else None

    def _bedtime(self, before: date, day: date, rows: list[tuple[int, float]]
                 ) -> datetime | None:
        """The first in-bed minute from the evening on, before the night's end, with at least
        90 of it and the next 119 minutes in bed."""
        r = self.rules
        lo = self._local(before, r.evening_start)
        night_end = self._local(day, r.night_end)
        beds = [b for b, f in rows if f >= 0.5 and lo <= b < night_end + 2 * 3600]
        j = 0
        for i, b in enumerate(beds):
            if b >= night_end:
                break
            j = max(j, i)
            while j + 1 < len(beds) and beds[j + 1] <= b + 119 * _MIN:
                j += 1
            if j - i + 1 >= 90:
                return datetime.fromtimestamp(b, self.tz)
        return None

    def _features(self, s: DaySummary) -> DayFeatures:
        """A summary as the learning job reads it (alerts/learning/store.py `_DAYS`)."""
        values: dict[str, float | None] = {"away_s": s.away_s, "rise_time": None,
                                           "bedtime": None}
        if s.rise is not None:
            values["rise_time"] = float(_clock(s.rise.time()) + s.rise.second / 60)
        if s.bedtime is not None:
            after_noon = _clock(s.bedtime.time()) + s.bedtime.second / 60 - 12 * 60
            values["bedtime"] = float(after_noon + (24 * 60 if s.bedtime.date() == s.day
                                                    else 0))
        coverage = min(1.0, s.data_minutes / s.day_minutes)
        return DayFeatures(0, s.day, values, coverage, self._alerted(s.day))

    def _alerted(self, day: date) -> bool:
        """An alert about the person opened from 22:00 the evening before to the local
        midnight ending the day."""
        if not self.alerts:
            return False
        lo = datetime.combine(day - timedelta(days=1), time(22), self.tz)
        hi = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        return any(lo <= a.opened_at < hi and a.type not in NOT_ABOUT_THE_PERSON
                   for a in self.alerts)


def _away(in_day: list[tuple[int, float]]) -> float | None:
    """The longest run of out-of-bed minutes of the day (first to last minute of the run,
    minutes without data inside it included), in seconds."""
    best: float | None = None
    start: int | None = None
    last = 0
    for b, f in in_day:
        if f >= 0.5:
            start = None
            continue
        if start is None:
            start = b
        last = b
        span = float(last - start + _MIN)
        best = span if best is None or span > best else best
    return best


def _percentile_cont(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the nearest ranks."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
