"""Admin password resets: request, reset, one-time expiring tokens stored as
digests, sessions revoked, same answer for unknown emails; change_password."""
import hashlib
import threading

import psycopg
import pytest
from conftest import PASSWORD, as_session, one, setup_admin

EMAIL = "root@example.com"
NEW_PASSWORD = "violet-otter-quarry-lantern"
INJECTIONS = ["'; DROP TABLE dashboard_auth.users; --", "1' OR '1'='1", "fbr_' OR 1=1 --", "$1"]


@pytest.fixture
def admin(su):
    return setup_admin(su)


def request(conn, email=EMAIL):
    return one(conn, "SELECT dashboard_auth.request_password_reset(%s)", (email,))


def reset(conn, token, password=NEW_PASSWORD):
    conn.execute("SELECT dashboard_auth.reset_password(%s, %s)", (token, password))


def login_status(conn, email=EMAIL, password=PASSWORD):
    return one(conn, "SELECT status FROM dashboard_auth.login(%s, %s)", (email, password))


def error_of(conn, sql, params=()):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, params)
    return e.value.sqlstate


def live(conn, token):
    return conn.execute("SELECT * FROM dashboard_auth.validate_session(%s)", (token,)).fetchall() != []


def test_reset_sets_password_and_revokes_sessions(admin, web, su):
    uid, token = admin
    other = one(web, "SELECT session_token FROM dashboard_auth.login(%s, %s)", (EMAIL, PASSWORD))
    assert live(web, token) and live(web, other)
    t = request(web, "  Root@Example.COM ")
    assert t.startswith("fbr_") and len(t) == 47
    reset(web, t)
    assert login_status(web) == "invalid"
    assert login_status(web, password=NEW_PASSWORD) == "ok"
    assert not live(web, token) and not live(web, other)
    assert one(su, "SELECT count(*) FROM dashboard_auth.sessions WHERE revoked_reason = 'password_reset'") == 2
    rows = su.execute(
        "SELECT action, success, actor FROM dashboard_auth.audit_log WHERE action LIKE 'password_reset.%' ORDER BY id"
    ).fetchall()
    assert rows == [("password_reset.request", True, "db:fb_web"), ("password_reset.complete", True, EMAIL)]
    # One-time.
    assert error_of(web, "SELECT dashboard_auth.reset_password(%s, 'another-fine-passphrase')", (t,)) == "28000"


def test_unknown_email_gets_same_shape_and_nothing_is_stored(admin, web, su):
    known = request(web)
    unknown = request(web, "nobody@example.com")
    assert unknown.startswith("fbr_") and len(unknown) == len(known)
    assert one(su, "SELECT count(*) FROM dashboard_auth.password_resets") == 1
    assert error_of(web, "SELECT dashboard_auth.reset_password(%s, %s)", (unknown, NEW_PASSWORD)) == "28000"
    row = su.execute(
        "SELECT success, details->>'reason' FROM dashboard_auth.audit_log "
        "WHERE action = 'password_reset.request' AND target_id = 'nobody@example.com'"
    ).fetchone()
    assert row == (False, "unknown_email")


def test_expired_superseded_and_bad_tokens(admin, web, su):
    t1 = request(web)
    assert one(su, "SELECT expires_at - created_at FROM dashboard_auth.password_resets").total_seconds() == 3600
    t2 = request(web)
    # The newer request voids the older token.
    assert error_of(web, "SELECT dashboard_auth.reset_password(%s, %s)", (t1, NEW_PASSWORD)) == "28000"
    su.execute("UPDATE dashboard_auth.password_resets SET expires_at = now() - interval '1 second'")
    assert error_of(web, "SELECT dashboard_auth.reset_password(%s, %s)", (t2, NEW_PASSWORD)) == "28000"
    for bad in ["fbr_" + "Z" * 43, "", "garbage", t2[:-1], t2.replace("fbr_", "fbi_")] + INJECTIONS:
        assert error_of(web, "SELECT dashboard_auth.reset_password(%s, %s)", (bad, NEW_PASSWORD)) == "28000", bad
    assert error_of(web, "SELECT dashboard_auth.reset_password(NULL, %s)", (NEW_PASSWORD,)) == "22004"
    assert login_status(web) == "ok"  # nothing changed


def test_weak_password_keeps_token_usable(admin, web, su):
    t = request(web)
    assert error_of(web, "SELECT dashboard_auth.reset_password(%s, 'short')", (t,)) == "22023"
    assert error_of(web, "SELECT dashboard_auth.reset_password(%s, NULL)", (t,)) == "22004"
    assert error_of(web, "SELECT dashboard_auth.reset_password(%s, 'my-root-password-xyz')", (t,)) == "22023"  # contains email
    reset(web, t)
    assert login_status(web, password=NEW_PASSWORD) == "ok"


def test_reset_lifts_lockout(admin, web, su):
    su.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '2')")
    for _ in range(2):
        assert login_status(web, password="wrong-password-here") == "invalid"
    assert login_status(web) == "locked"
    reset(web, request(web))
    assert login_status(web, password=NEW_PASSWORD) == "ok"


def test_concurrent_resets_with_one_token(admin, db, su):
    web = db.conn("fb_web")
    t = request(web)
    n = 4
    conns = [db.conn("fb_web") for _ in range(n)]
    barrier = threading.Barrier(n)
    results = []

    def run(i, c):
        barrier.wait()
        try:
            reset(c, t, f"{NEW_PASSWORD}-{i}")
            results.append(("ok", i))
        except psycopg.Error as e:
            results.append(("err", e.sqlstate))

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    oks = [r[1] for r in results if r[0] == "ok"]
    assert len(oks) == 1
    assert {r[1] for r in results if r[0] == "err"} == {"28000"}
    assert login_status(web, password=f"{NEW_PASSWORD}-{oks[0]}") == "ok"


def test_no_token_in_clear(admin, web, su):
    t = request(web)
    assert one(su, "SELECT token_digest FROM dashboard_auth.password_resets") == hashlib.sha256(t.encode()).digest()
    cols = su.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables x "
        "ON x.table_schema = c.table_schema AND x.table_name = c.table_name "
        "WHERE c.table_schema = 'dashboard_auth' AND x.table_type = 'BASE TABLE' "
        "AND c.data_type IN ('text', 'jsonb', 'character varying', 'bytea')"
    ).fetchall()
    for table, col in cols:
        assert not one(su, f'SELECT count(*) FROM dashboard_auth."{table}" WHERE strpos("{col}"::text, %s) > 0', (t[4:],)), (table, col)
        assert not one(su, f'SELECT count(*) FROM dashboard_auth."{table}" WHERE strpos("{col}"::text, %s) > 0',
                       ("\\x" + t.encode().hex(),)), (table, col)
    assert error_of(web, "SELECT * FROM dashboard_auth.password_resets") == "42501"


def test_role_refusals(admin, db, web, su):
    uid, token = admin
    as_session(web, token)
    web.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Vi Ewer', 'dashboard_viewer')", (PASSWORD,))
    web.execute("COMMIT")
    vs = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    as_session(web, vs)
    assert error_of(web, "SELECT dashboard_auth.request_password_reset(%s)", (EMAIL,)) == "42501"
    web.execute("ROLLBACK")
    as_session(web, vs)
    assert request(web, "viewer@example.com").startswith("fbr_")
    web.execute("COMMIT")
    plain = db.conn("fb_plain")
    app = db.conn("fb_app")
    t = request(web)
    for conn, role in [(plain, None), (app, "anon"), (app, "authenticated")]:
        if role:
            conn.execute(f"SET ROLE {role}")
        assert error_of(conn, "SELECT dashboard_auth.request_password_reset(%s)", (EMAIL,)) == "42501"
        assert error_of(conn, "SELECT dashboard_auth.reset_password(%s, %s)", (t, NEW_PASSWORD)) == "42501"
        conn.execute("RESET ROLE")
    reset(web, t)  # still unused


def test_injection_strings_as_email(admin, web, su):
    for s in INJECTIONS:
        assert error_of(web, "SELECT dashboard_auth.request_password_reset(%s)", (s,)) == "22023"
    assert error_of(web, "SELECT dashboard_auth.request_password_reset(NULL)") == "22004"
    assert one(su, "SELECT count(*) FROM dashboard_auth.password_resets") == 0


def test_change_password_revokes_other_sessions(admin, web, su):
    uid, token = admin
    other = one(web, "SELECT session_token FROM dashboard_auth.login(%s, %s)", (EMAIL, PASSWORD))
    as_session(web, token)
    web.execute("SELECT dashboard_auth.change_password(%s, %s)", (PASSWORD, NEW_PASSWORD))
    web.execute("COMMIT")
    assert live(web, token) and not live(web, other)
    assert login_status(web, password=NEW_PASSWORD) == "ok"
