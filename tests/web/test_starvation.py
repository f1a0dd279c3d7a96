"""Issue 28 item 4: the dashboard cannot be starved.

A view that sleeps, opened 32 times at once in the Tables section: its
statements run under the dashboard's statement timeout (3 s here), the
section holds only part of the pool, and sign-in, sign-out, health and the
step-up dialog have connections of their own. While the 32 wait: sign-in,
`/admin/healthz` and a page of Users answer within 2 s; every slow request
is answered (the timeout page naming the limit, or the 503 page), none
hangs.
"""
import http.client
import threading
import time
import urllib.parse

from conftest import PASSWORD, Server


def request(port, method, path, token=None, body=None, headers=None):
    c = http.client.HTTPConnection("localhost", port, timeout=60)
    h = dict(headers or {})
    if token:
        h["Cookie"] = f"__Host-fluxbase_session={token}"
    if body is not None:
        h["Content-Type"] = "application/x-www-form-urlencoded"
        h["Origin"] = f"http://localhost:{port}"
        h["Sec-Fetch-Site"] = "same-origin"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    c.close()
    return r.status, text, r.getheader("Set-Cookie") or ""


def test_32_slow_views_leave_sign_in_health_and_users_answering(db, su):
    su.execute("CREATE VIEW public.slow AS SELECT 1 AS id FROM (SELECT pg_sleep(60)) s")
    su.execute("GRANT SELECT ON public.slow TO fluxbase_dashboard")
    su.execute("SELECT dashboard_auth.setup_first_admin('root@example.com', %s, 'Root')", (PASSWORD,))
    tokens = [su.execute("SELECT session_token FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)).fetchone()[0]
              for _ in range(4)]
    s = Server(db.name, extra=("--statement-timeout", "3", "--pool-size", "16"))
    try:
        answers, lock = [], threading.Lock()

        def slow(i):
            t0 = time.time()
            st, text, _ = request(s.port, "GET", "/admin/tables/public/slow", token=tokens[i % len(tokens)])
            with lock:
                answers.append((st, time.time() - t0, text))

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # all 32 are in: the Tables section's share is taken

        t0 = time.time()
        st, _, _ = request(s.port, "GET", "/admin/healthz")
        assert st == 200 and time.time() - t0 < 2, (st, time.time() - t0)

        t0 = time.time()
        body = urllib.parse.urlencode({"email": "root@example.com", "password": PASSWORD})
        st, text, cookie = request(s.port, "POST", "/admin/login", body=body)
        assert st in (302, 303) and "__Host-fluxbase_session=" in cookie, (st, text[:300])
        assert time.time() - t0 < 2, time.time() - t0

        t0 = time.time()
        st, text, _ = request(s.port, "GET", "/admin/users", token=tokens[0])
        assert st == 200 and time.time() - t0 < 2, (st, time.time() - t0, text[:300])

        for t in threads:
            t.join(60)
        assert len(answers) == 32, "every slow request was answered"
        statuses = sorted({a[0] for a in answers})
        assert set(statuses) <= {503, 504}, statuses
        assert all(a[1] < 30 for a in answers), max(a[1] for a in answers)
        timed_out = [a for a in answers if a[0] == 504]
        assert timed_out, statuses
        assert "statement timeout (3 s" in timed_out[0][2], timed_out[0][2][:2000]
        busy = [a for a in answers if a[0] == 503]
        for a in busy:
            assert "busy" in a[2]
        # The server is still fine afterwards.
        st, _, _ = request(s.port, "GET", "/admin/users", token=tokens[1])
        assert st == 200
    finally:
        s.stop()
    # The cancelled statements are gone from the server.
    left = su.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%slow%%' AND state = 'active' "
                      "AND pid <> pg_backend_pid()").fetchone()[0]
    assert left == 0
