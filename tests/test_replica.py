"""`fluxbase serve --read-replica-url`: a primary (the test cluster) and a
streaming standby of it (pg_basebackup -R, a second port: test_standby's
helpers), the server given both.

What is proved, with the standby's replay paused (pg_wal_replay_pause) so that
the two servers show different data:
  * a GET (the table grid) is served by the replica: a row inserted on the
    primary does not show until replay resumes;
  * a POST (a cell edit) goes to the primary: it edits that very row, which the
    replica does not have, and its answer shows the primary's state; the same
    session's next GET shows its own write (read-your-writes: the server waits
    for the replica to replay it or asks the primary), another session's does not;
  * an impersonated read runs on the primary (apply_impersonation writes an
    audit entry, which a standby refuses);
  * a session revoked on the primary is refused on reads at once (the server
    validates every session on the primary), and still once replay caught up;
  * the replica stopped: pages still work, served by the primary, and the
    server's log says so.
"""
import importlib.util
import pathlib
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from conftest import PASSWORD, connect, setup_admin
from test_standby import PG_BIN, Standby, as_postgres

# `fluxbase serve` as the browser tests start it (tests/web/conftest.py).
_spec = importlib.util.spec_from_file_location("web_conftest", pathlib.Path(__file__).parent / "web" / "conftest.py")
_web = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_web)
Server = _web.Server


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(server, path, token, imp=None, form=None, csrf=None):
    """(status, body, headers) of GET (or POST with `form`) `path` with the session cookie."""
    cookie = f"__Host-fluxbase_session={token}" + (f"; __Host-fluxbase_imp={imp}" if imp else "")
    headers = {"Cookie": cookie}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers.update({"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf, "HX-Request": "true",
                        "Content-Type": "application/x-www-form-urlencoded"})
    req = urllib.request.Request(server.url + path, data=data, headers=headers)
    try:
        with OPENER.open(req, timeout=30) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def csrf_of(server, token):
    status, body, _ = http(server, "/admin/tables", token)
    assert status == 200, body
    return re.search(r'name="_csrf" value="([^"]+)"', body).group(1)


class Rig:
    pass


@pytest.fixture(scope="module")
def rig(template_db):
    r = Rig()
    r.name = "t_replica_" + uuid.uuid4().hex[:8]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {r.name} TEMPLATE {template_db}")
    r.su = connect(r.name)
    r.web = connect(r.name, user="fb_web")
    r.su.execute("CREATE TABLE public.items (id int PRIMARY KEY, label text)")
    r.su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO fluxbase_dashboard, service_role")
    r.su.execute("INSERT INTO public.items VALUES (1, 'first row')")
    setup_admin(r.web)
    r.standby = Standby(r.name)
    r.server = None
    try:
        r.standby.start()
        r.ssu = r.standby.conn()
        replica_url = f"postgresql://fb_web@/{r.name}?host={r.standby.dir}&port={r.standby.port}"
        r.server = Server(r.name, extra=["--read-replica-url", replica_url])
        yield r
    finally:
        if r.server:
            r.server.stop()
        r.standby.stop()
        r.su.close()
        r.web.close()
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE {r.name} WITH (FORCE)")


def login(r):
    """A new admin session (on the primary), as the sign-in page would make."""
    row = r.web.execute("SELECT status, session_token FROM dashboard_auth.login('root@example.com', %s)",
                        (PASSWORD,)).fetchone()
    assert row[0] == "ok"
    return row[1]


def caught_up(r):
    lsn = r.su.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
    deadline = time.monotonic() + 30
    while not r.ssu.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
        assert time.monotonic() < deadline, "the standby did not catch up in 30 s"
        time.sleep(0.05)


def paused(r):
    r.ssu.execute("SELECT pg_wal_replay_pause()")
    deadline = time.monotonic() + 10
    while r.ssu.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] != "paused":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def resume(r):
    r.ssu.execute("SELECT pg_wal_replay_resume()")


def grid(r, token, imp=None):
    status, body, _ = http(r.server, "/admin/tables/public/items/grid", token, imp=imp)
    assert status == 200, body
    return body


def test_reads_come_from_the_replica_and_writes_go_to_the_primary(rig):
    r = rig
    reader, editor = login(r), login(r)
    caught_up(r)  # both sessions exist on the replica too
    csrf = csrf_of(r.server, editor)
    assert "first row" in grid(r, reader)
    paused(r)
    try:
        r.su.execute("INSERT INTO public.items VALUES (2, 'added on the primary')")
        # The GET is the replica's: replay is paused, the row is not there.
        assert "added on the primary" not in grid(r, reader)
        assert "first row" in grid(r, reader)
        # The POST is the primary's: it edits the row only the primary has,
        # and renders what the primary holds now.
        status, body, _ = http(r.server, "/admin/tables/public/items/cell", editor, csrf=csrf,
                               form={"pk": '{"id": 2}', "col": "label", "value": "edited through the web"})
        assert status == 200, body
        assert "edited through the web" in body
        assert r.su.execute("SELECT label FROM public.items WHERE id = 2").fetchone()[0] == "edited through the web"
        # Read-your-writes: the editor's next page shows its own write (the
        # replica has not replayed it, so the primary answers) ...
        assert "edited through the web" in grid(r, editor)
        # ... while other sessions still read the paused replica.
        assert "edited through the web" not in grid(r, reader)
        assert "added on the primary" not in grid(r, reader)
    finally:
        resume(r)
    caught_up(r)
    body = grid(r, reader)
    assert "edited through the web" in body, "after replay the replica has the row"


def test_impersonated_reads_run_on_the_primary(rig):
    r = rig
    token = login(r)
    with r.web.transaction():
        r.web.execute("SELECT dashboard_auth.use_session(%s)", (token,))
        imp = r.web.execute("SELECT dashboard.start_impersonation('service_role', 'replica test')").fetchone()[0]
    caught_up(r)
    paused(r)
    try:
        r.su.execute("INSERT INTO public.items VALUES (3, 'seen by the impersonation')")
        body = grid(r, token, imp=imp)
        assert "seen by the impersonation" in body, "an impersonated read is the primary's"
        assert "seen by the impersonation" not in grid(r, token), "without it, the replica's"
    finally:
        resume(r)
    caught_up(r)


def test_a_session_revoked_on_the_primary_is_refused_at_once(rig):
    r = rig
    token = login(r)
    caught_up(r)
    assert "first row" in grid(r, token)
    paused(r)
    try:
        r.su.execute("UPDATE dashboard_auth.sessions SET revoked_at = now() "
                     "WHERE token_digest = sha256(convert_to(%s, 'UTF8'))", (token,))
        # The replica still holds the session as live (replay is paused), but
        # every request is validated on the primary first.
        assert r.ssu.execute("SELECT count(*) FROM dashboard_auth.validate_session(%s)", (token,)).fetchone()[0] == 1
        status, _, headers = http(r.server, "/admin/tables/public/items/grid", token)
        assert status in (303, 204), status
        assert "login" in (headers.get("Location") or headers.get("HX-Redirect") or "")
    finally:
        resume(r)
    caught_up(r)
    assert r.ssu.execute("SELECT count(*) FROM dashboard_auth.validate_session(%s)", (token,)).fetchone()[0] == 0
    status, _, headers = http(r.server, "/admin/users", token)
    assert status == 303 and "login" in headers["Location"]


def test_pages_still_work_with_the_replica_stopped(rig):
    r = rig
    token = login(r)
    caught_up(r)
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", r.standby.data, "-m", "fast",
                    "-w", "stop"], capture_output=True, check=True)
    try:
        r.su.execute("INSERT INTO public.items VALUES (4, 'while the replica is down')")
        for path in ("/admin/tables/public/items/grid", "/admin/users", "/admin/admins", "/admin/audit"):
            status, body, _ = http(r.server, path, token)
            assert status == 200, f"{path}: {status} {body[:300]}"
        assert "while the replica is down" in grid(r, token)
        r.server.log.flush()
        log = open(r.server.log.name).read()
        assert "read replica" in log and "primary" in log, log
        # Writes were never the replica's business.
        csrf = csrf_of(r.server, token)
        status, body, _ = http(r.server, "/admin/tables/public/items/cell", token, csrf=csrf,
                               form={"pk": '{"id": 4}', "col": "label", "value": "edited, replica down"})
        assert status == 200 and "edited, replica down" in body
    finally:
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", r.standby.data, "-l", r.standby.log, "-w", "-t", "60",
                    "-o", f"-c port={r.standby.port} -c unix_socket_directories={r.standby.dir} -c hot_standby=on",
                    "start")
        # reconnect the test's own connection to the restarted standby
        r.ssu = r.standby.conn()


def test_a_bad_replica_url_is_a_usage_error():
    env = {k: v for k, v in __import__("os").environ.items() if k != "RUST_BACKTRACE"}
    r = subprocess.run([_web.BIN, "serve", "--read-replica-url", "mysql://replica/db"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "--read-replica-url: invalid database URL" in r.stderr
    # The environment variable is read the same way.
    r = subprocess.run([_web.BIN, "serve"], env=dict(env, FLUXBASE_READ_REPLICA_URL="mysql://replica/db"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--read-replica-url: invalid database URL" in r.stderr, r.stderr
