"""Hot standby: a streaming replica of the test cluster (pg_basebackup -R, its own
socket directory and port, run as the postgres OS user), then promoted.

On the standby (read-only, in recovery):
  * validate_session answers for a live session without writing (no last_seen_at
    refresh there), and refuses a revoked or expired one once replay has caught up;
  * after use_session the dashboard's reads work (explorer, admins, sessions,
    audit search and chain verification);
  * every function of the API (the privilege matrix's rows) either works — the
    reads — or refuses with 25006 and a message saying the server is a read-only
    standby — the writes; never an internal error (XX000).
After `pg_ctl promote`: logins work, the audit chain continues, and
verify_audit_chain passes across the switch.

The matrix database (tests/test_privilege_matrix.py's fixture, its own copy here)
holds the admins, sessions, invitations, impersonation sessions and tables the
calls need; it is made on the primary and reaches the standby by replication.
"""
import os
import shutil
import subprocess
import tempfile
import time

import psycopg
import pytest

from conftest import PASSWORD, one
from test_privilege_matrix import EXPLORER_WRITE, INTERNAL, M, SESSION, WRITE, matrix_db, run_as  # noqa: F401 (fixture)

PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
PG_BIN = subprocess.check_output([PG_CONFIG, "--bindir"], text=True).strip()

# Functions whose privilege profile lets readers in, but which write: an
# impersonation session is a row, applying or stopping one is audited, and the
# login flow records sessions, throttle counters and audit entries.
WRITES_TOO = {
    "dashboard_auth.setup_first_admin(text,text,text)",
    "dashboard_auth.login(text,text,inet,text)",
    "dashboard_auth.login_mfa(text,text)",
    "dashboard_auth.logout(text)",
    "dashboard_auth.accept_invitation(text,text,text)",
    "dashboard_auth.reset_password(text,text)",
    "dashboard.start_impersonation(text,text)",
    "dashboard.apply_impersonation(uuid)",
    "dashboard.stop_impersonation(uuid)",
    "dashboard.query_as(uuid,text,jsonb)",
    # records the re-authentication on the session (and failures toward lockout)
    "dashboard_auth.reauthenticate(text)",
    # audited: every explanation is recorded (rls.explain_access)
    "dashboard.explain_access(regclass,jsonb,text,text,jsonb)",
    # audited too (rls.explain_zero_rows)
    "dashboard.explain_zero_rows(text,text,jsonb,integer)",
    # passkeys (issue 33): a sign-in or step-up consumes its challenge and
    # records the session, the counter or the failure; rename/remove change rows
    "dashboard_auth.passkey_login_finish(jsonb,inet,text)",
    "dashboard_auth.login_mfa_passkey(text,jsonb)",
    "dashboard_auth.reauthenticate_passkey(jsonb)",
    "dashboard_auth.rename_passkey(uuid,text)",
    "dashboard_auth.remove_passkey(uuid)",
}
# Trigger functions: callable only as triggers, on any server.
TRIGGERS = {sig for sig, (_, who, errors) in M.items() if who is INTERNAL and "0A000" in errors}


def is_write(sig):
    who = M[sig][1]
    return who is WRITE or who is EXPLORER_WRITE or who is SESSION or sig in WRITES_TOO


def as_postgres(*args):
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    r = subprocess.run(["runuser", "-u", "postgres", "--", *args], env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{args[0]} failed: {r.stdout}{r.stderr}"
    return r.stdout


class Standby:
    def __init__(self, primary_db):
        self.db = primary_db
        self.primary_host = os.environ["PGHOST"]
        self.port = int(os.environ["PGPORT"]) + 1
        self.dir = tempfile.mkdtemp(prefix="fluxbase-standby.", dir=os.path.dirname(self.primary_host.rstrip("/")) or "/tmp")
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o700)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.conns = []

    def start(self):
        as_postgres(f"{PG_BIN}/pg_basebackup", "-D", self.data, "-R", "-X", "stream", "-c", "fast",
                    "-h", self.primary_host, "-p", os.environ["PGPORT"], "-U", "postgres")
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                    "-o", f"-c port={self.port} -c unix_socket_directories={self.dir} -c hot_standby=on", "start")

    def conn(self, user="postgres", dbname=None):
        c = psycopg.connect(host=self.dir, port=self.port, dbname=dbname or self.db, user=user, autocommit=True)
        self.conns.append(c)
        return c

    def stop(self):
        for c in self.conns:
            c.close()
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def standby(matrix_db):
    s = Standby(matrix_db["name"])
    try:
        s.start()
        s.primary = matrix_db["conns"]["_setup"]
        s.su = s.conn()
        s.web = s.conn("fb_web")
        s.ctx = matrix_db["ctx"]
        s.imps = matrix_db["imps"]
        yield s
    finally:
        s.stop()


def caught_up(s):
    """Wait until the standby has replayed everything the primary has written so far."""
    lsn = one(s.primary, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 30
    while not one(s.su, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)):
        assert time.monotonic() < deadline, f"the standby did not replay up to {lsn} in 30 s"
        time.sleep(0.05)


def valid(conn, token):
    return conn.execute("SELECT email FROM dashboard_auth.validate_session(%s)", (token,)).fetchall()


def digest(token):
    return (token.encode(),)


def test_the_standby_is_a_hot_standby(standby):
    assert one(standby.su, "SELECT pg_is_in_recovery()") is True
    caught_up(standby)
    assert one(standby.su, "SELECT extversion FROM pg_extension WHERE extname = 'fluxbase_admin'")


def test_validate_session_answers_on_the_standby_without_writing(standby):
    s = standby
    token = s.ctx["admin_token"]
    where = "WHERE token_digest = sha256(%s::bytea)"
    # stale enough that the primary would refresh last_seen_at
    s.primary.execute(f"UPDATE dashboard_auth.sessions SET last_seen_at = now() - interval '10 minutes' {where}", digest(token))
    seen = one(s.primary, f"SELECT last_seen_at FROM dashboard_auth.sessions {where}", digest(token))
    caught_up(s)
    assert valid(s.web, token) == [("root@example.com",)]
    assert len(s.su.execute("SELECT * FROM dashboard_auth._validate_session_native(%s)", (token,)).fetchall()) == 1
    # use_session checks the token the same way
    with s.web.transaction():
        assert one(s.web, "SELECT dashboard_auth.use_session(%s)", (token,)) == s.ctx["admin_id"]
    # nothing was written: not on the standby (impossible), and so not later either
    assert one(s.su, f"SELECT last_seen_at FROM dashboard_auth.sessions {where}", digest(token)) == seen
    caught_up(s)
    assert one(s.primary, f"SELECT last_seen_at FROM dashboard_auth.sessions {where}", digest(token)) == seen
    # (the primary refreshes it, as always)
    assert valid(s.primary, token)
    assert one(s.primary, f"SELECT last_seen_at FROM dashboard_auth.sessions {where}", digest(token)) > seen


def test_revoked_and_expired_sessions_are_refused_once_replayed(standby):
    s = standby
    tokens = [one(s.primary, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
              for _ in range(2)]
    caught_up(s)
    for t in tokens:
        assert valid(s.web, t) == [("viewer@example.com",)]
    revoked, expired = tokens
    session_id = one(s.primary, "SELECT id FROM dashboard_auth.sessions WHERE token_digest = sha256(%s::bytea)", digest(revoked))
    assert one(s.primary, "SELECT dashboard_auth.revoke_session(%s)", (session_id,)) is True
    s.primary.execute("UPDATE dashboard_auth.sessions SET last_seen_at = now() - idle_timeout - interval '1 minute' "
                      "WHERE token_digest = sha256(%s::bytea)", digest(expired))
    caught_up(s)
    for t in tokens:
        assert valid(s.web, t) == []
        with pytest.raises(psycopg.Error) as e:
            with s.web.transaction():
                s.web.execute("SELECT dashboard_auth.use_session(%s)", (t,))
        assert e.value.sqlstate == "28000"


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_dashboard_reads_work_after_use_session(standby, who):
    s = standby
    caught_up(s)
    c = s.web
    with c.transaction():
        assert one(c, "SELECT dashboard_auth.use_session(%s)", (s.ctx[f"{who}_token"],)) == s.ctx[f"{who}_id"]
        tables = c.execute("SELECT schema, name FROM dashboard.list_tables('public')").fetchall()
        assert ("public", "notes") in tables
        columns = c.execute("SELECT * FROM dashboard.describe_table('public.notes')").fetchall()
        assert [col[0] for col in columns] == ["id", "body"]
        page = one(c, "SELECT dashboard.browse('public.notes', sort => '[{\"column\": \"id\"}]')")
        assert [r["body"] for r in page["rows"]] == ["one", "two"]
        admins = {r[0] for r in c.execute("SELECT email FROM dashboard_auth.list_admins()")}
        assert {"root@example.com", "viewer@example.com", "victim@example.com"} <= admins
        sessions = c.execute("SELECT user_id, is_current FROM dashboard_auth.list_sessions()").fetchall()
        assert (s.ctx[f"{who}_id"], True) in sessions
        actions = {r[0] for r in c.execute("SELECT action FROM dashboard.audit_search(page_size => 200)")}
        assert {"admin.setup", "admin.create"} <= actions
        assert c.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)


def run_on_standby(s, sig):
    """Call `sig` (its privilege-matrix call) on the standby as a caller allowed to
    make it (the superuser for internal functions, else an admin session);
    returns (sqlstate, message), (None, None) on success."""
    call, who, _ = M[sig]
    standby_matrix = {"conns": {"superuser": s.su, "admin_session": s.web}, "ctx": s.ctx, "imps": s.imps}
    return run_as(standby_matrix, "superuser" if who is INTERNAL else "admin_session", call)


@pytest.mark.parametrize("sig", sorted(set(M) - TRIGGERS))
def test_every_function_on_the_standby(standby, sig):
    """Reads work on the standby; writes refuse with 25006 saying why (a call the
    matrix expects to fail for a stated reason, e.g. a wrong 2FA code, may fail
    for it first: that refusal comes before anything is written). Never XX000."""
    caught_up(standby)
    _, _, errors = M[sig]
    state, message = run_on_standby(standby, sig)
    assert state != "XX000", f"{sig} on the standby: internal error {message}"
    if is_write(sig):
        if state == "25006":
            assert "read-only standby" in message, f"{sig}: 25006 without saying why: {message}"
        else:
            assert state in errors, f"{sig} on the standby: expected 25006 (read-only standby), got {state or 'success'} {message or ''}"
    else:
        assert state is None or state in errors, f"{sig} (a read) on the standby: got {state} {message}"


def test_promotion_continues_logins_and_the_audit_chain(standby):
    s = standby
    caught_up(s)
    last_id = one(s.primary, "SELECT max(id) FROM dashboard_auth.audit_log")
    assert one(s.su, "SELECT max(id) FROM dashboard_auth.audit_log") == last_id
    as_postgres(f"{PG_BIN}/pg_ctl", "-D", s.data, "-w", "-t", "60", "promote")
    deadline = time.monotonic() + 30
    while one(s.su, "SELECT pg_is_in_recovery()"):
        assert time.monotonic() < deadline, "the standby did not leave recovery"
        time.sleep(0.05)
    web = s.conn("fb_web")
    status, token = web.execute("SELECT status, session_token FROM dashboard_auth.login('victim@example.com', %s)",
                                (PASSWORD,)).fetchone()
    assert status == "ok" and token
    assert valid(web, token) == [("victim@example.com",)]
    with web.transaction():
        web.execute("SELECT dashboard_auth.use_session(%s)", (token,))
        web.execute("SELECT dashboard_auth.create_admin('after-promotion@example.com', %s, 'After', 'dashboard_viewer')",
                    (PASSWORD,))
    rows = web.execute("SELECT id, action FROM dashboard_auth.audit_log WHERE id > %s ORDER BY id", (last_id,)).fetchall()
    assert [r[0] for r in rows] == list(range(last_id + 1, last_id + 1 + len(rows))), "the chain's ids go on without a gap"
    assert {"login.success", "admin.create"} <= {r[1] for r in rows}, rows
    assert web.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
