-- Alerts on one clock: the event (device) time at which an alert was finished, so the
-- refractory period compares event time with event time (docs/alerts.md, "Refractory period").
-- depends: 0005_alert_store

ALTER TABLE alerts ADD COLUMN finished_event_at timestamptz;

-- When a person resolves an alert, only the wall clock is known. Its event-time equivalent is
-- the wall time minus the lag the alert was stored with (created_at - opened_at: ~0 live,
-- months in a replay of old data), never before the last event time the alert saw (last_seen,
-- cleared_at). A resident's cancel is already in event time.
CREATE FUNCTION alert_finished_event_at(a alerts) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN a.status = 'cancelled' THEN a.cancelled_at
        WHEN a.status = 'resolved' THEN GREATEST(
            a.resolved_at - GREATEST(a.created_at - a.opened_at, interval '0'),
            a.last_seen, a.cleared_at, a.opened_at)
    END
$$;

CREATE FUNCTION alerts_set_finished_event_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('resolved', 'cancelled') AND NEW.finished_event_at IS NULL THEN
        NEW.finished_event_at := alert_finished_event_at(NEW);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER alerts_finished_event_at BEFORE INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_set_finished_event_at();

-- The backfill changes no alert anyone is watching: keep it off the live feeds (one NOTIFY
-- per finished alert would flood every open duty screen).
ALTER TABLE alerts DISABLE TRIGGER alerts_notify_change;
UPDATE alerts a SET finished_event_at = alert_finished_event_at(a)
WHERE a.status IN ('resolved', 'cancelled');
ALTER TABLE alerts ENABLE TRIGGER alerts_notify_change;

-- Refractory lookups: the last finished alert of a resident and type, in event time.
CREATE INDEX alerts_finished_event_idx ON alerts (resident_id, type, finished_event_at DESC)
    WHERE status IN ('resolved', 'cancelled');
