"""Admin sessions: validation (the hot path), timeouts, use_session, logout, revocation, settings."""
import psycopg
import pytest

from conftest import PASSWORD, as_session, one, setup_admin


def valid(conn, token):
    return conn.execute("SELECT user_id, email, role, expires_at FROM dashboard_auth.validate_session(%s)", (token,)).fetchall()


def login_token(conn, email="root@example.com"):
    return one(conn, "SELECT session_token FROM dashboard_auth.login(%s, %s)", (email, PASSWORD))


def test_validate_session_good_and_bad_tokens(web):
    uid, token = setup_admin(web)
    [(user_id, email, role, expires)] = valid(web, token)
    assert (user_id, email, role) == (uid, "root@example.com", "dashboard_admin")
    for bad in [None, "", "fbs_", token[:-1], token + "x", token.replace("fbs_", "fbm_"), "fbs_" + "A" * 43,
                "' OR 1=1 --", "x" * 1_000_000, token.upper()]:
        assert valid(web, bad) == [], bad


def test_idle_and_absolute_timeouts(web, su):
    _, token = setup_admin(web)
    t2, t3 = login_token(web), login_token(web)
    # idle: not used for longer than session.idle_timeout (30 minutes by default)
    su.execute("UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '31 minutes' WHERE token_digest = sha256(%s::bytea)", (token.encode(),))
    assert valid(web, token) == []
    # absolute: past expires_at, however recently used
    su.execute("UPDATE dashboard_auth.sessions SET expires_at = now() - interval '1 second' WHERE token_digest = sha256(%s::bytea)", (t2.encode(),))
    assert valid(web, t2) == []
    # a shorter idle timeout applies to existing sessions at once
    su.execute("UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '6 minutes' WHERE token_digest = sha256(%s::bytea)", (t3.encode(),))
    web.execute("SELECT dashboard_auth.set_setting('session.idle_timeout', '\"5 minutes\"')")
    assert valid(web, t3) == []
    web.execute("SELECT dashboard_auth.set_setting('session.idle_timeout', '\"10 minutes\"')")
    assert len(valid(web, t3)) == 1


def test_validate_refreshes_last_seen_only_when_stale(web, su):
    _, token = setup_admin(web)
    digest = (token.encode(),)
    su.execute("UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '10 minutes' WHERE token_digest = sha256(%s::bytea)", digest)
    assert len(valid(web, token)) == 1
    age = one(su, "SELECT extract(epoch FROM now() - last_seen_at) FROM dashboard_auth.sessions WHERE token_digest = sha256(%s::bytea)", digest)
    assert age < 5
    su.execute("UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '20 seconds' WHERE token_digest = sha256(%s::bytea)", digest)
    valid(web, token)
    age = one(su, "SELECT extract(epoch FROM now() - last_seen_at) FROM dashboard_auth.sessions WHERE token_digest = sha256(%s::bytea)", digest)
    assert age >= 19  # fresh enough: no write on the hot path


def test_tokens_are_stored_only_as_digests(web, su):
    _, token = setup_admin(web)
    tokens = [token, login_token(web)]
    dump = one(su, """
        SELECT string_agg(t::text, ' ') FROM (
            SELECT to_jsonb(x)::text AS t FROM dashboard_auth.sessions x
            UNION ALL SELECT to_jsonb(x)::text FROM dashboard_auth.audit_log x
            UNION ALL SELECT to_jsonb(x)::text FROM dashboard_auth.users x
            UNION ALL SELECT to_jsonb(x)::text FROM dashboard_auth.credentials x) s""")
    for t in tokens:
        assert t not in dump and t[4:] not in dump
    assert one(su, "SELECT count(*) FROM dashboard_auth.sessions WHERE token_digest = sha256(%s::bytea)", (tokens[1].encode(),)) == 1
    assert PASSWORD not in dump


def test_use_session_sets_actor_for_the_transaction_only(web, su):
    uid, token = setup_admin(web)
    as_session(web, token)
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '7')")
    web.execute("COMMIT")
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '8')")  # new transaction: no admin
    as_session(web, token)
    web.execute("ROLLBACK")
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '9')")  # after an abort: no admin either
    rows = su.execute("SELECT actor, actor_id FROM dashboard_auth.audit_log WHERE action = 'settings.update' ORDER BY id").fetchall()
    assert rows == [("root@example.com", uid), ("db:fb_web", None), ("db:fb_web", None)]


def test_use_session_cannot_be_faked_with_a_guc(web, su):
    uid, token = setup_admin(web)
    web.execute("SELECT set_config('fluxbase.actor', %s, false), set_config('dashboard_auth.user_id', %s, false)", ("root@example.com", str(uid)))
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '7')")
    assert one(su, "SELECT actor FROM dashboard_auth.audit_log WHERE action = 'settings.update'") == "db:fb_web"


@pytest.mark.parametrize("bad", [None, "", "fbs_nope", "' OR 1=1 --"])
def test_use_session_rejects_bad_tokens(web, bad):
    setup_admin(web)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.use_session(%s)", (bad,))
    assert e.value.sqlstate == "28000"


def test_logout(web, su):
    _, token = setup_admin(web)
    assert one(web, "SELECT dashboard_auth.logout(%s)", (token,)) is True
    assert valid(web, token) == []
    assert one(web, "SELECT dashboard_auth.logout(%s)", (token,)) is False
    assert one(web, "SELECT dashboard_auth.logout('garbage')") is False
    assert one(su, "SELECT revoked_reason FROM dashboard_auth.sessions") == "logout"
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'session.logout'") == 1


def test_list_and_revoke_sessions(web, su):
    uid, token = setup_admin(web)
    other = login_token(web)
    as_session(web, token)
    rows = web.execute("SELECT id, user_id, is_current FROM dashboard_auth.list_sessions()").fetchall()
    assert len(rows) == 2 and sum(r[2] for r in rows) == 1
    other_id = [r[0] for r in rows if not r[2]][0]
    assert one(web, "SELECT dashboard_auth.revoke_session(%s)", (other_id,)) is True
    web.execute("COMMIT")
    assert valid(web, other) == []
    assert one(web, "SELECT count(*) FROM dashboard_auth.list_sessions(%s)", (uid,)) == 1
    login_token(web)
    login_token(web)
    assert one(web, "SELECT dashboard_auth.revoke_all_sessions(%s)", (uid,)) == 3
    assert valid(web, token) == []
    actions = [r[0] for r in su.execute("SELECT action FROM dashboard_auth.audit_log WHERE action LIKE 'session.%'")]
    assert actions.count("session.revoke") == 1 and actions.count("session.revoke_all") == 1


def test_revoke_bad_ids(web):
    setup_admin(web)
    for sql, state in [
        ("SELECT dashboard_auth.revoke_session('00000000-0000-0000-0000-000000000000')", "P0002"),
        ("SELECT dashboard_auth.revoke_all_sessions('00000000-0000-0000-0000-000000000000')", "P0002"),
        ("SELECT dashboard_auth.revoke_session(NULL)", "22004"),
        ("SELECT dashboard_auth.revoke_session('not-a-uuid')", "22P02"),
    ]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql)
        assert e.value.sqlstate == state, sql


def test_viewer_may_revoke_own_but_not_others_sessions(web):
    uid, admin_token = setup_admin(web)
    web.execute("SELECT dashboard_auth.create_admin('v@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    vtoken = login_token(web, "v@example.com")
    vid = one(web, "SELECT user_id FROM dashboard_auth.validate_session(%s)", (vtoken,))
    as_session(web, vtoken)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.revoke_all_sessions(%s)", (uid,))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    as_session(web, vtoken)
    assert one(web, "SELECT dashboard_auth.revoke_all_sessions(%s)", (vid,)) == 1
    web.execute("COMMIT")
    assert len(valid(web, admin_token)) == 1


# --- settings ----------------------------------------------------------------

def test_settings_get_set_and_view(web, su):
    assert one(web, "SELECT dashboard_auth.get_setting('password.min_length')") == 12
    web.execute("SELECT dashboard_auth.set_setting('session.idle_timeout', '\"10 minutes\"')")
    assert one(web, "SELECT value FROM dashboard_auth.settings WHERE key = 'session.idle_timeout'") == "10 minutes"
    row = su.execute("SELECT details FROM dashboard_auth.audit_log WHERE action = 'settings.update'").fetchone()[0]
    assert row == {"old": "30 minutes", "new": "10 minutes"}


@pytest.mark.parametrize("key,value,state", [
    ("no.such.key", "1", "22023"),
    ("lockout.max_attempts", "0", "22023"),
    ("lockout.max_attempts", "\"5\"", "22023"),
    ("mfa.required", "\"yes\"", "22023"),
    ("session.idle_timeout", "\"1 second\"", "22023"),
    ("session.idle_timeout", "\"soon\"", "22007"),
    ("session.idle_timeout", "\"1 minute'; DROP TABLE x; --\"", "22007"),
    ("'; DROP TABLE dashboard_auth.users; --", "1", "22023"),
    (None, "1", "22004"),
])
def test_settings_refuse_bad_values(web, key, value, state):
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.set_setting(%s, %s::jsonb)", (key, value))
    assert e.value.sqlstate == state
    assert one(web, "SELECT count(*) FROM dashboard_auth.settings WHERE value <> default_value") == 0
