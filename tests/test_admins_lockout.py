"""Admins' login lockout on the Admins page (issue 20): list_admins/get_admin
show locked_until and failed_attempts (SPEC's columns stay a prefix);
dashboard_auth.unlock_admin lifts a lockout — a dashboard_admin only, a
step-up action, audited."""
import psycopg
import pytest

from conftest import PASSWORD, as_session, one, setup_admin

SPEC_COLUMNS = ["id", "email", "full_name", "role", "totp_enabled", "last_login_at", "created_at", "active_sessions"]


def login(conn, email, password):
    return conn.execute("SELECT status FROM dashboard_auth.login(%s, %s)", (email, password)).fetchone()[0]


def lock(conn, email, n=3):
    for _ in range(n):
        assert login(conn, email, "wrong password, surely") == "invalid"
    assert login(conn, email, PASSWORD) == "locked"


@pytest.fixture
def env(su, web):
    admin_id, token = setup_admin(su)
    other = one(su, "SELECT dashboard_auth.create_admin('other@example.com', %s, 'Other', 'dashboard_admin')", (PASSWORD,))
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    su.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '3')")
    return dict(admin_id=admin_id, token=token, other=other)


def lockout(conn, email):
    return conn.execute("SELECT locked_until, failed_attempts FROM dashboard_auth.list_admins() WHERE email = %s",
                        (email,)).fetchone()


def test_columns_keep_spec_prefix(web, env):
    for sql in ("SELECT * FROM dashboard_auth.list_admins()", "SELECT * FROM dashboard_auth.get_admin(%s)"):
        cur = web.execute(sql, (env["other"],) if "%s" in sql else ())
        assert [d.name for d in cur.description] == SPEC_COLUMNS + ["locked_until", "failed_attempts"]


def test_failed_logins_count_then_lock(web, su, env):
    assert lockout(web, "other@example.com") == (None, 0)
    assert login(web, "other@example.com", "nope nope nope") == "invalid"
    assert login(web, "OTHER@example.com ", "nope nope nope") == "invalid"
    assert lockout(web, "other@example.com") == (None, 2)
    assert login(web, "other@example.com", "nope nope nope") == "invalid"
    until, failed = lockout(web, "other@example.com")
    assert until is not None and one(web, "SELECT %s > now()", (until,))
    assert one(web, "SELECT locked_until FROM dashboard_auth.get_admin(%s)", (env["other"],)) == until
    # others are not locked
    assert lockout(web, "root@example.com") == (None, 0)
    # an expired lock is not shown as locked
    su.execute("UPDATE dashboard_auth.login_throttle SET locked_until = now() - interval '1 second'")
    assert lockout(web, "other@example.com")[0] is None


def test_unlock_needs_step_up_then_lifts_the_lock_and_is_audited(web, su, env):
    lock(web, "other@example.com")
    as_session(web, env["token"])
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.unlock_admin(%s)", (env["other"],))
    assert e.value.sqlstate == "FBR01"
    web.execute("ROLLBACK")
    assert lockout(web, "other@example.com")[0] is not None
    as_session(web, env["token"], reauth=PASSWORD)
    assert one(web, "SELECT dashboard_auth.unlock_admin(%s)", (env["other"],)) is True
    web.execute("COMMIT")
    assert lockout(web, "other@example.com") == (None, 0)
    assert login(web, "other@example.com", PASSWORD) == "ok"
    row = su.execute("SELECT actor, target_id, details FROM dashboard_auth.audit_log WHERE action = 'admin.unlock'").fetchone()
    assert row[0] == "root@example.com" and row[1] == str(env["other"])
    assert row[2]["was_locked"] is True and row[2]["email"] == "other@example.com"
    # Not locked: false, still audited.
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.unlock_admin(%s)", (env["other"],)) is False
    web.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'admin.unlock'") == 2


def test_viewer_cannot_unlock_and_unknown_admin_is_not_found(web, env):
    lock(web, "other@example.com")
    token = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    as_session(web, token, reauth=PASSWORD)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.unlock_admin(%s)", (env["other"],))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    assert lockout(web, "other@example.com")[0] is not None
    # the viewer still reads the lockout
    as_session(web, token)
    assert lockout(web, "other@example.com")[0] is not None
    web.execute("ROLLBACK")
    for bad, state in [("00000000-0000-4000-8000-000000000000", "P0002"), (None, "22004")]:
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT dashboard_auth.unlock_admin(%s::uuid)", (bad,))
        assert e.value.sqlstate == state
