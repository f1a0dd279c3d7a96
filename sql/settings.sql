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
