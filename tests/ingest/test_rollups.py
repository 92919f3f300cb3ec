"""Rollup SQL against the real database: per-minute values, idempotence, late data, days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ingest import rollups
from ingest.jobs import JobSettings, RollupRun, run_daily_summaries, run_minute_rollup
from kernel import db
from tests.support.rollups import ROLLUP_TABLES, Reading, insert_readings

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def rdb(clean_db: str, owner_url: str) -> str:
    """The emptied session database, with the rollup tables emptied too (by the owner: the
    application role may not TRUNCATE)."""
    with db.connect(owner_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {ROLLUP_TABLES}")
    return clean_db


@pytest.fixture
def conn(rdb: str) -> Iterator[Any]:
    """An autocommit connection, as the jobs use."""
    with db.connect(rdb, autocommit=True) as c:
        yield c


def vitals(conn: Any, resident_id: int = 1) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT bucket, hr_avg, hr_min, hr_max, rr_avg, rr_min, rr_max, movement_avg, "
        "occupied_fraction, samples, hr_samples, rr_samples FROM vitals_1m "
        "WHERE resident_id = %s ORDER BY bucket", (resident_id,)).fetchall()


# --- pure helpers --------------------------------------------------------------------


def test_windows_cover_the_range_in_bounded_steps():
    ws = list(rollups.windows(T0, T0 + timedelta(minutes=150), timedelta(hours=1)))
    assert ws == [(T0, T0 + timedelta(hours=1)),
                  (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
                  (T0 + timedelta(hours=2), T0 + timedelta(minutes=150))]
    assert list(rollups.windows(T0, T0, timedelta(hours=1))) == []
    with pytest.raises(ValueError, match="positive"):
        list(rollups.windows(T0, T0, timedelta(0)))


def test_rollup_refuses_unaligned_windows(conn):
    with pytest.raises(ValueError, match="whole minutes"):
        rollups.rollup_minutes(conn, T0 + timedelta(seconds=5), T0 + timedelta(minutes=1))


# --- per-minute rollup ---------------------------------------------------------------


def test_minute_values_avg_min_max_and_samples(conn):
    # minute 10:00: 12 readings; the last 4 out of bed (no vitals). Minute 10:01: 2 readings.
    first = [(T0 + timedelta(seconds=5 * i), i < 8, 60.0 + i if i < 8 else None,
              12.0 + i % 2 if i < 8 else None, i) for i in range(12)]
    second = [(T0 + timedelta(minutes=1, seconds=10 * i), True, 70.0, 15.0, 4) for i in range(2)]
    insert_readings(conn, [*first, *second])
    with conn.transaction():
        written = rollups.rollup_minutes(conn, T0, T0 + timedelta(minutes=5))
    assert written == 2
    (b0, hr_avg, hr_min, hr_max, rr_avg, rr_min, rr_max, mov, occ, n, n_hr, n_rr), m1 = (
        vitals(conn))
    assert b0 == T0
    assert hr_avg == pytest.approx(63.5) and (hr_min, hr_max) == (60.0, 67.0)
    assert rr_avg == pytest.approx(12.5) and (rr_min, rr_max) == (12.0, 13.0)
    assert mov == pytest.approx(5.5)
    assert occ == pytest.approx(8 / 12)
    assert (n, n_hr, n_rr) == (12, 8, 8)
    assert m1[0] == T0 + timedelta(minutes=1) and m1[9:] == (2, 2, 2)


def test_rerun_is_idempotent_and_writes_nothing_new(conn):
    insert_readings(conn, [(T0 + timedelta(seconds=5 * i), True, 60.0, 14.0, 1)
                           for i in range(120)])
    end = T0 + timedelta(minutes=10)
    assert rollups.rollup_minutes(conn, T0, end) == 10
    before = vitals(conn)
    assert rollups.rollup_minutes(conn, T0, end) == 0  # unchanged rows are not rewritten
    assert vitals(conn) == before
    assert conn.execute("SELECT count(*) FROM vitals_1m").fetchone()[0] == 10


def test_late_data_in_a_reprocessed_window_is_picked_up(conn):
    insert_readings(conn, [(T0 + timedelta(seconds=10 * i), True, 60.0, 14.0, 1)
                           for i in range(3)])
    rollups.rollup_minutes(conn, T0, T0 + timedelta(minutes=1))
    late = [(T0 + timedelta(seconds=35 + 10 * i), True, 90.0, 20.0, 1) for i in range(3)]
    insert_readings(conn, late, seq0=100)
    assert rollups.rollup_minutes(conn, T0, T0 + timedelta(minutes=1)) == 1
    (row,) = vitals(conn)
    assert row[1] == pytest.approx(75.0) and row[3] == 90.0 and row[9] == 6


def test_rollup_job_catches_up_after_downtime_from_its_watermark(conn):
    cfg = JobSettings()
    insert_readings(conn, [(T0 + timedelta(seconds=30 * i), True, 60.0, 14.0, 1)
                           for i in range(2 * 60 * 5)])  # 5 hours, 2 readings a minute
    run = run_minute_rollup(conn, T0 + timedelta(minutes=30), cfg)
    assert run.done_until == T0 + timedelta(minutes=28)  # 2 minutes' lateness margin
    assert len(vitals(conn)) == 28
    # "downtime": the next run happens 4 hours later and fills everything in 1-hour windows
    now = T0 + timedelta(hours=4, minutes=30, seconds=17)
    run = run_minute_rollup(conn, now, cfg)
    assert run.done_until == T0 + timedelta(hours=4, minutes=28)
    assert run.windows == 5
    rows = vitals(conn)
    assert [r[0] for r in rows] == [T0 + timedelta(minutes=m) for m in range(4 * 60 + 28)]
    assert all(r[9] == 2 for r in rows)
    assert rollups.read_watermark(conn, "vitals_1m") == run.done_until


def test_rollup_job_relooks_at_recent_minutes_for_late_data(conn):
    cfg = JobSettings()
    insert_readings(conn, [(T0 + timedelta(seconds=30 * i), True, 60.0, 14.0, 1)
                           for i in range(40)])
    run_minute_rollup(conn, T0 + timedelta(minutes=22), cfg)
    insert_readings(conn, [(T0 + timedelta(minutes=15, seconds=45), True, 63.0, 14.0, 1)],
                    seq0=500)  # 6 minutes late
    run_minute_rollup(conn, T0 + timedelta(minutes=23), cfg)
    by_bucket = {r[0]: r for r in vitals(conn)}
    assert by_bucket[T0 + timedelta(minutes=15)][9] == 3
    assert by_bucket[T0 + timedelta(minutes=15)][1] == pytest.approx(61.0)


def test_rollup_job_without_data_does_nothing(conn):
    run = run_minute_rollup(conn, T0, JobSettings())
    assert run == RollupRun(0, 0, None)
    assert rollups.read_watermark(conn, "vitals_1m") is None


# --- daily summaries -------------------------------------------------------------------

OSLO = ZoneInfo("Europe/Oslo")
DAY = date(2026, 3, 10)  # CET, UTC+1


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), OSLO).astimezone(UTC)


def constructed_day() -> list[Reading]:
    """Readings every 30 s from 20:00 the evening before to midnight after DAY.

    In bed 22:30 -> 07:45 with exits at 02:00 (10 min), 04:30 (5 min) and 06:00 (10 min, so
    06:00 is not the rise), then a nap 14:00 -> 15:00. Heart rate 55 before 03:00 and 65
    after; respiration 14 at night; 70/16 during the nap.
    """
    prev = DAY - timedelta(days=1)
    out_periods = [(local(DAY, 2), local(DAY, 2, 10)), (local(DAY, 4, 30), local(DAY, 4, 35)),
                   (local(DAY, 6), local(DAY, 6, 10))]
    in_periods = [(local(prev, 22, 30), local(DAY, 7, 45)), (local(DAY, 14), local(DAY, 15))]
    readings: list[Reading] = []
    t, end = local(prev, 20), local(DAY + timedelta(days=1), 0)
    while t < end:
        in_bed = (any(a <= t < b for a, b in in_periods)
                  and not any(a <= t < b for a, b in out_periods))
        if not in_bed:
            readings.append((t, False, None, None, 0))
        elif t >= local(DAY, 14):
            readings.append((t, True, 70.0, 16.0, 3))
        else:
            readings.append((t, True, 55.0 if t < local(DAY, 3) else 65.0, 14.0, 2))
        t += timedelta(seconds=30)
    return readings


def seed_resident(conn: Any, tz: str = "Europe/Oslo") -> int:
    conn.execute("INSERT INTO sites (id, name, timezone) VALUES ('north', 'North', %s)", (tz,))
    row = conn.execute("INSERT INTO residents (site_id, full_name) VALUES ('north', 'Ida') "
                       "RETURNING id").fetchone()
    return int(row[0])


def test_daily_summary_of_a_constructed_night(conn):
    rid = seed_resident(conn)
    insert_readings(conn, constructed_day(), resident_id=rid)
    now = local(DAY + timedelta(days=1), 0, 30)
    cfg = JobSettings(chunk=timedelta(hours=12))
    run_minute_rollup(conn, now, cfg)
    assert run_daily_summaries(conn, now, cfg) == 2  # DAY and the new day (no data: day 0)
    row = conn.execute(
        "SELECT timezone, day_start, data_minutes, time_in_bed_s, night_exits, rise_time, "
        "resting_hr, median_rr, samples FROM resident_daily WHERE resident_id = %s "
        "AND day = %s", (rid, DAY)).fetchone()
    tz, day_start, minutes, in_bed_s, exits, rise, resting, median_rr, samples = row
    assert tz == "Europe/Oslo" and day_start == local(DAY, 0)
    assert minutes == 1440 and samples == 2880
    # 00:00 -> 07:45 minus 25 minutes of exits, plus the one-hour nap
    assert in_bed_s == (7 * 60 + 45 - 25 + 60) * 60
    assert exits == 3
    assert rise == local(DAY, 7, 45)
    assert resting == pytest.approx(55.0)
    assert median_rr == pytest.approx(14.0)


def test_daily_summary_learning_features_of_a_constructed_night(conn):
    """Issue 15's features: bedtime, time out of bed in the night, the longest empty-bed
    stretch of the day, breathing pauses, restlessness and the lowest battery."""
    rid = seed_resident(conn)
    readings = constructed_day()
    # a 40-second breathing pause at 03:30 (respiration 0 while lying still)
    pause = (local(DAY, 3, 30), local(DAY, 3, 30) + timedelta(seconds=40))
    readings = [(t, occ, hr, 0.0 if pause[0] <= t < pause[1] else rr, mv)
                for t, occ, hr, rr, mv in readings]
    insert_readings(conn, readings, resident_id=rid)
    conn.execute("INSERT INTO devices (id, site_id, resident_id, type, credentials_hash) "
                 "VALUES ('bed-1', 'north', %s, 'bed_sensor', 'x')", (rid,))
    for at, level in ((local(DAY, 9), 80), (local(DAY, 21), 35),
                      (local(DAY + timedelta(days=1), 1), 5)):  # the last one: the next day
        conn.execute("INSERT INTO device_status (time, device_id, resident_id, online, "
                     "battery, received_at) VALUES (%s, 'bed-1', %s, true, %s, %s)",
                     (at, rid, level, at))
    now = local(DAY + timedelta(days=1), 0, 30)
    cfg = JobSettings(chunk=timedelta(hours=12))
    run_minute_rollup(conn, now, cfg)
    run_daily_summaries(conn, now, cfg)
    bedtime, night_out, away, pauses, restless, battery = conn.execute(
        "SELECT bedtime, night_out_s, away_s, pauses_per_hour, restlessness, min_battery "
        "FROM resident_daily WHERE resident_id = %s AND day = %s", (rid, DAY)).fetchone()
    assert bedtime == local(DAY - timedelta(days=1), 22, 30)
    assert night_out == 25 * 60  # the three exits between bedtime and the rise at 07:45
    assert away == 9 * 3600  # 15:00 (end of the nap) to midnight
    # one minute with a pause (03:30) among the 22:30 -> 07:00 minutes in bed (8 h 30 - 25')
    assert pauses == pytest.approx(60.0 / (8 * 60 + 30 - 25 + 0))
    assert restless == pytest.approx(2.0)
    assert battery == 35


def test_daily_summary_rise_waits_for_thirty_minutes_of_data(conn):
    rid = seed_resident(conn)
    insert_readings(conn, [r for r in constructed_day() if r[0] < local(DAY, 8)],
                    resident_id=rid)
    cfg = JobSettings()
    now = local(DAY, 8)  # 15 minutes after getting up: not yet a rise
    run_minute_rollup(conn, now, cfg)
    run_daily_summaries(conn, now, cfg)
    rise, data_until, final = conn.execute(
        "SELECT rise_time, data_until, night_final_at FROM resident_daily WHERE day = %s",
        (DAY,)).fetchone()
    assert rise is None
    # the row says how far its data reaches, and when its night is final (12:00 + 30 min)
    assert data_until == rollups.read_watermark(conn, rollups.ROLLUP_JOB)
    assert final == local(DAY, 12, 30) == rollups.night_final_at(DAY, "Europe/Oslo")


def test_a_partial_day_summary_reads_only_the_data_up_to_its_data_until(conn):
    """The row the daily summaries job upserts at 12:30 holds what the data said then, even
    when later minutes are in (the evaluation replays the day so): the morning's minutes,
    the rise at 07:45 (30 minutes of data after it), the data_until it was computed at."""
    rid = seed_resident(conn)
    insert_readings(conn, constructed_day(), resident_id=rid)
    cfg = JobSettings(chunk=timedelta(hours=12))
    run_minute_rollup(conn, local(DAY + timedelta(days=1), 0, 30), cfg)
    noon = local(DAY, 12, 30)
    with conn.transaction():
        rollups.summarize_days(conn, noon, noon, noon, noon)
    minutes, rise, data_until, in_bed = conn.execute(
        "SELECT data_minutes, rise_time, data_until, time_in_bed_s FROM resident_daily "
        "WHERE resident_id = %s AND day = %s", (rid, DAY)).fetchone()
    assert (minutes, rise, data_until) == (12 * 60 + 30, local(DAY, 7, 45), noon)
    assert in_bed == (7 * 60 + 45 - 25) * 60  # the night only: the nap is after 12:30
    with conn.transaction():
        rollups.summarize_days(conn, noon, noon, local(DAY + timedelta(days=1), 0), noon)
    assert conn.execute("SELECT data_minutes FROM resident_daily WHERE resident_id = %s "
                        "AND day = %s", (rid, DAY)).fetchone()[0] == 1440


def test_daily_summary_is_idempotent_and_catches_up(conn):
    rid = seed_resident(conn)
    insert_readings(conn, constructed_day(), resident_id=rid)
    cfg = JobSettings(chunk=timedelta(hours=12))
    now = local(DAY + timedelta(days=3), 9)
    run_minute_rollup(conn, now, cfg)
    with conn.transaction():
        rollups.write_watermark(conn, "resident_daily", local(DAY, 1), local(DAY, 1))
    run_daily_summaries(conn, now, cfg)  # down since 01:00 on DAY: recomputes DAY onwards
    first = conn.execute("SELECT day, time_in_bed_s, night_exits FROM resident_daily "
                         "ORDER BY day").fetchall()
    run_daily_summaries(conn, now, cfg)
    again = conn.execute("SELECT day, time_in_bed_s, night_exits FROM resident_daily "
                         "ORDER BY day").fetchall()
    assert first == again
    assert [r[0] for r in first] == [DAY, DAY + timedelta(days=1)]


def test_daily_summary_an_early_rise_is_not_a_night_exit(conn):
    """Nocturia is waking to void and going back to bed: an exit counts only when the
    person is back in bed before the rise. An early riser up for the day at 05:30 (before
    the night's 07:00 end) made one exit that night (02:00), not two."""
    rid = seed_resident(conn)
    prev = DAY - timedelta(days=1)
    readings = []
    t, end = local(prev, 20), local(DAY, 12)
    while t < end:
        in_bed = (local(prev, 22, 30) <= t < local(DAY, 5, 30)
                  and not local(DAY, 2) <= t < local(DAY, 2, 10))
        readings.append((t, in_bed, 60.0 if in_bed else None, 14.0 if in_bed else None,
                         2 if in_bed else 0))
        t += timedelta(seconds=30)
    insert_readings(conn, readings, resident_id=rid)
    now = local(DAY, 12)
    cfg = JobSettings(chunk=timedelta(hours=12))
    run_minute_rollup(conn, now, cfg)
    run_daily_summaries(conn, now, cfg)
    exits, rise = conn.execute("SELECT night_exits, rise_time FROM resident_daily "
                               "WHERE resident_id = %s AND day = %s", (rid, DAY)).fetchone()
    assert rise == local(DAY, 5, 30)
    assert exits == 1
