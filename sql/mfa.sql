-- Two-factor authentication (TOTP, RFC 6238) and backup codes for admins.
--
-- The TOTP secret must be recoverable (the server recomputes the codes), so it
-- can't be a one-way digest like tokens. It sits in `credentials` (readable by
-- the extension owner only), and even there only sealed: encrypted and
-- authenticated with a key kept outside the database, in the file
-- `fluxbase_admin.key` of the server's data directory (created on first use,
-- mode 0600). A dump or a copy of the tables alone does not reveal a secret;
-- moving the database to another server needs that file copied too (otherwise
-- admins with 2FA log in with a backup code and set 2FA up again).
ALTER TABLE dashboard_auth.credentials
    -- sealed secret; set by totp_setup (pending until totp_enable proves a code)
    ADD COLUMN totp_secret_sealed bytea,
    -- the last accepted TOTP time step (unix time / 30): codes of this step or
    -- earlier are refused, so a code is accepted once
    ADD COLUMN totp_last_step bigint,
    ADD COLUMN totp_setup_at timestamptz,
    ADD COLUMN totp_enabled_at timestamptz;

-- Single-use backup codes, shown once by totp_enable / regenerate_backup_codes.
-- Only a SHA-256 digest (over the owner's id and the normalised code) is kept.
CREATE TABLE dashboard_auth.backup_codes (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES dashboard_auth.users (id) ON DELETE CASCADE,
    code_digest         bytea NOT NULL CHECK (length(code_digest) = 32),
    created_at          timestamptz NOT NULL DEFAULT now(),
    used_at             timestamptz,
    UNIQUE (user_id, code_digest)
);
COMMENT ON TABLE dashboard_auth.backup_codes IS '2FA backup codes (SHA-256 digests only); each works once';
