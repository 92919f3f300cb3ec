-- depends: 0010_notify_idempotency
-- Staff, duty roster, family invitations, password resets and TOTP (issue 13, "Staff",
-- "Family accounts", "Accounts and sessions"). See docs/dashboard.md ("Staff and roster").

-- Duty override: users.on_duty keeps its meaning ("on duty by hand", what /me/duty and the
-- seed set); duty_forced_off is the other direction ("off duty whatever the roster says").
-- Neither set: the roster decides (kernel.roster.on_duty).
ALTER TABLE users
    ADD COLUMN duty_forced_off       boolean NOT NULL DEFAULT false,
    ADD COLUMN must_change_password  boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_secret           text,
    ADD COLUMN totp_enabled          boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_last_step        bigint,  -- the last time step used: no code twice
    ADD CONSTRAINT users_duty_override_one_way CHECK (NOT (on_duty AND duty_forced_off)),
    ADD CONSTRAINT users_totp_needs_secret CHECK (NOT totp_enabled OR totp_secret IS NOT NULL);

-- A shift: who is on duty at a site between two wall-clock times of the site's time zone
-- (local, so "08:00-20:00" stays 08:00-20:00 across a DST change; the instant is worked out
-- by kernel.roster with the site's zone). A night shift simply ends on the next day.
CREATE TABLE shifts (
    id           bigserial PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    starts_local timestamp NOT NULL,
    ends_local   timestamp NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_local > starts_local),
    CHECK (ends_local - starts_local <= interval '48 hours')
);
CREATE INDEX shifts_site_time_idx ON shifts (site_id, starts_local, ends_local);
CREATE INDEX shifts_user_idx ON shifts (user_id);

-- One-time links: a family invitation (set your password) or nothing else for now. Only the
-- SHA-256 of the token is kept; it is used once and expires.
CREATE TABLE account_invites (
    token_hash   text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX account_invites_user_idx ON account_invites (user_id);
