"""Monitoring: active_sessions, connection_stats, query_stats, storage_usage, metrics."""
import datetime
import threading
import time

import psycopg
import pytest

from conftest import PASSWORD, as_session, one, setup_admin


def rows_as_dicts(conn, sql, params=()):
    cur = conn.execute(sql, params)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def test_active_sessions_lists_admin_sessions(su, web):
    uid, token = setup_admin(su)
    rows = rows_as_dicts(web, "SELECT * FROM dashboard.active_sessions()")
    assert len(rows) == 1
    r = rows[0]
    assert r["kind"] == "admin_session" and r["user_id"] == uid and r["actor"] == "root@example.com"
    assert r["role"] == "dashboard_admin" and isinstance(r["started_at"], datetime.datetime)
    assert r["expires_at"] > r["started_at"] and r["detail"]["scope"] == "full"
    su.execute("SELECT dashboard_auth.logout(%s)", (token,))
    assert web.execute("SELECT * FROM dashboard.active_sessions()").fetchall() == []


def test_active_sessions_includes_impersonations_when_the_table_exists(su):
    setup_admin(su)
    if one(su, "SELECT to_regclass('auth.impersonation_sessions')") is None:
        # this branch has no impersonation capability: make a table of that shape
        su.execute(
            "CREATE TABLE auth.impersonation_sessions (id uuid PRIMARY KEY, admin_user_id uuid, actor text, "
            "target_user_id uuid, target_role text, impersonation_type text, reason text, started_at timestamptz, "
            "expires_at timestamptz, ended_at timestamptz, ip inet)"
        )
    su.execute(
        "INSERT INTO auth.impersonation_sessions (id, admin_user_id, actor, target_role, impersonation_type, reason, "
        "started_at, expires_at, ended_at) SELECT gen_random_uuid(), u.id, u.email, 'authenticated', 'user', 'test', "
        "now(), now() + interval '1 hour', e FROM dashboard_auth.users u, (VALUES (NULL::timestamptz), (now())) v(e)"
    )
    rows = rows_as_dicts(su, "SELECT * FROM dashboard.active_sessions() WHERE kind = 'impersonation'")
    assert len(rows) == 1 and rows[0]["role"] == "authenticated" and rows[0]["detail"]["reason"] == "test"


def test_connection_stats_under_load(db, su):
    # one long query, one backend waiting on a lock, a few idle connections
    su.execute("CREATE TABLE public.locked (id int PRIMARY KEY)")
    su.execute("INSERT INTO public.locked VALUES (1)")
    holder = db.conn(autocommit=False)
    holder.execute("UPDATE public.locked SET id = 1")
    idle = [db.conn() for _ in range(3)]
    done = []

    def sleeper():
        c = psycopg.connect(dbname=db.name, user="postgres", autocommit=True)
        c.execute("SELECT pg_sleep(1.5)")
        c.close()
        done.append(1)

    def waiter():
        c = psycopg.connect(dbname=db.name, user="postgres", autocommit=True)
        c.execute("UPDATE public.locked SET id = 1")
        c.close()
        done.append(1)

    threads = [threading.Thread(target=sleeper), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    rows = rows_as_dicts(su, "SELECT * FROM dashboard.connection_stats()")
    holder.rollback()
    for t in threads:
        t.join()
    by_state = {r["state"]: r for r in rows}
    assert by_state["active"]["connections"] >= 3  # us, the sleeper, the waiter
    assert sum(r["waiting"] for r in rows) >= 1
    assert by_state["active"]["longest_running_seconds"] >= 0.5
    assert isinstance(by_state["active"]["longest_running_seconds"], float)
    total = rows[0]["total_connections"]
    assert total == sum(r["connections"] for r in rows) and total >= 7
    assert all(r["max_connections"] == 100 and r["total_connections"] == total for r in rows)
    assert by_state["idle"]["connections"] >= 3
    # without pg_read_all_stats the web role sees other backends' state hidden
    web_rows = rows_as_dicts(db.conn("fb_web"), "SELECT * FROM dashboard.connection_stats()")
    assert sum(r["connections"] for r in web_rows) >= 1


def test_query_stats_without_and_with_pg_stat_statements(db, su):
    notices = []
    su.add_notice_handler(lambda d: notices.append(d.message_primary))
    assert su.execute("SELECT * FROM dashboard.query_stats()").fetchall() == []
    assert any("pg_stat_statements" in n for n in notices)
    su.execute("CREATE EXTENSION pg_stat_statements")
    su.execute("SELECT pg_stat_statements_reset()")
    for i in range(5):
        su.execute("SELECT count(*) FROM pg_class WHERE relpages > %s", (i,))
    rows = rows_as_dicts(su, "SELECT * FROM dashboard.query_stats(50)")
    assert rows and all(isinstance(r["calls"], int) and isinstance(r["total_exec_ms"], float) for r in rows)
    mine = [r for r in rows if "relpages" in (r["query"] or "")]
    assert mine and mine[0]["calls"] == 5 and mine[0]["username"] == "postgres"
    assert [r["total_exec_ms"] for r in rows] == sorted((r["total_exec_ms"] for r in rows), reverse=True)
    assert len(su.execute("SELECT * FROM dashboard.query_stats(1)").fetchall()) == 1
    # the web role lacks pg_read_all_stats: other users' query text stays hidden
    web_rows = rows_as_dicts(db.conn("fb_web"), "SELECT * FROM dashboard.query_stats(50)")
    assert web_rows and not any("relpages" in (r["query"] or "") for r in web_rows)
    assert any(r["query"] == "<insufficient privilege>" for r in web_rows)
    for bad in [0, -1, 1001]:
        with pytest.raises(psycopg.Error) as e:
            su.execute("SELECT * FROM dashboard.query_stats(%s)", (bad,))
        assert e.value.sqlstate == "22023"


def test_storage_usage(su):
    su.execute("CREATE TABLE public.big (id int, payload text)")
    su.execute("INSERT INTO public.big SELECT g, repeat('x', 3000) FROM generate_series(1, 300) g")
    su.execute("CREATE INDEX ON public.big (id)")
    su.execute("ANALYZE public.big")
    rows = rows_as_dicts(su, "SELECT * FROM dashboard.storage_usage()")
    db_row = [r for r in rows if r["kind"] == "database"]
    assert len(db_row) == 1 and db_row[0]["total_bytes"] > 1_000_000
    schemas = {r["name"]: r for r in rows if r["kind"] == "schema"}
    assert {"public", "dashboard_auth", "pg_catalog"} <= set(schemas)
    tables = [r for r in rows if r["kind"] == "table"]
    assert 1 <= len(tables) <= 20
    big = [r for r in tables if r["name"] == "big" and r["schema_name"] == "public"][0]
    assert big["index_bytes"] > 0 and big["table_bytes"] > 0 and big["row_estimate"] == 300
    assert big["total_bytes"] == big["table_bytes"] + big["index_bytes"] + big["toast_bytes"] + \
        one(su, "SELECT pg_relation_size('public.big', 'fsm') + pg_relation_size('public.big', 'vm')")
    assert schemas["public"]["total_bytes"] >= big["total_bytes"]
    assert all(isinstance(r["total_bytes"], int) and r["total_bytes"] >= 0 for r in rows)


def test_metrics_document(su, web):
    setup_admin(su)
    m = one(web, "SELECT dashboard.metrics()")
    assert set(m) == {"collected_at", "active_sessions", "connections", "queries", "storage"}
    assert len(m["active_sessions"]) == 1 and m["connections"] and m["storage"]
    assert isinstance(m["queries"], list)


def test_viewers_may_read_and_others_are_refused(db, su):
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    _, token, _ = su.execute("SELECT * FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,)).fetchone()
    web = db.conn("fb_web")
    as_session(web, token)
    assert one(web, "SELECT dashboard.metrics()")["storage"]
    web.execute("COMMIT")
    fns = ["SELECT * FROM dashboard.active_sessions()", "SELECT * FROM dashboard.connection_stats()",
           "SELECT * FROM dashboard.query_stats()", "SELECT * FROM dashboard.storage_usage()",
           "SELECT dashboard.metrics()"]
    plain = db.conn("fb_plain")
    app = db.conn("fb_app")
    app.execute("SET ROLE anon")
    for sql in fns:
        for c in (plain, app):
            with pytest.raises(psycopg.Error) as e:
                c.execute(sql)
            assert e.value.sqlstate == "42501", sql
