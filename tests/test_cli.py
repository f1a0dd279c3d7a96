"""The `fluxbase` CLI: the real binary against the fresh database of the `db` fixture.

scripts/test.sh builds target/debug/fluxbase and sets FLUXBASE_BIN. Commands whose
SQL functions come with other capabilities are skipped (by checking pg_proc) only
while the server lacks those functions; once merged they run.
"""
import base64
import hashlib
import hmac
import json
import os
import stat
import struct
import subprocess
import time
import uuid

import psycopg
import pytest

from conftest import PASSWORD, connect, one, setup_admin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLUXBASE_BIN") or os.path.join(ROOT, "target", "debug", "fluxbase")

# exit codes (cli/src/fail.rs)
FAILED, USAGE, CONNECT, NOT_FOUND, DENIED = 1, 2, 3, 4, 5


def url_for(dbname, user="fb_web"):
    return f"postgresql://{user}@/{dbname}?host={os.environ['PGHOST']}&port={os.environ['PGPORT']}"


class Cli:
    def __init__(self, db, tmp_path):
        self.db = db
        self.session_file = str(tmp_path / "fluxbase" / "session")

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
        env["FLUXBASE_SESSION_FILE"] = self.session_file
        env.update(extra or {})
        return env

    def argv(self, args, user="fb_web", url=None):
        return [BIN, "--database-url", url or url_for(self.db.name, user), *args]

    def run(self, *args, user="fb_web", input=None, url=None, env=None, raw=False):
        argv = [BIN, *args] if raw else self.argv(args, user, url)
        return subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=60,
        )

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        return r

    def json(self, *args, **kw):
        r = self.ok("-o", "json", *args, **kw)
        return json.loads(r.stdout)

    def fails(self, code, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == code, f"{args}: exit {r.returncode}, wanted {code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        err = r.stderr.strip()
        assert err.startswith("error: "), err
        assert len(err.splitlines()) == 1, f"one line on stderr: {err!r}"
        return err


@pytest.fixture
def cli(db, tmp_path):
    return Cli(db, tmp_path)


def has_function(conn, qualified):
    schema, name = qualified.split(".")
    return one(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname = %s)",
        (schema, name),
    )


def create_admin(su, email, role="dashboard_admin"):
    return str(one(su, "SELECT dashboard_auth.create_admin(%s, %s, %s, %s)", (email, PASSWORD, "Someone", role)))


def login_sql(su, email, password=PASSWORD):
    row = su.execute("SELECT status, session_token FROM dashboard_auth.login(%s, %s)", (email, password)).fetchone()
    assert row[0] == "ok", row
    return row[1]


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((at or time.time()) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


# ---------------------------------------------------------------- no database


def test_help_version_completions(cli):
    r = cli.run("--help", raw=True)
    assert r.returncode == 0 and "admin" in r.stdout and "impersonate" in r.stdout
    assert cli.run("--version", raw=True).stdout.startswith("fluxbase ")
    for shell in ["bash", "zsh", "fish"]:
        r = cli.run("completions", shell, raw=True)
        assert r.returncode == 0 and "fluxbase" in r.stdout and "password-reset" in r.stdout, shell
    r = cli.run("completions", "nosuchshell", raw=True)
    assert r.returncode == USAGE


def test_usage_errors(cli):
    assert cli.run("admin", "users", "invite", raw=True).returncode == USAGE  # --email missing
    assert cli.run("setup", "--email", "a@example.com", "--password", PASSWORD, raw=True).returncode == USAGE
    assert cli.run("frobnicate", raw=True).returncode == USAGE


# ---------------------------------------------------------------- connection errors


def test_connection_refused(cli, tmp_path):
    err = cli.fails(CONNECT, "admin", "users", "list", url=f"postgresql://fb_web@/x?host={tmp_path}&port=1")
    assert "cannot connect to PostgreSQL at" in err and "connection refused" in err and str(tmp_path) in err
    err = cli.fails(CONNECT, "admin", "users", "list", url="postgresql://fb_web@127.0.0.1:1/x")
    assert "cannot connect to PostgreSQL at 127.0.0.1:1: connection refused" in err


def test_password_in_url_never_printed(cli):
    err = cli.fails(CONNECT, "admin", "users", "list", url="postgresql://fb_web:hunter2secret@127.0.0.1:1/x")
    assert "hunter2secret" not in err


def test_bad_url(cli):
    err = cli.fails(USAGE, "admin", "users", "list", url="http://example.com/db")
    assert "invalid database URL" in err
    err = cli.fails(USAGE, "admin", "users", "list", url="postgresql://u@h:notaport/db")
    assert "invalid database URL" in err


def test_unknown_database(cli):
    err = cli.fails(CONNECT, "admin", "users", "list", url=url_for("no_such_db_" + uuid.uuid4().hex[:6]))
    assert "cannot connect" in err and "does not exist" in err


def test_extension_missing(cli):
    name = "noext_" + uuid.uuid4().hex[:10]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        err = cli.fails(CONNECT, "admin", "users", "list", url=url_for(name))
        assert f"the fluxbase_admin extension is not installed in database {name}" in err
        assert "CREATE EXTENSION fluxbase_admin" in err
    finally:
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_permission_denied_for_plain_role(cli, su):
    setup_admin(su)
    err = cli.fails(DENIED, "admin", "users", "list", user="fb_plain")
    assert "permission denied" in err and "fluxbase_dashboard" in err


def test_pg_environment_variables(cli, su):
    setup_admin(su)
    env = {"PGHOST": os.environ["PGHOST"], "PGPORT": os.environ["PGPORT"], "PGUSER": "fb_web", "PGDATABASE": cli.db.name}
    r = cli.run("-o", "json", "admin", "users", "list", raw=True, env=env)
    assert r.returncode == 0, r.stderr
    assert [a["email"] for a in json.loads(r.stdout)] == ["root@example.com"]
    # DATABASE_URL is honoured too
    r = cli.run("-o", "json", "admin", "users", "list", raw=True, env={"DATABASE_URL": url_for(cli.db.name)})
    assert r.returncode == 0, r.stderr


def test_missing_server_function_is_named(cli, su):
    setup_admin(su)
    su.execute("ALTER EXTENSION fluxbase_admin DROP FUNCTION dashboard_auth.list_admins()")
    su.execute("DROP FUNCTION dashboard_auth.list_admins()")
    err = cli.fails(FAILED, "admin", "users", "list")
    assert err == "error: this server's fluxbase_admin has no dashboard_auth.list_admins (upgrade the extension)"


# ---------------------------------------------------------------- admin users


def test_admin_users_list_and_get(cli, su):
    uid, _ = setup_admin(su)
    rows = cli.json("admin", "users", "list")
    assert len(rows) == 1
    assert rows[0]["id"] == str(uid) and rows[0]["email"] == "root@example.com" and rows[0]["role"] == "dashboard_admin"
    assert not [k for k in rows[0] if "password" in k.lower() or "hash" in k.lower()], rows[0].keys()
    r = cli.ok("admin", "users", "list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "EMAIL", "NAME", "ROLE", "2FA", "LAST", "LOGIN"] and len(lines) == 2
    assert "root@example.com" in r.stdout and "\x1b" not in r.stdout
    got = cli.json("admin", "users", "get", str(uid))
    assert got["email"] == "root@example.com" and got["full_name"] == "Root Admin"
    assert "Root Admin" in cli.ok("admin", "users", "get", str(uid)).stdout


def test_admin_users_get_not_found_and_bad_id(cli, su):
    setup_admin(su)
    missing = str(uuid.uuid4())
    err = cli.fails(NOT_FOUND, "admin", "users", "get", missing)
    assert f"no admin with id {missing}" in err
    err = cli.fails(FAILED, "admin", "users", "get", "not-a-uuid")
    assert "uuid" in err
    err = cli.fails(FAILED, "admin", "users", "get", "'; DROP TABLE dashboard_auth.users; --")
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 1


def test_admin_users_delete_needs_yes(cli, su):
    setup_admin(su)
    other = create_admin(su, "other@example.com")
    err = cli.fails(USAGE, "admin", "users", "delete", other)
    assert "--yes" in err and "not a terminal" in err
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 1
    out = cli.json("admin", "users", "delete", other, "--yes")
    assert out == {"deleted": True, "id": other}
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 0
    # audited as the database role (no admin session)
    assert one(su, "SELECT actor FROM dashboard_auth.audit_log WHERE action = 'admin.delete'") == "db:fb_web"
    err = cli.fails(NOT_FOUND, "-y", "admin", "users", "delete", other)
    assert "no admin with id" in err


def test_confirmation_on_a_terminal(cli, su):
    """On a terminal the CLI asks; only "y" goes ahead."""
    import pty

    setup_admin(su)
    other = create_admin(su, "other@example.com")
    for answer, code, left in [("n\n", FAILED, 1), ("\n", FAILED, 1), ("y\n", 0, 0)]:
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen(
                cli.argv(["admin", "users", "delete", other]),
                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(),
            )
            os.close(slave)
            os.write(master, answer.encode())
            out, err = p.communicate(timeout=60)
        finally:
            os.close(master)
        assert p.returncode == code, (answer, out, err)
        assert f"Really delete admin user {other}? [y/N]" in err
        assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == left, answer


def test_cannot_delete_last_admin(cli, su):
    uid, _ = setup_admin(su)
    err = cli.fails(FAILED, "admin", "users", "delete", str(uid), "--yes")
    assert "last dashboard_admin" in err
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 1


# ---------------------------------------------------------------- sessions


def test_sessions_list_revoke(cli, su):
    uid, token = setup_admin(su)
    rows = cli.json("admin", "sessions", "list")
    assert len(rows) == 1 and rows[0]["user_id"] == str(uid) and rows[0]["email"] == "root@example.com"
    sid = rows[0]["id"]
    assert "root@example.com" in cli.ok("admin", "sessions", "list").stdout
    assert cli.json("admin", "sessions", "list", "--user-id", str(uuid.uuid4())) == []
    assert "(no active admin sessions)" in cli.ok("admin", "sessions", "list", "--user-id", str(uuid.uuid4())).stdout
    cli.fails(USAGE, "admin", "sessions", "revoke", sid)
    assert cli.json("admin", "sessions", "revoke", sid, "--yes") == {"id": sid, "revoked": True}
    assert one(su, "SELECT count(*) FROM dashboard_auth.validate_session(%s)", (token,)) == 0
    assert cli.json("admin", "sessions", "list") == []
    err = cli.fails(NOT_FOUND, "admin", "sessions", "revoke", str(uuid.uuid4()), "--yes")
    assert "no session with id" in err


def test_sessions_revoke_all(cli, su):
    uid, _ = setup_admin(su)
    login_sql(su, "root@example.com")
    other = create_admin(su, "other@example.com")
    other_token = login_sql(su, "other@example.com")
    cli.fails(USAGE, "admin", "sessions", "revoke-all", str(uid))
    out = cli.json("admin", "sessions", "revoke-all", str(uid), "--yes")
    assert out == {"user_id": str(uid), "revoked": 2}
    assert "Revoked 0 session(s)" in cli.ok("admin", "sessions", "revoke-all", str(uid), "--yes").stdout
    assert one(su, "SELECT count(*) FROM dashboard_auth.validate_session(%s)", (other_token,)) == 1
    assert [r["user_id"] for r in cli.json("admin", "sessions", "list")] == [other]


# ---------------------------------------------------------------- setup / login / logout


def test_setup_reads_password_from_stdin_not_argv(cli, su):
    argv = cli.argv(["-o", "json", "setup", "--email", "first@example.com", "--name", "First Admin", "--password-stdin"])
    assert not any(PASSWORD in a for a in argv)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env())
    try:
        # The child waits for the password on stdin: its command line must not hold it.
        deadline = time.time() + 10
        while True:  # until the exec has happened
            with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if b"--password-stdin" in cmdline or time.time() > deadline:
                break
            time.sleep(0.01)
        assert b"--password-stdin" in cmdline and PASSWORD.encode() not in cmdline
        with open(f"/proc/{p.pid}/environ", "rb") as f:
            assert PASSWORD.encode() not in f.read()
        out, err = p.communicate(PASSWORD + "\n", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert PASSWORD not in out and PASSWORD not in err
    res = json.loads(out)
    assert res["email"] == "first@example.com" and res["session_file"] == cli.session_file
    uuid.UUID(res["user_id"])
    # The session is saved, private, and valid.
    mode = stat.S_IMODE(os.stat(cli.session_file).st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(cli.session_file)).st_mode) == 0o700
    token = open(cli.session_file).read().strip()
    assert one(su, "SELECT email FROM dashboard_auth.validate_session(%s)", (token,)) == "first@example.com"
    assert one(su, "SELECT full_name FROM dashboard_auth.users") == "First Admin"
    # Login with that password works: the stored password is what stdin gave.
    login_sql(su, "first@example.com")
    # Next commands act as that admin.
    assert [a["email"] for a in cli.json("admin", "users", "list")] == ["first@example.com"]
    # Setup runs once.
    err = cli.fails(FAILED, "setup", "--email", "second@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert "already been completed" in err


def test_setup_refusals(cli, su):
    err = cli.fails(USAGE, "setup", "--email", "a@example.com")  # stdin is not a terminal
    assert "--password-stdin" in err
    err = cli.fails(FAILED, "setup", "--email", "a@example.com", "--password-stdin", input="tiny9\n")
    assert "password" in err.lower() and "tiny9" not in err
    assert one(su, "SELECT dashboard_auth.needs_setup()") is True
    assert not os.path.exists(cli.session_file)
    cli.fails(USAGE, "setup", "--email", "a@example.com", "--password-stdin", input="\n")
    err = cli.fails(DENIED, "setup", "--email", "a@example.com", "--password-stdin", input=PASSWORD + "\n", user="fb_plain")
    assert "permission denied" in err


def test_login_session_makes_admin_the_actor(cli, su):
    setup_admin(su)
    other = create_admin(su, "other@example.com")
    out = cli.json("login", "--email", "root@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert out["status"] == "ok" and out["email"] == "root@example.com" and out["expires_at"]
    assert stat.S_IMODE(os.stat(cli.session_file).st_mode) == 0o600
    token = open(cli.session_file).read().strip()
    assert token not in json.dumps(out)
    assert one(su, "SELECT email FROM dashboard_auth.validate_session(%s)", (token,)) == "root@example.com"
    # deleting an admin is a step-up action: the password comes from stdin for the re-authentication
    cli.json("admin", "users", "delete", other, "--yes", "--password-stdin", input=PASSWORD + "\n")
    assert one(su, "SELECT actor FROM dashboard_auth.audit_log WHERE action = 'admin.delete'") == "root@example.com"
    # the current session is marked in the list
    rows = cli.json("admin", "sessions", "list")
    assert [r["is_current"] for r in rows if (r.get("user_agent") or "").startswith("fluxbase-cli")] == [True]
    # logout ends the session and removes the file
    assert cli.json("logout")["logged_out"] is True
    assert not os.path.exists(cli.session_file)
    assert one(su, "SELECT count(*) FROM dashboard_auth.validate_session(%s)", (token,)) == 0
    assert "Not logged in" in cli.ok("logout").stdout


def test_login_failures(cli, su):
    setup_admin(su)
    err = cli.fails(DENIED, "login", "--email", "root@example.com", "--password-stdin", input="wrong-password-123\n")
    assert "login failed" in err and "wrong-password-123" not in err
    err2 = cli.fails(DENIED, "login", "--email", "nobody@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert err2 == err, "unknown email and wrong password read the same"
    assert not os.path.exists(cli.session_file)
    cli.fails(USAGE, "login", "--email", "root@example.com")  # no terminal to prompt
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action LIKE 'login%%' AND NOT success") >= 2


def test_stale_or_unsafe_session_file(cli, su):
    setup_admin(su)
    cli.ok("login", "--email", "root@example.com", "--password-stdin", input=PASSWORD + "\n")
    su.execute("SELECT dashboard_auth.revoke_all_sessions(id) FROM dashboard_auth.users")
    err = cli.fails(DENIED, "admin", "users", "list")
    assert "saved admin session" in err and "fluxbase login" in err
    assert len(cli.json("admin", "users", "list", "--no-session")) == 1
    os.chmod(cli.session_file, 0o644)
    err = cli.fails(DENIED, "admin", "users", "list")
    assert "chmod 600" in err
    cli.ok("logout")
    assert not os.path.exists(cli.session_file)


def test_viewer_session_is_read_only(cli, su):
    setup_admin(su)
    create_admin(su, "viewer@example.com", role="dashboard_viewer")
    other = create_admin(su, "other@example.com")
    cli.ok("login", "--email", "viewer@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert len(cli.json("admin", "users", "list")) == 3
    err = cli.fails(DENIED, "admin", "users", "delete", other, "--yes")
    assert "permission denied" in err.lower() or "viewer" in err
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 1


def test_login_with_mfa(cli, su):
    _, token = setup_admin(su)
    su.execute("BEGIN")
    su.execute("SELECT dashboard_auth.use_session(%s)", (token,))
    secret = one(su, "SELECT secret FROM dashboard_auth.totp_setup()")
    codes = one(su, "SELECT dashboard_auth.totp_enable(%s)", (totp(secret),))
    su.execute("COMMIT")
    # wrong code: refused, no session saved
    err = cli.fails(DENIED, "login", "--email", "root@example.com", "--password-stdin", input=f"{PASSWORD}\n000000x\n")
    assert "login failed" in err and not os.path.exists(cli.session_file)
    # a backup code completes the login
    out = cli.json("login", "--email", "root@example.com", "--password-stdin", input=f"{PASSWORD}\n{codes[0]}\n")
    assert out["status"] == "ok"
    saved = open(cli.session_file).read().strip()
    assert one(su, "SELECT email FROM dashboard_auth.validate_session(%s)", (saved,)) == "root@example.com"


# ---------------------------------------------------------------- step-up re-authentication


def test_step_up_without_terminal_fails_with_one_clear_line(cli, su):
    setup_admin(su)
    other = create_admin(su, "other@example.com")
    cli.ok("login", "--email", "root@example.com", "--password-stdin", input=PASSWORD + "\n")
    err = cli.fails(DENIED, "admin", "users", "delete", other, "--yes")
    assert "re-authentication required" in err and "fluxbase reauth" in err and "--password-stdin" in err
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 1


def test_step_up_retry_with_password_stdin(cli, su):
    setup_admin(su)
    other = create_admin(su, "other@example.com")
    app_user = str(one(su, "SELECT user_id FROM dashboard.invite_user('app@example.com')"))
    cli.ok("login", "--email", "root@example.com", "--password-stdin", input=PASSWORD + "\n")
    # a wrong password: refused, nothing changed, the failure audited
    err = cli.fails(DENIED, "admin", "users", "delete", other, "--yes", "--password-stdin", input="wrong-password-123\n")
    assert "re-authentication failed" in err and "wrong-password-123" not in err
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 1
    # the right one: re-authenticated, then the command ran once more and succeeded
    out = cli.json("admin", "users", "delete", other, "--yes", "--password-stdin", input=PASSWORD + "\n")
    assert out == {"deleted": True, "id": other}
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 0
    # within the window the next step-up command needs nothing
    cli.ok("users", "delete", app_user, "--yes")
    assert one(su, "SELECT count(*) FROM auth.users WHERE id = %s", (app_user,)) == 0
    rows = su.execute("SELECT success, actor FROM dashboard_auth.audit_log WHERE action = 'session.reauth' ORDER BY id").fetchall()
    assert rows == [(False, "root@example.com"), (True, "root@example.com")]


def test_reauth_subcommand(cli, su):
    setup_admin(su)
    other = create_admin(su, "other@example.com")
    other_token = login_sql(su, "other@example.com")
    cli.fails(USAGE, "reauth", "--password-stdin", input=PASSWORD + "\n")  # not logged in
    cli.ok("login", "--email", "root@example.com", "--password-stdin", input=PASSWORD + "\n")
    cli.fails(USAGE, "reauth")  # no terminal to prompt
    err = cli.fails(DENIED, "reauth", "--password-stdin", input="not-my-password-1\n")
    assert "re-authentication failed" in err
    out = cli.json("reauth", "--password-stdin", input=PASSWORD + "\n")
    assert out["reauthenticated"] is True and out["until"].endswith("Z")
    # now revoke-all of another admin (step-up) works without any secret
    assert cli.json("admin", "sessions", "revoke-all", other, "--yes") == {"user_id": other, "revoked": 1}
    assert one(su, "SELECT count(*) FROM dashboard_auth.validate_session(%s)", (other_token,)) == 0
    # the window passes: asked again
    su.execute("UPDATE dashboard_auth.sessions SET reauthenticated_at = now() - interval '1 hour'")
    err = cli.fails(DENIED, "admin", "sessions", "revoke-all", other, "--yes")
    assert "re-authentication required" in err


def test_step_up_with_totp_code_on_stdin(cli, su):
    _, token = setup_admin(su)
    other = create_admin(su, "other@example.com")
    su.execute("BEGIN")
    su.execute("SELECT dashboard_auth.use_session(%s)", (token,))
    secret = one(su, "SELECT secret FROM dashboard_auth.totp_setup()")
    codes = one(su, "SELECT dashboard_auth.totp_enable(%s)", (totp(secret, time.time() - 30),))
    su.execute("COMMIT")
    cli.ok("login", "--email", "root@example.com", "--password-stdin", input=f"{PASSWORD}\n{codes[0]}\n")
    cli.ok("admin", "users", "delete", other, "--yes", "--password-stdin", input=codes[1] + "\n")
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 0
    assert one(su, "SELECT details->>'method' FROM dashboard_auth.audit_log WHERE action = 'session.reauth'") == "backup_code"


def test_step_up_prompts_on_a_terminal(cli, su):
    """On a terminal the CLI asks for the password without echo, then retries."""
    import fcntl
    import pty
    import select
    import termios

    setup_admin(su)
    other = create_admin(su, "other@example.com")
    cli.ok("login", "--email", "root@example.com", "--password-stdin", input=PASSWORD + "\n")
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(
            cli.argv(["admin", "users", "delete", other, "--yes"]),
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(),
            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        seen = b""
        deadline = time.time() + 30
        while b"Password or two-factor code:" not in seen and time.time() < deadline:
            if select.select([master], [], [], 1)[0]:
                seen += os.read(master, 1024)
        assert b"Password or two-factor code:" in seen, seen
        # the prompt is printed first, then echo is switched off: type once it is
        while termios.tcgetattr(master)[3] & termios.ECHO and time.time() < deadline:
            time.sleep(0.05)
        assert not termios.tcgetattr(master)[3] & termios.ECHO, "echo stayed on"
        os.write(master, (PASSWORD + "\n").encode())
        out, err = p.communicate(timeout=60)
        try:
            while select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 1024)
        except OSError:
            pass
    finally:
        os.close(master)
    assert p.returncode == 0, (out, err)
    assert PASSWORD.encode() not in seen, "the password was echoed"
    assert "fresh re-authentication" in err
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 0


# ---------------------------------------------------------------- audit


def test_audit(cli, su):
    setup_admin(su)
    cli.run("login", "--email", "root@example.com", "--password-stdin", input="bad-password-xyz\n")
    rows = cli.json("audit", "--limit", "50")
    actions = [r["action"] for r in rows]
    assert "admin.setup" in actions
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True), "newest first"
    assert {"occurred_at", "actor", "target_type", "target_id", "success", "details"} <= set(rows[0])
    only = cli.json("audit", "--action", "admin.setup")
    assert len(only) == 1 and only[0]["action"] == "admin.setup" and only[0]["actor"] == "root@example.com"
    assert len(cli.json("audit", "--limit", "1")) == 1
    assert cli.json("audit", "--action", "'; DELETE FROM dashboard_auth.audit_log; --") == []
    assert "admin.setup" in cli.ok("audit").stdout
    err = cli.fails(DENIED, "audit", user="fb_plain")
    assert "permission denied" in err
    # row changes come with their rows decoded; `row.*` is a prefix
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, v text)")
    su.execute("SELECT dashboard.enable_audit('public.notes')")
    su.execute("INSERT INTO public.notes VALUES (1, 'hello')")
    changes = cli.json("audit", "--action", "row.*")
    assert changes[0]["details"]["rows"] == [{"pk": {"id": 1}, "new": {"id": 1, "v": "hello"}}]
    # by target (an id, a type, type:id) and by actor (a label, an admin's user id)
    assert [r["action"] for r in cli.json("audit", "--target", "public.notes")] == ["row.insert", "audit.enable"]
    assert [r["target_id"] for r in cli.json("audit", "--target", "table:public.notes")] == ["public.notes"] * 2
    assert cli.json("audit", "--target", "table", "--limit", "1")[0]["target_type"] == "table"
    assert cli.json("audit", "--target", "public.nothing") == []
    uid = one(su, "SELECT id FROM dashboard_auth.users WHERE email = 'root@example.com'")
    by_id = cli.json("audit", "--actor", str(uid), "--action", "admin.setup")
    assert [r["actor"] for r in by_id] == ["root@example.com"]
    assert [r["action"] for r in cli.json("audit", "--actor", "root@example.com", "--action", "admin.setup")] == ["admin.setup"]
    assert cli.json("audit", "--actor", "'; DELETE FROM dashboard_auth.audit_log; --") == []
    assert cli.json("audit", "--target", "x' OR '1'='1") == []
    assert len(cli.json("audit", "--limit", "1000")) > 3
    assert cli.run("audit", "--limit", "1001", raw=True).returncode == USAGE


# ---------------------------------------------------------------- invitations / password resets (issue 3)


def test_admin_invite_list_revoke(cli, su):
    setup_admin(su)
    out = cli.json("admin", "users", "invite", "--email", "new@example.com", "--role", "dashboard_admin")
    assert out["email"] == "new@example.com" and out["role"] == "dashboard_admin" and len(out["token"]) >= 32
    r = cli.ok("admin", "users", "invite", "--email", "view@example.com")
    assert "view@example.com" in r.stdout
    view_token = r.stdout.strip().splitlines()[-1]
    rows = cli.json("admin", "invitations", "list")
    emails = {row["email"] for row in rows}
    assert emails == {"new@example.com", "view@example.com"}
    assert {row["email"]: row["role"] for row in rows}["view@example.com"] == "dashboard_viewer"
    assert out["token"] not in json.dumps(rows), "list never shows tokens"
    assert "new@example.com" in cli.ok("admin", "invitations", "list", "--include-accepted", "--include-expired").stdout
    # revoke: confirmation, then the token no longer works
    cli.fails(USAGE, "admin", "invitations", "revoke", out["token"])
    assert cli.json("admin", "invitations", "revoke", out["token"], "--yes") == {"revoked": True}
    with pytest.raises(psycopg.Error) as e:
        su.execute("SELECT dashboard_auth.accept_invitation(%s, %s, %s)", (out["token"], PASSWORD, "New"))
    assert e.value.sqlstate == "28000", (e.value.sqlstate, str(e.value))
    # the other one is still good
    assert one(su, "SELECT dashboard_auth.accept_invitation(%s, %s, %s)", (view_token, PASSWORD, "Viewer")) is not None
    assert {row["email"] for row in cli.json("admin", "invitations", "list", "--include-accepted")} >= {"view@example.com"}
    err = cli.run("admin", "invitations", "revoke", "no-such-token", "--yes")
    assert err.returncode != 0 and err.stderr.startswith("error: ")


def test_admin_password_reset(cli, su):
    setup_admin(su)
    out = cli.json("admin", "password-reset", "--email", "root@example.com")
    assert out["email"] == "root@example.com" and len(out["token"]) >= 32
    new_pw = "another-long-passphrase-42"
    su.execute("SELECT dashboard_auth.reset_password(%s, %s)", (out["token"], new_pw))
    login_sql(su, "root@example.com", new_pw)
    cli.fails(DENIED, "admin", "password-reset", "--email", "root@example.com", user="fb_plain")


# ---------------------------------------------------------------- app users (issue 4)


def test_app_users(cli, su):
    setup_admin(su)
    john = cli.json("users", "invite", "--email", "john@example.com")
    assert john["user_id"] and john["invite_token"]
    r = cli.ok("users", "invite", "--email", "mary@example.com")
    assert "mary@example.com" in r.stdout
    emails = [u["email"] for u in cli.json("users", "list")]
    assert sorted(emails) == ["john@example.com", "mary@example.com"]
    assert [u["email"] for u in cli.json("users", "list", "--search", "john")] == ["john@example.com"]
    assert cli.json("users", "list", "--search", "'; DROP TABLE auth.users; --") == []
    assert "john@example.com" in cli.ok("users", "list").stdout
    got = cli.json("users", "get", john["user_id"])
    assert got["email"] == "john@example.com"
    cli.fails(NOT_FOUND, "users", "get", str(uuid.uuid4()))
    cli.fails(USAGE, "users", "delete", john["user_id"])
    assert cli.json("users", "delete", john["user_id"], "--yes")["deleted"] is True
    assert [u["email"] for u in cli.json("users", "list")] == ["mary@example.com"]
    cli.fails(DENIED, "users", "list", user="fb_plain")


# ---------------------------------------------------------------- impersonation (issue 4)


def test_impersonate_sees_what_rls_allows(cli, su):
    setup_admin(su)
    alice = str(one(su, "SELECT user_id FROM dashboard.invite_user('alice@example.com')"))
    bob = str(one(su, "SELECT user_id FROM dashboard.invite_user('bob@example.com')"))
    su.execute("CREATE TABLE public.todos (id serial PRIMARY KEY, owner uuid, title text)")
    su.execute("ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY")
    su.execute("CREATE POLICY own ON public.todos USING (owner = auth.uid())")
    su.execute("GRANT SELECT ON public.todos TO authenticated")
    su.execute("INSERT INTO public.todos (owner, title) VALUES (%s, 'alice todo'), (%s, 'bob todo')", (alice, bob))
    rows = cli.json("impersonate", "alice@example.com", "--reason", "ticket 42", "--", "SELECT title FROM public.todos")
    assert rows == [{"title": "alice todo"}]
    r = cli.ok("impersonate", bob, "--reason", "ticket 43", "--params", "[0]", "--", "SELECT title FROM public.todos WHERE id > $1::int")
    assert "bob todo" in r.stdout and "alice todo" not in r.stdout
    # every impersonation was ended, with its reason
    sessions = su.execute("SELECT reason, ended_at IS NOT NULL FROM auth.impersonation_sessions ORDER BY started_at").fetchall()
    assert sessions == [("ticket 42", True), ("ticket 43", True)]
    # a refused statement fails clearly, and the impersonation still ends
    err = cli.fails(DENIED, "impersonate", "alice@example.com", "--reason", "r", "--", "SET ROLE postgres")
    assert "not allowed" in err
    assert one(su, "SELECT count(*) FROM auth.impersonation_sessions WHERE ended_at IS NULL") == 0
    cli.fails(USAGE, "impersonate", "alice@example.com", "--reason", "r", "--params", "{}", "--", "SELECT 1")
    cli.fails(DENIED, "impersonate", "alice@example.com", "--reason", "r", "--", "SELECT 1", user="fb_plain")


# ---------------------------------------------------------------- table explorer (issue 5)


@pytest.fixture
def items(su):
    su.execute("CREATE TABLE public.items (id int PRIMARY KEY, name text, note text)")
    su.execute("INSERT INTO public.items VALUES (1, 'a', 'x:y'), (2, 'b', NULL), (3, 'c', 'z')")
    # The explorer runs with the caller's privileges: the dashboard role needs them.
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO fluxbase_dashboard")
    return "public.items"


def test_tables_list_describe(cli, su, items):
    setup_admin(su)
    rows = cli.json("tables", "list", "--schema", "public")
    assert any("items" in json.dumps(r) for r in rows)
    assert "items" in cli.ok("tables", "list").stdout
    cols = cli.json("tables", "describe", items)
    assert [c.get("name", c.get("column")) for c in cols] == ["id", "name", "note"]
    # Without a schema, as a newcomer types it: public's (the connection's own
    # search_path is pinned to pg_catalog).
    assert cli.json("tables", "describe", "items") == cols
    assert [r["id"] for r in cli.json("tables", "browse", "items", "--sort", "id")["rows"]] == [1, 2, 3]
    err = cli.fails(NOT_FOUND, "tables", "describe", "public.nope")
    assert "nope" in err and "does not exist" in err


def test_tables_browse(cli, su, items):
    setup_admin(su)
    page = cli.json("tables", "browse", items, "--sort", "id:desc", "--page-size", "2")
    assert [r["id"] for r in page["rows"]] == [3, 2] and page["next_cursor"] is not None
    nxt = cli.json("tables", "browse", items, "--sort", "id:desc", "--page-size", "2", "--after", json.dumps(page["next_cursor"]))
    assert [r["id"] for r in nxt["rows"]] == [1]
    assert [r["id"] for r in cli.json("tables", "browse", items, "--filter", "name:eq:b")["rows"]] == [2]
    assert [r["id"] for r in cli.json("tables", "browse", items, "--filter", "note:eq:x:y")["rows"]] == [1]
    assert [r["id"] for r in cli.json("tables", "browse", items, "--filter", "note:is_null")["rows"]] == [2]
    assert [r["id"] for r in cli.json("tables", "browse", items, "--filter", "id:in:1,3", "--sort", "id")["rows"]] == [1, 3]
    assert cli.json("tables", "browse", items, "--filter", "name:eq:'; DROP TABLE public.items; --")["rows"] == []
    assert one(su, "SELECT count(*) FROM public.items") == 3
    r = cli.ok("tables", "browse", items, "--sort", "id", "--page-size", "2")
    assert "next page: --after" in r.stdout
    cli.fails(USAGE, "tables", "browse", items, "--filter", "name:regex:x")
    cli.fails(FAILED, "tables", "browse", items, "--filter", "nope:eq:1")
    cli.fails(NOT_FOUND, "tables", "browse", "public.nope")


# ---------------------------------------------------------------- metrics (issue 6)


def test_metrics(cli, su):
    uid, _ = setup_admin(su)
    m = cli.json("metrics")  # as the dashboard's login role, not a superuser
    assert set(m) == {"collected_at", "active_sessions", "connections", "queries", "storage"}, sorted(m)
    assert str(uid) in {s["user_id"] for s in m["active_sessions"]}, m["active_sessions"]
    assert {c["max_connections"] for c in m["connections"]} == {int(one(su, "SHOW max_connections"))}
    r = cli.ok("metrics")
    assert r.stdout.strip() and "\x1b" not in r.stdout
    cli.fails(DENIED, "metrics", user="fb_plain")


def test_missing_functions_say_upgrade(cli, su):
    """A server whose fluxbase_admin lacks a function a command calls: the CLI
    names it in one line and says to upgrade (each dropped here, all overloads)."""
    setup_admin(su)
    su.execute("CREATE TABLE public.x (id int)")
    cases = [
        ("dashboard.metrics", ["metrics"]),
        ("dashboard.browse", ["tables", "browse", "public.x"]),
        ("dashboard.list_users", ["users", "list"]),
        ("dashboard_auth.list_invitations", ["admin", "invitations", "list"]),
    ]
    for f, args in cases:
        schema, name = f.split(".")
        sigs = [r[0] for r in su.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = %s AND p.proname = %s", (schema, name)).fetchall()]
        assert sigs, f"{f} is not in this build"
        for sig in sigs:
            su.execute(f"ALTER EXTENSION fluxbase_admin DROP FUNCTION {sig}")
            su.execute(f"DROP FUNCTION {sig}")
        assert not has_function(su, f)
        err = cli.fails(FAILED, *args)
        assert err == f"error: this server's fluxbase_admin has no {f} (upgrade the extension)"


# ------------------------------------------- audit verify --witness (issue 17, item 11)


def test_audit_verify_with_a_witness_file_finds_a_cut_off_tail(cli, su, tmp_path):
    su.execute("INSERT INTO dashboard_auth.audit_log (actor, action) SELECT 'db:test', 'test.event' FROM generate_series(1, 10)")
    assert "intact" in cli.ok("audit", "verify").stdout
    w = tmp_path / "witness"
    out = cli.json("audit", "verify", "--witness", str(w))
    assert out["ok"] is True and out["witness"]["id"] == 10
    head = su.execute("SELECT last_id, last_hash FROM dashboard_auth.audit_chain_head").fetchone()
    assert w.read_text() == f"{head[0]} {head[1].hex()}\n"
    # a later run checks against it and moves it on
    su.execute("INSERT INTO dashboard_auth.audit_log (actor, action) VALUES ('db:test', 'test.event')")
    out = cli.json("audit", "verify", "--witness", str(w))
    assert out["witness_checked"] == 10 and out["witness"]["id"] == 11
    # the superuser cuts the tail back and moves the head: the chain alone still verifies ...
    su.execute("ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only")
    su.execute("DELETE FROM dashboard_auth.audit_log WHERE id > 8")
    su.execute("ALTER TABLE dashboard_auth.audit_log ENABLE TRIGGER audit_log_append_only")
    su.execute("UPDATE dashboard_auth.audit_chain_head SET last_id = 8, "
               "last_hash = (SELECT row_hash FROM dashboard_auth.audit_log WHERE id = 8)")
    cli.ok("audit", "verify")
    # ... the witness does not, and is left as it was
    err = cli.fails(FAILED, "audit", "verify", "--witness", str(w))
    assert "no longer reaches entry 11" in err
    assert w.read_text().startswith("11 ")
    w.write_text("not a witness\n")
    cli.fails(USAGE, "audit", "verify", "--witness", str(w))
