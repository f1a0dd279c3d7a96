-- fluxbase_admin 0.2.0 -> 0.3.0 (ALTER EXTENSION fluxbase_admin UPDATE)
--
-- Every change to the extension's objects between the archived 0.2.0 install
-- script (sql/versions/fluxbase_admin--0.2.0.sql) and what `CREATE EXTENSION
-- fluxbase_admin` installs at 0.3.0 belongs here (see docs/RELEASING.md and the
-- header of fluxbase_admin--0.1.0--0.2.0.sql). One section per topic, headed
-- `-- == <topic> (issue N) ==`. tests/test_upgrade.py compares an updated
-- database with a fresh one, object by object, and fails on any difference.
--
-- Runs inside the extension script machinery: no BEGIN/COMMIT, schema-qualify
-- everything. Once 0.3.0 is released this file is never edited again.

-- == Step-up re-authentication (issue 20) ==
-- A session records when its admin last re-entered their password or a 2FA
-- code; dashboard_auth.reauthenticate sets it. The step-up checks inside
-- delete_admin, update_admin_role, dashboard.delete_user,
-- dashboard.update_user_role, revoke_all_sessions, totp_disable, set_setting,
-- purge_audit and disable_audit live in the library (src/stepup.rs): their SQL
-- definitions are unchanged. The new setting session.reauth_window has its
-- default in the library too (settings_store holds only values that were set).
ALTER TABLE dashboard_auth.sessions ADD COLUMN reauthenticated_at timestamptz;

CREATE FUNCTION dashboard_auth."reauthenticate"(
	"secret" TEXT /* core::option::Option<&str> */
) RETURNS timestamp with time zone /* core::option::Option<pgrx::datum::time_stamp_with_timezone::TimestampWithTimeZone> */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'reauthenticate_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.reauthenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.reauthenticate(text) TO fluxbase_dashboard;
