-- depends: 0024_routine_rearm
-- A night's routine-change features are judged the same morning, not at the next midnight
-- (alerts/learning/job.py). The daily summaries upsert partial rows for today every 15
-- minutes, so a row must say how far its data reaches and when its night features are final:
-- - data_until: the per-minute data the row was computed from ends here (the summaries'
--   `data_until`, the minute rollup's watermark); its coverage counts the minutes up to here,
--   and a feature of the whole day counts only once this reaches the local midnight that ends
--   the day;
-- - night_final_at: the local end of the morning window plus the 30 minutes a rise needs
--   (12:30 with the default rules, ingest/rollups.py DayRules): from here on more data no
--   longer changes the night features (bedtime, rise time, night exits, ...).
-- Rows written before this migration have neither and count as complete, as before.
ALTER TABLE resident_daily
    ADD COLUMN data_until     timestamptz,
    ADD COLUMN night_final_at timestamptz;
