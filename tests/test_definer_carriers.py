"""No code a user wrote ever runs as a superuser or as the extension's owner
(issue 28, item 2), and DDL cannot change an audited table's rows or take it
away unrecorded (item 5, extension side).

A plain login role (fb_plain) owns the schema `evil` and, in it, tables full of
*carriers*: places where PostgreSQL runs code of the table's or the type's
owner on its behalf — casts to json and jsonb on an enum, a composite, a domain
and a range type (and an array of the enum), index expressions and partial
index predicates, a partition key, partition bounds, column defaults,
generated columns, an expression statistics object, a rule and a row-security
policy. Every carrier calls `evil.note(tag)`, which records `current_user`,
`session_user` and `is_superuser` into `evil.log` (any role may write it) and
tries `ALTER ROLE <victim> CREATEROLE`, which only a superuser could do.

The admins then use every SECURITY DEFINER path that touches these objects:
row capture, audit search and details (the row images of every column type),
TRUNCATE recording, enable/disable audit (also on the partitioned table),
monitoring and analytics, purge, the DDL watch (rewrite, rename, drop). No
carrier may have run as anyone but fb_plain, and the victim keeps no
CREATEROLE. (The carriers do run as fb_plain when fb_plain's own statements
need them — defaults, generated columns, index builds — which proves they
work.)

Not covered, by PostgreSQL's own rules: a base type's output function is C
(only a superuser can create one; the reader still calls a non-built-in one as
the type's owner, confined), and event triggers are superuser-only. Explorer
and export paths are issue 30's (they browse as the table's owner).
"""
import uuid

import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin

TYPES = ["mood", "pair", "dom", "frange"]


def carriers_sql(victim):
    casts = "\n".join(
        f"""
        CREATE FUNCTION evil.{t}_json(evil.{t}) RETURNS json LANGUAGE plpgsql AS
            $f$BEGIN PERFORM evil.note('cast_json_{t}'); RETURN '"carried"'::json; END$f$;
        CREATE FUNCTION evil.{t}_jsonb(evil.{t}) RETURNS jsonb LANGUAGE plpgsql AS
            $f$BEGIN PERFORM evil.note('cast_jsonb_{t}'); RETURN '"carried"'::jsonb; END$f$;
        CREATE CAST (evil.{t} AS json) WITH FUNCTION evil.{t}_json(evil.{t});
        CREATE CAST (evil.{t} AS jsonb) WITH FUNCTION evil.{t}_jsonb(evil.{t});"""
        for t in TYPES)
    return f"""
        CREATE TABLE evil.log (tag text, usr name, sess name, su text);
        GRANT USAGE ON SCHEMA evil TO PUBLIC;
        GRANT INSERT, SELECT ON evil.log TO PUBLIC;
        CREATE FUNCTION evil.note(tag text) RETURNS int LANGUAGE plpgsql AS $f$
        BEGIN
            INSERT INTO evil.log VALUES (tag, current_user, session_user, current_setting('is_superuser'));
            BEGIN
                EXECUTE 'ALTER ROLE {victim} CREATEROLE';
            EXCEPTION WHEN OTHERS THEN NULL;
            END;
            RETURN 0;
        END $f$;
        CREATE FUNCTION evil.imm(tag text, x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
            $f$BEGIN PERFORM evil.note(tag); RETURN x; END$f$;
        CREATE TYPE evil.mood AS ENUM ('ok', 'bad');
        CREATE TYPE evil.pair AS (a int, b text);
        CREATE DOMAIN evil.dom AS text;
        CREATE TYPE evil.frange AS RANGE (subtype = float8);
        {casts}
        CREATE TABLE evil.t (
            id int PRIMARY KEY,
            m evil.mood, ms evil.mood[], p evil.pair, d evil.dom, r evil.frange, pa evil.pair[],
            v text DEFAULT (evil.note('column_default')::text),
            g int GENERATED ALWAYS AS (evil.imm('generated_column', id)) STORED
        );
        CREATE INDEX t_expr ON evil.t ((id + evil.imm('index_expression', 0)));
        CREATE INDEX t_partial ON evil.t (id) WHERE id > evil.imm('partial_index_predicate', -1000);
        CREATE STATISTICS evil.t_stats ON (id + evil.imm('statistics_expression', 0)), (v || 'x') FROM evil.t;
        CREATE RULE t_rule AS ON UPDATE TO evil.t DO ALSO SELECT evil.note('rule');
        ALTER TABLE evil.t ENABLE ROW LEVEL SECURITY;
        ALTER TABLE evil.t FORCE ROW LEVEL SECURITY;
        CREATE POLICY t_policy ON evil.t USING (evil.note('row_security_policy') = 0);
        CREATE TABLE evil.pt (id int, v text) PARTITION BY RANGE ((id + evil.imm('partition_key', 0)));
        CREATE TABLE evil.pt1 PARTITION OF evil.pt FOR VALUES FROM (evil.imm('partition_bound', 0)) TO (1000);
        CREATE INDEX pt_expr ON evil.pt ((id + evil.imm('index_expression', 0)));
        -- (the dashboard's login may put the audit triggers on them)
        GRANT TRIGGER ON evil.t, evil.pt TO fb_web;
    """


@pytest.fixture
def evil(db, su):
    victim = "fb_victim_" + uuid.uuid4().hex[:10]
    su.execute(f"CREATE ROLE {victim} NOLOGIN")
    su.execute("CREATE SCHEMA evil AUTHORIZATION fb_plain")
    plain = db.conn("fb_plain")
    plain.execute(carriers_sql(victim))
    yield plain, victim
    su.execute(f"DROP ROLE IF EXISTS {victim}")


def assert_no_carrier_ran_with_power(su, victim, where):
    bad = su.execute(
        "SELECT tag, usr, sess, su FROM evil.log WHERE usr <> 'fb_plain' OR su <> 'off' ORDER BY 1").fetchall()
    assert bad == [], f"{where}: user code ran as someone else: {bad}"
    assert one(su, "SELECT rolcreaterole FROM pg_roles WHERE rolname = %s", (victim,)) is False, where


def ran(su):
    return {r[0] for r in su.execute("SELECT DISTINCT tag FROM evil.log")}


def admin_session(web):
    _, token = setup_admin(web)
    return token


def fill(plain):
    plain.execute(
        "INSERT INTO evil.t (id, m, ms, p, d, r, pa) VALUES "
        "(1, 'ok', '{ok,bad}', ROW(1, 'one'), 'dee', '[1.5,2.5)', ARRAY[ROW(2, 'two')::evil.pair]), "
        "(2, 'bad', '{}', NULL, NULL, 'empty', NULL), (3, NULL, NULL, ROW(NULL, 'x\"y'), 'z', NULL, '{}')")
    plain.execute("UPDATE evil.t SET m = 'bad', p = ROW(9, 'nine') WHERE id = 1")
    plain.execute("DELETE FROM evil.t WHERE id = 2")
    plain.execute("INSERT INTO evil.pt VALUES (5, 'five')")


def test_no_carrier_runs_as_superuser_on_any_definer_path(db, su, web, evil):
    plain, victim = evil
    assert_no_carrier_ran_with_power(su, victim, "setup")
    # (the carriers work: fb_plain's own statements ran them as fb_plain)
    assert {"index_expression", "partial_index_predicate", "partition_key", "partition_bound"} <= ran(su)

    token = admin_session(web)
    as_session(web, token)
    web.execute("SELECT dashboard.enable_audit('evil.t')")
    web.execute("SELECT dashboard.enable_audit('evil.pt')")
    web.execute("COMMIT")
    assert_no_carrier_ran_with_power(su, victim, "enable_audit")

    fill(plain)
    assert {"column_default", "generated_column", "rule", "row_security_policy"} <= ran(su)
    assert_no_carrier_ran_with_power(su, victim, "row capture")

    # the audit reader, through every entry of the table, as the web does it
    as_session(web, token)
    rows = web.execute(
        "SELECT to_json(t) FROM dashboard.audit_search(target => 'evil.t', page_size => 100) t").fetchall()
    assert {r[0]["action"] for r in rows} >= {"row.insert", "row.update", "row.delete", "audit.enable"}
    details = {}
    for (r,) in rows:
        details[r["action"]] = one(web, "SELECT dashboard_auth.audit_details(%s)", (r["id"],))
    web.execute("SELECT count(*) FROM dashboard.audit_search(page_size => 1000)")
    web.execute("COMMIT")
    assert_no_carrier_ran_with_power(su, victim, "audit_search/audit_details")
    # rendered without the casts: the values, not "carried"
    inserted = {row["new"]["id"]: row["new"] for row in details["row.insert"]["rows"]}
    assert inserted[1]["m"] == "ok" and inserted[1]["ms"] == ["ok", "bad"]
    assert inserted[1]["p"] == {"a": 1, "b": "one"} and inserted[1]["pa"] == [{"a": 2, "b": "two"}]
    assert inserted[1]["d"] == "dee" and inserted[1]["r"] == "[1.5,2.5)"
    assert inserted[2]["ms"] == [] and inserted[2]["p"] is None and inserted[2]["r"] == "empty"
    assert inserted[3]["p"] == {"a": None, "b": 'x"y'} and inserted[3]["pa"] == []
    assert "carried" not in str(details)

    # TRUNCATE recording counts exactly, without planning a query on the table
    plain.execute("TRUNCATE evil.t")
    plain.execute("TRUNCATE evil.pt")
    assert_no_carrier_ran_with_power(su, victim, "TRUNCATE recording")
    counts = dict(su.execute(
        "SELECT target_id, (details->>'count')::int FROM dashboard_auth.audit_log WHERE action = 'row.truncate'"))
    assert counts == {"evil.t": 2, "evil.pt1": 1}

    # monitoring and analytics
    as_session(web, token)
    for f in ["dashboard.active_sessions()", "dashboard.connection_stats()", "dashboard.storage_usage()",
              "dashboard.metrics()", "dashboard.connection_breakdown()", "dashboard.cache_hit_ratio()",
              "dashboard.query_stats_available()", "dashboard.largest_indexes()"]:
        web.execute(f"SELECT count(*) FROM {f}")
    web.execute("COMMIT")
    assert_no_carrier_ran_with_power(su, victim, "monitoring/analytics")

    # disable audit and purge (step-up actions)
    as_session(web, token, reauth=PASSWORD)
    web.execute("SELECT dashboard.disable_audit('evil.pt')")
    web.execute("SELECT dashboard_auth.purge_audit('100 years')")
    web.execute("COMMIT")
    assert_no_carrier_ran_with_power(su, victim, "disable_audit/purge_audit")
    # and the superuser's ANALYZE-free reads of the log
    assert one(su, "SELECT ok FROM dashboard_auth.verify_audit_chain()") is True


def test_the_carriers_are_live_for_a_superuser_who_plans_or_casts(db, su, evil):
    """What the reader and the TRUNCATE recording did before issue 28, done by
    hand: `row_to_json` over the table calls the enum's cast, and planning
    `count(*)` on it const-folds the index expression — both as the superuser.
    (So the tests above can fail: this is what they look for.)"""
    plain, victim = evil
    plain.execute("INSERT INTO evil.t (id, m) VALUES (1, 'ok')")
    plain.execute("DELETE FROM evil.log")
    su.execute("SELECT count(*) FROM ONLY evil.t")
    assert ("index_expression", "postgres") in su.execute("SELECT tag, usr FROM evil.log").fetchall()
    su.execute("SELECT row_to_json(t) FROM (SELECT m FROM evil.t) t")
    assert ("cast_json_mood", "postgres") in su.execute("SELECT tag, usr FROM evil.log").fetchall()
    assert one(su, "SELECT rolcreaterole FROM pg_roles WHERE rolname = %s", (victim,)) is True


def test_truncate_of_a_table_with_a_carrier_index_counts_as_nobody(db, su, evil):
    """The exact path of the report: TRUNCATE by the owner of a table with an
    IMMUTABLE function in an index expression."""
    plain, victim = evil
    su.execute("SELECT dashboard.enable_audit('evil.t')")
    plain.execute("INSERT INTO evil.t (id) SELECT g FROM generate_series(1, 50) g")
    plain.execute("DELETE FROM evil.log")
    plain.execute("TRUNCATE evil.t")
    assert_no_carrier_ran_with_power(su, victim, "TRUNCATE")
    assert one(su, "SELECT (details->>'count')::int FROM dashboard_auth.audit_log WHERE action = 'row.truncate'") == 50
    # rows of the transaction itself count, rows of a rolled-back one do not
    plain.execute("BEGIN")
    plain.execute("INSERT INTO evil.t (id) VALUES (1), (2)")
    plain.execute("TRUNCATE evil.t")
    plain.execute("COMMIT")
    assert [r[0] for r in su.execute(
        "SELECT (details->>'count')::int FROM dashboard_auth.audit_log WHERE action = 'row.truncate' ORDER BY id")] == [50, 2]


def test_the_reader_never_calls_a_cast_even_one_made_after_the_entry(db, su, web, evil):
    """A cast defined after the rows were recorded, by the type's owner, is not
    called when an admin (or the superuser) reads the entry."""
    plain, victim = evil
    su.execute("CREATE TABLE public.plainly (id int PRIMARY KEY, m evil.mood, ms evil.mood[])")
    su.execute("SELECT dashboard.enable_audit('public.plainly')")
    su.execute("INSERT INTO public.plainly VALUES (1, 'bad', '{bad,ok}')")
    plain.execute("DELETE FROM evil.log")
    eid = one(su, "SELECT id FROM dashboard_auth.audit_log WHERE action = 'row.insert' AND target_id = 'public.plainly'")
    d = one(su, "SELECT dashboard_auth.audit_details(%s)", (eid,))
    assert d["rows"][0]["new"] == {"id": 1, "m": "bad", "ms": ["bad", "ok"]}
    su.execute("SELECT count(*) FROM dashboard.audit_search(action => 'row.*')")
    assert_no_carrier_ran_with_power(su, victim, "reader as superuser")
    assert one(su, "SELECT count(*) FROM evil.log") == 0


def test_reader_keeps_row_to_json_forms_for_built_in_types(db, su):
    """Numbers, booleans, json, dates and timestamps look as row_to_json wrote them."""
    su.execute("""CREATE TABLE public.kinds (id int PRIMARY KEY, n numeric, f float8, nan float8, b boolean,
                  j json, jb jsonb, dt date, ts timestamp, tz timestamptz, arr int[], grid int[][], t text)""")
    su.execute("SELECT dashboard.enable_audit('public.kinds')")
    su.execute("SET timezone = 'UTC'")
    su.execute("""INSERT INTO public.kinds VALUES (1, 12.50, 1.5e300, 'NaN', true, '{"a": [1, 2]}', '{"b": null}',
                  '2024-02-29', '2024-02-29 13:14:15.5', '2024-02-29 13:14:15+00', '{1,NULL,3}', '{{1,2},{3,4}}', 'é"\\')""")
    expected = one(su, "SELECT row_to_json(k)::jsonb FROM public.kinds k")
    eid = one(su, "SELECT id FROM dashboard_auth.audit_log WHERE action = 'row.insert' AND target_id = 'public.kinds'")
    got = one(su, "SELECT dashboard_auth.audit_details(%s)", (eid,))["rows"][0]["new"]
    assert got == expected


# ------------------------------------------------ item 5: DDL on audited tables


def bypasses(su):
    return su.execute(
        "SELECT target_id, details FROM dashboard_auth.audit_log WHERE action = 'audit.bypass' ORDER BY id").fetchall()


@pytest.fixture
def owned(db, su):
    su.execute("GRANT CREATE ON SCHEMA public TO fb_plain")
    plain = db.conn("fb_plain")
    plain.execute("CREATE TABLE public.owned (id int PRIMARY KEY, v text)")
    plain.execute("INSERT INTO public.owned SELECT g, 'x' || g FROM generate_series(1, 5) g")
    su.execute("SELECT dashboard.enable_audit('public.owned')")
    return plain


def test_alter_column_type_using_is_recorded_as_a_rewrite(su, owned):
    owned.execute("ALTER TABLE public.owned ALTER COLUMN v TYPE text USING 'overwritten'")
    (action, d), = su.execute(
        "SELECT action, details FROM dashboard_auth.audit_log WHERE target_id = 'public.owned' AND action LIKE 'row.%'")
    assert action == "row.rewrite"
    assert d["count"] == 5 and d["current_user"] == "fb_plain" and d["op"] == "ALTER TABLE"
    assert "USING 'overwritten'" in d["statement"]
    assert one(su, "SELECT db_user FROM dashboard_auth.audit_log WHERE action = 'row.rewrite'") == "fb_plain"
    # a type change that rewrites too, by the superuser: recorded as well
    su.execute("ALTER TABLE public.owned ALTER COLUMN id TYPE bigint")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'row.rewrite'") == 2
    # no rewrite, or not audited: nothing
    owned.execute("ALTER TABLE public.owned ADD COLUMN extra int")
    owned.execute("CREATE TABLE public.other (id int, v int)")
    owned.execute("ALTER TABLE public.other ALTER COLUMN v TYPE text USING 'x'")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'row.rewrite'") == 2
    # rolled back: nothing
    owned.execute("BEGIN")
    owned.execute("ALTER TABLE public.owned ALTER COLUMN v TYPE text USING 'again'")
    owned.execute("ROLLBACK")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'row.rewrite'") == 2
    assert one(su, "SELECT ok FROM dashboard_auth.verify_audit_chain()") is True


@pytest.mark.parametrize("drop", ["DROP TABLE public.owned", "DROP TABLE public.owned CASCADE",
                                  "DROP OWNED BY fb_plain"])
def test_dropping_an_audited_table_is_a_bypass(su, owned, drop):
    owned.execute(drop)
    (target, d), = bypasses(su)
    assert target == "public.owned" and d["change"] == "table dropped"
    assert sorted(d["triggers"]) == ["fluxbase_audit_del", "fluxbase_audit_ins", "fluxbase_audit_trn", "fluxbase_audit_upd"]
    assert one(su, "SELECT db_user FROM dashboard_auth.audit_log WHERE action = 'audit.bypass'") == "fb_plain"
    assert one(su, "SELECT success FROM dashboard_auth.audit_log WHERE action = 'audit.bypass'") is False


def test_dropping_the_schema_of_an_audited_table_is_a_bypass(db, su):
    su.execute("CREATE SCHEMA mine AUTHORIZATION fb_plain")
    plain = db.conn("fb_plain")
    plain.execute('CREATE TABLE mine."Odd name" (id int)')
    su.execute("""SELECT dashboard.enable_audit('mine."Odd name"')""")
    plain.execute("DROP SCHEMA mine CASCADE")
    (target, d), = bypasses(su)
    assert target == 'mine."Odd name"' and d["change"] == "table dropped"


def test_swapping_an_audited_table_by_rename_is_a_bypass(su, owned):
    owned.execute("CREATE TABLE public.fake (id int PRIMARY KEY, v text)")
    owned.execute("ALTER TABLE public.owned RENAME TO owned_old")
    owned.execute("ALTER TABLE public.fake RENAME TO owned")
    (target, d), = bypasses(su)
    assert target == "public.owned"
    assert d["change"] == "renamed" and d["from"] == "public.owned" and d["to"] == "public.owned_old"
    su.execute("CREATE SCHEMA elsewhere AUTHORIZATION fb_plain")
    owned.execute("ALTER TABLE public.owned_old SET SCHEMA elsewhere")
    (target, d) = bypasses(su)[-1]
    assert d["change"] == "moved" and d["to"] == "elsewhere.owned_old" and d["from"] == "public.owned_old"
    # renaming a column or an unaudited table is not
    owned.execute("ALTER TABLE elsewhere.owned_old RENAME COLUMN v TO w")
    owned.execute("ALTER TABLE public.owned RENAME TO fake2")
    assert len(bypasses(su)) == 2


def test_disable_audit_then_drop_records_only_the_disable(db, su, owned):
    su.execute("SELECT dashboard.disable_audit('public.owned')")
    owned.execute("DROP TABLE public.owned")
    assert bypasses(su) == []


def test_superuser_ddl_is_not_a_bypass(su, owned):
    """As before (issue 17): a superuser can do anything; a restore drops and renames."""
    su.execute("ALTER TABLE public.owned RENAME TO renamed")
    su.execute("DROP TABLE public.renamed")
    assert bypasses(su) == []
