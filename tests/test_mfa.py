"""Admin 2FA: TOTP enrollment, login_mfa, replay, drift, backup codes, lockout,
secrets at rest, refusals."""
import base64
import hashlib
import os
import stat
import threading
import time

import psycopg
import pyotp
import pytest
from conftest import PASSWORD, as_session, one, setup_admin

EMAIL = "root@example.com"
INJECTIONS = ["'; DROP TABLE dashboard_auth.users; --", "1' OR '1'='1", "$1", "\\x00", "' UNION SELECT secret --"]


def fresh_step(margin=4):
    """Wait until the current 30 s step has at least `margin` seconds left, so
    a code computed now is checked in the same step."""
    left = 30 - (time.time() % 30)
    if left < margin:
        time.sleep(left + 0.2)


def code_at(secret, offset_steps=0):
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def enroll(conn, token, offset_steps=-1):
    """totp_setup + totp_enable; returns (secret, backup_codes). Enables with the
    code of the previous step by default so the current one stays usable."""
    as_session(conn, token)
    secret, uri = conn.execute("SELECT secret, otpauth_uri FROM dashboard_auth.totp_setup()").fetchone()
    conn.execute("COMMIT")
    fresh_step()
    as_session(conn, token)
    codes = one(conn, "SELECT dashboard_auth.totp_enable(%s)", (code_at(secret, offset_steps),))
    conn.execute("COMMIT")
    return secret, codes


def login(conn, email=EMAIL, password=PASSWORD):
    return conn.execute("SELECT status, session_token, expires_at FROM dashboard_auth.login(%s, %s)", (email, password)).fetchone()


def login_mfa(conn, pending, code):
    return conn.execute("SELECT status, session_token, expires_at FROM dashboard_auth.login_mfa(%s, %s)", (pending, code)).fetchone()


def audit_actions(su, action):
    return su.execute(
        "SELECT success, details FROM dashboard_auth.audit_log WHERE action = %s ORDER BY id", (action,)
    ).fetchall()


@pytest.fixture
def admin(su, web):
    uid, token = setup_admin(su)
    return uid, token


def test_setup_returns_secret_and_uri(admin, web, su):
    uid, token = admin
    as_session(web, token)
    secret, uri = web.execute("SELECT secret, otpauth_uri FROM dashboard_auth.totp_setup()").fetchone()
    web.execute("COMMIT")
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret and parsed.issuer == "Fluxbase" and parsed.name == EMAIL
    assert parsed.digits == 6 and parsed.interval == 30
    # Not enabled until a code is proven.
    assert one(su, "SELECT totp_enabled FROM dashboard_auth.users WHERE id = %s", (uid,)) is False
    assert login(su)[0] == "ok"
    assert [r[0] for r in audit_actions(su, "mfa.setup")] == [True]


def test_enable_then_login_with_totp(admin, web, su):
    uid, token = admin
    secret, codes = enroll(web, token)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert one(su, "SELECT totp_enabled FROM dashboard_auth.list_admins() WHERE id = %s", (uid,)) is True
    status, pending, expires = login(web)
    assert status == "mfa_required" and pending.startswith("fbm_")
    # The pending token is not a session.
    assert web.execute("SELECT * FROM dashboard_auth.validate_session(%s)", (pending,)).fetchall() == []
    with pytest.raises(psycopg.Error) as e:
        as_session(web, pending)
    assert e.value.sqlstate == "28000"
    web.execute("ROLLBACK")
    fresh_step()
    status, session, _ = login_mfa(web, pending, code_at(secret))
    assert status == "ok" and session.startswith("fbs_")
    assert one(web, "SELECT email FROM dashboard_auth.validate_session(%s)", (session,)) == EMAIL
    # The pending token completes once.
    assert login_mfa(web, pending, code_at(secret, 1))[0] == "invalid"
    ok = audit_actions(su, "login.success")
    assert ok[-1][1]["detail"]["mfa"] == "totp"
    assert [r[0] for r in audit_actions(su, "mfa.enable")] == [True]


def test_wrong_code_answers_invalid_and_is_audited(admin, web, su):
    uid, token = admin
    secret, _ = enroll(web, token)
    pending = login(web)[1]
    wrong = "000000" if code_at(secret) != "000000" else "111111"
    assert login_mfa(web, pending, wrong)[:2] == ("invalid", None)
    fails = audit_actions(su, "login.mfa_failed")
    assert fails and fails[-1][0] is False and fails[-1][1]["reason"] == "wrong_code"
    assert one(su, "SELECT failed_attempts FROM dashboard_auth.login_throttle") == 1
    # Still usable with the right code afterwards.
    fresh_step()
    assert login_mfa(web, pending, code_at(secret))[0] == "ok"
    assert one(su, "SELECT count(*) FROM dashboard_auth.login_throttle") == 0


def test_replay_is_refused(admin, web, su):
    uid, token = admin
    secret, _ = enroll(web, token)
    fresh_step(8)
    code = code_at(secret)
    assert login_mfa(web, login(web)[1], code)[0] == "ok"
    assert login_mfa(web, login(web)[1], code)[0] == "invalid"
    assert audit_actions(su, "login.mfa_failed")[-1][1]["reason"] == "code_already_used"
    # An older step than the last accepted is refused too (it was within the drift window).
    assert login_mfa(web, login(web)[1], code_at(secret, -1))[0] == "invalid"
    # The next step's code still works.
    assert login_mfa(web, login(web)[1], code_at(secret, 1))[0] == "ok"


def test_code_used_at_enable_cannot_be_replayed_at_login(admin, web, su):
    uid, token = admin
    secret, _ = enroll(web, token, offset_steps=0)
    step = one(su, "SELECT totp_last_step FROM dashboard_auth.credentials")
    assert abs(step - int(time.time() // 30)) <= 1
    totp = pyotp.TOTP(secret)
    assert login_mfa(web, login(web)[1], totp.at(step * 30))[0] == "invalid"
    assert login_mfa(web, login(web)[1], totp.at((step + 1) * 30))[0] == "ok"


@pytest.mark.parametrize("offset,expected", [(-2, "invalid"), (-1, "ok"), (0, "ok"), (1, "ok"), (2, "invalid")])
def test_drift_edges(admin, web, su, offset, expected):
    uid, token = admin
    secret, _ = enroll(web, token)
    # Forget the step used by enabling, so only the drift rule decides.
    su.execute("UPDATE dashboard_auth.credentials SET totp_last_step = NULL")
    fresh_step(6)
    pending = login(web)[1]
    assert login_mfa(web, pending, code_at(secret, offset))[0] == expected


def test_concurrent_use_of_one_code_wins_once(admin, db, su):
    uid, token = admin
    c0 = db.conn("fb_web")
    secret, _ = enroll(c0, token)
    pendings = [login(c0)[1] for _ in range(4)]
    fresh_step(8)
    code = code_at(secret)
    conns = [db.conn("fb_web") for _ in pendings]
    barrier = threading.Barrier(len(pendings))
    results = []

    def run(c, p):
        barrier.wait()
        results.append(login_mfa(c, p, code)[0])

    threads = [threading.Thread(target=run, args=(c, p)) for c, p in zip(conns, pendings)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["invalid", "invalid", "invalid", "ok"]


def test_backup_code_works_once(admin, web, su):
    uid, token = admin
    secret, codes = enroll(web, token)
    status, session, _ = login_mfa(web, login(web)[1], codes[0])
    assert status == "ok" and session.startswith("fbs_")
    assert login_mfa(web, login(web)[1], codes[0])[0] == "invalid"
    # Typed loosely: upper case, spaces instead of dashes.
    assert login_mfa(web, login(web)[1], codes[1].upper().replace("-", " "))[0] == "ok"
    used = audit_actions(su, "mfa.backup_code_used")
    assert len(used) == 2 and used[-1][1]["detail"]["remaining"] == 8
    assert one(su, "SELECT count(*) FROM dashboard_auth.backup_codes WHERE used_at IS NULL") == 8


def test_regenerate_backup_codes(admin, web, su):
    uid, token = admin
    secret, codes = enroll(web, token)
    fresh_step()
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.regenerate_backup_codes(%s)", ("123-not-a-code",))
    assert e.value.sqlstate == "28P01"
    web.execute("ROLLBACK")
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.regenerate_backup_codes(%s)", (codes[0],))
    assert e.value.sqlstate == "28P01"
    web.execute("ROLLBACK")
    as_session(web, token)
    new = one(web, "SELECT dashboard_auth.regenerate_backup_codes(%s)", (code_at(secret),))
    web.execute("COMMIT")
    assert len(new) == 10 and not set(new) & set(codes)
    assert login_mfa(web, login(web)[1], codes[2])[0] == "invalid"
    assert login_mfa(web, login(web)[1], new[0])[0] == "ok"
    assert [r[0] for r in audit_actions(su, "mfa.backup_codes_regenerate")] == [True]


def test_enable_errors(admin, web, su):
    uid, token = admin
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.totp_enable('123456')")
    assert e.value.sqlstate == "55000"
    web.execute("ROLLBACK")
    as_session(web, token)
    secret = one(web, "SELECT secret FROM dashboard_auth.totp_setup()")
    web.execute("COMMIT")
    for bad, state in [(None, "22004"), ("", "22023"), ("000000" if code_at(secret) != "000000" else "999999", "28P01")] + [
        (s, "28P01") for s in INJECTIONS if "\\" not in s
    ]:
        as_session(web, token)
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT dashboard_auth.totp_enable(%s)", (bad,))
        assert e.value.sqlstate == state, bad
        web.execute("ROLLBACK")
    assert one(su, "SELECT totp_enabled FROM dashboard_auth.users") is False
    fresh_step()
    as_session(web, token)
    web.execute("SELECT dashboard_auth.totp_enable(%s)", (code_at(secret),))
    web.execute("COMMIT")
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard_auth.totp_setup()")
    assert e.value.sqlstate == "55000"
    web.execute("ROLLBACK")


def test_disable(admin, web, su):
    uid, token = admin
    secret, codes = enroll(web, token)
    as_session(web, token, reauth=PASSWORD)  # totp_disable is a step-up action
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.totp_disable('000000')" if code_at(secret) != "000000" else "SELECT dashboard_auth.totp_disable('111111')")
    assert e.value.sqlstate == "28P01"
    web.execute("ROLLBACK")
    as_session(web, token, reauth=PASSWORD)
    web.execute("SELECT dashboard_auth.totp_disable(%s)", (codes[0],))
    web.execute("COMMIT")
    assert one(su, "SELECT totp_enabled FROM dashboard_auth.users") is False
    assert one(su, "SELECT totp_secret_sealed IS NULL FROM dashboard_auth.credentials") is True
    assert one(su, "SELECT count(*) FROM dashboard_auth.backup_codes") == 0
    assert login(web)[0] == "ok"
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.totp_disable(%s)", (code_at(secret),))
    assert e.value.sqlstate == "55000"
    web.execute("ROLLBACK")
    assert audit_actions(su, "mfa.disable")[-1][1]["proven_with"] == "backup_code"
    # Re-enrolling gives a new secret.
    secret2, _ = enroll(web, token)
    assert secret2 != secret


def test_lockout_through_failed_mfa_codes(admin, web, su):
    uid, token = admin
    secret, _ = enroll(web, token)
    su.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '3')")
    wrong = "000000" if code_at(secret) not in ("000000",) else "111111"
    p1 = login(web)[1]
    assert login_mfa(web, p1, wrong)[0] == "invalid"
    assert login_mfa(web, p1, wrong)[0] == "invalid"
    # A right password again must not reset the count of wrong codes.
    p2 = login(web)
    assert p2[0] == "mfa_required"
    assert login_mfa(web, p2[1], wrong)[0] == "invalid"
    assert audit_actions(su, "login.lockout")
    # Now locked: even the right password and code are refused.
    fresh_step()
    assert login_mfa(web, p2[1], code_at(secret))[0] in ("invalid", "locked")
    assert login(web)[0] == "locked"
    assert one(su, "SELECT locked_until > now() FROM dashboard_auth.login_throttle") is True


def test_locked_account_answers_locked_to_login_mfa(admin, web, su):
    uid, token = admin
    secret, _ = enroll(web, token)
    pending = login(web)[1]
    su.execute("UPDATE dashboard_auth.login_throttle SET locked_until = now() + interval '5 minutes'")
    su.execute(
        "INSERT INTO dashboard_auth.login_throttle (email_digest, locked_until) VALUES (%s, now() + interval '5 minutes') "
        "ON CONFLICT (email_digest) DO UPDATE SET locked_until = excluded.locked_until",
        (hashlib.sha256(EMAIL.encode()).digest(),),
    )
    fresh_step()
    assert login_mfa(web, pending, code_at(secret))[0] == "locked"


def test_expired_pending_token(admin, web, su):
    uid, token = admin
    secret, _ = enroll(web, token)
    pending = login(web)[1]
    su.execute("UPDATE dashboard_auth.sessions SET expires_at = now() - interval '1 second' WHERE scope = 'mfa_pending'")
    fresh_step()
    assert login_mfa(web, pending, code_at(secret))[0] == "invalid"
    assert login_mfa(web, "fbs_" + pending[4:], code_at(secret))[0] == "invalid"


def test_mfa_required_gives_enroll_only_session(admin, web, su):
    uid, token = admin
    su.execute("SELECT dashboard_auth.set_setting('mfa.required', 'true')")
    status, s, _ = login(web)
    assert status == "ok"
    assert web.execute("SELECT * FROM dashboard_auth.validate_session(%s)", (s,)).fetchall() == []
    as_session(web, s)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard_auth.list_admins()")
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    as_session(web, s)
    secret = one(web, "SELECT secret FROM dashboard_auth.totp_setup()")
    web.execute("COMMIT")
    fresh_step()
    as_session(web, s)
    codes = one(web, "SELECT dashboard_auth.totp_enable(%s)", (code_at(secret),))
    assert len(codes) == 10
    # Upgraded at once, in this transaction and after.
    assert len(web.execute("SELECT * FROM dashboard_auth.list_admins()").fetchall()) == 1
    web.execute("COMMIT")
    assert one(web, "SELECT email FROM dashboard_auth.validate_session(%s)", (s,)) == EMAIL
    assert login(web)[0] == "mfa_required"


def scan_for(su, needles_text, needles_bytes):
    """Every text/varchar/jsonb/bytea column of every dashboard_auth table:
    which (table.column) contain any needle."""
    cols = su.execute(
        """SELECT c.table_name, c.column_name, c.data_type
           FROM information_schema.columns c JOIN information_schema.tables t
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name
           WHERE c.table_schema = 'dashboard_auth' AND t.table_type = 'BASE TABLE'
             AND c.data_type IN ('text', 'character varying', 'jsonb', 'bytea')"""
    ).fetchall()
    assert len(cols) > 10
    hits = []
    for table, col, typ in cols:
        if typ == "bytea":
            for n in needles_bytes:
                if one(su, f'SELECT count(*) FROM dashboard_auth."{table}" WHERE position(%s::bytea in "{col}") > 0', (n,)):
                    hits.append((table, col, n))
        else:
            for n in needles_text:
                if one(su, f'SELECT count(*) FROM dashboard_auth."{table}" WHERE strpos(lower("{col}"::text), lower(%s)) > 0', (n,)):
                    hits.append((table, col, n))
    return hits


def test_no_secret_or_code_or_token_in_clear_anywhere(admin, web, su):
    uid, token = admin
    secret, codes = enroll(web, token)
    pending = login(web)[1]
    fresh_step()
    session = login_mfa(web, pending, code_at(secret))[1]
    raw_secret = base64.b32decode(secret + "=" * (-len(secret) % 8))
    texts = [secret, raw_secret.hex(), token, pending, session] + codes + [c.replace("-", "") for c in codes]
    bytez = [raw_secret, token.encode(), session.encode()] + [c.encode() for c in codes]
    assert scan_for(su, texts, bytez) == []
    # The scan does look into bytea: the session token's digest is found.
    assert scan_for(su, [], [hashlib.sha256(session.encode()).digest()]) == [
        ("sessions", "token_digest", hashlib.sha256(session.encode()).digest())
    ]
    # The key that seals secrets is outside the database, private to the server.
    datadir = one(su, "SHOW data_directory")
    st = os.stat(os.path.join(datadir, "fluxbase_admin.key"))
    assert st.st_size == 32 and stat.S_IMODE(st.st_mode) == 0o600


def test_secret_not_readable_by_dashboard_role(admin, web, su):
    uid, token = admin
    enroll(web, token)
    for table in ["credentials", "backup_codes"]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(f"SELECT * FROM dashboard_auth.{table}")
        assert e.value.sqlstate == "42501"
    cols = [d.name for d in web.execute("SELECT * FROM dashboard_auth.list_admins()").description]
    assert not any("secret" in c for c in cols)
    cols = [d.name for d in web.execute("SELECT * FROM dashboard_auth.users").description]
    assert not any("secret" in c for c in cols)


def test_refusals(admin, db, web, su):
    uid, token = admin
    # No admin session: a database role can't enroll anyone.
    for sql in ["SELECT * FROM dashboard_auth.totp_setup()", "SELECT dashboard_auth.totp_enable('123456')",
                "SELECT dashboard_auth.totp_disable('123456')", "SELECT dashboard_auth.regenerate_backup_codes('123456')"]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql)
        assert e.value.sqlstate == "42501", sql
    plain = db.conn("fb_plain")
    app = db.conn("fb_app")
    for conn, prefix in [(plain, ""), (app, "SET ROLE anon; "), (app, "SET ROLE authenticated; ")]:
        for sql in ["SELECT * FROM dashboard_auth.totp_setup()", "SELECT * FROM dashboard_auth.login_mfa('fbm_x', '123456')"]:
            if prefix:
                conn.execute(prefix.rstrip("; "))
            with pytest.raises(psycopg.Error) as e:
                conn.execute(sql)
            assert e.value.sqlstate == "42501", (prefix, sql)
            conn.execute("RESET ROLE")


def test_viewer_may_enroll_own_2fa(admin, web, su):
    uid, token = admin
    as_session(web, token)
    web.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Vi Ewer', 'dashboard_viewer')", (PASSWORD,))
    web.execute("COMMIT")
    s = login(web, "viewer@example.com")[1]
    secret, codes = enroll(web, s)
    assert login(web, "viewer@example.com")[0] == "mfa_required"
    assert login(web)[0] == "ok"  # the root admin is unaffected


def test_injection_strings_in_login_mfa(admin, web, su):
    uid, token = admin
    secret, _ = enroll(web, token)
    pending = login(web)[1]
    for s in INJECTIONS:
        assert login_mfa(web, pending, s)[0] == "invalid"
        assert login_mfa(web, s, "123456")[0] == "invalid"
    with pytest.raises(psycopg.Error) as e:
        login_mfa(web, pending, None)
    assert e.value.sqlstate == "22004"
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 1
