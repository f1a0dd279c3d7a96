-- fluxbase_admin 0.2.0 -> 0.3.0 (ALTER EXTENSION fluxbase_admin UPDATE)
--
-- Every change to the extension's objects between the archived 0.2.0 install
-- script (sql/versions/fluxbase_admin--0.2.0.sql) and what `CREATE EXTENSION
-- fluxbase_admin` installs at 0.3.0 belongs here (see docs/RELEASING.md and the
-- header of fluxbase_admin--0.1.0--0.2.0.sql). One section per topic, headed
-- `-- == <topic> (issue N) ==`. tests/test_upgrade.py compares an updated
-- database with a fresh one, object by object, and fails on any difference.
--
-- Runs inside the extension script machinery: no BEGIN/COMMIT, schema-qualify
-- everything. Once 0.3.0 is released this file is never edited again.

-- == Confinement (issue 17) ==
-- Change notifications carry no keys or values: {schema, table, op, seq}, one
-- per statement (sql/explorer.sql). The Rust side (src/confine.rs, explorer,
-- impersonation) changes no SQL signature.
CREATE SEQUENCE dashboard._change_seq;
SELECT pg_catalog.pg_extension_config_dump('dashboard._change_seq', '');
CREATE OR REPLACE FUNCTION dashboard._notify_change() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('dashboard_changes', pg_catalog.jsonb_build_object(
        'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', TG_OP,
        'seq', pg_catalog.nextval('dashboard._change_seq'))::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dashboard._notify_change() FROM PUBLIC;
-- Watch triggers made by 0.2.0 are row triggers passing the key's column
-- names: make them statement triggers without arguments, as watch_table now does.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT t.tgrelid::pg_catalog.regclass AS tbl FROM pg_catalog.pg_trigger t
             WHERE t.tgname = 'fluxbase_watch' AND t.tgfoid = 'dashboard._notify_change()'::pg_catalog.regprocedure
    LOOP
        EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER fluxbase_watch AFTER INSERT OR UPDATE OR DELETE ON %s '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION dashboard._notify_change()', r.tbl);
    END LOOP;
END
$$;
