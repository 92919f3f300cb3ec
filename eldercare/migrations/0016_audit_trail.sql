-- depends: 0010_notify_idempotency
-- The audit trail (issue 13): who read or changed what, when, from where, with what result.
-- Append-only and hash-chained (kernel/audit.py, docs/dashboard.md "Audit trail"):
--  * audit_append(canon) is the only way in: it serializes writers with a transaction-level
--    advisory lock, chains the row to the previous one (hash = sha256(prev_hash || canon))
--    and stores the fields parsed from the canonical JSON, so columns and hash cannot differ;
--  * a trigger refuses every UPDATE and every DELETE except the retention job's
--    (audit_prune, which sets eldercare.audit_prune for its own transaction and first
--    records the hash of the last row it deletes in audit_anchor, so the chain that remains
--    still verifies from that anchor);
--  * UPDATE/DELETE/TRUNCATE are revoked from PUBLIC; a deployment whose application role is
--    not the table owner loses them too (docs/admin-guide.md).

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor_id    bigint,
    actor       text NOT NULL,
    address     text,
    action      text NOT NULL,
    target_type text,
    target_id   text,
    resident_id bigint,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
    detail      jsonb NOT NULL DEFAULT '{}',
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (lower(actor), id);
CREATE INDEX audit_log_resident_idx ON audit_log (resident_id, id) WHERE resident_id IS NOT NULL;
CREATE INDEX audit_log_action_idx ON audit_log (action, id);

-- One row: where the remaining chain starts after pruning (the last pruned row's hash).
CREATE TABLE audit_anchor (
    id        int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_id   bigint NOT NULL,
    hash      text NOT NULL,
    pruned_at timestamptz NOT NULL
);

CREATE FUNCTION audit_append(canon text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := canon::jsonb;
    prev text;
    new_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('eldercare.audit_log'));
    SELECT l.hash INTO prev FROM audit_log l ORDER BY l.id DESC LIMIT 1;
    IF prev IS NULL THEN
        SELECT a.hash INTO prev FROM audit_anchor a;
    END IF;
    prev := COALESCE(prev, repeat('0', 64));
    INSERT INTO audit_log (at, actor_id, actor, address, action, target_type, target_id,
                           resident_id, outcome, detail, prev_hash, hash)
    VALUES ((v->>'at')::timestamptz, (v->>'actor_id')::bigint, v->>'actor', v->>'address',
            v->>'action', v->>'target_type', v->>'target_id', (v->>'resident_id')::bigint,
            v->>'outcome', COALESCE(v->'detail', '{}'::jsonb), prev,
            encode(sha256(convert_to(prev || canon, 'UTF8')), 'hex'))
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;

CREATE FUNCTION audit_log_protect() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('eldercare.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_protect();

-- Delete the rows older than `before` that form a prefix of the chain (a row is kept, with
-- everything after it, as soon as one is not older); return how many were deleted.
CREATE FUNCTION audit_prune(before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    last_kept bigint;
    last_gone bigint;
    anchor_hash text;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('eldercare.audit_log'));
    SELECT min(id) INTO last_kept FROM audit_log WHERE at >= before;
    SELECT max(id) INTO last_gone FROM audit_log
        WHERE last_kept IS NULL OR id < last_kept;
    IF last_gone IS NULL THEN
        RETURN 0;
    END IF;
    SELECT hash INTO anchor_hash FROM audit_log WHERE id = last_gone;
    INSERT INTO audit_anchor (id, last_id, hash, pruned_at)
    VALUES (1, last_gone, anchor_hash, now())
    ON CONFLICT (id) DO UPDATE SET last_id = EXCLUDED.last_id, hash = EXCLUDED.hash,
                                   pruned_at = EXCLUDED.pruned_at;
    PERFORM set_config('eldercare.audit_prune', 'on', true);
    DELETE FROM audit_log WHERE id <= last_gone;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('eldercare.audit_prune', 'off', true);
    RETURN n;
END $$;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE ALL ON audit_anchor FROM PUBLIC;
