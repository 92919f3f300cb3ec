-- depends: 0010_notify_idempotency
-- Device accounts at scale (docs/decisions/0006-device-provisioning-at-scale.md): a device's
-- broker password hash (Mosquitto's PBKDF2-SHA512 `$7$` format) is kept here, and the
-- broker's password_file/acl_file are generated from the active rows. NULL for devices
-- whose account lives in the dynamic-security plugin (provisioned before this release).
ALTER TABLE devices ADD COLUMN broker_hash text;

-- What happened to a device and when: provisioned, moved to another resident, revoked.
CREATE TABLE device_history (
    id                bigserial PRIMARY KEY,
    device_id         text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    time              timestamptz NOT NULL DEFAULT now(),
    action            text NOT NULL CHECK (action IN ('provision', 'move', 'revoke')),
    site_id           text,
    resident_id       bigint,
    from_site_id      text,
    from_resident_id  bigint,
    actor             text
);
CREATE INDEX device_history_device_time ON device_history (device_id, time DESC);
