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


def test_every_page_without_csp_violations(page):
    page.goto("/admin/setup")
    SetupPage(page).create()
    page.wait_for_url("**/admin")
    for path in ["/admin", "/admin/account", "/admin/no-such-page"]:
        page.goto(path)
    AccountPage(page).open()
    page.click("text=Set up two-factor authentication")
    Shell(page).sign_out()
    LoginPage(page).open(reason="expired")
    # The fixture asserts no console error and no CSP violation happened.
