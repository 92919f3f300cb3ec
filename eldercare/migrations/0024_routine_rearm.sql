-- depends: 0023_site_language
-- Routine change re-arms with hysteresis (alerts/learning/routine.py): after an alert a
-- feature's side stays alarmed until its statistic has come back down, so a lasting change
-- is one alert, not one a week until the baseline absorbs it. The flag must survive a
-- restart of the learning job, as the statistic itself does.
ALTER TABLE routine_state
    ADD COLUMN alarmed_up   boolean NOT NULL DEFAULT false,
    ADD COLUMN alarmed_down boolean NOT NULL DEFAULT false;
