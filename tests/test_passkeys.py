"""Passkeys for admins (issue 33), verified in the database: registration,
password + passkey, passwordless, step-up, listing/renaming/removal, and every
refusal path, with a software authenticator (tests/softauthn.py) standing in
for the browser."""
import json
from uuid import uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin
from softauthn import UP, UV, SoftAuthenticator, b64u

EMAIL = "root@example.com"
RP_ID = "admin.example.com"
ORIGIN = "https://admin.example.com"
INJECTIONS = ["'; DROP TABLE dashboard_auth.passkeys; --", "1' OR '1'='1", "$1", "\\x00", "<script>alert(1)</script>"]


def configure(su, passwordless=False):
    su.execute("SELECT dashboard_auth.set_setting('webauthn.rp_id', %s)", (Jsonb(RP_ID),))
    su.execute("SELECT dashboard_auth.set_setting('webauthn.origins', %s)", (Jsonb([ORIGIN]),))
    if passwordless:
        su.execute("SELECT dashboard_auth.set_setting('auth.passwordless', 'true')")


def in_session(conn, token, sql, params=()):
    """One statement in a transaction acting as `token`'s admin; committed."""
    as_session(conn, token)
    try:
        row = conn.execute(sql, params).fetchone()
    except Exception:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return None if row is None else (row[0] if len(row) == 1 else row)


def register(web, token, name="Laptop", auth=None):
    auth = auth or SoftAuthenticator(ORIGIN)
    options = in_session(web, token, "SELECT dashboard_auth.passkey_register_begin(%s)", (name,))
    pid = in_session(web, token, "SELECT dashboard_auth.passkey_register_finish(%s)", (Jsonb(auth.create(options)),))
    return auth, pid


def login(web, email=EMAIL, password=PASSWORD):
    return web.execute("SELECT status, session_token FROM dashboard_auth.login(%s, %s)", (email, password)).fetchone()


def mfa_begin(web, pending):
    return one(web, "SELECT dashboard_auth.passkey_mfa_begin(%s)", (pending,))


def mfa_finish(web, pending, assertion):
    return web.execute(
        "SELECT status, session_token FROM dashboard_auth.login_mfa_passkey(%s, %s)", (pending, Jsonb(assertion))
    ).fetchone()


def pw_begin(web, email=None):
    if email is None:
        return one(web, "SELECT dashboard_auth.passkey_login_begin()")
    return one(web, "SELECT dashboard_auth.passkey_login_begin(%s)", (email,))


def pw_finish(web, assertion, ua="pytest"):
    return web.execute(
        "SELECT status, session_token FROM dashboard_auth.passkey_login_finish(%s, '10.0.0.9', %s)", (Jsonb(assertion), ua)
    ).fetchone()


def audit(su, action):
    return su.execute(
        "SELECT success, details FROM dashboard_auth.audit_log WHERE action = %s ORDER BY id", (action,)
    ).fetchall()


def last_reason(su, action="login.failed"):
    rows = audit(su, action)
    assert rows, f"no {action} entry"
    d = rows[-1][1]
    return (d.get("detail") or {}).get("reason") or d.get("reason")


@pytest.fixture
def admin(su):
    uid, token = setup_admin(su)
    configure(su)
    return uid, token


def session_works(web, token):
    return one(web, "SELECT count(*) FROM dashboard_auth.validate_session(%s)", (token,)) == 1


# --------------------------------------------------------------------------- registration


def test_not_configured_is_a_clear_refusal(su, web):
    _, token = setup_admin(su)
    with pytest.raises(psycopg.Error) as e:
        in_session(web, token, "SELECT dashboard_auth.passkey_register_begin('Laptop')")
    assert e.value.sqlstate == "55000"
    assert "webauthn.rp_id" in str(e.value)


def test_register_list_rename(admin, web, su):
    uid, token = admin
    auth, pid = register(web, token, "Laptop")
    rows = su.execute("SELECT id, user_id, email, name, transports, sign_count, last_used_at FROM dashboard_auth.list_passkeys()").fetchall()
    assert rows == [(pid, uid, EMAIL, "Laptop", ["internal"], 0, None)]
    mine = in_session(web, token, "SELECT count(*) FROM dashboard_auth.list_passkeys()")
    assert mine == 1
    ok, details = audit(su, "passkey.register")[-1]
    assert ok and details["name"] == "Laptop" and details["user_id"] == str(uid)
    # the stored credential is webauthn-rs' (public key only), the challenge is gone
    assert one(su, "SELECT passkey #>> '{cred,cred,type_}' FROM dashboard_auth.passkeys") == "ES256"
    assert one(su, "SELECT count(*) FROM dashboard_auth.passkey_challenges") == 0
    in_session(web, token, "SELECT dashboard_auth.rename_passkey(%s, %s)", (pid, "Work laptop"))
    assert one(su, "SELECT name FROM dashboard_auth.passkeys") == "Work laptop"
    assert audit(su, "passkey.rename")[-1][1]["new"] == "Work laptop"


def test_tables_are_owner_only(admin, web):
    for t in ["passkeys", "passkey_challenges"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            web.execute(f"SELECT * FROM dashboard_auth.{t}")


def test_registration_refusals(admin, web, su):
    _, token = admin
    auth = SoftAuthenticator(ORIGIN)
    for spoil, why in [
        (dict(origin="https://evil.example.net"), "wrong_origin"),
        (dict(rp_id="evil.example.net"), "wrong_rp_id"),
        (dict(flags=UP), "user_not_verified"),
    ]:
        options = in_session(web, token, "SELECT dashboard_auth.passkey_register_begin('x')")
        with pytest.raises(psycopg.Error) as e:
            in_session(web, token, "SELECT dashboard_auth.passkey_register_finish(%s)", (Jsonb(auth.create(options, **spoil)),))
        assert e.value.sqlstate == "28000", why
        assert why in str(e.value)
    # a used challenge cannot register again (replay)
    options = in_session(web, token, "SELECT dashboard_auth.passkey_register_begin('x')")
    cred = auth.create(options)
    in_session(web, token, "SELECT dashboard_auth.passkey_register_finish(%s)", (Jsonb(cred),))
    with pytest.raises(psycopg.Error) as e:
        in_session(web, token, "SELECT dashboard_auth.passkey_register_finish(%s)", (Jsonb(cred),))
    assert e.value.sqlstate == "28000" and "unknown_or_used_challenge" in str(e.value)
    assert one(su, "SELECT count(*) FROM dashboard_auth.passkeys") == 1


def test_registration_challenge_is_bound_to_its_session(admin, web, su):
    _, token = admin
    other = login(web)[1]
    options = in_session(web, token, "SELECT dashboard_auth.passkey_register_begin('x')")
    with pytest.raises(psycopg.Error) as e:
        in_session(web, other, "SELECT dashboard_auth.passkey_register_finish(%s)", (Jsonb(SoftAuthenticator(ORIGIN).create(options)),))
    assert e.value.sqlstate == "28000"
    assert one(su, "SELECT count(*) FROM dashboard_auth.passkeys") == 0


# --------------------------------------------------------------------------- password + passkey


def test_password_then_passkey(admin, web, su):
    uid, token = admin
    auth, pid = register(web, token)
    status, pending = login(web)
    assert status == "mfa_required"
    options = mfa_begin(web, pending)
    assert options["publicKey"]["allowCredentials"][0]["id"] == b64u(auth.credential_id)
    assertion = auth.get(options)
    status, session = mfa_finish(web, pending, assertion)
    assert status == "ok" and session_works(web, session)
    ok, d = audit(su, "login.success")[-1]
    assert ok and d["method"] == "passkey" and d["detail"]["mfa"] == "passkey" and d["detail"]["passkey_id"] == str(pid)
    assert one(su, "SELECT sign_count FROM dashboard_auth.passkeys") == 1
    assert one(su, "SELECT last_used_at IS NOT NULL FROM dashboard_auth.passkeys") is True
    # replayed: the pending login and the challenge are both used up
    assert mfa_finish(web, pending, assertion)[0] == "invalid"


def test_mfa_required_is_satisfied_by_a_passkey(admin, web, su):
    _, token = admin
    auth, _ = register(web, token)
    su.execute("SELECT dashboard_auth.set_setting('mfa.required', 'true')")
    status, pending = login(web)
    assert status == "mfa_required"
    status, session = mfa_finish(web, pending, auth.get(mfa_begin(web, pending)))
    assert status == "ok"
    assert one(su, "SELECT scope FROM dashboard_auth.sessions WHERE token_digest = sha256(convert_to(%s, 'UTF8'))", (session,)) == "full"


def test_enroll_only_session_becomes_full_with_a_passkey(admin, web, su):
    su.execute("SELECT dashboard_auth.set_setting('mfa.phishing_resistant_required', 'true')")
    status, token = login(web)
    assert status == "ok"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        in_session(web, token, "SELECT count(*) FROM dashboard_auth.list_admins()")
    register(web, token)
    assert in_session(web, token, "SELECT count(*) FROM dashboard_auth.list_admins()") == 1
    assert audit(su, "passkey.register")[-1][1]["session_upgraded"] is True


def test_an_admin_without_a_passkey_cannot_require_phishing_resistance(admin, web, su):
    _, token = admin
    in_session(web, token, "SELECT dashboard_auth.reauthenticate(%s)", (PASSWORD,))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="register a passkey"):
        in_session(web, token, "SELECT dashboard_auth.set_setting('mfa.phishing_resistant_required', 'true')")
    assert one(su, "SELECT count(*) FROM dashboard_auth.settings_store WHERE key = 'mfa.phishing_resistant_required'") == 0
    # turning it off, or on once the admin holds a passkey, is allowed
    in_session(web, token, "SELECT dashboard_auth.set_setting('mfa.phishing_resistant_required', 'false')")
    register(web, token)
    in_session(web, token, "SELECT dashboard_auth.set_setting('mfa.phishing_resistant_required', 'true')")
    assert one(su, "SELECT value FROM dashboard_auth.settings_store WHERE key = 'mfa.phishing_resistant_required'") is True


def test_phishing_resistant_refuses_totp(admin, web, su):
    import pyotp
    from test_mfa import code_at, enroll, fresh_step

    _, token = admin
    secret, codes = enroll(web, token)
    su.execute("SELECT dashboard_auth.set_setting('mfa.phishing_resistant_required', 'true')")
    fresh_step()
    status, pending = login(web)
    assert status == "mfa_required"
    assert web.execute("SELECT status FROM dashboard_auth.login_mfa(%s, %s)", (pending, code_at(secret))).fetchone()[0] == "invalid"
    assert last_reason(su, "login.mfa_failed") == "phishing_resistant_required"
    # a backup code still recovers, loudly, into a session that may only enroll a passkey
    status, session = web.execute("SELECT status, session_token FROM dashboard_auth.login_mfa(%s, %s)", (pending, codes[0])).fetchone()
    assert status == "ok"
    assert audit(su, "mfa.phishing_resistant_bypass")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        in_session(web, session, "SELECT count(*) FROM dashboard_auth.list_admins()")


# --------------------------------------------------------------------------- passwordless


def test_passwordless(admin, web, su):
    uid, token = admin
    auth, pid = register(web, token)
    with pytest.raises(psycopg.Error) as e:
        pw_begin(web)
    assert e.value.sqlstate == "55000"
    su.execute("SELECT dashboard_auth.set_setting('auth.passwordless', 'true')")
    options = pw_begin(web)
    assert options["mediation"] == "conditional"
    assert not options["publicKey"].get("allowCredentials")
    assertion = auth.get(options)
    status, session = pw_finish(web, assertion)
    assert status == "ok" and session_works(web, session)
    ok, d = audit(su, "login.success")[-1]
    assert ok and d["method"] == "passkey" and d["detail"]["passkey_id"] == str(pid)
    # replay
    assert pw_finish(web, assertion)[0] == "invalid"
    assert last_reason(su) == "unknown_or_used_challenge"
    # with an email: that admin's passkeys are listed
    options = pw_begin(web, EMAIL)
    assert options["publicKey"]["allowCredentials"][0]["id"] == b64u(auth.credential_id)
    assert "mediation" not in options
    assert pw_finish(web, auth.get(options))[0] == "ok"
    # turned off again: refused, audited
    options = pw_begin(web)
    su.execute("SELECT dashboard_auth.set_setting('auth.passwordless', 'false')")
    assert pw_finish(web, auth.get(options))[0] == "invalid"
    assert last_reason(su) == "passwordless_off"


@pytest.mark.parametrize("spoil,reason", [
    (dict(origin="https://evil.example.net"), "wrong_origin"),
    (dict(origin="https://admin.example.com.evil.net"), "wrong_origin"),
    (dict(rp_id="evil.example.net"), "wrong_rp_id"),
    (dict(spoil_signature=True), "bad_signature"),
    (dict(flags=UP), "user_not_verified"),
    (dict(credential_id=b"\x01" * 32), "unknown_or_removed_passkey"),
])
def test_passwordless_refusals(admin, web, su, spoil, reason):
    _, token = admin
    auth, _ = register(web, token)
    configure(su, passwordless=True)
    status, session = pw_finish(web, auth.get(pw_begin(web), **spoil))
    assert (status, session) == ("invalid", None)
    assert last_reason(su) == reason
    ok, d = audit(su, "login.failed")[-1]
    assert ok is False and d["method"] == "passkey"


def test_counter_regression_is_refused_and_audited(admin, web, su):
    uid, token = admin
    auth, pid = register(web, token)
    configure(su, passwordless=True)
    assert pw_finish(web, auth.get(pw_begin(web), counter=5))[0] == "ok"
    assert pw_finish(web, auth.get(pw_begin(web), counter=3))[0] == "invalid"
    assert last_reason(su) == "counter_regression"
    ok, d = audit(su, "passkey.counter_regression")[-1]
    assert ok is False and d["user_id"] == str(uid) and d["stored_count"] == 5
    assert pw_finish(web, auth.get(pw_begin(web), counter=5))[0] == "invalid"
    assert pw_finish(web, auth.get(pw_begin(web), counter=6))[0] == "ok"
    assert one(su, "SELECT sign_count FROM dashboard_auth.passkeys") == 6


def test_expired_and_foreign_challenges(admin, web, su):
    _, token = admin
    auth, _ = register(web, token)
    configure(su, passwordless=True)
    options = pw_begin(web)
    su.execute("UPDATE dashboard_auth.passkey_challenges SET expires_at = now() - interval '1 second'")
    assert pw_finish(web, auth.get(options))[0] == "invalid"
    assert last_reason(su) == "expired_challenge"
    # a step-up challenge cannot sign in
    options = in_session(web, token, "SELECT dashboard_auth.passkey_reauth_begin()")
    assert pw_finish(web, auth.get(options))[0] == "invalid"
    assert last_reason(su) == "challenge_of_another_ceremony"
    # a challenge the server never issued
    options = pw_begin(web)
    assert pw_finish(web, auth.get(options, challenge=b64u(b"x" * 32)))[0] == "invalid"
    assert last_reason(su) == "unknown_or_used_challenge"


def test_open_signin_ceremonies_are_bounded(admin, web, su):
    """Anyone may begin a passwordless sign-in: each begin writes a challenge row,
    so at most 10,000 may be open at once (53400 past it, nothing written);
    expired ones do not count, and other ceremonies are not limited by it."""
    _, token = admin
    auth, _ = register(web, token)
    configure(su, passwordless=True)
    su.execute(
        "INSERT INTO dashboard_auth.passkey_challenges (challenge_digest, ceremony, state, expires_at)"
        " SELECT sha256(g::text::bytea), 'login', '{}', now() + interval '5 minutes'"
        " FROM generate_series(1, 9999) g")
    options = pw_begin(web)  # the 10,000th
    before = one(su, "SELECT count(*) FROM dashboard_auth.passkey_challenges")
    with pytest.raises(psycopg.Error) as e:
        pw_begin(web)
    assert e.value.sqlstate == "53400" and "too many sign-ins" in str(e.value)
    assert one(su, "SELECT count(*) FROM dashboard_auth.passkey_challenges") == before
    # a ceremony already begun still finishes; the step-up ceremony is not limited
    assert pw_finish(web, auth.get(options))[0] == "ok"
    assert in_session(web, token, "SELECT dashboard_auth.passkey_reauth_begin()")["publicKey"]
    # expired ones do not count
    su.execute("UPDATE dashboard_auth.passkey_challenges SET expires_at = now() - interval '1 second'"
               " WHERE ceremony = 'login'")
    assert pw_begin(web)["publicKey"]


def test_passkey_of_another_admin_is_refused_as_second_factor(admin, web, su):
    uid, token = admin
    auth, _ = register(web, token)
    su.execute("SELECT dashboard_auth.create_admin('two@example.com', %s, 'Two')", (PASSWORD,))
    t2 = login(web, "two@example.com")[1]
    auth2, _ = register(web, t2, "Two's key")
    status, pending = login(web)
    options = mfa_begin(web, pending)
    assert mfa_finish(web, pending, auth2.get(options))[0] == "invalid"
    assert last_reason(su, "login.mfa_failed") == "passkey_of_another_admin"


# --------------------------------------------------------------------------- step-up and removal


def test_stepup_with_a_passkey_then_remove(admin, web, su):
    uid, token = admin
    auth, pid = register(web, token)
    with pytest.raises(psycopg.Error) as e:
        in_session(web, token, "SELECT dashboard_auth.remove_passkey(%s)", (pid,))
    assert e.value.sqlstate == "FBR01"
    as_session(web, token)
    options = one(web, "SELECT dashboard_auth.passkey_reauth_begin()")
    until = one(web, "SELECT dashboard_auth.reauthenticate_passkey(%s)", (Jsonb(auth.get(options)),))
    assert until is not None
    web.execute("SELECT dashboard_auth.remove_passkey(%s)", (pid,))
    web.execute("COMMIT")
    assert audit(su, "session.reauth")[-1][1]["method"] == "passkey"
    ok, d = audit(su, "passkey.remove")[-1]
    assert ok and d["own"] is True and d["user_id"] == str(uid)
    assert one(su, "SELECT count(*) FROM dashboard_auth.passkeys") == 0
    # the removed passkey no longer signs in
    configure(su, passwordless=True)
    assert pw_finish(web, auth.get(pw_begin(web)))[0] == "invalid"
    assert last_reason(su) == "unknown_or_removed_passkey"
    # and the password alone is enough again
    assert login(web)[0] == "ok"


def test_stepup_refusals(admin, web, su):
    _, token = admin
    auth, _ = register(web, token)
    other = login(web)
    other = mfa_finish(web, other[1], auth.get(mfa_begin(web, other[1])))[1]
    # a challenge begun in another session
    options = in_session(web, other, "SELECT dashboard_auth.passkey_reauth_begin()")
    assert in_session(web, token, "SELECT dashboard_auth.reauthenticate_passkey(%s)", (Jsonb(auth.get(options)),)) is None
    assert audit(su, "session.reauth")[-1][1]["reason"] == "challenge_of_another_session"
    # a bad signature
    options = in_session(web, token, "SELECT dashboard_auth.passkey_reauth_begin()")
    assert in_session(web, token, "SELECT dashboard_auth.reauthenticate_passkey(%s)", (Jsonb(auth.get(options, spoil_signature=True)),)) is None
    assert audit(su, "session.reauth")[-1][1]["reason"] == "bad_signature"
    assert audit(su, "session.reauth")[-1][0] is False


def test_removing_another_admins_passkey(admin, web, su):
    uid, token = admin
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    vt = login(web, "viewer@example.com")[1]
    _, vpid = register(web, vt, "Viewer key")
    _, pid = register(web, token)
    # a viewer cannot remove or rename someone else's
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        in_session(web, vt, "SELECT dashboard_auth.remove_passkey(%s)", (pid,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        in_session(web, token, "SELECT dashboard_auth.rename_passkey(%s, 'mine now')", (vpid,))
    # an admin can, after step-up
    with pytest.raises(psycopg.Error) as e:
        in_session(web, token, "SELECT dashboard_auth.remove_passkey(%s)", (vpid,))
    assert e.value.sqlstate == "FBR01"
    as_session(web, token, reauth=PASSWORD)
    web.execute("SELECT dashboard_auth.remove_passkey(%s)", (vpid,))
    web.execute("COMMIT")
    ok, d = audit(su, "passkey.remove")[-1]
    assert d["own"] is False and d["email"] == "viewer@example.com"
    # unknown id
    with pytest.raises(psycopg.errors.NoDataFound):
        su.execute("SELECT dashboard_auth.remove_passkey(gen_random_uuid())")


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("bad", INJECTIONS)
def test_injection_in_every_text_argument(admin, web, su, bad):
    _, token = admin
    # names are values: stored and shown verbatim (control characters refused)
    if "\x00" in bad:
        return
    auth, pid = register(web, token, bad)
    assert one(su, "SELECT name FROM dashboard_auth.passkeys") == bad
    in_session(web, token, "SELECT dashboard_auth.rename_passkey(%s, %s)", (pid, bad + "2"))
    assert one(su, "SELECT name FROM dashboard_auth.passkeys") == bad + "2"
    configure(su, passwordless=True)
    with pytest.raises(psycopg.Error) as e:
        pw_begin(web, bad)
    assert e.value.sqlstate == "22023"
    with pytest.raises(psycopg.Error) as e:
        mfa_begin(web, bad)
    assert e.value.sqlstate == "28000"
    assert mfa_finish(web, bad, auth.get(pw_begin(web)))[0] == "invalid"
    status, _ = pw_finish(web, auth.get(pw_begin(web)), ua=bad)
    assert status == "ok"
    assert audit(su, "login.success")[-1][1]["user_agent"] == bad
    with pytest.raises(psycopg.Error) as e:
        su.execute("SELECT dashboard_auth.set_setting('webauthn.rp_id', %s)", (Jsonb(bad),))
    assert e.value.sqlstate == "22023"
    with pytest.raises(psycopg.Error) as e:
        su.execute("SELECT dashboard_auth.set_setting('webauthn.origins', %s)", (Jsonb([bad]),))
    assert e.value.sqlstate == "22023"
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 1


@pytest.mark.parametrize("name,state", [
    ("", "22023"), ("   ", "22023"), ("a\nb", "22023"), ("x" * 101, "22023"), (None, "22004"),
])
def test_bad_names(admin, web, name, state):
    _, token = admin
    with pytest.raises(psycopg.Error) as e:
        in_session(web, token, "SELECT dashboard_auth.passkey_register_begin(%s)", (name,))
    assert e.value.sqlstate == state


@pytest.mark.parametrize("value,state", [
    (None, "22004"),
    ("x", "22023"),
    ({}, "22023"),
    ({"response": {"clientDataJSON": "!!!"}}, "22023"),
    ({"rawId": "AAAA", "response": {"clientDataJSON": b64u(b"{}")}}, "22023"),
])
def test_malformed_assertions(admin, web, su, value, state):
    configure(su, passwordless=True)
    arg = None if value is None else Jsonb(value)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard_auth.passkey_login_finish(%s)", (arg,))
    assert e.value.sqlstate == state
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard_auth.passkey_login_finish(%s::jsonb)", (deep,))
    assert e.value.sqlstate in ("22023", "54001")


def test_backend_survives_garbage(admin, web, su):
    """Fields of the right shape and wrong content: refused, never a crash."""
    _, token = admin
    auth, _ = register(web, token)
    configure(su, passwordless=True)
    a = auth.get(pw_begin(web))
    a["response"]["authenticatorData"] = b64u(b"\x00" * 3)
    assert pw_finish(web, a)[0] == "invalid"
    a = auth.get(pw_begin(web))
    a["response"]["signature"] = "not base64 !"
    with pytest.raises(psycopg.Error) as e:
        pw_finish(web, a)
    assert e.value.sqlstate == "22023"
    assert one(web, "SELECT 1") == 1


# --------------------------------------------------------------------------- CLI


def test_cli_list_and_remove(db, su, web, tmp_path):
    from test_cli import DENIED, NOT_FOUND, USAGE, Cli, create_admin

    cli = Cli(db, tmp_path)
    uid, token = setup_admin(su)
    configure(su)
    _, pid = register(web, token, "Root's key")
    create_admin(su, "viewer@example.com", "dashboard_viewer")
    vt = login(web, "viewer@example.com")[1]
    _, vpid = register(web, vt, "<b>Viewer</b> key")
    rows = cli.json("admin", "passkeys", "list")
    assert sorted(r["name"] for r in rows) == ["<b>Viewer</b> key", "Root's key"]
    assert [r["id"] for r in cli.json("admin", "passkeys", "list", "root@example.com")] == [str(pid)]
    assert [r["id"] for r in cli.json("admin", "passkeys", "list", str(uid))] == [str(pid)]
    assert "Root's key" in cli.ok("admin", "passkeys", "list").stdout
    cli.fails(NOT_FOUND, "admin", "passkeys", "list", "nobody@example.com")
    cli.fails(USAGE, "admin", "passkeys", "remove", str(vpid))
    cli.fails(NOT_FOUND, "admin", "passkeys", "remove", str(uuid4()), "--yes")
    # signed in as another dashboard_admin (without a passkey, so the password
    # alone signs in): removing the viewer's passkey needs the password again (step-up)
    create_admin(su, "ops@example.com")
    cli.json("login", "--email", "ops@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert cli.json("admin", "passkeys", "remove", str(vpid), "--yes", "--password-stdin", input=PASSWORD + "\n") == {
        "removed": True, "id": str(vpid)}
    ok, d = audit(su, "passkey.remove")[-1]
    assert d["own"] is False and d["email"] == "viewer@example.com"
    assert one(su, "SELECT actor FROM dashboard_auth.audit_log WHERE action = 'passkey.remove'") == "ops@example.com"
    # a viewer may not remove another admin's
    cli.json("logout")
    cli.run("login", "--email", "viewer@example.com", "--password-stdin", input=PASSWORD + "\n")
    cli.fails(DENIED, "admin", "passkeys", "remove", str(pid), "--yes", "--password-stdin", input=PASSWORD + "\n")
    assert one(su, "SELECT count(*) FROM dashboard_auth.passkeys") == 1
