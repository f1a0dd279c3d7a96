"""App users (auth.users) through dashboard.list_users & co."""
import hashlib
import time

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin

INJECTIONS = [
    "x'; DROP TABLE auth.users; --",
    "' OR '1'='1",
    "\"; SELECT pg_sleep(1); --",
    "%' OR 1=1 --",
    "$$; DROP TABLE auth.users; $$",
]


def invite(conn, email, role="authenticated", meta=None):
    return conn.execute(
        "SELECT user_id, invite_token FROM dashboard.invite_user(%s, %s, %s)", (email, role, Jsonb(meta or {}))
    ).fetchone()


def viewer_token(su, web):
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    status, token, _ = web.execute("SELECT * FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,)).fetchone()
    assert status == "ok"
    return token


def test_invite_list_get_enriched(web, su):
    uid, token = invite(web, "  Alice@Example.COM ", meta={"name": "Alice"})
    assert token.startswith("fbu_") and len(token) == 47
    rows = web.execute("SELECT * FROM dashboard.list_users()").fetchall()
    assert len(rows) == 1
    cols = [d.name for d in web.execute("SELECT * FROM dashboard.list_users()").description]
    assert cols == ["id", "email", "phone", "role", "created_at", "last_sign_in_at", "confirmed_at",
                    "email_confirmed_at", "phone_confirmed_at", "confirmation_sent_at", "invited_at",
                    "banned_until", "is_anonymous", "app_metadata", "user_metadata"]
    r = web.execute("SELECT * FROM dashboard.get_user(%s)", (uid,)).fetchone()
    r = dict(zip(cols, r))
    assert r["id"] == uid and r["email"] == "alice@example.com" and r["role"] == "authenticated"
    assert r["invited_at"] is not None and r["confirmed_at"] is None and r["phone"] is None
    assert r["app_metadata"]["provider"] == "email" and r["user_metadata"] == {"name": "Alice"}
    # only the token's digest is stored
    digest = one(su, "SELECT confirmation_token_digest FROM auth.users WHERE id = %s", (uid,))
    assert bytes(digest) == hashlib.sha256(token.encode()).digest()
    assert one(su, "SELECT count(*) FROM auth.users WHERE encrypted_password IS NOT NULL") == 0


def test_invite_bad_input(web):
    invite(web, "a@example.com")
    for email, role, meta, state in [
        ("a@example.com", "authenticated", {}, "23505"),
        ("A@EXAMPLE.com", "authenticated", {}, "23505"),
        ("not-an-email", "authenticated", {}, "22023"),
        (None, "authenticated", {}, "22004"),
        ("b@example.com", "postgres", {}, "22023"),
        ("b@example.com", "fluxbase_dashboard", {}, "22023"),
        ("b@example.com", "no_such_role", {}, "22023"),
        ("b@example.com", "", {}, "22023"),
        ("b@example.com", "authenticated", [1, 2], "22023"),
    ]:
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT * FROM dashboard.invite_user(%s, %s, %s)", (email, role, Jsonb(meta)))
        assert e.value.sqlstate == state, (email, role, meta)
    assert one(web, "SELECT count(*) FROM dashboard.list_users()") == 1


def test_search_is_case_insensitive_substring_with_literal_wildcards(web):
    for e in ["ann@example.com", "joanna@example.org", "bob@example.com", "a_b@example.com", "axb@example.com"]:
        invite(web, e)
    got = lambda s: [r[0] for r in web.execute("SELECT email FROM dashboard.list_users(%s)", (s,)).fetchall()]
    assert got("ANN") == ["ann@example.com", "joanna@example.org"]
    assert got(".ORG") == ["joanna@example.org"]
    assert got("a_b") == ["a_b@example.com"]  # _ is not a wildcard
    assert got("%") == []
    assert got("") == got(None) and len(got(None)) == 5
    for s in INJECTIONS:
        assert got(s) == []
    assert one(web, "SELECT count(*) FROM dashboard.list_users()") == 5


def test_keyset_pagination_walks_everything_once(web, su):
    su.execute("""INSERT INTO auth.users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 53) g""")
    seen, after = [], None
    while True:
        page = web.execute("SELECT id, email FROM dashboard.list_users(NULL, 10, %s)", (after,)).fetchall()
        if not page:
            break
        assert len(page) <= 10
        seen += page
        after = page[-1][0]
    emails = [e for _, e in seen]
    assert len(emails) == 53 and len(set(emails)) == 53 and emails == sorted(emails)
    # search + pagination together
    p1 = web.execute("SELECT id, email FROM dashboard.list_users('USER1', 5)").fetchall()
    p2 = web.execute("SELECT id, email FROM dashboard.list_users('user1', 5, %s)", (p1[-1][0],)).fetchall()
    assert [e for _, e in p1 + p2] == sorted(e for e in emails if "user1" in e)[:10]
    for size in (0, -1, 1001):
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT * FROM dashboard.list_users(NULL, %s)", (size,))
        assert e.value.sqlstate == "22023"
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.list_users(NULL, 10, gen_random_uuid())")
    assert e.value.sqlstate == "22023"


def test_search_is_fast_on_many_users(web, su):
    su.execute("INSERT INTO auth.users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 200000) g")
    su.execute("ANALYZE auth.users")
    plan = "\n".join(r[0] for r in su.execute(
        """EXPLAIN SELECT id FROM auth.users u WHERE u.deleted_at IS NULL
           AND (lower(u.email) COLLATE "C", u.id) > ('u1999@', '00000000-0000-0000-0000-000000000000'::uuid)
           ORDER BY lower(u.email) COLLATE "C", u.id LIMIT 50""").fetchall())
    assert "users_email_search" in plan, plan
    t = time.perf_counter()
    rows = web.execute("SELECT id, email FROM dashboard.list_users('U1999', 50)").fetchall()
    assert len(rows) == 50 and all("u1999" in e for _, e in rows)  # 111 match
    rest = web.execute("SELECT id, email FROM dashboard.list_users('u1999', 100, %s)", (rows[-1][0],)).fetchall()
    assert len(rest) == 61
    late = web.execute("SELECT id FROM dashboard.list_users(NULL, 50, %s)", (rest[-1][0],)).fetchall()
    assert len(late) == 50
    assert time.perf_counter() - t < 3.0


def test_update_role_reset_password_delete_and_audit(web, su):
    uid, _ = invite(web, "carol@example.com")
    web.execute("SELECT dashboard.update_user_role(%s, 'anon')", (uid,))
    assert one(web, "SELECT role FROM dashboard.get_user(%s)", (uid,)) == "anon"
    for role, state in [("postgres", "22023"), (INJECTIONS[0], "22023"), (None, "22004")]:
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT dashboard.update_user_role(%s, %s)", (uid, role))
        assert e.value.sqlstate == state
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.update_user_role(gen_random_uuid(), 'anon')")
    assert e.value.sqlstate == "P0002"
    token = one(web, "SELECT dashboard.reset_user_password(%s)", (uid,))
    assert token.startswith("fbr_")
    assert bytes(one(su, "SELECT recovery_token_digest FROM auth.users WHERE id = %s", (uid,))) == \
        hashlib.sha256(token.encode()).digest()
    web.execute("SELECT dashboard.delete_user(%s)", (uid,))
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.get_user(%s)", (uid,))
    assert e.value.sqlstate == "P0002"
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.delete_user(%s)", (uid,))
    assert e.value.sqlstate == "P0002"
    audit = su.execute(
        "SELECT action, actor, details FROM dashboard_auth.audit_log WHERE target_id = %s ORDER BY id", (str(uid),)
    ).fetchall()
    assert [a for a, _, _ in audit] == ["app_user.invite", "app_user.role_change", "app_user.password_reset", "app_user.delete"]
    assert all(actor == "db:fb_web" for _, actor, _ in audit)
    assert audit[1][2] == {"old": "authenticated", "new": "anon"}
    assert token not in str(audit)


def test_viewer_reads_only(db, su, web):
    token = viewer_token(su, web)
    uid, _ = invite(su, "dave@example.com")
    as_session(web, token)
    assert one(web, "SELECT count(*) FROM dashboard.list_users()") == 1
    assert one(web, "SELECT email FROM dashboard.get_user(%s)", (uid,)) == "dave@example.com"
    web.execute("ROLLBACK")
    for sql, args in [
        ("SELECT * FROM dashboard.invite_user('e@example.com')", ()),
        ("SELECT dashboard.update_user_role(%s, 'anon')", (uid,)),
        ("SELECT dashboard.reset_user_password(%s)", (uid,)),
        ("SELECT dashboard.delete_user(%s)", (uid,)),
    ]:
        as_session(web, token)
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql, args)
        assert e.value.sqlstate == "42501", sql
        web.execute("ROLLBACK")
    assert one(su, "SELECT role FROM auth.users WHERE id = %s", (uid,)) == "authenticated"


def test_refused_roles(db, su):
    uid, _ = invite(su, "erin@example.com")
    plain = db.conn("fb_plain")
    for sql in ["SELECT * FROM dashboard.list_users()", "SELECT * FROM auth.users",
                "SELECT * FROM dashboard.invite_user('x@example.com')"]:
        with pytest.raises(psycopg.Error) as e:
            plain.execute(sql)
        assert e.value.sqlstate == "42501"
    app = db.conn("fb_app")
    for role in ("anon", "authenticated"):
        app.execute(f"SET ROLE {role}")
        for sql in ["SELECT * FROM dashboard.list_users()", "SELECT * FROM auth.users",
                    "SELECT dashboard.delete_user(gen_random_uuid())"]:
            with pytest.raises(psycopg.Error) as e:
                app.execute(sql)
            assert e.value.sqlstate == "42501"
    assert one(su, "SELECT count(*) FROM auth.users") == 1


def test_injection_in_every_text_argument(web, su):
    for s in INJECTIONS:
        with pytest.raises(psycopg.Error) as e:
            invite(web, s)
        assert e.value.sqlstate == "22023"
        with pytest.raises(psycopg.Error) as e:
            invite(web, "ok@example.com", role=s)
        assert e.value.sqlstate == "22023"
        uid, _ = invite(web, f"m{len(s)}{INJECTIONS.index(s)}@example.com", meta={"note": s})
        assert one(web, "SELECT user_metadata->>'note' FROM dashboard.get_user(%s)", (uid,)) == s
    assert one(su, "SELECT count(*) FROM auth.users") == len(INJECTIONS)


def test_concurrent_invites_of_one_email_make_one_user(db, su):
    import threading

    results, barrier = [], threading.Barrier(6)

    def worker():
        c = db.conn("fb_web")
        barrier.wait()
        try:
            invite(c, "race@example.com")
            results.append("ok")
        except psycopg.Error as e:
            results.append(e.sqlstate)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["23505"] * 5 + ["ok"]
    assert one(su, "SELECT count(*) FROM auth.users WHERE email = 'race@example.com'") == 1
