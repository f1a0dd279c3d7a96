"""A PNG of every page, at a desktop and a phone width, into target/screenshots/
(scripts/screenshots.sh copies them to docs/screenshots/ for the README). Also a
test: each page renders with no console error or CSP violation at both widths."""
import time

from conftest import ROOT, AccountPage, LoginPage, SetupPage, Shell

OUT = ROOT / "target/screenshots"
WIDTHS = {"": (1280, 860), "-narrow": (390, 844)}


def shoot(page, name):
    OUT.mkdir(parents=True, exist_ok=True)
    for suffix, (w, h) in WIDTHS.items():
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(OUT / f"{name}{suffix}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})


def test_screenshots_of_every_page(page):
    SetupPage(page).open()
    shoot(page, "setup")
    SetupPage(page).create(email="ada@example.com", name="Ada Lovelace")
    page.wait_for_url("**/admin")
    shoot(page, "home")
    account = AccountPage(page).open()
    shoot(page, "account")
    page.click("text=Set up two-factor authentication")
    shoot(page, "account-2fa")
    import pyotp

    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.fill("#twofa input[name=code]", totp.now())
    page.click("text=Turn on two-factor authentication")
    shoot(page, "account-backup-codes")
    page.goto("/admin/no-such-page")
    shoot(page, "not-found")
    Shell(page).sign_out() if page.locator(".topbar .who").count() else None
    page.goto("/admin")
    if "/login" not in page.url:
        Shell(page).sign_out()
    login = LoginPage(page).open(reason="expired")
    shoot(page, "login")
    login.login(email="ada@example.com", password="wrong-password-here")
    shoot(page, "login-error")
    login.login(email="ada@example.com")
    page.wait_for_url("**/admin/login/2fa")
    shoot(page, "login-2fa")
    login.code(totp.at(time.time() + 30))
    page.wait_for_url("**/admin")
    assert account  # the page objects drove every step
