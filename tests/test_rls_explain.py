"""dashboard.explain_access (issue 32): its verdict is what really happens.

For every policy shape people write (per-command policies, permissive +
restrictive mixes, TO role lists, policies calling functions, subqueries on
other RLS tables, current_setting, WITH CHECK only, column grants, RLS off or
forced), every principal (three app users, anon, service_role), every command
and every row, the test asks explain_access for a verdict and then runs the
real statement as that user (SET ROLE + the claims explain_access reports, in a
transaction rolled back afterwards) and compares: SELECT finds the row or not;
UPDATE / DELETE change 1 or 0 rows; INSERT succeeds; or the statement fails
with 42501. Generated cases, hundreds of them.
"""
import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import as_session, one, setup_admin

BASE = """
CREATE TABLE public.members (team int, user_id uuid, PRIMARY KEY (team, user_id));
ALTER TABLE public.members ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_membership ON public.members FOR SELECT TO authenticated USING (user_id = auth.uid());
GRANT SELECT ON public.members TO anon, authenticated, service_role;

CREATE FUNCTION public.is_admin() RETURNS boolean LANGUAGE sql STABLE SET search_path = '' AS
$$ SELECT coalesce((auth.jwt() -> 'app_metadata' ->> 'is_admin')::boolean, false) $$;
CREATE FUNCTION public.in_team(t int) RETURNS boolean LANGUAGE sql STABLE SET search_path = '' AS
$$ SELECT EXISTS (SELECT 1 FROM public.members m WHERE m.team = t AND m.user_id = auth.uid()) $$;

CREATE TABLE public.docs (id int PRIMARY KEY, owner uuid, team int, title text, secret text, published boolean NOT NULL DEFAULT false);
ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
"""

# name -> (SQL run after dropping every policy of public.docs and resetting its grants)
SHAPES = {
    "owner_per_command": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO authenticated;
        CREATE POLICY s ON public.docs FOR SELECT TO authenticated USING (owner = auth.uid());
        CREATE POLICY i ON public.docs FOR INSERT TO authenticated WITH CHECK (owner = auth.uid());
        CREATE POLICY u ON public.docs FOR UPDATE TO authenticated USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
        CREATE POLICY d ON public.docs FOR DELETE TO authenticated USING (owner = auth.uid());
    """,
    "published_or_owner_all": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO anon, authenticated;
        CREATE POLICY read_published ON public.docs FOR SELECT TO anon, authenticated USING (published);
        CREATE POLICY owner_all ON public.docs TO authenticated USING (owner = (SELECT auth.uid()));
    """,
    "permissive_and_restrictive": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO authenticated;
        CREATE POLICY owner_all ON public.docs TO authenticated USING (owner = auth.uid());
        CREATE POLICY team_read ON public.docs FOR SELECT TO authenticated USING (public.in_team(team));
        CREATE POLICY not_locked ON public.docs AS RESTRICTIVE TO authenticated
            USING (coalesce(title NOT LIKE 'locked%', true));
        CREATE POLICY no_secret_writes ON public.docs AS RESTRICTIVE FOR UPDATE TO authenticated
            USING (true) WITH CHECK (secret IS NULL OR owner = auth.uid());
    """,
    "role_lists": """
        GRANT SELECT, UPDATE, DELETE ON public.docs TO anon, authenticated;
        CREATE POLICY anon_reads ON public.docs FOR SELECT TO anon USING (true);
        CREATE POLICY public_updates ON public.docs FOR UPDATE USING (published);
        CREATE POLICY service_deletes ON public.docs FOR DELETE TO service_role USING (true);
    """,
    "function_calls": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO authenticated;
        CREATE POLICY admins ON public.docs TO authenticated USING (public.is_admin());
        CREATE POLICY readers ON public.docs FOR SELECT TO authenticated USING (published AND auth.role() = 'authenticated');
    """,
    "subquery_on_rls_table": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO authenticated;
        CREATE POLICY team ON public.docs TO authenticated
            USING (EXISTS (SELECT 1 FROM public.members m WHERE m.team = docs.team AND m.user_id = auth.uid()))
            WITH CHECK (team IN (SELECT m.team FROM public.members m));
    """,
    "current_setting": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO anon, authenticated;
        CREATE POLICY by_setting ON public.docs TO anon, authenticated
            USING (owner::text = current_setting('request.jwt.claim.sub', true)
                   OR (current_setting('request.jwt.claims', true)::jsonb ->> 'role') = 'anon' AND published);
    """,
    "with_check_only": """
        GRANT SELECT, INSERT, UPDATE ON public.docs TO authenticated;
        CREATE POLICY read_all ON public.docs FOR SELECT TO authenticated USING (true);
        CREATE POLICY insert_own ON public.docs FOR INSERT TO authenticated WITH CHECK (owner = auth.uid());
        CREATE POLICY update_unpublished ON public.docs FOR UPDATE TO authenticated WITH CHECK (NOT published);
        CREATE POLICY update_mine ON public.docs FOR UPDATE TO authenticated USING (owner = auth.uid());
    """,
    "update_without_select": """
        GRANT SELECT, UPDATE, DELETE ON public.docs TO authenticated;
        CREATE POLICY upd ON public.docs FOR UPDATE TO authenticated USING (true);
        CREATE POLICY del ON public.docs FOR DELETE TO authenticated USING (true);
        CREATE POLICY sel ON public.docs FOR SELECT TO authenticated USING (published);
    """,
    "column_grants": """
        GRANT SELECT (id, title, published, owner) ON public.docs TO authenticated;
        GRANT UPDATE (title) ON public.docs TO authenticated;
        GRANT INSERT (id, owner, title) ON public.docs TO authenticated;
        CREATE POLICY all_mine ON public.docs TO authenticated USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
    """,
    "rls_off": """
        GRANT SELECT, UPDATE ON public.docs TO anon, authenticated;
        ALTER TABLE public.docs DISABLE ROW LEVEL SECURITY;
    """,
    "forced_no_policy": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO anon, authenticated;
        ALTER TABLE public.docs FORCE ROW LEVEL SECURITY;
    """,
    "restrictive_only": """
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO authenticated;
        CREATE POLICY only_restrictive ON public.docs AS RESTRICTIVE TO authenticated USING (true);
    """,
}

PRINCIPALS = ["alice@example.com", "bob@example.com", "carol@example.com", "anon", "service_role"]


@pytest.fixture
def world(su):
    su.execute(BASE)
    users = {}
    for name in ["alice", "bob", "carol"]:
        users[name] = one(su, "SELECT user_id FROM dashboard.invite_user(%s)", (f"{name}@example.com",))
    su.execute("UPDATE auth.users SET raw_app_meta_data = raw_app_meta_data || '{\"is_admin\": true}' WHERE id = %s",
               (users["carol"],))
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO service_role")
    su.execute("INSERT INTO public.members VALUES (1, %s), (2, %s)", (users["alice"], users["bob"]))
    rows = [
        (1, users["alice"], 1, "alice draft", None, False),
        (2, users["alice"], 1, "alice post", "s3cret", True),
        (3, users["bob"], 2, "locked bob", None, True),
        (4, None, 2, None, None, False),
    ]
    for r in rows:
        su.execute("INSERT INTO public.docs VALUES (%s, %s, %s, %s, %s, %s)", r)
    return users


def reset_docs(su, shape_sql):
    su.execute("""DO $$ DECLARE p record; BEGIN
        FOR p IN SELECT polname FROM pg_policy WHERE polrelid = 'public.docs'::regclass LOOP
            EXECUTE format('DROP POLICY %I ON public.docs', p.polname); END LOOP; END $$""")
    su.execute("REVOKE ALL ON public.docs FROM anon, authenticated")
    su.execute("ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY")
    su.execute(shape_sql)


def explain(conn, key, who, command, new_row=None):
    v = one(conn, "SELECT dashboard.explain_access('public.docs', %s, %s, %s, %s)",
            (Jsonb(key) if key is not None else None, who, command, Jsonb(new_row) if new_row is not None else None))
    return v


def really(su, verdict, command, key, new_row):
    """Run the statement as the principal explain_access describes; its outcome in explain_access's words."""
    p = verdict["principal"]
    claims = p["claims"]
    su.execute("BEGIN")
    try:
        su.execute("SELECT set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true),"
                   " set_config('request.jwt.claim.role', %s, true), set_config('request.jwt.claim.email', %s, true)",
                   (json.dumps(claims), claims.get("sub") or "", p["role"], claims.get("email") or ""))
        su.execute(f"SET LOCAL ROLE {p['role']}")
        if command == "select":
            n = len(su.execute("SELECT id FROM public.docs WHERE id = %s", (key["id"],)).fetchall())
            return "found" if n else "not found"
        cols = list(new_row or {})
        if command == "insert":
            cur = su.execute(f"INSERT INTO public.docs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                             [new_row[c] for c in cols])
            return "inserted" if cur.rowcount == 1 else "?"
        if command == "update":
            sets = ", ".join(f"{c} = %s" for c in cols) if cols else "id = id"
            cur = su.execute(f"UPDATE public.docs SET {sets} WHERE id = %s", [new_row[c] for c in cols] + [key["id"]])
        else:
            cur = su.execute("DELETE FROM public.docs WHERE id = %s", (key["id"],))
        return f"{cur.rowcount} row" + ("s" if cur.rowcount != 1 else "")
    except psycopg.Error as e:
        return "42501" if e.sqlstate == "42501" else f"error {e.sqlstate}"
    finally:
        su.execute("ROLLBACK")


def cases(users):
    for who in PRINCIPALS:
        for rid in (1, 2, 3, 4, 99):
            yield who, "select", {"id": rid}, None
            yield who, "delete", {"id": rid}, None
            yield who, "update", {"id": rid}, None
            yield who, "update", {"id": rid}, {"title": "changed"}
            yield who, "update", {"id": rid}, {"published": True, "secret": "x"}
        for owner in ("alice", "bob"):
            yield who, "insert", None, {"id": 100, "owner": str(users[owner]), "title": "new"}
            yield who, "insert", None, {"id": 101, "owner": str(users[owner]), "team": 1, "published": True}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_verdict_matches_reality(su, world, shape):
    reset_docs(su, SHAPES[shape])
    mismatches = []
    n = 0
    for who, command, key, new_row in cases(world):
        v = explain(su, key, who, command, new_row)
        real = really(su, v, command, key, new_row)
        n += 1
        expected = v["outcome"]
        if expected == "error":
            ok = real.startswith("error")
        else:
            ok = real == expected
        ok = ok and v["allowed"] == (expected in ("found", "1 row", "inserted"))
        if not ok:
            mismatches.append((who, command, key, new_row, expected, real, v["decided_by"]))
    assert n >= 100
    assert not mismatches, "\n".join(map(str, mismatches[:20]))


def test_explains_which_policy_decided(su, world):
    reset_docs(su, SHAPES["permissive_and_restrictive"])
    # alice reads bob's doc 3? team 2 is bob's, and it is locked
    v = explain(su, {"id": 3}, "bob@example.com", "select")
    assert v["allowed"] is False and v["outcome"] == "not found"
    assert v["decided_by"] == ["restrictive: not_locked"]
    assert v["row_exists"] is True
    pol = {p["name"]: p for p in v["policies"]}
    assert pol["owner_all"]["using"] is True and pol["not_locked"]["using"] is False
    assert pol["not_locked"]["permissive"] is False and pol["owner_all"]["command"] == "all"
    # alice's own doc, through owner_all; bob's team policy says nothing for her
    v = explain(su, {"id": 1}, "alice@example.com", "select")
    assert v["allowed"] is True and v["decided_by"] == ["owner_all", "team_read"]
    v = explain(su, {"id": 1}, "bob@example.com", "select")
    assert v["decided_by"] == ["no permissive policy allows it"]
    # anon: no policy is for anon, and no privilege either
    v = explain(su, {"id": 1}, "anon", "select")
    assert v["outcome"] == "42501" and v["decided_by"] == ["no privilege: SELECT on column id"]
    assert all(p["applies"] is False for p in v["policies"])
    # service_role bypasses RLS
    v = explain(su, {"id": 3}, "service_role", "delete")
    assert v["bypass"] is True and v["decided_by"] == ["bypassrls"] and v["rls"] == "on"


def test_update_with_check_and_column_privileges(su, world):
    reset_docs(su, SHAPES["with_check_only"])
    # doc 2 is published: update_unpublished's WITH CHECK fails, but update_mine
    # (no WITH CHECK: its USING checks the new row) lets it through
    v = explain(su, {"id": 2}, "alice@example.com", "update", {"title": "x"})
    assert v["allowed"] is True
    assert v["decided_by"] == ["update_mine", "read_all (select)", "update_mine (with check)"]
    assert {p["name"]: p["with_check"] for p in v["policies"]}["update_unpublished"] is False
    # giving it away and publishing it: neither lets the new row in
    v = explain(su, {"id": 1}, "alice@example.com", "update", {"owner": str(world["bob"]), "published": True})
    assert v["outcome"] == "42501"
    assert v["decided_by"] == ["no permissive policy allows it (with check)"]
    v = explain(su, {"id": 1}, "alice@example.com", "update", {"title": "x"})
    assert v["allowed"] is True
    reset_docs(su, SHAPES["column_grants"])
    v = explain(su, {"id": 1}, "alice@example.com", "update", {"secret": "x"})
    assert v["decided_by"] == ["no privilege: UPDATE on column secret"]
    assert v["privilege"]["columns"]["secret"] == {"select": False, "insert": False, "update": False}
    assert v["privilege"]["columns"]["title"]["update"] is True


def test_rls_states(su, world):
    reset_docs(su, SHAPES["rls_off"])
    v = explain(su, {"id": 1}, "anon", "select")
    assert (v["rls"], v["allowed"], v["decided_by"]) == ("off", True, ["rls off"])
    reset_docs(su, SHAPES["forced_no_policy"])
    v = explain(su, {"id": 1}, "bob@example.com", "select")
    assert (v["rls"], v["allowed"], v["decided_by"]) == ("forced", False, ["no permissive policy"])
    v = explain(su, {"id": 99}, "service_role", "select")
    assert (v["allowed"], v["outcome"], v["row_exists"]) == (False, "not found", False)
    # the table's owner (a role the login may become) is exempt unless forced
    su.execute("CREATE ROLE docs_owner NOLOGIN; GRANT docs_owner TO fluxbase_impersonator")
    su.execute("ALTER TABLE public.docs OWNER TO docs_owner")
    su.execute("UPDATE auth.users SET role = 'docs_owner' WHERE email = 'bob@example.com'")
    v = explain(su, {"id": 1}, "bob@example.com", "select")
    assert v["decided_by"] == ["no permissive policy"]  # forced: the owner too
    su.execute("ALTER TABLE public.docs NO FORCE ROW LEVEL SECURITY")
    v = explain(su, {"id": 1}, "bob@example.com", "select")
    assert (v["allowed"], v["decided_by"], v["bypass"]) == (True, ["table owner"], True)


def test_policy_errors_are_reported_not_raised(su, world):
    reset_docs(su, """
        GRANT SELECT ON public.docs TO authenticated;
        CREATE POLICY divides ON public.docs FOR SELECT TO authenticated USING (10 / (id - 1) > 0);
        CREATE FUNCTION public.sneaky() RETURNS boolean LANGUAGE plpgsql AS
            $f$ BEGIN PERFORM set_config('role', 'postgres', true); RETURN true; END $f$;
        CREATE FUNCTION public.grab() RETURNS boolean LANGUAGE plpgsql AS
            $f$ BEGIN PERFORM dashboard_auth.create_admin('evil@example.com', 'a-long-enough-passphrase', 'Evil', 'dashboard_admin');
                      RETURN true; END $f$;
        CREATE FUNCTION public.writes() RETURNS boolean LANGUAGE plpgsql AS
            $f$ BEGIN DELETE FROM public.members; RETURN true; END $f$;
        CREATE POLICY escalates ON public.docs FOR SELECT TO authenticated USING (public.sneaky() OR public.grab() OR public.writes());
    """)
    v = explain(su, {"id": 1}, "alice@example.com", "select")
    pol = {p["name"]: p for p in v["policies"]}
    assert "division by zero" in pol["divides"]["error"] and pol["divides"]["using"] == "error"
    assert pol["escalates"]["using"] == "error" and pol["escalates"]["error"]
    assert v["outcome"] == "error" and not v["allowed"]
    assert "error in policy: divides" in v["decided_by"]
    # nothing escaped: same user, no admin created, nothing deleted, claims not left behind
    assert one(su, "SELECT current_user") == "postgres"
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE email = 'evil@example.com'") == 0
    assert one(su, "SELECT count(*) FROM public.members") == 2
    assert one(su, "SELECT current_setting('request.jwt.claims', true)") in (None, "")
    # each policy alone: the writer is refused (read-only), the role switch too
    for name, fn in [("sneaky", "42501"), ("grab", "42501"), ("writes", "25006")]:
        su.execute("DROP POLICY IF EXISTS escalates ON public.docs; DROP POLICY IF EXISTS divides ON public.docs")
        su.execute("DROP POLICY IF EXISTS alone ON public.docs")
        su.execute(f"CREATE POLICY alone ON public.docs FOR SELECT TO authenticated USING (public.{name}())")
        v = explain(su, {"id": 2}, "alice@example.com", "select")
        assert v["policies"][0]["error"], (name, v)
        assert one(su, "SELECT count(*) FROM public.members") == 2


@pytest.mark.parametrize("args,state", [
    (("public.docs", '{"id": 1}', "x'; DROP TABLE public.docs; --", "select", None), "22023"),
    (("public.docs", '{"id": 1}', "nobody@example.com", "select", None), "P0002"),
    (("public.docs", '{"id": 1}', "anon", "select; DROP TABLE public.docs", None), "22023"),
    (("public.docs", '{"id": 1}', "anon", "truncate", None), "22023"),
    (("public.docs", '{"id": "1; DROP TABLE public.docs"}', "anon", "select", None), "22P02"),
    (("public.docs", '{"id\\"; DROP TABLE public.docs; --": 1}', "anon", "select", None), "22023"),
    (("public.docs", '{"id": null}', "anon", "select", None), "22023"),
    (("public.docs", '[1]', "anon", "select", None), "22023"),
    (("public.docs", None, "anon", "select", None), "22004"),
    (("public.docs", '{"id": 1}', None, "select", None), "22004"),
    (("public.docs", '{"id": 1}', "anon", "update", '{"nope); DROP TABLE public.docs; --": 1}'), "42703"),
    (("public.docs", '{"id": 1}', "anon", "update", '[1]'), "22023"),
    (("public.docs", None, "anon", "insert", None), "22004"),
    (("public.docs", '{"id": 1}', "anon", "select", '{"title": "x"}'), "22023"),
    (("public.docs", '{"id": 1}', "anon", "update", '{"id": "not a number"}'), "22P02"),
    (("public.docs_view", '{"id": 1}', "anon", "select", None), "22023"),
])
def test_bad_input(su, world, args, state):
    su.execute("CREATE VIEW public.docs_view AS SELECT * FROM public.docs")
    with pytest.raises(psycopg.Error) as e:
        su.execute("SELECT dashboard.explain_access(%s::regclass, %s::jsonb, %s, %s, %s::jsonb)", args)
    assert e.value.sqlstate == state, e.value
    assert one(su, "SELECT count(*) FROM public.docs") == 4


def test_hostile_names_and_composite_keys(su, world):
    su.execute("""
        CREATE SCHEMA "we""ird";
        CREATE TABLE "we""ird"."t'; x" ("k ""1" text, k2 int, "v'al" text, PRIMARY KEY ("k ""1", k2));
        ALTER TABLE "we""ird"."t'; x" ENABLE ROW LEVEL SECURITY;
        CREATE POLICY "p""'; --" ON "we""ird"."t'; x" FOR SELECT TO authenticated USING ("v'al" = auth.email());
        GRANT USAGE ON SCHEMA "we""ird" TO authenticated;
        GRANT SELECT ON "we""ird"."t'; x" TO authenticated;
        INSERT INTO "we""ird"."t'; x" VALUES ('a''b', 1, 'alice@example.com'), ('a''b', 2, 'bob@example.com');
    """)
    tbl = '"we""ird"."t\'; x"'
    for k2, allowed in [(1, True), (2, False)]:
        v = one(su, "SELECT dashboard.explain_access(%s::regclass, %s, 'alice@example.com')",
                (tbl, Jsonb({'k "1': "a'b", "k2": k2})))
        assert v["allowed"] is allowed and v["row_exists"] is True
        assert v["policies"][0]["name"] == "p\"'; --"
    v = one(su, "SELECT dashboard.explain_access(%s::regclass, %s, 'anon')", (tbl, Jsonb({'k "1': "a'b", "k2": 1})))
    assert v["decided_by"][0] == 'no privilege: USAGE on schema we"ird'


def test_who_may_call_and_audit(db, su, world):
    reset_docs(su, SHAPES["owner_per_command"])
    _, token = setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', 'a-long-enough-passphrase', 'V', 'dashboard_viewer')")
    vtoken = one(su, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', 'a-long-enough-passphrase')")
    for t in (token, vtoken):
        web = db.conn("fb_web")
        as_session(web, t)
        v = one(web, "SELECT dashboard.explain_access('public.docs', '{\"id\": 1}', 'alice@example.com')")
        assert v["allowed"] is True
        web.execute("COMMIT")
    plain = db.conn("fb_plain")
    with pytest.raises(psycopg.Error) as e:
        plain.execute("SELECT dashboard.explain_access('public.docs', '{\"id\": 1}', 'alice@example.com')")
    assert e.value.sqlstate == "42501"
    app = db.conn("fb_app")
    app.execute("SET ROLE authenticated")
    with pytest.raises(psycopg.Error) as e:
        app.execute("SELECT dashboard.explain_access('public.docs', '{\"id\": 1}', 'alice@example.com')")
    assert e.value.sqlstate == "42501"
    rows = su.execute("SELECT actor, details FROM dashboard_auth.audit_log WHERE action = 'rls.explain_access' ORDER BY id").fetchall()
    assert [r[0] for r in rows][-2:] == ["root@example.com", "viewer@example.com"]
    assert rows[-1][1]["as_user"] == "alice@example.com" and rows[-1][1]["allowed"] is True
