-- Regular visits to residents (巡访关爱): a plan per site with a per-resident override, and
-- the visits themselves (assigned to a care worker, recorded on the phone page, maybe made
-- from an alert). See kernel/visits.py and docs/dashboard.md, "Visits".
-- depends: 0010_notify_idempotency

CREATE TABLE visit_site_plans (
    site_id                  text PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    interval_days            int NOT NULL DEFAULT 30 CHECK (interval_days BETWEEN 1 AND 366),
    high_risk_interval_days  int NOT NULL DEFAULT 7
                             CHECK (high_risk_interval_days BETWEEN 1 AND 366),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- A resident's own interval; no row (or a null interval) means the site's default.
CREATE TABLE visit_resident_plans (
    resident_id    bigint PRIMARY KEY REFERENCES residents(id) ON DELETE CASCADE,
    interval_days  int CHECK (interval_days BETWEEN 1 AND 366),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE visits (
    id              bigserial PRIMARY KEY,
    resident_id     bigint NOT NULL REFERENCES residents(id),
    site_id         text NOT NULL REFERENCES sites(id),
    alert_id        bigint REFERENCES alerts(id),
    status          text NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'in_progress', 'completed', 'cancelled')),
    due_on          date NOT NULL,
    assigned_to     bigint REFERENCES users(id),
    created_by      bigint REFERENCES users(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    arrived_at      timestamptz,
    left_at         timestamptz,
    findings        text NOT NULL DEFAULT '',
    checklist       jsonb NOT NULL DEFAULT '{}'::jsonb,
    follow_up       boolean NOT NULL DEFAULT false,
    follow_up_note  text,
    CHECK (left_at IS NULL OR (arrived_at IS NOT NULL AND left_at >= arrived_at)),
    CHECK (status <> 'completed' OR left_at IS NOT NULL)
);
CREATE INDEX visits_resident_idx ON visits (resident_id, left_at DESC);
CREATE INDEX visits_site_open_idx ON visits (site_id, status) WHERE status IN ('planned', 'in_progress');
CREATE INDEX visits_assigned_idx ON visits (assigned_to) WHERE assigned_to IS NOT NULL;
CREATE INDEX visits_alert_idx ON visits (alert_id) WHERE alert_id IS NOT NULL;
