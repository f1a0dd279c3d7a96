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
