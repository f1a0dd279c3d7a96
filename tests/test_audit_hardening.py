"""Audit hardening (issue 17, items 4, 5, 6, 9, 11): no writer stalls the
chain, auditing cannot be switched off silently, the reader never fails,
secrets stay out of every table's trail, a cut-off tail is detectable."""
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
