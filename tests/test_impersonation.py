"""Impersonation: RLS sees the chosen app user; every step is on record."""
import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin

FIXTURE = """
CREATE TABLE public.todos (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL DEFAULT auth.uid() REFERENCES auth.users (id) ON DELETE CASCADE,
    title text NOT NULL,
    done boolean NOT NULL DEFAULT false
);
ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY todos_select ON public.todos FOR SELECT TO authenticated USING (auth.uid() = user_id);
CREATE POLICY todos_insert ON public.todos FOR INSERT TO authenticated WITH CHECK (auth.uid() = user_id);
CREATE POLICY todos_update ON public.todos FOR UPDATE TO authenticated USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
CREATE POLICY todos_delete ON public.todos FOR DELETE TO authenticated USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.todos TO authenticated, service_role;
GRANT USAGE ON SEQUENCE public.todos_id_seq TO authenticated, service_role;

CREATE TABLE public.posts (id serial PRIMARY KEY, title text NOT NULL);
ALTER TABLE public.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY posts_read ON public.posts FOR SELECT TO anon, authenticated USING (true);
GRANT SELECT ON public.posts TO anon, authenticated, service_role;

CREATE TABLE public.admin_notes (id serial PRIMARY KEY, note text NOT NULL);
ALTER TABLE public.admin_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_only ON public.admin_notes FOR SELECT TO authenticated
    USING (coalesce((auth.jwt() -> 'app_metadata' ->> 'is_admin')::boolean, false));
GRANT SELECT ON public.admin_notes TO authenticated, service_role;

-- A function an attacker would love: changes role and settings from inside a query.
CREATE FUNCTION public.sneaky_role() RETURNS int LANGUAGE plpgsql AS
$$ BEGIN PERFORM set_config('role', 'service_role', true); RETURN 1; END $$;
CREATE FUNCTION public.sneaky_path() RETURNS int LANGUAGE plpgsql AS
$$ BEGIN PERFORM set_config('search_path', 'evil', false); PERFORM set_config('work_mem', '77MB', true); RETURN 1; END $$;
CREATE FUNCTION public.sneaky_claims() RETURNS int LANGUAGE plpgsql AS
$$ BEGIN PERFORM set_config('request.jwt.claims', '{"sub":"x"}', true); RETURN 1; END $$;
"""

ESCAPES = [
    ("SET ROLE postgres", "42501"),
    ("SET LOCAL ROLE service_role", "42501"),
    ("set role service_role;", "42501"),
    ("RESET ROLE", "42501"),
    ("RESET ALL", "42501"),
    ("SET search_path = evil", "42501"),
    ("DO $$ BEGIN EXECUTE 'SET ROLE postgres'; END $$", "42501"),
    ("COPY public.todos TO STDOUT", "42501"),
    ("BEGIN", "42501"),
    ("COMMIT", "42501"),
    ("ROLLBACK", "42501"),
    ("START TRANSACTION", "42501"),
    ("SAVEPOINT s", "42501"),
    ("PREPARE p AS SELECT 1", "42501"),
    ("DISCARD ALL", "42501"),
    ("SELECT 1; SET ROLE postgres", "42601"),
    ("SELECT 1; SELECT 2", "42601"),
    ("SELECT set_config('role', 'postgres', false)", "42501"),
    ("SELECT pg_catalog.set_config('role', 'service_role', true)", "42501"),
    ("SELECT \"set_config\"('request.jwt.claims', '{}', false)", "42501"),
    ("SELECT * FROM public.todos WHERE id = (SELECT set_config('role','service_role',true))::int", "42501"),
    ("SELECT U&\"\\0073et_config\"('role', 'service_role', false)", "42501"),
    ("SELECT dblink_exec('dbname=postgres', 'SET ROLE postgres')", "42501"),
    ("SELECT lo_import('/etc/passwd')", "42501"),
    ("SELECT pg_read_file('/etc/passwd')", "42501"),
    ("SELECT query_to_xml('SELECT 1', true, true, '')", "42501"),
    ("SELECT * INTO public.stolen FROM public.todos", "42501"),
    ("INSERT INTO public.todos (title) VALUES ('no returning')", "22023"),
    ("CREATE TABLE public.x (a int)", "42501"),
    ("GRANT ALL ON public.todos TO anon", "42501"),
    ("ALTER ROLE authenticated BYPASSRLS", "42501"),
    ("SELECT 'unterminated", "42601"),
    ("SELECT 1) UNION (SELECT 2", "42601"),
    ("", "22023"),
]


@pytest.fixture
def app(su):
    su.execute(FIXTURE)
    users = {}
    for name, meta in [("alice", {}), ("bob", {}), ("carol", {"is_admin": True})]:
        uid = one(su, "SELECT user_id FROM dashboard.invite_user(%s)", (f"{name}@example.com",))
        if meta:
            su.execute("UPDATE auth.users SET raw_app_meta_data = raw_app_meta_data || %s WHERE id = %s", (Jsonb(meta), uid))
        users[name] = uid
    for name, n in [("alice", 2), ("bob", 3), ("carol", 1)]:
        for i in range(n):
            su.execute("INSERT INTO public.todos (user_id, title) VALUES (%s, %s)", (users[name], f"{name} todo {i}"))
    su.execute("INSERT INTO public.posts (title) VALUES ('hello'), ('world')")
    su.execute("INSERT INTO public.admin_notes (note) VALUES ('secret plan')")
    return users


def start(conn, target, reason="debugging ticket #42"):
    return one(conn, "SELECT dashboard.start_impersonation(%s, %s)", (target, reason))


def q(conn, sid, sql, params=None):
    return [r[0] for r in conn.execute("SELECT * FROM dashboard.query_as(%s, %s, %s)", (sid, sql, Jsonb(params or []))).fetchall()]


def err(conn, sql, args=()):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, args)
    return e.value.sqlstate


def login(web, su, email, role):
    su.execute("SELECT dashboard_auth.create_admin(%s, %s, 'X', %s)", (email, PASSWORD, role))
    status, token, _ = web.execute("SELECT * FROM dashboard_auth.login(%s, %s)", (email, PASSWORD)).fetchone()
    assert status == "ok"
    return token


def test_apply_as_each_user_sees_exactly_their_rows(app, web, su):
    sids = {n: start(web, n + "@example.com") for n in app}
    for name, count in [("alice", 2), ("bob", 3), ("carol", 1)]:
        web.execute("BEGIN")
        web.execute("SELECT dashboard.apply_impersonation(%s)", (sids[name],))
        assert one(web, "SELECT current_user") == "authenticated"
        assert one(web, "SELECT auth.uid()") == app[name]
        assert one(web, "SELECT auth.email()") == f"{name}@example.com"
        assert one(web, "SELECT auth.role()") == "authenticated"
        claims = one(web, "SELECT auth.jwt()")
        assert set(claims) >= {"sub", "role", "email", "aud", "app_metadata", "user_metadata", "iat", "exp", "session_id"}
        assert claims["session_id"] == str(sids[name]) and claims["exp"] > claims["iat"]
        titles = [r[0] for r in web.execute("SELECT title FROM public.todos ORDER BY title").fetchall()]
        assert len(titles) == count and all(t.startswith(name) for t in titles)
        assert one(web, "SELECT count(*) FROM public.posts") == 2
        assert one(web, "SELECT count(*) FROM public.admin_notes") == (1 if name == "carol" else 0)
        # changes: own rows only
        other = app["bob" if name != "bob" else "alice"]
        assert web.execute("UPDATE public.todos SET done = true WHERE user_id = %s", (other,)).rowcount == 0
        assert web.execute("UPDATE public.todos SET done = true").rowcount == count
        assert web.execute("INSERT INTO public.todos (title) VALUES ('mine') RETURNING user_id").fetchone()[0] == app[name]
        assert err(web, "INSERT INTO public.todos (user_id, title) VALUES (%s, 'forged')", (other,)) == "42501"
        web.execute("ROLLBACK")
        assert one(web, "SELECT current_user") == "fb_web"
        assert one(web, "SELECT auth.uid()") is None
    assert one(su, "SELECT count(*) FROM public.todos WHERE done") == 0


def test_anon_and_service_role_behave_as_in_supabase(app, web):
    anon, service = start(web, "anon"), start(web, "service_role")
    web.execute("BEGIN")
    web.execute("SELECT dashboard.apply_impersonation(%s)", (anon,))
    assert one(web, "SELECT current_user") == "anon"
    assert one(web, "SELECT auth.uid()") is None and one(web, "SELECT auth.role()") == "anon"
    assert one(web, "SELECT count(*) FROM public.posts") == 2
    assert err(web, "SELECT count(*) FROM public.todos") == "42501"
    web.execute("ROLLBACK")
    web.execute("BEGIN")
    web.execute("SELECT dashboard.apply_impersonation(%s)", (service,))
    assert one(web, "SELECT current_user") == "service_role"
    assert one(web, "SELECT count(*) FROM public.todos") == 6  # BYPASSRLS
    assert one(web, "SELECT count(*) FROM public.admin_notes") == 1
    web.execute("ROLLBACK")
    assert q(web, anon, "SELECT count(*) AS n FROM public.posts") == [{"n": 2}]
    assert q(web, service, "SELECT count(*) AS n FROM public.todos") == [{"n": 6}]


def test_nothing_of_the_dashboard_is_reachable_while_impersonating(app, web):
    for target in ("alice@example.com", "anon", "service_role"):
        sid = start(web, target)
        for sql in ["SELECT * FROM dashboard_auth.users", "SELECT * FROM dashboard_auth.audit_log",
                    "SELECT * FROM dashboard_auth.sessions", "SELECT * FROM dashboard_auth.credentials",
                    "SELECT * FROM auth.users", "SELECT * FROM auth.impersonation_sessions",
                    "SELECT * FROM dashboard.list_users()", "SELECT dashboard_auth.needs_setup()",
                    "SELECT dashboard.start_impersonation('anon', 'again')",
                    "SELECT dashboard.apply_impersonation(gen_random_uuid())"]:
            web.execute("BEGIN")
            web.execute("SELECT dashboard.apply_impersonation(%s)", (sid,))
            assert err(web, sql) == "42501", (target, sql)
            web.execute("ROLLBACK")
            if "dashboard." not in sql:
                with pytest.raises(psycopg.Error) as e:
                    q(web, sid, sql)
                assert e.value.sqlstate == "42501", (target, sql)


def test_query_as_reads_and_writes_as_the_target_and_audits(app, db, web, su):
    token = setup_admin(su)[1]
    sid = one(as_session(web, token), "SELECT dashboard.start_impersonation('alice@example.com', 'ticket 7: missing todos')")
    web.execute("COMMIT")
    as_session(web, token)
    rows = q(web, sid, "SELECT title, user_id FROM public.todos ORDER BY title")
    assert [r["title"] for r in rows] == ["alice todo 0", "alice todo 1"]
    new = q(web, sid, "INSERT INTO public.todos (title) VALUES ($1) RETURNING id, title, user_id", ["from query_as"])
    assert new[0]["user_id"] == str(app["alice"]) and new[0]["title"] == "from query_as"
    bob_todo = one(su, "SELECT id FROM public.todos WHERE user_id = %s LIMIT 1", (app["bob"],))
    assert q(web, sid, "UPDATE public.todos SET done = true WHERE id = $1::bigint RETURNING id", [bob_todo]) == []
    assert q(web, sid, "DELETE FROM public.todos WHERE title = $1 RETURNING id", ["alice todo 0"]) != []
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'INSERT INTO public.todos (user_id, title) VALUES ($1::uuid, $2) RETURNING id', %s)",
               (sid, Jsonb([str(app["bob"]), "forged"]))) == "42501"
    web.execute("ROLLBACK")
    # committed work (autocommit call, no admin session) is audited under the db actor
    q(web, start(web, "alice@example.com"), "UPDATE public.todos SET done = true RETURNING id")
    as_session(web, token)
    q(web, sid, "INSERT INTO public.todos (title) VALUES ('audited') RETURNING id, title")
    web.execute("COMMIT")
    ev = su.execute(
        """SELECT action, actor, details, impersonation_session_id FROM dashboard_auth.audit_log
           WHERE impersonation_session_id = %s ORDER BY id""", (sid,)).fetchall()
    assert [e[0] for e in ev] == ["impersonation.start", "impersonation.query"]
    assert ev[0][1] == "root@example.com"
    assert ev[0][2]["reason"] == "ticket 7: missing todos" and ev[0][2]["target_user_id"] == str(app["alice"])
    assert ev[1][2]["sql"].startswith("INSERT INTO public.todos") and ev[1][2]["rows"][0]["title"] == "audited"
    assert ev[1][2]["sub"] == str(app["alice"])
    rec = su.execute("SELECT admin_user_id, actor, target_user_id, target_role, impersonation_type, reason, ip, read_only "
                     "FROM auth.impersonation_sessions WHERE id = %s", (sid,)).fetchone()
    assert rec[1:6] == ("root@example.com", app["alice"], "authenticated", "user", "ticket 7: missing todos")
    assert rec[0] is not None and rec[7] is False
    # reads are not audited as changes
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'impersonation.query'") == 2


def test_every_escape_fails_and_leaves_the_caller_unchanged(app, web):
    sid = start(web, "alice@example.com")
    web.execute("SELECT set_config('request.jwt.claims', '{\"sub\":\"caller\"}', false)")
    web.execute("SET search_path = public, pg_catalog")
    before = web.execute("SELECT current_user, session_user, current_setting('request.jwt.claims', true), "
                         "current_setting('search_path'), current_setting('work_mem'), current_setting('transaction_read_only')").fetchone()
    for sql, state in ESCAPES:
        with pytest.raises(psycopg.Error) as e:
            q(web, sid, sql)
        assert e.value.sqlstate == state, sql
        after = web.execute("SELECT current_user, session_user, current_setting('request.jwt.claims', true), "
                            "current_setting('search_path'), current_setting('work_mem'), current_setting('transaction_read_only')").fetchone()
        assert after == before, sql
    # engine-level checks: a function in the statement that changes role or claims is refused ...
    for fn in ("sneaky_role", "sneaky_claims"):
        with pytest.raises(psycopg.Error) as e:
            q(web, sid, f"SELECT public.{fn}()")
        assert e.value.sqlstate == "42501", fn
        assert web.execute("SELECT current_user, session_user, current_setting('request.jwt.claims', true), "
                           "current_setting('search_path'), current_setting('work_mem'), current_setting('transaction_read_only')").fetchone() == before
    # ... and any other setting it changes is put back
    assert q(web, sid, "SELECT public.sneaky_path() AS x") == [{"x": 1}]
    assert web.execute("SELECT current_user, session_user, current_setting('request.jwt.claims', true), "
                       "current_setting('search_path'), current_setting('work_mem'), current_setting('transaction_read_only')").fetchone() == before
    # reads run read-only: a volatile function can't write through a SELECT
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT nextval(''public.todos_id_seq'')')", (sid,)) == "25006"


def test_errors_inside_a_transaction_restore_the_caller(app, web):
    sid = start(web, "alice@example.com")
    web.execute("BEGIN")
    web.execute("SELECT set_config('request.jwt.claims', 'mine', true)")
    web.execute("SAVEPOINT a")
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT 1/0')", (sid,)) == "22012"
    web.execute("ROLLBACK TO SAVEPOINT a")
    assert web.execute("SELECT current_user, current_setting('request.jwt.claims', true)").fetchone() == ("fb_web", "mine")
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT public.sneaky_role()')", (sid,)) == "42501"
    web.execute("ROLLBACK TO SAVEPOINT a")
    assert web.execute("SELECT current_user, current_setting('request.jwt.claims', true)").fetchone() == ("fb_web", "mine")
    assert q(web, sid, "SELECT auth.email() AS e") == [{"e": "alice@example.com"}]
    assert web.execute("SELECT current_user, current_setting('request.jwt.claims', true)").fetchone() == ("fb_web", "mine")
    web.execute("ROLLBACK")


def test_expired_stopped_and_foreign_sessions_are_refused(app, db, web, su):
    sid = start(web, "bob@example.com")
    su.execute("UPDATE auth.impersonation_sessions SET started_at = now() - interval '2 hours', "
               "expires_at = now() - interval '1 hour' WHERE id = %s", (sid,))
    assert err(web, "SELECT dashboard.apply_impersonation(%s)", (sid,)) == "55000"
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT 1')", (sid,)) == "55000"
    sid2 = start(web, "bob@example.com")
    web.execute("SELECT dashboard.stop_impersonation(%s)", (sid2,))
    assert one(su, "SELECT ended_at IS NOT NULL FROM auth.impersonation_sessions WHERE id = %s", (sid2,))
    assert err(web, "SELECT dashboard.apply_impersonation(%s)", (sid2,)) == "55000"
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT 1')", (sid2,)) == "55000"
    assert err(web, "SELECT dashboard.stop_impersonation(%s)", (sid2,)) == "55000"
    assert err(web, "SELECT dashboard.apply_impersonation(gen_random_uuid())") == "P0002"
    assert err(web, "SELECT dashboard.apply_impersonation(NULL)") == "22004"
    # another admin's session
    root = setup_admin(su)[1]
    other = login(web, su, "other@example.com", "dashboard_admin")
    theirs = one(as_session(web, root), "SELECT dashboard.start_impersonation('alice@example.com', 'root debugging')")
    web.execute("COMMIT")
    as_session(web, other)
    assert err(web, "SELECT dashboard.apply_impersonation(%s)", (theirs,)) == "42501"
    web.execute("ROLLBACK")
    as_session(web, other)
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT 1')", (theirs,)) == "42501"
    web.execute("ROLLBACK")
    assert err(web, "SELECT dashboard.apply_impersonation(%s)", (theirs,)) == "42501"  # db:fb_web is not root
    # max_duration decides the expiry
    web.execute("""SELECT dashboard_auth.set_setting('impersonation.max_duration', '"5 minutes"')""")
    s3 = start(web, "anon")
    assert one(su, "SELECT expires_at - started_at FROM auth.impersonation_sessions WHERE id = %s", (s3,)).total_seconds() == 300


def test_viewer_impersonates_read_only(app, db, web, su):
    setup_admin(su)
    token = login(web, su, "viewer@example.com", "dashboard_viewer")
    sid = one(as_session(web, token), "SELECT dashboard.start_impersonation('alice@example.com', 'look only')")
    web.execute("COMMIT")
    assert one(su, "SELECT read_only FROM auth.impersonation_sessions WHERE id = %s", (sid,)) is True
    as_session(web, token)
    assert len(q(web, sid, "SELECT id FROM public.todos")) == 2
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'DELETE FROM public.todos RETURNING id')", (sid,)) == "42501"
    web.execute("ROLLBACK")
    as_session(web, token)
    web.execute("SELECT dashboard.apply_impersonation(%s)", (sid,))
    assert one(web, "SELECT count(*) FROM public.todos") == 2
    assert err(web, "DELETE FROM public.todos") == "25006"
    web.execute("ROLLBACK")
    as_session(web, token)
    web.execute("SELECT dashboard.apply_impersonation(%s)", (sid,))
    assert err(web, "SET transaction_read_only = off") == "25001"
    web.execute("ROLLBACK")
    assert one(su, "SELECT count(*) FROM public.todos") == 6


def test_start_validates_target_and_reason(app, web, su):
    assert start(web, str(app["alice"]))
    assert start(web, "  ALICE@example.com ")
    for target, reason, state in [
        ("alice@example.com", None, "22004"),
        ("alice@example.com", "   ", "22023"),
        (None, "r", "22004"),
        ("nobody@example.com", "r", "P0002"),
        ("00000000-0000-0000-0000-000000000000", "r", "P0002"),
        ("postgres", "r", "22023"),
        ("x'; DROP TABLE auth.users; --", "r", "22023"),
        ("' OR '1'='1", "r", "22023"),
        ("authenticated", "r", "22023"),
    ]:
        assert err(web, "SELECT dashboard.start_impersonation(%s, %s)", (target, reason)) == state, (target, reason)
    evil = "x'); DROP TABLE auth.users; --"
    sid = start(web, "anon", evil)
    assert one(su, "SELECT reason FROM auth.impersonation_sessions WHERE id = %s", (sid,)) == evil
    assert one(su, "SELECT count(*) FROM auth.users") == 3
    assert err(web, "SELECT * FROM dashboard.query_as(%s, NULL)", (sid,)) == "22004"
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT $1', '{\"a\":1}')", (sid,)) == "22023"
    assert q(web, sid, "SELECT $1 AS a, $2::int + 1 AS b, $3 AS c", [evil, 41, None]) == [{"a": evil, "b": 42, "c": None}]


def test_refused_roles(app, db, su):
    sid = start(su, "alice@example.com")
    plain = db.conn("fb_plain")
    for sql in ["SELECT dashboard.start_impersonation('anon', 'r')", "SELECT dashboard.apply_impersonation(%s)",
                "SELECT * FROM dashboard.query_as(%s, 'SELECT 1')", "SELECT dashboard.stop_impersonation(%s)"]:
        args = (sid,) if "%s" in sql else ()
        assert err(plain, sql, args) == "42501"
        app_conn = db.conn("fb_app")
        for role in ("anon", "authenticated"):
            app_conn.execute(f"SET ROLE {role}")
            assert err(app_conn, sql, args) == "42501"
    # the claim helpers are for every API role (as in Supabase, schema auth is
    # usable by anon / authenticated / service_role, not by PUBLIC)
    assert err(plain, "SELECT auth.uid()") == "42501"
    app_conn.execute("SET ROLE authenticated")
    app_conn.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (str(app["bob"]),))
    assert one(app_conn, "SELECT auth.uid()") == app["bob"]


def test_claims_helpers_follow_postgrest_conventions(db, su):
    c = db.conn("fb_app")
    c.execute("SET ROLE anon")
    assert one(c, "SELECT auth.uid()") is None and one(c, "SELECT auth.jwt()") is None
    c.execute("SELECT set_config('request.jwt.claims', '', false)")
    assert one(c, "SELECT auth.uid()") is None and one(c, "SELECT auth.role()") is None
    c.execute("""SELECT set_config('request.jwt.claims', '{"sub":"0b8a4c2e-1111-4222-8333-444455556666","role":"authenticated","email":"z@x.io"}', false)""")
    assert str(one(c, "SELECT auth.uid()")) == "0b8a4c2e-1111-4222-8333-444455556666"
    assert one(c, "SELECT auth.email()") == "z@x.io"
    # the cache follows every change of the setting, also inside one statement
    # (auth.uid() is read in a subquery, row by row: PostgreSQL 16 and later
    # sort an ordered aggregate's input before evaluating its arguments, which
    # would read it once every set_config had run)
    assert one(c, """SELECT array_agg(u ORDER BY g) FROM (SELECT g, auth.uid()::text AS u FROM generate_series(1, 3) g,
                     LATERAL (SELECT set_config('request.jwt.claims', json_build_object('sub', '00000000-0000-0000-0000-00000000000' || g)::text, true)) s
                     OFFSET 0) x""") == \
        [f"00000000-0000-0000-0000-00000000000{g}" for g in (1, 2, 3)]
    c.execute("SELECT set_config('request.jwt.claims', '', false)")
    c.execute("SELECT set_config('request.jwt.claim.role', 'anon', false)")
    c.execute("SELECT set_config('request.jwt.claim.email', 'legacy@x.io', false)")
    assert one(c, "SELECT auth.role()") == "anon" and one(c, "SELECT auth.email()") == "legacy@x.io"
    assert one(c, "SELECT auth.jwt()") == {"role": "anon", "email": "legacy@x.io"}
    c.execute("""SELECT set_config('request.jwt.claims', '{"sub":"not-a-uuid"}', false)""")
    assert err(c, "SELECT auth.uid()") == "22P02"
    c.execute("SELECT set_config('request.jwt.claims', 'garbage', false)")
    assert one(c, "SELECT auth.uid()") is None
    vol = su.execute("SELECT provolatile, proparallel FROM pg_proc WHERE oid = 'auth.uid'::regproc").fetchone()
    assert vol == ("s", "s")


def test_callers_search_path_cannot_shadow_the_checks(app, web, su):
    # A function planted ahead of pg_catalog in the caller's search_path must not
    # be picked up by the parts that run as the extension owner.
    su.execute("CREATE SCHEMA evil")
    su.execute("CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '1990-01-01'::timestamptz $$")
    su.execute("GRANT USAGE ON SCHEMA evil TO PUBLIC")
    sid = start(web, "alice@example.com")
    su.execute("UPDATE auth.impersonation_sessions SET expires_at = now() - interval '1 minute', "
               "started_at = now() - interval '2 hours' WHERE id = %s", (sid,))
    web.execute("SET search_path = evil, pg_catalog, public")
    assert one(web, "SELECT now() < '2000-01-01'")  # the trap is armed for the caller
    assert err(web, "SELECT dashboard.apply_impersonation(%s)", (sid,)) == "55000"
    assert err(web, "SELECT * FROM dashboard.query_as(%s, 'SELECT 1')", (sid,)) == "55000"
    live = start(web, "alice@example.com")
    web.execute("BEGIN")
    web.execute("SELECT dashboard.apply_impersonation(%s)", (live,))
    assert one(web, "SELECT current_setting('search_path')") == "evil, pg_catalog, public"
    web.execute("ROLLBACK")
    assert q(web, live, "SELECT count(*) AS n FROM todos") == [{"n": 2}]
    assert one(web, "SELECT current_setting('search_path')") == "evil, pg_catalog, public"
