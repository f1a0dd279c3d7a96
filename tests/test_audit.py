"""Tamper-evident audit trail, Rust row-change audit triggers, audit_search."""
import json
import threading
import time

import psycopg
import pytest

from conftest import PASSWORD, as_session, one, setup_admin

INJECTION = "x'); DROP TABLE dashboard_auth.audit_log; --"


def verify(conn):
    return conn.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone()


def append(conn, n, action="test.event"):
    conn.execute(
        "INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id, details, ip) "
        "SELECT 'db:test', %s, 'thing', g::text, jsonb_build_object('n', g, 'nested', jsonb_build_object('b', 1, 'a', 2)), "
        "'10.0.0.1'::inet FROM generate_series(1, %s) g",
        (action, n),
    )


def make_viewer(su):
    setup_admin(su)
    su.execute(
        "SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')", (PASSWORD,)
    )
    status, token, _ = su.execute(
        "SELECT * FROM dashboard_auth.login('viewer@example.com', %s, '192.0.2.7'::inet)", (PASSWORD,)
    ).fetchone()
    assert status == "ok"
    return token


# --------------------------------------------------------------- append-only


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE dashboard_auth.audit_log SET actor = 'evil'",
        "DELETE FROM dashboard_auth.audit_log",
        "TRUNCATE dashboard_auth.audit_log",
        "UPDATE dashboard_auth.audit_checkpoints SET purged_rows = 0",
        "DELETE FROM dashboard_auth.audit_checkpoints",
        "TRUNCATE dashboard_auth.audit_checkpoints",
    ],
)
def test_audit_log_is_append_only_even_for_superuser(su, sql):
    append(su, 3)
    with pytest.raises(psycopg.Error) as e:
        su.execute(sql)
    assert e.value.sqlstate == "42501"
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log") == 3


def test_chain_is_valid_and_gapless_after_api_actions(su):
    assert verify(su) == (True, None)
    token = make_viewer(su)
    su.execute("SELECT * FROM dashboard_auth.login('nobody@example.com', 'wrong-password-here', '2001:db8::1'::inet)")
    as_session(su, token)
    su.execute("COMMIT")
    ids = [r[0] for r in su.execute("SELECT id FROM dashboard_auth.audit_log ORDER BY id")]
    assert len(ids) >= 3 and ids == list(range(1, len(ids) + 1))
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE row_hash IS NULL OR prev_hash IS NULL") == 0
    # each row's prev_hash is the row_hash of the row before it
    assert one(
        su,
        "SELECT count(*) FROM dashboard_auth.audit_log a JOIN dashboard_auth.audit_log b ON b.id = a.id - 1 "
        "WHERE a.prev_hash <> b.row_hash",
    ) == 0
    assert verify(su) == (True, None)


def test_insert_cannot_choose_its_hash_or_id(su):
    su.execute(
        "INSERT INTO dashboard_auth.audit_log (id, actor, action, prev_hash, row_hash) OVERRIDING SYSTEM VALUE "
        "VALUES (999, 'db:x', 'forged', '\\x00', '\\x00')"
    )
    row = su.execute("SELECT id, length(row_hash), length(prev_hash) FROM dashboard_auth.audit_log").fetchone()
    assert row == (1, 32, 32)
    assert verify(su) == (True, None)


# ------------------------------------------------------------ tamper routes

TAMPERS = {
    # guard trigger disabled by name, then an edit in the middle
    "update_actor": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only",
         "UPDATE dashboard_auth.audit_log SET actor = 'db:innocent' WHERE id = 5"], 5),
    "update_details": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only",
         "UPDATE dashboard_auth.audit_log SET details = details || '{\"n\": 99}' WHERE id = 7"], 7),
    "update_ip": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only",
         "UPDATE dashboard_auth.audit_log SET ip = '10.0.0.2' WHERE id = 3"], 3),
    "update_time": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only",
         "UPDATE dashboard_auth.audit_log SET occurred_at = occurred_at - interval '1 day' WHERE id = 2"], 2),
    "update_success": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER USER",
         "UPDATE dashboard_auth.audit_log SET success = false WHERE id = 1"], 1),
    # all triggers off through session_replication_role
    "delete_middle": (
        ["SET session_replication_role = replica",
         "DELETE FROM dashboard_auth.audit_log WHERE id = 4"], 5),
    "delete_tail": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER ALL",
         "DELETE FROM dashboard_auth.audit_log WHERE id >= 9"], 9),
    "truncate_all": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER ALL",
         "TRUNCATE dashboard_auth.audit_log"], 1),
    # removal and a replacement with the same id (chain trigger off)
    "replace_middle": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER ALL",
         "DELETE FROM dashboard_auth.audit_log WHERE id = 6",
         "INSERT INTO dashboard_auth.audit_log (id, actor, action, prev_hash, row_hash) OVERRIDING SYSTEM VALUE "
         "SELECT 6, 'db:test', 'test.event', row_hash, sha256(row_hash) FROM dashboard_auth.audit_log WHERE id = 5"], 6),
    # a row copied over another one (valid-looking hashes of another position)
    "copy_row": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER ALL",
         "DELETE FROM dashboard_auth.audit_log WHERE id = 8",
         "INSERT INTO dashboard_auth.audit_log (id, occurred_at, actor, action, target_type, target_id, details, ip, "
         "success, db_user, txid, prev_hash, row_hash) OVERRIDING SYSTEM VALUE "
         "SELECT 8, occurred_at, actor, action, target_type, target_id, details, ip, success, db_user, txid, "
         "prev_hash, row_hash FROM dashboard_auth.audit_log WHERE id = 7"], 8),
    # a forged row appended at the end with the chain trigger off
    "append_forged": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER zz_audit_chain",
         "INSERT INTO dashboard_auth.audit_log (id, actor, action, prev_hash, row_hash) OVERRIDING SYSTEM VALUE "
         "SELECT 11, 'db:test', 'forged', row_hash, sha256(row_hash) FROM dashboard_auth.audit_log WHERE id = 10"], 11),
    # the head moved back to hide a removed tail: row 9 is not what the head recorded
    "head_rewound": (
        ["ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER ALL",
         "DELETE FROM dashboard_auth.audit_log WHERE id = 10",
         "UPDATE dashboard_auth.audit_chain_head SET last_id = 9"], 9),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampering_is_detected_at_the_right_id(db, su, name):
    append(su, 10)
    assert verify(su) == (True, None)
    statements, bad = TAMPERS[name]
    dba = db.conn()
    for s in statements:
        dba.execute(s)
    assert verify(su) == (False, bad)


def test_guard_switched_back_on_still_reports(su):
    append(su, 5)
    su.execute("ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only")
    su.execute("UPDATE dashboard_auth.audit_log SET action = 'x' WHERE id = 2")
    su.execute("ALTER TABLE dashboard_auth.audit_log ENABLE TRIGGER audit_log_append_only")
    append(su, 2)
    assert verify(su) == (False, 2)


def test_concurrent_appends_from_16_connections_chain_correctly(db, su):
    setup_admin(su)
    errors = []
    barrier = threading.Barrier(16)

    def worker(i):
        try:
            c = psycopg.connect(dbname=db.name, user="postgres", autocommit=True)
            barrier.wait()
            for j in range(15):
                if j % 3 == 0:
                    with c.transaction():
                        append(c, 2, f"test.t{i}")
                        c.execute("UPDATE dashboard_auth.users SET full_name = %s", (f"n{i}-{j}",))
                else:
                    append(c, 1, f"test.t{i}")
            c.close()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # 16 * (5 * (2 + 1 row.update) + 10 * 1)
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action LIKE 'test.t%%'") == 16 * 20
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'row.update'") == 16 * 5
    n = one(su, "SELECT count(*) FROM dashboard_auth.audit_log")
    assert one(su, "SELECT max(id) FROM dashboard_auth.audit_log") == n
    assert one(su, "SELECT last_id FROM dashboard_auth.audit_chain_head") == n
    assert verify(su) == (True, None)


def test_rolled_back_append_leaves_no_gap(db, su):
    append(su, 2)
    c = db.conn(autocommit=False)
    append(c, 3)
    c.rollback()
    append(su, 1)
    assert [r[0] for r in su.execute("SELECT id FROM dashboard_auth.audit_log ORDER BY id")] == [1, 2, 3]
    assert verify(su) == (True, None)


# ------------------------------------------------------------------- purge


def test_purge_keeps_chain_verifiable_and_is_audited(su):
    append(su, 6)
    assert one(su, "SELECT dashboard_auth.purge_audit('1 hour')") == 0
    assert one(su, "SELECT dashboard_auth.purge_audit('0 seconds')") == 7  # 6 + the first purge's own entry
    cp = su.execute("SELECT last_purged_id, purged_rows, purged_by FROM dashboard_auth.audit_checkpoints "
                    "ORDER BY id DESC LIMIT 1").fetchone()
    assert cp == (7, 7, "db:postgres")
    rows = su.execute("SELECT id, action, details FROM dashboard_auth.audit_log ORDER BY id").fetchall()
    assert rows[0][0] == 8 and rows[0][1] == "audit.purge" and rows[0][2]["purged_rows"] == 7
    assert verify(su) == (True, None)
    append(su, 3)
    assert verify(su) == (True, None)
    # a purged row put back, or a tamper after the purge, is still found
    su.execute("ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only")
    su.execute("UPDATE dashboard_auth.audit_log SET actor = 'x' WHERE id = 10")
    assert verify(su) == (False, 10)


def test_purge_bad_arguments_and_refused_roles(db, su):
    with pytest.raises(psycopg.Error) as e:
        su.execute("SELECT dashboard_auth.purge_audit(NULL)")
    assert e.value.sqlstate == "22004"
    with pytest.raises(psycopg.Error) as e:
        su.execute("SELECT dashboard_auth.purge_audit('-1 day')")
    assert e.value.sqlstate == "22023"
    token = make_viewer(su)
    web = db.conn("fb_web")
    as_session(web, token)
    assert verify(web) == (True, None)  # viewers may read
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.purge_audit('0 seconds')")
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    plain = db.conn("fb_plain")
    for sql in ["SELECT dashboard_auth.purge_audit('0 seconds')", "SELECT * FROM dashboard_auth.verify_audit_chain()",
                "SELECT * FROM dashboard.audit_search()"]:
        with pytest.raises(psycopg.Error) as e:
            plain.execute(sql)
        assert e.value.sqlstate == "42501"
    app = db.conn("fb_app")
    app.execute("SET ROLE anon")
    with pytest.raises(psycopg.Error) as e:
        app.execute("SELECT * FROM dashboard_auth.verify_audit_chain()")
    assert e.value.sqlstate == "42501"
    # the web role can't write the log directly either
    with pytest.raises(psycopg.Error) as e:
        db.conn("fb_web").execute("INSERT INTO dashboard_auth.audit_log (actor, action) VALUES ('x', 'y')")
    assert e.value.sqlstate == "42501"


# ------------------------------------------- row-change triggers, own tables


def test_direct_sql_on_extension_tables_is_recorded(db, su):
    uid, token = setup_admin(su)
    # the API's own changes are audited by the API only
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action LIKE 'row.%%'") == 0
    su.execute("UPDATE dashboard_auth.users SET full_name = 'Changed', updated_at = updated_at WHERE id = %s", (uid,))
    actor, db_user, target, details = su.execute(
        "SELECT actor, db_user, target_id, dashboard_auth.audit_details(id) FROM dashboard_auth.audit_log "
        "WHERE action = 'row.update'"
    ).fetchone()
    assert (actor, db_user, target) == ("db:postgres", "postgres", "dashboard_auth.users")
    assert details["rows"] == [{"pk": {"id": str(uid)}, "old": {"full_name": "Root Admin"}, "new": {"full_name": "Changed"}}]
    # with an admin session in the transaction, that admin is the actor
    as_session(su, token)
    su.execute("INSERT INTO dashboard_auth.settings_store (key, value) VALUES ('password.min_length', '14')")
    su.execute("COMMIT")
    actor, db_user = su.execute(
        "SELECT actor, db_user FROM dashboard_auth.audit_log WHERE target_id = 'dashboard_auth.settings_store'"
    ).fetchone()
    assert (actor, db_user) == ("root@example.com", "postgres")
    assert verify(su) == (True, None)


def test_secret_columns_are_redacted(su):
    uid, _ = setup_admin(su)
    secret_hash = one(su, "SELECT password_hash FROM dashboard_auth.credentials")
    digest = one(su, "SELECT encode(token_digest, 'hex') FROM dashboard_auth.sessions")
    su.execute("UPDATE dashboard_auth.credentials SET password_hash = password_hash || 'x'")
    su.execute("DELETE FROM dashboard_auth.sessions")
    rows = su.execute("SELECT target_id, dashboard_auth.audit_details(id)::text, dashboard_auth.audit_details(id), "
                      "encode(row_data, 'hex') FROM dashboard_auth.audit_log "
                      "WHERE action LIKE 'row.%' ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["dashboard_auth.credentials", "dashboard_auth.sessions"]
    for _, text, _, stored in rows:
        # neither in what a reader sees nor in the stored row image
        assert secret_hash not in text and "argon2" not in text and digest not in text
        assert secret_hash.encode().hex() not in stored and b"argon2".hex() not in stored and digest not in stored
    assert rows[0][2]["rows"][0]["new"] == {"password_hash": "[redacted]"}
    assert rows[1][2]["rows"][0]["old"]["token_digest"] == "[redacted]"
    assert rows[1][2]["rows"][0]["old"]["user_id"] == str(uid)


# --------------------------------------------- row-change triggers, user tables


@pytest.fixture
def orders(su):
    su.execute(
        "CREATE TABLE public.orders (region text, num int, qty int NOT NULL, price numeric, note text, "
        "total numeric GENERATED ALWAYS AS (qty * price) STORED, PRIMARY KEY (region, num))"
    )
    assert one(su, "SELECT dashboard.enable_audit('public.orders')") is True
    return "public.orders"


def row_events(su, target="public.orders"):
    return su.execute(
        "SELECT action, dashboard_auth.audit_details(id), actor, db_user, txid, impersonation_session_id "
        "FROM dashboard_auth.audit_log "
        "WHERE action LIKE 'row.%%' AND target_id = %s ORDER BY id", (target,)
    ).fetchall()


def test_user_table_audit_composite_key_and_generated_column(su, orders):
    su.execute("INSERT INTO orders (region, num, qty, price, note) VALUES ('eu', 1, 2, 10, 'a'), ('eu', 2, 1, 5, 'b'), "
               "('us', 1, 3, 1, 'c')")
    su.execute("UPDATE orders SET qty = qty + 1 WHERE region = 'eu'")
    su.execute("UPDATE orders SET note = note WHERE region = 'us'")  # no real change
    su.execute("DELETE FROM orders WHERE num = 2")
    su.execute("DELETE FROM orders WHERE false")  # no rows: no entry
    ev = row_events(su)
    assert [e[0] for e in ev] == ["row.insert", "row.update", "row.update", "row.delete"]
    ins = ev[0][1]
    assert ins["count"] == 3 and ins["pk_columns"] == ["region", "num"] and ins["op"] == "INSERT"
    assert ins["rows"][0] == {"pk": {"region": "eu", "num": 1},
                              "new": {"region": "eu", "num": 1, "qty": 2, "price": 10, "note": "a", "total": 20}}
    upd = ev[1][1]
    by_pk = {(r["pk"]["region"], r["pk"]["num"]): r for r in upd["rows"]}
    assert by_pk[("eu", 1)]["old"] == {"qty": 2, "total": 20}
    assert by_pk[("eu", 1)]["new"] == {"qty": 3, "total": 30}
    assert by_pk[("eu", 2)]["new"] == {"qty": 2, "total": 10}
    assert ev[2][1]["rows"] == [{"pk": {"region": "us", "num": 1}, "old": {}, "new": {}}]
    dele = ev[3][1]
    assert dele["rows"][0]["pk"] == {"region": "eu", "num": 2} and dele["rows"][0]["old"]["note"] == "b"
    assert all(e[2] == "db:postgres" and e[3] == "postgres" and e[4] > 0 for e in ev)
    assert verify(su) == (True, None)


def test_enable_disable_and_list(su, orders):
    assert su.execute("SELECT * FROM dashboard.audited_tables()").fetchall() == [("public.orders", ["INSERT", "UPDATE", "DELETE", "TRUNCATE"])]
    assert one(su, "SELECT dashboard.enable_audit('orders')") is True  # idempotent
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('x', 1, 1)")
    assert len(row_events(su)) == 1
    assert one(su, "SELECT dashboard.disable_audit('orders')") is True
    assert one(su, "SELECT dashboard.disable_audit('orders')") is False
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('x', 2, 1)")
    assert len(row_events(su)) == 1
    assert su.execute("SELECT * FROM dashboard.audited_tables()").fetchall() == []
    actions = [r[0] for r in su.execute("SELECT action FROM dashboard_auth.audit_log WHERE target_id = 'public.orders' "
                                        "AND action LIKE 'audit.%' ORDER BY id")]
    assert actions == ["audit.enable", "audit.enable", "audit.disable"]


def test_impersonation_session_and_admin_actor_recorded(su, orders):
    _, token = setup_admin(su)
    sid = "6f1c2c8e-5d6a-4b0e-9a51-3f7d2f0c1a11"
    as_session(su, token)
    su.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": "x", "session_id": sid}),))
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('a', 1, 1)")
    su.execute("COMMIT")
    # garbage claims do not break the user's statement
    su.execute("SELECT set_config('request.jwt.claims', 'not json', false)")
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('a', 2, 1)")
    ev = row_events(su)
    # claims are anyone's to set: the session id is taken only from an
    # impersonation the extension applied itself (tests/test_confinement.py)
    assert ev[0][5] is None and ev[0][2] == "root@example.com"
    assert ev[1][5] is None and ev[1][2] == "db:postgres"


def test_weird_table_name_and_no_primary_key(su):
    su.execute('CREATE TABLE public."we""ird; drop table x" (v int, "sp ace" text)')
    assert one(su, """SELECT dashboard.enable_audit('public."we""ird; drop table x"')""") is True
    su.execute('INSERT INTO public."we""ird; drop table x" VALUES (1, \'a\'), (2, \'b\')')
    su.execute('UPDATE public."we""ird; drop table x" SET v = v * 10')
    ev = row_events(su, 'public.we"ird; drop table x')
    assert [e[0] for e in ev] == ["row.insert", "row.update"]
    assert ev[1][1]["pk_columns"] == [] and ev[1][1]["rows"][1] == {"pk": {}, "old": {"v": 2}, "new": {"v": 20}}


def test_enable_audit_bad_input_and_refused(db, su, orders):
    su.execute("CREATE VIEW public.v AS SELECT 1 AS x")
    for sql, state in [
        ("SELECT dashboard.enable_audit(NULL)", "22004"),
        ("SELECT dashboard.enable_audit('public.v')", "22023"),
        ("SELECT dashboard.enable_audit('dashboard_auth.users')", "22023"),
        ("SELECT dashboard.enable_audit('pg_catalog.pg_class')", "22023"),
        ("SELECT dashboard.enable_audit(%s)", "42602"),
    ]:
        with pytest.raises(psycopg.Error) as e:
            su.execute(sql, (INJECTION,) if "%s" in sql else ())
        assert e.value.sqlstate == state, sql
    web = db.conn("fb_web")  # may call the API, but has no TRIGGER right on the table
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.enable_audit('public.orders')")
    assert e.value.sqlstate == "42501"
    for user in ["fb_plain"]:
        with pytest.raises(psycopg.Error) as e:
            db.conn(user).execute("SELECT dashboard.disable_audit('public.orders')")
        assert e.value.sqlstate == "42501"
    app = db.conn("fb_app")
    app.execute("SET ROLE authenticated")
    with pytest.raises(psycopg.Error) as e:
        app.execute("SELECT dashboard.enable_audit('public.orders')")
    assert e.value.sqlstate == "42501"
    token = make_viewer(su)
    web2 = db.conn("fb_web")
    as_session(web2, token)
    with pytest.raises(psycopg.Error) as e:
        web2.execute("SELECT dashboard.disable_audit('public.orders')")
    assert e.value.sqlstate == "42501"


# ------------------------------------------------------------- audit_search


def test_audit_search_filters_and_keyset(su, orders):
    append(su, 5, "test.alpha")
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('a', 1, 1)")
    su.execute("UPDATE orders SET qty = 2")
    all_rows = su.execute("SELECT id, action FROM dashboard.audit_search()").fetchall()
    ids = [r[0] for r in all_rows]
    assert ids == sorted(ids, reverse=True) and len(ids) == 8
    assert [r[0] for r in su.execute("SELECT action FROM dashboard.audit_search(action => 'row.*')")] == ["row.update", "row.insert"]
    assert len(su.execute("SELECT 1 FROM dashboard.audit_search(action => 'test.alpha')").fetchall()) == 5
    assert len(su.execute("SELECT 1 FROM dashboard.audit_search(target => 'public.orders')").fetchall()) == 3
    assert len(su.execute("SELECT 1 FROM dashboard.audit_search(target => 'thing:3')").fetchall()) == 1
    assert len(su.execute("SELECT 1 FROM dashboard.audit_search(actor => 'db:test')").fetchall()) == 5
    assert su.execute("SELECT 1 FROM dashboard.audit_search(since => now() + interval '1 day')").fetchall() == []
    assert len(su.execute("SELECT 1 FROM dashboard.audit_search(until => now() + interval '1 day')").fetchall()) == 8
    page1 = [r[0] for r in su.execute("SELECT id FROM dashboard.audit_search(page_size => 3)")]
    page2 = [r[0] for r in su.execute("SELECT id FROM dashboard.audit_search(page_size => 3, after => %s)", (page1[-1],))]
    assert page1 + page2 == ids[:6]
    for arg in ["actor", "action", "target"]:
        assert su.execute(f"SELECT 1 FROM dashboard.audit_search({arg} => %s)", (INJECTION,)).fetchall() == []
    assert su.execute("SELECT 1 FROM dashboard.audit_search(action => '%%')").fetchall() == []
    for bad in [0, 1001, -1]:
        with pytest.raises(psycopg.Error) as e:
            su.execute("SELECT * FROM dashboard.audit_search(page_size => %s)", (bad,))
        assert e.value.sqlstate == "22023"
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log") == 8  # the table survived


# What the target filter has always meant: the entry's target_id, its
# target_type, or 'type:id'. audit_search answers it arm by arm through
# audit_log_target (core/src/audit_search.rs); this is the one condition.
MEANS_TARGET = "(target_id = %(t)s OR target_type = %(t)s OR (target_type || ':' || target_id) = %(t)s)"


def test_audit_search_target_finds_ids_types_and_type_colon_id(su):
    # NULL types and ids, a type with ':' in it, a target that is also a type
    entries = [(None, "a:b"), ("a", "b"), ("a:b", "c"), ("a", "b:c"), ("a", None), ("x", "a"),
               (None, None), ("x", "x"), ("", "b"), ("a", ""), ("thing", "7")]
    for t, i in entries * 3:
        su.execute("INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id) "
                   "VALUES ('db:test', 'test.t', %s, %s)", (t, i))
    for target in ["a", "a:b", "a:b:c", "b:c", "b", "x", "x:a", ":b", "a:", "", "thing:7", "7", "zz", "x:x", "a::b"]:
        expected = [r[0] for r in su.execute(
            f"SELECT id FROM dashboard_auth.audit_log WHERE {MEANS_TARGET} ORDER BY id DESC LIMIT 50", {"t": target})]
        got = [r[0] for r in su.execute("SELECT id FROM dashboard.audit_search(target => %s)", (target,))]
        assert got == expected, target
        # paged, with the other filters, and as small pages
        if expected:
            assert [r[0] for r in su.execute(
                "SELECT id FROM dashboard.audit_search(target => %s, page_size => 2, after => %s)",
                (target, expected[0]))] == expected[1:3], target
            assert [r[0] for r in su.execute(
                "SELECT id FROM dashboard.audit_search(target => %s, actor => 'db:test', action => 'test.*')",
                (target,))] == expected, target
            assert su.execute("SELECT id FROM dashboard.audit_search(target => %s, actor => 'db:other')",
                              (target,)).fetchall() == [], target
    assert verify(su) == (True, None)


def test_audit_search_target_with_more_types_than_the_index_route_takes(su):
    # hand-written entries with many types: the search falls back to the one
    # condition, and finds the same
    su.execute("INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id) "
               "SELECT 'db:test', 'test.t', 'type' || g, mod(g, 7)::text FROM generate_series(1, 100) g")
    for target in ["3", "type5", "type12:5", "type12:4"]:
        expected = [r[0] for r in su.execute(
            f"SELECT id FROM dashboard_auth.audit_log WHERE {MEANS_TARGET} ORDER BY id DESC LIMIT 50", {"t": target})]
        got = [r[0] for r in su.execute("SELECT id FROM dashboard.audit_search(target => %s)", (target,))]
        assert got == expected and (target == "type12:4" or got), target


def test_audit_search_reads_only_what_it_returns_from_a_big_log(db, su):
    """On a log of 200,000 entries, a search for a target, a type or an admin
    reads a few index entries and rows, not the log: counted by the
    statistics of the searching transaction (pg_stat_xact_*), not timed."""
    uid, _ = setup_admin(su)
    su.execute("INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id) "
               "SELECT 'db:app', 'row.update', 'table', 'public.t' || mod(g, 50) FROM generate_series(1, 200000) g")
    su.execute("INSERT INTO dashboard_auth.audit_log (actor, actor_id, action, target_type, target_id) "
               "VALUES ('root@example.com', %s, 'test.rare', 'setting', 'session_timeout')", (uid,))
    su.execute("ANALYZE dashboard_auth.audit_log")
    by_admin = one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE actor_id = %s", (uid,))
    assert 1 < by_admin < 50
    conn = db.conn(autocommit=False)

    def reads(search, params=()):
        n = len(conn.execute(f"SELECT * FROM dashboard.audit_search({search})", params).fetchall())
        seq, tuples, fetched = conn.execute(
            "SELECT seq_scan, seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables "
            "WHERE relid = 'dashboard_auth.audit_log'::regclass").fetchone()
        conn.rollback()
        return n, seq, tuples, fetched

    for search, params, found in [
        ("target => %s", ("4f1b6c2e-0000-4000-8000-000000000000",), 0),  # in no entry
        ("target => %s", ("session_timeout",), 1),
        ("target => %s", ("setting:session_timeout",), 1),
        ("target => %s", ("setting",), 1),
        ("target => %s", ("public.t7",), 50),
        ("target => %s, page_size => 10, action => 'row.update'", ("table:public.t7",), 10),
        ("actor => %s", (str(uid),), by_admin),
        ("actor => %s", (str(uid).upper(),), by_admin),
    ]:
        n, seq, tuples, fetched = reads(search, params)
        assert n == found, (search, params)
        assert seq == 0 and tuples == 0 and fetched <= 200, (search, params, seq, tuples, fetched)


def test_audit_follows_table_changes_in_the_same_session(db, su, orders):
    # the trigger keeps saved plans per table: a change of the table's columns must be seen
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('a', 1, 1)")
    su.execute("ALTER TABLE orders ADD COLUMN extra text DEFAULT 'e'")
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('a', 2, 1)")
    su.execute("ALTER TABLE orders DROP COLUMN note")
    su.execute("UPDATE orders SET extra = 'f' WHERE num = 2")
    other = db.conn()
    other.execute("ALTER TABLE orders ADD COLUMN more int DEFAULT 7")
    su.execute("INSERT INTO orders (region, num, qty) VALUES ('a', 3, 1)")
    ev = row_events(su)
    assert "extra" not in ev[0][1]["rows"][0]["new"]
    assert ev[1][1]["rows"][0]["new"]["extra"] == "e" and "note" in ev[1][1]["rows"][0]["new"]
    assert ev[2][1]["rows"][0]["new"] == {"extra": "f"}
    assert ev[3][1]["rows"][0]["new"]["more"] == 7 and "note" not in ev[3][1]["rows"][0]["new"]
    assert verify(su) == (True, None)


def test_audit_follows_renames_and_key_changes_in_the_same_session(db, su, orders):
    """The trigger keeps what it learnt of a table between statements: a
    rename of the table or of its schema (also by another session) and a new
    primary key must show in the next entry."""
    def last(target):
        return row_events(su, target)[-1][1]

    su.execute("INSERT INTO orders (region, num, qty) VALUES ('a', 1, 1)")
    assert last("public.orders")["table"] == "public.orders"
    su.execute("ALTER TABLE orders RENAME TO orders_v2")
    su.execute("INSERT INTO orders_v2 (region, num, qty) VALUES ('a', 2, 1)")
    assert last("public.orders_v2")["table"] == "public.orders_v2"
    su.execute("CREATE SCHEMA sales")
    su.execute("ALTER TABLE orders_v2 SET SCHEMA sales")
    su.execute("INSERT INTO sales.orders_v2 (region, num, qty) VALUES ('a', 3, 1)")
    other = db.conn()
    other.execute("ALTER SCHEMA sales RENAME TO sales_eu")
    su.execute("INSERT INTO sales_eu.orders_v2 (region, num, qty) VALUES ('a', 4, 1)")
    entry = last("sales_eu.orders_v2")
    assert entry["table"] == "sales_eu.orders_v2" and entry["pk_columns"] == ["region", "num"]
    other.execute("ALTER TABLE sales_eu.orders_v2 DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (num)")
    su.execute("UPDATE sales_eu.orders_v2 SET qty = 9 WHERE num = 4")
    entry = last("sales_eu.orders_v2")
    assert entry["pk_columns"] == ["num"]
    assert entry["rows"] == [{"pk": {"num": 4}, "old": {"qty": 1}, "new": {"qty": 9}}]
    assert [e[1]["table"] for e in row_events(su, "sales.orders_v2")] == ["sales.orders_v2"]
    assert verify(su) == (True, None)


def test_rows_stored_before_a_column_was_added_show_its_default(su, orders):
    """A row stored before ADD COLUMN ... DEFAULT holds fewer attributes than
    the table has columns; the capture reads the added one as its default."""
    su.execute("INSERT INTO orders (region, num, qty, price) VALUES ('a', 1, 1, 2), ('a', 2, 1, 2), ('a', 3, 1, 2)")
    su.execute("ALTER TABLE orders ADD COLUMN tier text DEFAULT 'gold', ADD COLUMN rank int DEFAULT 9, ADD COLUMN plain text")
    su.execute("UPDATE orders SET qty = 5 WHERE num = 1")  # the added columns are unchanged
    su.execute("UPDATE orders SET tier = 'silver', plain = 'p' WHERE num = 2")
    su.execute("DELETE FROM orders WHERE num = 3")
    upd1, upd2, dele = [e[1] for e in row_events(su)[1:]]
    assert upd1["rows"] == [{"pk": {"region": "a", "num": 1}, "old": {"qty": 1, "total": 2}, "new": {"qty": 5, "total": 10}}]
    assert upd2["rows"] == [{"pk": {"region": "a", "num": 2}, "old": {"tier": "gold", "plain": None},
                             "new": {"tier": "silver", "plain": "p"}}]
    assert dele["rows"][0]["old"] == {"region": "a", "num": 3, "qty": 1, "price": 2, "note": None, "total": 2,
                                      "tier": "gold", "rank": 9, "plain": None}
    assert verify(su) == (True, None)


def test_rows_are_captured_from_transition_tables_spilled_to_disk(db, su):
    """With little work_mem the transition tables live in temporary files;
    the capture reads each tuple where the store hands it over."""
    audited_table(su)
    su.execute("INSERT INTO public.ledger SELECT g, 'v' || g FROM generate_series(1, 3000) g")
    temp_files = "SELECT temp_files FROM pg_stat_database WHERE datname = current_database()"
    su.execute("SELECT pg_stat_force_next_flush()")
    before = one(su, temp_files)
    with su.transaction():
        su.execute("SET LOCAL work_mem = '64kB'")
        su.execute("UPDATE public.ledger SET v = v || '!' WHERE id % 2 = 0")
    su.execute("SELECT pg_stat_force_next_flush()")
    su.execute("SELECT pg_stat_clear_snapshot()")
    assert one(su, temp_files) > before  # they did spill
    upd = row_events(su, "public.ledger")[-1][1]
    assert upd["count"] == 1500 and len(upd["rows"]) == 1500
    assert {r["pk"]["id"]: (r["old"]["v"], r["new"]["v"]) for r in upd["rows"]} == {
        i: (f"v{i}", f"v{i}!") for i in range(2, 3001, 2)}
    assert verify(su) == (True, None)


def test_an_update_leaving_a_toasted_value_alone_does_not_fetch_it(db, su):
    """The row image keeps the key and the changed columns: a TOASTed value
    the UPDATE did not change is neither compared expanded nor read."""
    su.execute("CREATE TABLE public.docs (id int PRIMARY KEY, n int, body text)")
    su.execute("ALTER TABLE public.docs ALTER COLUMN body SET STORAGE EXTERNAL")
    su.execute("SELECT dashboard.enable_audit('public.docs')")
    su.execute("INSERT INTO public.docs SELECT g, 0, repeat('x', 100000) FROM generate_series(1, 3) g")
    toast_reads = ("SELECT coalesce(toast_blks_read, 0) + coalesce(toast_blks_hit, 0) FROM pg_statio_user_tables "
                   "WHERE relid = 'public.docs'::regclass")

    def reads():
        su.execute("SELECT pg_stat_force_next_flush()")
        su.execute("SELECT pg_stat_clear_snapshot()")
        return one(su, toast_reads)

    before = reads()
    su.execute("UPDATE public.docs SET n = n + 1")
    assert reads() == before
    upd = row_events(su, "public.docs")[-1][1]
    assert upd["rows"][0]["old"] == {"n": 0} and upd["rows"][0]["new"] == {"n": 1}
    su.execute("UPDATE public.docs SET body = body || '!' WHERE id = 1")  # changed: fetched and kept
    assert reads() > before
    assert len(row_events(su, "public.docs")[-1][1]["rows"][0]["new"]["body"]) == 100001
    assert verify(su) == (True, None)


def test_large_statement_is_capped_but_counted(su, orders):
    su.execute("INSERT INTO orders (region, num, qty) SELECT 'r', g, 1 FROM generate_series(1, 10001) g")
    su.execute("DELETE FROM orders WHERE num <= 3")
    ins, dele = [e[1] for e in row_events(su)]
    assert ins["count"] == 10001 and ins["truncated"] is True and len(ins["rows"]) == 10000
    assert dele["count"] == 3 and "truncated" not in dele
    assert sorted(r["pk"]["num"] for r in dele["rows"]) == [1, 2, 3]
    assert verify(su) == (True, None)


# ------------------------------------------- commit-time append (issue 6)

def audited_table(su, name="public.ledger"):
    su.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    su.execute("SELECT dashboard.enable_audit(%s)", (name,))
    return name


def test_open_transaction_does_not_hold_up_other_audited_writers(db, su):
    """The chain lock is taken at commit, for the append only: a transaction
    left open after an audited change must not block anyone's audit."""
    setup_admin(su)
    audited_table(su)
    a = db.conn(autocommit=False)
    a.execute("INSERT INTO public.ledger VALUES (1, 'a')")  # audited, not committed
    b = db.conn()
    b.execute("SET statement_timeout = '5s'")
    # an audited write and a login (with its audit entry) go through at once
    b.execute("INSERT INTO public.ledger VALUES (2, 'b')")
    assert b.execute("SELECT status FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)).fetchone() == ("ok",)
    # entries become visible at commit, in commit order
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE target_id = 'public.ledger' AND action = 'row.insert'") == 1
    a.commit()
    ids = su.execute("SELECT id, dashboard_auth.audit_details(id)->'rows'->0->'new'->>'v' FROM dashboard_auth.audit_log "
                     "WHERE target_id = 'public.ledger' AND action = 'row.insert' ORDER BY id").fetchall()
    assert [v for _, v in ids] == ["b", "a"]
    assert verify(su) == (True, None)


def test_repeatable_read_writers_append_without_serialization_failures(db, su):
    audited_table(su)
    conns = [db.conn(autocommit=False) for _ in range(4)]
    for c in conns:
        c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        c.execute("SELECT count(*) FROM public.ledger")  # take the snapshot now
    for i, c in enumerate(conns):
        c.execute("INSERT INTO public.ledger VALUES (%s, 'rr')", (i,))
    for c in conns:
        c.commit()  # each sees an older head in its snapshot; the append must not care
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE target_id = 'public.ledger' AND action = 'row.insert'") == 4
    assert verify(su) == (True, None)


def test_savepoints_and_aborts_keep_exactly_the_committed_entries(db, su):
    audited_table(su)
    c = db.conn(autocommit=False)
    c.execute("INSERT INTO public.ledger VALUES (1, 'kept')")
    c.execute("SAVEPOINT s1")
    c.execute("INSERT INTO public.ledger VALUES (2, 'rolled back')")
    c.execute("SAVEPOINT s2")
    c.execute("INSERT INTO public.ledger VALUES (3, 'rolled back too')")
    c.execute("ROLLBACK TO SAVEPOINT s1")
    c.execute("SAVEPOINT s3")
    c.execute("INSERT INTO public.ledger VALUES (4, 'released')")
    c.execute("RELEASE SAVEPOINT s3")
    c.commit()
    c.execute("INSERT INTO public.ledger VALUES (5, 'aborted')")
    c.rollback()
    vals = [r[0] for r in su.execute(
        "SELECT dashboard_auth.audit_details(id)->'rows'->0->'new'->>'v' FROM dashboard_auth.audit_log "
        "WHERE target_id = 'public.ledger' AND action = 'row.insert' ORDER BY id")]
    assert vals == ["kept", "released"]
    assert verify(su) == (True, None)


def test_a_failing_append_fails_the_commit_and_keeps_nothing(db, su):
    audited_table(su)
    # Make the append itself fail: the chain head is damaged by a superuser.
    su.execute("INSERT INTO public.ledger VALUES (0, 'first')")
    su.execute("ALTER TABLE dashboard_auth.audit_chain_head ADD CONSTRAINT no_more CHECK (last_id < 0) NOT VALID")
    c = db.conn(autocommit=False)
    c.execute("INSERT INTO public.ledger VALUES (1, 'x')")
    with pytest.raises(psycopg.errors.CheckViolation):
        c.commit()
    su.execute("ALTER TABLE dashboard_auth.audit_chain_head DROP CONSTRAINT no_more")
    assert one(su, "SELECT count(*) FROM public.ledger") == 1  # the change went with its audit entry
    assert verify(su) == (True, None)


# (f8s and f8l: a float8 array small enough for a 1-byte varlena header,
# stored unaligned, then one that needs the 8-byte alignment after it)
ALL_TYPES = """
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE public.pair AS (a int, b text);
CREATE TABLE public.kinds (
    id bigint PRIMARY KEY, i2 smallint, i4 int, f4 real, f8 double precision, num numeric(12,3),
    nan numeric, t text, vc varchar(10), ch char(3), b bytea, ok boolean, d date, ts timestamp,
    tstz timestamptz, iv interval, u uuid, j json, jb jsonb, arr int[], tarr text[], m public.mood,
    p public.pair, ip inet, nm name, big text, nothing text, money_ money, pt point, rng int4range,
    f8s double precision[], f8l double precision[], flag "char")
"""
ALL_VALUES = """
INSERT INTO public.kinds VALUES (
    1, -3, -70000, 1.5, -2.25e-5, 1234.5678, 'NaN', 'quote '' "dq" \\ é 😀', 'short', 'ab', '\\x00ff10',
    true, '2024-02-29', '2024-01-01 12:34:56.789', '2024-01-01 12:34:56.789+05:30', '1 year 2 mons 3 days 04:05:06',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"z": 1, "a": [1, 2.50]}', '{"z": 1, "a": [1, 2.50]}',
    '{1,NULL,-3}', '{"a b", "c,d"}', 'happy', ROW(7, 'x y'), '10.1.2.3/8', 'nm', repeat('long text ', 20000),
    NULL, 12.34, '(1,2)', '[1,10)',
    '{1.5,-2}', array_fill(0.25::float8, ARRAY[40]), 'z')
"""


def test_row_images_show_every_type_as_to_jsonb_does(db, su):
    for stmt in ALL_TYPES.split(";"):
        su.execute(stmt)
    su.execute("SELECT dashboard.enable_audit('public.kinds')")
    su.execute(ALL_VALUES)
    su.execute("UPDATE public.kinds SET big = big || '!', f8 = 3 WHERE id = 1")
    su.execute("UPDATE public.kinds SET t = t WHERE id = 1")  # nothing changes
    su.execute("DELETE FROM public.kinds")
    ins, upd, same, dele = [r[0] for r in su.execute(
        "SELECT dashboard_auth.audit_details(id) FROM dashboard_auth.audit_log WHERE target_id = 'public.kinds' "
        "AND action LIKE 'row.%' ORDER BY id")]
    su.execute(ALL_VALUES)
    expected = one(su, "SELECT to_jsonb(k) FROM public.kinds k")
    assert ins["rows"] == [{"pk": {"id": 1}, "new": expected}]
    assert dele["rows"][0]["old"]["big"] == expected["big"] + "!"  # the TOASTed value, detoasted at capture
    assert upd["rows"] == [{"pk": {"id": 1}, "old": {"big": expected["big"], "f8": expected["f8"]},
                            "new": {"big": expected["big"] + "!", "f8": 3}}]
    assert same["rows"] == [{"pk": {"id": 1}, "old": {}, "new": {}}]
    assert verify(su) == (True, None)
    # the same answer through audit_search
    found = su.execute("SELECT details FROM dashboard.audit_search(target => 'public.kinds', action => 'row.insert')").fetchone()[0]
    assert found["rows"] == ins["rows"] and found["count"] == 1


def test_row_images_survive_dropped_columns_and_types(db, su):
    su.execute("CREATE TYPE public.color AS ENUM ('red', 'blue')")
    su.execute("CREATE TABLE public.paint (id int PRIMARY KEY, c public.color, gone int, note text)")
    su.execute("SELECT dashboard.enable_audit('public.paint')")
    su.execute("INSERT INTO public.paint VALUES (1, 'red', 5, 'before')")
    su.execute("ALTER TABLE public.paint DROP COLUMN gone")
    su.execute("UPDATE public.paint SET note = 'after'")  # old tuple still holds the dropped column's bytes
    su.execute("ALTER TABLE public.paint DROP COLUMN c")
    su.execute("DROP TYPE public.color")
    first, second = [r[0] for r in su.execute(
        "SELECT dashboard_auth.audit_details(id) FROM dashboard_auth.audit_log WHERE target_id = 'public.paint' "
        "AND action LIKE 'row.%' ORDER BY id")]
    assert first["rows"][0]["new"] == {"id": 1, "c": "[undecodable]", "gone": 5, "note": "before"}
    assert second["rows"] == [{"pk": {"id": 1}, "old": {"note": "before"}, "new": {"note": "after"}}]


def test_damaged_row_image_is_reported_not_decoded(db, su):
    audited_table(su)
    su.execute("INSERT INTO public.ledger VALUES (1, 'x')")
    id_ = one(su, "SELECT max(id) FROM dashboard_auth.audit_log WHERE action = 'row.insert'")
    su.execute("ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only")
    su.execute("UPDATE dashboard_auth.audit_log SET row_data = overlay(row_data placing '\\xffffffff'::bytea from 40) WHERE id = %s", (id_,))
    su.execute("ALTER TABLE dashboard_auth.audit_log ENABLE TRIGGER audit_log_append_only")
    d = one(su, "SELECT dashboard_auth.audit_details(%s)", (id_,))
    assert d["rows"] is None and "hash check" in d["rows_error"]
    assert verify(su) == (False, id_)


def test_huge_transaction_spills_and_stays_correct(db, su):
    """Past 16 MB of queued entries the queue spills to a temporary file (bounded memory)."""
    audited_table(su)
    c = db.conn(autocommit=False)
    for i in range(20):  # ~1 MB of row image each
        c.execute("INSERT INTO public.ledger SELECT g, repeat('x', 1000) FROM generate_series(%s::int, %s::int) g",
                  (i * 1000, i * 1000 + 999))
    c.commit()
    counts = [r[0] for r in su.execute(
        "SELECT (details->>'count')::int FROM dashboard_auth.audit_log WHERE target_id = 'public.ledger' "
        "AND action = 'row.insert' ORDER BY id")]
    assert counts == [1000] * 20
    assert verify(su) == (True, None)


def test_spill_inside_a_savepoint_rolls_back_with_it(db, su):
    """Entries queued before a savepoint must not be appended inside it (a
    rollback to the savepoint would take them along)."""
    audited_table(su)
    c = db.conn(autocommit=False)
    c.execute("INSERT INTO public.ledger VALUES (-1, 'before the savepoint')")
    c.execute("SAVEPOINT s")
    for i in range(20):  # past the spill threshold, inside the savepoint
        c.execute("INSERT INTO public.ledger SELECT g, repeat('x', 1000) FROM generate_series(%s::int, %s::int) g",
                  (i * 1000, i * 1000 + 999))
    c.execute("ROLLBACK TO SAVEPOINT s")
    c.commit()
    vals = [r[0] for r in su.execute(
        "SELECT dashboard_auth.audit_details(id)->'rows'->0->'new'->>'v' FROM dashboard_auth.audit_log "
        "WHERE target_id = 'public.ledger' AND action = 'row.insert' ORDER BY id")]
    assert vals == ["before the savepoint"]
    assert verify(su) == (True, None)


# ------------------------------------------------- the commit-time append's writes


def test_append_keeps_every_index_exact_including_ones_a_dba_adds(db, su):
    """The append writes audit_log and the chain head directly (no SQL
    statement): every index must still get exactly its entries — ours, and an
    expression and a partial index a DBA adds — as amcheck confirms against
    the heap."""
    su.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    su.execute("CREATE INDEX dba_lower_actor ON dashboard_auth.audit_log (lower(actor))")
    su.execute("CREATE INDEX dba_failures ON dashboard_auth.audit_log (occurred_at) WHERE NOT success")
    setup_admin(su)
    su.execute("SELECT * FROM dashboard_auth.login('root@example.com', 'wrong password')")
    su.execute("SELECT * FROM dashboard_auth.login('nobody@example.com', 'wrong password')")
    append(su, 50)
    audited_table(su)
    su.execute("INSERT INTO public.ledger SELECT g, repeat('v', g) FROM generate_series(1, 300) g")
    su.execute("UPDATE public.ledger SET v = v || '!' WHERE id % 3 = 0")
    c = db.conn(autocommit=False)  # several entries in one append
    for i in range(5):
        c.execute("DELETE FROM public.ledger WHERE id = %s", (i + 1,))
    c.commit()
    total = one(su, "SELECT count(*) FROM dashboard_auth.audit_log")
    indexes = [r[0] for r in su.execute(
        "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND indrelid IN "
        "('dashboard_auth.audit_log'::regclass, 'dashboard_auth.audit_chain_head'::regclass)")]
    assert len(indexes) == 7
    for index in indexes:  # raises if an index lacks a heap row's entry
        su.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
    su.execute("SET enable_seqscan = off")
    su.execute("SET enable_bitmapscan = off")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE lower(actor) = 'db:test'") == 50
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE NOT success AND occurred_at > '-infinity'") == 2
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE id > 0") == total
    assert one(su, "SELECT last_id FROM dashboard_auth.audit_chain_head WHERE singleton") == total
    assert verify(su) == (True, None)


def test_row_change_entries_stay_in_their_row(db, su):
    """Beside a row image of a few kB, the toaster used to move the two 32-byte
    hashes to the TOAST table: two more heap rows and index entries for every
    row-change entry. Every column now stays in the row."""
    audited_table(su)
    for i in range(10):
        su.execute("INSERT INTO public.ledger SELECT g, md5(g::text) FROM generate_series(%s::int, %s::int) g",
                   (i * 100, i * 100 + 99))
        su.execute("UPDATE public.ledger SET v = md5(v) WHERE id BETWEEN %s::int AND %s::int", (i * 100, i * 100 + 99))
    assert one(su, "SELECT min(pg_column_size(row_data)) FROM dashboard_auth.audit_log WHERE action LIKE 'row.%%'") > 2000
    assert one(su, "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'dashboard_auth.audit_log'::regclass") == 0
    assert verify(su) == (True, None)


def test_chain_head_stays_on_one_page(db, su):
    """Every append updates the head's one row: with fillfactor 10 each
    update is a HOT update pruned in place, so the table does not grow."""
    audited_table(su)
    for i in range(400):
        su.execute("INSERT INTO public.ledger VALUES (%s, 'x')", (i,))
    assert one(su, "SELECT pg_relation_size('dashboard_auth.audit_chain_head')") == 8192
    assert one(su, "SELECT last_id FROM dashboard_auth.audit_chain_head") == one(su, "SELECT max(id) FROM dashboard_auth.audit_log")


def test_update_images_keep_the_key_and_changed_columns_only(db, su):
    """An UPDATE's image keeps the key and the changed columns (also changes
    to and from NULL); unchanged columns are neither stored nor shown."""
    su.execute("CREATE TABLE public.wide (id int PRIMARY KEY, a text, b int, c text, big text)")
    su.execute("SELECT dashboard.enable_audit('public.wide')")
    su.execute("INSERT INTO public.wide SELECT g, 'a', g, NULL, repeat(md5(g::text), 50) FROM generate_series(1, 50) g")
    su.execute("UPDATE public.wide SET b = NULL, c = 'now set' WHERE id <= 2")
    su.execute("UPDATE public.wide SET c = NULL, a = a WHERE id = 1")
    su.execute("UPDATE public.wide SET a = 'z'")
    ins, upd1, upd2, upd3 = su.execute(
        "SELECT dashboard_auth.audit_details(id), octet_length(row_data) FROM dashboard_auth.audit_log "
        "WHERE target_id = 'public.wide' AND action LIKE 'row.%' ORDER BY id").fetchall()
    assert upd1[0]["rows"] == [
        {"pk": {"id": 1}, "old": {"b": 1, "c": None}, "new": {"b": None, "c": "now set"}},
        {"pk": {"id": 2}, "old": {"b": 2, "c": None}, "new": {"b": None, "c": "now set"}},
    ]
    assert upd2[0]["rows"] == [{"pk": {"id": 1}, "old": {"c": "now set"}, "new": {"c": None}}]
    by_id = {r["pk"]["id"]: r for r in upd3[0]["rows"]}
    assert len(by_id) == 50 and by_id[50] == {"pk": {"id": 50}, "old": {"a": "a"}, "new": {"a": "z"}}
    # the 1.6 kB 'big' column of every row is not in the UPDATE's image
    assert upd3[1] < ins[1] / 10
    assert verify(su) == (True, None)


def test_details_written_as_jsonb_out_writes_them_verify(db, su):
    """The append takes an entry's details text as the extension wrote it
    (jsonb_out's form, made in Rust) instead of asking jsonb_out: names with
    quotes, backslashes, control characters and non-ASCII letters in them
    must still give entries that verify, with the details the table keeps."""
    name = 'public."we""ird\\ \n\t\x01 é"'
    su.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    su.execute("SELECT dashboard.enable_audit(%s::regclass)", (name,))
    su.execute(f"INSERT INTO {name} VALUES (1, 'x')")
    details = one(su, "SELECT details FROM dashboard_auth.audit_log WHERE action = 'row.insert' ORDER BY id DESC LIMIT 1")
    assert details["table"] == 'public.we"ird\\ \n\t\x01 é'
    assert verify(su) == (True, None)


# The chain lock: an exclusive lock on the head table as an object (not a
# strong lock on the table, which would visit every backend's fast-path slots).
CHAIN_LOCKS = ("SELECT count(*) FROM pg_locks WHERE locktype = 'object' AND classid = 'pg_class'::regclass "
               "AND objid = 'dashboard_auth.audit_chain_head'::regclass AND mode = 'ExclusiveLock'")


def hold_appends_of(su, action):
    """A CHECK constraint a DBA adds to audit_log, whose function waits for
    advisory lock 4242 while it checks an entry of `action`: an audited commit
    appending such an entry stays in its append, holding the chain lock, for as
    long as the caller holds that advisory lock. (Purges took the chain lock
    until issue 35 and served the tests below as a holder; no SQL statement
    takes it before its commit now.)"""
    su.execute("""
        CREATE FUNCTION public.hold_append(action text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            IF action = %s THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
            RETURN true;
        END $$""".replace("%s", "'" + action.replace("'", "''") + "'"))
    su.execute("ALTER TABLE dashboard_auth.audit_log ADD CONSTRAINT held CHECK (public.hold_append(action)) NOT VALID")


def wait_for(su, sql, tries=200):
    got = 0
    for _ in range(tries):
        got = one(su, sql)
        if got:
            break
        time.sleep(0.05)
    return got


def test_appends_queue_for_the_chain_lock(db, su):
    """While one transaction holds the chain lock (an audited commit in its
    append), another audited commit waits for it, on that lock and nothing
    else, and goes through with its entry after it, in a chain that still
    verifies."""
    audited_table(su)
    hold_appends_of(su, "test.hold")
    su.execute("SELECT pg_advisory_lock(4242)")
    holder = db.conn()
    holder_pid = one(holder, "SELECT pg_backend_pid()")
    held = []
    h = threading.Thread(target=lambda: held.append(append(holder, 1, "test.hold")))
    h.start()
    # the holder is in its append: the chain lock granted, waiting for 4242
    assert wait_for(su, CHAIN_LOCKS + f" AND granted AND pid = {holder_pid}") == 1
    assert wait_for(su, f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = {holder_pid}") == 1
    writer = db.conn()
    writer_pid = one(writer, "SELECT pg_backend_pid()")
    done = []
    t = threading.Thread(target=lambda: done.append(writer.execute("INSERT INTO public.ledger VALUES (1, 'queued')")))
    t.start()
    waiting = wait_for(su, CHAIN_LOCKS + f" AND NOT granted AND pid = {writer_pid}", tries=100)
    assert waiting == 1 and not done  # waiting at its commit, for the chain lock
    # ... and for nothing else
    assert one(su, f"SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = {writer_pid}") == 1
    su.execute("SELECT pg_advisory_unlock(4242)")
    h.join(10)
    t.join(10)
    assert held and done
    held_id, ledger_id = (one(su, f"SELECT id FROM dashboard_auth.audit_log WHERE {w}") for w in
                          ("action = 'test.hold'", "target_id = 'public.ledger' AND action = 'row.insert'"))
    assert ledger_id > held_id  # after the holder's entry
    assert verify(su) == (True, None)


def test_chain_lock_is_let_go_at_commit_and_only_if_held(db, su):
    """The chain lock is released as soon as the commit is visible; a purge
    takes none (issue 35), also in a savepoint that rolled back, and nothing
    is released that was not taken (no lock-manager warning)."""
    audited_table(su)
    c = db.conn(autocommit=False)
    c_pid = one(c, "SELECT pg_backend_pid()")
    notices = []
    c.add_notice_handler(lambda d: notices.append(d.message_primary))
    c.execute("SAVEPOINT s")
    c.execute("SELECT dashboard_auth.purge_audit('1000 years')")
    assert one(su, CHAIN_LOCKS + f" AND pid = {c_pid}") == 0
    c.execute("ROLLBACK TO SAVEPOINT s")
    c.execute("INSERT INTO public.ledger VALUES (1, 'after the savepoint')")
    c.commit()
    c.execute("INSERT INTO public.ledger VALUES (2, 'next transaction')")
    c.execute("SELECT dashboard_auth.purge_audit('1000 years')")
    c.commit()
    assert notices == []
    # nobody holds the chain lock between transactions
    assert one(su, CHAIN_LOCKS + " AND pid <> pg_backend_pid()") == 0
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE target_id = 'public.ledger' AND action LIKE 'row.%%'") == 2
    assert verify(su) == (True, None)


def test_columns_a_dba_adds_to_the_log_get_their_defaults(db, su):
    """The append is not an SQL INSERT, but it fills what one would: defaults
    (also NOT NULL ones and identities) and generated columns a DBA adds to
    audit_log; a CHECK constraint added there still refuses (and fails the
    commit)."""
    su.execute("ALTER TABLE dashboard_auth.audit_log ADD COLUMN site text NOT NULL DEFAULT 'eu-1'")
    su.execute("ALTER TABLE dashboard_auth.audit_log ADD COLUMN seq bigint GENERATED BY DEFAULT AS IDENTITY")
    su.execute("ALTER TABLE dashboard_auth.audit_log ADD COLUMN actor_upper text GENERATED ALWAYS AS (upper(actor)) STORED")
    audited_table(su)
    su.execute("INSERT INTO public.ledger VALUES (1, 'x')")
    append(su, 2)
    rows = su.execute("SELECT site, seq, actor_upper, actor FROM dashboard_auth.audit_log ORDER BY id DESC LIMIT 3").fetchall()
    assert [r[0] for r in rows] == ["eu-1"] * 3
    assert all(r[1] is not None for r in rows) and len({r[1] for r in rows}) == 3
    assert all(r[2] == r[3].upper() for r in rows)
    assert verify(su) == (True, None)
    su.execute("ALTER TABLE dashboard_auth.audit_log ADD CONSTRAINT no_ledger CHECK (target_id <> 'public.ledger') NOT VALID")
    c = db.conn(autocommit=False)
    c.execute("INSERT INTO public.ledger VALUES (2, 'y')")
    with pytest.raises(psycopg.errors.CheckViolation):
        c.commit()
    assert one(su, "SELECT count(*) FROM public.ledger") == 1
