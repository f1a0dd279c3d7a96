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

-- == Confinement (issue 17) ==
-- Change notifications carry no keys or values: {schema, table, op, seq}, one
-- per statement (sql/explorer.sql). The Rust side (src/confine.rs, explorer,
-- impersonation) changes no SQL signature.
CREATE SEQUENCE dashboard._change_seq;
SELECT pg_catalog.pg_extension_config_dump('dashboard._change_seq', '');
CREATE OR REPLACE FUNCTION dashboard._notify_change() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('dashboard_changes', pg_catalog.jsonb_build_object(
        'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', TG_OP,
        'seq', pg_catalog.nextval('dashboard._change_seq'))::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard._notify_change() FROM PUBLIC;
-- Watch triggers made by 0.2.0 are row triggers passing the key's column
-- names: make them statement triggers without arguments, as watch_table now does.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT t.tgrelid::pg_catalog.regclass AS tbl FROM pg_catalog.pg_trigger t
             WHERE t.tgname = 'fluxbase_watch' AND t.tgfoid = 'dashboard._notify_change()'::pg_catalog.regprocedure
    LOOP
        EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER fluxbase_watch AFTER INSERT OR UPDATE OR DELETE ON %s '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION dashboard._notify_change()', r.tbl);
    END LOOP;
END
$$;
-- == Audit hardening (issue 17) ==
-- Item 9: enable_audit(tbl, redact) (a new symbol; 0.2.0's enable_audit_wrapper
-- stays in the library for databases not yet updated).
DROP FUNCTION dashboard.enable_audit(regclass);
CREATE  FUNCTION dashboard."enable_audit"(
	"tbl" regclass, /* Option < PgRelation > */
	"redact" TEXT[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < String > > > */
) RETURNS bool /* bool */

SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'enable_audit_redacting_wrapper';
REVOKE ALL ON FUNCTION dashboard.enable_audit(regclass, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.enable_audit(regclass, text[]) TO fluxbase_dashboard;

-- Item 5: TRUNCATE is recorded: tables audited before 0.3.0 get the
-- BEFORE TRUNCATE trigger too (0.2.0's enable_audit gave no trigger arguments).
DO $truncate$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT tr.tgrelid::regclass FROM pg_catalog.pg_trigger tr
          JOIN pg_catalog.pg_class c ON c.oid = tr.tgrelid
         WHERE tr.tgname = 'fluxbase_audit_ins'
           AND c.relnamespace <> 'dashboard_auth'::regnamespace
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger x WHERE x.tgrelid = tr.tgrelid AND x.tgname = 'fluxbase_audit_trn')
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER fluxbase_audit_trn BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_row_change()', t);
    END LOOP;
END
$truncate$;

-- Item 5: the DDL watch (disabled, replaced, dropped audit triggers; new partitions).
CREATE  FUNCTION dashboard_auth."_audit_ddl"(
	"event" TEXT /* & str */
) RETURNS void
STRICT 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_audit_ddl_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth._audit_ddl(text) FROM PUBLIC, fluxbase_dashboard;
CREATE FUNCTION dashboard_auth._audit_ddl_watch() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $watch$
BEGIN
    PERFORM dashboard_auth._audit_ddl(TG_EVENT);
END
$watch$;
REVOKE ALL ON FUNCTION dashboard_auth._audit_ddl_watch() FROM PUBLIC, fluxbase_dashboard;
CREATE EVENT TRIGGER fluxbase_audit_ddl ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER')
    EXECUTE FUNCTION dashboard_auth._audit_ddl_watch();
CREATE EVENT TRIGGER fluxbase_audit_drop ON sql_drop
    WHEN TAG IN ('DROP TRIGGER')
    EXECUTE FUNCTION dashboard_auth._audit_ddl_watch();

-- Item 11: verify_audit_chain(expect_id, expect_hash) (a new symbol; 0.2.0's
-- verify_audit_chain_wrapper stays) and audit_witness().
DROP FUNCTION dashboard_auth.verify_audit_chain();
CREATE  FUNCTION dashboard_auth."verify_audit_chain"(
	"expect_id" bigint DEFAULT NULL, /* Option < i64 > */
	"expect_hash" bytea DEFAULT NULL /* :: std :: option :: Option < Vec < u8 > > */
) RETURNS TABLE (
	"ok" bool,  /* bool */
	"first_bad_id" bigint  /* Option < i64 > */
)
SECURITY DEFINER  
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'verify_audit_chain_witnessed_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.verify_audit_chain(bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.verify_audit_chain(bigint, bytea) TO fluxbase_dashboard;
CREATE  FUNCTION dashboard_auth."audit_witness"() RETURNS TABLE (
	"id" bigint,  /* i64 */
	"hash" bytea  /* Vec < u8 > */
)
STRICT SECURITY DEFINER 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'audit_witness_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.audit_witness() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.audit_witness() TO fluxbase_dashboard;

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

-- == Analytics (issue 20) ==
-- What the dashboard's Analytics page needs beyond dashboard.connection_stats /
-- query_stats / storage_usage (src/analytics.rs): connections by application
-- and role, the cache hit ratio, top statements by total time, mean time or
-- calls, whether pg_stat_statements is available, the largest indexes.
-- SECURITY INVOKER, like the other monitoring functions.
CREATE FUNCTION dashboard."connection_breakdown"() RETURNS TABLE (
	"database" TEXT,  /* Option < String > */
	"state" TEXT,  /* String */
	"application_name" TEXT,  /* String */
	"role" TEXT,  /* Option < String > */
	"connections" bigint,  /* i64 */
	"waiting" bigint,  /* i64 */
	"longest_running_seconds" double precision,  /* Option < f64 > */
	"max_connections" INT  /* i32 */
)
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'connection_breakdown_wrapper';
REVOKE ALL ON FUNCTION dashboard.connection_breakdown() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.connection_breakdown() TO fluxbase_dashboard;

CREATE FUNCTION dashboard."cache_hit_ratio"() RETURNS TABLE (
	"scope" TEXT,  /* String */
	"hits" bigint,  /* i64 */
	"reads" bigint,  /* i64 */
	"ratio" double precision  /* Option < f64 > */
)
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cache_hit_ratio_wrapper';
REVOKE ALL ON FUNCTION dashboard.cache_hit_ratio() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.cache_hit_ratio() TO fluxbase_dashboard;

CREATE FUNCTION dashboard."query_stats_available"() RETURNS TABLE (
	"available" bool,  /* bool */
	"hint" TEXT  /* Option < String > */
)
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'query_stats_available_wrapper';
REVOKE ALL ON FUNCTION dashboard.query_stats_available() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.query_stats_available() TO fluxbase_dashboard;

CREATE FUNCTION dashboard."top_queries"(
	"order_by" TEXT DEFAULT 'total_time', /* Option < & str > */
	"limit" INT DEFAULT 20 /* Option < i32 > */
) RETURNS TABLE (
	"queryid" bigint,  /* Option < i64 > */
	"query" TEXT,  /* Option < String > */
	"username" TEXT,  /* Option < String > */
	"calls" bigint,  /* i64 */
	"total_exec_ms" double precision,  /* f64 */
	"mean_exec_ms" double precision,  /* f64 */
	"rows" bigint,  /* i64 */
	"shared_blks_hit" bigint,  /* i64 */
	"shared_blks_read" bigint,  /* i64 */
	"cache_hit_ratio" double precision  /* Option < f64 > */
)
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'top_queries_wrapper';
REVOKE ALL ON FUNCTION dashboard.top_queries(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.top_queries(text, integer) TO fluxbase_dashboard;

CREATE FUNCTION dashboard."largest_indexes"(
	"limit" INT DEFAULT 20 /* Option < i32 > */
) RETURNS TABLE (
	"schema_name" TEXT,  /* String */
	"table_name" TEXT,  /* String */
	"index_name" TEXT,  /* String */
	"bytes" bigint,  /* i64 */
	"scans" bigint,  /* Option < i64 > */
	"is_unique" bool,  /* bool */
	"is_primary" bool  /* bool */
)
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'largest_indexes_wrapper';
REVOKE ALL ON FUNCTION dashboard.largest_indexes(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.largest_indexes(integer) TO fluxbase_dashboard;

-- == Supabase-compatible auth.users (issue 23) ==
-- auth.users gains Supabase's columns (sql/app_users.sql says which and why).
-- 0.2.0's plain confirmed_at held the time the email address was confirmed:
-- it becomes email_confirmed_at (renamed in place: the data stays, no row is
-- rewritten by an UPDATE, no trigger fires, and whatever of a user's refers
-- to it follows), and confirmed_at is added as Supabase defines it.
ALTER TABLE auth.users RENAME COLUMN confirmed_at TO email_confirmed_at;
ALTER TABLE auth.users
    ADD COLUMN instance_id         uuid DEFAULT '00000000-0000-0000-0000-000000000000'::uuid,
    ADD COLUMN aud                 varchar(255) DEFAULT 'authenticated',
    ADD COLUMN phone               text CHECK (phone ~ '^[0-9]{5,15}$'),
    ADD COLUMN phone_confirmed_at  timestamptz,
    ADD COLUMN confirmation_sent_at timestamptz,
    ADD COLUMN email_change        varchar(255) DEFAULT '',
    ADD COLUMN email_change_sent_at timestamptz,
    ADD COLUMN email_change_confirm_status smallint DEFAULT 0 CHECK (email_change_confirm_status BETWEEN 0 AND 2),
    ADD COLUMN phone_change        text DEFAULT '',
    ADD COLUMN phone_change_sent_at timestamptz,
    ADD COLUMN reauthentication_sent_at timestamptz,
    ADD COLUMN is_super_admin      boolean,
    ADD COLUMN is_sso_user         boolean NOT NULL DEFAULT false,
    ADD COLUMN is_anonymous        boolean NOT NULL DEFAULT false,
    ADD COLUMN confirmation_token  varchar(255) DEFAULT '',
    ADD COLUMN recovery_token      varchar(255) DEFAULT '',
    ADD COLUMN email_change_token_new varchar(255) DEFAULT '',
    ADD COLUMN email_change_token_current varchar(255) DEFAULT '',
    ADD COLUMN phone_change_token  varchar(255) DEFAULT '',
    ADD COLUMN reauthentication_token varchar(255) DEFAULT '',
    ADD COLUMN confirmed_at        timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    ADD CONSTRAINT users_no_raw_tokens CHECK (
        coalesce(confirmation_token, '') = '' AND coalesce(recovery_token, '') = ''
        AND coalesce(email_change_token_new, '') = '' AND coalesce(email_change_token_current, '') = ''
        AND coalesce(phone_change_token, '') = '' AND coalesce(reauthentication_token, '') = '');
CREATE UNIQUE INDEX users_phone_key ON auth.users (phone) WHERE deleted_at IS NULL;
COMMENT ON TABLE auth.users IS 'App (end) users, with the columns of Supabase''s auth.users (raw token columns always empty); manage with dashboard.list_users() & co.';

-- A plain INSERT or UPDATE is stored as the API stores it (src/app_users.rs).
CREATE FUNCTION auth."_users_normalize"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', '_users_normalize_wrapper';
REVOKE ALL ON FUNCTION auth._users_normalize() FROM PUBLIC;
CREATE TRIGGER fluxbase_normalize BEFORE INSERT OR UPDATE OF email, phone, confirmation_token, recovery_token,
    email_change_token_new, email_change_token_current, phone_change_token, reauthentication_token
    ON auth.users FOR EACH ROW EXECUTE FUNCTION auth._users_normalize();

-- list_users and get_user return the phone and the confirmation state: new
-- result columns, so new Rust symbols (list_users_v3, get_user_v3); the 0.2.0
-- symbols stay in the library (docs/RELEASING.md).
DROP FUNCTION dashboard.list_users(text, integer, uuid);
DROP FUNCTION dashboard.get_user(uuid);
CREATE  FUNCTION dashboard."list_users"(
	"search" TEXT DEFAULT NULL, /* Option < & str > */
	"page_size" INT DEFAULT 50, /* Option < i32 > */
	"after" uuid DEFAULT NULL /* Option < Uuid > */
) RETURNS TABLE (
	"id" uuid,  /* Uuid */
	"email" TEXT,  /* Option < String > */
	"phone" TEXT,  /* Option < String > */
	"role" TEXT,  /* String */
	"created_at" timestamp with time zone,  /* TimestampWithTimeZone */
	"last_sign_in_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"email_confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"phone_confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"confirmation_sent_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"invited_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"banned_until" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"is_anonymous" bool,  /* bool */
	"app_metadata" jsonb,  /* JsonB */
	"user_metadata" jsonb  /* JsonB */
)
STABLE SECURITY DEFINER  
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'list_users_v3_wrapper';
CREATE  FUNCTION dashboard."get_user"(
	"id" uuid /* Option < Uuid > */
) RETURNS TABLE (
	"id" uuid,  /* Uuid */
	"email" TEXT,  /* Option < String > */
	"phone" TEXT,  /* Option < String > */
	"role" TEXT,  /* String */
	"created_at" timestamp with time zone,  /* TimestampWithTimeZone */
	"last_sign_in_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"email_confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"phone_confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"confirmation_sent_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"invited_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"banned_until" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"is_anonymous" bool,  /* bool */
	"app_metadata" jsonb,  /* JsonB */
	"user_metadata" jsonb  /* JsonB */
)
STABLE SECURITY DEFINER  
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_user_v3_wrapper';
REVOKE EXECUTE ON FUNCTION dashboard.list_users(text, integer, uuid), dashboard.get_user(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.list_users(text, integer, uuid), dashboard.get_user(uuid) TO fluxbase_dashboard;

-- == auth.uid fast path (issue 22) ==
-- auth.uid(), auth.role(), auth.email() become hand-written V1 C functions that
-- return a cached Datum (src/claims.rs). The 0.2.0 symbols (uid_wrapper,
-- role_wrapper, email_wrapper) stay in the library for the archived scripts.
-- CREATE OR REPLACE keeps the functions' owner, grants and dependents (policies).
CREATE OR REPLACE FUNCTION auth."uid"() RETURNS uuid STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'uid_fast';
CREATE OR REPLACE FUNCTION auth."role"() RETURNS text STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'role_fast';
CREATE OR REPLACE FUNCTION auth."email"() RETURNS text STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'email_fast';

-- == users filters and admin lockout (issue 20) ==
-- The Users list's filters, sorts and session counts: a new function,
-- dashboard.search_users (list_users keeps its signature).
CREATE  FUNCTION dashboard."search_users"(
	"search" TEXT DEFAULT NULL, /* Option < & str > */
	"confirmed" bool DEFAULT NULL, /* Option < bool > */
	"role" TEXT DEFAULT NULL, /* Option < & str > */
	"sort" TEXT DEFAULT 'email', /* Option < & str > */
	"descending" bool DEFAULT false, /* Option < bool > */
	"page_size" INT DEFAULT 50, /* Option < i32 > */
	"after" jsonb DEFAULT NULL /* Option < JsonArg > */
) RETURNS TABLE (
	"id" uuid,  /* Uuid */
	"email" TEXT,  /* Option < String > */
	"phone" TEXT,  /* Option < String > */
	"role" TEXT,  /* String */
	"created_at" timestamp with time zone,  /* TimestampWithTimeZone */
	"last_sign_in_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"email_confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"phone_confirmed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"confirmation_sent_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"invited_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"banned_until" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"is_anonymous" bool,  /* bool */
	"app_metadata" jsonb,  /* JsonB */
	"user_metadata" jsonb,  /* JsonB */
	"active_sessions" bigint,  /* Option < i64 > */
	"active_impersonations" bigint,  /* i64 */
	"cursor" jsonb  /* JsonB */
)
STABLE SECURITY DEFINER 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_users_wrapper';
REVOKE ALL ON FUNCTION dashboard.search_users(text, boolean, text, text, boolean, integer, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.search_users(text, boolean, text, text, boolean, integer, jsonb) TO fluxbase_dashboard;

-- list_admins and get_admin show the login lockout (locked_until,
-- failed_attempts appended: SPEC's columns stay a prefix): new result columns,
-- so new Rust symbols (list_admins_v3, get_admin_v3); the 0.2.0 symbols stay in
-- the library (docs/RELEASING.md).
DROP FUNCTION dashboard_auth.list_admins();
DROP FUNCTION dashboard_auth.get_admin(uuid);
CREATE  FUNCTION dashboard_auth."list_admins"() RETURNS TABLE (
	"id" uuid,  /* Uuid */
	"email" TEXT,  /* String */
	"full_name" TEXT,  /* String */
	"role" TEXT,  /* String */
	"totp_enabled" bool,  /* bool */
	"last_login_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"created_at" timestamp with time zone,  /* TimestampWithTimeZone */
	"active_sessions" bigint,  /* i64 */
	"locked_until" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"failed_attempts" INT  /* i32 */
)
STRICT STABLE SECURITY DEFINER  
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'list_admins_v3_wrapper';
CREATE  FUNCTION dashboard_auth."get_admin"(
	"id" uuid /* Option < Uuid > */
) RETURNS TABLE (
	"id" uuid,  /* Uuid */
	"email" TEXT,  /* String */
	"full_name" TEXT,  /* String */
	"role" TEXT,  /* String */
	"totp_enabled" bool,  /* bool */
	"last_login_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"created_at" timestamp with time zone,  /* TimestampWithTimeZone */
	"active_sessions" bigint,  /* i64 */
	"locked_until" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"failed_attempts" INT  /* i32 */
)
STABLE SECURITY DEFINER  
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_admin_v3_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.list_admins(), dashboard_auth.get_admin(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.list_admins(), dashboard_auth.get_admin(uuid) TO fluxbase_dashboard;

-- An owner (dashboard_admin) lifts an admin's lockout; a step-up action.
CREATE  FUNCTION dashboard_auth."unlock_admin"(
	"id" uuid /* Option < Uuid > */
) RETURNS bool /* bool */
SECURITY DEFINER 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'unlock_admin_wrapper';
REVOKE ALL ON FUNCTION dashboard_auth.unlock_admin(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_auth.unlock_admin(uuid) TO fluxbase_dashboard;

-- == tables enum editor (issue 19) ==
-- dashboard.column_choices(regclass): the labels of a table's enum columns
-- (and domains over enums), in order, for the dashboard's enum select editor
-- (src/explorer.rs). A reader of the explorer like table_policies: SECURITY
-- INVOKER, callable while an impersonation is applied (sql/grants.sql).
CREATE FUNCTION dashboard."column_choices"(
	"tbl" regclass /* Option < PgRelation > */
) RETURNS TABLE (
	"column_name" TEXT,  /* String */
	"labels" TEXT[]  /* Vec < String > */
)
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'column_choices_wrapper';
REVOKE ALL ON FUNCTION dashboard.column_choices(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.column_choices(regclass) TO fluxbase_dashboard, anon, authenticated, service_role;

-- == tables export and count (issue 19) ==
-- dashboard.export_rows: the view's rows (browse's filters, sort, search and
-- keyset cursor) in chunks, CSV byte for byte as COPY ... TO STDOUT CSV writes
-- it, or JSON; dashboard.count_rows: the view's exact row count (the web runs
-- it under a statement timeout). SECURITY INVOKER like the other explorer
-- functions (src/explorer/export.rs), so RLS and impersonation apply; granted
-- as they are (sql/grants.sql).
CREATE FUNCTION dashboard."export_rows"(
	"tbl" regclass, /* Option < PgRelation > */
	"filters" jsonb DEFAULT '[]', /* Option < JsonArg > */
	"sort" jsonb DEFAULT '[]', /* Option < JsonArg > */
	"search" TEXT DEFAULT NULL, /* Option < & str > */
	"format" TEXT DEFAULT 'csv', /* Option < & str > */
	"after" jsonb DEFAULT NULL, /* Option < JsonArg > */
	"max_rows" INT DEFAULT 10000 /* Option < i32 > */
) RETURNS TABLE (
	"data" TEXT,  /* String */
	"row_count" INT,  /* i32 */
	"next_cursor" jsonb  /* Option < JsonB > */
)
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'export_rows_wrapper';
CREATE FUNCTION dashboard."count_rows"(
	"tbl" regclass, /* Option < PgRelation > */
	"filters" jsonb DEFAULT '[]', /* Option < JsonArg > */
	"search" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS bigint /* i64 */
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'count_rows_wrapper';
REVOKE ALL ON FUNCTION dashboard.export_rows(regclass, jsonb, jsonb, text, text, jsonb, integer),
    dashboard.count_rows(regclass, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.export_rows(regclass, jsonb, jsonb, text, text, jsonb, integer),
    dashboard.count_rows(regclass, jsonb, text) TO fluxbase_dashboard, anon, authenticated, service_role;
