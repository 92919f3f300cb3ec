"""The learning job against the real database: 40 days of a resident's summaries whose night
exits start rising -> one routine_change alert through the alert store, baselines and state
kept; a re-run adds nothing; a resident's settings switch it off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.config import AlertSettings
from alerts.learning.job import LearningSettings, run_learning
from alerts.overrides import set_override
from kernel import db

ZONE = "Europe/Oslo"
FIRST = date(2026, 3, 1)
DAYS = 40
ONSET = 34  # night exits rise from this day on
NOW = datetime(2026, 4, 10, 3, 0, tzinfo=UTC)  # wall clock: bookkeeping only

_DAILY = """
INSERT INTO resident_daily (resident_id, day, timezone, day_start, data_minutes, time_in_bed_s,
    night_exits, rise_time, resting_hr, median_rr, samples, hr_samples, rr_samples, bedtime,
    night_out_s, away_s, pauses_per_hour, restlessness, min_battery, computed_at)
VALUES (%(rid)s, %(day)s, %(tz)s, %(start)s, 1440, %(in_bed)s, %(exits)s, %(rise)s, %(hr)s,
        %(rr)s, 2880, 2000, 2000, %(bed)s, %(out)s, %(away)s, %(pauses)s, %(restless)s, 80,
        %(start)s)
"""


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), ZoneInfo(ZONE)).astimezone(UTC)


def ordinary(i: int) -> float:
    """A small, regular day-to-day wobble (-1, 0, +1)."""
    return float(i % 3 - 1)


def insert_days(conn: Any, rid: int, n: int = DAYS, onset: int = ONSET,
                hr_onset: int | None = None) -> None:
    """`n` ordinary days from FIRST; night exits rise from `onset` on, the resting heart rate
    (4/min a day) from `hr_onset` on."""
    for i in range(n):
        insert_day(conn, rid, i, onset, hr_onset)


def insert_day(conn: Any, rid: int, i: int, onset: int = ONSET,
               hr_onset: int | None = None) -> None:
    """Day `i` of `insert_days` (a row written before rows said how far their data reaches:
    complete)."""
    day = FIRST + timedelta(days=i)
    w = ordinary(i)
    exits = 1 + (i % 2) + (2 * (i - onset + 1) if i >= onset else 0)
    hr = 4 * (i - hr_onset + 1) if hr_onset is not None and i >= hr_onset else 0
    conn.execute(_DAILY, {
        "rid": rid, "day": day, "tz": ZONE, "start": local(day, 0),
        "in_bed": 30600 + 900 * w, "exits": exits, "rise": local(day, 6, 10 + 5 * int(w)),
        "hr": 60 + w + hr, "rr": 15 + 0.3 * w, "bed": local(day - timedelta(days=1), 22, 30),
        "out": 600 + 60 * w, "away": 50400 + 600 * w, "pauses": 0.5, "restless": 5 + w})


def complete_until(conn: Any, day: date) -> None:
    """The daily summaries are done up to the local midnight that ends `day`."""
    end = local(day + timedelta(days=1), 0)
    conn.execute("INSERT INTO job_watermarks (job, done_until, updated_at) "
                 "VALUES ('resident_daily', %s, %s) ON CONFLICT (job) DO UPDATE "
                 "SET done_until = EXCLUDED.done_until", (end, end))


@pytest.fixture
def conn(clean_db: str) -> Iterator[Any]:
    with db.connect(clean_db, autocommit=True) as c:
        c.execute("INSERT INTO sites (id, name, timezone) VALUES ('north', 'North', %s)",
                  (ZONE,))
        yield c


def resident(conn: Any, name: str = "Ida") -> int:
    row = conn.execute("INSERT INTO residents (site_id, full_name) VALUES ('north', %s) "
                       "RETURNING id", (name,)).fetchone()
    return int(row[0])


def routine_alerts(conn: Any, rid: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT type, severity, status, opened_at, details, count FROM alerts "
        "WHERE resident_id = %s ORDER BY id", (rid,)).fetchall()


def test_a_rise_in_night_exits_opens_one_routine_change_alert_and_a_rerun_adds_none(conn):
    rid = resident(conn)
    insert_days(conn, rid)
    complete_until(conn, FIRST + timedelta(days=DAYS - 1))
    run = run_learning(conn, NOW)
    assert run.days == DAYS and run.alerts == 1
    [(kind, severity, status, opened_at, details, count)] = routine_alerts(conn, rid)
    assert (kind, severity, status, count) == ("routine_change", "warning", "open", 1)
    assert details["feature"] == "night_exits" and details["direction"] == "up"
    fired = date.fromisoformat(details["day"])
    assert FIRST + timedelta(days=ONSET) <= fired <= FIRST + timedelta(days=ONSET + 3)
    assert opened_at == local(fired + timedelta(days=1), 0)  # event time: the day's end
    assert details["explanation"].startswith("Night exits ")
    assert "vs usual 1.5 over the last" in details["explanation"]
    # the escalation plan and history of the normal store path
    assert conn.execute("SELECT count(*) FROM alert_escalations e JOIN alerts a "
                        "ON a.id = e.alert_id WHERE a.resident_id = %s",
                        (rid,)).fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM alert_history h JOIN alerts a "
                        "ON a.id = h.alert_id WHERE a.resident_id = %s AND h.action = 'opened'",
                        (rid,)).fetchone()[0] == 1

    # what it learned is kept
    base = dict(conn.execute("SELECT feature, personal FROM resident_baselines "
                             "WHERE resident_id = %s", (rid,)).fetchall())
    assert base["night_exits"] is True and base["resting_hr"] is True
    state = conn.execute("SELECT last_day, last_alert_day FROM routine_state "
                         "WHERE resident_id = %s AND feature = 'night_exits'",
                         (rid,)).fetchone()
    assert state == (FIRST + timedelta(days=DAYS - 1), fired)

    again = run_learning(conn, NOW + timedelta(hours=1))
    assert again.days == 0 and again.alerts == 0
    assert len(routine_alerts(conn, rid)) == 1


def test_days_are_judged_as_they_complete(conn):
    rid = resident(conn)
    insert_days(conn, rid)
    complete_until(conn, FIRST + timedelta(days=ONSET - 1))
    assert run_learning(conn, NOW).alerts == 0  # before the change: nothing
    for i in range(ONSET, DAYS):
        complete_until(conn, FIRST + timedelta(days=i))
        assert run_learning(conn, NOW).days == 1
    assert [a[0] for a in routine_alerts(conn, rid)] == ["routine_change"]


def test_a_resident_whose_routine_change_is_switched_off_gets_no_alert(conn):
    rid, other = resident(conn), resident(conn, "Per")
    insert_days(conn, rid)
    insert_days(conn, other)
    set_override(conn, AlertSettings(), {"routine_change": {"enabled": False}}, resident=rid)
    complete_until(conn, FIRST + timedelta(days=DAYS - 1))
    run_learning(conn, NOW, LearningSettings())
    assert routine_alerts(conn, rid) == []
    assert len(routine_alerts(conn, other)) == 1


def test_days_with_an_alert_about_the_person_are_left_out_of_the_baseline(conn):
    rid = resident(conn)
    insert_days(conn, rid, onset=DAYS + 10)  # no change at all
    # a fall on each of the last 30 days: too few ordinary days remain for a personal baseline
    for i in range(DAYS - 30, DAYS):
        at = local(FIRST + timedelta(days=i), 12)
        conn.execute("INSERT INTO alerts (resident_id, site_id, type, severity, status, "
                     "opened_at, last_seen) VALUES (%s, 'north', 'fall', 'critical', "
                     "'resolved', %s, %s)", (rid, at, at))
    complete_until(conn, FIRST + timedelta(days=DAYS - 1))
    run_learning(conn, NOW)
    n_days, personal = conn.execute(
        "SELECT n_days, personal FROM resident_baselines WHERE resident_id = %s "
        "AND feature = 'night_exits'", (rid,)).fetchone()
    assert n_days < 14 and personal is False


def test_features_read_back_in_the_residents_own_clock(conn):
    """Bedtime after midnight stays continuous (minutes after noon), rise time in minutes after
    local midnight, and a 23-hour DST day fully covered is fully covered."""
    from alerts.learning.store import load_days

    rid = resident(conn)
    dst = date(2026, 3, 29)  # Europe/Oslo springs forward: 23 hours
    conn.execute(_DAILY.replace("1440, %(in_bed)s", "1380, %(in_bed)s"), {
        "rid": rid, "day": dst, "tz": ZONE, "start": local(dst, 0), "in_bed": 30000,
        "exits": 2, "rise": local(dst, 7, 5), "hr": 61.5, "rr": 15.0, "bed": local(dst, 0, 30),
        "out": 300, "away": 40000, "pauses": 0.0, "restless": 4.0})
    [day] = load_days(conn, [rid], dst, dst)[rid]
    assert day.value("bedtime") == pytest.approx(12 * 60 + 30)
    assert day.value("rise_time") == pytest.approx(7 * 60 + 5)
    assert day.coverage == pytest.approx(1.0) and day.value("offline_min") == 0
    assert day.value("night_exits") == 2 and day.value("resting_hr") == pytest.approx(61.5)
    assert day.value("min_battery") == 80 and not day.alerted


def test_the_rule_engines_usual_day_leaves_out_days_that_raised_alerts(conn):
    """Every other day was a long day away from bed that raised a long_absence alert: the
    usual day the service loads (alerts.context, from the job's baselines) is the ordinary
    days' (10 h longest stretch), not a mix with the alerted 20 h ones."""
    from alerts.context import load_contexts
    from alerts.learning.baselines import MAD_SCALE

    rid = resident(conn)
    for i in range(DAYS):
        day = FIRST + timedelta(days=i)
        alerted = i % 2 == 1
        conn.execute(_DAILY, {
            "rid": rid, "day": day, "tz": ZONE, "start": local(day, 0), "in_bed": 30600,
            "exits": 1, "rise": local(day, 7), "hr": 60, "rr": 15, "bed": None, "out": 600,
            "away": 72000 if alerted else 36000 + 600 * ordinary(i), "pauses": 0.5,
            "restless": 5})
        if alerted:
            at = local(day, 19)
            conn.execute("INSERT INTO alerts (resident_id, site_id, type, severity, status, "
                         "opened_at, last_seen) VALUES (%s, 'north', 'long_absence', "
                         "'warning', 'resolved', %s, %s)", (rid, at, at))
    complete_until(conn, FIRST + timedelta(days=DAYS - 1))
    run_learning(conn, NOW)
    n_days, personal, median = conn.execute(
        "SELECT n_days, personal, median FROM resident_baselines WHERE resident_id = %s "
        "AND feature = 'away_s'", (rid,)).fetchone()
    assert personal and n_days == 14 and median == 36000
    ctx = load_contexts(conn, AlertSettings())[rid]
    assert ctx.usual_day_s == pytest.approx(36000 + 2 * MAD_SCALE * 1800)  # the MAD floor
    assert ctx.usual_rise == time(7, 0) and ctx.usual_bedtime is None


def history(conn: Any, rid: int) -> list[tuple[str, str]]:
    return conn.execute("SELECT h.action, h.note FROM alert_history h JOIN alerts a "
                        "ON a.id = h.alert_id WHERE a.resident_id = %s ORDER BY h.id",
                        (rid,)).fetchall()


def test_a_second_feature_changing_joins_the_open_alert_with_its_explanation(conn):
    """Night exits rise, then the resting heart rate while that alert is open: one alert
    carrying both changes (the care worker learns of the second); night exits, still
    raised, do not alert again (re-armed only once back to usual: routine.py)."""
    rid = resident(conn)
    insert_days(conn, rid, n=DAYS + 10, hr_onset=DAYS)
    complete_until(conn, FIRST + timedelta(days=DAYS - 1))
    assert run_learning(conn, NOW).alerts == 1
    [(_k, _s, _st, _o, first, _c)] = routine_alerts(conn, rid)
    exits_day = date.fromisoformat(first["day"])
    complete_until(conn, FIRST + timedelta(days=DAYS + 5))
    assert run_learning(conn, NOW + timedelta(days=6)).alerts == 0  # joined, not opened
    [(kind, _severity, status, _opened, details, count)] = routine_alerts(conn, rid)
    assert (kind, status) == ("routine_change", "open") and count >= 2
    assert details["feature"] == "night_exits"  # the change that opened it
    by_feature = {c["feature"]: c for c in details["changes"]}
    assert {"night_exits", "resting_hr"} <= set(by_feature)
    hr = by_feature["resting_hr"]
    assert hr["direction"] == "up" and hr["explanation"].startswith("Resting heart rate ")
    assert date.fromisoformat(hr["day"]) >= FIRST + timedelta(days=DAYS)
    added = [note for action, note in history(conn, rid) if action == "routine change added"]
    assert any(note.startswith("Resting heart rate ") for note in added)
    # hysteresis: night exits, still rising, are the same change - not alerted again
    assert date.fromisoformat(by_feature["night_exits"]["day"]) == exits_day
    last = dict(conn.execute("SELECT feature, last_alert_day FROM routine_state "
                             "WHERE resident_id = %s AND last_alert_day IS NOT NULL",
                             (rid,)).fetchall())
    assert {f: date.fromisoformat(c["day"]) for f, c in by_feature.items()} == last


# --- a night judged the same morning -------------------------------------------------------


def summarised_until(conn: Any, rid: int, day: date, until: datetime,
                     data_minutes: int | None = None) -> None:
    """The daily summaries job ran with its data up to `until`: `day`'s row says so (its
    night is final at 12:30 local, ingest.rollups.DayRules) and the watermark is there."""
    conn.execute("UPDATE resident_daily SET data_until = %s, night_final_at = %s, "
                 "data_minutes = COALESCE(%s, data_minutes) WHERE resident_id = %s "
                 "AND day = %s", (until, local(day, 12, 30), data_minutes, rid, day))
    conn.execute("INSERT INTO job_watermarks (job, done_until, updated_at) "
                 "VALUES ('resident_daily', %s, %s) ON CONFLICT (job) DO UPDATE "
                 "SET done_until = EXCLUDED.done_until", (until, until))


def last_days(conn: Any, rid: int) -> dict[str, date]:
    return dict(conn.execute("SELECT feature, last_day FROM routine_state "
                             "WHERE resident_id = %s", (rid,)).fetchall())


def test_a_partial_row_counts_what_its_data_says_so_far(conn):
    """Today's row at 12:31 (data from midnight, 751 minutes): fully covered, its night
    features count; at 12:29 they are not final yet; features of the whole day (time in
    bed, the longest time away, the sensor's) count only once the data reaches midnight."""
    from alerts.learning.features import FEATURES
    from alerts.learning.store import load_days

    rid = resident(conn)
    day = FIRST
    insert_day(conn, rid, 0)
    summarised_until(conn, rid, day, local(day, 12, 31), data_minutes=12 * 60 + 31)
    [noon] = load_days(conn, [rid], day, day)[rid]
    assert noon.coverage == pytest.approx(1.0) and noon.well_covered
    night = {f.name for f in FEATURES if f.settles == "morning"}
    assert night == {"bedtime", "rise_time", "night_exits", "night_out_s", "resting_hr",
                     "median_rr", "pauses_per_hour", "restlessness"}
    assert all(noon.value(name) is not None for name in night)
    assert noon.value("night_exits") == 1
    for name in ("time_in_bed_s", "away_s", "coverage", "offline_min", "min_battery"):
        assert noon.value(name) is None, name

    summarised_until(conn, rid, day, local(day, 12, 29), data_minutes=12 * 60 + 29)
    [early] = load_days(conn, [rid], day, day)[rid]
    assert early.well_covered and all(early.value(f.name) is None for f in FEATURES)

    # half the morning without readings: a poorly covered morning, as a day would be
    summarised_until(conn, rid, day, local(day, 12, 31), data_minutes=6 * 60)
    [gappy] = load_days(conn, [rid], day, day)[rid]
    assert gappy.coverage == pytest.approx(360 / 751) and gappy.value("night_exits") is None

    summarised_until(conn, rid, day, local(day + timedelta(days=1), 0, 15), data_minutes=1440)
    [done] = load_days(conn, [rid], day, day)[rid]
    assert done.coverage == pytest.approx(1.0) and done.value("offline_min") == 0
    assert all(done.value(f.name) is not None for f in FEATURES)


def test_a_nights_features_are_judged_at_the_end_of_the_morning_the_days_at_midnight(conn):
    """Each day of the change summarised as the daily summaries job does through the day:
    at 12:29 nothing of today is judged; at 12:31 its night features are (night exits
    among them), not its time in bed; after midnight the rest. The routine change in night
    exits opens its alert with the morning's 12:30 as its event time."""
    rid = resident(conn)
    insert_days(conn, rid, n=ONSET)
    complete_until(conn, FIRST + timedelta(days=ONSET - 1))
    run_learning(conn, NOW)
    for i in range(ONSET, DAYS):
        day, before = FIRST + timedelta(days=i), FIRST + timedelta(days=i - 1)
        insert_day(conn, rid, i)
        summarised_until(conn, rid, day, local(day, 12, 29))
        assert run_learning(conn, NOW).days == 0
        assert set(last_days(conn, rid).values()) == {before}
        summarised_until(conn, rid, day, local(day, 12, 31))
        assert run_learning(conn, NOW).days == 1
        judged = last_days(conn, rid)
        assert judged["night_exits"] == judged["rise_time"] == judged["resting_hr"] == day
        assert judged["time_in_bed_s"] == judged["away_s"] == before
        assert run_learning(conn, NOW).days == 0  # a re-run (every 15 minutes) adds nothing
        summarised_until(conn, rid, day, local(day + timedelta(days=1), 0, 15))
        assert run_learning(conn, NOW).days == 1
        assert set(last_days(conn, rid).values()) == {day}
    [(kind, _severity, _status, opened_at, details, _count)] = routine_alerts(conn, rid)
    assert kind == "routine_change" and details["feature"] == "night_exits"
    fired = date.fromisoformat(details["day"])
    assert FIRST + timedelta(days=ONSET) <= fired <= FIRST + timedelta(days=ONSET + 3)
    assert opened_at == local(fired, 12, 30)  # event time: the morning the night was final


def test_a_day_judged_on_its_own_has_the_whole_baseline_window(conn):
    """The job judges one new day at a time; its baseline is the 28 days ending a week
    before it (baselines.window_of, gap_days 7) - all of them, not the 21 of them that
    fall within 28 days of it (the history once loaded stopped there)."""
    rid = resident(conn)
    insert_days(conn, rid, onset=DAYS + 10)  # no change
    complete_until(conn, FIRST + timedelta(days=DAYS - 2))
    run_learning(conn, NOW)
    last = FIRST + timedelta(days=DAYS - 1)
    complete_until(conn, last)
    assert run_learning(conn, NOW).days == 1
    n_days, start, end = conn.execute(
        "SELECT n_days, window_start, window_end FROM resident_baselines "
        "WHERE resident_id = %s AND feature = 'night_exits'", (rid,)).fetchone()
    assert (start, end) == (last - timedelta(days=35), last - timedelta(days=8))
    assert n_days == 28


def test_a_catch_up_judges_each_kind_of_feature_up_to_its_own_last_final_day(conn):
    """After a stop, every row written with the data up to 12:45 of the last day: the
    nights up to today's, the whole days up to yesterday; a change found in a past night
    has that night's 12:30 as its event time. The next runs take each kind on from there."""
    rid = resident(conn)
    insert_days(conn, rid)
    today = FIRST + timedelta(days=DAYS - 1)
    conn.execute("UPDATE resident_daily SET data_until = %s, night_final_at = "
                 "((day + time '12:30') AT TIME ZONE %s) WHERE resident_id = %s",
                 (local(today, 12, 45), ZONE, rid))
    summarised_until(conn, rid, today, local(today, 12, 45))
    assert run_learning(conn, NOW).days == DAYS
    judged = last_days(conn, rid)
    assert judged["night_exits"] == judged["bedtime"] == today
    assert judged["time_in_bed_s"] == judged["away_s"] == today - timedelta(days=1)
    [(_kind, _severity, _status, opened_at, details, _count)] = routine_alerts(conn, rid)
    assert opened_at == local(date.fromisoformat(details["day"]), 12, 30)
    assert run_learning(conn, NOW).days == 0
    summarised_until(conn, rid, today, local(today + timedelta(days=1), 0, 15))
    assert run_learning(conn, NOW).days == 1
    assert set(last_days(conn, rid).values()) == {today}
