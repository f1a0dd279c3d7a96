-- Settings: typed and validated by dashboard_auth.set_setting(). The keys, their
-- kinds, bounds, defaults and descriptions live in one place, the Rust core
-- (core/src/settings.rs), exposed as dashboard_auth.setting_definitions().
-- This table holds only the values an operator has set, so it starts empty and
-- pg_dump / restore carries exactly those (no clash with install-time rows).
CREATE TABLE dashboard_auth.settings_store (
    key                 text PRIMARY KEY,
    value               jsonb NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text
);

-- Live sessions carry their idle timeout (see sql/sessions.sql); a change of
-- the setting, by the API or by direct SQL, applies to them at once.
CREATE FUNCTION dashboard_auth._sync_session_idle_timeout() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE dashboard_auth.sessions
       SET idle_timeout = (dashboard_auth._setting_value('session.idle_timeout') #>> '{}')::interval
     WHERE revoked_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER sync_session_idle_timeout
    AFTER INSERT OR UPDATE OR DELETE ON dashboard_auth.settings_store
    FOR EACH ROW EXECUTE FUNCTION dashboard_auth._sync_session_idle_timeout();
