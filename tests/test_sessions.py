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
    as_session(web, token, reauth=PASSWORD)  # a lockout.* setting is a step-up action
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


# --- the direct index probe (src/admin/fastpath.rs) against the SQL it replaced ----
#
# `ORACLE` is the query validate_session ran through SPI before it became two
# direct index probes. Each check runs both in one transaction (same now())
# and compares the rows.

ORACLE = """
    SELECT s.user_id, u.email, u.role, least(s.expires_at, s.last_seen_at + s.idle_timeout)
    FROM dashboard_auth.sessions s
    JOIN dashboard_auth.users u ON u.id = s.user_id
    WHERE s.token_digest = sha256(convert_to(%s, 'UTF8'))
      AND s.scope = 'full'
      AND s.revoked_at IS NULL
      AND s.expires_at > now()
      AND s.last_seen_at + s.idle_timeout > now()"""

SESSION_OF = "WHERE token_digest = sha256(convert_to(%s, 'UTF8'))"


def same_as_sql(conn, token):
    """validate_session's rows, asserted equal to the old SQL's in one transaction."""
    with conn.transaction():
        want = conn.execute(ORACLE, (token,)).fetchall()  # first: validate may refresh last_seen_at
        got = valid(conn, token)
    assert got == want
    return got


def test_fastpath_idle_boundary_exact_and_one_second_either_side(db, su):
    _, token = setup_admin(su)
    other = db.conn()
    for offset, alive in [(-1, False), (0, False), (1, True)]:
        # now() is fixed at the transaction's start; the row is backdated
        # relative to it from another connection, and seen by the next statement
        # (READ COMMITTED) while this transaction has written nothing.
        with su.transaction():
            t0 = one(su, "SELECT now()")
            other.execute(f"UPDATE dashboard_auth.sessions SET last_seen_at = %s::timestamptz - idle_timeout + %s * interval '1 second' {SESSION_OF}",
                          (t0, offset, token))
            want = su.execute(ORACLE, (token,)).fetchall()
            got = valid(su, token)
        assert got == want and len(got) == (1 if alive else 0), offset
        # the same after a write in the transaction (SPI then ran read-write)
        with su.transaction():
            su.execute(f"UPDATE dashboard_auth.sessions SET last_seen_at = now() - idle_timeout + %s * interval '1 second' {SESSION_OF}",
                       (offset, token))
            want = su.execute(ORACLE, (token,)).fetchall()
            got = valid(su, token)
        assert got == want and len(got) == (1 if alive else 0), offset
    # absolute expiry: exactly now() is expired, one second later is not
    su.execute(f"UPDATE dashboard_auth.sessions SET last_seen_at = now() {SESSION_OF}", (token,))
    for offset, alive in [(0, False), (1, True)]:
        with su.transaction():
            su.execute(f"UPDATE dashboard_auth.sessions SET expires_at = now() + %s * interval '1 second' {SESSION_OF}", (offset, token))
            want = su.execute(ORACLE, (token,)).fetchall()
            got = valid(su, token)
        assert got == want and len(got) == (1 if alive else 0), offset


def test_fastpath_months_days_and_time_zones(web, su):
    uid, token = setup_admin(web)
    web.execute("SELECT dashboard_auth.set_setting('session.idle_timeout', '\"1 day\"')")
    assert one(su, f"SELECT idle_timeout FROM dashboard_auth.sessions {SESSION_OF}", (token,)).days == 1
    su.execute(f"UPDATE dashboard_auth.sessions SET expires_at = now() + interval '2 years' {SESSION_OF}", (token,))
    # 23 hours idle of a 1-day timeout: alive, reported expiry last_seen + 1 day
    su.execute(f"UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '23 hours' {SESSION_OF}", (token,))
    [(user_id, _, _, expires)] = same_as_sql(su, token)
    assert user_id == uid
    su.execute(f"UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '25 hours' {SESSION_OF}", (token,))
    assert same_as_sql(su, token) == []
    # Calendar intervals across daylight-saving changes: 182 days, months,
    # in zones with and without DST. Seconds arithmetic would differ.
    for zone in ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]:
        su.execute(f"SET TimeZone = '{zone}'")
        for idle in ["182 days", "1 mon 1 day", "7 mons", "1 day 00:00:01"]:
            su.execute(f"UPDATE dashboard_auth.sessions SET idle_timeout = %s::interval, last_seen_at = now() - interval '2 minutes' {SESSION_OF}",
                       (idle, token))
            rows = same_as_sql(su, token)
            assert len(rows) == 1, (zone, idle)
    su.execute("RESET TimeZone")
    # a long idle timeout makes "stale" 60 seconds; a short one a tenth of it
    su.execute(f"UPDATE dashboard_auth.sessions SET idle_timeout = '5 minutes', last_seen_at = now() - interval '40 seconds' {SESSION_OF}", (token,))
    assert len(same_as_sql(su, token)) == 1
    assert one(su, f"SELECT now() - last_seen_at < interval '5 seconds' FROM dashboard_auth.sessions {SESSION_OF}", (token,))
    su.execute(f"UPDATE dashboard_auth.sessions SET idle_timeout = '30 minutes', last_seen_at = now() - interval '40 seconds' {SESSION_OF}", (token,))
    assert len(same_as_sql(su, token)) == 1
    assert one(su, f"SELECT now() - last_seen_at > interval '39 seconds' FROM dashboard_auth.sessions {SESSION_OF}", (token,))


def test_fastpath_deleted_user_scopes_and_revocation(web, su):
    uid, token = setup_admin(web)
    t2, t3, t4 = login_token(web), login_token(web), login_token(web)
    # scopes: only 'full' validates; use_session also takes 'mfa_enroll'
    su.execute(f"UPDATE dashboard_auth.sessions SET scope = 'mfa_pending' {SESSION_OF}", (t2,))
    su.execute(f"UPDATE dashboard_auth.sessions SET scope = 'mfa_enroll' {SESSION_OF}", (t3,))
    assert same_as_sql(su, t2) == [] and same_as_sql(su, t3) == []
    with pytest.raises(psycopg.Error) as e:
        as_session(web, t2)
    assert e.value.sqlstate == "28000"
    web.execute("ROLLBACK")
    assert one(as_session(web, t3), "SELECT dashboard_auth.use_session(%s)", (t3,)) == uid
    web.execute("ROLLBACK")
    # revoked: now, and (odd data) in the future: any revoked_at ends it
    su.execute(f"UPDATE dashboard_auth.sessions SET revoked_at = now() + interval '1 hour' {SESSION_OF}", (t4,))
    assert same_as_sql(su, t4) == []
    web.execute("SELECT dashboard_auth.logout(%s)", (token,))
    assert same_as_sql(su, token) == []
    # a session whose admin row is gone: with the foreign key's cascade bypassed
    # as superuser (replica mode), the ENABLE ALWAYS trigger on users still
    # takes the sessions along (their email/role copies must not outlive it)
    t5 = login_token(web)
    web.execute("SELECT dashboard_auth.create_admin('second@example.com', %s, 'S', 'dashboard_admin')", (PASSWORD,))
    t6 = login_token(web, "second@example.com")
    assert len(same_as_sql(su, t5)) == 1
    with su.transaction():
        su.execute("SET LOCAL session_replication_role = replica")
        su.execute("DELETE FROM dashboard_auth.users WHERE id = %s", (uid,))
        assert one(su, f"SELECT count(*) FROM dashboard_auth.sessions {SESSION_OF}", (t5,)) == 0
        assert same_as_sql(su, t5) == []
        assert len(same_as_sql(su, t6)) == 1
    assert same_as_sql(su, t5) == []  # committed, and read without a write in the transaction
    assert valid(web, t6)[0][1] == "second@example.com"
    # and a session row left behind anyway (the trigger disabled too): the
    # native probe, which joins users, refuses it (use_session / login_mfa)
    t7 = login_token(web, "second@example.com")
    with su.transaction():
        su.execute("ALTER TABLE dashboard_auth.users DISABLE TRIGGER sessions_follow_user")
        su.execute("SET LOCAL session_replication_role = replica")
        su.execute("DELETE FROM dashboard_auth.users WHERE email = 'second@example.com'")
        su.execute("ALTER TABLE dashboard_auth.users ENABLE ALWAYS TRIGGER sessions_follow_user")
    assert one(su, f"SELECT count(*) FROM dashboard_auth.sessions {SESSION_OF}", (t7,)) == 1
    assert su.execute("SELECT * FROM dashboard_auth._validate_session_native(%s)", (t7,)).fetchall() == []
    with pytest.raises(psycopg.Error) as e:
        as_session(web, t7)
    assert e.value.sqlstate == "28000"
    web.execute("ROLLBACK")


def test_fastpath_role_and_email_changes_show_at_once(web, su):
    _, token = setup_admin(web)
    web.execute("SELECT dashboard_auth.create_admin('v@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    vtoken = login_token(web, "v@example.com")
    assert same_as_sql(su, vtoken)[0][2] == "dashboard_viewer"
    su.execute("UPDATE dashboard_auth.users SET role = 'dashboard_admin', email = 'boss@example.com' WHERE email = 'v@example.com'")
    [(_, email, role, _)] = valid(web, vtoken)
    assert (email, role) == ("boss@example.com", "dashboard_admin")
    su.execute("UPDATE dashboard_auth.users SET role = 'dashboard_viewer' WHERE email = 'boss@example.com'")
    assert valid(web, vtoken)[0][2] == "dashboard_viewer"
    # and in the same transaction as the change (the probe sees this transaction's writes)
    with su.transaction():
        su.execute("UPDATE dashboard_auth.users SET role = 'dashboard_admin' WHERE email = 'boss@example.com'")
        assert same_as_sql(su, vtoken)[0][2] == "dashboard_admin"
    assert valid(web, token)[0][2] == "dashboard_admin"


def test_validate_session_sees_the_statements_snapshot(web, su):
    setup_admin(web)
    # validate_session is a STABLE SQL function: it sees the data as of the
    # start of the statement, so a login earlier in the same statement is not
    # seen (the Rust predecessor's probe saw it)...
    rows = web.execute("""
        SELECT l.session_token, v.email FROM dashboard_auth.login('root@example.com', %s) l
        LEFT JOIN LATERAL dashboard_auth.validate_session(l.session_token) v ON true""", (PASSWORD,)).fetchall()
    [(token, email)] = rows
    assert email is None
    # ...and the next statement sees it, in the same transaction too
    assert valid(web, token)[0][1] == "root@example.com"
    with web.transaction():
        t2 = login_token(web)
        assert valid(web, t2)[0][1] == "root@example.com"
    # the predecessor, kept for its C symbol, still sees the same statement's login
    rows = su.execute("""
        SELECT v.email FROM dashboard_auth.login('root@example.com', %s) l,
               LATERAL dashboard_auth._validate_session_native(l.session_token) v""", (PASSWORD,)).fetchall()
    assert rows == [("root@example.com",)]


def test_fastpath_survives_index_rebuilds_and_extension_recreation(db, su):
    uid, token = setup_admin(su)
    assert len(valid(su, token)) == 1  # caches the index oids in this backend
    su.execute("REINDEX TABLE CONCURRENTLY dashboard_auth.sessions")  # new index oids
    su.execute("REINDEX TABLE CONCURRENTLY dashboard_auth.users")
    assert valid(su, token)[0][0] == uid
    su.execute("DROP EXTENSION fluxbase_admin CASCADE")
    su.execute("CREATE EXTENSION fluxbase_admin")
    uid2, token2 = setup_admin(su)
    assert valid(su, token) == []
    assert valid(su, token2)[0][0] == uid2


# --- validate_session as an inlined SQL function (sql/validate_session.sql) --

def plan(conn, sql, params=()):
    return "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())


def test_validate_session_is_inlined_into_one_index_scan(web, su):
    _, token = setup_admin(web)
    # many sessions, so a sequential scan would clearly be the wrong plan
    su.execute("""INSERT INTO dashboard_auth.sessions (user_id, token_digest, expires_at, idle_timeout)
                  SELECT (SELECT id FROM dashboard_auth.users), sha256(('filler' || g)::bytea),
                         now() + interval '1 hour', interval '30 minutes' FROM generate_series(1, 2000) g""")
    su.execute("ANALYZE dashboard_auth.sessions")
    literal = plan(web, "SELECT * FROM dashboard_auth.validate_session(%s)", (token,))
    assert "Index Scan using sessions_token_digest_key on sessions" in literal, literal
    assert "Function Scan" not in literal and "validate_session" not in literal, literal
    # the digest of a literal token is computed at plan time
    assert "dashboard_auth._token_digest" not in literal and "Index Cond: (token_digest = '\\x" in literal, literal
    # the liveness filter is there, after the cheap scope check
    assert "Filter: ((scope = 'full'::text) AND dashboard_auth._session_live(" in literal, literal
    # a prepared statement's generic plan (what a driver reuses): inlined too
    web.execute("PREPARE v(text) AS SELECT * FROM dashboard_auth.validate_session($1)")
    web.execute("SET plan_cache_mode = force_generic_plan")
    generic = plan(web, f"EXECUTE v('{token}')")  # base64url: safe to inline
    assert "Index Scan using sessions_token_digest_key on sessions" in generic, generic
    assert "Function Scan" not in generic, generic
    assert len(web.execute(f"EXECUTE v('{token}')").fetchall()) == 1
    # and it is what makes inlining possible: these must stay so
    row = su.execute("""SELECT (SELECT lanname FROM pg_language WHERE oid = p.prolang)::text, p.provolatile, p.proisstrict, p.prosecdef, p.proconfig
                        FROM pg_proc p WHERE p.oid = 'dashboard_auth.validate_session(text)'::regprocedure""").fetchone()
    assert row == ("sql", "s", False, False, None)


def test_sessions_carry_exact_copies_of_email_and_role(web, su):
    uid, token = setup_admin(web)
    web.execute("SELECT dashboard_auth.create_admin('v@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    vtoken, vold = login_token(web, "v@example.com"), login_token(web, "v@example.com")
    web.execute("SELECT dashboard_auth.logout(%s)", (vold,))
    vid = valid(web, vtoken)[0][0]

    def copies_match():
        return one(su, """SELECT count(*) FROM dashboard_auth.sessions s JOIN dashboard_auth.users u ON u.id = s.user_id
                          WHERE (s.user_email, s.user_role) IS DISTINCT FROM (u.email, u.role)""") == 0

    assert copies_match()
    # through the API: a role change shows in the next validation
    web.execute("SELECT dashboard_auth.update_admin_role(%s, 'dashboard_admin')", (vid,))
    assert valid(web, vtoken)[0][2] == "dashboard_admin" and copies_match()
    # directly, both columns at once, and revoked sessions follow too
    su.execute("UPDATE dashboard_auth.users SET email = 'w@example.com', role = 'dashboard_viewer' WHERE id = %s", (vid,))
    assert valid(web, vtoken)[0][1:3] == ("w@example.com", "dashboard_viewer") and copies_match()
    assert one(su, "SELECT user_email FROM dashboard_auth.sessions WHERE revoked_at IS NOT NULL AND user_id = %s", (vid,)) == "w@example.com"
    # an unrelated update does not touch the sessions
    xmin = one(su, f"SELECT xmin::text FROM dashboard_auth.sessions {SESSION_OF}", (vtoken,))
    su.execute("UPDATE dashboard_auth.users SET full_name = 'Vee' WHERE id = %s", (vid,))
    assert one(su, f"SELECT xmin::text FROM dashboard_auth.sessions {SESSION_OF}", (vtoken,)) == xmin
    # sessions inserted directly (a restore, a script) get the copies too
    su.execute("""INSERT INTO dashboard_auth.sessions (user_id, token_digest, expires_at, idle_timeout)
                  VALUES (%s, sha256('direct'::bytea), now() + interval '1 hour', '30 minutes')""", (uid,))
    assert one(su, "SELECT (user_email, user_role)::text FROM dashboard_auth.sessions WHERE token_digest = sha256('direct'::bytea)") \
        == "(root@example.com,dashboard_admin)"
    # moving a session to another admin (never done by the API) re-copies
    su.execute("UPDATE dashboard_auth.sessions SET user_id = %s WHERE token_digest = sha256('direct'::bytea)", (vid,))
    assert copies_match()
    # an unknown admin is still the foreign key's error
    with pytest.raises(psycopg.Error) as e:
        su.execute("""INSERT INTO dashboard_auth.sessions (user_id, token_digest, expires_at, idle_timeout)
                      VALUES (gen_random_uuid(), sha256('x'::bytea), now() + interval '1 hour', '30 minutes')""")
    assert e.value.sqlstate == "23503"
    # deleting the admin through the API ends their sessions
    web.execute("SELECT dashboard_auth.delete_admin(%s)", (vid,))
    assert valid(web, vtoken) == [] and copies_match()
    assert len(valid(web, token)) == 1


def test_validate_session_in_a_read_only_transaction(web, su, db):
    _, token = setup_admin(web)
    su.execute(f"UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '10 minutes' {SESSION_OF}", (token,))
    # stale, so it would refresh: in a read-only transaction it validates without writing
    web.execute("BEGIN READ ONLY")
    assert len(valid(web, token)) == 1
    assert one(web, "SELECT dashboard_auth.use_session(%s)", (token,)) is not None
    web.execute("COMMIT")
    assert one(su, f"SELECT now() - last_seen_at > interval '9 minutes' FROM dashboard_auth.sessions {SESSION_OF}", (token,))
    # default_transaction_read_only (as on a hot standby, where every transaction is read-only)
    ro = db.conn("fb_web")
    ro.execute("SET default_transaction_read_only = on")
    assert len(valid(ro, token)) == 1
    # read-write: refreshed
    assert len(valid(web, token)) == 1
    assert one(su, f"SELECT now() - last_seen_at < interval '5 seconds' FROM dashboard_auth.sessions {SESSION_OF}", (token,))


@pytest.mark.parametrize("bad", [
    "' OR 1=1 --", "fbs_' OR '1'='1", "fbs_x'); DELETE FROM dashboard_auth.sessions; --",
    "fbs_" + "A" * 42 + "'", "fbs_" + "A" * 42 + "\\", "fbs_" + "é" * 43, "fbs_" + "A" * 43 + " ",
    "x" * 1_000_000, "fbs_" + "A" * 1_000_000, "fbs_" + "Ab" * 500_000,
])
def test_validate_session_hostile_tokens(web, su, bad):
    _, token = setup_admin(web)
    assert valid(web, bad) == []
    assert one(web, "SELECT dashboard_auth._token_digest(%s)", (bad,)) is None
    assert one(su, "SELECT count(*) FROM dashboard_auth.sessions") == 1
    assert len(valid(web, token)) == 1


def test_session_live_called_directly_cannot_revive_a_session(web, su):
    _, token = setup_admin(web)
    t2 = login_token(web)
    web.execute("SELECT dashboard_auth.logout(%s)", (t2,))
    sid, seen = su.execute(f"SELECT id, last_seen_at FROM dashboard_auth.sessions {SESSION_OF}", (t2,)).fetchone()
    # a member may call the filter with made-up values: it answers for those
    # values, but the refresh re-checks the row, so a revoked (or expired)
    # session gains nothing and stays dead
    assert one(web, """SELECT dashboard_auth._session_live(%s, now() - interval '20 minutes', '30 minutes',
                                                           now() + interval '1 hour', NULL)""", (sid,)) is True
    assert one(su, "SELECT last_seen_at FROM dashboard_auth.sessions WHERE id = %s", (sid,)) == seen
    assert valid(web, t2) == []
    # NULLs (no such columns are ever NULL): not live
    assert one(web, "SELECT dashboard_auth._session_live(NULL, NULL, NULL, NULL, NULL)") is False
    assert len(valid(web, token)) == 1
