-- depends: 0017_app_role
-- Wall displays (docs/dashboard.md, "Wall displays"): a screen set up once by a duty officer
-- or an administrator keeps itself signed in with a long random secret kept in the screen's
-- browser (stored here only hashed). Each display has its own account (role 'display', no
-- usable password, the site of whoever set it up), so its short-lived sessions are ordinary
-- rows of `sessions`: revoking the display deactivates that account, and the trigger of 0007
-- ends its sessions and, through the `sessions` notification, its live streams at once. The
-- account is also who acknowledged an alert from the wall ("Hall screen 1").

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'duty_officer', 'care_worker', 'family', 'display'));

CREATE TABLE displays (
    user_id         bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash     text NOT NULL,
    created_by      bigint REFERENCES users(id) ON DELETE SET NULL,
    created_by_name text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz,
    last_address    text,
    revoked_at      timestamptz,
    revoked_by_name text
);
