-- Passkeys (WebAuthn) for admins (issue 33; src/admin/passkeys.rs).
--
-- Both tables are readable by the extension owner only (like credentials):
-- the API functions are the only way in.

-- An admin's registered passkeys. `passkey` is webauthn-rs' serialised
-- credential (credential id, COSE public key, algorithm, sign counter, backup
-- flags); no secret: the private key never leaves the authenticator.
CREATE TABLE dashboard_auth.passkeys (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES dashboard_auth.users (id) ON DELETE CASCADE,
    credential_id       bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 1 AND 1023),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    passkey             jsonb NOT NULL,
    -- the authenticator's signature counter as last accepted: an assertion
    -- whose counter does not move past it (a cloned authenticator) is refused
    sign_count          bigint NOT NULL DEFAULT 0,
    transports          text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_used_at        timestamptz
);
CREATE INDEX passkeys_user_id_idx ON dashboard_auth.passkeys (user_id);
COMMENT ON TABLE dashboard_auth.passkeys IS 'admins'' passkeys (WebAuthn public keys and sign counters)';

-- Ceremonies begun and not yet finished: the serialised webauthn-rs state,
-- found by the SHA-256 of the challenge the browser signs. A row is deleted
-- by the finish that uses it (single use) and is good only until expires_at;
-- `ceremony` and the bound admin / session keep one ceremony's challenge from
-- finishing another.
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
