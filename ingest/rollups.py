"""Rollup and retention SQL: per-minute vitals, per-day resident summaries, chunk dropping.

Every statement works on an explicit, closed-open time window and takes its times as
parameters (never the database's `now()`), so callers can inject a clock and re-run any
window: the upserts are idempotent and pick up rows that arrived late inside the window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kernel.db import Conn

logger = logging.getLogger(__name__)


ROLLUP_JOB = "vitals_1m"  # job_watermarks key: vitals_1m is complete before its done_until

_MINUTE_ROLLUP = """
INSERT INTO vitals_1m AS v (resident_id, bucket, hr_avg, hr_min, hr_max, rr_avg, rr_min,
                            rr_max, movement_avg, occupied_fraction, samples, hr_samples,
                            rr_samples)
SELECT resident_id, time_bucket('1 minute', time),
       avg(heart_rate), min(heart_rate), max(heart_rate),
       avg(respiration_rate), min(respiration_rate), max(respiration_rate),
       avg(movement), avg(occupied::int), count(*), count(heart_rate), count(respiration_rate)
FROM bed_telemetry
WHERE time >= %(start)s AND time < %(end)s
GROUP BY 1, 2
ON CONFLICT (resident_id, bucket) DO UPDATE SET
    hr_avg = EXCLUDED.hr_avg, hr_min = EXCLUDED.hr_min, hr_max = EXCLUDED.hr_max,
    rr_avg = EXCLUDED.rr_avg, rr_min = EXCLUDED.rr_min, rr_max = EXCLUDED.rr_max,
    movement_avg = EXCLUDED.movement_avg, occupied_fraction = EXCLUDED.occupied_fraction,
    samples = EXCLUDED.samples, hr_samples = EXCLUDED.hr_samples,
    rr_samples = EXCLUDED.rr_samples
WHERE (v.samples, v.hr_samples, v.rr_samples, v.hr_avg, v.hr_min, v.hr_max, v.rr_avg,
       v.rr_min, v.rr_max, v.movement_avg, v.occupied_fraction)
      IS DISTINCT FROM
      (EXCLUDED.samples, EXCLUDED.hr_samples, EXCLUDED.rr_samples, EXCLUDED.hr_avg,
       EXCLUDED.hr_min, EXCLUDED.hr_max, EXCLUDED.rr_avg, EXCLUDED.rr_min, EXCLUDED.rr_max,
       EXCLUDED.movement_avg, EXCLUDED.occupied_fraction)
"""

# Days: for each active resident, every local date from `since` to `until` (inclusive) in the
# resident's timezone (else the site's). Minutes come from vitals_1m, from 18:00 of the
# evening before the day (bedtime; the night itself starts at 22:00) to the local midnight
# that ends it. A minute counts as "in bed" when the mat reported occupied for at least half
# of it. The features of issue 15 (bedtime, night_out_s, away_s, pauses_per_hour,
# restlessness, min_battery) are defined in docs/storage.md and alerts/learning/features.py.
# Only minutes before `data_until` (the minute rollup's watermark) are read, and each row
# records it with `night_final_at` (morning_end + stay_up, local): a partial row of today says
# how far its data reaches, and when its night features are final (the learning job judges
# them then, alerts/learning/job.py).
_DAILY = """
WITH w AS (
    SELECT r.id AS resident_id, z.tz, d.day,
           d.day::timestamp AT TIME ZONE z.tz AS day_start,
           (d.day + 1)::timestamp AT TIME ZONE z.tz AS day_end,
           (d.day - 1 + %(evening_start)s::time) AT TIME ZONE z.tz AS evening_start,
           (d.day - 1 + %(night_start)s::time) AT TIME ZONE z.tz AS night_start,
           (d.day + %(night_end)s::time) AT TIME ZONE z.tz AS night_end,
           (d.day + %(morning_start)s::time) AT TIME ZONE z.tz AS morning_start,
           (d.day + %(morning_end)s::time) AT TIME ZONE z.tz AS morning_end,
           (d.day + %(morning_end)s::time + %(stay_up)s::interval) AT TIME ZONE z.tz
               AS night_final_at
    FROM residents r
    JOIN sites s ON s.id = r.site_id
    CROSS JOIN LATERAL (SELECT COALESCE(r.timezone, s.timezone) AS tz) z
    CROSS JOIN LATERAL (
        SELECT g::date AS day
        FROM generate_series((%(since)s::timestamptz AT TIME ZONE z.tz)::date,
                             (%(until)s::timestamptz AT TIME ZONE z.tz)::date,
                             interval '1 day') g
    ) d
    WHERE r.active
), m AS (
    SELECT w.*, v.bucket, v.hr_avg, v.rr_avg, v.rr_min, v.movement_avg, v.occupied_fraction,
           v.samples, v.hr_samples, v.rr_samples, v.occupied_fraction >= 0.5 AS in_bed,
           lag(v.occupied_fraction >= 0.5)
               OVER (PARTITION BY w.resident_id, w.day ORDER BY v.bucket) AS was_in_bed,
           lag(v.bucket) OVER (PARTITION BY w.resident_id, w.day ORDER BY v.bucket)
               AS prev_bucket,
           -- in-bed minutes so far: the out-of-bed minutes between two in-bed ones share it
           sum((v.occupied_fraction >= 0.5)::int)
               OVER (PARTITION BY w.resident_id, w.day ORDER BY v.bucket) AS beds_so_far
    FROM w
    -- LATERAL: one index range scan per resident-day, never a scan of all their minutes
    CROSS JOIN LATERAL (
        SELECT * FROM vitals_1m v
        WHERE v.resident_id = w.resident_id
          AND v.bucket >= LEAST(w.evening_start, w.night_start, w.day_start)
          AND v.bucket < w.day_end
          AND v.bucket < %(data_until)s  -- a row holds what the data said at data_until
        OFFSET 0  -- keeps the planner from flattening this into a join over all minutes
    ) v
), agg AS (
    SELECT resident_id, day,
           count(*) FILTER (WHERE bucket >= day_start) AS data_minutes,
           COALESCE(sum(occupied_fraction * 60) FILTER (WHERE bucket >= day_start), 0)
               AS time_in_bed_s,
           count(*) FILTER (WHERE bucket >= night_start AND bucket < night_end
                            AND occupied_fraction >= 1 AND (rr_min <= 0 OR rr_samples < samples))
               * 60.0 / NULLIF(count(*) FILTER (WHERE bucket >= night_start
                                                AND bucket < night_end AND in_bed), 0)
               AS pauses_per_hour,
           avg(movement_avg) FILTER (WHERE bucket >= night_start AND bucket < night_end
                                     AND in_bed) AS restlessness,
           percentile_cont(0.1) WITHIN GROUP (ORDER BY hr_avg)
               FILTER (WHERE bucket >= night_start AND bucket < night_end AND in_bed
                       AND hr_avg IS NOT NULL) AS resting_hr,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY rr_avg)
               FILTER (WHERE bucket >= night_start AND bucket < night_end AND in_bed
                       AND rr_avg IS NOT NULL) AS median_rr,
           sum(hr_avg * hr_samples) FILTER (WHERE bucket >= day_start)
               / NULLIF(sum(hr_samples) FILTER (WHERE bucket >= day_start), 0) AS hr_avg,
           sum(rr_avg * rr_samples) FILTER (WHERE bucket >= day_start)
               / NULLIF(sum(rr_samples) FILTER (WHERE bucket >= day_start), 0) AS rr_avg,
           sum(movement_avg * samples) FILTER (WHERE bucket >= day_start)
               / NULLIF(sum(samples) FILTER (WHERE bucket >= day_start), 0) AS movement_avg,
           sum(occupied_fraction * samples) FILTER (WHERE bucket >= day_start)
               / NULLIF(sum(samples) FILTER (WHERE bucket >= day_start), 0)
               AS occupied_fraction,
           COALESCE(sum(samples) FILTER (WHERE bucket >= day_start), 0) AS samples,
           COALESCE(sum(hr_samples) FILTER (WHERE bucket >= day_start), 0) AS hr_samples,
           COALESCE(sum(rr_samples) FILTER (WHERE bucket >= day_start), 0) AS rr_samples
    FROM m
    GROUP BY resident_id, day
), ups AS (
    -- "up": the minute after an in-bed minute; it is a rise when the next in-bed minute is
    -- at least `stay_up` later (or, with none yet, `stay_up` of data has passed).
    SELECT resident_id, day, morning_start, morning_end, bucket + interval '1 minute' AS up,
           lead(bucket) OVER (PARTITION BY resident_id, day ORDER BY bucket) AS next_in_bed
    FROM m WHERE in_bed
), rise AS (
    SELECT resident_id, day, max(up) AS rise_time
    FROM ups
    WHERE up >= morning_start AND up < morning_end
      AND (next_in_bed >= up + %(stay_up)s
           OR (next_in_bed IS NULL AND up + %(stay_up)s <= %(data_until)s))
    GROUP BY resident_id, day
), bed_by_end AS (
    -- in-bed minutes before the night's end: the rise, else night_end
    SELECT m.resident_id, m.day, COALESCE(rise.rise_time, m.night_end) AS night_over,
           count(*) FILTER (WHERE m.in_bed
                            AND m.bucket < COALESCE(rise.rise_time, m.night_end)) AS beds
    FROM m LEFT JOIN rise USING (resident_id, day)
    GROUP BY m.resident_id, m.day, COALESCE(rise.rise_time, m.night_end)
), exits AS (
    -- a night exit: leaving the bed in the night and coming back to it before the rise (or
    -- the night's end) - waking to void or wander and returning to bed. Leaving it for the
    -- day (the rise, even before 07:00) is not one: an early riser's morning is no nocturia.
    -- Back to bed = more in-bed minutes before the end than up to the exit (beds_so_far).
    SELECT m.resident_id, m.day, count(*) AS night_exits
    FROM m JOIN bed_by_end b USING (resident_id, day)
    WHERE m.bucket >= m.night_start AND m.bucket < m.night_end
      AND m.prev_bucket >= m.night_start AND NOT m.in_bed AND m.was_in_bed
      AND m.bucket < b.night_over AND m.beds_so_far < b.beds
    GROUP BY m.resident_id, m.day
), evening AS (
    -- in-bed minutes among each minute of the evening and night and the next 119
    SELECT resident_id, day, bucket, in_bed, night_end,
           sum(in_bed::int) OVER (PARTITION BY resident_id, day ORDER BY bucket
                                  RANGE BETWEEN CURRENT ROW AND interval '119 minutes'
                                  FOLLOWING) AS bed_2h
    FROM m
    WHERE bucket >= evening_start AND bucket < night_end + interval '2 hours'
), bed AS (
    -- bedtime: the first in-bed minute from the evening on that starts the main sleep
    SELECT resident_id, day, min(bucket) AS bedtime
    FROM evening
    WHERE in_bed AND bucket < night_end AND bed_2h >= 90
    GROUP BY resident_id, day
), nightout AS (
    SELECT m.resident_id, m.day, round(sum((1 - m.occupied_fraction) * 60)) AS night_out_s
    FROM m
    LEFT JOIN bed USING (resident_id, day)
    LEFT JOIN rise USING (resident_id, day)
    WHERE m.bucket >= COALESCE(bed.bedtime, m.night_start)
      AND m.bucket < COALESCE(rise.rise_time, m.night_end)
    GROUP BY m.resident_id, m.day
), stretches AS (
    SELECT resident_id, day, extract(epoch FROM max(bucket) - min(bucket)) + 60 AS out_s
    FROM m
    WHERE NOT in_bed AND bucket >= day_start
    GROUP BY resident_id, day, beds_so_far
), away AS (
    SELECT resident_id, day, round(max(out_s)) AS away_s FROM stretches GROUP BY 1, 2
)
INSERT INTO resident_daily AS d (resident_id, day, timezone, day_start, data_minutes,
                                 time_in_bed_s, night_exits, rise_time, resting_hr, median_rr,
                                 hr_avg, rr_avg, movement_avg, occupied_fraction, samples,
                                 hr_samples, rr_samples, bedtime, night_out_s, away_s,
                                 pauses_per_hour, restlessness, min_battery, data_until,
                                 night_final_at, computed_at)
SELECT w.resident_id, w.day, w.tz, w.day_start, agg.data_minutes, round(agg.time_in_bed_s),
       COALESCE(exits.night_exits, 0), rise.rise_time, agg.resting_hr, agg.median_rr,
       agg.hr_avg, agg.rr_avg,
       agg.movement_avg, agg.occupied_fraction, agg.samples, agg.hr_samples, agg.rr_samples,
       bed.bedtime, nightout.night_out_s, away.away_s, agg.pauses_per_hour, agg.restlessness,
       battery.min_battery, %(data_until)s, w.night_final_at, %(computed_at)s
FROM w
JOIN agg USING (resident_id, day)
LEFT JOIN rise USING (resident_id, day)
LEFT JOIN exits USING (resident_id, day)
LEFT JOIN bed USING (resident_id, day)
LEFT JOIN nightout USING (resident_id, day)
LEFT JOIN away USING (resident_id, day)
LEFT JOIN LATERAL (
    SELECT min(s.battery) AS min_battery
    FROM devices dv
    JOIN device_status s ON s.device_id = dv.id
    WHERE dv.resident_id = w.resident_id AND s.resident_id = w.resident_id
      AND s.time >= w.day_start AND s.time < w.day_end
) battery ON true
ON CONFLICT (resident_id, day) DO UPDATE SET
    timezone = EXCLUDED.timezone, day_start = EXCLUDED.day_start,
    data_minutes = EXCLUDED.data_minutes, time_in_bed_s = EXCLUDED.time_in_bed_s,
    night_exits = EXCLUDED.night_exits, rise_time = EXCLUDED.rise_time,
    resting_hr = EXCLUDED.resting_hr, median_rr = EXCLUDED.median_rr,
    hr_avg = EXCLUDED.hr_avg, rr_avg = EXCLUDED.rr_avg, movement_avg = EXCLUDED.movement_avg,
    occupied_fraction = EXCLUDED.occupied_fraction, samples = EXCLUDED.samples,
    hr_samples = EXCLUDED.hr_samples, rr_samples = EXCLUDED.rr_samples,
    bedtime = EXCLUDED.bedtime, night_out_s = EXCLUDED.night_out_s, away_s = EXCLUDED.away_s,
    pauses_per_hour = EXCLUDED.pauses_per_hour, restlessness = EXCLUDED.restlessness,
    min_battery = EXCLUDED.min_battery, data_until = EXCLUDED.data_until,
    night_final_at = EXCLUDED.night_final_at, computed_at = EXCLUDED.computed_at
"""


@dataclass(frozen=True)
class DayRules:
    """Local clock times that define the night and the morning of a day summary.

    The night features of a day are final once the data reaches `morning_end` + `stay_up`
    (a getting-up just before `morning_end` needs `stay_up` more minutes to count as the
    rise): each row records that instant as `night_final_at`."""

    evening_start: str = "18:00"  # bedtime is looked for from here (the evening before)
    night_start: str = "22:00"
    night_end: str = "07:00"
    morning_start: str = "04:00"
    morning_end: str = "12:00"
    stay_up: timedelta = timedelta(minutes=30)


def night_final_at(day: date, tz: str, rules: DayRules | None = None) -> datetime:
    """When the night features of local `day` are final (UTC): `morning_end` + `stay_up`
    local, as `_DAILY` writes it into `night_final_at` (the learning job judges them then)."""
    r = rules or DayRules()
    local = datetime.combine(day, time.fromisoformat(r.morning_end), ZoneInfo(tz))
    return (local + r.stay_up).astimezone(UTC)


def floor_minute(t: datetime) -> datetime:
    """`t` truncated to its minute (timezone-aware UTC)."""
    return t.astimezone(UTC).replace(second=0, microsecond=0)


def windows(start: datetime, end: datetime, step: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive `[a, b)` windows of at most `step` covering `[start, end)`."""
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    a = start
    while a < end:
        b = min(a + step, end)
        yield a, b
        a = b


def rollup_minutes(conn: Conn, start: datetime, end: datetime) -> int:
    """Upsert vitals_1m for `[start, end)` (minute-aligned, in a tx); return rows written."""
    if start != floor_minute(start) or end != floor_minute(end):
        raise ValueError("rollup windows must start and end on whole minutes")
    conn.execute("SET LOCAL jit = off")
    cur = conn.execute(_MINUTE_ROLLUP, {"start": start, "end": end})
    return max(cur.rowcount, 0)


def summarize_days(conn: Conn, since: datetime, until: datetime, data_until: datetime,
                   computed_at: datetime, rules: DayRules | None = None) -> int:
    """Upsert resident_daily for each resident's local dates of `since`..`until` (in a tx)."""
    r = rules or DayRules()
    conn.execute("SET LOCAL jit = off")  # compiling costs seconds; the query needs ms
    cur = conn.execute(_DAILY, {
        "since": since, "until": until, "data_until": data_until, "computed_at": computed_at,
        "evening_start": r.evening_start, "night_start": r.night_start,
        "night_end": r.night_end,
        "morning_start": r.morning_start, "morning_end": r.morning_end,
        "stay_up": r.stay_up,
    })
    return max(cur.rowcount, 0)


def read_watermark(conn: Conn, job: str) -> datetime | None:
    """Where `job` has processed up to, or None when it never ran."""
    row = conn.execute("SELECT done_until FROM job_watermarks WHERE job = %s", (job,)).fetchone()
    return None if row is None else row[0]


def write_watermark(conn: Conn, job: str, done_until: datetime, now: datetime) -> None:
    """Advance `job`'s watermark to `done_until` (never moves it backwards)."""
    conn.execute(
        "INSERT INTO job_watermarks (job, done_until, updated_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (job) DO UPDATE SET "
        "done_until = GREATEST(job_watermarks.done_until, EXCLUDED.done_until), "
        "updated_at = EXCLUDED.updated_at",
        (job, done_until, now))


def earliest_telemetry(conn: Conn) -> datetime | None:
    """Time of the oldest raw reading, or None when there is none."""
    row = conn.execute("SELECT min(time) FROM bed_telemetry").fetchone()
    return None if row is None else row[0]


def drop_chunks(conn: Conn, table: str, older_than: datetime) -> list[str]:
    """Drop `table`'s chunks entirely older than `older_than`; return the dropped chunks.

    Through `raw_drop_chunks` (migration 0017_app_role): dropping chunks needs the table's
    owner, and the application role is not; that function, owned by the owner, does it for
    the raw hypertables only."""
    rows = conn.execute("SELECT raw_drop_chunks(%s::regclass, %s::timestamptz)",
                        (table, older_than)).fetchall()
    return [str(r[0]) for r in rows]
