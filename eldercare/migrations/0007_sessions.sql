-- Server-side web sessions: every access token names a row here, so logging out or
-- deactivating an account ends its sessions at once (a signed token alone stays valid until
-- its `exp`). Usernames are unique regardless of case ("Admin" and "admin" are one person
-- to the login form).
-- depends: 0005_alert_store

CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    client_address  text,
    user_agent      text
);
-- A user's sessions: revoked all at once on deactivation, long-ended ones purged at login.
CREATE INDEX sessions_user_idx ON sessions (user_id, expires_at);

-- Deactivating an account, by any path (CLI, SQL, a future admin page), revokes all its
-- sessions; re-activating it later does not revive them (revoked_at stays set).
CREATE FUNCTION users_revoke_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET revoked_at = now(), revoked_reason = 'account deactivated'
    WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER users_deactivated_revoke_sessions AFTER UPDATE OF active ON users
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active)
    EXECUTE FUNCTION users_revoke_sessions();

-- A revoked or deleted session is announced so live streams using it end at once
-- (payload: {"session", "user", "reason"}).
CREATE FUNCTION sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sessions', json_build_object(
            'session', OLD.id, 'user', OLD.user_id, 'reason', 'session ended')::text);
    ELSIF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
        PERFORM pg_notify('sessions', json_build_object(
            'session', NEW.id, 'user', NEW.user_id,
            'reason', COALESCE(NEW.revoked_reason, 'session revoked'))::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_notify_revoked AFTER UPDATE OF revoked_at OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_notify();

-- Existing accounts whose names differ only in case must be renamed first: say which.
DO $$
DECLARE
    clash text;
BEGIN
    SELECT string_agg(username, ', ' ORDER BY username) INTO clash FROM users u
    WHERE EXISTS (SELECT 1 FROM users o WHERE lower(o.username) = lower(u.username)
                  AND o.id <> u.id);
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION 'usernames that differ only in case: %; rename all but one of each '
                        'before migrating', clash;
    END IF;
END $$;
CREATE UNIQUE INDEX users_username_lower_idx ON users (lower(username));
