"""The habits the service would learn: its fallback from the last 14 days of summaries (median
rise time, 90th percentile of the day) and, from 14 counted days, the personal baselines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.learning.baselines import baselines, personal_times
from alerts.learning.features import DayFeatures
from eldercare.evaluation.habits import HabitLearner

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = 60.0


def feed_day(learner: HabitLearner, day: date, rise: time, bed: time,
             toilet: time | None = None) -> None:
    """A local day of readings: in bed until `rise` (a 5-minute toilet trip at `toilet`),
    up until `bed`, in bed after."""
    t = datetime.combine(day, time(0), TZ)
    end = t + timedelta(days=1)
    while t < end:
        now = t.time()
        trip = toilet is not None and toilet <= now < (
            datetime.combine(day, toilet) + timedelta(minutes=5)).time()
        occupied = (now < rise and not trip) or now >= bed
        learner.reading(t, occupied)
        t += timedelta(seconds=PERIOD)


def test_rise_ignores_toilet_trips_and_takes_the_lower_median() -> None:
    learner = HabitLearner(TZ, PERIOD)
    assert learner.usual(date(2026, 3, 1)) == (None, None)
    rises = [time(6, 0), time(7, 0), time(6, 30), time(8, 0)]
    for i, rise in enumerate(rises):
        feed_day(learner, date(2026, 3, 1) + timedelta(days=i), rise, time(22, 0),
                 toilet=time(4, 30))
    rise, day_s = learner.usual(date(2026, 3, 5))
    assert rise == time(6, 30)  # percentile_disc(0.5) of 06:00, 06:30, 07:00, 08:00
    # out of bed from the rise to 22:00 (and 5 min at night): 14 h 55 .. 16 h 05
    outs = sorted(22 * 3600 - (r.hour * 3600 + r.minute * 60) + 300 for r in rises)
    expected = outs[2] + (outs[3] - outs[2]) * 0.7  # percentile_cont(0.9) of four
    assert day_s == expected


def test_only_the_last_fourteen_days_count() -> None:
    learner = HabitLearner(TZ, PERIOD)
    for i in range(20):
        feed_day(learner, date(2026, 3, 1) + timedelta(days=i),
                 time(5, 0) if i < 6 else time(7, 0), time(22, 0))
    rise, _ = learner.usual(date(2026, 3, 21))
    assert rise == time(7, 0)


def napper_day(learner: HabitLearner, day: date, nap: bool) -> None:
    """Up 07:00, a nap 13:00-14:30 when `nap`, in bed from 21:30."""
    t = datetime.combine(day, time(0), TZ)
    end = t + timedelta(days=1)
    while t < end:
        now = t.time()
        occupied = now < time(7) or now >= time(21, 30) or (
            nap and time(13) <= now < time(14, 30))
        learner.reading(t, occupied)
        t += timedelta(seconds=PERIOD)


FIRST = date(2026, 3, 1)


def test_from_fourteen_counted_days_the_baselines_answer_as_the_service_s_do() -> None:
    """The learning job's baselines (28-day window, 7-day gap, 14 days minimum) of the
    rollup's features, through the same personal_times: rise 07:00, bedtime 21:30, and for
    someone who naps on most days a usual day from rise to bedtime, not the longest stretch
    (an ordinary day without the nap is no alarm)."""
    learner = HabitLearner(TZ, PERIOD)
    for i in range(40):
        napper_day(learner, FIRST + timedelta(days=i), nap=i % 5 != 0)
    today = FIRST + timedelta(days=40)
    expected_days = [DayFeatures(0, FIRST + timedelta(days=i), {
        "rise_time": 420.0, "bedtime": None if i == 0 else 570.0,
        "away_s": 7 * 3600.0 if i % 5 else 14.5 * 3600}, 1.0) for i in range(40)]
    expected = personal_times(baselines(expected_days, today - timedelta(days=1),
                                        window_days=28, min_days=14, gap_days=7))
    assert expected.usual_day_s == pytest.approx(14.5 * 3600 + 2 * 1.4826 * 15 * 60)
    rise, day_s, bed = learner.usual_times(today)
    assert (rise, day_s, bed) == (time(7), pytest.approx(expected.usual_day_s), time(21, 30))
    assert learner.usual(today) == (time(7), pytest.approx(expected.usual_day_s))
    # before the baselines count 14 days, the 14-day fallback (24 h - 9.5 h in bed, naps
    # included in the time in bed: the 90th percentile is a day without)
    early = FIRST + timedelta(days=15)
    assert learner.usual(early) == (time(7), pytest.approx(14.5 * 3600))


def test_days_with_an_alert_about_the_person_are_left_out() -> None:
    """Every day a long_absence alert: no day counts, the fallback stays; routine_change
    alerts do not make a day unusual."""
    @dataclass
    class Opened:
        type: str
        opened_at: datetime

    alerts: list[Opened] = []
    learner = HabitLearner(TZ, PERIOD, alerts)
    for i in range(40):
        day = FIRST + timedelta(days=i)
        napper_day(learner, day, nap=True)
        alerts.append(Opened("routine_change", datetime.combine(day, time(12), TZ)))
    today = FIRST + timedelta(days=40)
    assert learner.personal(today).usual_day_s is not None
    alerts.extend(Opened("long_absence", datetime.combine(FIRST + timedelta(days=i),
                                                           time(20), TZ)) for i in range(40))
    assert learner.personal(today).usual_day_s is None
