"""Screenshots of every section page at desktop and phone width, into
target/screenshots/<page>[-narrow].png (for the README and for a person to
look at), and a few in the dark colour scheme (<page>-dark.png); each page
must be the page meant (status 200 and its h1, not a 403/404 in its place)
and render without horizontal page overflow at phone width beyond its own
scrolling tables."""
from conftest import PASSWORD, ROOT
from section_pages import StepUp, UserPage, sign_in_first_admin

SHOTS = ROOT / "target/screenshots"


def test_section_screenshots(page, db):
    su = db.conn()
    su.execute("GRANT pg_read_all_stats TO fb_web")
    try:
        su.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for i in range(6):
            su.execute("SELECT dashboard.invite_user(%s, 'authenticated', %s::jsonb)",
                       (f"user{i}@example.com", '{"plan": "pro", "name": "<script>alert(1)</script>"}'))
        su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, body text)")
        su.execute("SELECT dashboard.enable_audit('public.notes')")
        su.execute("INSERT INTO public.notes VALUES (1, 'hello'), (2, 'world')")
        sign_in_first_admin(page)
        su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Vera Viewer', 'dashboard_viewer')", (PASSWORD,))
        su.execute("SELECT dashboard_auth.invite_admin('new.admin@example.com', 'dashboard_admin')")
        uid = su.execute("SELECT id FROM auth.users WHERE email = 'user0@example.com'").fetchone()[0]
        row_id = su.execute("SELECT max(id) FROM dashboard_auth.audit_log WHERE action LIKE %s", ("row.%",)).fetchone()[0]
        su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO fluxbase_dashboard")
        pages = [
            ("home", "/admin", "Welcome, Root Admin"),
            ("tables", "/admin/tables", "Tables"),
            ("table", "/admin/tables/public/notes", "notes"),
            ("sql-console", "/admin/tables/sql", "SQL as user"),
            ("users", "/admin/users", "Users"),
            ("user", f"/admin/users/{uid}", "user0@example.com"),
            ("admins", "/admin/admins", "Admins"),
            ("settings", "/admin/settings", "Settings"),
            ("audit", "/admin/audit", "Audit trail"),
            ("audit-entry", f"/admin/audit/entry/{row_id}", f"Audit entry {row_id}"),
            ("analytics", "/admin/analytics", "Analytics"),
            ("account", "/admin/account", "My account"),
            ("advisor", "/admin/advisor", "Advisor"),
        ]
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width, suffix, scheme in [(1280, "", "light"), (390, "-narrow", "light"), (1280, "-dark", "dark")]:
            page.set_viewport_size({"width": width, "height": 900})
            page.emulate_media(color_scheme=scheme)
            for name, path, h1 in pages:
                if scheme == "dark" and name not in ("home", "table", "users", "analytics"):
                    continue
                r = page.goto(path)
                assert r.status == 200, f"{name}: {r.status}"
                got = page.locator("h1").first.inner_text()
                assert h1 in got, f"{name}: h1 is {got!r}, expected {h1!r}"
                page.screenshot(path=str(SHOTS / f"{name}{suffix}.png"), full_page=True)
                overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 1, f"{name} at {width}px overflows by {overflow}px"
        # The step-up dialog.
        page.emulate_media(color_scheme="light")
        page.set_viewport_size({"width": 1280, "height": 900})
        UserPage(page).open(uid).change_role("anon")
        StepUp(page).wait_open()
        assert page.locator("#reauth-title").inner_text() == "Confirm it is you"
        page.screenshot(path=str(SHOTS / "reauth-dialog.png"))
    finally:
        su.execute("REVOKE pg_read_all_stats FROM fb_web")
