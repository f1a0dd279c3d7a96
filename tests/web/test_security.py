"""Lockout, cross-site posts, hostile names, CSP on every page."""
import http.server
import threading

from conftest import AccountPage, LoginPage, SetupPage, Shell


def test_lockout_message(page):
    SetupPage(page).open().create()
    page.wait_for_url("**/admin")
    Shell(page).sign_out()
    login = LoginPage(page)
    for _ in range(10):
        login.login(password="definitely-wrong-password")
        if "locked" in login.error():
            break
    assert "locked" in login.error()
    # Even the right password is refused while locked, with the same words.
    login.login()
    assert "locked" in login.error()


def test_cross_site_form_post_is_refused(page):
    SetupPage(page).open().create()
    page.wait_for_url("**/admin")
    target = page.server.url + "/admin/logout"
    html = f"""<!doctype html><form id=f method=post action="{target}"><input name=x value=1></form>
               <script>document.getElementById('f').submit()</script>""".encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *a):
            pass

    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        resp = []
        page.on("response", lambda r: resp.append(r) if r.url == target else None)
        page.goto(f"http://127.0.0.1:{evil.server_port}/")
        page.wait_for_url(target)
        assert resp and resp[-1].status == 403
        assert "cross-site" in page.content()
    finally:
        evil.shutdown()
    page.goto("/admin")
    assert "Root Admin" in Shell(page).who(), "still signed in: the post did nothing"


def test_hostile_admin_name_renders_as_text(page):
    name = "<script>alert(1)</script>"
    SetupPage(page).open().create(name=name)
    page.wait_for_url("**/admin")
    assert name in Shell(page).who()
    AccountPage(page).open()
    assert page.locator("#profile dd").first.inner_text() == name
    # The page fixture fails the test if any dialog fired.


def cause_csp_violation(page):
    """An inline script added to the page: the CSP refuses it, and the
    fixture's listener must report it (the control for the CSP checks)."""
    page.evaluate("""() => { const s = document.createElement('script');
                            s.textContent = 'window.__ran = 1'; document.body.append(s); }""")


def test_the_csp_listener_fires_on_a_violation(page):
    """Control page: without it, a listener that never fires would make every
    'no CSP violation' test pass by construction."""
    SetupPage(page).open()
    cause_csp_violation(page)
    for _ in range(50):
        if any(p.startswith("CSP violation: script-src") for p in page.watch.problems):
            break
        page.wait_for_timeout(50)
    assert any(p.startswith("CSP violation: script-src") for p in page.watch.problems), page.watch.problems
    assert page.evaluate("() => window.__ran") is None, "the inline script did not run"
    page.watch.problems.clear()


def test_every_page_without_csp_violations(page, su):
    """Every page of every section, each checked to be the page meant (its
    status and its h1, not a 403/404 in its place); the fixture then asserts
    no console error and no CSP violation happened on any of them."""
    su.execute("SELECT dashboard.invite_user('csp.user@example.com')")
    uid = su.execute("SELECT id FROM auth.users WHERE email = 'csp.user@example.com'").fetchone()[0]
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, body text)")
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO fluxbase_dashboard")
    su.execute("SELECT dashboard.enable_audit('public.notes')")
    su.execute("INSERT INTO public.notes VALUES (1, 'hello')")
    entry = su.execute("SELECT max(id) FROM dashboard_auth.audit_log").fetchone()[0]
    r = page.goto("/admin/setup")
    assert r.status == 200 and page.locator("h1").inner_text() == "Welcome to Fluxbase"
    SetupPage(page).create()
    page.wait_for_url("**/admin")
    pages = [
        ("/admin", 200, "Welcome, Root Admin"),
        ("/admin/tables", 200, "Tables"),
        ("/admin/tables/public/notes", 200, "notes"),
        ("/admin/tables/public/notes/insert", 200, "Insert a row"),
        ("/admin/tables/sql", 200, "SQL as user"),
        ("/admin/users", 200, "Users"),
        (f"/admin/users/{uid}", 200, "csp.user@example.com"),
        ("/admin/admins", 200, "Admins"),
        ("/admin/settings", 200, "Settings"),
        ("/admin/audit", 200, "Audit trail"),
        (f"/admin/audit/entry/{entry}", 200, f"Audit entry {entry}"),
        ("/admin/analytics", 200, "Analytics"),
        ("/admin/advisor", 200, "Advisor"),
        ("/admin/advisor/why", 200, "Why can't I see a row?"),
        ("/admin/account", 200, "My account"),
        ("/admin/no-such-page", 404, "404"),
    ]
    for path, status, h1 in pages:
        r = page.goto(path)
        assert r.status == status, f"{path}: {r.status}"
        assert h1 in page.locator("h1").first.inner_text(), f"{path}: h1 {page.locator('h1').first.inner_text()!r}"
    AccountPage(page).open()
    page.click("text=Set up two-factor authentication")
    page.locator("#totp-secret").wait_for()
    assert page.locator("#twofa h2").inner_text() == "Two-factor authentication"
    Shell(page).sign_out()
    LoginPage(page).open(reason="expired")
    assert page.locator("h1").inner_text() == "Sign in"
    # The fixture asserts no console error and no CSP violation happened.
