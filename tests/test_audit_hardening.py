"""Audit hardening (issue 17, items 4, 5, 6, 9, 11): no writer stalls the
chain, auditing cannot be switched off silently, the reader never fails,
secrets stay out of every table's trail, a cut-off tail is detectable."""
import os
import threading
import time

import psycopg
import pytest

from conftest import PASSWORD, as_session, one, setup_admin


def verify(conn, *args):
    if args:
        return conn.execute(
            "SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain(%s, %s)", args).fetchone()
    return conn.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone()


def ledger(su, name="public.ledger", **kw):
    su.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    su.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO fb_plain")
    su.execute("SELECT dashboard.enable_audit(%s)", (name,))
    return name


def fill(conn, batches, start=0, rows=1000):
    """~1 MB of row image per batch (row images are kept uncompressed while queued)."""
    for i in range(start, start + batches):
        conn.execute("INSERT INTO public.ledger SELECT g, repeat(md5(g::text), 32) FROM generate_series(%s::int, %s::int) g",
                     (i * rows, i * rows + rows - 1))


def row_counts(su):
    return [r[0] for r in su.execute(
        "SELECT (details->>'count')::int FROM dashboard_auth.audit_log WHERE target_id = 'public.ledger' "
        "AND action = 'row.insert' ORDER BY id")]


# ----------------------------------------------------- item 4: no writer stalls


def test_big_open_writer_does_not_stall_logins_or_audited_commits(db, su):
    """A non-admin writer queues > 16 MB of row images in one transaction and
    leaves it open for 30 s: logins (audited at commit) and other audited
    commits answer in under a second all along; at its commit every entry
    lands, in order, and the chain verifies."""
    setup_admin(su)
    ledger(su)
    su.execute("CREATE TABLE public.other (id int PRIMARY KEY)")
    su.execute("SELECT dashboard.enable_audit('public.other')")
    w = db.conn("fb_plain", autocommit=False)
    fill(w, 24)  # ~24 MB queued
    other = db.conn()
    # (a login queued behind the writer's chain lock fails here instead of
    # waiting for a commit that this very test would make only afterwards)
    other.execute("SET lock_timeout = '5s'")
    slowest = 0.0
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 30:
        t = time.monotonic()
        status, _, _ = other.execute("SELECT * FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)).fetchone()
        other.execute("INSERT INTO public.other VALUES (%s)", (n,))
        slowest = max(slowest, time.monotonic() - t)
        assert status == "ok"
        n += 1
        time.sleep(2)
    assert slowest < 1.0, f"a login took {slowest:.1f} s while the big writer was open"
    w.execute("INSERT INTO public.ledger VALUES (-1, 'last')")
    w.commit()
    assert row_counts(su) == [1000] * 24 + [1]
    # one transaction's entries are contiguous in the chain
    ids = [r[0] for r in su.execute(
        "SELECT id FROM dashboard_auth.audit_log WHERE target_id = 'public.ledger' AND action = 'row.insert' ORDER BY id")]
    assert ids == list(range(ids[0], ids[0] + 25))
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'login.success'") >= n
    assert verify(su) == (True, None)
    d = one(su, "SELECT dashboard_auth.audit_details(%s)", (ids[-1],))
    assert d["rows"][0]["new"] == {"id": -1, "v": "last"}


def test_big_transaction_rolled_back_leaves_nothing(db, su):
    ledger(su)
    before = one(su, "SELECT count(*) FROM dashboard_auth.audit_log")
    w = db.conn("fb_plain", autocommit=False)
    fill(w, 20)
    w.rollback()
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log") == before
    # the same backend's next transaction starts clean
    w.execute("INSERT INTO public.ledger VALUES (1, 'after')")
    w.commit()
    assert row_counts(su) == [1]
    assert verify(su) == (True, None)


def test_spilled_entries_of_a_rolled_back_savepoint_are_dropped(db, su):
    """Entries spilled to the transaction's file, then a savepoint whose
    entries spill too and roll back: only the savepoint's are gone."""
    ledger(su)
    w = db.conn("fb_plain", autocommit=False)
    fill(w, 18)  # spilled
    w.execute("SAVEPOINT a")
    fill(w, 18, start=100, rows=500)  # spilled inside the savepoint
    w.execute("ROLLBACK TO SAVEPOINT a")
    w.execute("SAVEPOINT b")
    w.execute("INSERT INTO public.ledger VALUES (-2, 'kept')")
    w.execute("RELEASE SAVEPOINT b")
    fill(w, 17, start=200, rows=1000)
    w.commit()
    assert row_counts(su) == [1000] * 18 + [1] + [1000] * 17
    assert verify(su) == (True, None)


def test_a_transaction_spilling_many_chunks_appends_them_all(su):
    """A transaction queuing several spill chunks (16 MB each) of small
    entries: every chunk is appended at commit and the chain holds. (The
    third chunk once crashed the server: a tuple read back from the spill
    file lived in a context reset between chunks.)"""
    before = one(su, "SELECT count(*) FROM dashboard_auth.audit_log")
    n = 500_000  # ~100 bytes an entry: four chunks (the crash came from 400,000)
    su.execute("BEGIN")
    su.execute("INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id) "
               "SELECT 'db:bench', 'row.update', 'table', 'public.t' || mod(g, 50) FROM generate_series(1, %s) g", (n,))
    su.execute("COMMIT")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log") == before + n
    assert one(su, "SELECT max(id) - min(id) + 1 FROM dashboard_auth.audit_log WHERE actor = 'db:bench'") == n
    assert verify(su) == (True, None)


# ------------------------------------ item 5: auditing cannot be switched off silently


def entries(su, table, action_like="%"):
    return su.execute(
        "SELECT action, details FROM dashboard_auth.audit_log WHERE target_id = %s AND action LIKE %s ORDER BY id",
        (table, action_like)).fetchall()


@pytest.fixture
def owned(db, su):
    """public.owned, owned by fb_plain (a plain login), audited by the superuser."""
    su.execute("GRANT CREATE ON SCHEMA public TO fb_plain")
    plain = db.conn("fb_plain")
    plain.execute("CREATE TABLE public.owned (id int PRIMARY KEY, v text)")
    plain.execute("INSERT INTO public.owned SELECT g, 'x' FROM generate_series(1, 7) g")
    su.execute("SELECT dashboard.enable_audit('public.owned')")
    return plain


def audited(su):
    return dict(su.execute("SELECT * FROM dashboard.audited_tables()").fetchall())


def test_truncate_by_the_owner_is_recorded_with_its_row_count(su, owned):
    owned.execute("TRUNCATE public.owned")
    (action, d), = entries(su, "public.owned", "row.%")
    assert action == "row.truncate" and d["count"] == 7 and d["op"] == "TRUNCATE"
    assert d["current_user"] == "fb_plain"
    assert one(su, "SELECT db_user FROM dashboard_auth.audit_log WHERE action = 'row.truncate'") == "fb_plain"
    # rolled back: no entry
    owned.execute("INSERT INTO public.owned VALUES (1, 'y')")
    owned.execute("BEGIN")
    owned.execute("TRUNCATE public.owned")
    owned.execute("ROLLBACK")
    assert len(entries(su, "public.owned", "row.truncate")) == 1
    assert verify(su) == (True, None)


def test_row_security_does_not_hide_rows_from_the_truncate_count(su, owned):
    owned.execute("ALTER TABLE public.owned ENABLE ROW LEVEL SECURITY")
    owned.execute("ALTER TABLE public.owned FORCE ROW LEVEL SECURITY")
    owned.execute("CREATE POLICY none ON public.owned USING (false)")
    owned.execute("TRUNCATE public.owned")
    (_, d), = entries(su, "public.owned", "row.truncate")
    assert d["count"] == 7


@pytest.mark.parametrize("ddl, change, trigger", [
    ("ALTER TABLE public.owned DISABLE TRIGGER fluxbase_audit_upd", "disabled", "fluxbase_audit_upd"),
    ("ALTER TABLE public.owned DISABLE TRIGGER ALL", "disabled", None),
    ("ALTER TABLE public.owned DISABLE TRIGGER USER", "disabled", None),
    ("DROP TRIGGER fluxbase_audit_del ON public.owned", "dropped", "fluxbase_audit_del"),
    ("CREATE OR REPLACE TRIGGER fluxbase_audit_ins AFTER INSERT ON public.owned "
     "FOR EACH STATEMENT EXECUTE FUNCTION public.noop()", "replaced", "fluxbase_audit_ins"),
])
def test_switching_the_audit_triggers_off_is_recorded_and_shown(su, owned, ddl, change, trigger):
    owned.execute("CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$")
    assert audited(su)["public.owned"] == ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]
    owned.execute(ddl)
    found = entries(su, "public.owned", "audit.bypass")
    assert found, "nothing recorded"
    assert all(d["change"] == change for _, d in found)
    assert one(su, "SELECT array_agg(DISTINCT db_user) FROM dashboard_auth.audit_log WHERE action = 'audit.bypass'") == ["fb_plain"]
    triggers = {d["trigger"] for _, d in found}
    if trigger:
        assert triggers == {trigger}
        gone = {"fluxbase_audit_upd": "UPDATE", "fluxbase_audit_del": "DELETE", "fluxbase_audit_ins": "INSERT"}[trigger]
        assert gone not in audited(su)["public.owned"]
    else:
        assert triggers == {"fluxbase_audit_ins", "fluxbase_audit_upd", "fluxbase_audit_del", "fluxbase_audit_trn"}
        assert "public.owned" not in audited(su)
    assert one(su, "SELECT bool_and(NOT success) FROM dashboard_auth.audit_log WHERE action = 'audit.bypass'")
    # until enable_audit puts the triggers back
    su.execute("SELECT dashboard.enable_audit('public.owned')")
    assert audited(su)["public.owned"] == ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]
    owned.execute("DELETE FROM public.owned WHERE id = 1")
    assert entries(su, "public.owned", "row.delete")
    assert verify(su) == (True, None)


def test_enable_and_disable_audit_themselves_record_no_bypass(su, owned):
    su.execute("SELECT dashboard.enable_audit('public.owned')")
    su.execute("SELECT dashboard.disable_audit('public.owned')")
    assert entries(su, "public.owned", "audit.bypass") == []
    # unrelated DDL on an audited table records nothing either
    su.execute("SELECT dashboard.enable_audit('public.owned')")
    owned.execute("ALTER TABLE public.owned ADD COLUMN extra int")
    owned.execute("CREATE TABLE public.unrelated (id int)")
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'audit.bypass'") == 0


def test_partitioned_table_audits_every_partition_also_later_ones(su):
    su.execute("CREATE TABLE public.events (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region)")
    su.execute("CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu')")
    su.execute("CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us') PARTITION BY RANGE (id)")
    su.execute("CREATE TABLE public.events_us_low PARTITION OF public.events_us FOR VALUES FROM (0) TO (100)")
    su.execute("SELECT dashboard.enable_audit('public.events', redact => '{v}')")
    # created and attached later
    su.execute("CREATE TABLE public.events_asia PARTITION OF public.events FOR VALUES IN ('asia')")
    su.execute("CREATE TABLE public.events_af (LIKE public.events)")
    su.execute("ALTER TABLE public.events ATTACH PARTITION public.events_af FOR VALUES IN ('af')")
    tables = audited(su)
    for t in ["public.events", "public.events_eu", "public.events_us", "public.events_us_low",
              "public.events_asia", "public.events_af"]:
        assert tables.get(t) == ["INSERT", "UPDATE", "DELETE", "TRUNCATE"], t
    # writes straight to a partition are audited, redaction included
    su.execute("INSERT INTO public.events_eu VALUES (1, 'eu', 'secret-eu')")
    su.execute("INSERT INTO public.events_af VALUES (2, 'af', 'secret-af')")
    su.execute("INSERT INTO public.events_us_low VALUES (3, 'us', 'secret-us')")
    # through the parent: one entry, on the parent
    su.execute("INSERT INTO public.events VALUES (4, 'asia', 'secret-asia')")
    rows = su.execute(
        "SELECT target_id, dashboard_auth.audit_details(id)->'rows'->0->'new' FROM dashboard_auth.audit_log "
        "WHERE action = 'row.insert' ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["public.events_eu", "public.events_af", "public.events_us_low", "public.events"]
    assert all(r[1]["v"] == "[redacted]" for r in rows)
    assert "secret" not in str(su.execute("SELECT array_agg(row_data) FROM dashboard_auth.audit_log").fetchone()[0])
    # TRUNCATE of the parent: each leaf records what it lost
    su.execute("TRUNCATE public.events")
    counts = dict(su.execute(
        "SELECT target_id, (details->>'count')::int FROM dashboard_auth.audit_log WHERE action = 'row.truncate'").fetchall())
    assert counts == {"public.events_eu": 1, "public.events_af": 1, "public.events_us_low": 1, "public.events_asia": 1}
    # disable_audit takes it off every partition
    su.execute("SELECT dashboard.disable_audit('public.events')")
    assert audited(su) == {}
    assert verify(su) == (True, None)


# ------------------------------------------- item 9: secrets stay out of the trail


def test_auth_users_secrets_are_redacted_when_audited(db, su):
    su.execute("SELECT dashboard.enable_audit('auth.users')")
    su.execute("INSERT INTO auth.users (email, encrypted_password, recovery_token_digest, confirmation_token_digest) "
               "VALUES ('a@example.com', 'hash-of-password', decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 32), 'hex'))")
    su.execute("UPDATE auth.users SET encrypted_password = 'other-hash', recovery_token_digest = NULL")
    su.execute("UPDATE auth.users SET email = 'b@example.com'")
    ins, upd, upd2 = [r[0] for r in su.execute(
        "SELECT dashboard_auth.audit_details(id) FROM dashboard_auth.audit_log WHERE target_id = 'auth.users' "
        "AND action LIKE 'row.%' ORDER BY id")]
    new = ins["rows"][0]["new"]
    assert new["encrypted_password"] == "[redacted]" and new["recovery_token_digest"] == "[redacted]"
    assert new["confirmation_token_digest"] == "[redacted]" and new["email"] == "a@example.com"
    # an UPDATE shows that the secret changed, never its value
    assert upd["rows"][0]["new"]["encrypted_password"] == "[redacted]"
    assert "encrypted_password" not in upd2["rows"][0]["new"]
    raw = su.execute("SELECT string_agg(encode(row_data, 'escape'), '') FROM dashboard_auth.audit_log").fetchone()[0]
    assert "hash-of-password" not in raw and "other-hash" not in raw
    assert "\\253\\253\\253\\253" not in raw and "\\315\\315\\315" not in raw


def test_enable_audit_redacts_the_columns_it_is_given(db, su):
    su.execute("CREATE TABLE public.customers (id int PRIMARY KEY, name text, ssn text, card text)")
    su.execute("SELECT dashboard.enable_audit('public.customers', redact => ARRAY['ssn', 'card'])")
    su.execute("INSERT INTO public.customers VALUES (1, 'Ann', '123-45-6789', '4111111111111111')")
    su.execute("UPDATE public.customers SET ssn = '987-65-4321', name = 'Anna'")
    su.execute("UPDATE public.customers SET name = 'Annie'")
    su.execute("DELETE FROM public.customers")
    ins, upd, upd2, dele = [r[0] for r in su.execute(
        "SELECT dashboard_auth.audit_details(id) FROM dashboard_auth.audit_log WHERE target_id = 'public.customers' "
        "AND action LIKE 'row.%' ORDER BY id")]
    assert ins["rows"][0]["new"] == {"id": 1, "name": "Ann", "ssn": "[redacted]", "card": "[redacted]"}
    assert upd["rows"][0]["new"] == {"name": "Anna", "ssn": "[redacted]"}  # changed, value not shown
    assert upd["rows"][0]["old"] == {"name": "Ann", "ssn": "[redacted]"}
    assert upd2["rows"][0]["new"] == {"name": "Annie"}  # not changed: not shown
    assert dele["rows"][0]["old"]["card"] == "[redacted]"
    raw = su.execute("SELECT string_agg(encode(row_data, 'escape'), '') FROM dashboard_auth.audit_log").fetchone()[0]
    assert "6789" not in raw and "4321" not in raw and "4111" not in raw
    d = one(su, "SELECT details FROM dashboard_auth.audit_log WHERE action = 'audit.enable' ORDER BY id DESC LIMIT 1")
    assert d["redact"] == ["ssn", "card"]
    # the one-argument call still works, and the old symbol too (a database not yet updated)
    assert one(su, "SELECT dashboard.enable_audit('public.customers')") is True


@pytest.mark.parametrize("redact, state", [
    ("ARRAY['nope']", "22023"),
    ("ARRAY[NULL]::text[]", "22023"),
    ("ARRAY['x'');DROP TABLE public.customers;--']", "22023"),
])
def test_enable_audit_refuses_bad_redact_lists(db, su, redact, state):
    su.execute("CREATE TABLE public.customers (id int PRIMARY KEY, ssn text)")
    with pytest.raises(psycopg.Error) as e:
        su.execute(f"SELECT dashboard.enable_audit('public.customers', redact => {redact})")
    assert e.value.sqlstate == state
    assert one(su, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.customers'::regclass") == 0


def test_redacted_column_names_with_quotes_work(db, su):
    su.execute('CREATE TABLE public.odd (id int PRIMARY KEY, "it\'s secret" text, "a, b" text)')
    su.execute("SELECT dashboard.enable_audit('public.odd', ARRAY['it''s secret', 'a, b'])")
    su.execute("INSERT INTO public.odd VALUES (1, 'hidden', 'hidden too')")
    d = one(su, "SELECT dashboard_auth.audit_details(max(id)) FROM dashboard_auth.audit_log WHERE action = 'row.insert'")
    assert d["rows"][0]["new"] == {"id": 1, "it's secret": "[redacted]", "a, b": "[redacted]"}


# ---------------------------------------------- item 6: the reader never fails


U = "[undecodable]"


@pytest.mark.parametrize("alter, p, ps", [
    ("ALTER TYPE public.pair ALTER ATTRIBUTE a TYPE text", U, U),
    ("ALTER TYPE public.pair ALTER ATTRIBUTE b TYPE int8", U, U),
    ("ALTER TYPE public.pair ALTER ATTRIBUTE a TYPE int8", U, U),
    # still fits: a dropped attribute keeps its place, an added one reads as NULL
    ("ALTER TYPE public.pair DROP ATTRIBUTE a", {"b": "seven", "n": {"x": 1, "y": 2}}, [{"b": "eight", "n": None}]),
    ("ALTER TYPE public.pair ADD ATTRIBUTE c text",
     {"a": 7, "b": "seven", "n": {"x": 1, "y": 2}, "c": None}, [{"a": 8, "b": "eight", "n": None, "c": None}]),
    # a nested row type changed: only values that hold one are affected
    ("ALTER TYPE public.inner_t ALTER ATTRIBUTE x TYPE text", U, [{"a": 8, "b": "eight", "n": None}]),
])
def test_reader_survives_a_composite_type_changed_under_old_entries(db, su, alter, p, ps):
    """A table owner drops a column of a composite type, then changes the
    type: old entries still read (the value shows as "[undecodable]" when it
    no longer fits, the rest of the entry shows), for everyone."""
    su.execute("GRANT CREATE ON SCHEMA public TO fb_plain")
    plain = db.conn("fb_plain")
    plain.execute("CREATE TYPE public.inner_t AS (x int4, y int8)")
    plain.execute("CREATE TYPE public.pair AS (a int4, b text, n public.inner_t)")
    plain.execute("CREATE TABLE public.shapes (id int PRIMARY KEY, p public.pair, ps public.pair[], note text)")
    su.execute("SELECT dashboard.enable_audit('public.shapes')")
    plain.execute("INSERT INTO public.shapes VALUES (1, ROW(7, 'seven', ROW(1, 2)), ARRAY[ROW(8, 'eight', NULL)::public.pair], 'kept')")
    plain.execute("ALTER TABLE public.shapes DROP COLUMN p, DROP COLUMN ps")
    plain.execute(alter)
    id_ = one(su, "SELECT max(id) FROM dashboard_auth.audit_log WHERE action = 'row.insert'")
    web = db.conn("fb_web")
    new = one(web, "SELECT dashboard_auth.audit_details(%s)", (id_,))["rows"][0]["new"]
    assert new["id"] == 1 and new["note"] == "kept"
    assert new["p"] == p and new["ps"] == ps
    page = web.execute("SELECT id, details FROM dashboard.audit_search()").fetchall()
    assert any(r[0] == id_ and r[1]["rows"][0]["new"]["note"] == "kept" for r in page)
    hits = web.execute("SELECT id FROM dashboard.audit_search(target => 'public.shapes')").fetchall()
    assert (id_,) in hits
    hits = web.execute("SELECT id FROM dashboard.audit_search(target => 'table:public.shapes')").fetchall()
    assert (id_,) in hits
    assert verify(su) == (True, None)


def test_reader_still_decodes_an_unchanged_composite(db, su):
    su.execute("CREATE TYPE public.pair AS (a int4, b text)")
    su.execute("CREATE TABLE public.shapes (id int PRIMARY KEY, p public.pair, ps public.pair[])")
    su.execute("SELECT dashboard.enable_audit('public.shapes')")
    su.execute("INSERT INTO public.shapes VALUES (1, ROW(7, 'seven'), ARRAY[ROW(8, 'eight')::public.pair])")
    su.execute("ALTER TABLE public.shapes DROP COLUMN ps")
    new = one(su, "SELECT dashboard_auth.audit_details(max(id)) FROM dashboard_auth.audit_log WHERE action = 'row.insert'")
    new = new["rows"][0]["new"]
    assert new["p"] == {"a": 7, "b": "seven"}
    assert new["ps"] == [{"a": 8, "b": "eight"}]


# ------------------------------------------- item 11: a cut-off tail is detectable


def audit_append(conn, n):
    conn.execute(
        "INSERT INTO dashboard_auth.audit_log (actor, action, target_type, target_id) "
        "SELECT 'db:test', 'test.event', 'thing', g::text FROM generate_series(1, %s) g", (n,))


def cut_tail(su, keep):
    """What a superuser can do: delete the newest entries and move the head back."""
    su.execute("ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER audit_log_append_only")
    su.execute("DELETE FROM dashboard_auth.audit_log WHERE id > %s", (keep,))
    su.execute("ALTER TABLE dashboard_auth.audit_log ENABLE TRIGGER audit_log_append_only")
    su.execute("UPDATE dashboard_auth.audit_chain_head SET last_id = %s, "
               "last_hash = (SELECT row_hash FROM dashboard_auth.audit_log WHERE id = %s)", (keep, keep))


def server_log():
    """The cluster's server log (scripts/cluster.sh writes it to $CLUSTER_DIR/server.log);
    a missing log fails the test that reads it."""
    assert os.environ.get("CLUSTER_DIR"), "CLUSTER_DIR is not set: run the tests through scripts/cluster.sh"
    path = os.path.join(os.environ["CLUSTER_DIR"], "server.log")
    assert os.path.exists(path), f"no server log at {path}"
    return open(path, errors="replace").read()


def test_witness_is_the_chain_head(su):
    assert su.execute("SELECT * FROM dashboard_auth.audit_witness()").fetchone() == (0, bytes(32))
    audit_append(su, 5)
    wid, whash = su.execute("SELECT * FROM dashboard_auth.audit_witness()").fetchone()
    assert (wid, whash) == su.execute(
        "SELECT id, row_hash FROM dashboard_auth.audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert verify(su, wid, whash) == (True, None)
    audit_append(su, 3)
    assert verify(su, wid, whash) == (True, None)  # the chain has grown past the witness: fine
    assert verify(su, wid, None) == (True, None)
    assert verify(su) == (True, None)  # the zero-argument call as before
    assert f"fluxbase_admin audit witness (on demand): id={wid} hash={whash.hex()}" in server_log()


def test_a_cut_off_tail_is_reported_against_a_witness(su):
    audit_append(su, 10)
    wid, whash = su.execute("SELECT * FROM dashboard_auth.audit_witness()").fetchone()
    assert wid == 10
    cut_tail(su, 7)
    # the attack: the chain alone still verifies ...
    assert verify(su) == (True, None)
    # ... but not against what a witness saw
    assert verify(su, wid, whash) == (False, 10)
    assert verify(su, wid, None) == (False, 10)
    # grown back to the witnessed length with other entries: the hash gives it away
    audit_append(su, 3)
    assert verify(su) == (True, None)
    assert verify(su, wid, whash) == (False, 10)
    assert verify(su, 7, None) == (True, None)


def test_witness_survives_a_purge(su):
    audit_append(su, 10)
    wid, whash = su.execute("SELECT * FROM dashboard_auth.audit_witness()").fetchone()
    su.execute("SELECT dashboard_auth.purge_audit('0 seconds')")
    assert verify(su, wid, whash) == (True, None)
    assert verify(su, 3, None) == (True, None)
    head = su.execute("SELECT * FROM dashboard_auth.audit_witness()").fetchone()
    assert verify(su, *head) == (True, None)


@pytest.mark.parametrize("args", [(-1, None), (None, bytes(32)), (1, b"short")])
def test_witness_arguments_are_checked(su, args):
    audit_append(su, 2)
    with pytest.raises(psycopg.Error) as e:
        verify(su, *args)
    assert e.value.sqlstate == "22023"


def test_chain_head_goes_to_the_server_log_every_thousand_entries(su):
    audit_append(su, 1005)
    head = su.execute("SELECT last_id, last_hash FROM dashboard_auth.audit_chain_head").fetchone()
    assert f"fluxbase_admin audit witness (checkpoint): id={head[0]} hash={head[1].hex()}" in server_log()


# ------------------------------------------------- item 10: refusals are audited


def refusals(su):
    return su.execute(
        "SELECT actor, db_user, success, details FROM dashboard_auth.audit_log WHERE action = 'api.refused' ORDER BY id"
    ).fetchall()


def wait_for(su, n, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = refusals(su)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    return refusals(su)


def make_viewer_token(su):
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')", (PASSWORD,))
    status, token, _ = su.execute("SELECT * FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,)).fetchone()
    assert status == "ok"
    return token


def test_a_refused_api_call_is_recorded_although_it_rolls_back(db, su):
    token = make_viewer_token(su)
    web = db.conn("fb_web")
    as_session(web, token)
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard_auth.create_admin('mallory@example.com', %s, 'M', 'dashboard_admin')", (PASSWORD,))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    (actor, db_user, success, details), = wait_for(su, 1)
    assert actor == "viewer@example.com" and db_user == "fb_web" and success is False
    assert details["sqlstate"] == "42501" and "dashboard_viewer" in details["reason"]
    assert PASSWORD not in str(details)
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE email = 'mallory@example.com'") == 0
    assert verify(su) == (True, None)


def test_refusals_are_rate_limited(db, su):
    token = make_viewer_token(su)
    web = db.conn("fb_web")
    for _ in range(40):
        as_session(web, token)
        with pytest.raises(psycopg.Error):
            web.execute("SELECT dashboard_auth.purge_audit('1 day')")
        web.execute("ROLLBACK")
    got = wait_for(su, 10)
    time.sleep(1)
    got = refusals(su)
    assert 1 <= len(got) <= 10
    assert verify(su) == (True, None)
    # the append-only guard is a table's rule, not an API call: not recorded
    with pytest.raises(psycopg.Error):
        su.execute("DELETE FROM dashboard_auth.audit_log")
    time.sleep(0.5)
    assert len(refusals(su)) == len(got)


# ------------------------------- issue 36: entries go to the end of the log


def test_entries_go_to_the_logs_last_page_not_into_room_vacuum_found(db, su):
    """The log is append-only: after a VACUUM records the room its older pages
    have left, new entries still go to its last page (or a new one). Put into
    that room, each entry landed on another old page, whose first change after
    a checkpoint WAL-logs the whole page (~4.5 kB per single-row audited
    transaction), and the BRIN range of every old page widened to the present.
    Every entry is still there, in order, and the chain verifies."""
    su.execute("CREATE EXTENSION IF NOT EXISTS pg_freespacemap")
    ledger(su)
    # entries of ~2.8 kB (md5 text barely compresses): two a page, ~2.5 kB left on each
    for i in range(12):
        su.execute("INSERT INTO public.ledger SELECT g, repeat(md5(g::text), 2) FROM generate_series(%s::int, %s::int) g",
                   (i * 40, i * 40 + 39))
    su.execute("VACUUM dashboard_auth.audit_log")
    last = one(su, "SELECT max((ctid::text::point)[0])::int FROM dashboard_auth.audit_log")
    roomy = one(su, "SELECT count(*) FROM pg_freespace('dashboard_auth.audit_log') WHERE blkno < %s AND avail > 1000",
                (last,))
    assert roomy >= 3  # (the room the old behaviour filled)
    # a fresh backend (no target page of its own yet), single-row transactions
    w = db.conn("fb_plain")
    for k in range(10):
        w.execute("INSERT INTO public.ledger VALUES (%s, 'x')", (100000 + k,))
    blocks = [r[0] for r in su.execute(
        "SELECT (ctid::text::point)[0]::int FROM dashboard_auth.audit_log "
        "WHERE target_id = 'public.ledger' ORDER BY id DESC LIMIT 10")]
    assert len(blocks) == 10 and min(blocks) >= last, (blocks, last)
    assert row_counts(su) == [40] * 12 + [1] * 10
    assert verify(su) == (True, None)
