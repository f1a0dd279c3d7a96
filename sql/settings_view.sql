-- Every setting with its current value (set or default).
CREATE VIEW dashboard_auth.settings AS
    SELECT d.key,
           coalesce(s.value, d.default_value) AS value,
           d.default_value,
           d.description,
           s.updated_at,
           s.updated_by
    FROM dashboard_auth.setting_definitions() d
    LEFT JOIN dashboard_auth.settings_store s USING (key)
    ORDER BY d.key;
COMMENT ON VIEW dashboard_auth.settings IS 'Current settings; change them with dashboard_auth.set_setting(key, value)';
