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


# ---------------------------------------------------------------- Analytics (issue 20)


def test_connection_breakdown_counts_by_application_and_role(db, su, web):
    setup_admin(su)
    extra = [psycopg.connect(dbname=db.name, user="fb_web", autocommit=True, application_name="analytics-test")
             for _ in range(3)]
    try:
        rows = rows_as_dicts(su, "SELECT * FROM dashboard.connection_breakdown()")
        mine = [r for r in rows if r["application_name"] == "analytics-test"]
        assert sum(r["connections"] for r in mine) == 3
        assert {r["role"] for r in mine} == {"fb_web"} and {r["database"] for r in mine} == {db.name}
        assert {r["state"] for r in mine} == {"idle"}
        # the totals match pg_stat_activity, and max_connections is the server's
        total = one(su, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        assert sum(r["connections"] for r in rows) == total
        assert rows[0]["max_connections"] == int(one(su, "SHOW max_connections"))
        # the caller's own row is active
        assert any(r["state"] == "active" and r["role"] == "postgres" for r in rows)
        # a viewer (an admin session of role dashboard_viewer) may read it ...
        one(su, "SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')", (PASSWORD,))
        viewer_token = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
        as_session(web, viewer_token)
        seen = rows_as_dicts(web, "SELECT * FROM dashboard.connection_breakdown()")
        web.execute("COMMIT")
        assert sum(r["connections"] for r in seen if r["application_name"] == "analytics-test") == 3
        # ... an app role may not
        app = db.conn("fb_app")
        app.execute("SET ROLE authenticated")
        with pytest.raises(psycopg.Error) as e:
            app.execute("SELECT * FROM dashboard.connection_breakdown()")
        assert e.value.sqlstate == "42501"
    finally:
        for c in extra:
            c.close()


def test_cache_hit_ratio(su):
    su.execute("CREATE TABLE public.cached (id int PRIMARY KEY, v text)")
    su.execute("INSERT INTO public.cached SELECT g, 'x' FROM generate_series(1, 1000) g")
    for _ in range(5):
        su.execute("SELECT count(*) FROM public.cached WHERE id < 500")
    su.execute("SELECT pg_stat_force_next_flush()")
    rows = {r["scope"]: r for r in rows_as_dicts(su, "SELECT * FROM dashboard.cache_hit_ratio()")}
    assert set(rows) == {"database", "tables", "indexes"}
    db_row = rows["database"]
    hits, reads = su.execute("SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert db_row["hits"] <= hits and db_row["reads"] <= reads and db_row["hits"] > 0
    assert 0 < db_row["ratio"] <= 1
    assert abs(db_row["ratio"] - db_row["hits"] / (db_row["hits"] + db_row["reads"])) < 1e-9
    assert rows["tables"]["hits"] > 0


def test_top_queries_by_total_mean_and_calls(su, web):
    if one(su, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'") == 0:
        su.execute("CREATE EXTENSION pg_stat_statements")
    su.execute("SELECT pg_stat_statements_reset()")
    for _ in range(30):
        su.execute("SELECT 1 AS many_calls_marker")
    su.execute("SELECT pg_sleep(0.3) AS slow_marker")
    assert rows_as_dicts(su, "SELECT * FROM dashboard.query_stats_available()") == [{"available": True, "hint": None}]
    by_calls = rows_as_dicts(su, "SELECT * FROM dashboard.top_queries('calls', 50)")
    top = by_calls[0]
    assert "many_calls_marker" in top["query"] and top["calls"] >= 30
    want = su.execute("SELECT calls, rows FROM pg_stat_statements WHERE query LIKE '%%many_calls_marker%%'").fetchone()
    assert (top["calls"], top["rows"]) == want
    by_mean = rows_as_dicts(su, "SELECT * FROM dashboard.top_queries('mean_time')")
    assert "slow_marker" in by_mean[0]["query"] and by_mean[0]["mean_exec_ms"] >= 300
    by_total = rows_as_dicts(su, "SELECT * FROM dashboard.top_queries()")
    assert [r["total_exec_ms"] for r in by_total] == sorted((r["total_exec_ms"] for r in by_total), reverse=True)
    for r in by_total:
        if r["shared_blks_hit"] + r["shared_blks_read"]:
            assert r["cache_hit_ratio"] == pytest.approx(r["shared_blks_hit"] / (r["shared_blks_hit"] + r["shared_blks_read"]))
    assert len(rows_as_dicts(su, "SELECT * FROM dashboard.top_queries('calls', 2)")) == 2
    for bad, state in [("'elapsed', 5", "22023"), ("'calls; DROP TABLE x', 5", "22023"), ("'calls', 0", "22023"),
                       ("'calls', 1001", "22023")]:
        with pytest.raises(psycopg.Error) as e:
            su.execute(f"SELECT * FROM dashboard.top_queries({bad})")
        assert e.value.sqlstate == state, bad
    assert rows_as_dicts(web, "SELECT * FROM dashboard.top_queries('calls', 5)")


def test_top_queries_without_pg_stat_statements(su):
    su.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    notices = []
    su.add_notice_handler(lambda d: notices.append(d.message_primary))
    assert su.execute("SELECT * FROM dashboard.top_queries()").fetchall() == []
    assert any("CREATE EXTENSION pg_stat_statements" in n for n in notices)
    (available, hint), = su.execute("SELECT * FROM dashboard.query_stats_available()").fetchall()
    assert available is False and "shared_preload_libraries" in hint


def test_largest_indexes(su):
    su.execute("CREATE TABLE public.big (id int PRIMARY KEY, v text)")
    su.execute("CREATE INDEX big_v ON public.big (v)")
    su.execute("INSERT INTO public.big SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
    su.execute("SELECT * FROM public.big WHERE id = 5")
    rows = rows_as_dicts(su, "SELECT * FROM dashboard.largest_indexes(5)")
    assert len(rows) <= 5
    assert rows[0]["index_name"] == "big_v" and rows[0]["table_name"] == "big" and rows[0]["schema_name"] == "public"
    assert rows[0]["bytes"] == one(su, "SELECT pg_relation_size('public.big_v')")
    pk = [r for r in rows if r["index_name"] == "big_pkey"][0]
    assert pk["is_primary"] and pk["is_unique"] and not rows[0]["is_unique"]
    assert [r["bytes"] for r in rows] == sorted((r["bytes"] for r in rows), reverse=True)
    with pytest.raises(psycopg.Error) as e:
        su.execute("SELECT * FROM dashboard.largest_indexes(0)")
    assert e.value.sqlstate == "22023"


def test_analytics_functions_refuse_app_roles(db):
    c = db.conn("fb_app")
    for f in ("connection_breakdown()", "cache_hit_ratio()", "query_stats_available()", "top_queries()", "largest_indexes()"):
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"SELECT * FROM dashboard.{f}")
        assert e.value.sqlstate == "42501", f
