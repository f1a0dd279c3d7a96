"""Step-up re-authentication (issue 20 item 6): destructive functions refuse an
admin session that has not re-entered its password or a 2FA code within
session.reauth_window (SQLSTATE FBR01); dashboard_auth.reauthenticate records
it on the session. Callers without an admin identity are unaffected."""
import psycopg
import pytest
from conftest import PASSWORD, as_session, one, setup_admin
from test_mfa import code_at, enroll, fresh_step

INJECTIONS = ["'; DROP TABLE dashboard_auth.users; --", "1' OR '1'='1", "$1", "\\x00", "' UNION SELECT password_hash FROM dashboard_auth.credentials --"]


@pytest.fixture
def env(su, web):
    """An admin (root) with a session, a second admin, a viewer, an app user and an audited table."""
    uid, token = setup_admin(web)
    other = one(web, "SELECT dashboard_auth.create_admin('other@example.com', %s, 'Other', 'dashboard_admin')", (PASSWORD,))
    viewer = one(web, "SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')", (PASSWORD,))
    viewer_token = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    app_user = one(web, "SELECT user_id FROM dashboard.invite_user('app@example.com')")
    su.execute("CREATE TABLE public.audited (id int PRIMARY KEY)")
    su.execute("GRANT ALL ON public.audited TO fb_web")
    web.execute("SELECT dashboard.enable_audit('public.audited')")
    # issue 28: a live session of the second admin (revoke_session of it is a step-up action)
    one(web, "SELECT session_token FROM dashboard_auth.login('other@example.com', %s)", (PASSWORD,))
    other_session = one(su, "SELECT id FROM dashboard_auth.sessions WHERE user_id = %s", (other,))
    return dict(uid=uid, token=token, other=other, viewer=viewer, viewer_token=viewer_token, app_user=app_user,
                other_session=other_session, pw=PASSWORD)


# Every step-up function: (name, SQL, how to tell it took effect (SQL for superuser, expected value)).
STEP_UP = [
    ("delete_admin", "SELECT dashboard_auth.delete_admin(%(other)s)",
     ("SELECT count(*) FROM dashboard_auth.users WHERE email = 'other@example.com'", 0)),
    ("update_admin_role", "SELECT dashboard_auth.update_admin_role(%(other)s, 'dashboard_viewer')",
     ("SELECT role FROM dashboard_auth.users WHERE email = 'other@example.com'", "dashboard_viewer")),
    ("delete_user", "SELECT dashboard.delete_user(%(app_user)s)",
     ("SELECT count(*) FROM auth.users WHERE email = 'app@example.com'", 0)),
    ("update_user_role", "SELECT dashboard.update_user_role(%(app_user)s, 'service_role')",
     ("SELECT role FROM auth.users WHERE email = 'app@example.com'", "service_role")),
    ("revoke_all_sessions(other)", "SELECT dashboard_auth.revoke_all_sessions(%(other)s)",
     ("SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'session.revoke_all'", 1)),
    ("set_setting(lockout)", "SELECT dashboard_auth.set_setting('lockout.max_attempts', '7')",
     ("SELECT value::text FROM dashboard_auth.settings_store WHERE key = 'lockout.max_attempts'", "7")),
    ("set_setting(session)", "SELECT dashboard_auth.set_setting('session.reauth_window', '\"10 minutes\"')",
     ("SELECT value #>> '{}' FROM dashboard_auth.settings_store WHERE key = 'session.reauth_window'", "10 minutes")),
    ("set_setting(mfa)", "SELECT dashboard_auth.set_setting('mfa.required', 'true')",
     ("SELECT value::text FROM dashboard_auth.settings_store WHERE key = 'mfa.required'", "true")),
    ("set_setting(password)", "SELECT dashboard_auth.set_setting('password.min_length', '14')",
     ("SELECT value::text FROM dashboard_auth.settings_store WHERE key = 'password.min_length'", "14")),
    ("purge_audit", "SELECT dashboard_auth.purge_audit('0 seconds')",
     ("SELECT count(*) > 0 FROM dashboard_auth.audit_log WHERE action = 'audit.purge'", True)),
    ("disable_audit", "SELECT dashboard.disable_audit('public.audited')",
     ("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.audited'::regclass AND tgname LIKE 'fluxbase%%'", 0)),
    # issue 28, item 3: minting an admin, and ending another admin's session one by one
    ("create_admin(dashboard_admin)",
     "SELECT dashboard_auth.create_admin('minted@example.com', %(pw)s, 'Minted', 'dashboard_admin')",
     ("SELECT count(*) FROM dashboard_auth.users WHERE email = 'minted@example.com'", 1)),
    ("invite_admin(dashboard_admin)", "SELECT dashboard_auth.invite_admin('invited@example.com', 'dashboard_admin')",
     ("SELECT count(*) FROM dashboard_auth.invitations WHERE email = 'invited@example.com'", 1)),
    ("revoke_session(other)", "SELECT dashboard_auth.revoke_session(%(other_session)s)",
     ("SELECT count(*) FROM dashboard_auth.sessions s JOIN dashboard_auth.users u ON u.id = s.user_id "
      "WHERE u.email = 'other@example.com' AND s.revoked_at IS NOT NULL", 1)),
]


def refused_fbr01(conn, sql, params):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, params)
    conn.execute("ROLLBACK")
    assert e.value.sqlstate == "FBR01", (sql, e.value.sqlstate, str(e.value))
    assert e.value.diag.message_primary == "re-authentication required"
    assert "dashboard_auth.reauthenticate" in e.value.diag.message_hint
    return e.value


@pytest.mark.parametrize("name,sql,check", STEP_UP, ids=[s[0] for s in STEP_UP])
def test_step_up_function_refused_then_allowed_after_password(web, su, env, name, sql, check):
    as_session(web, env["token"])
    refused_fbr01(web, sql, env)
    # nothing happened
    assert one(su, check[0]) != check[1]
    # re-authenticate in one transaction, act in the next (as the web server and CLI do)
    as_session(web, env["token"])
    until = one(web, "SELECT dashboard_auth.reauthenticate(%s)", (PASSWORD,))
    assert until is not None
    web.execute("COMMIT")
    as_session(web, env["token"])
    web.execute(sql, env)
    web.execute("COMMIT")
    assert one(su, check[0]) == check[1]


def test_refusal_is_catchable_as_fbr01_in_plpgsql(web, env):
    as_session(web, env["token"])
    web.execute("""CREATE TEMP TABLE caught (state text)""")
    web.execute("""DO $$ BEGIN
            PERFORM dashboard_auth.purge_audit('0 seconds');
        EXCEPTION WHEN SQLSTATE 'FBR01' THEN INSERT INTO caught VALUES ('FBR01');
        END $$""")
    assert one(web, "SELECT state FROM caught") == "FBR01"
    # and an ordinary error afterwards keeps its own code
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.delete_admin(NULL)")
    assert e.value.sqlstate == "22004"
    web.execute("ROLLBACK")


def test_reauthenticate_returns_window_end_and_records_it(web, su, env):
    as_session(web, env["token"])
    until, now = web.execute("SELECT dashboard_auth.reauthenticate(%s), now()", (PASSWORD,)).fetchone()
    web.execute("COMMIT")
    assert (until - now).total_seconds() == 300  # default session.reauth_window: 5 minutes
    at = one(su, "SELECT reauthenticated_at FROM dashboard_auth.sessions WHERE user_id = %s AND revoked_at IS NULL", (env["uid"],))
    assert at == now
    rows = su.execute("SELECT success, actor, details->>'method' FROM dashboard_auth.audit_log WHERE action = 'session.reauth'").fetchall()
    assert rows == [(True, "root@example.com", "password")]


def test_reauth_is_per_session(web, env):
    second = one(web, "SELECT session_token FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,))
    as_session(web, second, reauth=PASSWORD)
    web.execute("COMMIT")
    as_session(web, env["token"])
    refused_fbr01(web, "SELECT dashboard_auth.delete_admin(%(other)s)", env)


def test_reauth_with_totp_code_and_backup_code(web, su, env):
    secret, codes = enroll(web, env["token"])
    # a TOTP code
    fresh_step()
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (code_at(secret),)) is not None
    web.execute("SELECT dashboard_auth.update_admin_role(%(other)s, 'dashboard_viewer')", env)
    web.execute("COMMIT")
    # the same code again is refused (replay)
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (code_at(secret),)) is None
    web.execute("COMMIT")
    # a backup code, consumed
    su.execute("UPDATE dashboard_auth.sessions SET reauthenticated_at = NULL")
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (codes[0],)) is not None
    web.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM dashboard_auth.backup_codes WHERE used_at IS NOT NULL") == 1
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (codes[0],)) is None  # used up
    web.execute("COMMIT")
    # the password still works for an admin with 2FA
    as_session(web, env["token"], reauth=PASSWORD)
    web.execute("SELECT dashboard_auth.delete_admin(%(other)s)", env)
    web.execute("COMMIT")
    methods = [r[0] for r in su.execute(
        "SELECT details->>'method' FROM dashboard_auth.audit_log WHERE action = 'session.reauth' AND success ORDER BY id")]
    assert methods == ["totp", "backup_code", "password"]
    # totp_disable is a step-up action too: refused outside the window even with a good code
    su.execute("UPDATE dashboard_auth.sessions SET reauthenticated_at = now() - interval '1 hour'")
    fresh_step()
    as_session(web, env["token"])
    refused_fbr01(web, "SELECT dashboard_auth.totp_disable(%s)", (code_at(secret, 1),))
    as_session(web, env["token"], reauth=PASSWORD)
    web.execute("SELECT dashboard_auth.totp_disable(%s)", (code_at(secret, 1),))
    web.execute("COMMIT")
    assert one(su, "SELECT totp_enabled FROM dashboard_auth.users WHERE email = 'root@example.com'") is False


def test_wrong_secret_fails_is_audited_and_counts_toward_lockout(web, su, env):
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '3')")  # as db:fb_web: no step-up
    for i, wrong in enumerate(["not-the-password-at-all", "000000"]):
        as_session(web, env["token"])
        assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (wrong,)) is None
        web.execute("COMMIT")
        assert one(su, "SELECT failed_attempts FROM dashboard_auth.login_throttle") == i + 1
        as_session(web, env["token"])
        refused_fbr01(web, "SELECT dashboard_auth.delete_admin(%(other)s)", env)
    rows = su.execute("SELECT success, actor, details->>'reason' FROM dashboard_auth.audit_log "
                      "WHERE action = 'session.reauth' ORDER BY id").fetchall()
    assert rows == [(False, "root@example.com", "wrong_password"), (False, "root@example.com", "mfa_not_enabled")]
    # the third failure locks the account and ends the session
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate('still-wrong-password')") is None
    web.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'login.lockout'") == 1
    with pytest.raises(psycopg.Error) as e:
        as_session(web, env["token"])
    web.execute("ROLLBACK")
    assert e.value.sqlstate == "28000"
    # and a login with the right password is locked out too
    assert one(web, "SELECT status FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)) == "locked"


def test_success_clears_earlier_failures(web, su, env):
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate('wrong-password-here')") is None
    web.execute("COMMIT")
    assert one(su, "SELECT failed_attempts FROM dashboard_auth.login_throttle") == 1
    as_session(web, env["token"], reauth=PASSWORD)
    web.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM dashboard_auth.login_throttle") == 0


def test_window_expires(web, su, env):
    as_session(web, env["token"], reauth=PASSWORD)
    web.execute("SELECT dashboard_auth.set_setting('session.reauth_window', '\"1 minute\"')")
    web.execute("COMMIT")
    # 59 seconds ago: still inside the 1-minute window
    su.execute("UPDATE dashboard_auth.sessions SET reauthenticated_at = now() - interval '59 seconds'")
    as_session(web, env["token"])
    web.execute("SELECT dashboard_auth.update_admin_role(%(other)s, 'dashboard_viewer')", env)
    web.execute("COMMIT")
    # 61 seconds ago: outside
    su.execute("UPDATE dashboard_auth.sessions SET reauthenticated_at = now() - interval '61 seconds'")
    as_session(web, env["token"])
    err = refused_fbr01(web, "SELECT dashboard_auth.update_admin_role(%(other)s, 'dashboard_admin')", env)
    assert "1 minute" in err.diag.message_detail
    # a time in the future (a hand-edited row) covers nothing
    su.execute("UPDATE dashboard_auth.sessions SET reauthenticated_at = now() + interval '1 hour'")
    as_session(web, env["token"])
    refused_fbr01(web, "SELECT dashboard_auth.update_admin_role(%(other)s, 'dashboard_admin')", env)


def test_window_setting_bounds(web):
    for bad, state in [('"59 seconds"', "22023"), ('"61 minutes"', "22023"), ('"2 hours"', "22023"), ("300", "22023"),
                       ('"soon"', "22007")]:
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT dashboard_auth.set_setting('session.reauth_window', %s)", (bad,))
        assert e.value.sqlstate == state, bad
    for good in ['"1 minute"', '"1 hour"', '"5 minutes"']:
        web.execute("SELECT dashboard_auth.set_setting('session.reauth_window', %s)", (good,))
    assert one(web, "SELECT default_value #>> '{}' FROM dashboard_auth.setting_definitions() WHERE key = 'session.reauth_window'") == "5 minutes"
    assert one(web, "SELECT value #>> '{}' FROM dashboard_auth.settings WHERE key = 'session.reauth_window'") == "5 minutes"


def test_non_security_setting_and_own_sessions_need_no_step_up(web, env):
    as_session(web, env["token"])
    web.execute("SELECT dashboard_auth.set_setting('impersonation.max_duration', '\"2 hours\"')")
    assert one(web, "SELECT dashboard_auth.revoke_all_sessions(%s)", (env["uid"],)) == 1
    web.execute("COMMIT")


def test_viewer_accounts_and_own_session_need_no_step_up(web, su, env):
    """Issue 28: only an admin with role dashboard_admin is a step-up action to
    create or invite; revoking one's own session stays free."""
    mine = one(web, "SELECT session_token FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,))
    assert mine
    mine_id = one(su, "SELECT id FROM dashboard_auth.sessions WHERE user_id = %s AND id <> ALL (SELECT id FROM "
                      "dashboard_auth.sessions WHERE token_digest = sha256(%s::bytea)) ORDER BY created_at DESC LIMIT 1",
                  (env["uid"], env["token"].encode()))
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.create_admin('v2@example.com', %s, 'V2', 'dashboard_viewer')", (PASSWORD,))
    assert one(web, "SELECT dashboard_auth.invite_admin('v3@example.com', 'dashboard_viewer')").startswith("fbi_")
    assert one(web, "SELECT dashboard_auth.invite_admin('v4@example.com')").startswith("fbi_")
    assert one(web, "SELECT dashboard_auth.revoke_session(%s)", (mine_id,)) is True
    web.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE email = 'v2@example.com'") == 1
    assert one(su, "SELECT count(*) FROM dashboard_auth.invitations WHERE email IN ('v3@example.com', 'v4@example.com')") == 2
    # the refusal names the action
    as_session(web, env["token"])
    e = refused_fbr01(web, "SELECT dashboard_auth.invite_admin('x@example.com', 'dashboard_admin')", ())
    assert "inviting an admin with role dashboard_admin" in e.diag.message_detail
    as_session(web, env["token"])
    e = refused_fbr01(web, "SELECT dashboard_auth.revoke_session(%s)", (env["other_session"],))
    assert "revoking another admin's session" in e.diag.message_detail


def test_database_role_callers_are_unaffected(web, su, env):
    """db:fb_web (a fluxbase_dashboard member without an admin session) and the
    superuser make step-up calls without re-authenticating, and they take effect."""
    def setting(key):
        return one(su, "SELECT value::text FROM dashboard_auth.settings_store WHERE key = %s", (key,))

    def purges():
        return one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'audit.purge'")

    for conn, n in ((web, "6"), (su, "8")):
        conn.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', %s)", (n,))
        assert setting("lockout.max_attempts") == n
        before = purges()
        conn.execute("SELECT dashboard_auth.purge_audit('100 years')")
        assert purges() == before + 1
    web.execute("SELECT dashboard.update_user_role(%(app_user)s, 'service_role')", env)
    assert one(su, "SELECT role FROM auth.users WHERE id = %(app_user)s", env) == "service_role"
    web.execute("SELECT dashboard_auth.revoke_all_sessions(%(other)s)", env)
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'session.revoke_all'") == 1
    web.execute("SELECT dashboard.disable_audit('public.audited')")
    assert one(su, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.audited'::regclass AND tgname LIKE 'fluxbase%%'") == 0
    web.execute("SELECT dashboard.delete_user(%(app_user)s)", env)
    assert one(su, "SELECT count(*) FROM auth.users WHERE id = %(app_user)s", env) == 0
    web.execute("SELECT dashboard_auth.create_admin('dbrole@example.com', %(pw)s, 'D', 'dashboard_admin')", env)
    web.execute("SELECT dashboard_auth.invite_admin('dbrole2@example.com', 'dashboard_admin')")
    su.execute("SELECT dashboard_auth.revoke_session(%(other_session)s)", env)
    su.execute("SELECT dashboard_auth.delete_admin(%(other)s)", env)
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %(other)s", env) == 0
    # reauthenticate itself needs an admin session
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.reauthenticate(%s)", (PASSWORD,))
    assert e.value.sqlstate == "42501"


@pytest.mark.parametrize("name,sql,check", STEP_UP, ids=[s[0] for s in STEP_UP])
def test_viewer_still_gets_42501(web, env, name, sql, check):
    as_session(web, env["viewer_token"], reauth=PASSWORD)
    with pytest.raises(psycopg.Error) as e:
        web.execute(sql, env)
    web.execute("ROLLBACK")
    assert e.value.sqlstate == "42501", (name, e.value.sqlstate, str(e.value))
    # and without re-auth: still 42501, not FBR01 (the role check comes first)
    as_session(web, env["viewer_token"])
    with pytest.raises(psycopg.Error) as e:
        web.execute(sql, env)
    web.execute("ROLLBACK")
    assert e.value.sqlstate == "42501"


@pytest.mark.parametrize("inj", INJECTIONS)
def test_injection_strings_as_secret(web, su, env, inj):
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (inj,)) is None
    web.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 3
    assert one(su, "SELECT reauthenticated_at FROM dashboard_auth.sessions WHERE user_id = %s", (env["uid"],)) is None


def test_bad_secret_arguments(web, env):
    for bad, state in [(None, "22004"), ("x" * 5000, "22023")]:
        as_session(web, env["token"])
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT dashboard_auth.reauthenticate(%s)", (bad,))
        web.execute("ROLLBACK")
        assert e.value.sqlstate == state


def test_enroll_only_session_cannot_reauthenticate(web, env):
    web.execute("SELECT dashboard_auth.set_setting('mfa.required', 'true')")
    token = one(web, "SELECT session_token FROM dashboard_auth.login('other@example.com', %s)", (PASSWORD,))
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.reauthenticate(%s)", (PASSWORD,))
    web.execute("ROLLBACK")
    assert e.value.sqlstate == "42501"


def test_locked_account_cannot_reauthenticate(web, su, env):
    """Failed logins that lock the account also stop re-authentication, even with the right password."""
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '2')")
    for _ in range(2):
        assert one(web, "SELECT status FROM dashboard_auth.login('root@example.com', 'wrong-password-xyz')") == "invalid"
    as_session(web, env["token"])
    assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (PASSWORD,)) is None
    web.execute("COMMIT")
    assert one(su, "SELECT details->>'reason' FROM dashboard_auth.audit_log WHERE action = 'session.reauth'") == "locked"
    as_session(web, env["token"])
    refused_fbr01(web, "SELECT dashboard_auth.delete_admin(%(other)s)", env)
