"""Resident contexts loaded from the real database: what the detector learns from history
(usual rise, usual day) and what it must not take from the wall clock (button test anchor)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.config import AlertSettings
from alerts.context import load_contexts
from alerts.detector import ResidentDetector
from alerts.model import AlertTrigger
from alerts.rules.params import Params
from gateway.records import StatusRecord
from kernel import db
from tests.support.database import execute as sql
from tests.support.homes import add_home

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _day(url: str, rid: int, days_ago: int, rise: str, in_bed_h: float,
         data_minutes: int = 1440) -> None:
    """One resident_daily row for a recent local day (UTC), relative to the database's date."""
    sql(url, "INSERT INTO resident_daily (resident_id, day, timezone, day_start, data_minutes, "
             "time_in_bed_s, night_exits, rise_time, samples, hr_samples, rr_samples, "
             "computed_at) SELECT %s, d, 'UTC', d::timestamp AT TIME ZONE 'UTC', %s, %s, 0, "
             "(d + %s::time) AT TIME ZONE 'UTC', 0, 0, 0, now() "
             "FROM (SELECT current_date - %s AS d) x",
        rid, data_minutes, int(in_bed_h * 3600), rise, days_ago)


def test_usual_rise_and_usual_day_are_learned(clean_db: str) -> None:
    home = add_home(clean_db)
    for n, (rise, in_bed) in enumerate([("05:30", 7.5), ("05:20", 7.5), ("05:40", 8.5)],
                                       start=1):
        _day(clean_db, home.resident_id, n, rise, in_bed)
    _day(clean_db, home.resident_id, 4, "05:30", 2.0, data_minutes=600)  # mat mostly off
    with db.connect(clean_db, autocommit=True) as conn:
        ctx = load_contexts(conn, AlertSettings())[home.resident_id]
    assert ctx.usual_rise == time(5, 30)
    assert ctx.usual_day_s == 16.5 * 3600


def _baseline(url: str, rid: int, feature: str, median: float, personal: bool) -> None:
    sql(url, "INSERT INTO resident_baselines (resident_id, feature, median, mad, n_days, "
             "personal, window_start, window_end, computed_for, updated_at) "
             "VALUES (%s, %s, %s, 10, 20, %s, '2026-01-01', '2026-01-28', '2026-02-05', now())",
        rid, feature, median, personal)


def test_usual_rise_and_bedtime_come_from_personal_baselines(clean_db: str) -> None:
    home, other = add_home(clean_db), add_home(clean_db, site="south", suffix="-2")
    for rid in (home.resident_id, other.resident_id):
        for n in (1, 2, 3):
            _day(clean_db, rid, n, "05:30", 8.0)
    _baseline(clean_db, home.resident_id, "rise_time", 7 * 60 + 15, personal=True)
    _baseline(clean_db, home.resident_id, "bedtime", 8 * 60 + 45, personal=True)  # 20:45
    _baseline(clean_db, other.resident_id, "rise_time", 9 * 60, personal=False)
    _baseline(clean_db, other.resident_id, "bedtime", 8 * 60, personal=False)
    with db.connect(clean_db, autocommit=True) as conn:
        ctx = load_contexts(conn, AlertSettings())
    assert ctx[home.resident_id].usual_rise == time(7, 15)
    assert ctx[home.resident_id].usual_bedtime == time(20, 45)
    assert ctx[other.resident_id].usual_rise == time(5, 30)  # population default: not learned
    assert ctx[other.resident_id].usual_bedtime is None
    # the usual day from the same baselines: rise 07:15 to bed 20:45 plus two spreads of the
    # bedtime (no away_s baseline); the other resident's falls back to the summaries
    assert ctx[home.resident_id].usual_day_s == pytest.approx(13.5 * 3600 + 2 * SPREAD_S)
    assert ctx[other.resident_id].usual_day_s == 16 * 3600


# MAD 10 min is under the clock features' floor of 15 min: one robust spread is 1.4826 x 15
SPREAD_S = 1.4826 * 15 * 60
AWAY_SPREAD_S = 1.4826 * 1800  # away_s: MAD 10 s, floor 1800 s


def test_the_usual_day_is_the_longer_of_the_longest_stretch_and_rise_to_bed(
        clean_db: str) -> None:
    """Someone out all day (away_s above the span) and a napper (longest stretch half a
    day): each gets a usual day no ordinary day of theirs outlasts."""
    walker, napper = add_home(clean_db), add_home(clean_db, site="south", suffix="-2")
    for rid, away_h in ((walker.resident_id, 15.5), (napper.resident_id, 7.0)):
        _baseline(clean_db, rid, "rise_time", 7 * 60, personal=True)
        _baseline(clean_db, rid, "bedtime", 9 * 60, personal=True)  # 21:00: a 14 h span
        _baseline(clean_db, rid, "away_s", away_h * 3600, personal=True)
    with db.connect(clean_db, autocommit=True) as conn:
        ctx = load_contexts(conn, AlertSettings())
    walker_day = ctx[walker.resident_id].usual_day_s
    napper_day = ctx[napper.resident_id].usual_day_s
    assert walker_day == pytest.approx(15.5 * 3600 + 2 * AWAY_SPREAD_S)
    assert napper_day == pytest.approx(14 * 3600 + 2 * SPREAD_S)
    # issue 6: the napper's ordinary day without the nap (up at 07:00, in bed at 21:00) is
    # not a long absence; the same day kept out past 23:00 is
    settings, zone = AlertSettings(), ZoneInfo("UTC")
    p = Params(settings, zone, time(7, 0), napper_day, time(21, 0))
    rose = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    due = datetime.fromtimestamp(p.absence_deadline(rose.timestamp()), UTC)
    assert rose.replace(hour=21, minute=30) < due < rose.replace(hour=23)


def test_the_usual_day_falls_back_to_the_summaries_until_the_baseline_is_personal(
        clean_db: str) -> None:
    """Fewer than 14 counted days: the stored away_s, rise and bedtime baselines are the
    population defaults (personal = false), so the usual day is the last 14 days' 90th
    percentile of the time out of bed; with no summary at all, the rule engine's default."""
    home, new = add_home(clean_db), add_home(clean_db, site="south", suffix="-2")
    for n, in_bed in enumerate((9.0, 10.0, 9.5), start=1):
        _day(clean_db, home.resident_id, n, "07:00", in_bed)
    for rid in (home.resident_id, new.resident_id):
        for feature, median in (("rise_time", 360), ("bedtime", 630), ("away_s", 50400)):
            _baseline(clean_db, rid, feature, median, personal=False)
    with db.connect(clean_db, autocommit=True) as conn:
        ctx = load_contexts(conn, AlertSettings())
    # percentile_cont(0.9) of 14, 14.5 and 15 h out of bed: 14.5 + 0.8 x 0.5 h
    assert ctx[home.resident_id].usual_day_s == pytest.approx(14.9 * 3600)
    assert ctx[home.resident_id].usual_rise == time(7, 0)
    assert ctx[new.resident_id].usual_day_s is None  # Params: usual_day_default_s


def test_a_button_test_is_overdue_in_a_replay(clean_db: str) -> None:
    """The button was registered (wall clock) after the replayed events: the overdue check
    runs on event time from the first record of the button, and fires after 7 days."""
    home = add_home(clean_db)
    sql(clean_db, "UPDATE devices SET created_at = %s, last_seen = %s",
        T0 + timedelta(days=100), T0 + timedelta(days=100))
    with db.connect(clean_db, autocommit=True) as conn:
        ctx = load_contexts(conn, AlertSettings())[home.resident_id]
    assert ctx.last_test_at is None
    det = ResidentDetector(ctx)
    out = []
    for hour in range(0, 8 * 24):
        t = T0 + timedelta(hours=hour)
        out += det.on_records([StatusRecord(t, home.button, home.resident_id, hour, True, 90,
                                            -60, "fw", 3600, t, t + timedelta(days=100))])
    overdue = [d for d in out if isinstance(d, AlertTrigger) and d.type == "test_overdue"]
    assert [(d.at, d.details and d.details["anchor"]) for d in overdue] == [
        (T0 + timedelta(days=7), "first_seen")]
