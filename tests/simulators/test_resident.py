"""The resident model is pure, seeded and plausible (no broker, no database)."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gateway.schema import BedReading
from simulators.resident import (
    EXIT_MAX_S,
    EXIT_MIN_S,
    MAX_EXITS,
    Activity,
    DayPlan,
    MatReading,
    ResidentModel,
    ResidentProfile,
)

START = date(2026, 1, 5)  # a Monday
DAYS = 60


def minutes_of_day(t: datetime, tz=UTC) -> float:
    """Minutes after local midnight; times after midnight count as 24h+ (for bedtimes)."""
    local = t.astimezone(tz)
    m = local.hour * 60 + local.minute + local.second / 60
    return m + 24 * 60 if local.hour < 12 else m


def night_readings(model: ResidentModel, day: date, period_s: float = 60.0
                   ) -> list[tuple[datetime, MatReading]]:
    start = datetime(day.year, day.month, day.day, 18, tzinfo=UTC)
    return list(model.readings(start, start + timedelta(hours=16), period_s))


def test_same_seed_same_stream_different_seed_different_stream():
    a = night_readings(ResidentModel.random(42), START)
    b = night_readings(ResidentModel.random(42), START)
    c = night_readings(ResidentModel.random(43), START)
    assert a == b
    assert a != c
    assert ResidentProfile.random(42) == ResidentProfile.random(42) != ResidentProfile.random(43)


def test_random_access_matches_sequential():
    seq = night_readings(ResidentModel.random(7), START, period_s=300)
    fresh = ResidentModel.random(7)
    for t, reading in reversed(seq):  # a fresh model, queried backwards
        assert fresh.reading_at(t) == reading


@pytest.mark.parametrize("seed", range(50))
def test_random_profiles_are_plausible(seed):
    p = ResidentProfile.random(seed)
    assert abs(p.bedtime_min - 22 * 60) <= 45
    assert abs(p.rise_min - (6 * 60 + 45)) <= 45
    assert 30 <= p.weekend_shift_min <= 60
    assert 55 <= p.hr_sleep <= 70
    assert 12 <= p.resp_rate <= 18


def plans(model: ResidentModel, days: int = DAYS) -> list[DayPlan]:
    return list(model.plans(START, days))


@pytest.mark.parametrize("seed", range(10))
def test_routine_over_sixty_days(seed):
    model = ResidentModel.random(seed)
    p = model.profile
    ps = plans(model)
    weekday_beds = [minutes_of_day(x.bedtime) for x in ps if not x.weekend_night]
    weekend_beds = [minutes_of_day(x.bedtime) for x in ps if x.weekend_night]
    weekday_rises = [minutes_of_day(x.rise) - 24 * 60 for x in ps
                     if x.rise.astimezone(UTC).weekday() < 5]
    assert abs(statistics.mean(weekday_beds) - p.bedtime_min) < 12
    assert abs(statistics.mean(weekday_rises) - p.rise_min) < 12
    shift = statistics.mean(weekend_beds) - statistics.mean(weekday_beds)
    assert abs(shift - p.weekend_shift_min) < 20
    assert statistics.stdev(weekday_beds) > 5  # it does vary from day to day
    for x in ps:
        assert 0 <= len(x.exits) <= MAX_EXITS
        for ex in x.exits:
            assert EXIT_MIN_S <= ex.away.seconds <= EXIT_MAX_S
            assert x.asleep_at < ex.restless_from < ex.settled_at < x.awake_at
        assert 20 * 60 <= minutes_of_day(x.bedtime) <= 25.5 * 60
        assert x.bedtime < x.asleep_at < x.awake_at < x.rise
        for fa in x.false_absences:
            assert 30 <= fa.seconds <= 90
    mean_exits = statistics.mean(len(x.exits) for x in ps)
    assert 0.2 <= mean_exits <= 2.0
    assert abs(mean_exits - p.exits_mean) < 0.6  # Poisson, capped at 3
    assert max(len(x.exits) for x in ps) >= 1


def test_exits_per_night_cover_the_range_across_residents():
    counts = {len(x.exits) for seed in range(10) for x in plans(ResidentModel.random(seed))}
    assert counts == {0, 1, 2, 3}


def test_sleeping_heart_rate_is_lower_than_daytime():
    model = ResidentModel.random(5)
    asleep, day = [], []
    t = datetime(2026, 1, 5, tzinfo=UTC)
    while t < datetime(2026, 1, 19, tzinfo=UTC):
        s = model.state_at(t)
        if s.activity is Activity.ASLEEP:
            asleep.append(s.heart_rate)
        elif s.activity is Activity.UP:
            day.append(s.heart_rate)
        t += timedelta(minutes=7)
    p = model.profile
    assert statistics.mean(asleep) < statistics.mean(day) - 5
    assert abs(statistics.mean(asleep) - (p.hr_sleep - 0.6 * p.hr_dip)) < 3


def test_night_dip_is_deepest_mid_night():
    model = ResidentModel.random(6)
    early: list[float] = []
    middle: list[float] = []
    for x in plans(model, 20):
        span = x.awake_at - x.asleep_at
        for frac, bucket in ((0.05, early), (0.45, middle)):
            t = x.asleep_at + span * frac
            if model.activity_at(t) is Activity.ASLEEP:
                bucket.append(model.state_at(t).heart_rate)
    assert statistics.mean(middle) < statistics.mean(early) - 1


def test_mat_readings_follow_the_plan_and_the_contract():
    model = ResidentModel.random(8)
    seen_exit = seen_false_absence = seen_gap = False
    for x in plans(model, 14):
        for t, r in model.readings(x.bedtime - timedelta(minutes=5),
                                   x.rise + timedelta(minutes=5), 10.0):
            BedReading(ts=t, seq=0, occupied=r.occupied, heart_rate=r.heart_rate,
                       respiration_rate=r.respiration, movement=r.movement)
            if not x.bedtime <= t < x.rise:
                assert not r.occupied
            if any(t in ex.away for ex in x.exits):
                seen_exit = True
                assert r == MatReading(False, None, None, 0)
            if any(t in fa for fa in x.false_absences):
                seen_false_absence = True
                assert not r.occupied
            if r.occupied and any(t in g for g in x.hr_gaps):
                seen_gap = True
                assert r.heart_rate is None and r.respiration is not None
            if r.occupied and r.heart_rate is not None:
                assert 35 <= r.heart_rate <= 110
                assert r.respiration is not None and 8 <= r.respiration <= 24
    assert seen_exit and seen_false_absence and seen_gap


def test_movement_is_low_asleep_and_high_around_exits():
    model = ResidentModel.random(9)
    asleep, restless = [], []
    for x in plans(model, 14):
        for ex in x.exits:
            restless.append(model.reading_at(ex.start - timedelta(seconds=30)).movement)
        t = x.asleep_at
        while t < x.awake_at:
            if model.activity_at(t) is Activity.ASLEEP:
                asleep.append(model.reading_at(t).movement)
            t += timedelta(minutes=3)
    assert statistics.median(asleep) <= 5
    assert statistics.mean(asleep) < 8
    assert restless and min(restless) >= 30


def test_local_time_zone_moves_the_routine():
    tz = timezone(timedelta(hours=9))
    model = ResidentModel(ResidentProfile(), seed=3, tz=tz)
    beds = [minutes_of_day(x.bedtime, tz) for x in plans(model, 28) if not x.weekend_night]
    assert abs(statistics.mean(beds) - 22 * 60) < 12
    utc_beds = [minutes_of_day(x.bedtime) for x in plans(model, 28) if not x.weekend_night]
    assert abs(statistics.mean(utc_beds) - 13 * 60) < 12  # 22:00 at UTC+9 is 13:00 UTC


def expected_onset_min(mean: float) -> float:
    """Mean of an exponential(mean) draw clipped to [5, 60] minutes."""
    lo, hi = 5.0, 60.0
    inside = (mean * (math.exp(-lo / mean) - math.exp(-hi / mean))
              + lo * math.exp(-lo / mean) - hi * math.exp(-hi / mean))
    return lo * (1 - math.exp(-lo / mean)) + inside + hi * math.exp(-hi / mean)


@pytest.mark.parametrize("seed", range(5))
def test_mean_sleep_time_and_exits_match_the_profile(seed):
    model = ResidentModel.random(seed)
    p = model.profile
    ps = list(model.plans(START, 200))
    in_bed = statistics.mean((x.rise - x.bedtime).total_seconds() / 60 for x in ps)
    asleep = statistics.mean((x.awake_at - x.asleep_at).total_seconds() / 60 for x in ps)
    # Bedtime and rise shift together at weekends, so every night is as long on average.
    assert abs(in_bed - (24 * 60 + p.rise_min - p.bedtime_min)) < 8
    expected = in_bed - expected_onset_min(p.sleep_onset_min) - 12.5  # 5-20 min before rise
    assert abs(asleep - expected) < 5
    exits = statistics.mean(len(x.exits) for x in ps)
    assert abs(exits - p.exits_mean) < 0.35  # Poisson, capped at 3
