"""Admin accounts: first-run setup, creation, roles, deletion, login, lockout, passwords."""
import threading
import time

import psycopg
import pytest
from argon2 import PasswordHasher, Type

from conftest import PASSWORD, as_session, one, setup_admin

INJECTIONS = ["'; DROP TABLE dashboard_auth.users; --", "x' OR '1'='1", "\"; SELECT pg_sleep(5); --", "$$; DROP SCHEMA auth CASCADE; $$"]


def admins(conn):
    return one(conn, "SELECT count(*) FROM dashboard_auth.users")


# --- first-run setup -------------------------------------------------------

def test_setup_creates_admin_session_and_audit(web, su):
    assert one(web, "SELECT dashboard_auth.needs_setup()") is True
    uid, token = setup_admin(web, email="Root@Example.COM")
    assert one(su, "SELECT email FROM dashboard_auth.users WHERE id = %s", (uid,)) == "root@example.com"
    assert one(su, "SELECT role FROM dashboard_auth.users WHERE id = %s", (uid,)) == "dashboard_admin"
    assert one(web, "SELECT user_id FROM dashboard_auth.validate_session(%s)", (token,)) == uid
    assert one(web, "SELECT dashboard_auth.needs_setup()") is False
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'admin.setup' AND actor_id = %s", (uid,)) == 1


def test_second_setup_is_refused(web):
    setup_admin(web)
    with pytest.raises(psycopg.Error) as e:
        setup_admin(web, email="other@example.com")
    assert e.value.sqlstate == "55000"
    assert "already been completed" in str(e.value)
    assert admins(web) == 1


def test_setup_race_gives_exactly_one_admin(db):
    n = 20
    barrier = threading.Barrier(n)
    results = [None] * n
    conns = [db.conn("fb_web") for _ in range(n)]

    def attempt(i):
        barrier.wait()
        try:
            setup_admin(conns[i], email=f"racer{i}@example.com")
            results[i] = "ok"
        except psycopg.Error as e:
            results[i] = e.sqlstate

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results.count("ok") == 1, results
    assert all(r in ("55000", "23505") for r in results if r != "ok"), results
    assert admins(db.conn()) == 1


@pytest.mark.parametrize(
    "email,password,name,state,fragment",
    [
        (None, PASSWORD, "Root", "22004", "email is required"),
        ("", PASSWORD, "Root", "22023", "email is required"),
        ("not-an-email", PASSWORD, "Root", "22023", "not a valid email"),
        ("a@" + "b" * 1_000_000 + ".com", PASSWORD, "Root", "22023", "too long"),
        ("root@example.com", None, "Root", "22004", "password is required"),
        ("root@example.com", "short", "Root", "22023", "at least 12"),
        ("root@example.com", "password1234", "Root", "22023", "commonly used"),
        ("root@example.com", "x" * 1_000_000, "Root", "22023", "too long"),
        ("root@example.com", PASSWORD, "R" * 1_000_000, "22023", "too long"),
        ("root@example.com", PASSWORD, "bad\x01name", "22023", "control characters"),
    ] + [(inj, PASSWORD, "Root", "22023", "not a valid email") for inj in INJECTIONS],
)
def test_setup_bad_input_is_refused_and_writes_nothing(web, email, password, name, state, fragment):
    with pytest.raises(psycopg.Error) as e:
        setup_admin(web, email=email, password=password, name=name)
    assert e.value.sqlstate == state
    assert fragment in str(e.value)
    assert one(web, "SELECT dashboard_auth.needs_setup()") is True
    assert one(web, "SELECT count(*) FROM dashboard_auth.sessions") == 0


# --- admin management -------------------------------------------------------

def test_create_list_get_admin(web):
    setup_admin(web)
    vid = one(web, "SELECT dashboard_auth.create_admin('Viewer@Example.com', %s, 'Vic Viewer', 'dashboard_viewer')", (PASSWORD,))
    rows = web.execute("SELECT email, role, totp_enabled, active_sessions FROM dashboard_auth.list_admins() ORDER BY email").fetchall()
    assert rows == [("root@example.com", "dashboard_admin", False, 1), ("viewer@example.com", "dashboard_viewer", False, 0)]
    assert web.execute("SELECT email, full_name FROM dashboard_auth.get_admin(%s)", (vid,)).fetchone() == ("viewer@example.com", "Vic Viewer")
    # No secret column leaks through the listing.
    cols = [d.name for d in web.execute("SELECT * FROM dashboard_auth.list_admins()").description]
    assert not any("hash" in c or "secret" in c or "password" in c for c in cols)


def test_create_admin_refuses_duplicates_case_insensitively(web):
    setup_admin(web)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.create_admin('ROOT@example.com', %s, 'Dup')", (PASSWORD,))
    assert e.value.sqlstate == "23505"


def test_create_admin_refuses_unknown_role(web):
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.create_admin('a@example.com', %s, 'A', 'superuser')", (PASSWORD,))
    assert e.value.sqlstate == "22023"


def test_get_admin_unknown_is_not_found(web):
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard_auth.get_admin('00000000-0000-0000-0000-000000000000')")
    assert e.value.sqlstate == "P0002"


def test_viewer_session_may_read_but_not_write(web):
    setup_admin(web)
    web.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    token = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    as_session(web, token)
    assert one(web, "SELECT count(*) FROM dashboard_auth.list_admins()") == 2
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.create_admin('x@example.com', %s, 'X')", (PASSWORD,))
    assert e.value.sqlstate == "42501"
    assert "dashboard_viewer" in str(e.value)
    web.execute("ROLLBACK")
    assert one(web, "SELECT count(*) FROM dashboard_auth.users") == 2


def test_last_admin_cannot_be_demoted_or_deleted(web):
    uid, _ = setup_admin(web)
    for sql in ["SELECT dashboard_auth.update_admin_role(%s, 'dashboard_viewer')", "SELECT dashboard_auth.delete_admin(%s)"]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql, (uid,))
        assert e.value.sqlstate == "P0001"
        assert "last dashboard_admin" in str(e.value)
    assert one(web, "SELECT role FROM dashboard_auth.users WHERE id = %s", (uid,)) == "dashboard_admin"


def test_role_change_and_delete_with_two_admins(web, su):
    uid, _ = setup_admin(web)
    other = one(web, "SELECT dashboard_auth.create_admin('two@example.com', %s, 'Two')", (PASSWORD,))
    web.execute("SELECT dashboard_auth.update_admin_role(%s, 'dashboard_viewer')", (uid,))
    assert one(web, "SELECT role FROM dashboard_auth.users WHERE id = %s", (uid,)) == "dashboard_viewer"
    web.execute("SELECT dashboard_auth.delete_admin(%s)", (uid,))
    assert one(web, "SELECT count(*) FROM dashboard_auth.users") == 1
    # The deleted admin's sessions went with them.
    assert one(su, "SELECT count(*) FROM dashboard_auth.sessions WHERE user_id = %s", (uid,)) == 0
    actions = [r[0] for r in su.execute("SELECT action FROM dashboard_auth.audit_log ORDER BY id").fetchall()]
    assert "admin.role_change" in actions and "admin.delete" in actions
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.delete_admin(%s)", (other,))
    assert e.value.sqlstate == "P0001"


def test_concurrent_demotions_leave_one_admin(db):
    web = db.conn("fb_web")
    a, _ = setup_admin(web)
    b = one(web, "SELECT dashboard_auth.create_admin('b@example.com', %s, 'B')", (PASSWORD,))
    c1, c2 = db.conn("fb_web", autocommit=False), db.conn("fb_web", autocommit=False)
    c1.execute("SELECT dashboard_auth.update_admin_role(%s, 'dashboard_viewer')", (a,))
    outcome = {}

    def second():
        try:
            c2.execute("SELECT dashboard_auth.update_admin_role(%s, 'dashboard_viewer')", (b,))
            c2.commit()
            outcome["b"] = "ok"
        except psycopg.Error as e:
            c2.rollback()
            outcome["b"] = e.sqlstate

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.3)  # c2 now waits for c1's row locks
    c1.commit()
    t.join()
    assert outcome["b"] == "P0001"
    assert one(web, "SELECT count(*) FROM dashboard_auth.users WHERE role = 'dashboard_admin'") == 1


# --- login -------------------------------------------------------------------

def login(conn, email, password, ip=None):
    return conn.execute("SELECT status, session_token, expires_at FROM dashboard_auth.login(%s, %s, %s)", (email, password, ip)).fetchone()


def test_login_ok_wrong_password_unknown_email(web, su):
    setup_admin(web)
    status, token, expires = login(web, "ROOT@example.com", PASSWORD, "10.1.2.3")
    assert status == "ok" and token.startswith("fbs_") and expires is not None
    assert login(web, "root@example.com", "wrong-password-here") == ("invalid", None, None)
    assert login(web, "nobody@example.com", PASSWORD) == ("invalid", None, None)
    rows = su.execute(
        "SELECT action, success, details->>'reason', host(ip) FROM dashboard_auth.audit_log WHERE action LIKE 'login.%' ORDER BY id"
    ).fetchall()
    assert rows == [
        ("login.success", True, None, "10.1.2.3"),
        ("login.failed", False, "wrong_password", None),
        ("login.failed", False, "unknown_email", None),
    ]
    assert one(su, "SELECT last_login_at IS NOT NULL FROM dashboard_auth.users") is True


def test_unknown_email_costs_about_as_much_as_wrong_password(web):
    setup_admin(web)

    def timed(email):
        best = 1e9
        for _ in range(3):
            t = time.perf_counter()
            login(web, email, "wrong-password-here")
            best = min(best, time.perf_counter() - t)
        return best

    known, unknown = timed("root@example.com"), timed("ghost@example.com")
    # Both run one argon2id verification; without the dummy check unknown would be ~100x faster.
    assert 0.4 < unknown / known < 2.5, (known, unknown)


@pytest.mark.parametrize("email", ["root@example.com", "ghost@example.com"])
def test_lockout_after_max_attempts_for_known_and_unknown_emails(web, su, email):
    setup_admin(web)
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '3')")
    answers = [login(web, email, "wrong-password-here")[0] for _ in range(3)]
    assert answers == ["invalid"] * 3
    # Now even the right password is refused, and unknown/known emails look alike.
    assert login(web, email, PASSWORD)[0] == "locked"
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'login.lockout'") == 1
    # When the lock runs out, the right password works again (time travel by backdating).
    su.execute("UPDATE dashboard_auth.login_throttle SET locked_until = now() - interval '1 second'")
    expected = "ok" if email.startswith("root") else "invalid"
    assert login(web, email, PASSWORD)[0] == expected


def test_lockout_holds_under_concurrent_attempts(db):
    web = db.conn("fb_web")
    setup_admin(web)
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '5')")
    n = 12
    conns = [db.conn("fb_web") for _ in range(n)]
    barrier = threading.Barrier(n)
    answers = [None] * n

    def attempt(i):
        barrier.wait()
        answers[i] = login(conns[i], "root@example.com", "wrong-password-here")[0]

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert answers.count("invalid") == 5, answers
    assert answers.count("locked") == n - 5, answers


def test_success_resets_failure_count(web):
    setup_admin(web)
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '3')")
    for _ in range(2):
        login(web, "root@example.com", "wrong-password-here")
    assert login(web, "root@example.com", PASSWORD)[0] == "ok"
    for _ in range(2):
        assert login(web, "root@example.com", "wrong-password-here")[0] == "invalid"
    assert login(web, "root@example.com", PASSWORD)[0] == "ok"


@pytest.mark.parametrize("bad", [None, "x" * 1_000_000])
def test_login_bad_password_input(web, bad):
    setup_admin(web)
    with pytest.raises(psycopg.Error) as e:
        login(web, "root@example.com", bad)
    assert e.value.sqlstate in ("22004", "22023")


@pytest.mark.parametrize("inj", INJECTIONS)
def test_login_injection_in_email_is_just_a_bad_email(web, inj):
    setup_admin(web)
    with pytest.raises(psycopg.Error) as e:
        login(web, inj, PASSWORD)
    assert e.value.sqlstate == "22023"
    assert one(web, "SELECT count(*) FROM dashboard_auth.users") == 1


def test_password_hash_is_argon2id_and_upgraded_when_weaker(web, su):
    uid, _ = setup_admin(web)
    stored = one(su, "SELECT password_hash FROM dashboard_auth.credentials")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(PASSWORD)
    su.execute("UPDATE dashboard_auth.credentials SET password_hash = %s", (weak,))
    assert login(web, "root@example.com", PASSWORD)[0] == "ok"
    upgraded = one(su, "SELECT password_hash FROM dashboard_auth.credentials")
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and upgraded != weak
    assert login(web, "root@example.com", PASSWORD)[0] == "ok"


# --- passwords -------------------------------------------------------------------

def test_change_password_revokes_other_sessions(web):
    _, first = setup_admin(web)
    second = login(web, "root@example.com", PASSWORD)[1]
    as_session(web, second)
    web.execute("SELECT dashboard_auth.change_password(%s, 'a-brand-new-passphrase')", (PASSWORD,))
    web.execute("COMMIT")
    assert one(web, "SELECT count(*) FROM dashboard_auth.validate_session(%s)", (first,)) == 0
    assert one(web, "SELECT count(*) FROM dashboard_auth.validate_session(%s)", (second,)) == 1
    assert login(web, "root@example.com", PASSWORD)[0] == "invalid"
    assert login(web, "root@example.com", "a-brand-new-passphrase")[0] == "ok"


@pytest.mark.parametrize("old,new,state", [
    ("wrong-old-password", "a-brand-new-passphrase", "28P01"),
    (PASSWORD, "short", "22023"),
    (PASSWORD, PASSWORD, "22023"),
    (PASSWORD, None, "22004"),
])
def test_change_password_bad_paths(web, old, new, state):
    _, token = setup_admin(web)
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.change_password(%s, %s)", (old, new))
    assert e.value.sqlstate == state
    web.execute("ROLLBACK")
    assert login(web, "root@example.com", PASSWORD)[0] == "ok"


def test_change_password_needs_an_admin_session(web):
    setup_admin(web)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.change_password(%s, 'a-brand-new-passphrase')", (PASSWORD,))
    assert e.value.sqlstate == "42501"


def test_min_length_setting_applies(web):
    web.execute("SELECT dashboard_auth.set_setting('password.min_length', '20')")
    with pytest.raises(psycopg.Error) as e:
        setup_admin(web, password="only-19-characters!")
    assert "at least 20" in str(e.value)
