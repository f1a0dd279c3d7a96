-- Admin sessions. The bearer token is shown once; only its SHA-256 digest is
-- kept. `validate_session` is one lookup on the token_digest unique index.
CREATE TABLE dashboard_auth.sessions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES dashboard_auth.users (id) ON DELETE CASCADE,
    token_digest        bytea NOT NULL UNIQUE CHECK (length(token_digest) = 32),
    -- 'full': a normal session; 'mfa_pending': password checked, waiting for a
    -- 2FA code; 'mfa_enroll': mfa.required is on and the admin must enroll first.
    scope               text NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'mfa_pending', 'mfa_enroll')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_seen_at        timestamptz NOT NULL DEFAULT now(),
    -- absolute expiry; the idle expiry is last_seen_at + idle_timeout
    expires_at          timestamptz NOT NULL,
    -- a copy of the setting session.idle_timeout, kept on the row so the hot
    -- path (validate_session) needs no settings lookup; a trigger on the
    -- settings (sql/settings.sql) updates live sessions when the setting changes
    idle_timeout        interval NOT NULL,
    revoked_at          timestamptz,
    revoked_reason      text,
    ip                  inet,
    user_agent          text CHECK (length(user_agent) <= 1000)
);
CREATE INDEX sessions_live_by_user ON dashboard_auth.sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE dashboard_auth.sessions IS 'Admin sessions (login history); tokens are stored as SHA-256 digests only';
