"""Issue 29 item 4: `fluxbase serve` and the CLI behind a transaction pooler.

Debian's pgbouncer (scripts/install-deps.sh) in `pool_mode = transaction`
with a pool of 4 server connections, in front of the test cluster. The
dashboard is started with its URL pointing at pgbouncer and no flag: the
pooler refuses the `options` startup parameter, so the server picks pooler
mode itself (search_path set in each transaction, no statement kept
prepared across transactions). Eight parallel clients browse every section:
every answer is 200. The CLI runs its commands through it, in parallel too.
"""
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import BIN, Server, free_port
from test_lookalikes import notes, plant, ran

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
PASSWORD = "correct-horse-battery-staple"


class Bouncer:
    def __init__(self, pool_mode="transaction"):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="fbbouncer."))
        self.port = free_port()
        (self.dir / "users.txt").write_text('"fb_web" ""\n"postgres" ""\n"fb_plain" ""\n')
        (self.dir / "pgbouncer.ini").write_text(f"""
[databases]
* = host={os.environ.get("PGHOST", "/var/run/postgresql")} port={os.environ.get("PGPORT", "5432")}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/users.txt
pool_mode = {pool_mode}
default_pool_size = 4
max_client_conn = 200
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        shutil.chown(self.dir, "postgres", "postgres")
        for f in self.dir.iterdir():
            shutil.chown(f, "postgres", "postgres")
        self.proc = subprocess.Popen(["runuser", "-u", "postgres", "--", PGBOUNCER, str(self.dir / "pgbouncer.ini")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        import socket
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("pgbouncer did not start: " + self.log())
                time.sleep(0.1)

    def url(self, dbname, user="fb_web"):
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def log(self):
        p = self.dir / "pgbouncer.log"
        return p.read_text() if p.exists() else ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def bouncer():
    if not os.path.exists(PGBOUNCER):
        pytest.fail("pgbouncer is not installed (scripts/install-deps.sh installs it)")
    b = Bouncer()
    yield b
    b.stop()


def login_token(su, email="root@example.com"):
    return su.execute("SELECT session_token FROM dashboard_auth.login(%s, %s)", (email, PASSWORD)).fetchone()[0]


def get(url, token):
    req = urllib.request.Request(url, headers={"Cookie": f"__Host-fluxbase_session={token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_dashboard_through_pgbouncer_transaction_mode(db, su, bouncer):
    notes(su)
    alice = su.execute("SELECT user_id FROM dashboard.invite_user('alice@example.com')").fetchone()[0]
    su.execute("SELECT dashboard_auth.setup_first_admin('root@example.com', %s, 'Root')", (PASSWORD,))
    plant(su)  # and nothing of a user's stands in for a built-in there either
    s = Server(db.name, extra=("--database-url", bouncer.url(db.name), "--pool-size", "8"))
    try:
        s.log.flush()
        s.log.seek(0)
        assert "pooler mode" in s.log.read(), "the pooler's refusal of `options` chose pooler mode"
        paths = [
            "/admin", "/admin/account", "/admin/users", f"/admin/users/{alice}", "/admin/admins", "/admin/settings",
            "/admin/analytics", "/admin/audit", "/admin/audit/verify", "/admin/tables", "/admin/tables/public/notes",
            "/admin/tables/public/notes/grid", "/admin/tables/public/notes/count",
            "/admin/tables/public/notes/export", "/admin/tables/sql", "/admin/healthz",
        ]
        tokens = [login_token(su) for _ in range(8)]
        answers, lock = [], threading.Lock()

        def client(token):
            for _ in range(3):
                for p in paths:
                    st = get(s.url + p, token)
                    with lock:
                        answers.append((p, st))

        threads = [threading.Thread(target=client, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(answers) == 8 * 3 * len(paths)
        bad = [a for a in answers if a[1] != 200]
        s.log.seek(0)
        assert not bad, f"{len(bad)} of {len(answers)} not 200: {bad[:10]}\n{s.log.read()[-3000:]}"
    finally:
        s.stop()
    assert ran(su) == []


def cli(url, session, *args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["FLUXBASE_SESSION_FILE"] = session
    return subprocess.run([BIN, "--database-url", url, "-o", "json", *args], input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=60)


def test_cli_through_pgbouncer_transaction_mode(db, su, bouncer, tmp_path):
    notes(su)
    su.execute("SELECT dashboard.invite_user('alice@example.com')")
    plant(su)
    url = bouncer.url(db.name)
    first = str(tmp_path / "s0")
    r = cli(url, first, "setup", "--email", "root@example.com", "--name", "Root", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    commands = [
        ("admin", "users", "list"), ("admin", "sessions", "list"), ("users", "list"), ("tables", "list"),
        ("tables", "describe", "public.notes"), ("tables", "browse", "public.notes", "--sort", "id:desc"),
        ("audit", "--limit", "3"), ("metrics",),
        ("impersonate", "alice@example.com", "--reason", "pooler", "--", "SELECT id FROM public.notes"),
    ]
    failures, lock = [], threading.Lock()

    def worker(i):
        session = str(tmp_path / f"s{i + 1}")
        r = cli(url, session, "login", "--email", "root@example.com", "--password-stdin", stdin=PASSWORD + "\n")
        results = [("login", r)]
        for c in commands:
            results.append((c, cli(url, session, *c)))
        results.append(("logout", cli(url, session, "logout")))
        with lock:
            failures.extend((c, r.returncode, r.stderr) for c, r in results if r.returncode != 0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures
    assert ran(su) == []
