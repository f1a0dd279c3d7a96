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

-- Auditing cannot be switched off silently (issue 17, item 5): after DDL that
-- may touch the audit triggers, dashboard_auth._audit_ddl (src/audit_triggers.rs)
-- records audit triggers found disabled, replaced or dropped (`audit.bypass`)
-- and gives partitions created or attached under an audited table its triggers.
CREATE FUNCTION dashboard_auth._audit_ddl_watch() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $watch$
BEGIN
    PERFORM dashboard_auth._audit_ddl(TG_EVENT);
END
$watch$;
REVOKE ALL ON FUNCTION dashboard_auth._audit_ddl_watch() FROM PUBLIC;
CREATE EVENT TRIGGER fluxbase_audit_ddl ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER')
    EXECUTE FUNCTION dashboard_auth._audit_ddl_watch();
-- (Issue 28: also an audited table dropped with its triggers, and renamed or
-- moved away, which the ALTER TABLE watch above sees.)
CREATE EVENT TRIGGER fluxbase_audit_drop ON sql_drop
    WHEN TAG IN ('DROP TRIGGER', 'DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION dashboard_auth._audit_ddl_watch();
-- An audited table's rows rewritten by DDL (ALTER COLUMN ... TYPE ... USING)
-- are recorded as `row.rewrite` (issue 28).
CREATE EVENT TRIGGER fluxbase_audit_rewrite ON table_rewrite
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION dashboard_auth._audit_ddl_watch();
