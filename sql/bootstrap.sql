-- Roles and schemas. Runs first.
--
-- Roles are cluster-wide, so a second database of the same cluster finds them
-- already there: create each only when missing. They are NOLOGIN group roles;
-- real logins (the web server, the CLI user) are granted membership.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        -- As in Supabase: the service role sees through row level security.
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'fluxbase_dashboard') THEN
        -- Members of this group may call the dashboard_auth / dashboard API.
        CREATE ROLE fluxbase_dashboard NOLOGIN;
    END IF;
    -- The admin's own view of a superuser's table runs as this role, never as
    -- a superuser (src/owner_view.rs, docs/SECURITY.md; issue 30).
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'fluxbase_explorer') THEN
        CREATE ROLE fluxbase_explorer NOLOGIN BYPASSRLS;
    END IF;
END
$roles$;
GRANT pg_read_all_data, pg_write_all_data TO fluxbase_explorer;

-- Created here (not IF NOT EXISTS): a database that already has a schema of
-- one of these names gets a clear error instead of a half-owned schema.
CREATE SCHEMA auth;
CREATE SCHEMA dashboard_auth;
CREATE SCHEMA dashboard;
COMMENT ON SCHEMA auth IS 'App (end) users and the Supabase/PostgREST claim helpers auth.uid(), auth.role(), auth.email(), auth.jwt()';
COMMENT ON SCHEMA dashboard_auth IS 'Admin accounts, sessions, 2FA, invitations, password resets, settings and the audit log';
COMMENT ON SCHEMA dashboard IS 'The operations API of the admin dashboard: app users, impersonation, table explorer, monitoring';
