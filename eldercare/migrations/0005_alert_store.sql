-- Alert store: indexed refractory lookups over finished (resolved or cancelled) alerts, and the
-- on-duty care workers of a site (least-open-alerts assignment when an alert opens).
-- depends: 0004_alert_engine

CREATE INDEX alerts_finished_idx ON alerts
    (resident_id, type, (COALESCE(resolved_at, cancelled_at)) DESC)
    WHERE status IN ('resolved', 'cancelled');

CREATE INDEX users_on_duty_care_idx ON users (site_id, id)
    WHERE role = 'care_worker' AND on_duty AND active;
