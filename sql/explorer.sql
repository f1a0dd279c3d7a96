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

-- The watch trigger (dashboard.watch_table): announce a row change on the
-- channel dashboard_changes as {schema, table, op, pk}. The trigger's
-- arguments are the primary key column names; only their values are sent,
-- never the whole row (NOTIFY payloads are limited to 8000 bytes; a key too
-- big for that is sent as null with "pk_truncated": true rather than making
-- the user's statement fail).
CREATE FUNCTION dashboard._notify_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
    pk jsonb := '{}';
    payload text;
BEGIN
    IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
    IF TG_NARGS = 0 THEN
        pk := NULL;  -- a table without a primary key: only the fact of a change
    ELSE
        FOR i IN 0 .. TG_NARGS - 1 LOOP
            pk := pk || jsonb_build_object(TG_ARGV[i], r -> TG_ARGV[i]);
        END LOOP;
    END IF;
    payload := jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', TG_OP, 'pk', pk)::text;
    IF octet_length(payload) > 7900 THEN
        payload := jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', TG_OP,
                                      'pk', NULL, 'pk_truncated', true)::text;
    END IF;
    PERFORM pg_notify('dashboard_changes', payload);
    RETURN NULL;
END
$$;
