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

-- == Passkeys for admins (issue 33) ==
-- Tables as sql/passkeys.sql (owner-only, registered for pg_dump), the
-- functions of src/admin/passkeys.rs, and their grants as sql/grants.sql gives
-- every dashboard_auth function. The settings webauthn.rp_id,
-- webauthn.origins, auth.passwordless and mfa.phishing_resistant_required live
-- in the Rust core (nothing to add here); login, login_mfa and reauthenticate
-- keep their SQL definitions (their bodies are in the library).
CREATE TABLE dashboard_auth.passkeys (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES dashboard_auth.users (id) ON DELETE CASCADE,
    credential_id       bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 1 AND 1023),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    passkey             jsonb NOT NULL,
    sign_count          bigint NOT NULL DEFAULT 0,
    transports          text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_used_at        timestamptz
);
CREATE INDEX passkeys_user_id_idx ON dashboard_auth.passkeys (user_id);
COMMENT ON TABLE dashboard_auth.passkeys IS 'admins'' passkeys (WebAuthn public keys and sign counters)';
CREATE TABLE dashboard_auth.passkey_challenges (
    challenge_digest    bytea PRIMARY KEY CHECK (length(challenge_digest) = 32),
    ceremony            text NOT NULL CHECK (ceremony IN ('register', 'login', 'mfa', 'reauth')),
    user_id             uuid REFERENCES dashboard_auth.users (id) ON DELETE CASCADE,
    session_id          uuid REFERENCES dashboard_auth.sessions (id) ON DELETE CASCADE,
    name                text,
    state               jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);
CREATE INDEX passkey_challenges_expires_at_idx ON dashboard_auth.passkey_challenges (expires_at);
COMMENT ON TABLE dashboard_auth.passkey_challenges IS 'WebAuthn ceremonies in progress (single use, expiring)';
REVOKE ALL ON dashboard_auth.passkeys, dashboard_auth.passkey_challenges FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('dashboard_auth.passkeys', '');
SELECT pg_catalog.pg_extension_config_dump('dashboard_auth.passkey_challenges', '');

CREATE FUNCTION dashboard_auth."passkey_register_begin"("name" TEXT) RETURNS jsonb
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'passkey_register_begin_wrapper';
CREATE FUNCTION dashboard_auth."passkey_register_finish"("credential" jsonb) RETURNS uuid
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'passkey_register_finish_wrapper';
CREATE FUNCTION dashboard_auth."passkey_login_begin"("email" TEXT DEFAULT NULL) RETURNS jsonb
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'passkey_login_begin_wrapper';
CREATE FUNCTION dashboard_auth."passkey_login_finish"(
	"assertion" jsonb,
	"ip" inet DEFAULT NULL,
	"user_agent" TEXT DEFAULT NULL
) RETURNS TABLE ("status" TEXT, "session_token" TEXT, "expires_at" timestamp with time zone)
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'passkey_login_finish_wrapper';
CREATE FUNCTION dashboard_auth."passkey_mfa_begin"("pending_token" TEXT) RETURNS jsonb
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'passkey_mfa_begin_wrapper';
CREATE FUNCTION dashboard_auth."login_mfa_passkey"(
	"pending_token" TEXT,
	"assertion" jsonb
) RETURNS TABLE ("status" TEXT, "session_token" TEXT, "expires_at" timestamp with time zone)
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'login_mfa_passkey_wrapper';
CREATE FUNCTION dashboard_auth."passkey_reauth_begin"() RETURNS jsonb
STRICT SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'passkey_reauth_begin_wrapper';
CREATE FUNCTION dashboard_auth."reauthenticate_passkey"("assertion" jsonb) RETURNS timestamp with time zone
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'reauthenticate_passkey_wrapper';
CREATE FUNCTION dashboard_auth."list_passkeys"("admin_id" uuid DEFAULT NULL) RETURNS TABLE (
	"id" uuid,
	"user_id" uuid,
	"email" TEXT,
	"name" TEXT,
	"transports" TEXT[],
	"sign_count" bigint,
	"created_at" timestamp with time zone,
	"last_used_at" timestamp with time zone
)
STABLE SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'list_passkeys_wrapper';
CREATE FUNCTION dashboard_auth."rename_passkey"("id" uuid, "name" TEXT) RETURNS void
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'rename_passkey_wrapper';
CREATE FUNCTION dashboard_auth."remove_passkey"("id" uuid) RETURNS void
SECURITY DEFINER SET search_path TO pg_catalog, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'remove_passkey_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.passkey_register_begin(text), dashboard_auth.passkey_register_finish(jsonb),
    dashboard_auth.passkey_login_begin(text), dashboard_auth.passkey_login_finish(jsonb, inet, text),
    dashboard_auth.passkey_mfa_begin(text), dashboard_auth.login_mfa_passkey(text, jsonb),
    dashboard_auth.passkey_reauth_begin(), dashboard_auth.reauthenticate_passkey(jsonb),
    dashboard_auth.list_passkeys(uuid), dashboard_auth.rename_passkey(uuid, text),
    dashboard_auth.remove_passkey(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.passkey_register_begin(text), dashboard_auth.passkey_register_finish(jsonb),
    dashboard_auth.passkey_login_begin(text), dashboard_auth.passkey_login_finish(jsonb, inet, text),
    dashboard_auth.passkey_mfa_begin(text), dashboard_auth.login_mfa_passkey(text, jsonb),
    dashboard_auth.passkey_reauth_begin(), dashboard_auth.reauthenticate_passkey(jsonb),
    dashboard_auth.list_passkeys(uuid), dashboard_auth.rename_passkey(uuid, text),
    dashboard_auth.remove_passkey(uuid) TO fluxbase_dashboard;

-- == Why an UPDATE/DELETE as a user changed 0 rows (issue 32, item 2) ==
-- dashboard.explain_zero_rows (src/rls/zero_rows.rs): the rows the admin's own
-- view would have matched, each key explained; grants as sql/grants.sql gives
-- every dashboard function.
CREATE FUNCTION dashboard."explain_zero_rows"(
	"as_user" TEXT,
	"sql" TEXT,
	"params" jsonb DEFAULT '[]',
	"max_keys" INT DEFAULT 3
) RETURNS jsonb
LANGUAGE c
AS 'MODULE_PATHNAME', 'explain_zero_rows_wrapper';
REVOKE EXECUTE ON FUNCTION dashboard.explain_zero_rows(text, text, jsonb, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.explain_zero_rows(text, text, jsonb, integer) TO fluxbase_dashboard;
