"""Faults: a backend killed mid-edit, an immediate shutdown, timeouts and cancels.

The kill and shutdown tests restart the whole cluster (that is what Postgres
does after a backend dies), so they wait for it to come back before moving on.
"""
import os
import subprocess
import threading
import time

import psycopg
import pytest

from conftest import PASSWORD, as_session, one, setup_admin


def pg_ctl(*args):
    bindir = subprocess.check_output([os.environ.get("PG_CONFIG", "/usr/bin/pg_config"), "--bindir"], text=True).strip()
    data = os.path.join(os.environ["CLUSTER_DIR"], "data")
    subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-t", "60",
                    "-l", os.path.join(os.environ["CLUSTER_DIR"], "server.log"), *args],
                   check=True, capture_output=True, env={k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"})


def wait_until_up(dbname, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            with psycopg.connect(dbname=dbname, user="postgres", autocommit=True) as c:
                c.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_sigkill_mid_batch_edit_leaves_nothing_behind(db):
    su = db.conn()
    setup_admin(su)
    su.execute("CREATE TABLE public.victim (id int PRIMARY KEY, v text)")
    # Make the batch slow half-way, so there is time to kill it mid-statement.
    su.execute("""CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS
                  $$ BEGIN IF NEW.id = 500 THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$""")
    su.execute("CREATE TRIGGER slow BEFORE INSERT ON public.victim FOR EACH ROW EXECUTE FUNCTION public.slow()")
    su.execute("GRANT ALL ON public.victim TO fluxbase_dashboard")
    audit_before = one(su, "SELECT count(*) FROM dashboard_auth.audit_log")
    web = db.conn("fb_web")
    pid = one(web, "SELECT pg_backend_pid()")
    rows = [{"id": i, "v": f"row {i}"} for i in range(1000)]
    failure = {}

    def batch():
        try:
            web.execute("SELECT dashboard.insert_rows('public.victim', %s::jsonb)", (psycopg.types.json.Jsonb(rows),))
        except psycopg.Error as e:
            failure["error"] = e

    t = threading.Thread(target=batch)
    t.start()
    deadline = time.time() + 20
    while one(su, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,)) == 0:
        assert time.time() < deadline, "the batch never reached the slow row"
        time.sleep(0.05)
    os.kill(pid, 9)
    t.join(30)
    assert "error" in failure
    # The postmaster ends every other backend (su's too) before it restarts:
    # wait for that, or a connection made before it noticed the death (on a
    # loaded machine) would be taken for the restarted server.
    deadline = time.time() + 30
    while True:
        try:
            su.execute("SELECT 1")
        except psycopg.Error:
            break
        assert time.time() < deadline, "the postmaster did not restart after a backend was killed"
        time.sleep(0.05)
    wait_until_up(db.name)
    with psycopg.connect(dbname=db.name, user="postgres", autocommit=True) as c:
        assert one(c, "SELECT count(*) FROM public.victim") == 0
        assert one(c, "SELECT count(*) FROM dashboard_auth.audit_log") == audit_before
        assert one(c, "SELECT ok FROM dashboard_auth.verify_audit_chain()") is True
        # And the extension works after crash recovery.
        assert one(c, "SELECT status FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)) == "ok"
    db._conns.clear()


def test_immediate_shutdown_keeps_sessions_settings_and_audit(db):
    su = db.conn()
    uid, token = setup_admin(su)
    su.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '9')")
    last_audit = one(su, "SELECT max(id) FROM dashboard_auth.audit_log")
    for c in db._conns:
        c.close()
    db._conns.clear()
    pg_ctl("-m", "immediate", "stop")
    pg_ctl("start")
    wait_until_up(db.name)
    with psycopg.connect(dbname=db.name, user="fb_web", autocommit=True) as c:
        assert one(c, "SELECT user_id FROM dashboard_auth.validate_session(%s)", (token,)) == uid
        assert one(c, "SELECT dashboard_auth.get_setting('lockout.max_attempts')") == 9
        assert one(c, "SELECT max(id) FROM dashboard_auth.audit_log") == last_audit
    with psycopg.connect(dbname=db.name, user="postgres", autocommit=True) as c:
        assert one(c, "SELECT ok FROM dashboard_auth.verify_audit_chain()") is True


def test_statement_timeout_in_browse_leaves_the_caller_unchanged(db):
    su = db.conn()
    su.execute("CREATE TABLE public.big AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 200000) g")
    su.execute("ALTER TABLE public.big ADD PRIMARY KEY (id)")
    su.execute("GRANT SELECT ON public.big TO fluxbase_dashboard")
    web = db.conn("fb_web")
    web.execute("SET statement_timeout = '1ms'")
    with pytest.raises(psycopg.errors.QueryCanceled):
        for _ in range(50):  # a browse that finishes within 1 ms is possible; a search over 200k rows is not
            web.execute("SELECT dashboard.browse('public.big', search => 'zzz-not-there', page_size => 1000)")
    web.execute("SET statement_timeout = 0")
    assert one(web, "SELECT current_user") == "fb_web"
    assert one(web, "SELECT coalesce(current_setting('request.jwt.claims', true), '')") == ""


def test_cancel_in_query_as_restores_role_and_claims(db):
    su = db.conn()
    setup_admin(su)
    uid = one(su, "SELECT user_id FROM dashboard.invite_user('alice@example.com')")
    su.execute("CREATE TABLE public.slowt (id int)")
    su.execute("INSERT INTO public.slowt VALUES (1)")
    su.execute("GRANT SELECT ON public.slowt TO authenticated")
    web = db.conn("fb_web")
    sid = one(web, "SELECT dashboard.start_impersonation(%s, 'testing cancel')", (str(uid),))
    web.execute("SET statement_timeout = '300ms'")
    # A slow statement the query_as gate accepts (pg_sleep is refused by it,
    # 42501, before anything runs): the cancel lands while it runs as alice.
    slow = "SELECT count(*) FROM public.slowt, generate_series(1, 500000000) g"
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.query_as(%s, %s)", (sid, slow))
    assert e.value.sqlstate == "57014", (e.value.sqlstate, str(e.value))
    assert e.value.diag.message_primary == "canceling statement due to statement timeout"
    web.execute("SET statement_timeout = 0")
    assert one(web, "SELECT current_user") == "fb_web"
    assert one(web, "SELECT coalesce(current_setting('request.jwt.claims', true), '')") == ""
    assert one(web, "SELECT count(*) FROM dashboard_auth.list_admins()") == 1
