-- fluxbase_admin 0.3.0 -> 0.4.0 (ALTER EXTENSION fluxbase_admin UPDATE)
--
-- Every change to the extension's objects between the archived 0.3.0 install
-- script (sql/versions/fluxbase_admin--0.3.0.sql) and what `CREATE EXTENSION
-- fluxbase_admin` installs at 0.4.0 belongs here (see docs/RELEASING.md). One
-- section per topic, headed `-- == <topic> (issue N) ==`. tests/test_upgrade.py
-- compares an updated database with a fresh one, object by object, and fails on
-- any difference.
--
-- Runs inside the extension script machinery: no BEGIN/COMMIT, schema-qualify
-- everything. Once 0.4.0 is released this file is never edited again.

-- == Audit of DDL that bypasses the row triggers (issue 28) ==
-- An audited table dropped (DROP TABLE / SCHEMA ... CASCADE / OWNED) is
-- recorded as audit.bypass, and its rows rewritten by ALTER TABLE as
-- row.rewrite (src/audit_triggers.rs, sql/audit_triggers.sql).
DROP EVENT TRIGGER fluxbase_audit_drop;
CREATE EVENT TRIGGER fluxbase_audit_drop ON sql_drop
    WHEN TAG IN ('DROP TRIGGER', 'DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION dashboard_auth._audit_ddl_watch();
CREATE EVENT TRIGGER fluxbase_audit_rewrite ON table_rewrite
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION dashboard_auth._audit_ddl_watch();

-- == RLS debugging and the security advisor (issue 32) ==
-- dashboard.explain_access (src/rls_debug.rs) and dashboard.advisories()
-- (src/advisor.rs); grants as sql/grants.sql gives every dashboard function.
CREATE FUNCTION dashboard."explain_access"(
	"tbl" regclass,
	"key" jsonb,
	"as_user" TEXT,
	"command" TEXT DEFAULT 'select',
	"new_row" jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE c
AS 'MODULE_PATHNAME', 'explain_access_wrapper';
REVOKE EXECUTE ON FUNCTION dashboard.explain_access(regclass, jsonb, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.explain_access(regclass, jsonb, text, text, jsonb) TO fluxbase_dashboard;

CREATE FUNCTION dashboard."advisories"() RETURNS TABLE (
	"lint" TEXT,
	"level" TEXT,
	"schema_name" TEXT,
	"object_name" TEXT,
	"detail" TEXT,
	"remedy" TEXT
)
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'advisories_wrapper';
REVOKE EXECUTE ON FUNCTION dashboard.advisories() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.advisories() TO fluxbase_dashboard;

-- == The admin's own view of a table (issue 30) ==
-- The role a superuser's table is read and edited as (sql/bootstrap.sql).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'fluxbase_explorer') THEN
        CREATE ROLE fluxbase_explorer NOLOGIN BYPASSRLS;
    END IF;
END
$roles$;
GRANT pg_read_all_data, pg_write_all_data TO fluxbase_explorer;
-- The Tables section's list (src/explorer.rs).
CREATE  FUNCTION dashboard."table_overview"(
	"schema" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"schema" TEXT,  /* String */
	"name" TEXT,  /* String */
	"kind" TEXT,  /* String */
	"row_estimate" bigint,  /* i64 */
	"total_bytes" bigint,  /* i64 */
	"rls" TEXT,  /* String */
	"policies" INT,  /* i32 */
	"owner" TEXT,  /* String */
	"runs_as" TEXT,  /* String */
	"readable" bool,  /* bool */
	"primary_key" TEXT[],  /* Vec < String > */
	"comment" TEXT  /* Option < String > */
)
STABLE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'table_overview_wrapper';
REVOKE ALL ON FUNCTION dashboard.table_overview(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.table_overview(text) TO fluxbase_dashboard, anon, authenticated, service_role;
-- The home page's instance at a glance (src/overview.rs).
CREATE  FUNCTION dashboard."overview"() RETURNS jsonb /* JsonB */
STRICT
STABLE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'overview_wrapper';
REVOKE ALL ON FUNCTION dashboard.overview() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.overview() TO fluxbase_dashboard;
