"""Shipping and retiring the audit trail (issue 35): dashboard_auth.audit_entries,
`fluxbase audit tail` (JSON, CEF, RFC 5424 syslog to a real rsyslogd, resumed
after the tailer and the database are killed mid-stream), `fluxbase audit
archive` + dashboard_auth.purge_audit_through, `fluxbase audit verify --archive`,
and a purge that does not hold up sign-ins."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from conftest import PASSWORD, as_session, connect, one, setup_admin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLUXBASE_BIN") or os.path.join(ROOT, "target", "debug", "fluxbase")


def append(conn, n, action="test.event"):
    conn.execute(
        "INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id, details, ip) "
        "SELECT 'db:test', %s, 'thing', g::text, jsonb_build_object('n', g, 'note', 'a \"quoted\" | pipe = sign'), "
        "'10.0.0.1'::inet FROM generate_series(1, %s) g",
        (action, n),
    )


def head(conn):
    return one(conn, "SELECT coalesce(max(last_id), 0) FROM dashboard_auth.audit_chain_head")


def url(dbname, user="postgres"):
    return f"postgresql://{user}@/{dbname}?host={os.environ['PGHOST']}&port={os.environ['PGPORT']}"


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k not in ("DATABASE_URL", "RUST_BACKTRACE")}
    e["FLUXBASE_SESSION_FILE"] = "/nonexistent/fluxbase-session"
    return e


def fb(db, *args, user="postgres", timeout=120, input=None):
    return subprocess.run([BIN, "--database-url", url(db.name, user), *args], capture_output=True, text=True,
                          env=env(), timeout=timeout, input=input, stdin=None if input else subprocess.DEVNULL)


def tamper(su, sql, params=()):
    """Change the log behind the extension's back, as a superuser can."""
    su.execute("SET session_replication_role = replica")
    try:
        su.execute(sql, params)
    finally:
        su.execute("RESET session_replication_role")


# ------------------------------------------------------------ audit_entries


def test_audit_entries_in_chain_order_with_hashes(db, su):
    append(su, 5)
    rows = su.execute("SELECT id, prev_hash, row_hash, details_text, ip FROM dashboard_auth.audit_entries(0)").fetchall()
    assert [r[0] for r in rows] == list(range(1, head(su) + 1))
    assert rows[0][1] == b"\0" * 32
    for a, b in zip(rows, rows[1:]):
        assert b[1] == a[2]  # each follows the one before
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_entries(2, 2)") == 2
    assert one(su, "SELECT min(id) FROM dashboard_auth.audit_entries(2, 2)") == 3
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_entries(1000000)") == 0
    for sql, state in [("SELECT * FROM dashboard_auth.audit_entries(-1)", "22023"),
                       ("SELECT * FROM dashboard_auth.audit_entries(0, 0)", "22023"),
                       ("SELECT * FROM dashboard_auth.audit_entries(0, 10001)", "22023"),
                       ("SELECT dashboard_auth.purge_audit_through(NULL)", "22004"),
                       ("SELECT dashboard_auth.purge_audit_through(0)", "22023"),
                       ("SELECT dashboard_auth.purge_audit_through(1000000)", "22023")]:
        with pytest.raises(psycopg.Error) as e:
            su.execute(sql)
        assert e.value.sqlstate == state, sql
    # (nothing was purged by the refusals)
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_checkpoints") == 0


# ------------------------------------------------------------ tail


def tail_lines(db, *args):
    r = fb(db, "audit", "tail", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_tail_prints_every_entry_once_and_resumes_from_its_cursor(db, su, tmp_path):
    append(su, 3)
    cursor = tmp_path / "cursor"
    first = [json.loads(l) for l in tail_lines(db, "--cursor-file", str(cursor))]
    assert [e["id"] for e in first] == list(range(1, head(su) + 1))
    assert first[-1]["details"]["note"] == 'a "quoted" | pipe = sign' and first[-1]["ip"] == "10.0.0.1"
    saved_id, saved_hash = cursor.read_text().split()
    assert int(saved_id) == head(su) and saved_hash == first[-1]["row_hash"]
    # nothing new: nothing printed; then only the new entries
    assert tail_lines(db, "--cursor-file", str(cursor)) == []
    append(su, 2, "test.more")
    more = [json.loads(l) for l in tail_lines(db, "--cursor-file", str(cursor))]
    assert [e["id"] for e in more] == [first[-1]["id"] + 1, first[-1]["id"] + 2]
    assert more[0]["prev_hash"] == first[-1]["row_hash"]
    # --since
    assert [json.loads(l)["id"] for l in tail_lines(db, "--since", "2")][0] == 2
    # CEF
    cef = tail_lines(db, "-o", "cef", "--since", str(more[0]["id"]))
    assert cef[0].startswith("CEF:0|Fluxbase|fluxbase_admin|") and "|test.more|test.more|" in cef[0]
    assert f"externalId={more[0]['id']}" in cef[0] and "act=test.more" in cef[0] and "suser=db:test" in cef[0]
    assert "pipe \\= sign" in cef[0]  # '=' escaped in an extension value
    # -o cef elsewhere, a bad cursor file, a bad syslog URL: usage errors
    r = fb(db, "-o", "cef", "audit")
    assert r.returncode == 2 and "-o cef" in r.stderr
    bad = tmp_path / "bad"
    bad.write_text("12 nothex\n")
    r = fb(db, "audit", "tail", "--cursor-file", str(bad))
    assert r.returncode == 2 and "cursor file" in r.stderr
    r = fb(db, "audit", "tail", "--syslog", "http://x:1")
    assert r.returncode == 2 and "udp://" in r.stderr


def test_tail_refuses_a_rewritten_history(db, su, tmp_path):
    append(su, 3)
    cursor = tmp_path / "cursor"
    tail_lines(db, "--cursor-file", str(cursor))
    saved = int(cursor.read_text().split()[0])
    append(su, 2)
    # the entry the cursor names is rewritten, and its successor re-chained to it
    tamper(su, "UPDATE dashboard_auth.audit_log SET row_hash = sha256('forged'::bytea) WHERE id = %s", (saved,))
    tamper(su, "UPDATE dashboard_auth.audit_log SET prev_hash = sha256('forged'::bytea) WHERE id = %s", (saved + 1,))
    r = fb(db, "audit", "tail", "--cursor-file", str(cursor))
    assert r.returncode == 1
    assert f"entry {saved + 1} does not follow entry {saved}" in r.stderr and "rewritten" in r.stderr
    # an entry changed in place: caught by its own hash
    tamper(su, "UPDATE dashboard_auth.audit_log SET actor = 'someone else' WHERE id = 2")
    r = fb(db, "audit", "tail")
    assert r.returncode == 1 and "entry 2 does not match its hash" in r.stderr
    assert r.stdout.count("\n") == 1  # entry 1 only: nothing after the break


def test_tail_refuses_a_viewer_less_caller(db, su):
    # a login with no dashboard membership cannot read the trail
    r = fb(db, "audit", "tail", user="fb_plain")
    assert r.returncode in (3, 5), r.stderr


# ------------------------------------------------------------ rsyslog


def restart_database_immediately():
    """The cluster crashes (immediate shutdown) and comes back (as tests/test_faults.py does)."""
    bindir = subprocess.check_output([os.environ.get("PG_CONFIG", "/usr/bin/pg_config"), "--bindir"], text=True).strip()
    data = os.path.join(os.environ["PGHOST"], "data")
    clean = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    for args in (["-m", "immediate", "stop"], ["start", "-l", os.path.join(os.environ["PGHOST"], "server.log")]):
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-t", "60",
                        *args], check=True, capture_output=True, env=clean)

RSYSLOG_CONF = """
global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
input(type="imudp" address="127.0.0.1" port="{udp}")
template(name="raw" type="string" string="%msg%\\n")
*.* action(type="omfile" file="{out}" template="raw")
"""


class Rsyslog:
    """rsyslogd in the foreground on private ports, writing each message's MSG to a file."""

    def __init__(self, tmp_path):
        self.dir = tmp_path / "rsyslog"
        self.dir.mkdir()
        self.out = self.dir / "out.log"
        import socket
        ports = []
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
        self.tcp, self.udp = ports
        conf = self.dir / "rsyslog.conf"
        conf.write_text(RSYSLOG_CONF.format(dir=self.dir, tcp=self.tcp, udp=self.udp, out=self.out))
        self.conf = conf
        self.start()

    def start(self):
        self.proc = subprocess.Popen([shutil.which("rsyslogd") or "/usr/sbin/rsyslogd", "-n", "-f", str(self.conf),
                                      "-i", str(self.dir / "pid")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import socket
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.tcp), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("rsyslogd did not start: " + self.proc.stderr.read().decode())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def ids(self):
        if not self.out.exists():
            return []
        return [json.loads(l)["id"] for l in self.out.read_text().splitlines() if l.strip()]

    def wait_for(self, n, secs=60):
        deadline = time.time() + secs
        while time.time() < deadline:
            if len(self.ids()) >= n:
                return self.ids()
            time.sleep(0.2)
        return self.ids()


pytestmark_rsyslog = pytest.mark.skipif(not shutil.which("rsyslogd") and not os.path.exists("/usr/sbin/rsyslogd"),
                                        reason="rsyslog is not installed (scripts/install-deps.sh)")


@pytestmark_rsyslog
def test_syslog_udp_rfc5424(db, su, tmp_path):
    rs = Rsyslog(tmp_path)
    try:
        append(su, 20)
        r = fb(db, "audit", "tail", "--syslog", f"udp://127.0.0.1:{rs.udp}")
        assert r.returncode == 0, r.stderr
        assert rs.wait_for(head(su)) == list(range(1, head(su) + 1))
    finally:
        rs.stop()


@pytestmark_rsyslog
def test_syslog_tcp_many_chunks_once_in_order_and_the_cursor_at_the_last(db, su, tmp_path):
    """Pages of 2,000 entries go out in many 32 KiB chunks (one write each):
    rsyslog gets each entry once, in order, the cursor names the last one, and
    a second run from the cursor sends nothing."""
    rs = Rsyslog(tmp_path)
    cursor = tmp_path / "cursor"
    try:
        append(su, 5000)
        total = head(su)
        args = ("audit", "tail", "--batch", "2000", "--cursor-file", str(cursor), "--syslog", f"tcp://127.0.0.1:{rs.tcp}")
        r = fb(db, *args)
        assert r.returncode == 0, r.stderr
        assert rs.wait_for(total) == list(range(1, total + 1))
        saved_id, saved_hash = cursor.read_text().split()
        assert int(saved_id) == total
        assert saved_hash == one(su, "SELECT encode(row_hash, 'hex') FROM dashboard_auth.audit_log WHERE id = %s", (total,))
        r = fb(db, *args)
        assert r.returncode == 0, r.stderr
        time.sleep(1)
        assert rs.ids() == list(range(1, total + 1))
    finally:
        rs.stop()


@pytestmark_rsyslog
def test_syslog_tcp_follow_survives_killing_the_tailer_and_the_database(db, su, tmp_path):
    """Entries keep coming while the tailer is killed (SIGTERM, then SIGKILL)
    and the database restarted: rsyslog ends with every entry once, in order."""
    rs = Rsyslog(tmp_path)
    cursor = tmp_path / "cursor"
    args = [BIN, "--database-url", url(db.name), "audit", "tail", "--follow", "--poll-ms", "50", "--batch", "50",
            "--cursor-file", str(cursor), "--syslog", f"tcp://127.0.0.1:{rs.tcp}"]
    log = open(tmp_path / "tail.log", "w")
    stop = threading.Event()

    def produce():
        # new entries all along, riding out the database restart
        while not stop.is_set():
            try:
                with connect(db.name) as c:
                    while not stop.is_set():
                        append(c, 7)
                        time.sleep(0.02)
            except psycopg.Error:
                time.sleep(0.2)

    producer = threading.Thread(target=produce)
    tailer = subprocess.Popen(args, env=env(), stdout=log, stderr=log)
    producer.start()
    try:
        rs.wait_for(100)
        tailer.send_signal(signal.SIGTERM)  # a clean stop
        assert tailer.wait(20) == 0
        tailer = subprocess.Popen(args, env=env(), stdout=log, stderr=log)
        rs.wait_for(len(rs.ids()) + 100)
        # the database goes away under the tailer and the producer
        restart_database_immediately()
        rs.wait_for(len(rs.ids()) + 100)
        tailer.send_signal(signal.SIGINT)
        assert tailer.wait(20) == 0
        tailer = subprocess.Popen(args, env=env(), stdout=log, stderr=log)
        rs.wait_for(len(rs.ids()) + 50)
    finally:
        stop.set()
        producer.join(30)
    try:
        with connect(db.name) as c:
            total = head(c)
        ids = rs.wait_for(total, secs=90)
        tailer.send_signal(signal.SIGTERM)
        assert tailer.wait(20) == 0
    finally:
        if tailer.poll() is None:
            tailer.kill()
        rs.stop()
        log.close()
    assert total > 300
    assert ids == list(range(1, total + 1)), (open(tmp_path / "tail.log").read()[-2000:], len(ids), total)
    assert "reconnected to the database" in open(tmp_path / "tail.log").read()


# ------------------------------------------------------------ archive + purge + verify


def test_archive_purge_and_verify_end_to_end(db, su, tmp_path):
    append(su, 30)
    time.sleep(0.05)
    first = tmp_path / "first.jsonl"
    r = fb(db, "-o", "json", "audit", "archive", "--before", "0s", "--out", str(first))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    upto = out["last_id"]
    assert out["archived"] == upto and out["purged"] == upto and out["first_id"] == 1
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE id <= %s", (upto,)) == 0
    # the purge is recorded and the live log still verifies from its checkpoint
    assert su.execute("SELECT ok FROM dashboard_auth.verify_audit_chain()").fetchone() == (True,)
    assert one(su, "SELECT last_purged_id FROM dashboard_auth.audit_checkpoint()") == upto
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'audit.purge'") == 1
    # the header binds it: first entry follows the genesis hash, the last hash is the checkpoint's
    header = json.loads(first.read_text().splitlines()[0])
    assert header["prev_hash"] == "00" * 32 and header["last_id"] == upto
    assert header["last_hash"] == one(su, "SELECT encode(last_purged_hash, 'hex') FROM dashboard_auth.audit_checkpoint()")

    append(su, 10)
    time.sleep(0.05)
    second = tmp_path / "second.jsonl"
    r = fb(db, "-o", "json", "audit", "archive", "--before", "0s", "--out", str(second))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["first_id"] == upto + 1
    append(su, 3)
    r = fb(db, "-o", "json", "audit", "verify", "--archive", str(second), str(first))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    # nothing older: nothing archived, no file
    none = tmp_path / "none.jsonl"
    r = fb(db, "-o", "json", "audit", "archive", "--before", "1000d", "--out", str(none))
    assert r.returncode == 0 and json.loads(r.stdout)["archived"] == 0 and not none.exists()

    # the first break is named: a missing archive, an edited one, a tampered live log
    r = fb(db, "audit", "verify", "--archive", str(second))
    assert r.returncode == 1 and "breaks at entry 1: entries 1.." in r.stderr and "none of the archives" in r.stderr
    r = fb(db, "audit", "verify", "--archive", str(first))
    assert r.returncode == 1 and f"breaks at entry {upto + 1}" in r.stderr and "none of the archives" in r.stderr
    lines = first.read_text().splitlines()
    entry = json.loads(lines[5])
    entry["actor"] = "db:someone-else"
    lines[5] = json.dumps(entry)
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(lines) + "\n")
    r = fb(db, "audit", "verify", "--archive", str(edited), str(second))
    assert r.returncode == 1 and f"entry {entry['id']} does not match its hash" in r.stderr
    r = fb(db, "audit", "verify", "--archive", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 1 and "cannot read" in r.stderr
    live = one(su, "SELECT max(id) FROM dashboard_auth.audit_log")
    tamper(su, "UPDATE dashboard_auth.audit_log SET actor = 'x' WHERE id = %s", (live,))
    r = fb(db, "audit", "verify", "--archive", str(first), str(second))
    assert r.returncode == 1 and f"breaks at entry {live} (in the live log)" in r.stderr


def test_purge_through_needs_step_up_and_a_writer(db, su):
    _, token = setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')", (PASSWORD,))
    viewer = one(su, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    append(su, 3)
    upto = head(su)
    web = connect(db.name, "fb_web")
    # a viewer may not; an admin without a fresh re-authentication may not (FBR01)
    as_session(web, viewer)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.purge_audit_through(%s)", (upto,))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.purge_audit_through(%s)", (upto,))
    assert e.value.sqlstate == "FBR01"
    web.execute("ROLLBACK")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_checkpoints") == 0
    as_session(web, token, reauth=PASSWORD)
    web.execute("COMMIT")
    as_session(web, token)
    assert one(web, "SELECT dashboard_auth.purge_audit_through(%s)", (upto,)) == upto
    # again: already purged, nothing to do
    assert one(web, "SELECT dashboard_auth.purge_audit_through(%s)", (upto,)) == 0
    web.execute("COMMIT")
    who, details = su.execute(
        "SELECT actor, details FROM dashboard_auth.audit_log WHERE action = 'audit.purge' ORDER BY id LIMIT 1").fetchone()
    assert who == "root@example.com" and details["purged_rows"] == upto and details["through_id"] == upto
    assert su.execute("SELECT ok FROM dashboard_auth.verify_audit_chain()").fetchone() == (True,)
    web.close()


def test_purge_does_not_hold_up_sign_ins(db, su):
    """purge_audit_through holds no chain lock: sign-ins (each appends an audit
    entry at commit) go through while a big purge is still running. (purge_audit
    still holds it: tests/test_audit.py uses it to hold the chain lock.)"""
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('other@example.com', %s, 'Other', 'dashboard_admin')", (PASSWORD,))
    append(su, 20000)
    upto = head(su)
    purger = connect(db.name, autocommit=False)
    purger.execute("SELECT dashboard_auth.purge_audit_through(%s)", (upto,))  # not committed yet
    signer = connect(db.name, "fb_web")
    signer.execute("SET lock_timeout = '3s'")
    t0 = time.time()
    status = one(signer, "SELECT status FROM dashboard_auth.login('other@example.com', %s)", (PASSWORD,))
    assert status == "ok" and time.time() - t0 < 3
    purger.commit()
    assert su.execute("SELECT ok FROM dashboard_auth.verify_audit_chain()").fetchone() == (True,)
    purger.close()
    signer.close()


# ------------------------------------------------- purging a large log (issue 35)

CHAIN_LOCK = ("SELECT count(*) FROM pg_locks WHERE locktype = 'object' AND classid = 'pg_class'::regclass "
              "AND objid = 'dashboard_auth.audit_chain_head'::regclass AND mode = 'ExclusiveLock' AND pid = %s")


def test_purge_by_age_does_not_hold_up_sign_ins_or_audited_writes(db, su):
    """purge_audit(interval) holds no chain lock either (it did until issue
    35): with a big purge done but not committed (every lock it takes still
    held), a sign-in and an audited write go through under a lock_timeout that
    refuses any wait, their entries land after the purged prefix, and the
    purge's checkpoint is the last entry it saw."""
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('other@example.com', %s, 'Other', 'dashboard_admin')", (PASSWORD,))
    append(su, 20000)
    upto = head(su)
    purger = connect(db.name, autocommit=False)
    purger_pid = one(purger, "SELECT pg_backend_pid()")
    assert one(purger, "SELECT dashboard_auth.purge_audit('0 seconds')") == upto  # not committed yet
    assert one(su, CHAIN_LOCK, (purger_pid,)) == 0
    signer = connect(db.name, "fb_web")
    signer.execute("SET lock_timeout = '100ms'")
    assert one(signer, "SELECT status FROM dashboard_auth.login('other@example.com', %s)", (PASSWORD,)) == "ok"
    writer = connect(db.name)
    writer.execute("SET lock_timeout = '100ms'")
    append(writer, 3, "test.meanwhile")
    # a second purge queues for the first (and for nothing else)
    second = connect(db.name)
    second_pid = one(second, "SELECT pg_backend_pid()")
    done = []
    t = threading.Thread(target=lambda: done.append(one(second, "SELECT dashboard_auth.purge_audit('0 seconds')")))
    t.start()
    waiting = 0
    for _ in range(100):
        waiting = one(su, "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s "
                          "AND relation = 'dashboard_auth.audit_checkpoints'::regclass", (second_pid,))
        if waiting:
            break
        time.sleep(0.05)
    assert waiting == 1 and not done
    purger.commit()
    t.join(20)
    # the second one removed what was left before its start: the sign-in, the
    # writes and the first purge's own entry
    assert done and done[0] >= 5
    rows = su.execute("SELECT action FROM dashboard_auth.audit_log ORDER BY id").fetchall()
    assert rows == [("audit.purge",)]
    cps = su.execute("SELECT last_purged_id, purged_rows FROM dashboard_auth.audit_checkpoints ORDER BY id").fetchall()
    assert cps[0] == (upto, upto) and cps[1][0] > upto
    assert su.execute("SELECT * FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
    for c in (purger, signer, writer, second):
        c.close()


def test_purges_racing_sign_ins_and_appends_keep_the_chain(db, su):
    """Both purges, over and over, while sign-ins and audited writes commit
    and the chain is verified: nobody waits for a purge while it runs
    (pg_blocking_pids never names the purger during its purge statement; an
    audited commit waits at most for the purge's own one-entry append at its
    commit, like for any audited commit), sign-ins get through under a
    lock_timeout, every entry not purged is still there, and the chain
    verifies at every step and at the end."""
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('other@example.com', %s, 'Other', 'dashboard_admin')", (PASSWORD,))
    append(su, 5000)
    stop = threading.Event()
    errors, signins, blocked, verified = [], [], [], []
    purger = connect(db.name, autocommit=False)
    purger_pid = one(purger, "SELECT pg_backend_pid()")

    def sign_in():
        c = connect(db.name, "fb_web")
        w = connect(db.name)
        for conn in (c, w):
            conn.execute("SET lock_timeout = '2s'")
        try:
            while not stop.is_set():
                signins.append(one(c, "SELECT status FROM dashboard_auth.login('other@example.com', %s)", (PASSWORD,)))
                append(w, 20, "test.meanwhile")
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
        finally:
            c.close()
            w.close()

    def watch():
        c = connect(db.name)
        try:
            n = 0
            while not stop.is_set():
                # (samples taken while the purger runs a purge statement)
                row = c.execute(
                    "SELECT count(*), count(*) FILTER (WHERE %s = ANY(pg_blocking_pids(a.pid))) "
                    "FROM pg_stat_activity p, pg_stat_activity a WHERE p.pid = %s AND p.state = 'active' "
                    "AND p.query LIKE '%%purge_audit%%' AND a.datname = current_database()",
                    (purger_pid, purger_pid)).fetchone()
                if row[0]:
                    blocked.append(row[1])
                n += 1
                if n % 20 == 0:
                    verified.append(c.execute("SELECT ok FROM dashboard_auth.verify_audit_chain()").fetchone()[0])
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=sign_in), threading.Thread(target=watch)]
    for t in threads:
        t.start()
    purged = 0
    try:
        for i in range(6):
            append(su, 5000)
            if i % 2:
                purged += one(purger, "SELECT dashboard_auth.purge_audit('0 seconds')")
            else:
                purged += one(purger, "SELECT dashboard_auth.purge_audit_through(%s)", (head(purger),))
            purger.commit()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert len(signins) >= 3 and set(signins) == {"ok"}
    assert blocked and max(blocked) == 0  # (seen while purging, never waited for)
    assert verified and all(verified)
    cp = one(su, "SELECT max(last_purged_id) FROM dashboard_auth.audit_checkpoints")
    left = one(su, "SELECT count(*) FROM dashboard_auth.audit_log")
    assert one(su, "SELECT min(id) FROM dashboard_auth.audit_log") == cp + 1
    assert left == head(su) - cp and purged == cp
    assert su.execute("SELECT * FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
    purger.close()


def test_crash_mid_purge_leaves_a_verifiable_log(db, su):
    """The database crashes while a big purge is under way (done, not yet
    committed): after recovery every entry is there, no checkpoint is
    recorded, the chain verifies, and the purge can be run again."""
    append(su, 5000)
    upto = head(su)
    purger = connect(db.name, autocommit=False)
    assert one(purger, "SELECT dashboard_auth.purge_audit_through(%s)", (upto,)) == upto
    restart_database_immediately()
    c = connect(db.name)
    assert one(c, "SELECT count(*) FROM dashboard_auth.audit_log") == upto
    assert one(c, "SELECT count(*) FROM dashboard_auth.audit_checkpoints") == 0
    assert c.execute("SELECT * FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
    assert one(c, "SELECT dashboard_auth.purge_audit('0 seconds')") == upto
    assert c.execute("SELECT * FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
    c.close()
