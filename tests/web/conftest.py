"""Browser tests of the web dashboard: Playwright (Python) driving Debian's
Chromium against `fluxbase serve` on a fresh database, connected as the
non-superuser fb_web. Any console error, uncaught page error or CSP violation
fails the test; a failing test leaves a screenshot in target/test-screenshots/.
"""
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("FLUXBASE_BIN", str(ROOT / "target/debug/fluxbase"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SHOTS = ROOT / "target/test-screenshots"
PASSWORD = "correct-horse-battery-staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def db_url(dbname, user="fb_web"):
    host = os.environ.get("PGHOST", "/var/run/postgresql")
    port = os.environ.get("PGPORT", "5432")
    return f"postgresql://{user}@/{dbname}?host={host}&port={port}"


class Server:
    """A running `fluxbase serve`; `.url` is http://localhost:PORT."""

    def __init__(self, dbname, extra=()):
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        env = dict(os.environ, DATABASE_URL=db_url(dbname))
        env.pop("RUST_BACKTRACE", None)
        self.log = open(ROOT / f"target/serve-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", *extra],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(self.url + "/admin/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.log.seek(0)
                raise RuntimeError(f"fluxbase serve did not start: {self.log.read()}")
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def server(db):
    s = Server(db.name)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


# Reports every CSP violation to the test (an init script runs before any page
# script and is not subject to the page's CSP).
CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__fbCspViolation(e.violatedDirective + ' blocked ' + e.blockedURI + ' at ' + e.sourceFile + ':' + e.lineNumber);
});
"""


class Watch:
    """What went wrong in the browser during a test."""

    def __init__(self):
        self.problems = []
        self.dialogs = []
        # A test expecting a data-confirm prompt sets this; it is accepted once.
        self.accept_confirm = False


@pytest.fixture
def page(browser, server, request):
    ctx = browser.new_context(base_url=server.url)
    watch = Watch()
    ctx.expose_binding("__fbCspViolation", lambda source, msg: watch.problems.append("CSP violation: " + msg))
    ctx.add_init_script(CSP_LISTENER)
    pg = ctx.new_page()

    def on_console(msg):
        if msg.type != "error":
            return
        # The document itself answered 4xx (a refused form, the 404 page): a
        # status the test asserts, not a page fault.
        if re.match(r"Failed to load resource: the server responded with a status of 4\d\d", msg.text) and \
                msg.location.get("url", "").split("?")[0] == pg.url.split("?")[0]:
            return
        watch.problems.append(f"console error: {msg.text} ({msg.location.get('url')})")

    def on_dialog(d):
        if watch.accept_confirm and d.type == "confirm":
            watch.accept_confirm = False
            d.accept()
            return
        watch.dialogs.append(d.message)
        d.dismiss()

    pg.on("console", on_console)
    pg.on("pageerror", lambda e: watch.problems.append(f"page error: {e}"))
    pg.on("dialog", on_dialog)
    pg.watch = watch
    pg.server = server
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if (rep is None or rep.failed) or watch.problems:
        SHOTS.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - the screenshot is a courtesy
            pass
    ctx.close()
    assert not watch.problems, "browser reported: " + "; ".join(watch.problems)
    assert not watch.dialogs, f"a dialog fired: {watch.dialogs}"


# ---- page objects (Playwright's POM pattern); screenshots.py reuses them ----

class SetupPage:
    def __init__(self, page):
        self.page = page

    def open(self):
        self.page.goto("/admin/setup")
        return self

    def create(self, email="root@example.com", password=PASSWORD, name="Root Admin"):
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.page.fill("input[name=full_name]", name)
        self.page.click("text=Create Admin Account")


class LoginPage:
    def __init__(self, page):
        self.page = page

    def open(self, reason=None):
        self.page.goto("/admin/login" + (f"?reason={reason}" if reason else ""))
        return self

    def login(self, email="root@example.com", password=PASSWORD):
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.page.click("button:has-text('Sign in')")

    def code(self, code):
        self.page.fill("input[name=code]", code)
        self.page.click("button:has-text('Verify')")

    def error(self):
        return self.page.locator(".error").inner_text()


class Shell:
    """The top bar of every signed-in page."""

    def __init__(self, page):
        self.page = page

    def who(self):
        return self.page.locator(".topbar .who").inner_text()

    def sign_out(self):
        self.page.click(".topbar button:has-text('Sign out')")


class AccountPage:
    def __init__(self, page):
        self.page = page

    def open(self):
        self.page.goto("/admin/account")
        return self

    def enrol_2fa(self):
        """Turn 2FA on through the page; returns (pyotp.TOTP, backup codes)."""
        import pyotp

        self.page.click("text=Set up two-factor authentication")
        secret = self.page.locator("#totp-secret").inner_text().strip()
        totp = pyotp.TOTP(secret)
        self.page.fill("#twofa input[name=code]", totp.now())
        self.page.click("text=Turn on two-factor authentication")
        codes = self.page.locator("#backup-codes li").all_inner_texts()
        return totp, codes

    def message(self, card):
        return self.page.locator(f"#{card} [role=alert]").inner_text()
