-- Table explorer (src/explorer.rs): two small helpers written in PL/pgSQL
-- because they need what PL/pgSQL does well: an EXCEPTION block (a
-- subtransaction) and a row trigger.

-- Try each value's cast to its column type; report the first that fails
-- (1-based index and Postgres's message) instead of raising, so the caller
-- can name the column. Runs as the caller (SECURITY INVOKER): casting into a
-- user type or a domain may run user code, which must never run with more
-- rights than the caller has. Types come in as oids + typmods and are spelled
-- with format_type (which quotes), never as text from anyone.
CREATE FUNCTION dashboard._check_values(vals text[], typs oid[], mods int[], OUT bad int, OUT message text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(vals, 1), 0) LOOP
        CONTINUE WHEN vals[i] IS NULL;
        BEGIN
            EXECUTE format('SELECT $1::%s', format_type(typs[i], mods[i])) USING vals[i];
        EXCEPTION WHEN others THEN
            bad := i;
            message := SQLERRM;
            RETURN;
        END;
    END LOOP;
END
$$;

-- The watch trigger (dashboard.watch_table): announce that a table changed on
-- the channel dashboard_changes as {schema, table, op, seq}. Any role can
-- LISTEN (PostgreSQL cannot restrict it), so the payload carries no primary
-- key and no value: the dashboard re-reads through dashboard.browse with the
-- admin's own rights. seq comes from dashboard._change_seq (increasing, with
-- gaps: not transactional). One notification per statement and table.
-- SECURITY DEFINER (pinned search_path) only to draw from the sequence, which
-- no caller may use.
CREATE SEQUENCE dashboard._change_seq;
CREATE FUNCTION dashboard._notify_change() RETURNS trigger
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
