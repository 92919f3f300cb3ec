-- Initial schema: registry, readings (hypertables), dead letters, alerts with history.
-- depends:

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Registry ------------------------------------------------------------------

CREATE TABLE sites (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9-]{1,32}$'),
    name        text NOT NULL,
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE residents (
    id          bigserial PRIMARY KEY,
    site_id     text NOT NULL REFERENCES sites(id),
    full_name   text NOT NULL,
    address     text,
    birth_year  int,
    timezone    text,
    notes       text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX residents_site_idx ON residents (site_id);

CREATE TABLE devices (
    id                text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    site_id           text NOT NULL REFERENCES sites(id),
    resident_id       bigint NOT NULL REFERENCES residents(id),
    type              text NOT NULL CHECK (type IN ('bed_sensor', 'call_button')),
    credentials_hash  text NOT NULL,
    firmware          text,
    battery           smallint,
    online            boolean,
    heartbeat_s       int,
    last_seen         timestamptz,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_resident_idx ON devices (resident_id);
CREATE INDEX devices_site_idx ON devices (site_id);

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    full_name      text NOT NULL DEFAULT '',
    role           text NOT NULL CHECK (role IN ('admin', 'duty_officer', 'care_worker', 'family')),
    site_id        text REFERENCES sites(id),
    phone          text,
    email          text,
    on_duty        boolean NOT NULL DEFAULT false,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role IN ('admin', 'family') OR site_id IS NOT NULL)
);

-- A family member (a user with role 'family') linked to the residents they may see.
CREATE TABLE family_contacts (
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    resident_id  bigint NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
    relation     text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, resident_id)
);
CREATE INDEX family_contacts_resident_idx ON family_contacts (resident_id);

-- Readings (hypertables, 1-day chunks) -----------------------------------------
-- `time` is the device time, unless the device clock was implausible: then `time` is the
-- receive time and the device's own time is kept in `device_time`.

CREATE TABLE bed_telemetry (
    time              timestamptz NOT NULL,
    device_id         text NOT NULL,
    resident_id       bigint NOT NULL,
    seq               bigint NOT NULL,
    occupied          boolean NOT NULL,
    heart_rate        real,
    respiration_rate  real,
    movement          smallint NOT NULL,
    device_time       timestamptz,
    received_at       timestamptz NOT NULL
);
SELECT create_hypertable('bed_telemetry', 'time', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX bed_telemetry_dedup ON bed_telemetry (device_id, seq, time);
CREATE INDEX bed_telemetry_resident_time ON bed_telemetry (resident_id, time DESC);

CREATE TABLE device_events (
    time         timestamptz NOT NULL,
    device_id    text NOT NULL,
    resident_id  bigint NOT NULL,
    seq          bigint NOT NULL,
    type         text NOT NULL,
    detail       text,
    device_time  timestamptz,
    received_at  timestamptz NOT NULL
);
SELECT create_hypertable('device_events', 'time', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX device_events_dedup ON device_events (device_id, seq, time);
CREATE INDEX device_events_resident_time ON device_events (resident_id, time DESC);

CREATE TABLE device_status (
    time         timestamptz NOT NULL,
    device_id    text NOT NULL,
    resident_id  bigint NOT NULL,
    seq          bigint,
    online       boolean NOT NULL,
    battery      smallint,
    rssi         smallint,
    fw           text,
    heartbeat_s  int,
    device_time  timestamptz,
    received_at  timestamptz NOT NULL
);
SELECT create_hypertable('device_status', 'time', chunk_time_interval => interval '1 day');
CREATE INDEX device_status_device_time ON device_status (device_id, time DESC);

-- Messages that failed validation, kept with the reason.
CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    payload_size int NOT NULL,
    reason       text NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);

-- Alerts --------------------------------------------------------------------------

CREATE TABLE alerts (
    id            bigserial PRIMARY KEY,
    resident_id   bigint NOT NULL REFERENCES residents(id),
    site_id       text NOT NULL REFERENCES sites(id),
    device_id     text,
    type          text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('critical', 'high', 'urgent', 'warning', 'info')),
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'acknowledged', 'resolved', 'cancelled')),
    opened_at     timestamptz NOT NULL,          -- event (device) time of the trigger
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL,
    count         int NOT NULL DEFAULT 1,
    source_seq    bigint,
    assigned_to   bigint REFERENCES users(id),
    acknowledged_by bigint REFERENCES users(id),
    acknowledged_at timestamptz,
    resolved_by   bigint REFERENCES users(id),
    resolved_at   timestamptz,
    outcome       text,
    note          text,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX alerts_status_idx ON alerts (status, site_id, created_at DESC);
CREATE INDEX alerts_resident_idx ON alerts (resident_id, created_at DESC);
-- One open alert per resident and type: repeats attach to it.
CREATE UNIQUE INDEX alerts_one_open ON alerts (resident_id, type)
    WHERE status IN ('open', 'acknowledged');
-- The same device message never opens two alerts (redelivery after a crash).
CREATE UNIQUE INDEX alerts_source_dedup ON alerts (device_id, type, source_seq, opened_at)
    WHERE source_seq IS NOT NULL;

CREATE TABLE alert_history (
    id        bigserial PRIMARY KEY,
    alert_id  bigint NOT NULL REFERENCES alerts(id),
    at        timestamptz NOT NULL DEFAULT now(),
    action    text NOT NULL,
    actor_id  bigint REFERENCES users(id),
    actor     text NOT NULL DEFAULT 'system',
    status    text NOT NULL,
    note      text
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, at);

-- History is append-only.
CREATE FUNCTION alert_history_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_history is append-only';
END $$;
CREATE TRIGGER alert_history_no_update BEFORE UPDATE OR DELETE ON alert_history
    FOR EACH ROW EXECUTE FUNCTION alert_history_immutable();

-- Every alert change is announced for live feeds (payload: alert id).
CREATE FUNCTION alerts_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alerts', NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_notify_change AFTER INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_notify();

-- Registry changes are announced so running pipelines pick up new devices at once.
CREATE FUNCTION devices_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('devices', COALESCE(NEW.id, OLD.id));
    RETURN NULL;
END $$;
CREATE TRIGGER devices_notify_change AFTER INSERT OR UPDATE OF site_id, resident_id, type, active
    OR DELETE ON devices FOR EACH ROW EXECUTE FUNCTION devices_notify();
