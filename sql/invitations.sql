-- Admin invitations: an admin invites an email with a role; the invitee sets a
-- password with the one-time token. Only the token's SHA-256 digest is kept.
CREATE TABLE dashboard_auth.invitations (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email               text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    role                text NOT NULL CHECK (role IN ('dashboard_admin', 'dashboard_viewer')),
    token_digest        bytea NOT NULL UNIQUE CHECK (length(token_digest) = 32),
    invited_by          uuid REFERENCES dashboard_auth.users (id) ON DELETE SET NULL,
    -- the inviter as the audit log names them (an admin's email or db:<role>)
    invited_by_label    text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    accepted_at         timestamptz,
    accepted_user_id    uuid REFERENCES dashboard_auth.users (id) ON DELETE SET NULL,
    revoked_at          timestamptz,
    -- 'revoked' by revoke_invitation, or 'superseded' when an expired invitation
    -- is replaced by a new one for the same email
    revoked_reason      text CHECK (revoked_reason IN ('revoked', 'superseded')),
    CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
-- At most one open (not accepted, not revoked) invitation per email, also under
-- concurrent invite_admin calls. Expired open ones are closed as 'superseded'
-- before a new invitation for the email is made.
CREATE UNIQUE INDEX invitations_one_open_per_email ON dashboard_auth.invitations (email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
COMMENT ON TABLE dashboard_auth.invitations IS 'Admin invitations; tokens are stored as SHA-256 digests only';
