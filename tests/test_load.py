"""Load: 32 concurrent connections for a bounded time running a mix of the
dashboard's hot operations. Zero unexpected errors; every successful write has
its audit row (the counts match); the audit chain verifies at the end.

Bounded: LOAD_SECONDS (default 12) and LOAD_MAX_OPS (default 400) operations per
connection. scripts/soak.sh runs the same test for minutes.
"""
import os
import random
import threading
import time
from collections import Counter

import psycopg
from psycopg.types.json import Jsonb

from conftest import PASSWORD, one, setup_admin

CLIENTS = 32
SECONDS = float(os.environ.get("LOAD_SECONDS", "12"))
MAX_OPS = int(os.environ.get("LOAD_MAX_OPS", "400"))


def test_mixed_load_loses_nothing(db):
    su = db.conn()
    setup_admin(su)
    su.execute("CREATE TABLE public.items (id int PRIMARY KEY, owner uuid NOT NULL, val int NOT NULL DEFAULT 0)")
    su.execute("ALTER TABLE public.items ENABLE ROW LEVEL SECURITY")
    su.execute("CREATE POLICY own ON public.items USING (owner = auth.uid()) WITH CHECK (owner = auth.uid())")
    su.execute("GRANT SELECT, UPDATE ON public.items TO authenticated, fluxbase_dashboard")
    su.execute("ALTER TABLE public.items FORCE ROW LEVEL SECURITY")
    su.execute("CREATE POLICY dashboard_all ON public.items TO fluxbase_dashboard USING (true) WITH CHECK (true)")
    users = [one(su, "SELECT user_id FROM dashboard.invite_user(%s)", (f"u{i}@example.com",)) for i in range(CLIENTS)]
    su.execute("INSERT INTO public.items SELECT g, (%s::uuid[])[1 + g %% %s], 0 FROM generate_series(1, 2000) g",
               ([str(u) for u in users], CLIENTS))
    audit_before = Counter(dict(su.execute("SELECT action, count(*) FROM dashboard_auth.audit_log GROUP BY 1").fetchall()))

    conns = [db.conn("fb_web") for _ in range(CLIENTS)]
    impersonations = [one(c, "SELECT dashboard.start_impersonation(%s, 'load test')", (str(users[i]),))
                      for i, c in enumerate(conns)]
    ok, unexpected = Counter(), []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)
    deadline = [0.0]

    def worker(i):
        rnd = random.Random(i)
        conn = conns[i]
        tokens = []
        barrier.wait()
        if i == 0:
            deadline[0] = time.time() + SECONDS
        while not deadline[0]:
            time.sleep(0.001)
        for _ in range(MAX_OPS):
            if time.time() > deadline[0]:
                break
            r = rnd.random()
            try:
                if r < 0.04 or not tokens:
                    status = one(conn, "SELECT status FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,))
                    assert status == "ok", status
                    tokens.append(one(conn, "SELECT session_token FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)))
                    op = "login"
                    with lock:
                        ok["login.success"] += 1  # the first login; the second is counted below
                elif r < 0.45:
                    n = len(conn.execute("SELECT * FROM dashboard_auth.validate_session(%s)", (tokens[-1],)).fetchall())
                    assert n == 1
                    op = "validate"
                elif r < 0.48 and len(tokens) > 1:
                    sid = one(conn, "SELECT id FROM dashboard_auth.sessions WHERE token_digest = sha256(%s::bytea)", (tokens[0].encode(),))
                    assert one(conn, "SELECT dashboard_auth.revoke_session(%s)", (sid,)) is True
                    tokens.pop(0)
                    op = "session.revoke"
                elif r < 0.65:
                    page = one(conn, "SELECT dashboard.browse('public.items', %s, %s, page_size => 20)",
                               (Jsonb([{"column": "val", "op": "gte", "value": 0}]), Jsonb([{"column": "id", "dir": "desc"}])))
                    assert len(page["rows"]) == 20
                    op = "browse"
                elif r < 0.82:
                    item = rnd.randint(1, 2000)
                    row = one(conn, "SELECT dashboard.update_row('public.items', %s, %s)", (Jsonb({"id": item}), Jsonb({"val": rnd.randint(1, 9)})))
                    assert row["id"] == item
                    op = "explorer.update_row"
                elif r < 0.95:
                    rows = conn.execute("SELECT * FROM dashboard.query_as(%s, 'SELECT count(*) AS n FROM public.items')",
                                        (impersonations[i],)).fetchall()
                    # RLS under impersonation: exactly this user's items
                    assert rows[0][0]["n"] == sum(1 for g in range(1, 2001) if g % CLIENTS == i)
                    op = "query_as.read"
                else:
                    rows = conn.execute(
                        "SELECT * FROM dashboard.query_as(%s, 'UPDATE public.items SET val = val + 1 WHERE id = (SELECT min(id) FROM public.items) RETURNING id')",
                        (impersonations[i],)).fetchall()
                    assert len(rows) == 1
                    op = "impersonation.query"
                with lock:
                    ok[op] += 1
                    if op == "login":
                        ok["login.success"] += 1
            except Exception as e:  # every failure is unexpected here
                with lock:
                    unexpected.append(f"client {i}: {type(e).__name__}: {str(e)[:200]}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    [t.start() for t in threads]
    [t.join() for t in threads]

    assert unexpected == [], "\n".join(unexpected[:20])
    assert sum(ok.values()) > CLIENTS * 10, ok
    audit = Counter(dict(su.execute("SELECT action, count(*) FROM dashboard_auth.audit_log GROUP BY 1").fetchall()))
    for action in ["login.success", "session.revoke", "explorer.update_row", "impersonation.query"]:
        assert audit[action] - audit_before[action] == ok[action], (action, audit[action] - audit_before[action], ok[action])
    assert su.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
