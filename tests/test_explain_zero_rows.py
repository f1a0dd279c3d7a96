"""dashboard.explain_zero_rows (issue 32, item 2): an UPDATE or DELETE run as a
user changed 0 rows; which rows would the admin's own view have matched, and
why did the user's policies exclude them?

The statement is read by PostgreSQL's parser; only its WHERE is searched, in
the admin's own view (the table's owner, or fluxbase_explorer for a
superuser's table), after every function and operator in it was checked to be
a non-volatile built-in of pg_catalog. Anything else is answered
`explained: false` and never runs: the planted functions below record every
call, and the tests assert they were never called.
"""
import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import as_session, one, setup_admin

WORLD = """
CREATE TABLE public.notes (id int PRIMARY KEY, owner uuid, title text, done boolean NOT NULL DEFAULT false);
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_own ON public.notes FOR SELECT TO authenticated USING (owner = auth.uid());
CREATE POLICY update_own ON public.notes FOR UPDATE TO authenticated USING (owner = auth.uid());
CREATE POLICY delete_own ON public.notes FOR DELETE TO authenticated USING (owner = auth.uid());
CREATE POLICY not_done ON public.notes AS RESTRICTIVE FOR UPDATE TO authenticated USING (NOT done);
GRANT SELECT, UPDATE, DELETE ON public.notes TO authenticated, service_role;
CREATE VIEW public.notes_view AS SELECT * FROM public.notes;

-- Planted code: every call leaves a trace (a row, or the sequence moving).
CREATE TABLE public.side_effects (n int);
CREATE SEQUENCE public.calls;
GRANT ALL ON public.side_effects, public.calls TO PUBLIC;
CREATE FUNCTION public.leak(int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS
$$ BEGIN INSERT INTO public.side_effects VALUES ($1); RETURN true; END $$;
CREATE FUNCTION public.peek(int) RETURNS boolean LANGUAGE plpgsql STABLE AS
$$ BEGIN PERFORM pg_catalog.nextval('public.calls'); RETURN true; END $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql STABLE AS
$$ BEGIN PERFORM pg_catalog.nextval('public.calls'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION public.peek_eq(int, int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
$$ BEGIN PERFORM pg_catalog.nextval('public.calls'); RETURN $1 = $2; END $$;
CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = public.peek_eq);
CREATE DOMAIN public.checked_int AS int CHECK (public.peek(VALUE));
"""


@pytest.fixture
def world(su):
    su.execute(WORLD)
    users = {n: one(su, "SELECT user_id FROM dashboard.invite_user(%s)", (f"{n}@example.com",)) for n in ("alice", "bob")}
    a, b = users["alice"], users["bob"]
    su.execute("""INSERT INTO public.notes VALUES (1, %s, 'a1', false), (2, %s, 'b2', false),
                  (3, %s, 'a3', true), (4, %s, 'b4', false), (5, NULL, 'orphan', false)""", (a, b, a, b))
    _, token = setup_admin(su)
    return {"users": users, "token": token}


@pytest.fixture
def admin(db, world):
    """fb_web under the admin's session (a transaction, as the web opens it)."""
    return as_session(db.conn("fb_web"), world["token"])


def explain(conn, as_user, sql, params=None, max_keys=None):
    if max_keys is None:
        return one(conn, "SELECT dashboard.explain_zero_rows(%s, %s, %s)", (as_user, sql, Jsonb(params or [])))
    return one(conn, "SELECT dashboard.explain_zero_rows(%s, %s, %s, %s)", (as_user, sql, Jsonb(params or []), max_keys))


def untouched(su):
    """No row changed, no planted function ran."""
    assert su.execute("SELECT id, title FROM public.notes ORDER BY id").fetchall() == [
        (1, "a1"), (2, "b2"), (3, "a3"), (4, "b4"), (5, "orphan")]
    assert one(su, "SELECT count(*) FROM public.side_effects") == 0
    assert one(su, "SELECT is_called FROM public.calls") is False


def test_the_rows_the_owner_sees_and_the_policy_that_excluded_them(db, su, world, admin):
    # The real thing first: as alice, the UPDATE changes nothing.
    sid = one(admin, "SELECT dashboard.start_impersonation('alice@example.com', 'ticket 12')")
    sql = "UPDATE public.notes SET title = 'x' WHERE id IN (2, 4) RETURNING id"
    assert admin.execute("SELECT * FROM dashboard.query_as(%s, %s)", (sid, sql)).fetchall() == []

    v = explain(admin, "alice@example.com", sql)
    assert v["explained"] is True and v["command"] == "update" and v["table"] == "public.notes"
    assert v["searched_as"] == "fluxbase_explorer", "a superuser's table is searched as fluxbase_explorer"
    assert v["matched"] == 2 and v["matched_label"] == "2 rows"
    assert v["keys"] == [{"id": 2}, {"id": 4}]
    assert v["allowed"] == 0 and v["needed"] is True
    assert "id" in v["where"]
    for kv, key in zip(v["verdicts"], v["keys"]):
        assert kv["key"] == key
        verdict = kv["verdict"]
        assert verdict["allowed"] is False and verdict["outcome"] == "0 rows"
        assert verdict["decided_by"] == ["no permissive policy allows it"]
        pol = {p["name"]: p for p in verdict["policies"]}
        assert pol["update_own"]["applies"] is True and pol["update_own"]["using"] is False
        assert pol["read_own"]["using"] is False
        assert pol["delete_own"]["applies"] is False

    # Her own row, but done: the restrictive policy is named.
    v = explain(admin, "alice@example.com", "UPDATE public.notes SET title = 'x' WHERE id = 3 RETURNING id")
    assert v["keys"] == [{"id": 3}]
    assert v["verdicts"][0]["verdict"]["decided_by"] == ["restrictive: not_done"]

    # DELETE, with a parameter bound as query_as binds it.
    v = explain(admin, "bob@example.com", "DELETE FROM public.notes WHERE title = $1 RETURNING id", ["orphan"])
    assert v["command"] == "delete" and v["keys"] == [{"id": 5}]
    assert v["verdicts"][0]["verdict"]["decided_by"] == ["no permissive policy allows it"]
    # A subquery in SET or RETURNING is never evaluated: only the WHERE is.
    v = explain(admin, "alice@example.com",
                "UPDATE public.notes SET title = (SELECT 'x') WHERE id = 2 RETURNING (SELECT public.leak(id))")
    assert v["explained"] is True and v["keys"] == [{"id": 2}]
    admin.execute("COMMIT")
    untouched(su)


def test_the_first_keys_and_a_bounded_count(su, world, admin):
    su.execute("INSERT INTO public.notes SELECT g, %s, 'bulk', false FROM generate_series(100, 1599) g",
               (world["users"]["bob"],))
    v = explain(admin, "alice@example.com", "UPDATE public.notes SET done = true WHERE owner = $1::uuid RETURNING id",
                [str(world["users"]["bob"])], 2)
    assert v["matched"] == 1001 and v["matched_label"] == "more than 1000 rows"
    assert v["keys"] == [{"id": 2}, {"id": 4}] and len(v["verdicts"]) == 2
    v = explain(admin, "alice@example.com", "DELETE FROM public.notes WHERE title = 'bulk' RETURNING id", None, 10)
    assert [k["id"] for k in v["keys"]] == list(range(100, 110)) and len(v["verdicts"]) == 10
    # No primary key: the count, but no key to explain.
    su.execute("CREATE TABLE public.logs (line text); INSERT INTO public.logs VALUES ('a'), ('b')")
    v = explain(admin, "alice@example.com", "DELETE FROM public.logs WHERE line <> 'z' RETURNING line")
    assert v["explained"] is True and v["matched"] == 2 and v["keys"] == [] and "no primary key" in v["why"]
    # UPDATE ONLY a parent: its children's rows are not counted.
    su.execute("CREATE TABLE public.child () INHERITS (public.logs); INSERT INTO public.child VALUES ('c')")
    assert explain(admin, "alice@example.com", "DELETE FROM public.logs RETURNING line")["matched"] == 3
    assert explain(admin, "alice@example.com", "DELETE FROM ONLY public.logs RETURNING line")["matched"] == 2
    # A WHERE that matches nothing in the owner's view either.
    v = explain(admin, "alice@example.com", "DELETE FROM public.notes WHERE id = -1 RETURNING id")
    assert v["explained"] is True and v["matched"] == 0 and v["keys"] == [] and v["verdicts"] == []


def test_a_statement_that_changes_rows_needs_no_explanation(su, world, admin):
    v = explain(admin, "alice@example.com", "UPDATE public.notes SET title = 'x' WHERE id = 1 RETURNING id")
    assert v["explained"] is True and v["allowed"] == 1 and v["needed"] is False
    assert v["verdicts"][0]["verdict"]["allowed"] is True
    assert v["verdicts"][0]["verdict"]["decided_by"] == ["update_own", "read_own (select)", "update_own (with check)"]
    # service_role bypasses RLS: every row it matches it may change.
    v = explain(admin, "service_role", "DELETE FROM public.notes WHERE id < 3 RETURNING id")
    assert v["allowed"] == 2 and v["needed"] is False
    admin.execute("COMMIT")
    untouched(su)


REFUSED_WHERES = [
    ("public.leak(id)", "public.leak, which is not a built-in function of pg_catalog"),
    ("public.peek(id)", "public.peek, which is not a built-in function of pg_catalog"),
    ("id OPERATOR(public.===) 1", "public.peek_eq, which is not a built-in function of pg_catalog"),
    ("lower(title) = 'a1'", "public.lower, which is not a built-in function of pg_catalog"),
    ("id = 3::public.checked_int", "a domain that is not built in"),
    ("random() < 2", "pg_catalog.random, which is volatile"),
    ("nextval('public.calls') > 0", "pg_catalog.nextval, which is volatile"),
    ("table_to_xml('public.side_effects', true, false, '') IS NOT NULL", "pg_catalog.table_to_xml, which reads tables by name"),
    ("owner IN (SELECT id FROM auth.users)", "subquery"),
    ("EXISTS (SELECT 1 FROM public.notes n2 WHERE public.leak(n2.id))", "subquery"),

]


def test_what_the_where_may_call_is_checked_and_nothing_else_runs(su, world, admin):
    # (public first: `lower` resolves to the planted one, as it would for the statement)
    admin.execute("SET LOCAL search_path = public, pg_catalog")
    for where, why in REFUSED_WHERES:
        for sql in (f"UPDATE public.notes SET title = 'x' WHERE {where} RETURNING id",
                    f"DELETE FROM public.notes WHERE {where} RETURNING id"):
            v = explain(admin, "alice@example.com", sql)
            assert v["explained"] is False, (sql, v)
            assert why in v["why"], (sql, v["why"])
            assert "keys" not in v
    admin.execute("COMMIT")
    untouched(su)


NOT_EXPLAINED = [
    ("UPDATE public.notes n SET title = 'x' FROM public.side_effects s WHERE s.n = n.id RETURNING n.id", "update",
     "UPDATE ... FROM other tables"),
    ("DELETE FROM public.notes USING public.side_effects s WHERE s.n = notes.id RETURNING notes.id", "delete",
     "DELETE ... USING other tables"),
    ("WITH d AS (SELECT 1) DELETE FROM public.notes WHERE id = 1 RETURNING id", "delete", "WITH clause"),
    ("UPDATE public.notes_view SET title = 'x' WHERE id = 2 RETURNING id", "update", "view"),
    ("SELECT * FROM public.notes WHERE public.leak(id)", "select", "only an UPDATE or DELETE"),
    ("INSERT INTO public.notes VALUES (9) RETURNING id", "insert", "only an UPDATE or DELETE"),
    ("DELETE FROM public.notes WHERE CURRENT OF c RETURNING id", "delete", "CURRENT OF"),
    ("UPDATE public.notes SET title = 'x' WHERE CURRENT OF c RETURNING id", "update", "CURRENT OF"),
]


def test_other_statements_are_not_explained(su, world, admin):
    for sql, command, why in NOT_EXPLAINED:
        v = explain(admin, "alice@example.com", sql)
        assert v["explained"] is False and v["command"] == command, (sql, v)
        assert why in v["why"], (sql, v["why"])
    admin.execute("COMMIT")
    untouched(su)


BAD_INPUT = [
    (("alice@example.com'; DROP TABLE public.notes; --", "DELETE FROM public.notes WHERE id = 2 RETURNING id"), "22023"),
    (("' OR 1=1 --", "DELETE FROM public.notes WHERE id = 2 RETURNING id"), "22023"),
    (("nobody@example.com", "DELETE FROM public.notes WHERE id = 2 RETURNING id"), "P0002"),
    ((None, "DELETE FROM public.notes WHERE id = 2 RETURNING id"), "22004"),
    (("alice@example.com", None), "22004"),
    (("alice@example.com", "DELETE FROM public.notes WHERE id = 2 RETURNING id; DROP TABLE public.notes"), "42601"),
    (("alice@example.com", "DELETE FROM public.notes WHERE id = 2"), "22023"),  # the console's rule: RETURNING
    (("alice@example.com", "DELETE FROM public.notes WHERE pg_sleep(10) IS NULL RETURNING id"), "42501"),
    (("alice@example.com", "DELETE FROM public.nope WHERE id = 2 RETURNING id"), "42P01"),
    (("alice@example.com", "DELETE FROM public.notes WHERE id = $1 RETURNING id"), "42P02"),  # no params given
]


def test_bad_input(su, world, admin):
    for args, state in BAD_INPUT:
        with pytest.raises(psycopg.Error) as e:
            admin.execute("SELECT dashboard.explain_zero_rows(%s, %s)", args)
        assert e.value.sqlstate == state, (args, e.value)
        admin.execute("ROLLBACK")
        as_session(admin, world["token"])
    # params are text, as query_as binds them: comparing an int column to one needs a cast
    with pytest.raises(psycopg.Error) as e:
        explain(admin, "alice@example.com", "DELETE FROM public.notes WHERE id = $1 RETURNING id", ["2"])
    assert e.value.sqlstate == "42883"
    admin.execute("ROLLBACK")
    untouched(su)


def test_injection_in_every_text_argument(su, world, admin):
    v = explain(admin, "alice@example.com",
                "UPDATE public.notes SET title = 'x' WHERE title = '''); DROP TABLE public.notes; --' RETURNING id")
    assert v["explained"] is True and v["matched"] == 0
    v = explain(admin, "alice@example.com", "UPDATE public.notes SET title = 'x' WHERE title = $1 RETURNING id",
                ["x'); DROP TABLE public.notes; --"])
    assert v["matched"] == 0
    v = explain(admin, "alice@example.com", "UPDATE public.notes SET title = 'x' WHERE title = $1 RETURNING id", ["b2"])
    assert v["keys"] == [{"id": 2}]
    for bad in ('{"a": 1}', '"x"'):
        with pytest.raises(psycopg.Error) as e:
            admin.execute("SELECT dashboard.explain_zero_rows('alice@example.com', 'DELETE FROM public.notes RETURNING id', %s::jsonb)", (bad,))
        assert e.value.sqlstate == "22023"
        admin.execute("ROLLBACK")
        as_session(admin, world["token"])
    for n in (0, 11, -1):
        with pytest.raises(psycopg.Error) as e:
            explain(admin, "alice@example.com", "DELETE FROM public.notes WHERE id = 2 RETURNING id", None, n)
        assert e.value.sqlstate == "22023"
        admin.execute("ROLLBACK")
        as_session(admin, world["token"])
    # Hostile names: schema, table, key columns, policy; the keys come back by their real names.
    su.execute("""
        CREATE SCHEMA "we""ird";
        CREATE TABLE "we""ird"."t'; x" ("k ""1" text, k2 int, "v'al" text, PRIMARY KEY ("k ""1", k2));
        ALTER TABLE "we""ird"."t'; x" ENABLE ROW LEVEL SECURITY;
        CREATE POLICY "p""'; --" ON "we""ird"."t'; x" TO authenticated USING ("v'al" = auth.email());
        GRANT USAGE ON SCHEMA "we""ird" TO authenticated;
        GRANT SELECT, DELETE ON "we""ird"."t'; x" TO authenticated;
        INSERT INTO "we""ird"."t'; x" VALUES ('a''b', 1, 'alice@example.com'), ('a''b', 2, 'bob@example.com');
    """)
    v = explain(admin, "alice@example.com", """DELETE FROM "we""ird"."t'; x" AS "x"" y" WHERE "x"" y"."v'al" LIKE '%example%' RETURNING 1""")
    assert v["table"] == "we\"ird.t'; x"
    assert v["keys"] == [{'k "1': "a'b", "k2": 1}, {'k "1': "a'b", "k2": 2}]
    assert [kv["verdict"]["allowed"] for kv in v["verdicts"]] == [True, False]
    assert v["verdicts"][1]["verdict"]["policies"][0]["name"] == "p\"'; --"
    # A whole-row reference deparses with the table's alias.
    v = explain(admin, "alice@example.com", """DELETE FROM "we""ird"."t'; x" t WHERE t IS NOT NULL AND k2 = 2 RETURNING 1""")
    assert v["keys"] == [{'k "1': "a'b", "k2": 2}]
    admin.execute("COMMIT")
    untouched(su)
    assert one(su, """SELECT count(*) FROM "we""ird"."t'; x" """) == 2


def test_searched_as_the_owner_or_the_caller_and_timeouts(db, su, world, admin):
    su.execute("ALTER TABLE public.notes OWNER TO fb_plain")
    v = explain(admin, "alice@example.com", "DELETE FROM public.notes WHERE id = 2 RETURNING id")
    assert v["searched_as"] == "fb_plain" and v["keys"] == [{"id": 2}]
    admin.execute("COMMIT")
    # Without an admin session: the caller's own rights (fb_web may not read notes).
    web = db.conn("fb_web")
    v = explain(web, "alice@example.com", "DELETE FROM public.notes WHERE id = 2 RETURNING id")
    assert v["explained"] is False
    assert "permission denied" in v["why"]
    # A WHERE that takes too long: its own timeout (2 s) answers, nothing is raised ...
    su.execute("INSERT INTO public.notes SELECT g, NULL, 'slow', false FROM generate_series(100, 2099) g")
    slow = "DELETE FROM public.notes WHERE md5(repeat(title, 500000)) = 'x' RETURNING id"
    as_session(admin, world["token"])
    v = explain(admin, "alice@example.com", slow)
    assert v["explained"] is False and "took longer than 2000 ms" in v["why"]
    # ... and the transaction goes on; a caller's own shorter statement_timeout still cancels its statement.
    assert one(admin, "SELECT 1") == 1
    admin.execute("SET LOCAL statement_timeout = '300ms'")
    with pytest.raises(psycopg.Error) as e:
        explain(admin, "alice@example.com", slow)
    assert e.value.sqlstate == "57014"
    admin.execute("ROLLBACK")


def test_who_may_call_and_audit(db, su, world):
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', 'a-long-enough-passphrase', 'V', 'dashboard_viewer')")
    vtoken = one(su, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', 'a-long-enough-passphrase')")
    sql = "DELETE FROM public.notes WHERE id = 2 RETURNING id"
    for t in (world["token"], vtoken):
        web = as_session(db.conn("fb_web"), t)
        assert explain(web, "alice@example.com", sql)["keys"] == [{"id": 2}]
        web.execute("COMMIT")
    plain = db.conn("fb_plain")
    with pytest.raises(psycopg.Error) as e:
        explain(plain, "alice@example.com", sql)
    assert e.value.sqlstate == "42501"
    app = db.conn("fb_app")
    app.execute("SET ROLE authenticated")
    with pytest.raises(psycopg.Error) as e:
        explain(app, "alice@example.com", sql)
    assert e.value.sqlstate == "42501"
    rows = su.execute("SELECT actor, details FROM dashboard_auth.audit_log WHERE action = 'rls.explain_zero_rows' ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["root@example.com", "viewer@example.com"]
    d = rows[-1][1]
    assert d["as_user"] == "alice@example.com" and d["sql"] == sql and d["matched"] == 1 and d["keys"] == [{"id": 2}]
    # explain_zero_rows records itself once, not each key's explanation
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'rls.explain_access'") == 0
    untouched(su)
