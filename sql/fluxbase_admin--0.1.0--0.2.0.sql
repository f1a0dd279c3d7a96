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
DO $lz4$
BEGIN
    ALTER TABLE dashboard_auth.audit_log ALTER COLUMN row_data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$lz4$;
COMMENT ON TABLE dashboard_auth.audit_chain_head IS 'Last id and hash of the audit chain; written only by the commit-time append';

CREATE FUNCTION dashboard_auth."audit_details"(
	"id" bigint /* Option < i64 > */
) RETURNS jsonb /* Option < JsonB > */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'audit_details_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.audit_details(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.audit_details(bigint) TO fluxbase_dashboard;
