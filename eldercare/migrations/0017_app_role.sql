-- depends: 0016_audit_trail
-- The application's database role (docs/admin-guide.md, "Database roles"). The owner (the
-- role that runs the migrations; initdb's superuser in the embedded setup) keeps ownership
-- of everything; the platform's processes log in as `eldercare_app`, which owns nothing and
-- holds only these grants. So the REVOKE of 0016 really applies: the application can read
-- and append to the audit trail, never change, delete or truncate it.
--  * ordinary tables: SELECT, INSERT, UPDATE, DELETE (hypertables pass grants to chunks);
--    sequences: USAGE, SELECT; and the same by default for the tables later migrations add;
--  * audit_log: SELECT, INSERT only; audit_anchor and audit_policy: SELECT only;
--  * what needs ownership goes through SECURITY DEFINER functions owned by the owner, with
--    a fixed search_path, that can do only their one thing:
--      audit_prune(before)            deletes only rows older than audit_policy's floor
--                                     (and `before`), anchoring the chain (retention job);
--      raw_drop_chunks(table, before) drops chunks of the three raw hypertables only
--                                     (drop_chunks needs the owner; retention job).
-- The role is created by the embedded setup (eldercare/embedded.py, with its password in
-- the data dir's secrets.json); on an external database, by the administrator, or here as a
-- NOLOGIN group role when the migrating role may create roles (then GRANT eldercare_app TO
-- the login role the platform uses). eldercare_grant_app() re-applies the grants (owner
-- only): run it after creating the role if it did not exist when this migration ran.

-- The shortest retention the database allows the audit trail, whatever the caller asks:
-- only the owner may lower it (PIPL / graded protection: at least six months).
CREATE TABLE audit_policy (
    id            int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    min_retention interval NOT NULL CHECK (min_retention >= interval '0')
);
INSERT INTO audit_policy (id, min_retention) VALUES (1, interval '180 days');
REVOKE ALL ON audit_policy FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_prune(before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    newest_allowed timestamptz;
    last_kept bigint;
    last_gone bigint;
    anchor_hash text;
    n bigint;
BEGIN
    SELECT now() - p.min_retention INTO newest_allowed FROM public.audit_policy p;
    before := least(before, COALESCE(newest_allowed, now() - interval '180 days'));
    PERFORM pg_advisory_xact_lock(hashtext('eldercare.audit_log'));
    SELECT min(id) INTO last_kept FROM public.audit_log WHERE at >= before;
    SELECT max(id) INTO last_gone FROM public.audit_log
        WHERE last_kept IS NULL OR id < last_kept;
    IF last_gone IS NULL THEN
        RETURN 0;
    END IF;
    SELECT hash INTO anchor_hash FROM public.audit_log WHERE id = last_gone;
    INSERT INTO public.audit_anchor (id, last_id, hash, pruned_at)
    VALUES (1, last_gone, anchor_hash, now())
    ON CONFLICT (id) DO UPDATE SET last_id = EXCLUDED.last_id, hash = EXCLUDED.hash,
                                   pruned_at = EXCLUDED.pruned_at;
    PERFORM set_config('eldercare.audit_prune', 'on', true);
    DELETE FROM public.audit_log WHERE id <= last_gone;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('eldercare.audit_prune', 'off', true);
    RETURN n;
END $$;

CREATE FUNCTION raw_drop_chunks(tbl regclass, cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF tbl NOT IN ('public.bed_telemetry'::regclass, 'public.device_status'::regclass,
                   'public.device_events'::regclass) THEN
        RAISE EXCEPTION 'raw_drop_chunks: % is not a raw telemetry table', tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY SELECT c::text FROM public.drop_chunks(tbl, older_than => cutoff) AS c;
END $$;

CREATE FUNCTION eldercare_grant_app() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'eldercare_app') THEN
        BEGIN
            CREATE ROLE eldercare_app NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'no role eldercare_app and % may not create it: one role for all (docs/admin-guide.md)',
                current_user;
            RETURN;
        END;
    END IF;
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public'
             AND tablename NOT LIKE '\_yoyo%' AND tablename NOT LIKE 'yoyo\_%' LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO eldercare_app', t);
    END LOOP;
    REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM eldercare_app;
    REVOKE ALL ON audit_anchor, audit_policy FROM eldercare_app;
    GRANT SELECT ON audit_anchor, audit_policy TO eldercare_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO eldercare_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO eldercare_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO eldercare_app;
    GRANT EXECUTE ON FUNCTION audit_prune(timestamptz), raw_drop_chunks(regclass, timestamptz)
        TO eldercare_app;
END $$;
REVOKE ALL ON FUNCTION eldercare_grant_app() FROM PUBLIC;
-- The two owner's-power functions: the application role only, not every role that connects.
REVOKE ALL ON FUNCTION audit_prune(timestamptz), raw_drop_chunks(regclass, timestamptz)
    FROM PUBLIC;

SELECT eldercare_grant_app();
