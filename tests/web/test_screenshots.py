"""A PNG of every page, at a desktop and a phone width, into target/screenshots/
(scripts/screenshots.sh copies them to docs/screenshots/ for the README). Also a
test: each page renders with no console error or CSP violation at both widths."""
import time

from conftest import ROOT, AccountPage, LoginPage, SetupPage, Shell

OUT = ROOT / "target/screenshots"
WIDTHS = {"": (1280, 860), "-narrow": (390, 844)}


def shoot(page, name, h1):
    """Both widths of the page, after checking it is the page meant (its h1)."""
    got = page.locator("h1").first.inner_text()
    assert h1 in got, f"{name}: h1 is {got!r}, expected {h1!r}"
    OUT.mkdir(parents=True, exist_ok=True)
    for suffix, (w, h) in WIDTHS.items():
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(OUT / f"{name}{suffix}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})


def test_screenshots_of_every_page(page):
    SetupPage(page).open()
    shoot(page, "setup", "Welcome to Fluxbase")
    SetupPage(page).create(email="ada@example.com", name="Ada Lovelace")
    page.wait_for_url("**/admin")
    shoot(page, "home", "Welcome, Ada Lovelace")
    account = AccountPage(page).open()
    shoot(page, "account", "My account")
    page.click("text=Set up two-factor authentication")
    page.locator("#totp-secret").wait_for()
    shoot(page, "account-2fa", "My account")
    import pyotp

    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.fill("#twofa input[name=code]", totp.now())
    page.click("text=Turn on two-factor authentication")
    page.locator("#backup-codes li").first.wait_for()
    shoot(page, "account-backup-codes", "My account")
    assert page.goto("/admin/no-such-page").status == 404
    shoot(page, "not-found", "404")
    page.goto("/admin")
    Shell(page).sign_out()
    page.wait_for_url("**/admin/login**")
    login = LoginPage(page).open(reason="expired")
    shoot(page, "login", "Sign in")
    login.login(email="ada@example.com", password="wrong-password-here")
    assert login.error() == "Wrong email or password."
    shoot(page, "login-error", "Sign in")
    login.login(email="ada@example.com")
    page.wait_for_url("**/admin/login/2fa")
    shoot(page, "login-2fa", "Two-factor authentication")
    login.code(totp.at(time.time() + 30))
    page.wait_for_url("**/admin")
    assert account  # the page objects drove every step
