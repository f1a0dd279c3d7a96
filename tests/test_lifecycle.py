"""Lifecycle: pg_dump / restore of a database that uses the extension."""
import os
import subprocess
import uuid

from conftest import PASSWORD, connect, one, setup_admin


def pg_bin(name):
    bindir = subprocess.check_output([os.environ.get("PG_CONFIG", "/usr/bin/pg_config"), "--bindir"], text=True).strip()
    return os.path.join(bindir, name)


def test_dump_restores_admins_sessions_settings_and_audit(db, tmp_path):
    web = db.conn("fb_web")
    uid, token = setup_admin(web)
    web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '7')")
    one(web, "SELECT status FROM dashboard_auth.login('root@example.com', 'wrong-password-here')")
    audit_before = web.execute("SELECT id, action FROM dashboard_auth.audit_log ORDER BY id").fetchall()

    # Schema, then data with --disable-triggers (which pg_dump honours only for
    # data-only dumps): the audit triggers must not re-chain or re-record the
    # rows being restored. The README gives the same two commands.
    schema, data = tmp_path / "schema.sql", tmp_path / "data.sql"
    subprocess.run([pg_bin("pg_dump"), "--schema-only", "-d", db.name, "-f", str(schema)], check=True)
    subprocess.run([pg_bin("pg_dump"), "--data-only", "--disable-triggers", "-d", db.name, "-f", str(data)], check=True)
    target = "restored_" + uuid.uuid4().hex[:8]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {target}")
    try:
        for part in (schema, data):
            subprocess.run([pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", str(part)],
                           check=True, capture_output=True)
        with connect(target, user="fb_web") as r:
            assert one(r, "SELECT dashboard_auth.needs_setup()") is False
            assert one(r, "SELECT user_id FROM dashboard_auth.validate_session(%s)", (token,)) == uid
            assert one(r, "SELECT dashboard_auth.get_setting('lockout.max_attempts')") == 7
            assert r.execute("SELECT id, action FROM dashboard_auth.audit_log ORDER BY id").fetchall() == audit_before
            assert r.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
            assert one(r, "SELECT status FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)) == "ok"
            # New audit rows continue after the restored ones (the identity sequence came along).
            assert one(r, "SELECT max(id) FROM dashboard_auth.audit_log") > audit_before[-1][0]
            assert r.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
    finally:
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE {target} WITH (FORCE)")


def test_dump_restores_audited_partitioned_and_redacted_tables(db, tmp_path):
    """The DDL watch (issue 17, item 5) must not get in the way of a restore:
    the schema's triggers come back as they were, no entry is recorded on the
    way, and the restored chain verifies and goes on."""
    su = db.conn()
    su.execute("CREATE TABLE public.events (id int, region text, secret text) PARTITION BY LIST (region)")
    su.execute("CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu')")
    su.execute("SELECT dashboard.enable_audit('public.events', redact => '{secret}')")
    su.execute("CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us')")
    su.execute("INSERT INTO public.events VALUES (1, 'eu', 's1'), (2, 'us', 's2')")
    before = su.execute("SELECT id, action, row_hash FROM dashboard_auth.audit_log ORDER BY id").fetchall()
    schema, data = tmp_path / "schema.sql", tmp_path / "data.sql"
    subprocess.run([pg_bin("pg_dump"), "--schema-only", "-d", db.name, "-f", str(schema)], check=True)
    subprocess.run([pg_bin("pg_dump"), "--data-only", "--disable-triggers", "-d", db.name, "-f", str(data)], check=True)
    target = "restored_" + uuid.uuid4().hex[:8]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {target}")
    try:
        for part in (schema, data):
            subprocess.run([pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", str(part)],
                           check=True, capture_output=True)
        with connect(target) as r:
            assert r.execute("SELECT id, action, row_hash FROM dashboard_auth.audit_log ORDER BY id").fetchall() == before
            assert dict(r.execute("SELECT * FROM dashboard.audited_tables()").fetchall()) == {
                t: ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] for t in ["public.events", "public.events_eu", "public.events_us"]}
            r.execute("INSERT INTO public.events_us VALUES (3, 'us', 's3')")
            d = one(r, "SELECT dashboard_auth.audit_details(max(id)) FROM dashboard_auth.audit_log")
            assert d["rows"][0]["new"]["secret"] == "[redacted]"
            assert r.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
    finally:
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE {target} WITH (FORCE)")
