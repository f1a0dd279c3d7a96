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
    user_agent          text CHECK (length(user_agent) <= 1000),
    -- Copies of the admin's email and role (dashboard_auth.users), so that
    -- validate_session, the per-request hot path, is a single index probe on
    -- token_digest with no join (sql/validate_session.sql). Kept exact by the
    -- triggers below: filled on insert, followed on every change of the
    -- admin's email or role. Nullable only so that a session for an unknown
    -- user_id fails on its foreign key (23503), as before, not on NOT NULL.
    user_email          text,
    user_role           text,
    -- when the admin last re-entered their password or a 2FA code in this
    -- session (dashboard_auth.reauthenticate); step-up actions need it within
    -- the setting session.reauth_window (src/stepup.rs)
    reauthenticated_at  timestamptz
);
CREATE INDEX sessions_live_by_user ON dashboard_auth.sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE dashboard_auth.sessions IS 'Admin sessions (login history); tokens are stored as SHA-256 digests only';

-- The email/role copies. On insert (and on a change of user_id) they are read
-- from the admin's row, whoever inserts the session (the API, a restore, a
-- test). Runs as the inserter: only the extension's owner (the API's SECURITY
-- DEFINER functions) and superusers can write sessions.
CREATE FUNCTION dashboard_auth._session_copy_user() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT u.email, u.role INTO NEW.user_email, NEW.user_role
      FROM dashboard_auth.users u WHERE u.id = NEW.user_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER session_copy_user
    BEFORE INSERT OR UPDATE OF user_id ON dashboard_auth.sessions
    FOR EACH ROW EXECUTE FUNCTION dashboard_auth._session_copy_user();

-- A change of an admin's email or role reaches all their sessions in the same
-- statement (so the next statement's validate_session reports it), and the
-- sessions of a deleted admin go with it. The foreign key's ON DELETE CASCADE
-- does that already; this trigger also does it when triggers are bypassed
-- with session_replication_role = replica (ENABLE ALWAYS below), which would
-- otherwise leave sessions whose copies no join could contradict any more.
-- All sessions of the admin, not just live ones: revoked ones never validate,
-- but the copies must never be wrong. Rare (role/email changes, deletions).
CREATE FUNCTION dashboard_auth._sessions_follow_user() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM dashboard_auth.sessions WHERE user_id = OLD.id;
    ELSE
        UPDATE dashboard_auth.sessions
           SET user_email = NEW.email, user_role = NEW.role
         WHERE user_id = NEW.id
           AND (user_email, user_role) IS DISTINCT FROM (NEW.email, NEW.role);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_follow_user
    AFTER UPDATE OF email, role OR DELETE ON dashboard_auth.users
    FOR EACH ROW EXECUTE FUNCTION dashboard_auth._sessions_follow_user();
ALTER TABLE dashboard_auth.users ENABLE ALWAYS TRIGGER sessions_follow_user;
