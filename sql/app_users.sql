-- App (end) users and impersonation sessions.
--
-- auth.users is a Supabase-compatible subset, so policies and foreign keys
-- written for Supabase (`references auth.users(id)`, `auth.uid() = user_id`)
-- work unchanged. Nobody but the extension owner reads or writes it directly:
-- the dashboard goes through dashboard.list_users() & co., which audit.

-- Impersonation switches `role` (SET LOCAL role, from a SECURITY INVOKER
-- function: Postgres refuses it inside SECURITY DEFINER). SET ROLE needs the
-- *login* role to be a member of the target. This NOINHERIT group carries that
-- membership: the dashboard's group role is made a member of it below (in
-- grants.sql), so its logins may become anon / authenticated / service_role,
-- yet — NOINHERIT stops the privilege chain here — never inherit those roles'
-- table grants while acting as themselves.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'fluxbase_impersonator') THEN
        CREATE ROLE fluxbase_impersonator NOLOGIN NOINHERIT;
    END IF;
END
$roles$;

CREATE TABLE auth.users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- stored lower-cased by the API; unique among live users
    email               text CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    encrypted_password  text,
    -- the database role this user acts as (RLS policies `TO authenticated`)
    role                text NOT NULL DEFAULT 'authenticated' CHECK (length(role) BETWEEN 1 AND 63),
    raw_app_meta_data   jsonb NOT NULL DEFAULT '{}'::jsonb,
    raw_user_meta_data  jsonb NOT NULL DEFAULT '{}'::jsonb,
    invited_at          timestamptz,
    confirmed_at        timestamptz,
    last_sign_in_at     timestamptz,
    banned_until        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    -- one-time tokens (invitation / password recovery), SHA-256 digests only
    confirmation_token_digest bytea CHECK (length(confirmation_token_digest) = 32),
    recovery_token_digest     bytea CHECK (length(recovery_token_digest) = 32),
    recovery_sent_at    timestamptz
);
CREATE UNIQUE INDEX users_email_key ON auth.users (email) WHERE deleted_at IS NULL;
-- Search and pagination in list_users(): rows are listed in (lower(email), id)
-- order and a page continues after the (lower(email), id) of the `after` user
-- (keyset pagination: page 1000 costs what page 1 costs). The "C" collation
-- makes the index serve LIKE 'prefix%' as a range scan, and a substring search
-- walks this index in order and stops after one page of matches, so common
-- substrings are fast on 1M users; a rare substring costs one pass over the
-- index. No other extension is needed. Where pg_trgm is installed, an operator
-- may add  CREATE INDEX ON auth.users USING gin (lower(email) gin_trgm_ops)
-- and the same query uses it for rare substrings.
CREATE INDEX users_email_search ON auth.users ((lower(email) COLLATE "C"), id);
COMMENT ON TABLE auth.users IS 'App (end) users, a Supabase-compatible subset; manage with dashboard.list_users() & co.';

CREATE TABLE auth.impersonation_sessions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- the admin (NULL for a database role acting without an admin session)
    admin_user_id       uuid REFERENCES dashboard_auth.users (id) ON DELETE SET NULL,
    -- who, as the audit log names them: an admin's email or db:<session_user>
    actor               text NOT NULL,
    target_user_id      uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    target_role         text NOT NULL,
    impersonation_type  text NOT NULL CHECK (impersonation_type IN ('user', 'anon', 'service_role')),
    -- dashboard_viewer sessions may only read: query_as refuses writes and
    -- apply_impersonation makes the transaction read-only
    read_only           boolean NOT NULL DEFAULT false,
    reason              text NOT NULL CHECK (length(btrim(reason)) > 0 AND length(reason) <= 1000),
    started_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    ip                  inet,
    CHECK (impersonation_type = 'user' OR target_user_id IS NULL)
);
CREATE INDEX impersonation_sessions_live ON auth.impersonation_sessions (actor) WHERE ended_at IS NULL;
COMMENT ON TABLE auth.impersonation_sessions IS 'Who impersonated whom, why, and for how long (dashboard.start_impersonation)';
