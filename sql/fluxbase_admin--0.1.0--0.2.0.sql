-- fluxbase_admin 0.1.0 -> 0.2.0 (ALTER EXTENSION fluxbase_admin UPDATE)
--
-- Every change to the extension's objects between the archived 0.1.0 install
-- script (sql/versions/fluxbase_admin--0.1.0.sql) and what `CREATE EXTENSION
-- fluxbase_admin` installs at 0.2.0 belongs here: new and changed tables and
-- columns (ALTER TABLE ... ADD COLUMN, appended), new functions (CREATE
-- FUNCTION ... AS 'MODULE_PATHNAME', '<fn>_wrapper', copied from the generated
-- 0.2.0 script) with the grants sql/grants.sql would give them, changed
-- functions (CREATE OR REPLACE, or DROP and CREATE when the signature or return
-- type changes), views, triggers, comments and pg_extension_config_dump for new
-- tables. tests/test_upgrade.py compares an updated database with a fresh one,
-- object by object, and fails on any difference.
--
-- Runs inside the extension script machinery: no BEGIN/COMMIT, @extschema@ is
-- not used (the extension is not relocatable), schema-qualify everything.
-- Once 0.2.0 is released this file is never edited again (docs/RELEASING.md).

-- == Audit (issue 6): commit-time chain append, binary row images ==========
-- Row-change entries keep their rows in row_data (core/src/row_image.rs);
-- entries written by 0.1.0 keep their rows in details->'rows' and their
-- hashes (row_data is hashed only when present).
ALTER TABLE dashboard_auth.audit_log ADD COLUMN row_data bytea;
ALTER TABLE dashboard_auth.audit_log ALTER COLUMN row_data SET STORAGE MAIN;
ALTER TABLE dashboard_auth.audit_log ALTER COLUMN details SET STORAGE MAIN;

-- Every other variable-length column stays in the row as well, and the time
-- index becomes BRIN (sql/audit.sql says why).
ALTER TABLE dashboard_auth.audit_log
    ALTER COLUMN prev_hash SET STORAGE PLAIN,
    ALTER COLUMN row_hash SET STORAGE PLAIN,
    ALTER COLUMN actor SET STORAGE MAIN,
    ALTER COLUMN action SET STORAGE MAIN,
    ALTER COLUMN target_type SET STORAGE MAIN,
    ALTER COLUMN target_id SET STORAGE MAIN,
    ALTER COLUMN db_user SET STORAGE MAIN;
DROP INDEX dashboard_auth.audit_log_occurred_at;
CREATE INDEX audit_log_occurred_at ON dashboard_auth.audit_log USING brin (occurred_at);
DO $lz4$
BEGIN
    ALTER TABLE dashboard_auth.audit_log ALTER COLUMN row_data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$lz4$;
COMMENT ON TABLE dashboard_auth.audit_chain_head IS 'Last id and hash of the audit chain; written only by the commit-time append';
-- Index only entries with an admin behind them; keep the head on one page
-- (sql/audit.sql says why).
DROP INDEX dashboard_auth.audit_log_actor;
CREATE INDEX audit_log_actor ON dashboard_auth.audit_log (actor_id, occurred_at) WHERE actor_id IS NOT NULL;
ALTER TABLE dashboard_auth.audit_chain_head SET (fillfactor = 10);
-- The target index leads with the type, so that audit_search can use it
-- (sql/audit.sql says how).
DROP INDEX dashboard_auth.audit_log_target;
CREATE INDEX audit_log_target ON dashboard_auth.audit_log (target_type, target_id, id);

CREATE FUNCTION dashboard_auth."audit_details"(
	"id" bigint /* Option < i64 > */
) RETURNS jsonb /* Option < JsonB > */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'audit_details_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.audit_details(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.audit_details(bigint) TO fluxbase_dashboard;

-- == Sessions (issue 2): validate_session as an inlinable SQL function ======
-- 1. Copies of the admin's email and role on each session (sql/sessions.sql),
--    backfilled for the sessions that exist, then kept exact by triggers.
ALTER TABLE dashboard_auth.sessions ADD COLUMN user_email text, ADD COLUMN user_role text;
UPDATE dashboard_auth.sessions s
   SET user_email = u.email, user_role = u.role
  FROM dashboard_auth.users u
 WHERE u.id = s.user_id;

CREATE FUNCTION dashboard_auth._session_copy_user() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT u.email, u.role INTO NEW.user_email, NEW.user_role
      FROM dashboard_auth.users u WHERE u.id = NEW.user_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER session_copy_user
    BEFORE INSERT OR UPDATE OF user_id ON dashboard_auth.sessions
    FOR EACH ROW EXECUTE FUNCTION dashboard_auth._session_copy_user();

CREATE FUNCTION dashboard_auth._sessions_follow_user() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM dashboard_auth.sessions WHERE user_id = OLD.id;
    ELSE
        UPDATE dashboard_auth.sessions
           SET user_email = NEW.email, user_role = NEW.role
         WHERE user_id = NEW.id
           AND (user_email, user_role) IS DISTINCT FROM (NEW.email, NEW.role);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_follow_user
    AFTER UPDATE OF email, role OR DELETE ON dashboard_auth.users
    FOR EACH ROW EXECUTE FUNCTION dashboard_auth._sessions_follow_user();
ALTER TABLE dashboard_auth.users ENABLE ALWAYS TRIGGER sessions_follow_user;

-- 2. The new Rust functions (as cargo pgrx generates them for 0.2.0).
CREATE FUNCTION dashboard_auth."_token_digest"("token" TEXT) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'token_digest_wrapper';

CREATE FUNCTION dashboard_auth."_session_live"(
    "id" uuid,
    "last_seen_at" timestamp with time zone,
    "idle_timeout" interval,
    "expires_at" timestamp with time zone,
    "revoked_at" timestamp with time zone
) RETURNS bool
STABLE COST 1000
LANGUAGE c AS 'MODULE_PATHNAME', 'session_live_wrapper';

-- The Rust validate_session of 0.1.0, under its new internal name (same C
-- symbol, which the 0.1.0 install script also names).
CREATE FUNCTION dashboard_auth."_validate_session_native"("token" TEXT)
RETURNS TABLE ("user_id" uuid, "email" TEXT, "role" TEXT, "expires_at" timestamp with time zone)
LANGUAGE c AS 'MODULE_PATHNAME', 'validate_session_wrapper';

-- 3. validate_session becomes the inlinable SQL function (sql/validate_session.sql).
--    CREATE OR REPLACE (language c -> sql; same arguments and result columns)
--    keeps its privileges: EXECUTE for fluxbase_dashboard, none for PUBLIC.
CREATE OR REPLACE FUNCTION dashboard_auth.validate_session(token text)
RETURNS TABLE (user_id uuid, email text, role text, expires_at timestamptz)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT s.user_id, s.user_email, s.user_role, least(s.expires_at, s.last_seen_at + s.idle_timeout)
      FROM dashboard_auth.sessions s
     WHERE s.token_digest = dashboard_auth._token_digest(validate_session.token)
       AND s.scope = 'full'
       AND dashboard_auth._session_live(s.id, s.last_seen_at, s.idle_timeout, s.expires_at, s.revoked_at);
END;
COMMENT ON FUNCTION dashboard_auth.validate_session(text) IS
    'The per-request check of an admin session token: one row (user_id, email, role, expires_at) when it is a live full session';

-- 4. Privileges (the end of sql/grants.sql). Internal functions: nobody; then
--    the two helpers the inlined validate_session calls as its caller.
REVOKE ALL ON FUNCTION dashboard_auth._session_copy_user(), dashboard_auth._sessions_follow_user(),
    dashboard_auth._token_digest(text),
    dashboard_auth._session_live(uuid, timestamptz, interval, timestamptz, timestamptz),
    dashboard_auth._validate_session_native(text)
  FROM PUBLIC;
GRANT SELECT (id, user_id, token_digest, scope, last_seen_at, expires_at, idle_timeout, revoked_at,
              user_email, user_role)
    ON dashboard_auth.sessions TO fluxbase_dashboard;
GRANT EXECUTE ON FUNCTION dashboard_auth._token_digest(text),
    dashboard_auth._session_live(uuid, timestamptz, interval, timestamptz, timestamptz)
  TO fluxbase_dashboard;
