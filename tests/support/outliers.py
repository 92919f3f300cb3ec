"""Daily summaries (resident_daily) of an ordinary resident, written straight into the table
(as the daily rollup would), for the outlier digest's job, API and page tests.

Seeded randomness (numpy's default_rng), fixed dates: never the wall clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

# What an ordinary night looks like, and the noise around it.
USUAL = {"rise": 420.0, "in_bed_h": 8.5, "exits": 1.0, "hr": 60.0, "rr": 15.0, "restless": 10.0}
WORSE = {"rise": 150.0, "exits": 4.0}  # 2.5 h later up, four more night exits


def usual_nights(seed: int, until: date, n: int = 60, shift: dict[str, float] | None = None,
                 shifted: int = 3) -> list[tuple[date, dict[str, float]]]:
    """`n` days before `until`, the last `shifted` moved by `shift` (USUAL key -> delta)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        v = {"rise": USUAL["rise"] + rng.normal(0, 15),
             "in_bed_h": USUAL["in_bed_h"] + rng.normal(0, 0.4),
             "exits": float(rng.poisson(USUAL["exits"])), "hr": USUAL["hr"] + rng.normal(0, 2),
             "rr": USUAL["rr"] + rng.normal(0, 0.8),
             "restless": USUAL["restless"] + rng.normal(0, 2)}
        if shift and i >= n - shifted:
            for key, delta in shift.items():
                v[key] += delta
        out.append((until - timedelta(days=n - i), v))
    return out


def insert_nights(conn: Any, resident_id: int, zone: str,
                  nights: list[tuple[date, dict[str, float]]], *, data_minutes: int = 1440,
                  computed_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
    """Write the nights as resident_daily rows of the resident (in `zone`)."""
    tz = ZoneInfo(zone)
    for day, v in nights:
        start = datetime.combine(day, time(0), tz)
        rise = start + timedelta(minutes=v["rise"])
        conn.execute(
            "INSERT INTO resident_daily (resident_id, day, timezone, day_start, data_minutes, "
            "time_in_bed_s, night_exits, rise_time, resting_hr, median_rr, restlessness, "
            "samples, hr_samples, rr_samples, computed_at) VALUES (%s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (resident_id, day) DO UPDATE "
            "SET data_minutes = EXCLUDED.data_minutes, rise_time = EXCLUDED.rise_time, "
            "night_exits = EXCLUDED.night_exits",
            (resident_id, day, zone, start, data_minutes, round(v["in_bed_h"] * 3600),
             round(v["exits"]), rise, v["hr"], v["rr"], v["restless"], data_minutes * 12,
             data_minutes * 6, data_minutes * 6, computed_at))


def daily_done(conn: Any, until: datetime) -> None:
    """Mark the daily summaries complete up to `until` (job_watermarks 'resident_daily')."""
    conn.execute("INSERT INTO job_watermarks (job, done_until, updated_at) VALUES "
                 "('resident_daily', %s, %s) ON CONFLICT (job) DO UPDATE SET "
                 "done_until = EXCLUDED.done_until", (until, until))


DIGEST_DAY = date(2026, 3, 10)
DIGEST_DONE = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # the daily summaries are done up to here


def seed_digest(database_url: str, worse: int, steady: int, zone: str = "UTC") -> None:
    """60 nights of `worse` (the last three later up, more night exits) and of `steady`
    before DIGEST_DAY, summarised, and the digest job run once for that day."""
    from alerts.learning.outliers import run_digest
    from kernel import db

    with db.connect(database_url, autocommit=True) as conn:
        insert_nights(conn, worse, zone, usual_nights(1, DIGEST_DAY, shift=WORSE))
        insert_nights(conn, steady, zone, usual_nights(2, DIGEST_DAY))
        daily_done(conn, DIGEST_DONE)
        run_digest(conn, DIGEST_DONE)


def open_routine_change(database_url: str, resident_id: int, site: str, feature: str,
                        day: date, zone: str = "UTC") -> int:
    """Open a routine_change alert of the resident about `feature` on `day` through the
    learning job's own trigger (job.trigger_of) and the alert store; its id."""
    from alerts.config import AlertSettings
    from alerts.learning.job import trigger_of
    from alerts.learning.routine import RoutineChange
    from alerts.store import store_trigger
    from kernel import db

    change = RoutineChange(feature, "up", day, 4.0, 1.0, 3, 2.5, 3.0)
    settings = AlertSettings()
    with db.connect(database_url, autocommit=True) as conn:
        stored = store_trigger(conn, trigger_of(resident_id, site, zone, day, [change],
                                                settings), settings, DIGEST_DONE)
    assert stored is not None
    return stored.alert_id
