-- Issue 2, validate_session benchmark: the schema changes from 0.1.0, as the
-- statements ALTER EXTENSION fluxbase_admin UPDATE TO '0.2.0' must run.
-- NOT wired into anything: to be merged into sql/fluxbase_admin--0.1.0--0.2.0.sql.
-- (Inside an update script, new objects join the extension by themselves.)
-- Fresh installs get the same from sql/sessions.sql, sql/validate_session.sql,
-- the #[pg_extern]s in src/sessions.rs and the end of sql/grants.sql.

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
