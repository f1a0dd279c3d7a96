"""Confinement (issue 17, items 1-3, 7, 8): code reached by a browsed or
impersonated statement never borrows the dashboard's power.

`fb_plain` is the attacker: a login role with no grants that owns one schema
(and, where a test says so, CREATE on public). Every trap calls
plainschema.probe(tag), which tries to create an admin through the API, to
switch the role back to the login, to set request.jwt.claims and to RESET
ROLE, and reports each outcome as a NOTICE (so traps work in read-only
statements too and never hide an error from the test).
"""
import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin

REFUSAL = "the dashboard API cannot be called from code run by a browsed or impersonated statement"

PROBE = """
CREATE FUNCTION plainschema.probe(tag text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    BEGIN
        PERFORM dashboard_auth.create_admin('mallory-' || tag || '@example.com', 'correct-horse-battery-staple',
                                            'Mallory', 'dashboard_admin');
        RAISE NOTICE 'probe|%|api|ok|', tag;
    EXCEPTION WHEN others THEN RAISE NOTICE 'probe|%|api|%|%', tag, SQLSTATE, SQLERRM;
    END;
    BEGIN
        PERFORM dashboard.list_tables();
        RAISE NOTICE 'probe|%|api2|ok|', tag;
    EXCEPTION WHEN others THEN RAISE NOTICE 'probe|%|api2|%|%', tag, SQLSTATE, SQLERRM;
    END;
    BEGIN
        PERFORM set_config('role', session_user::text, true);
        RAISE NOTICE 'probe|%|role|ok|%', tag, current_user;
    EXCEPTION WHEN others THEN RAISE NOTICE 'probe|%|role|%|%', tag, SQLSTATE, SQLERRM;
    END;
    BEGIN
        PERFORM set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000001"}', true);
        RAISE NOTICE 'probe|%|claims|ok|', tag;
    EXCEPTION WHEN others THEN RAISE NOTICE 'probe|%|claims|%|%', tag, SQLSTATE, SQLERRM;
    END;
    BEGIN
        EXECUTE 'RESET ROLE';
        RAISE NOTICE 'probe|%|reset|ok|%', tag, current_user;
    EXCEPTION WHEN others THEN RAISE NOTICE 'probe|%|reset|%|%', tag, SQLSTATE, SQLERRM;
    END;
    RETURN true;
END $f$;
CREATE FUNCTION plainschema.trg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM plainschema.probe(TG_ARGV[0]); RETURN coalesce(NEW, OLD); END $f$;
"""


@pytest.fixture
def attacker(su):
    su.execute("CREATE SCHEMA plainschema AUTHORIZATION fb_plain")
    su.execute("GRANT USAGE ON SCHEMA plainschema TO PUBLIC")
    return "plainschema"


def plain(db, sql):
    c = db.conn("fb_plain")
    c.execute(sql)


def probes(conn):
    """Collect the probe notices of `conn` from now on: {(tag, what): (state, message)}."""
    got = {}

    def handler(d):
        msg = d.message_primary or ""
        if msg.startswith("probe|"):
            _, tag, what, state, rest = msg.split("|", 4)
            got.setdefault(tag, {})[what] = (state, rest)

    conn.add_notice_handler(handler)
    return got


def assert_confined(got, tag, impersonated=False):
    assert tag in got, f"trap {tag} did not run: {got}"
    r = got[tag]
    if impersonated:
        # the impersonated role has no USAGE on dashboard_auth: refused before the guard
        assert r["api"][0] == "42501", r
    else:
        assert r["api"] == ("42501", REFUSAL), r
    # the explorer functions are executable by anon/authenticated/service_role: the guard refuses
    assert r["api2"] == ("42501", REFUSAL), r
    assert r["role"][0] == "42501", r
    assert r["claims"][0] == "42501", r
    assert r["reset"][0] == "42501", r


def no_mallory(su):
    return one(su, "SELECT count(*) FROM dashboard_auth.users WHERE starts_with(email, 'mallory')") == 0


@pytest.fixture
def ada(su, web):
    return setup_admin(su)[1]


def as_member(conn):
    """Begin a transaction as the dashboard's login without an admin session.
    Its explorer calls keep the caller's rights, so planted code meets the
    re-entry guard itself. (An admin session not impersonating runs a user
    schema's table as its owner, issue 30, who has no USAGE on the API
    schemas at all: test_owner_view.py, and the last part of
    test_browsing_a_planted_view_cannot_make_an_admin.)"""
    conn.execute("BEGIN")


# ------------------------------------------------------------------ item 1: browsing

def test_browsing_a_planted_view_cannot_make_an_admin(db, su, web, attacker, ada):
    """The issue's reproducer: a view calling a function that creates an admin."""
    plain(db, PROBE + """
        CREATE FUNCTION plainschema.price(p int) RETURNS int LANGUAGE plpgsql AS $f$
        BEGIN
            IF pg_has_role(current_user, 'fluxbase_dashboard', 'MEMBER') THEN
                PERFORM dashboard_auth.create_admin('mallory@example.com', 'correct-horse-battery-staple',
                                                    'Mallory', 'dashboard_admin');
            END IF;
            RETURN p * 2;
        END $f$;
        CREATE TABLE plainschema.product (id int PRIMARY KEY, p int);
        INSERT INTO plainschema.product VALUES (1, 10), (2, 20);
        CREATE VIEW plainschema.product_prices AS SELECT id, plainschema.price(p) AS price FROM plainschema.product;
        CREATE VIEW plainschema.probed AS SELECT id FROM plainschema.product WHERE plainschema.probe('view');
        GRANT SELECT ON plainschema.product_prices, plainschema.probed TO PUBLIC;
    """)
    got = probes(web)
    as_member(web)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.browse('plainschema.product_prices')")
    assert e.value.sqlstate == "42501" and REFUSAL in e.value.diag.message_primary
    web.execute("ROLLBACK")
    assert no_mallory(su)
    # the same trap with the errors caught: every escape is refused, browse still answers
    as_member(web)
    assert one(web, "SELECT dashboard.browse('plainschema.probed')")["rows"] == [{"id": 1}, {"id": 2}]
    assert one(web, "SELECT current_user") == "fb_web"
    web.execute("COMMIT")
    assert_confined(got, "view")
    assert no_mallory(su)
    # the admin's own view (issue 30): as the owner fb_plain, not a dashboard
    # member, refused by PostgreSQL's own privileges (the schema, or the
    # function once the probe's plan is cached in this backend)
    got.clear()
    as_session(web, ada)
    assert one(web, "SELECT dashboard.browse('plainschema.product_prices')")["rows"] == [
        {"id": 1, "price": 20}, {"id": 2, "price": 40}]
    assert one(web, "SELECT dashboard.browse('plainschema.probed')")["rows"] == [{"id": 1}, {"id": 2}]
    web.execute("COMMIT")
    r = got["view"]
    assert r["api"] in {("42501", "permission denied for schema dashboard_auth"),
                        ("42501", "permission denied for function create_admin")}, r
    assert r["api2"] in {("42501", "permission denied for schema dashboard"),
                         ("42501", "permission denied for function list_tables")}, r
    assert r["role"][0] == r["claims"][0] == r["reset"][0] == "42501", r
    assert no_mallory(su)


def test_a_planted_operator_in_public_runs_confined(db, su, web, attacker, ada):
    su.execute("GRANT CREATE ON SCHEMA public TO fb_plain")
    plain(db, PROBE + """
        CREATE FUNCTION plainschema.veq(a varchar, b varchar) RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN PERFORM plainschema.probe('operator'); RETURN a::text OPERATOR(pg_catalog.=) b::text; END $f$;
        CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = plainschema.veq);
        CREATE TABLE plainschema.items (id int PRIMARY KEY, name varchar(20));
        INSERT INTO plainschema.items VALUES (1, 'a'), (2, 'b');
        GRANT SELECT ON plainschema.items TO PUBLIC;
    """)
    got = probes(web)
    as_session(web, ada)
    res = one(web, "SELECT dashboard.browse('plainschema.items', %s)", (Jsonb([{"column": "name", "op": "eq", "value": "b"}]),))
    assert res["rows"] == [{"id": 2, "name": "b"}]
    web.execute("COMMIT")
    # the explorer's own filter never picks the planted operator (it writes
    # OPERATOR(pg_catalog.=) with search_path pinned) ...
    assert "operator" not in got, got
    # ... while a view of the attacker's that uses it (public is on their
    # search_path: the exact varchar match wins over pg_catalog's texteq) runs
    # it when browsed, and it runs confined.
    plain(db, """
        CREATE VIEW plainschema.items_b AS SELECT * FROM plainschema.items WHERE name = 'b'::varchar;
        GRANT SELECT ON plainschema.items_b TO PUBLIC;
    """)
    assert one(su, """SELECT count(*) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                      WHERE r.ev_class = 'plainschema.items_b'::regclass AND d.refclassid = 'pg_operator'::regclass
                        AND d.refobjid = 'public.=(varchar, varchar)'::regoperator""") == 1
    as_member(web)  # (as the caller: see as_member)
    assert one(web, "SELECT dashboard.browse('plainschema.items_b')")["rows"] == [{"id": 2, "name": "b"}]
    web.execute("COMMIT")
    assert_confined(got, "operator")
    assert no_mallory(su)


def test_rls_triggers_constraint_triggers_domains_and_defaults_run_confined(db, su, web, attacker, ada):
    plain(db, PROBE + """
        CREATE DOMAIN plainschema.checked_int AS int CHECK (plainschema.probe('domain'));
        CREATE TABLE plainschema.t (
            id int PRIMARY KEY,
            v plainschema.checked_int,
            flag boolean DEFAULT plainschema.probe('default'));
        INSERT INTO plainschema.t (id, v) VALUES (1, 1);
        ALTER TABLE plainschema.t ENABLE ROW LEVEL SECURITY;
        CREATE POLICY p ON plainschema.t USING (plainschema.probe('rls')) WITH CHECK (true);
        CREATE TRIGGER before_ins BEFORE INSERT OR UPDATE OR DELETE ON plainschema.t
            FOR EACH ROW EXECUTE FUNCTION plainschema.trg('trigger');
        CREATE CONSTRAINT TRIGGER ctrig AFTER INSERT ON plainschema.t
            FOR EACH ROW EXECUTE FUNCTION plainschema.trg('constraint_trigger');
        GRANT SELECT, INSERT, UPDATE, DELETE ON plainschema.t TO PUBLIC;
    """)
    got = probes(web)
    as_member(web)
    assert one(web, "SELECT dashboard.insert_rows('plainschema.t', %s)", (Jsonb([{"id": 2, "v": 2}]),)) == 1
    web.execute("SELECT dashboard.update_row('plainschema.t', %s, %s)", (Jsonb({"id": 2}), Jsonb({"v": 3})))
    web.execute("SELECT dashboard.browse('plainschema.t')")
    assert one(web, "SELECT dashboard.delete_rows('plainschema.t', %s)", (Jsonb([{"id": 2}]),)) == 1
    web.execute("COMMIT")
    for tag in ("domain", "default", "rls", "trigger", "constraint_trigger"):
        assert_confined(got, tag)
    assert no_mallory(su)
    # after the transaction, the connection is itself again
    assert one(web, "SELECT current_user") == "fb_web"
    web.execute("SET ROLE fluxbase_dashboard")
    web.execute("RESET ROLE")


def test_deferred_triggers_queued_by_confined_code_never_fire_unconfined(db, su, web, attacker, ada):
    """A deferred constraint trigger would fire at COMMIT, after the explorer's
    statement: PostgreSQL refuses to queue it in a restricted operation, so
    the edit is refused; made IMMEDIATE by the client, it fires confined."""
    plain(db, PROBE + """
        CREATE TABLE plainschema.d (id int PRIMARY KEY, v int);
        INSERT INTO plainschema.d VALUES (1, 1);
        CREATE CONSTRAINT TRIGGER deferred AFTER UPDATE ON plainschema.d DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION plainschema.trg('deferred_trigger');
        GRANT SELECT, UPDATE ON plainschema.d TO PUBLIC;
    """)
    got = probes(web)
    as_member(web)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.update_row('plainschema.d', %s, %s)", (Jsonb({"id": 1}), Jsonb({"v": 2})))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    assert "deferred_trigger" not in got
    assert one(su, "SELECT v FROM plainschema.d") == 1
    assert no_mallory(su)
    # made immediate by the client, it fires inside the confined statement
    as_member(web)
    web.execute("SET CONSTRAINTS ALL IMMEDIATE")
    web.execute("SELECT dashboard.update_row('plainschema.d', %s, %s)", (Jsonb({"id": 1}), Jsonb({"v": 3})))
    web.execute("COMMIT")
    assert_confined(got, "deferred_trigger")
    assert one(su, "SELECT v FROM plainschema.d") == 3
    assert no_mallory(su)


def test_every_api_function_refuses_confined_code(db, su, web, attacker, ada):
    """Not only create_admin: every function of dashboard and dashboard_auth
    (internal helpers, named _..., excepted) refuses, called with NULLs."""
    plain(db, """
        CREATE FUNCTION plainschema.sweep() RETURNS boolean LANGUAGE plpgsql AS $f$
        DECLARE p record; n int := 0; bad text := '';
        BEGIN
            FOR p IN SELECT f.oid::regprocedure AS sig, f.oid::regproc AS fn,
                            (SELECT string_agg('NULL::' || format_type(t, NULL), ', ')
                             FROM unnest(f.proargtypes::oid[]) t) AS args
                     FROM pg_proc f
                     WHERE f.pronamespace IN ('dashboard'::regnamespace, 'dashboard_auth'::regnamespace)
                       AND f.proname NOT LIKE '\\_%' AND NOT f.proisstrict AND f.prokind = 'f'
                       AND f.prorettype <> 'trigger'::regtype
            LOOP
                n := n + 1;
                BEGIN
                    EXECUTE format('SELECT %s(%s)', p.fn::text, coalesce(p.args, ''));
                    bad := bad || p.sig::text || ' ran; ';
                EXCEPTION WHEN others THEN
                    IF SQLSTATE <> '42501' OR SQLERRM NOT LIKE 'the dashboard API cannot be called%' THEN
                        bad := bad || p.sig::text || ': ' || SQLSTATE || ' ' || SQLERRM || '; ';
                    END IF;
                END;
            END LOOP;
            RAISE NOTICE 'sweep|%|%', n, bad;
            RETURN true;
        END $f$;
        CREATE VIEW plainschema.swept AS SELECT plainschema.sweep() AS ok;
        GRANT SELECT ON plainschema.swept TO PUBLIC;
    """)
    notes = []
    web.add_notice_handler(lambda d: notes.append(d.message_primary))
    as_member(web)
    web.execute("SELECT dashboard.browse('plainschema.swept')")
    web.execute("COMMIT")
    sweep = [n for n in notes if n.startswith("sweep|")]
    assert sweep
    _, n, bad = sweep[0].split("|", 2)
    assert int(n) > 40 and bad == ""


# ------------------------------------------------------------------ item 2: impersonation

@pytest.fixture
def app(su, attacker, db):
    su.execute("""
        CREATE TABLE public.todos (id bigserial PRIMARY KEY, user_id uuid DEFAULT auth.uid(), title text NOT NULL);
        ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own ON public.todos TO authenticated USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.todos TO authenticated;
        GRANT USAGE ON SEQUENCE public.todos_id_seq TO authenticated;
    """)
    alice = one(su, "SELECT user_id FROM dashboard.invite_user('alice@example.com')")
    su.execute("INSERT INTO public.todos (user_id, title) VALUES (%s, 'a1'), (%s, 'a2')", (alice, alice))
    plain(db, PROBE + """
        CREATE TABLE plainschema.feedback (id serial PRIMARY KEY, msg text);
        GRANT INSERT, SELECT ON plainschema.feedback TO authenticated;
        GRANT USAGE ON SEQUENCE plainschema.feedback_id_seq TO authenticated;
        CREATE FUNCTION plainschema.climb() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            PERFORM set_config('role', session_user::text, true);
            PERFORM dashboard_auth.create_admin('mallory@example.com', 'correct-horse-battery-staple',
                                                'Mallory', 'dashboard_admin');
            PERFORM set_config('role', 'authenticated', true);
            RETURN NULL;
        END $f$;
        CREATE TRIGGER climb AFTER INSERT ON plainschema.feedback FOR EACH ROW EXECUTE FUNCTION plainschema.climb();
        CREATE TABLE plainschema.guestbook (id serial PRIMARY KEY, msg text);
        GRANT INSERT, SELECT ON plainschema.guestbook TO authenticated;
        GRANT USAGE ON SEQUENCE plainschema.guestbook_id_seq TO authenticated;
        CREATE TRIGGER probe AFTER INSERT ON plainschema.guestbook FOR EACH ROW EXECUTE FUNCTION plainschema.trg('imp_trigger');
    """)
    return alice


def start(conn, target):
    return one(conn, "SELECT dashboard.start_impersonation(%s, 'ticket 17')", (target,))


def apply(web, token, target):
    """Start an impersonation of `target` (committed), then begin a transaction
    of the admin of `token` under it (apply_impersonation); returns its id."""
    as_session(web, token)
    imp = start(web, target)
    web.execute("COMMIT")
    as_session(web, token)
    web.execute("SELECT dashboard.apply_impersonation(%s)", (imp,))
    return imp


def test_query_as_trigger_cannot_climb_back(su, web, app, ada):
    """The issue's reproducer: an AFTER INSERT trigger switches the role back
    to the login and calls create_admin."""
    as_session(web, ada)
    imp = start(web, "alice@example.com")
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.query_as(%s, 'INSERT INTO plainschema.feedback (msg) VALUES ($1) RETURNING id', %s)",
                    (imp, Jsonb(["x"])))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    assert no_mallory(su)
    # caught errors: every escape refused, the insert itself works
    got = probes(web)
    as_session(web, ada)
    imp = start(web, "alice@example.com")
    rows = [r[0] for r in web.execute(
        "SELECT * FROM dashboard.query_as(%s, 'INSERT INTO plainschema.guestbook (msg) VALUES ($1) RETURNING msg', %s)",
        (imp, Jsonb(["hi"])))]
    assert rows == [{"msg": "hi"}]
    assert one(web, "SELECT current_user") == "fb_web"
    web.execute("COMMIT")
    assert_confined(got, "imp_trigger", impersonated=True)
    assert no_mallory(su)


def test_apply_impersonation_confines_the_rest_of_the_transaction(su, web, app, ada):
    got = probes(web)
    imp = apply(web, ada, "alice@example.com")
    # the dashboard's own calls at the top level keep working ...
    res = one(web, "SELECT dashboard.browse(%s::regclass)", ("public.todos",))
    assert sorted(r["title"] for r in res["rows"]) == ["a1", "a2"]
    assert len(web.execute("SELECT * FROM dashboard.describe_table('public.todos')").fetchall()) == 3
    # ... but code run by the client's statements is confined
    web.execute("INSERT INTO plainschema.guestbook (msg) VALUES ('x')")
    web.execute("SELECT plainschema.probe('imp_toplevel')")
    for sql in ("SET ROLE fb_web", "RESET ROLE", "SET SESSION AUTHORIZATION fb_web",
                "SELECT set_config('role', 'fb_web', true)",
                "SELECT set_config('request.jwt.claims', '{}', true)",
                "SET request.jwt.claims = '{}'"):
        web.execute("SAVEPOINT s")
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql)
        assert e.value.sqlstate == "42501", sql
        web.execute("ROLLBACK TO SAVEPOINT s")
    # an API call that is not the client's plain call is refused too
    web.execute("SAVEPOINT s")
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT x FROM dashboard.browse('public.todos') x WHERE plainschema.probe('wrapped')")
    assert e.value.sqlstate == "42501" and REFUSAL in e.value.diag.message_primary
    web.execute("ROLLBACK TO SAVEPOINT s")
    assert one(web, "SELECT current_user") == "authenticated"
    web.execute("COMMIT")
    as_session(web, ada)
    web.execute("SELECT dashboard.stop_impersonation(%s)", (imp,))
    web.execute("COMMIT")
    for tag in ("imp_trigger", "imp_toplevel"):
        assert_confined(got, tag, impersonated=True)
    assert no_mallory(su)
    # the next transaction is the login's own again, free to change role
    assert one(web, "SELECT current_user") == "fb_web"
    web.execute("BEGIN")
    web.execute("SET LOCAL ROLE authenticated")
    web.execute("RESET ROLE")
    web.execute("SELECT set_config('request.jwt.claims', '{}', true)")
    web.execute("COMMIT")


def test_apply_impersonation_accepts_the_web_dashboards_to_json_calls(db, su, web, app, ada):
    """The web dashboard reads every set-returning API function as
    `SELECT to_json(t) FROM dashboard.fn($1, ..) t`; under apply_impersonation
    that shape (pg_catalog's to_json/to_jsonb, maybe ::text) is the client's
    plain API call. Anything else around the call, or a user function in it,
    is refused, and triggers fired by the call still cannot reach the API."""
    plain(db, """
        CREATE FUNCTION plainschema.to_json(r record) RETURNS json LANGUAGE plpgsql AS $f$
        BEGIN PERFORM plainschema.probe('user_to_json'); RETURN pg_catalog.to_json(r); END $f$;
        CREATE FUNCTION plainschema.name() RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN PERFORM plainschema.probe('user_arg'); RETURN 'public'; END $f$;
    """)
    a1 = one(su, "SELECT id FROM public.todos WHERE title = 'a1'")
    got = probes(web)
    imp = apply(web, ada, "alice@example.com")
    tables = [r[0] for r in web.execute("SELECT to_json(t) FROM dashboard.list_tables(%s) t", ("public",))]
    todos = [t for t in tables if t["name"] == "todos"]
    assert len(todos) == 1 and todos[0]["rls_enabled"] is True and todos[0]["primary_key"] == ["id"]
    cols = [r[0] for r in web.execute("SELECT pg_catalog.to_jsonb(t) FROM dashboard.describe_table(%s) t", ("public.todos",))]
    assert [c["name"] for c in cols] == ["id", "user_id", "title"]
    page = json.loads(one(web, "SELECT to_json(t)::text FROM dashboard.browse(%s, %s, %s) t",
                          ("public.todos", Jsonb([]), Jsonb([{"column": "title"}]))))
    assert [r["title"] for r in page["rows"]] == ["a1", "a2"]
    row = one(web, "SELECT to_json(t) FROM dashboard.update_row(%s, %s, %s) t",
              ("public.todos", Jsonb({"id": a1}), Jsonb({"title": "a1 edited"})))
    assert row["title"] == "a1 edited"
    assert one(web, "SELECT to_jsonb(t)::text FROM dashboard.insert_rows(%s, %s) t",
               ("public.todos", Jsonb([{"title": "a3"}]))) == "1"
    # the guestbook's trigger runs the probe: it still cannot reach the API
    assert one(web, "SELECT to_json(t) FROM dashboard.insert_rows(%s, %s) t",
               ("plainschema.guestbook", Jsonb([{"msg": "from the web"}]))) == 1
    # refused: a user function anywhere, or anything around the call
    for sql in ("SELECT plainschema.to_json(t) FROM dashboard.list_tables('public') t",
                "SELECT to_json(t) FROM dashboard.list_tables(plainschema.name()) t",
                "SELECT to_json(t) FROM dashboard.list_tables('public') t ORDER BY plainschema.probe('order')",
                "SELECT to_json(t) FROM dashboard.list_tables('public') t WHERE t.name = 'todos'",
                "SELECT to_json(t) FROM dashboard.list_tables('public') t, plainschema.guestbook g",
                "SELECT to_json(t) FROM dashboard.list_tables('public') t WHERE EXISTS (SELECT plainschema.probe('sub'))",
                "WITH x AS MATERIALIZED (SELECT * FROM dashboard.list_tables('public')) SELECT to_json(x) FROM x",
                "SELECT to_json(t) FROM (SELECT * FROM dashboard.list_tables('public') OFFSET 0) t",
                "SELECT to_json(t) FROM dashboard.list_tables('public') t UNION ALL SELECT to_json(1)",
                "SELECT json_agg(t) FROM dashboard.list_tables('public') t",
                "SELECT to_json(t.name) || plainschema.probe('concat')::text FROM dashboard.list_tables('public') t"):
        web.execute("SAVEPOINT s")
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql).fetchall()
        assert e.value.sqlstate == "42501" and REFUSAL in e.value.diag.message_primary, sql
        web.execute("ROLLBACK TO SAVEPOINT s")
    web.execute("COMMIT")
    assert_confined(got, "imp_trigger", impersonated=True)
    for tag in ("user_to_json", "user_arg", "order", "sub", "concat"):
        assert "api" not in got.get(tag, {}) or got[tag]["api"][0] == "42501", (tag, got[tag])
    assert no_mallory(su)
    assert sorted(r[0] for r in su.execute("SELECT title FROM public.todos")) == ["a1 edited", "a2", "a3"]
    assert one(su, "SELECT count(*) FROM plainschema.guestbook") == 1


def test_query_as_with_a_data_modifying_cte(su, web, app, ada):
    as_session(web, ada)
    imp = start(web, "alice@example.com")
    rows = [r[0] for r in web.execute(
        "SELECT * FROM dashboard.query_as(%s, 'with d as (delete from public.todos where title = $1 returning *) select title from d', %s)",
        (imp, Jsonb(["a1"])))]
    assert rows == [{"title": "a1"}]
    web.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM public.todos") == 1
    ev = one(su, "SELECT details FROM dashboard_auth.audit_log WHERE action = 'impersonation.query'")
    assert ev["rows"] == [{"title": "a1"}]
    # a viewer's impersonation stays read-only
    su.execute("SELECT dashboard_auth.create_admin('vic@example.com', %s, 'Vic', 'dashboard_viewer')", (PASSWORD,))
    status, vic, _ = web.execute("SELECT * FROM dashboard_auth.login('vic@example.com', %s)", (PASSWORD,)).fetchone()
    as_session(web, vic)
    vimp = start(web, "alice@example.com")
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.query_as(%s, 'with d as (delete from public.todos returning *) select * from d')", (vimp,))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    assert one(su, "SELECT count(*) FROM public.todos") == 1


# ------------------------------------------------------------------ item 3: string rules

def test_query_as_refuses_when_backslashes_escape_in_plain_strings(su, web, app, ada):
    su.execute("SELECT dashboard_auth.create_admin('vic@example.com', %s, 'Vic', 'dashboard_viewer')", (PASSWORD,))
    status, vic, _ = web.execute("SELECT * FROM dashboard_auth.login('vic@example.com', %s)", (PASSWORD,)).fetchone()
    as_session(web, vic)
    imp = start(web, "alice@example.com")
    web.execute("SET LOCAL standard_conforming_strings = off")
    sql = r"""select 'a\' ', set_config($r$role$r$, session_user, true) as r, query_to_xml($q$select current_user$q$, true, true, '') as x, ' \' ' as z"""
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.query_as(%s, %s)", (imp, sql))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")


# ------------------------------------------------------------------ item 7: attribution

def test_audit_attribution_comes_only_from_an_applied_impersonation(su, web, app, ada):
    su.execute("CREATE TABLE public.orders (id serial PRIMARY KEY, note text)")
    su.execute("GRANT ALL ON public.orders TO fluxbase_dashboard, authenticated")
    su.execute("GRANT USAGE ON SEQUENCE public.orders_id_seq TO fluxbase_dashboard, authenticated")
    su.execute("SELECT dashboard.enable_audit('public.orders')")
    forged = "00000000-0000-4000-8000-000000000042"
    web.execute("BEGIN")
    web.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"session_id": forged}),))
    web.execute("INSERT INTO public.orders (note) VALUES ('forged')")
    web.execute("COMMIT")
    imp = apply(web, ada, "alice@example.com")
    web.execute("INSERT INTO public.orders (note) VALUES ('real')")
    web.execute("COMMIT")
    rows = su.execute("""SELECT dashboard_auth.audit_details(id)->'rows'->0->'new'->>'note', impersonation_session_id
                         FROM dashboard_auth.audit_log WHERE action LIKE 'row.%%' ORDER BY id""").fetchall()
    assert rows == [("forged", None), ("real", imp)]


# ------------------------------------------------------------------ item 8: notifications

def test_change_notifications_carry_no_data(db, su, web):
    su.execute("CREATE TABLE public.secrets (id text PRIMARY KEY, v text)")
    su.execute("SELECT dashboard.watch_table('public.secrets')")
    stranger = db.conn("fb_plain")
    stranger.execute("LISTEN dashboard_changes")
    su.execute("INSERT INTO public.secrets VALUES ('alice-ssn-123-45-6789', 'x'), ('bob', 'y')")
    su.execute("UPDATE public.secrets SET v = 'z' WHERE id = 'bob'")
    su.execute("DELETE FROM public.secrets")
    got = [json.loads(n.payload) for n in stranger.notifies(timeout=5, stop_after=3)]
    assert [(g["schema"], g["table"], g["op"]) for g in got] == [
        ("public", "secrets", "INSERT"), ("public", "secrets", "UPDATE"), ("public", "secrets", "DELETE")]
    for g in got:
        assert set(g) == {"schema", "table", "op", "seq"} and isinstance(g["seq"], int)
    assert got[0]["seq"] < got[1]["seq"] < got[2]["seq"]
    assert "alice" not in json.dumps(got) and "bob" not in json.dumps(got)


def test_columns_of_extension_types_use_their_own_operators(su, web):
    """Operators are named by schema: citext's own `=` (in its schema), not a
    pg_catalog text comparison; filters, `in` and cursors across pages work."""
    su.execute("CREATE SCHEMA extensions")
    su.execute("CREATE EXTENSION citext SCHEMA extensions")
    su.execute("GRANT USAGE ON SCHEMA extensions TO PUBLIC")
    su.execute("CREATE TABLE public.handles (h extensions.citext PRIMARY KEY, n int)")
    su.execute("INSERT INTO public.handles SELECT 'User' || g, g FROM generate_series(1, 7) g")
    su.execute("GRANT SELECT ON public.handles TO fluxbase_dashboard")
    res = one(web, "SELECT dashboard.browse('public.handles', %s)", (Jsonb([{"column": "h", "op": "eq", "value": "USER3"}]),))
    assert res["rows"] == [{"h": "User3", "n": 3}]
    res = one(web, "SELECT dashboard.browse('public.handles', %s)",
              (Jsonb([{"column": "h", "op": "in", "value": ["user1", "USER2"]}]),))
    assert sorted(r["n"] for r in res["rows"]) == [1, 2]
    seen, after = [], None
    while True:
        res = one(web, "SELECT dashboard.browse('public.handles', page_size => 3, after => %s)",
                  (None if after is None else Jsonb(after),))
        seen += [r["n"] for r in res["rows"]]
        after = res["next_cursor"]
        if after is None:
            break
    assert sorted(seen) == list(range(1, 8)) and len(seen) == 7
