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

-- == Audit streaming and retention with proof (issue 35) ==
-- dashboard_auth.audit_entries: the chain in id order with what its hashes
-- cover (`fluxbase audit tail`, `audit archive`); purge_audit_through: purge
-- exactly an archive's prefix; audit_checkpoint: where the live chain
-- continues (`audit verify --archive`). Grants as sql/grants.sql gives every
-- dashboard_auth function.
CREATE  FUNCTION dashboard_auth."audit_entries"(
	"after_id" bigint, /* Option < i64 > */
	"max_rows" INT DEFAULT 1000 /* Option < i32 > */
) RETURNS TABLE (
	"id" bigint,  /* i64 */
	"occurred_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"occurred_at_us" bigint,  /* i64 */
	"actor_id" uuid,  /* Option < Uuid > */
	"actor" TEXT,  /* String */
	"action" TEXT,  /* String */
	"target_type" TEXT,  /* Option < String > */
	"target_id" TEXT,  /* Option < String > */
	"details_text" TEXT,  /* String */
	"ip" TEXT,  /* Option < String > */
	"success" bool,  /* bool */
	"db_user" TEXT,  /* String */
	"txid" bigint,  /* i64 */
	"impersonation_session_id" uuid,  /* Option < Uuid > */
	"row_data" bytea,  /* :: std :: option :: Option < Vec < u8 > > */
	"rows" jsonb,  /* Option < JsonB > */
	"prev_hash" bytea,  /* :: std :: option :: Option < Vec < u8 > > */
	"row_hash" bytea  /* :: std :: option :: Option < Vec < u8 > > */
)
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'audit_entries_wrapper';

CREATE  FUNCTION dashboard_auth."purge_audit_through"(
	"last_id" bigint /* Option < i64 > */
) RETURNS bigint /* i64 */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'purge_audit_through_wrapper';

CREATE  FUNCTION dashboard_auth."audit_checkpoint"() RETURNS TABLE (
	"last_purged_id" bigint,  /* i64 */
	"last_purged_hash" bytea  /* Vec < u8 > */
)
STRICT SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'audit_checkpoint_wrapper';

REVOKE ALL ON FUNCTION dashboard_auth.audit_entries(bigint, integer), dashboard_auth.purge_audit_through(bigint),
    dashboard_auth.audit_checkpoint() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.audit_entries(bigint, integer), dashboard_auth.purge_audit_through(bigint),
    dashboard_auth.audit_checkpoint() TO fluxbase_dashboard;
