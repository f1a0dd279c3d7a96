-- App (end) users and impersonation sessions.
--
-- auth.users has the columns of Supabase's table that apps and tools read or
-- write, with Supabase's names, types and meaning, so policies, foreign keys,
-- seed scripts, `handle_new_user` triggers, ORM models and test helpers
-- written for Supabase (`references auth.users(id)`, `auth.uid() = user_id`,
-- `INSERT INTO auth.users (id, email, phone, raw_user_meta_data, ...)`) work
-- unchanged. Nobody but the extension owner (and superusers) reads or writes it
-- directly: the dashboard goes through dashboard.list_users() & co., which audit.
--
-- Tokens are never stored raw. Where Supabase keeps a raw token column
-- (confirmation_token, recovery_token, email_change_token_new,
-- email_change_token_current, phone_change_token, reauthentication_token) the
-- column exists, so that code naming it keeps working, but is always empty
-- ('' or NULL, enforced); the extension keeps SHA-256 digests of its own
-- tokens in the *_token_digest columns instead.

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
    -- lower-cased and checked (auth._users_normalize, the API); unique among live users
    email               text CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    encrypted_password  text,
    -- the database role this user acts as (RLS policies `TO authenticated`)
    role                text NOT NULL DEFAULT 'authenticated' CHECK (length(role) BETWEEN 1 AND 63),
    raw_app_meta_data   jsonb NOT NULL DEFAULT '{}'::jsonb,
    raw_user_meta_data  jsonb NOT NULL DEFAULT '{}'::jsonb,
    invited_at          timestamptz,
    -- when the email address was confirmed (Supabase's name; 0.2.0 called
    -- this column confirmed_at, and the 0.3.0 upgrade renamed it in place)
    email_confirmed_at  timestamptz,
    last_sign_in_at     timestamptz,
    banned_until        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    -- one-time tokens (invitation / password recovery), SHA-256 digests only
    confirmation_token_digest bytea CHECK (length(confirmation_token_digest) = 32),
    recovery_token_digest     bytea CHECK (length(recovery_token_digest) = 32),
    recovery_sent_at    timestamptz,
    -- Supabase's columns (issue 23). Appended in this order by the 0.2.0 ->
    -- 0.3.0 upgrade, so a fresh table and an upgraded one list them alike.
    -- Their meaning is Supabase's (GoTrue's).
    instance_id         uuid DEFAULT '00000000-0000-0000-0000-000000000000'::uuid,
    aud                 varchar(255) DEFAULT 'authenticated',
    -- E.164 digits without '+', as GoTrue stores them (auth._users_normalize);
    -- unique among live users
    phone               text CHECK (phone ~ '^[0-9]{5,15}$'),
    phone_confirmed_at  timestamptz,
    confirmation_sent_at timestamptz,
    -- a pending change of address (the new address, not a secret)
    email_change        varchar(255) DEFAULT '',
    email_change_sent_at timestamptz,
    email_change_confirm_status smallint DEFAULT 0 CHECK (email_change_confirm_status BETWEEN 0 AND 2),
    phone_change        text DEFAULT '',
    phone_change_sent_at timestamptz,
    reauthentication_sent_at timestamptz,
    is_super_admin      boolean,
    is_sso_user         boolean NOT NULL DEFAULT false,
    is_anonymous        boolean NOT NULL DEFAULT false,
    -- Supabase's raw token columns: always empty (see the top of this file)
    confirmation_token  varchar(255) DEFAULT '',
    recovery_token      varchar(255) DEFAULT '',
    email_change_token_new varchar(255) DEFAULT '',
    email_change_token_current varchar(255) DEFAULT '',
    phone_change_token  varchar(255) DEFAULT '',
    reauthentication_token varchar(255) DEFAULT '',
    -- as Supabase defines it: the first confirmation, by email or by phone
    -- (replaces 0.2.0's plain column, now email_confirmed_at)
    confirmed_at        timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    CONSTRAINT users_no_raw_tokens CHECK (
        coalesce(confirmation_token, '') = '' AND coalesce(recovery_token, '') = ''
        AND coalesce(email_change_token_new, '') = '' AND coalesce(email_change_token_current, '') = ''
        AND coalesce(phone_change_token, '') = '' AND coalesce(reauthentication_token, '') = '')
);
CREATE UNIQUE INDEX users_email_key ON auth.users (email) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_phone_key ON auth.users (phone) WHERE deleted_at IS NULL;
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
COMMENT ON TABLE auth.users IS 'App (end) users, with the columns of Supabase''s auth.users (raw token columns always empty); manage with dashboard.list_users() & co.';

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
