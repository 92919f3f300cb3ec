-- depends: 0019_notify_demo
-- Issue 15: the detector learns each resident. More daily features in resident_daily (computed
-- by the daily rollup, ingest/rollups.py), each resident's robust baselines per feature, and
-- the state of the routine-change detector (alerts/learning/). See docs/alerts.md, "Routine
-- change".

-- The start of the main sleep (the first minute from 18:00 the evening before after which
-- the person is in bed for at least 90 of the next 120 minutes).
ALTER TABLE resident_daily ADD COLUMN bedtime timestamptz;
-- Seconds out of bed between bedtime (else 22:00) and rise time (else 07:00).
ALTER TABLE resident_daily ADD COLUMN night_out_s int;
-- The longest continuous time the bed was empty during the local day (seconds): with only a
-- bed mat, time out of the home cannot be told from time in another room; this bounds it.
ALTER TABLE resident_daily ADD COLUMN away_s int;
-- Minutes with a breathing pause (a reading in bed with no breathing) per hour in bed at night.
ALTER TABLE resident_daily ADD COLUMN pauses_per_hour real;
-- Mean movement index (0-100) of the minutes in bed at night.
ALTER TABLE resident_daily ADD COLUMN restlessness real;
-- The day's lowest battery level reported by any of the resident's devices (percent).
ALTER TABLE resident_daily ADD COLUMN min_battery smallint;

-- One row per resident and feature: the latest baseline (robust trailing median and MAD over
-- the days that count), or the population default while fewer than 14 days count.
CREATE TABLE resident_baselines (
    resident_id   bigint NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
    feature       text NOT NULL,
    median        double precision NOT NULL,
    mad           double precision NOT NULL,
    n_days        int NOT NULL,            -- days that counted in the window
    personal      boolean NOT NULL,        -- false: the population default
    window_start  date NOT NULL,           -- first local day of the trailing window
    window_end    date NOT NULL,           -- last local day of the window (inclusive)
    computed_for  date NOT NULL,           -- the day this baseline judged
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (resident_id, feature)
);

-- The routine-change detector's memory per resident and feature: one-sided EWMA statistics
-- of the robust z-score (upwards and downwards), how many days they have been above zero, the
-- last day processed (re-running a day changes nothing) and the last day it alerted
-- (at most one alert per feature per 7 days).
CREATE TABLE routine_state (
    resident_id     bigint NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
    feature         text NOT NULL,
    ewma_up         double precision NOT NULL DEFAULT 0,
    ewma_down       double precision NOT NULL DEFAULT 0,
    run_up          int NOT NULL DEFAULT 0,
    run_down        int NOT NULL DEFAULT 0,
    last_day        date NOT NULL,
    last_alert_day  date,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (resident_id, feature)
);
