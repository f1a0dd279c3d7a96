-- Settings: typed and validated by dashboard_auth.set_setting(); the rows are
-- written at install from the one list of keys in the Rust core (settings.rs).
CREATE TABLE dashboard_auth.settings_store (
    key                 text PRIMARY KEY,
    value               jsonb NOT NULL,
    default_value       jsonb NOT NULL,
    description         text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text
);

CREATE VIEW dashboard_auth.settings AS
    SELECT key, value, default_value, description, updated_at, updated_by
    FROM dashboard_auth.settings_store
    ORDER BY key;
COMMENT ON VIEW dashboard_auth.settings IS 'Current settings; change them with dashboard_auth.set_setting(key, value)';

-- Live sessions carry their idle timeout (see sql/sessions.sql); a change of
-- the setting, by the API or by direct SQL, applies to them at once.
CREATE FUNCTION dashboard_auth._sync_session_idle_timeout() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE dashboard_auth.sessions
       SET idle_timeout = (NEW.value #>> '{}')::interval
     WHERE revoked_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER sync_session_idle_timeout
    AFTER INSERT OR UPDATE OF value ON dashboard_auth.settings_store
    FOR EACH ROW WHEN (NEW.key = 'session.idle_timeout')
    EXECUTE FUNCTION dashboard_auth._sync_session_idle_timeout();
