"""A seeded, reproducible model of one older person's day and night.

Pure: no I/O and no wall clock. Every value is a function of (seed, simulated time), so the
same seed gives the same stream, in any order of queries, at any speed. A day is planned
from local noon to the next local noon (`DayPlan`: nap, bedtime, night exits, nuisances);
`ResidentModel.state_at` gives the person's true state (ground truth) and
`ResidentModel.reading_at` what a bed-sensor mat would report at that instant.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from random import Random
from typing import NamedTuple

NOON_HOUR = 12
EXIT_MIN_S = 3 * 60
EXIT_MAX_S = 15 * 60
MAX_EXITS = 3
FALSE_ABSENCE_MIN_S = 30
FALSE_ABSENCE_MAX_S = 90
HR_GAP_MIN_S = 5
HR_GAP_MAX_S = 60
RESTLESS_BEFORE_EXIT_S = 120
GETTING_IN_S = 60
TURN_S = 40
_TURN = timedelta(seconds=TURN_S)
_PLAN_CACHE = 8


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any printable parts (stable across runs and platforms)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


class Activity(StrEnum):
    """What the resident is doing (ground truth, not what the mat reports)."""

    UP = "up"
    IN_BED_AWAKE = "in_bed_awake"
    ASLEEP = "asleep"
    NIGHT_EXIT = "night_exit"


class MatReading(NamedTuple):
    """What the bed mat reports at one instant."""

    occupied: bool
    heart_rate: float | None
    respiration: float | None
    movement: int


@dataclass(frozen=True, slots=True)
class ResidentState:
    """The resident's true state at one instant (ground truth for tests and later scoring)."""

    activity: Activity
    in_bed: bool
    heart_rate: float
    respiration: float
    movement: int


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open time interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __contains__(self, t: object) -> bool:
        return isinstance(t, datetime) and self.start <= t < self.end

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class NightExit:
    """A night-time trip out of bed (toilet), with the restless and settling time around it."""

    restless_from: datetime
    start: datetime
    end: datetime
    settled_at: datetime

    @property
    def away(self) -> Interval:
        """The time the bed is empty."""
        return Interval(self.start, self.end)

    @property
    def awake(self) -> Interval:
        """The whole awake episode: restless, away, settling back."""
        return Interval(self.restless_from, self.settled_at)


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What the resident does from local noon of `day` until local noon the next day."""

    day: date
    weekend_night: bool
    nap: Interval | None
    nap_asleep_at: datetime | None
    bedtime: datetime
    asleep_at: datetime
    awake_at: datetime
    rise: datetime
    exits: tuple[NightExit, ...]
    false_absences: tuple[Interval, ...]
    hr_gaps: tuple[Interval, ...]
    turns: tuple[datetime, ...]

    @property
    def in_bed(self) -> Interval:
        """From getting into bed to getting up in the morning."""
        return Interval(self.bedtime, self.rise)


@dataclass(frozen=True, slots=True)
class ResidentProfile:
    """One person's habits and physiology. Times are minutes after local midnight."""

    bedtime_min: float = 22 * 60
    rise_min: float = 6 * 60 + 45
    daily_sd_min: float = 18.0
    weekend_shift_min: float = 45.0
    sleep_onset_min: float = 20.0
    exits_mean: float = 1.2
    nap_probability: float = 0.3
    hr_sleep: float = 62.0
    hr_day_offset: float = 14.0
    hr_dip: float = 5.0
    hr_noise: float = 1.8
    resp_rate: float = 15.0
    resp_noise: float = 0.7
    turns_per_hour: float = 1.5
    false_absences_mean: float = 0.6
    hr_gaps_mean: float = 3.0

    @classmethod
    def random(cls, seed: int) -> ResidentProfile:
        """A plausible random profile; the same seed always gives the same person."""
        rng = Random(derive_seed("profile", seed))
        return cls(
            bedtime_min=22 * 60 + rng.uniform(-45, 45),
            rise_min=6 * 60 + 45 + rng.uniform(-45, 45),
            daily_sd_min=rng.uniform(10, 25),
            weekend_shift_min=rng.uniform(30, 60),
            sleep_onset_min=rng.uniform(10, 30),
            exits_mean=rng.uniform(0.4, 2.0),
            nap_probability=rng.uniform(0.0, 0.6),
            hr_sleep=rng.uniform(55, 70),
            hr_day_offset=rng.uniform(10, 20),
            hr_dip=rng.uniform(3, 8),
            hr_noise=rng.uniform(1.0, 2.5),
            resp_rate=rng.uniform(13, 17),
            resp_noise=rng.uniform(0.4, 0.9),
            turns_per_hour=rng.uniform(0.8, 2.5),
            false_absences_mean=rng.uniform(0.2, 1.0),
            hr_gaps_mean=rng.uniform(1.0, 5.0),
        )


# --- counter-based noise: a pure function of (key, stream, index) -------------------------

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64 finaliser."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _uniform(key: int, stream: int, k: int) -> float:
    """A uniform number in (0, 1) for index k of a noise stream: `_mix(key ^ _mix((stream
    << 40) ^ k))`, the two finalisers written out (every reading draws several)."""
    x = (((stream << 40) ^ (k & _MASK)) + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x = ((key ^ x ^ (x >> 31)) + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (((x ^ (x >> 31)) >> 11) + 0.5) / _TWO_53


_TWO_53 = float(1 << 53)


@functools.lru_cache(maxsize=4096)
def _gauss(key: int, stream: int, k: int) -> float:
    """A standard normal number for index k of a noise stream (Box-Muller). Cached: smooth
    noise asks for each knot at every reading between its neighbours (pure, so exact)."""
    u1 = _uniform(key, stream, 2 * k)
    u2 = _uniform(key, stream, 2 * k + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _smooth(key: int, stream: int, s: float, period: float) -> float:
    """Smooth noise of roughly unit variance: normal knots every `period` s, eased between."""
    x = s / period
    k = math.floor(x)
    f = x - k
    f = f * f * (3.0 - 2.0 * f)
    a = _gauss(key, stream, k)
    b = _gauss(key, stream, k + 1)
    return (a + (b - a) * f) / math.sqrt(1.0 - 2.0 * f * (1.0 - f))


_HR_SLOW, _HR_FAST, _RESP, _MOVE, _DAY = 1, 2, 3, 4, 5
_EMPTY = MatReading(False, None, None, 0)


class ResidentModel:
    """Seeded model of one resident; ask it about any instant, in any order."""

    def __init__(self, profile: ResidentProfile, seed: int, tz: tzinfo = UTC) -> None:
        self.profile = profile
        self.seed = seed
        self.tz = tz
        self._key = _mix(seed & _MASK)
        self._plans: OrderedDict[date, DayPlan] = OrderedDict()
        self._last: tuple[datetime, datetime, DayPlan] | None = None  # plan_for's last answer

    @classmethod
    def random(cls, seed: int, tz: tzinfo = UTC) -> ResidentModel:
        """A model with a random profile, both from one seed."""
        return cls(ResidentProfile.random(seed), seed, tz)

    # --- plans ---------------------------------------------------------------------------

    def plan_day(self, day: date) -> DayPlan:
        """The plan from local noon of `day` to local noon the next day (cached)."""
        plan = self._plans.get(day)
        if plan is None:
            plan = self._make_plan(day)
            self._plans[day] = plan
            if len(self._plans) > _PLAN_CACHE:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(day)
        return plan

    def plan_for(self, t: datetime) -> DayPlan:
        """The plan that covers instant `t`."""
        last = self._last
        if last is not None and last[0] <= t < last[1]:
            return last[2]
        local = t.astimezone(self.tz)
        day = local.date() if local.hour >= NOON_HOUR else local.date() - timedelta(days=1)
        plan = self.plan_day(day)
        # a stream asks about the same day thousands of times: keep its span (noon to noon)
        self._last = (_local_noon(day, self.tz), _local_noon(day + timedelta(days=1), self.tz),
                      plan)
        return plan

    def plans(self, first_day: date, days: int) -> Iterator[DayPlan]:
        """Plans for `days` consecutive days."""
        for i in range(days):
            yield self.plan_day(first_day + timedelta(days=i))

    def _at(self, day: date, minutes: float) -> datetime:
        """Local wall time `minutes` after midnight starting `day`, as UTC."""
        midnight = datetime.combine(day, time(), tzinfo=self.tz)
        return (midnight + timedelta(minutes=minutes)).astimezone(UTC)

    def _make_plan(self, day: date) -> DayPlan:
        p = self.profile
        rng = Random(derive_seed("day", self.seed, day.toordinal()))
        next_day = day + timedelta(days=1)
        weekend_night = day.weekday() in (4, 5)  # Friday and Saturday nights
        weekend_morning = next_day.weekday() in (5, 6)

        def jitter() -> float:
            sd = p.daily_sd_min
            return max(-2.5 * sd, min(2.5 * sd, rng.gauss(0.0, sd)))

        bed_min = p.bedtime_min + (p.weekend_shift_min if weekend_night else 0.0) + jitter()
        bed_min = min(max(bed_min, 19 * 60), 25.5 * 60)
        rise_min = 24 * 60 + p.rise_min + (p.weekend_shift_min if weekend_morning else 0.0)
        rise_min = min(max(rise_min + jitter(), 28 * 60), 35 * 60)
        rise_min = max(rise_min, bed_min + 4 * 60)
        bedtime = self._at(day, bed_min)
        rise = self._at(day, rise_min)
        onset = min(max(rng.expovariate(1.0 / p.sleep_onset_min), 5.0), 60.0)
        asleep_at = bedtime + timedelta(minutes=onset)
        awake_at = rise - timedelta(minutes=rng.uniform(5, 20))

        nap: Interval | None = None
        nap_asleep_at: datetime | None = None
        if rng.random() < p.nap_probability:
            start = self._at(day, rng.uniform(13 * 60, 15 * 60))
            nap = Interval(start, start + timedelta(minutes=rng.uniform(20, 60)))
            nap_asleep_at = start + timedelta(minutes=rng.uniform(3, 8))

        exits = self._place_exits(rng, asleep_at, awake_at)
        false_absences = self._place_short(
            rng, _poisson(rng, p.false_absences_mean, 3), FALSE_ABSENCE_MIN_S,
            FALSE_ABSENCE_MAX_S, asleep_at + timedelta(minutes=10),
            awake_at - timedelta(minutes=10), [e.awake for e in exits])
        hr_gaps = self._place_short(
            rng, _poisson(rng, p.hr_gaps_mean, 8), HR_GAP_MIN_S, HR_GAP_MAX_S, bedtime, rise, [])
        turns: list[datetime] = []
        t = asleep_at
        while True:
            t += timedelta(hours=rng.expovariate(p.turns_per_hour))
            if t >= awake_at:
                break
            turns.append(t)
        return DayPlan(day, weekend_night, nap, nap_asleep_at, bedtime, asleep_at, awake_at,
                       rise, exits, false_absences, hr_gaps, tuple(turns))

    def _place_exits(self, rng: Random, asleep_at: datetime, awake_at: datetime
                     ) -> tuple[NightExit, ...]:
        lo = asleep_at + timedelta(minutes=30)
        hi = awake_at - timedelta(minutes=30)
        n = _poisson(rng, self.profile.exits_mean, MAX_EXITS)
        exits: list[NightExit] = []
        for _ in range(n):
            for _attempt in range(50):
                dur = timedelta(seconds=rng.uniform(EXIT_MIN_S, EXIT_MAX_S))
                span = (hi - lo - dur).total_seconds()
                if span <= 0:
                    break
                start = lo + timedelta(seconds=rng.uniform(0, span))
                ex = NightExit(start - timedelta(seconds=RESTLESS_BEFORE_EXIT_S), start,
                               start + dur, start + dur + timedelta(minutes=rng.uniform(5, 12)))
                margin = timedelta(minutes=20)
                if all(ex.restless_from >= o.settled_at + margin
                       or ex.settled_at + margin <= o.restless_from for o in exits):
                    exits.append(ex)
                    break
        return tuple(sorted(exits, key=lambda e: e.start))

    @staticmethod
    def _place_short(rng: Random, n: int, min_s: float, max_s: float, lo: datetime,
                     hi: datetime, avoid: list[Interval]) -> tuple[Interval, ...]:
        placed: list[Interval] = []
        for _ in range(n):
            for _attempt in range(20):
                dur = timedelta(seconds=rng.uniform(min_s, max_s))
                span = (hi - lo - dur).total_seconds()
                if span <= 0:
                    break
                start = lo + timedelta(seconds=rng.uniform(0, span))
                iv = Interval(start, start + dur)
                if all(iv.end <= o.start or iv.start >= o.end for o in [*avoid, *placed]):
                    placed.append(iv)
                    break
        return tuple(sorted(placed, key=lambda i: i.start))

    # --- instants ------------------------------------------------------------------------

    def activity_at(self, t: datetime, plan: DayPlan | None = None) -> Activity:
        """What the resident is doing at `t`."""
        plan = plan or self.plan_for(t)
        nap = plan.nap
        if nap is not None and nap.start <= t < nap.end:
            assert plan.nap_asleep_at is not None
            return Activity.ASLEEP if t >= plan.nap_asleep_at else Activity.IN_BED_AWAKE
        if not plan.bedtime <= t < plan.rise:
            return Activity.UP
        for ex in plan.exits:  # (ex.away and ex.awake, without building the intervals)
            if ex.start <= t < ex.end:
                return Activity.NIGHT_EXIT
            if ex.restless_from <= t < ex.settled_at:
                return Activity.IN_BED_AWAKE
        if plan.asleep_at <= t < plan.awake_at:
            return Activity.ASLEEP
        return Activity.IN_BED_AWAKE

    def state_at(self, t: datetime) -> ResidentState:
        """The resident's true state at `t` (heart rate is defined even out of bed)."""
        plan = self.plan_for(t)
        return self._state(t, plan, self.activity_at(t, plan))

    def _state(self, t: datetime, plan: DayPlan, act: Activity) -> ResidentState:
        hr, resp, move = self._vitals(t, plan, act)
        return ResidentState(activity=act,
                             in_bed=act in (Activity.ASLEEP, Activity.IN_BED_AWAKE),
                             heart_rate=hr, respiration=resp, movement=move)

    def _vitals(self, t: datetime, plan: DayPlan, act: Activity) -> tuple[float, float, int]:
        """Heart rate, respiration and movement at `t`, rounded as the mat reports them."""
        p = self.profile
        s = t.timestamp()
        key = self._key
        slow = _smooth(key, _HR_SLOW, s, 45.0)
        fast = _gauss(key, _HR_FAST, int(s // 5))
        if act is Activity.ASLEEP:
            hr = p.hr_sleep - self._dip(plan, t) + p.hr_noise * (0.8 * slow + 0.4 * fast)
            resp = p.resp_rate - 1.0 + p.resp_noise * _smooth(key, _RESP, s, 30.0)
            move = self._sleep_movement(plan, t, s)
        elif act is Activity.IN_BED_AWAKE:
            hr = p.hr_sleep + 0.5 * p.hr_day_offset + p.hr_noise * (slow + 0.5 * fast)
            resp = p.resp_rate + 0.5 + p.resp_noise * _smooth(key, _RESP, s, 30.0)
            move = 12.0 + 8.0 * abs(_smooth(key, _MOVE, s, 20.0))
            move = max(move, self._transition_movement(plan, t))
        else:
            day = _smooth(key, _DAY, s, 600.0)
            hr = p.hr_sleep + p.hr_day_offset + 3.0 * day + p.hr_noise * (slow + 0.5 * fast)
            resp = p.resp_rate + 2.5 + p.resp_noise * 1.5 * _smooth(key, _RESP, s, 30.0)
            move = 45.0 + 15.0 * _smooth(key, _MOVE, s, 20.0)
        return (round(min(max(hr, 35.0), 180.0), 1), round(min(max(resp, 6.0), 40.0), 1),
                round(min(max(move, 0.0), 100.0)))

    def empty_until(self, t: datetime) -> datetime:
        """The end of the span from `t` in which the resident is up (out of bed by the day's
        plan), so the mat reads empty at every instant of [t, end); `t` itself when they are
        not. It lets a stream of readings skip `reading_at` while nobody is in bed (the
        spans of night exits and false absences are left out: they are short)."""
        plan = self.plan_for(t)
        if plan.bedtime <= t < plan.rise:
            return t
        if t >= plan.rise:
            return _local_noon(plan.day + timedelta(days=1), self.tz)
        nap = plan.nap
        if nap is None or t >= nap.end:
            return plan.bedtime
        return t if t >= nap.start else nap.start

    def reading_at(self, t: datetime) -> MatReading:
        """What the bed mat reports at `t`, nuisances included."""
        plan = self.plan_for(t)
        act = self.activity_at(t, plan)
        # Out of bed the mat reads empty: the vital signs (the costly part) are not computed.
        if (act is not Activity.ASLEEP and act is not Activity.IN_BED_AWAKE) or any(
                fa.start <= t < fa.end for fa in plan.false_absences):
            return _EMPTY
        heart_rate, respiration, movement = self._vitals(t, plan, act)
        hr: float | None = heart_rate
        if any(gap.start <= t < gap.end for gap in plan.hr_gaps):
            hr = None
        return MatReading(True, hr, respiration, movement)

    def readings(self, start: datetime, end: datetime | None = None, period_s: float = 5.0
                 ) -> Iterator[tuple[datetime, MatReading]]:
        """Readings every `period_s` from `start` until `end` (forever when None)."""
        step = timedelta(seconds=period_s)
        t = start
        while end is None or t < end:
            yield t, self.reading_at(t)
            t += step

    def _dip(self, plan: DayPlan, t: datetime) -> float:
        """Night-time heart-rate dip: deepest a little before the middle of the night."""
        if plan.nap is not None and t in plan.nap:
            return 0.0
        total = (plan.awake_at - plan.asleep_at).total_seconds()
        x = min(max((t - plan.asleep_at).total_seconds() / max(total, 1.0), 0.0), 1.0)
        return self.profile.hr_dip * math.sin(math.pi * x**0.8)

    def _sleep_movement(self, plan: DayPlan, t: datetime, s: float) -> float:
        move = 1.5 + 2.0 * abs(_smooth(self._key, _MOVE, s, 30.0))
        # turns are in time order: if any turn covers t, the latest one at or before t does
        i = bisect.bisect_right(plan.turns, t)
        if i and t < plan.turns[i - 1] + _TURN:
            move = max(move, 25.0 + 15.0 * _uniform(self._key, _MOVE, int(s)))
        return move

    @staticmethod
    def _transition_movement(plan: DayPlan, t: datetime) -> float:
        """Extra movement getting into bed and in the restless minutes before an exit."""
        if plan.bedtime <= t < plan.bedtime + timedelta(seconds=GETTING_IN_S):
            return 50.0
        if plan.nap is not None and plan.nap.start <= t < plan.nap.start + timedelta(
                seconds=GETTING_IN_S):
            return 50.0
        for ex in plan.exits:
            if ex.restless_from <= t < ex.start:
                frac = (t - ex.restless_from).total_seconds() / RESTLESS_BEFORE_EXIT_S
                return 20.0 + 45.0 * frac
        return 0.0


def _local_noon(day: date, tz: tzinfo) -> datetime:
    """Local noon of `day` in UTC: where one day's plan ends and the next one's begins."""
    return datetime.combine(day, time(NOON_HOUR), tzinfo=tz).astimezone(UTC)


def _poisson(rng: Random, mean: float, cap: int) -> int:
    """A Poisson draw (Knuth), capped."""
    limit = math.exp(-mean)
    k, prod = 0, rng.random()
    while prod > limit and k < cap:
        k += 1
        prod *= rng.random()
    return k
