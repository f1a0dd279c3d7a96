-- Admin password resets: one-time tokens (SHA-256 digest only), valid for an
-- hour. Using one sets the password and revokes every session of the admin.
CREATE TABLE dashboard_auth.password_resets (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES dashboard_auth.users (id) ON DELETE CASCADE,
    token_digest        bytea NOT NULL UNIQUE CHECK (length(token_digest) = 32),
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    -- set when a newer request or a completed reset makes this token void
    revoked_at          timestamptz
);
CREATE INDEX password_resets_open_by_user ON dashboard_auth.password_resets (user_id)
    WHERE used_at IS NULL AND revoked_at IS NULL;
COMMENT ON TABLE dashboard_auth.password_resets IS 'Admin password reset tokens (SHA-256 digests only), one-time, expiring';
