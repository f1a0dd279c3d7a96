"""Operating `fluxbase serve` (issue 35): Prometheus metrics on their own
listener (scraped and parsed with prometheus_client's text-format parser) and
the JSON request log (one object per line; no token, cookie, password, email
or raw path in it, nor in any metric label)."""
import json
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD, Server, free_port

EMAIL = "ops.root+x@example.com"
# a raw path a client chose: must never become a label or a log field
SECRET_PATH = "/admin/users/00000000-0000-0000-0000-00000000abcd"
SECRET_QUERY = "q=hunter2-secret-query"


def request(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def login(base, email, password):
    """POST the sign-in form; the session cookie's value, or None."""
    opener = urllib.request.build_opener(NoRedirect)
    body = urllib.parse.urlencode({"email": email, "password": password}).encode()
    req = urllib.request.Request(base + "/admin/login", data=body, headers={
        "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with opener.open(req, timeout=10) as r:
            headers = r.headers
    except urllib.error.HTTPError as e:
        headers = e.headers
    for c in headers.get_all("Set-Cookie") or []:
        if c.startswith("__Host-fluxbase_session=") and not c.startswith("__Host-fluxbase_session=;"):
            return c.split(";", 1)[0].split("=", 1)[1]
    return None


def scrape(port):
    status, headers, text = request(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def samples(families, name):
    return families[name].samples if name in families else []


def value(families, name, sample=None, **labels):
    """The sum of family `name`'s samples (named `sample`, if given) with these labels; None if none."""
    found = [s.value for s in samples(families, name)
             if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found) if found else None


def test_metrics_and_json_log(db, su):
    su.execute("SELECT dashboard_auth.setup_first_admin(%s, %s, 'Ops Root')", (EMAIL, PASSWORD))
    admin_id = str(su.execute("SELECT id FROM dashboard_auth.users WHERE email = %s", (EMAIL,)).fetchone()[0])
    mport = free_port()
    s = Server(db.name, ["--metrics-listen", f"127.0.0.1:{mport}", "--log-format", "json"])
    try:
        # a failed sign-in (the password is a secret), then a good one
        assert login(s.url, EMAIL, "wrong-" + PASSWORD) is None
        token = login(s.url, EMAIL, PASSWORD)
        assert token and token.startswith("fbs_")
        cookie = {"Cookie": f"__Host-fluxbase_session={token}"}
        status, headers, _ = request(s.url + "/admin/users", headers=cookie)
        assert status == 200
        request_id = headers["x-request-id"]
        assert len(request_id) == 16
        status, _, _ = request(s.url + SECRET_PATH + "?" + SECRET_QUERY, headers=cookie)
        assert status in (404, 200)
        status, _, _ = request(s.url + "/admin/no/such/page/" + "hunter2", headers=cookie)
        assert status == 404
        # a cross-site POST: refused by the CSRF layer, still counted
        status, _, _ = request(s.url + "/admin/logout", data=b"x=1", headers={**cookie, "Sec-Fetch-Site": "cross-site"})
        assert status == 403

        text, fam = scrape(mport)
        # requests by route template and status, never by raw path
        assert value(fam, "fluxbase_http_requests", route="/admin/users", method="GET", status="200") == 1
        assert value(fam, "fluxbase_http_requests", route="/admin/users/{id}", method="GET") == 1
        assert value(fam, "fluxbase_http_requests", route="unmatched", status="404") == 1
        assert value(fam, "fluxbase_http_requests", route="/admin/logout", method="POST", status="403") == 1
        assert value(fam, "fluxbase_http_requests", route="/admin/login", method="POST") == 2
        assert value(fam, "fluxbase_http_request_duration_seconds", "fluxbase_http_request_duration_seconds_count",
                     route="/admin/users", method="GET") == 1
        assert fam["fluxbase_http_request_duration_seconds"].type == "histogram"
        assert value(fam, "fluxbase_http_requests_in_flight") == 0
        # sign-ins by outcome
        assert value(fam, "fluxbase_signins", outcome="failed") == 1
        assert value(fam, "fluxbase_signins", outcome="ok") == 1
        assert value(fam, "fluxbase_signin_lockouts") == 0
        assert value(fam, "fluxbase_stepup_refusals") == 0
        assert value(fam, "fluxbase_replica_fallbacks") == 0
        # the pool (in memory, at scrape time)
        assert value(fam, "fluxbase_db_pool_connections", pool="primary") >= 1
        assert value(fam, "fluxbase_db_pool_connections_in_use", pool="primary") == 0
        assert value(fam, "fluxbase_db_pool_waiting", pool="primary") == 0
        assert value(fam, "fluxbase_sse_subscribers") == 0
        # database figures, sampled at start (the setup's session was live then)
        assert value(fam, "fluxbase_db_sample_ok") == 1
        assert value(fam, "fluxbase_admin_sessions") >= 1
        assert value(fam, "fluxbase_impersonations") == 0
        last_id = su.execute("SELECT last_id FROM dashboard_auth.audit_chain_head").fetchone()[0]
        assert 1 <= value(fam, "fluxbase_audit_chain_length") <= last_id
        assert 0 <= value(fam, "fluxbase_audit_newest_entry_age_seconds") < 120
        # no label carries an email, a token, a secret or a raw path
        for secret in (token, PASSWORD, "hunter2", EMAIL, "ops.root", "00000000abcd", "no/such/page"):
            assert secret not in text
        # the dashboard's port does not serve the metrics
        assert "fluxbase_http_requests_total" not in request(s.url + "/metrics")[2]
    finally:
        s.stop()

    log = open(s.log.name).read()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests_ = [l for l in lines if l.get("msg") == "request"]
    assert len(requests_) >= 7
    for l in requests_:
        assert set(l) >= {"ts", "level", "request_id", "method", "route", "status", "duration_ms", "admin_id"}
        assert isinstance(l["status"], int) and l["duration_ms"] >= 0
    users = [l for l in requests_ if l["request_id"] == request_id]
    assert len(users) == 1 and users[0]["route"] == "/admin/users" and users[0]["status"] == 200
    assert users[0]["admin_id"] == admin_id
    assert all(l["admin_id"] is None for l in requests_ if l["route"] == "/admin/login")
    assert {l["route"] for l in requests_} >= {"/admin/login", "/admin/users", "/admin/users/{id}", "unmatched", "/admin/logout"}
    # never a token, cookie, password, email, query or raw path
    for secret in (token, "fluxbase_session", PASSWORD, "hunter2", EMAIL, "ops.root", "00000000abcd", "no/such/page"):
        assert secret not in log, secret


def test_metrics_listener_is_off_by_default_and_needs_a_free_port(db):
    s = Server(db.name)
    try:
        assert "Prometheus metrics" not in open(s.log.name).read()
        assert "fluxbase_http_requests_total" not in request(s.url + "/metrics")[2]
    finally:
        s.stop()
    import os
    import subprocess
    from conftest import BIN, db_url
    busy = free_port()
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", busy))
        held.listen()
        env = dict(os.environ, DATABASE_URL=db_url(db.name))
        env.pop("RUST_BACKTRACE", None)
        r = subprocess.run([BIN, "serve", "--listen", f"127.0.0.1:{free_port()}", "--metrics-listen", f"127.0.0.1:{busy}"],
                           env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "--metrics-listen" in r.stderr
    r = subprocess.run([BIN, "serve", "--log-format", "xml"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "xml" in r.stderr
