"""Issue 28 item 1: name resolution of the web server and the CLI is pinned.

A role that may create objects in `public` (in PostgreSQL 15 the database
owner may) or in a schema named after the dashboard's login plants
look-alikes of what the server's statements name: `to_json(record)` (an
exact match for a row, preferred to `pg_catalog.to_json(anyelement)`),
`to_jsonb(record)`, `count(*)`, `now()`, and `=` for text, uuid and name.
Each records that it ran. Then every page of the dashboard and every CLI
command is driven: none of them may run.
"""
import json
import os
import subprocess

from conftest import BIN, PASSWORD, db_url
from section_pages import sign_in

LOOKALIKES = """
CREATE TABLE public.hijack_log (what text, by_role text DEFAULT current_user);
GRANT INSERT, SELECT ON public.hijack_log TO PUBLIC;
CREATE SCHEMA fb_web AUTHORIZATION fb_web;
"""

PER_SCHEMA = """
CREATE FUNCTION {s}.to_json(r record) RETURNS json LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log(what) VALUES ('{s}.to_json'); RETURN pg_catalog.row_to_json(r); END $$;
CREATE FUNCTION {s}.to_jsonb(r record) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log(what) VALUES ('{s}.to_jsonb'); RETURN pg_catalog.to_jsonb(r); END $$;
CREATE FUNCTION {s}.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log(what) VALUES ('{s}.now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION {s}.hj_inc(n int8) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log(what) VALUES ('{s}.count'); RETURN n OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE {s}.count(*) (SFUNC = {s}.hj_inc, STYPE = int8, INITCOND = '0');
"""

EQ = """
CREATE FUNCTION {s}.hj_eq(a {t}, b {t}) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.hijack_log(what) VALUES ('{s}.= {t}'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE OPERATOR {s}.= (LEFTARG = {t}, RIGHTARG = {t}, FUNCTION = {s}.hj_eq);
"""


def plant(su):
    su.execute(LOOKALIKES)
    for s in ("public", "fb_web"):
        su.execute(PER_SCHEMA.format(s=s))
        for t in ("text", "uuid", "name"):
            su.execute(EQ.format(s=s, t=t))
    # They do run where nothing pins the path: the test can fail.
    su.execute("SELECT to_json(t) FROM (SELECT 1 AS a) t")
    assert su.execute("SELECT pg_catalog.count(*) FROM public.hijack_log").fetchone()[0] == 1
    su.execute("TRUNCATE public.hijack_log")


def ran(su):
    return su.execute("SELECT what, by_role FROM public.hijack_log").fetchall()


def notes(su):
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, title text, owner uuid)")
    su.execute("INSERT INTO public.notes SELECT g, 'note ' || g, NULL FROM generate_series(1, 5) g")
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO fluxbase_dashboard, authenticated")
    su.execute("ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY")
    su.execute("CREATE POLICY everyone ON public.notes USING (true)")


def test_no_lookalike_runs_from_any_page(page, su):
    notes(su)
    alice = su.execute("SELECT user_id FROM dashboard.invite_user('alice@example.com')").fetchone()[0]
    plant(su)
    page.goto("/admin/setup")
    page.fill("input[name=email]", "root@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=full_name]", "Root Admin")
    page.click("text=Create Admin Account")
    page.wait_for_url("**/admin")
    entry = su.execute("SELECT max(id) FROM dashboard_auth.audit_log").fetchone()[0]
    paths = [
        "/admin", "/admin/account", "/admin/users", f"/admin/users/{alice}", "/admin/users?q=ali",
        "/admin/admins", "/admin/settings", "/admin/analytics", "/admin/audit", "/admin/audit?action=admin",
        "/admin/audit/export.csv", "/admin/audit/verify", f"/admin/audit/entry/{entry}",
        "/admin/tables", "/admin/tables/public/notes", "/admin/tables/public/notes/grid",
        "/admin/tables/public/notes/count", "/admin/tables/public/notes/export",
        "/admin/tables/public/notes/export?format=json", "/admin/tables/public/notes/insert",
        "/admin/tables/sql", "/admin/tables/view-as/users?q=ali", "/admin/healthz",
    ]
    for p in paths:
        r = page.request.get(p)
        assert r.status == 200, f"{p}: {r.status} {r.text()[:300]}"
    # View as alice, then the pages and the SQL console as her.
    page.goto("/admin/tables/public/notes")
    page.click("details.view-as summary")
    page.fill("input[name=target]", "alice@example.com")
    page.fill("input[name=reason]", "look-alike check")
    page.click("details.view-as button:has-text('Start')")
    page.wait_for_selector(".imp-banner")
    for p in ["/admin/tables/public/notes", "/admin/tables/public/notes/grid", "/admin/tables/public/notes/export"]:
        r = page.request.get(p)
        assert r.status == 200, f"{p}: {r.status} {r.text()[:300]}"
    page.goto("/admin/tables/sql")
    page.fill("textarea[name=sql]", "SELECT id, title FROM public.notes ORDER BY id")
    page.click("button:has-text('Run')")
    page.wait_for_selector(".sql-count")
    page.click(".imp-banner button:has-text('Stop')")
    page.wait_for_function("() => !document.querySelector('.imp-banner')")
    # Sign out and in again.
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/admin/login*")
    sign_in(page, "root@example.com")
    assert ran(su) == [], "a look-alike ran"


def cli(dbname, *args, stdin=None, session=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["FLUXBASE_SESSION_FILE"] = session
    r = subprocess.run([BIN, "--database-url", db_url(dbname), "-o", "json", *args], input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, text=True, env=env, timeout=60)
    return r


def test_no_lookalike_runs_from_any_cli_command(db, su, tmp_path):
    notes(su)
    su.execute("SELECT dashboard.invite_user('alice@example.com')")
    plant(su)
    session = str(tmp_path / "fluxbase" / "session")
    ok = lambda *a, **kw: _ok(cli(db.name, *a, session=session, **kw), a)  # noqa: E731
    ok("setup", "--email", "root@example.com", "--name", "Root", "--password-stdin", stdin=PASSWORD + "\n")
    ok("login", "--email", "root@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    ok("admin", "users", "list")
    ok("admin", "sessions", "list")
    ok("admin", "invitations", "list")
    inv = ok("admin", "users", "invite", "--email", "second@example.com")
    ok("users", "list")
    ok("users", "list", "--search", "alice")
    ok("users", "invite", "--email", "bob@example.com")
    ok("tables", "list")
    ok("tables", "describe", "public.notes")
    ok("tables", "browse", "public.notes", "--filter", "title:eq:note 1", "--sort", "id:desc")
    ok("impersonate", "alice@example.com", "--reason", "look-alike check", "--", "SELECT id FROM public.notes")
    ok("metrics")
    ok("audit", "--limit", "5")
    ok("audit", "verify", "--witness", str(tmp_path / "witness"))
    ok("reauth", "--password-stdin", stdin=PASSWORD + "\n")
    ok("logout")
    assert inv is not None
    assert ran(su) == [], "a look-alike ran"


def _ok(r, args):
    assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    try:
        return json.loads(r.stdout) if r.stdout.strip() else None
    except json.JSONDecodeError:
        return r.stdout
