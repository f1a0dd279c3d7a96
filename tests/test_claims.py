"""auth.uid(), auth.role(), auth.email(): the cached per-row path (issue 22).

Since 0.3.0 they are hand-written V1 C functions returning a Datum cached per
generation of `request.jwt.claims` (src/users/claims.rs). These tests pin what the
cache must not change: every change of the setting is seen, also inside one
statement and across SET LOCAL / rollback / subtransactions; a value handed out
before a change keeps its value; the legacy per-claim GUCs (never cached) are
still read when the JSON lacks the claim; an invalid `sub` raises 22P02 every
time; and the SQL definitions (symbols, volatility, not LEAKPROOF).
"""
import psycopg
import pytest

from conftest import one

U1 = "00000000-0000-4000-8000-000000000001"
U2 = "00000000-0000-4000-8000-000000000002"


def err(conn, sql, args=()):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, args)
    return e.value.sqlstate


def claims(conn, doc, local=False):
    conn.execute("SELECT set_config('request.jwt.claims', %s, %s)", (doc, local))


def test_definitions_point_at_the_fast_entries(su):
    rows = su.execute("""SELECT p.proname, p.prosrc, p.provolatile, p.proparallel, p.proleakproof
                         FROM pg_proc p WHERE p.pronamespace = 'auth'::regnamespace
                          AND p.proname IN ('uid', 'role', 'email') ORDER BY 1""").fetchall()
    assert rows == [("email", "email_fast", "s", "s", False), ("role", "role_fast", "s", "s", False),
                    ("uid", "uid_fast", "s", "s", False)]


def test_values_follow_every_change(db):
    c = db.conn("fb_app")
    c.execute("SET ROLE authenticated")
    assert one(c, "SELECT auth.uid()") is None and one(c, "SELECT auth.role()") is None
    claims(c, f'{{"sub":"{U1}","role":"authenticated","email":"a@x.io"}}')
    assert one(c, "SELECT (auth.uid()::text, auth.role(), auth.email())") == (U1, "authenticated", "a@x.io")
    # many rows, one value (the cached Datum), and the text results are proper text
    assert one(c, "SELECT count(DISTINCT auth.uid()) FROM generate_series(1, 1000)") == 1
    assert one(c, "SELECT auth.role() || '/' || upper(auth.email()) || length(auth.role())") == "authenticated/A@X.IO13"
    claims(c, f'{{"sub":"{U2}","role":"r2","email":"b@x.io"}}')
    assert one(c, "SELECT (auth.uid()::text, auth.role(), auth.email())") == (U2, "r2", "b@x.io")
    # SET LOCAL, then its end at commit and at rollback
    c.execute("BEGIN")
    claims(c, f'{{"sub":"{U1}","role":"local"}}', local=True)
    assert one(c, "SELECT (auth.uid()::text, auth.role(), auth.email())") == (U1, "local", None)
    c.execute("COMMIT")
    assert one(c, "SELECT (auth.uid()::text, auth.role())") == (U2, "r2")
    # a rollback, and a subtransaction's abort, restore the value
    for begin, undo, end in (("BEGIN", "ROLLBACK", None), ("SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "COMMIT")):
        if end:
            c.execute("BEGIN")
        c.execute(begin)
        claims(c, f'{{"sub":"{U1}"}}')
        assert str(one(c, "SELECT auth.uid()")) == U1
        c.execute(undo)
        assert str(one(c, "SELECT auth.uid()")) == U2
        if end:
            c.execute(end)
    # RESET / '' count as unset
    c.execute("RESET request.jwt.claims")
    assert one(c, "SELECT (auth.uid(), auth.role(), auth.email())") == (None, None, None)


def test_a_value_handed_out_keeps_its_value_after_a_change(db):
    # the first auth.uid() is computed, then the claims change in the same
    # statement, then the second one: the first must still read U1 (the cache
    # gets new memory per change, never overwrites what it handed out)
    c = db.conn("fb_app")
    c.execute("SET ROLE authenticated")
    claims(c, f'{{"sub":"{U1}","email":"one@x.io"}}')
    row = c.execute(f"""
        SELECT x.a::text, x.e, y.b::text, y.f
        FROM (SELECT auth.uid() AS a, auth.email() AS e OFFSET 0) x,
             LATERAL (SELECT set_config('request.jwt.claims', '{{"sub":"{U2}","email":"two@x.io"}}', true) AS v OFFSET 0) s,
             LATERAL (SELECT auth.uid() AS b, auth.email() AS f, s.v OFFSET 0) y""").fetchone()
    assert row == (U1, "one@x.io", U2, "two@x.io")
    # many changes inside one transaction, then more work after it ends
    c.execute("BEGIN")
    # (auth.uid() read in its own lateral subquery, after its row's set_config:
    # from PostgreSQL 16 on, an ordered aggregate's arguments are evaluated
    # after the sort, i.e. after every row's set_config)
    got = one(c, """SELECT array_agg(y.u ORDER BY g) FROM generate_series(1, 50) g,
                    LATERAL (SELECT set_config('request.jwt.claims',
                             json_build_object('sub', '00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::text, true)
                             AS v OFFSET 0) s,
                    LATERAL (SELECT auth.uid()::text AS u, s.v OFFSET 0) y""")
    assert got == [f"00000000-0000-4000-8000-{g:012d}" for g in range(1, 51)]
    c.execute("COMMIT")
    assert str(one(c, "SELECT auth.uid()")) == U1


def test_legacy_gucs_are_read_when_the_json_lacks_the_claim(db):
    c = db.conn("fb_app")
    c.execute("SET ROLE authenticated")
    c.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (U1,))
    c.execute("SELECT set_config('request.jwt.claim.role', 'legacy1', false)")
    assert one(c, "SELECT (auth.uid()::text, auth.role())") == (U1, "legacy1")
    # the legacy GUCs are not ours (no generation): a change is seen at once
    c.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (U2,))
    c.execute("SELECT set_config('request.jwt.claim.role', 'legacy2', false)")
    assert one(c, "SELECT (auth.uid()::text, auth.role())") == (U2, "legacy2")
    # the JSON wins where it has the claim; the legacy GUC fills in the rest
    claims(c, f'{{"sub":"{U1}","email":"j@x.io"}}')
    assert one(c, "SELECT (auth.uid()::text, auth.role(), auth.email())") == (U1, "legacy2", "j@x.io")
    c.execute("SELECT set_config('request.jwt.claim.role', 'legacy3', false)")
    assert one(c, "SELECT auth.role()") == "legacy3"
    claims(c, '{"role":"json"}')
    assert one(c, "SELECT (auth.uid()::text, auth.role())") == (U2, "json")


def test_invalid_sub_raises_every_time(db):
    c = db.conn("fb_app")
    c.execute("SET ROLE authenticated")
    claims(c, f'{{"sub":"{U1}"}}')
    assert str(one(c, "SELECT auth.uid()")) == U1
    claims(c, '{"sub":"not-a-uuid","role":"r"}')
    for _ in range(2):
        assert err(c, "SELECT auth.uid()") == "22P02"
    assert err(c, "SELECT count(*) FROM generate_series(1, 10) WHERE auth.uid() IS NULL") == "22P02"
    assert one(c, "SELECT auth.role()") == "r"
    claims(c, "garbage")  # not JSON: unset, as PostgREST never sets it
    assert one(c, "SELECT auth.uid()") is None
    claims(c, f'{{"sub":"{U2}"}}')
    assert str(one(c, "SELECT auth.uid()")) == U2


def test_user_quals_with_auth_uid_go_below_a_leaky_policy(su, db):
    # Why auth.uid() is not LEAKPROOF: it needs not be. Postgres holds a
    # non-leakproof function against a qual only when its arguments reference a
    # column; `user_id = auth.uid()` is leakproof as a whole (uuid_eq is), so
    # the planner may use it below a policy that calls a leaky function -- here
    # as an index condition (seqscan off: no index path would mean a seqscan).
    su.execute("""
        CREATE FUNCTION public.leaky(int) RETURNS boolean LANGUAGE plpgsql COST 1000 AS $$ BEGIN RETURN true; END $$;
        CREATE TABLE public.notes (id int PRIMARY KEY, user_id uuid NOT NULL, n int NOT NULL);
        CREATE INDEX ON public.notes (user_id);
        ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY p ON public.notes FOR SELECT TO authenticated USING (public.leaky(n));
        GRANT SELECT ON public.notes TO authenticated;
        INSERT INTO public.notes SELECT g, CASE WHEN g % 2 = 0 THEN %(u1)s::uuid ELSE %(u2)s::uuid END, g
            FROM generate_series(1, 100) g;
        ANALYZE public.notes;
    """.replace("%(u1)s", f"'{U1}'").replace("%(u2)s", f"'{U2}'"))
    c = db.conn("fb_app")
    c.execute("SET ROLE authenticated")
    c.execute("SET enable_seqscan = off")
    claims(c, f'{{"sub":"{U1}"}}')
    plan = "\n".join(r[0] for r in c.execute("EXPLAIN SELECT * FROM public.notes WHERE user_id = auth.uid()"))
    assert "Index Cond: (user_id = auth.uid())" in plan, plan
    assert one(c, "SELECT count(*) FROM public.notes WHERE user_id = auth.uid()") == 50
