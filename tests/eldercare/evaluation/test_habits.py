"""The habits the rollups would learn: median rise time, 90th percentile of the day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
