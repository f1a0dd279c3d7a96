-- The audit triggers (Rust functions in src/audit_triggers.rs).

-- audit_log: chained on every insert, whatever route it takes. "zz_" so it is
-- the last BEFORE INSERT trigger: it hashes the row as stored.
CREATE TRIGGER zz_audit_chain BEFORE INSERT ON dashboard_auth.audit_log
    FOR EACH ROW EXECUTE FUNCTION dashboard_auth._audit_chain();
-- Append-only, also for the owner and superusers (they must disable this
-- trigger first, which verify_audit_chain() will then give away).
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON dashboard_auth.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON dashboard_auth.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_guard();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON dashboard_auth.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_guard();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON dashboard_auth.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_guard();

-- Direct SQL on the extension's own tables is on record (the API's own
-- changes are audited by the API and skipped by the trigger). Secret columns
-- (password hashes, token digests, 2FA secrets) are redacted by name.
DO $audit$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['dashboard_auth.users', 'dashboard_auth.credentials',
                             'dashboard_auth.sessions', 'dashboard_auth.settings_store']
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER fluxbase_audit_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS fb_new FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_row_change()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER fluxbase_audit_upd AFTER UPDATE ON %s REFERENCING OLD TABLE AS fb_old NEW TABLE AS fb_new FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_row_change()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER fluxbase_audit_del AFTER DELETE ON %s REFERENCING OLD TABLE AS fb_old FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_row_change()', t);
    END LOOP;
END
$audit$;
