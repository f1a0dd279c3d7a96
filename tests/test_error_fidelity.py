"""Loading the library changes no other statement's errors (issue 29 items 1-3).

A corpus of application errors — RAISE with every USING option and custom
SQLSTATEs, unique / foreign key / CHECK / NOT NULL / domain violations,
division by zero, bad input syntax, nested PL/pgSQL context, internal queries,
errors caught and re-raised in PL/pgSQL, a statement timeout, errors inside
RLS policies that call auth.uid() — is run twice: in a backend where
fluxbase_admin was never loaded (checked in /proc/<pid>/maps), and in one
where it is (auth.uid() called first). Every field of the error must be the
same. scripts/test.sh runs this module on a cluster with
shared_preload_libraries = pg_stat_statements (another library's ExecutorRun
hook before ours) and on one without any preload.

The step-up refusal (FBR01) and confinement's refusal (42501), raised on
purpose through the hooks, keep their documented code and fields on both.
"""
import uuid

import psycopg
import pytest
from conftest import PASSWORD, TEMPLATE, as_session, connect, one, setup_admin

FIELDS = [
    "severity", "severity_nonlocalized", "sqlstate", "message_primary", "message_detail", "message_hint",
    "statement_position", "internal_position", "internal_query", "context", "schema_name", "table_name",
    "column_name", "datatype_name", "constraint_name", "source_file", "source_line", "source_function",
]

SETUP = r"""
CREATE SCHEMA fidelity;
CREATE DOMAIN fidelity.positive AS int CONSTRAINT positive_check CHECK (VALUE > 0);
CREATE TABLE fidelity.parent (id int PRIMARY KEY);
INSERT INTO fidelity.parent VALUES (1);
CREATE TABLE fidelity.items (
    id int PRIMARY KEY,
    code text NOT NULL,
    qty int CONSTRAINT qty_nonnegative CHECK (qty >= 0),
    parent int CONSTRAINT items_parent_fk REFERENCES fidelity.parent (id),
    size fidelity.positive,
    CONSTRAINT items_code_unique UNIQUE (code)
);
INSERT INTO fidelity.items VALUES (1, 'a', 1, 1, 1);

CREATE FUNCTION fidelity.raise_all() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    RAISE SQLSTATE 'PT403' USING MESSAGE = 'forbidden', DETAIL = 'the detail', HINT = 'the hint',
        COLUMN = 'the_column', CONSTRAINT = 'the_constraint', DATATYPE = 'the_type',
        TABLE = 'the_table', SCHEMA = 'the_schema';
END $f$;
CREATE FUNCTION fidelity.middle() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN PERFORM fidelity.raise_all(); END $f$;
CREATE FUNCTION fidelity.outer_fn() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN PERFORM fidelity.middle(); RETURN 1; END $f$;
CREATE FUNCTION fidelity.custom_class(n int) RETURNS int LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'custom % of class AB', n USING ERRCODE = 'AB123', HINT = 'custom hint';
END $f$;
CREATE FUNCTION fidelity.plain_raise() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN RAISE EXCEPTION 'plain % raise', 'P0001'; END $f$;
CREATE FUNCTION fidelity.internal_query() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN PERFORM nosuch_column FROM fidelity.items; RETURN 1; END $f$;
CREATE FUNCTION fidelity.dynamic_div(d int) RETURNS int LANGUAGE plpgsql AS $f$
DECLARE r int;
BEGIN EXECUTE 'SELECT 10 / $1' INTO r USING d; RETURN r; END $f$;
CREATE FUNCTION fidelity.dup_insert() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO fidelity.items VALUES (1, 'z', 0, 1, 1); RETURN 1; END $f$;
CREATE FUNCTION fidelity.rethrow() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN
    BEGIN
        INSERT INTO fidelity.items VALUES (2, 'a', 0, 1, 1);
    EXCEPTION WHEN unique_violation THEN
        RAISE;
    END;
    RETURN 1;
END $f$;
-- What PL/pgSQL itself sees of an error raised by a nested statement.
CREATE FUNCTION fidelity.stacked() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE st text; m text; d text; h text; c text; s text; t text; col text; ty text; k text;
BEGIN
    BEGIN
        INSERT INTO fidelity.items VALUES (3, 'c', -1, 1, 1);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
            h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT, s = SCHEMA_NAME, t = TABLE_NAME,
            col = COLUMN_NAME, ty = PG_DATATYPE_NAME, k = CONSTRAINT_NAME;
        RAISE SQLSTATE 'PT409' USING MESSAGE = concat_ws('|', st, m, d, h, s, t, col, ty, k), DETAIL = c;
    END;
    RETURN 'unreachable';
END $f$;
CREATE FUNCTION fidelity.stacked_custom() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE st text; m text; d text; h text; c text; s text; t text; col text; ty text; k text;
BEGIN
    BEGIN
        PERFORM fidelity.outer_fn() FROM fidelity.items;
    EXCEPTION WHEN SQLSTATE 'PT403' THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
            h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT, s = SCHEMA_NAME, t = TABLE_NAME,
            col = COLUMN_NAME, ty = PG_DATATYPE_NAME, k = CONSTRAINT_NAME;
        RAISE SQLSTATE 'PT409' USING MESSAGE = concat_ws('|', st, m, d, h, s, t, col, ty, k), DETAIL = c;
    END;
    RETURN 'unreachable';
END $f$;
CREATE FUNCTION fidelity.refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE SQLSTATE 'PT422' USING MESSAGE = 'trigger says no', COLUMN = 'code', TABLE = TG_TABLE_NAME,
        SCHEMA = TG_TABLE_SCHEMA, CONSTRAINT = TG_NAME;
END $f$;
CREATE TABLE fidelity.guarded (id int);
CREATE TRIGGER guard BEFORE INSERT ON fidelity.guarded FOR EACH ROW EXECUTE FUNCTION fidelity.refuse_insert();

-- RLS policies calling auth.uid(), as Supabase apps write them.
CREATE FUNCTION fidelity.policy_check(v int) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    IF v < 0 THEN
        RAISE SQLSTATE 'PT401' USING MESSAGE = 'negative row', DETAIL = 'v=' || v, HINT = 'policy',
            TABLE = 'owned', SCHEMA = 'fidelity', COLUMN = 'v';
    END IF;
    RETURN true;
END $f$;
CREATE TABLE fidelity.owned (owner uuid, v int, tag text);
INSERT INTO fidelity.owned VALUES (NULL, -1, 'x'), (NULL, 2, 'x');
ALTER TABLE fidelity.owned ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_owner ON fidelity.owned FOR SELECT USING (owner IS NOT DISTINCT FROM auth.uid() AND fidelity.policy_check(v));
CREATE POLICY cast_in_policy ON fidelity.owned FOR UPDATE USING (coalesce(auth.uid()::text, tag)::int > 0);
CREATE POLICY insert_own ON fidelity.owned FOR INSERT WITH CHECK (owner = auth.uid());
GRANT USAGE ON SCHEMA fidelity TO authenticated;
GRANT SELECT, INSERT, UPDATE ON fidelity.owned TO authenticated;
GRANT EXECUTE ON FUNCTION fidelity.policy_check(int) TO authenticated;
"""

# (id, statements before (no error), the failing statement, its parameters)
CORPUS = [
    ("raise_every_option", [], "SELECT fidelity.raise_all()", None),
    ("raise_nested_context", [], "SELECT fidelity.outer_fn()", None),
    ("raise_nested_per_row", [], "SELECT fidelity.outer_fn() FROM fidelity.items", None),
    ("raise_custom_class", [], "SELECT fidelity.custom_class(%s)", (7,)),
    ("raise_plain_p0001", [], "SELECT fidelity.plain_raise()", None),
    ("raise_in_do_block", [], "DO $$BEGIN RAISE SQLSTATE 'PT500' USING MESSAGE = 'from do', TABLE = 't'; END$$", None),
    ("unique_pk", [], "INSERT INTO fidelity.items VALUES (1, 'b', 0, 1, 1)", None),
    ("unique_named_params", [], "INSERT INTO fidelity.items VALUES (%s, %s, 0, 1, 1)", (5, "a")),
    ("foreign_key_insert", [], "INSERT INTO fidelity.items VALUES (6, 'f', 0, 99, 1)", None),
    ("foreign_key_delete", [], "DELETE FROM fidelity.parent", None),
    ("check_violation", [], "UPDATE fidelity.items SET qty = -5", None),
    ("not_null_violation", [], "INSERT INTO fidelity.items (id, code) VALUES (7, NULL)", None),
    ("domain_check", [], "INSERT INTO fidelity.items VALUES (8, 'd', 0, 1, 0)", None),
    ("division_by_zero", [], "SELECT 1 / x FROM (VALUES (0)) v(x)", None),
    ("bad_input_syntax", [], "SELECT 'abc'::int", None),
    ("bad_input_in_executor", [], "SELECT x::int FROM (VALUES ('abc')) v(x)", None),
    ("undefined_column_position", [], "SELECT nosuch FROM fidelity.items", None),
    ("internal_query", [], "SELECT fidelity.internal_query()", None),
    ("dynamic_sql_context", [], "SELECT fidelity.dynamic_div(0)", None),
    ("nested_statement_unique", [], "SELECT fidelity.dup_insert()", None),
    ("caught_and_reraised", [], "SELECT fidelity.rethrow()", None),
    ("stacked_diagnostics_builtin", [], "SELECT fidelity.stacked()", None),
    ("stacked_diagnostics_custom", [], "SELECT fidelity.stacked_custom()", None),
    ("trigger_raise", [], "INSERT INTO fidelity.guarded VALUES (1)", None),
    ("statement_timeout", ["SET statement_timeout = '100ms'"], "SELECT pg_sleep(5)", None),
    ("in_transaction_savepoint", ["BEGIN", "SAVEPOINT s"], "UPDATE fidelity.items SET qty = -1", None),
]

# Inside RLS policies that call auth.uid(): the reference is the first
# statement of a fresh backend, which loads the library itself (the hooks are
# installed while it already runs, so none of them wraps it).
RLS = [
    ("rls_policy_raises", ["SET ROLE authenticated"], "SELECT * FROM fidelity.owned", None),
    ("rls_policy_bad_input", ["SET ROLE authenticated"], "UPDATE fidelity.owned SET v = 3", None),
    ("rls_with_check", ["SET ROLE authenticated"], "INSERT INTO fidelity.owned VALUES (gen_random_uuid(), 1, 'y')", None),
]


@pytest.fixture(scope="module")
def corpus_db(template_db):
    name = "fid_" + uuid.uuid4().hex[:12]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    with connect(name) as c:
        c.execute(SETUP)
    yield name
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")


def library_loaded(conn):
    """Whether fluxbase_admin's shared library is mapped in `conn`'s backend."""
    pid = conn.info.backend_pid
    with open(f"/proc/{pid}/maps") as f:
        return "fluxbase_admin" in f.read()


def error_of(conn, before, sql, params):
    for s in before:
        conn.execute(s)
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, params)
    d = e.value.diag
    return {f: getattr(d, f) for f in FIELDS}


def run(dbname, case, load):
    _, before, sql, params = case
    with connect(dbname, autocommit=True) as c:
        assert not library_loaded(c), "a fresh backend already has the library"
        if load:
            c.execute("SELECT auth.uid()")
            assert library_loaded(c)
        got = error_of(c, before, sql, params)
        if not load and not case[0].startswith("rls_"):
            assert not library_loaded(c), "the corpus statement itself loaded the library"
        return got


@pytest.mark.parametrize("case", CORPUS + RLS, ids=[c[0] for c in CORPUS + RLS])
def test_error_fields_are_the_same_with_the_library_loaded(corpus_db, case):
    without = run(corpus_db, case, load=False)
    with_lib = run(corpus_db, case, load=True)
    assert without["sqlstate"] not in (None, "XX000")
    diff = {f: (without[f], with_lib[f]) for f in FIELDS if without[f] != with_lib[f]}
    assert diff == {}, f"{case[0]}: fields differ (without, with the library): {diff}"


# The reference side must itself be rich, or the comparison proves little:
# these are what PostgreSQL reports without the library.
EXPECTED = {
    "raise_every_option": dict(sqlstate="PT403", message_primary="forbidden", message_detail="the detail",
                               message_hint="the hint", column_name="the_column", constraint_name="the_constraint",
                               datatype_name="the_type", table_name="the_table", schema_name="the_schema"),
    "raise_nested_context": dict(sqlstate="PT403", table_name="the_table"),
    "raise_custom_class": dict(sqlstate="AB123", message_primary="custom 7 of class AB", message_hint="custom hint"),
    "unique_named_params": dict(sqlstate="23505", constraint_name="items_code_unique", table_name="items",
                                schema_name="fidelity"),
    "foreign_key_delete": dict(sqlstate="23503", constraint_name="items_parent_fk", table_name="items",
                               schema_name="fidelity"),
    "check_violation": dict(sqlstate="23514", constraint_name="qty_nonnegative", table_name="items"),
    "not_null_violation": dict(sqlstate="23502", column_name="code", table_name="items", schema_name="fidelity"),
    "domain_check": dict(sqlstate="23514", datatype_name="positive", schema_name="fidelity",
                         constraint_name="positive_check"),
    "division_by_zero": dict(sqlstate="22012"),
    "bad_input_syntax": dict(sqlstate="22P02", statement_position="8"),
    "internal_query": dict(sqlstate="42703", internal_query="SELECT nosuch_column FROM fidelity.items",
                           internal_position="8"),
    "nested_statement_unique": dict(sqlstate="23505", constraint_name="items_pkey", table_name="items"),
    "stacked_diagnostics_builtin": dict(
        sqlstate="PT409",
        message_primary="23514|new row for relation \"items\" violates check constraint \"qty_nonnegative\""
                        "|Failing row contains (3, c, -1, 1, 1).||fidelity|items|||qty_nonnegative"),
    "stacked_diagnostics_custom": dict(
        sqlstate="PT409",
        message_primary="PT403|forbidden|the detail|the hint|the_schema|the_table|the_column|the_type|the_constraint"),
    "trigger_raise": dict(sqlstate="PT422", table_name="guarded", column_name="code", constraint_name="guard"),
    "statement_timeout": dict(sqlstate="57014", message_primary="canceling statement due to statement timeout"),
    "rls_policy_raises": dict(sqlstate="PT401", message_detail="v=-1", table_name="owned", column_name="v"),
    "rls_policy_bad_input": dict(sqlstate="22P02"),
    "rls_with_check": dict(sqlstate="42501"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_errors_are_complete(corpus_db, name):
    case = next(c for c in CORPUS + RLS if c[0] == name)
    for load in (False, True):
        got = run(corpus_db, case, load)
        want = EXPECTED[name]
        assert {k: got[k] for k in want} == want, (name, load)
    if name.startswith("raise_nested"):
        assert got["context"].count("PL/pgSQL function") == 3, got["context"]


# ------------------------------------------------------------------ errors raised on purpose

def test_step_up_refusal_is_fbr01_with_its_fields(db, su, web):
    """FBR01 through the hooks, on this cluster (with or without preload), the
    library loaded earlier in the backend or by the refused statement's transaction."""
    _, token = setup_admin(web)
    fresh = db.conn("fb_web")
    assert not library_loaded(fresh)
    for conn in (fresh, web):
        as_session(conn, token)
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT dashboard_auth.purge_audit('0 seconds')")
        conn.execute("ROLLBACK")
        d = e.value.diag
        assert (d.sqlstate, d.severity_nonlocalized, d.message_primary) == ("FBR01", "ERROR", "re-authentication required")
        assert "dashboard_auth.reauthenticate" in d.message_hint
        assert d.table_name is None and d.internal_query is None
    # and PL/pgSQL catches it by its code
    as_session(web, token)
    web.execute("""
        CREATE TEMP TABLE caught(state text);
        DO $$BEGIN PERFORM dashboard_auth.set_setting('session.reauth_window', '"10 minutes"');
        EXCEPTION WHEN SQLSTATE 'FBR01' THEN INSERT INTO caught VALUES (SQLSTATE); END$$
    """)
    assert one(web, "SELECT state FROM caught") == "FBR01"
    web.execute("ROLLBACK")
    # after a successful re-authentication the same call goes through
    as_session(web, token, reauth=PASSWORD)
    web.execute("COMMIT")
    as_session(web, token)
    web.execute("SELECT dashboard_auth.purge_audit('0 seconds')")
    web.execute("COMMIT")


def test_confinement_refusal_keeps_its_code_and_message(db, su, web):
    """42501 raised by the fmgr hook, caught in PL/pgSQL and at the client."""
    from test_confinement import REFUSAL
    setup_admin(su)
    su.execute("CREATE SCHEMA planted AUTHORIZATION fb_plain; GRANT USAGE ON SCHEMA planted TO PUBLIC")
    p = db.conn("fb_plain")
    p.execute("""
        CREATE FUNCTION planted.f() RETURNS int LANGUAGE plpgsql AS $f$
        BEGIN PERFORM dashboard.list_tables(); RETURN 1; END $f$;
        CREATE VIEW planted.v AS SELECT planted.f() AS x;
        GRANT SELECT ON planted.v TO PUBLIC;
    """)
    # As the dashboard's login without an admin session: the explorer keeps the
    # caller's rights, so the planted code meets the fmgr hook's guard (an
    # admin's own view would run it as its owner, who may not use the API
    # schemas at all: test_confinement.as_member).
    web.execute("BEGIN")
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.browse('planted.v')")
    web.execute("ROLLBACK")
    d = e.value.diag
    assert (d.sqlstate, d.severity_nonlocalized, d.message_primary) == ("42501", "ERROR", REFUSAL)
    # caught by its code inside the confined code too
    p.execute("""
        CREATE FUNCTION planted.g() RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN PERFORM dashboard.list_tables(); RETURN 'ran';
        EXCEPTION WHEN insufficient_privilege THEN RETURN SQLSTATE || ' ' || SQLERRM; END $f$;
        CREATE VIEW planted.w AS SELECT planted.g() AS x;
        GRANT SELECT ON planted.w TO PUBLIC;
    """)
    web.execute("BEGIN")
    assert one(web, "SELECT dashboard.browse('planted.w')")["rows"] == [{"x": "42501 " + REFUSAL}]
    web.execute("COMMIT")
