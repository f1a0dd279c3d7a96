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
