-- Rollups kept by the platform's own scheduled jobs (ingest/jobs.py), because the Apache-2
-- edition of TimescaleDB has no continuous aggregates or policies. See docs/storage.md.
-- depends: 0001_initial

-- Per-minute vitals per resident, rolled up from bed_telemetry. Averages over the minute;
-- hr_samples / rr_samples count the readings that had a value (null while out of bed), so
-- coarser buckets can be re-aggregated as weighted averages.
CREATE TABLE vitals_1m (
    resident_id        bigint NOT NULL,
    bucket             timestamptz NOT NULL,
    hr_avg             real,
    hr_min             real,
    hr_max             real,
    rr_avg             real,
    rr_min             real,
    rr_max             real,
    movement_avg       real NOT NULL,
    occupied_fraction  real NOT NULL,
    samples            int NOT NULL,
    hr_samples         int NOT NULL,
    rr_samples         int NOT NULL,
    -- Covering: the vitals endpoint reads a resident's range by index-only scan. Rows are
    -- written minute by minute for all residents, so one resident's week is spread over
    -- ~10,000 heap pages but only ~100 index pages.
    PRIMARY KEY (resident_id, bucket)
        INCLUDE (hr_avg, hr_samples, rr_avg, rr_samples, movement_avg, occupied_fraction,
                 samples)
);
-- 7-day chunks: ~10 M rows per chunk at 1,000 homes; the upserts of a rollup run touch only
-- the newest chunk's index, and range reads exclude chunks outside the range.
SELECT create_hypertable('vitals_1m', 'bucket', chunk_time_interval => interval '7 days',
                         create_default_indexes => false);
-- Index-only scans need the visibility map: vacuum after every ~60,000 new rows (about an
-- hour at 1,000 homes) instead of after 20 % of the chunk. Chunks inherit these settings.
ALTER TABLE vitals_1m SET (autovacuum_vacuum_insert_threshold = 60000,
                           autovacuum_vacuum_insert_scale_factor = 0);

-- One row per resident and local day (the resident's, else the site's timezone).
-- Definitions (docs/storage.md): time in bed over the local calendar day; the night of `day`
-- is 22:00 the evening before to 07:00 that morning; rise time is the last getting-up
-- between 04:00 and 12:00 followed by at least 30 minutes out of bed.
CREATE TABLE resident_daily (
    resident_id        bigint NOT NULL,
    day                date NOT NULL,
    timezone           text NOT NULL,
    day_start          timestamptz NOT NULL,      -- local midnight of `day`
    data_minutes       int NOT NULL,              -- minutes of the day with readings
    time_in_bed_s      int NOT NULL,
    night_exits        int NOT NULL,
    rise_time          timestamptz,
    resting_hr         real,
    median_rr          real,
    hr_avg             real,
    rr_avg             real,
    movement_avg       real,
    occupied_fraction  real,
    samples            bigint NOT NULL,
    hr_samples         bigint NOT NULL,
    rr_samples         bigint NOT NULL,
    computed_at        timestamptz NOT NULL,
    PRIMARY KEY (resident_id, day)
);
CREATE INDEX resident_daily_resident_start ON resident_daily (resident_id, day_start);

-- How far each job has processed, so a job catches up after downtime where it stopped.
CREATE TABLE job_watermarks (
    job         text PRIMARY KEY,
    done_until  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
