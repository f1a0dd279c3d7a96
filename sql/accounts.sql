-- Admin accounts. Secrets live apart from the account row, in `credentials`,
-- which no role but the extension's owner can read: `SELECT * FROM
-- dashboard_auth.users` is safe to hand to the dashboard's role.
CREATE TABLE dashboard_auth.users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- stored lower-cased (normalised by the API), so a plain unique index makes
    -- emails case-insensitive and unique
    email               text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    full_name           text NOT NULL DEFAULT '' CHECK (length(full_name) <= 200),
    role                text NOT NULL DEFAULT 'dashboard_viewer'
                        CHECK (role IN ('dashboard_admin', 'dashboard_viewer')),
    totp_enabled        boolean NOT NULL DEFAULT false,
    last_login_at       timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    -- 'setup' for the first-run admin: the partial unique index below makes a
    -- second first-run admin impossible even under REPEATABLE READ races.
    created_via         text NOT NULL DEFAULT 'api' CHECK (created_via IN ('setup', 'api', 'invitation')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON dashboard_auth.users (email);
CREATE UNIQUE INDEX users_one_first_run_admin ON dashboard_auth.users (created_via) WHERE created_via = 'setup';
COMMENT ON TABLE dashboard_auth.users IS 'Admin (dashboard) accounts, separate from app users in auth.users';

CREATE TABLE dashboard_auth.credentials (
    user_id             uuid PRIMARY KEY REFERENCES dashboard_auth.users (id) ON DELETE CASCADE,
    -- argon2id PHC string; never the password
    password_hash       text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE dashboard_auth.credentials IS 'Password hashes and 2FA secrets; readable by the extension owner only';

-- Failed-login bookkeeping, keyed by the SHA-256 of the normalised email, for
-- known and unknown emails alike: lockout must not reveal which emails exist.
CREATE TABLE dashboard_auth.login_throttle (
    email_digest        bytea PRIMARY KEY CHECK (length(email_digest) = 32),
    failed_attempts     integer NOT NULL DEFAULT 0,
    locked_until        timestamptz,
    last_failed_at      timestamptz
);
