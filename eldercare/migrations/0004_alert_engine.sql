-- Alert engine: lifecycle columns, escalation deadlines, notification channels and outbox,
-- per-site/per-resident rule overrides, persisted detector state, platform keys.
-- depends: 0003_flagged_clock_dedup

ALTER TABLE alerts
    ADD COLUMN uid           uuid UNIQUE,    -- made by the pipeline before storing (live feed)
    ADD COLUMN assigned_at   timestamptz,
    ADD COLUMN cleared_at    timestamptz,    -- event time the rule's condition cleared
    ADD COLUMN cancelled_at  timestamptz,
    ADD COLUMN escalation_level smallint NOT NULL DEFAULT 0,
    ADD CONSTRAINT alerts_outcome_check CHECK (outcome IS NULL OR outcome IN (
        'false_alarm', 'assisted_at_home', 'ambulance_called', 'hospital', 'other',
        'cancelled_by_resident'));

-- Refractory lookups: the last finished alert of a resident and type.
CREATE INDEX alerts_resident_type_idx ON alerts (resident_id, type, resolved_at DESC);
-- Least-open-alerts assignment.
CREATE INDEX alerts_assigned_open_idx ON alerts (assigned_to) WHERE status IN ('open', 'acknowledged');

-- Escalation deadlines: one row per step, written when the alert opens. A step is done once
-- (done_at set in the same transaction that queues its notifications), so a restarted
-- service neither loses nor repeats a step. Acknowledging an alert skips its open steps.
CREATE TABLE alert_escalations (
    alert_id  bigint NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    step      smallint NOT NULL,
    audience  text NOT NULL CHECK (audience IN ('assigned', 'site_workers', 'duty_officers',
                                                'family', 'site_group')),
    due_at    timestamptz NOT NULL,
    done_at   timestamptz,
    skipped   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (alert_id, step)
);
CREATE INDEX alert_escalations_due_idx ON alert_escalations (due_at) WHERE done_at IS NULL;

-- Where a person, or a site's group chat, can be reached. Family members choose channel,
-- minimum severity and quiet hours (local time in `timezone`); critical ignores quiet hours.
CREATE TABLE notification_channels (
    id            bigserial PRIMARY KEY,
    user_id       bigint REFERENCES users(id) ON DELETE CASCADE,
    site_id       text REFERENCES sites(id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('webpush', 'email', 'webhook', 'wecom',
                                                 'dingtalk')),
    target        text NOT NULL,                    -- URL, e-mail address or push endpoint
    secret        jsonb NOT NULL DEFAULT '{}'::jsonb, -- push keys, robot signing secret
    min_severity  text NOT NULL DEFAULT 'info'
                  CHECK (min_severity IN ('critical', 'urgent', 'high', 'warning', 'info')),
    quiet_start   time,
    quiet_end     time,
    timezone      text NOT NULL DEFAULT 'UTC',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (site_id IS NULL)),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
CREATE INDEX notification_channels_user_idx ON notification_channels (user_id);
CREATE INDEX notification_channels_site_idx ON notification_channels (site_id);
CREATE UNIQUE INDEX notification_channels_unique ON notification_channels
    (COALESCE(user_id, 0), COALESCE(site_id, ''), kind, target);

-- Every outbound message (notifications and device commands) goes through this outbox; the
-- dispatcher sends, retries with backoff, and records the result. `dedup_key` makes enqueueing
-- idempotent (e.g. 'alert:42:step:1:channel:7').
CREATE TABLE notification_outbox (
    id           bigserial PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    alert_id     bigint REFERENCES alerts(id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('alert', 'escalation', 'all_clear', 'cancelled',
                                               'command')),
    channel      text NOT NULL CHECK (channel IN ('webpush', 'email', 'webhook', 'wecom',
                                                  'dingtalk', 'mqtt')),
    channel_id   bigint REFERENCES notification_channels(id) ON DELETE SET NULL,
    user_id      bigint REFERENCES users(id) ON DELETE SET NULL,
    target       text NOT NULL,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts     int NOT NULL DEFAULT 0,
    not_before   timestamptz NOT NULL DEFAULT now(),
    last_error   text,
    sent_at      timestamptz,
    dedup_key    text UNIQUE
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (not_before)
    WHERE status = 'pending';
CREATE INDEX notification_outbox_alert_idx ON notification_outbox (alert_id);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify_insert AFTER INSERT ON notification_outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_notify();

-- Threshold overrides (a partial AlertSettings as JSON) for one site or one resident.
CREATE TABLE alert_overrides (
    id           bigserial PRIMARY KEY,
    site_id      text UNIQUE REFERENCES sites(id) ON DELETE CASCADE,
    resident_id  bigint UNIQUE REFERENCES residents(id) ON DELETE CASCADE,
    settings     jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((site_id IS NULL) <> (resident_id IS NULL))
);

-- The detector's per-resident state, saved periodically so a restart resumes where it was.
CREATE TABLE detector_state (
    resident_id  bigint PRIMARY KEY REFERENCES residents(id) ON DELETE CASCADE,
    state        jsonb NOT NULL,
    watermark    timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Platform-wide generated keys shared by processes (e.g. the VAPID key pair for Web Push).
CREATE TABLE platform_keys (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
