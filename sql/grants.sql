-- Privileges. Runs last, after every table and function exists.
--
-- The model: the API functions are the only way in. They are SECURITY DEFINER
-- (with a pinned search_path) where they must touch tables the caller cannot,
-- and EXECUTE on them is revoked from PUBLIC and granted to the group role
-- fluxbase_dashboard. anon / authenticated (app users, and admins while they
-- impersonate) can reach nothing in dashboard_auth or dashboard.

REVOKE ALL ON SCHEMA dashboard_auth, dashboard FROM PUBLIC;
GRANT USAGE ON SCHEMA dashboard_auth, dashboard TO fluxbase_dashboard;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, fluxbase_dashboard;

REVOKE ALL ON ALL TABLES IN SCHEMA dashboard_auth FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA dashboard FROM PUBLIC;
-- What the seed's "query the audit logs" section shows an operator selecting.
-- No secret is in these: credentials (hashes, 2FA secrets) stay owner-only,
-- and sessions hold token digests, never tokens.
GRANT SELECT ON dashboard_auth.users, dashboard_auth.sessions, dashboard_auth.settings,
                dashboard_auth.audit_log TO fluxbase_dashboard;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA dashboard_auth FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA dashboard FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA dashboard_auth TO fluxbase_dashboard;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA dashboard TO fluxbase_dashboard;

-- Internal functions (named with a leading underscore: trigger functions,
-- install helpers) are for the extension itself, not for any caller.
DO $internal$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace IN ('dashboard_auth'::regnamespace, 'dashboard'::regnamespace, 'auth'::regnamespace)
          AND p.proname LIKE '\_%'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, fluxbase_dashboard', f);
    END LOOP;
END
$internal$;

-- Table explorer (src/explorer.rs). Its functions are SECURITY INVOKER and must
-- keep working after dashboard.apply_impersonation switched the role to the
-- app user's (anon / authenticated / service_role), where RLS decides what is
-- seen. So those roles get USAGE on the schema and EXECUTE on just these
-- functions; the functions themselves refuse (42501) unless session_user (the
-- login, which SET ROLE does not change) is a member of fluxbase_dashboard,
-- so an app user's own connection still reaches nothing.
GRANT USAGE ON SCHEMA dashboard TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION
    dashboard.list_tables(text),
    dashboard.table_overview(text),
    dashboard.describe_table(regclass),
    dashboard.table_indexes(regclass),
    dashboard.table_policies(regclass),
    dashboard.column_choices(regclass),
    dashboard.browse(regclass, jsonb, jsonb, text, integer, jsonb),
    dashboard.export_rows(regclass, jsonb, jsonb, text, text, jsonb, integer),
    dashboard.count_rows(regclass, jsonb, text),
    dashboard.update_row(regclass, jsonb, jsonb),
    dashboard.update_rows(regclass, jsonb, jsonb),
    dashboard.insert_rows(regclass, jsonb),
    dashboard.delete_rows(regclass, jsonb),
    dashboard.watch_table(regclass),
    dashboard.unwatch_table(regclass)
  TO anon, authenticated, service_role;
-- The value checker runs as the caller (see sql/explorer.sql), so the callers
-- of the explorer need it; it only tries casts.
GRANT EXECUTE ON FUNCTION dashboard._check_values(text[], oid[], integer[])
  TO fluxbase_dashboard, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- App users and impersonation (sql/app_users.sql, src/impersonation.rs)
--
-- SET ROLE checks that the *login* role is a member of the target. The
-- dashboard's logins get that through fluxbase_dashboard -> fluxbase_impersonator
-- (NOINHERIT) -> anon / authenticated / service_role: they may become those
-- roles, but never inherit their table privileges while acting as themselves.
GRANT anon, authenticated, service_role TO fluxbase_impersonator;
GRANT fluxbase_impersonator TO fluxbase_dashboard;
-- auth.users and the impersonation record: only through the API.
REVOKE ALL ON auth.users, auth.impersonation_sessions FROM PUBLIC;
-- The claim helpers are for every policy and every role, as in Supabase.
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.email(), auth.jwt() TO PUBLIC;

-- Invitations (issue 3): the dashboard may list them directly, but never the
-- token digests. backup_codes and password_resets get no grants at all.
GRANT SELECT (id, email, role, invited_by, invited_by_label, created_at, expires_at,
              accepted_at, accepted_user_id, revoked_at, revoked_reason)
    ON dashboard_auth.invitations TO fluxbase_dashboard;

-- pg_dump carries the extension's tables (their rows, not their definitions):
-- a dump restores with admins, sessions, settings and the audit trail intact.
DO $dump$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
        WHERE d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'fluxbase_admin')
          AND c.relkind IN ('r', 'S')
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
END
$dump$;

-- ---------------------------------------------------------------------------
-- validate_session (sql/validate_session.sql) is an inlined SQL function: its
-- query runs as its caller, a fluxbase_dashboard member. So the members need
-- SELECT on the columns it reads (already covered by the table-level grant
-- above; granted here by column too, so that narrowing that grant cannot
-- silently break the hot path) and EXECUTE on its two internal helpers, which
-- the loop above revoked. Why this reveals nothing new: docs/SECURITY.md.
GRANT SELECT (id, user_id, token_digest, scope, last_seen_at, expires_at, idle_timeout, revoked_at,
              user_email, user_role)
    ON dashboard_auth.sessions TO fluxbase_dashboard;
GRANT EXECUTE ON FUNCTION dashboard_auth._token_digest(text),
    dashboard_auth._session_live(uuid, timestamptz, interval, timestamptz, timestamptz)
  TO fluxbase_dashboard;
