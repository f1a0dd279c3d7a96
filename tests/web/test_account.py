"""2FA enrolment and login with it, backup codes, password change, sessions."""
import os
import subprocess
import time

from conftest import BIN, PASSWORD, AccountPage, LoginPage, SetupPage, Shell, db_url
from section_pages import StepUp


def signed_up(page, **kw):
    SetupPage(page).open().create(**kw)
    page.wait_for_url("**/admin")


def next_code(totp):
    # A code is accepted once: the login after enrolment uses the next step's
    # code (the database accepts ±1 step).
    return totp.at(time.time() + 30)


def test_enrol_2fa_then_login_with_totp_and_backup_code_once(page):
    signed_up(page)
    account = AccountPage(page).open()
    assert page.locator("svg.qr path").count() == 0
    totp, codes = account.enrol_2fa()
    assert len(codes) >= 8
    assert "Two-factor authentication is on" in account.message("twofa")
    href = page.locator("a:has-text('Download as text')").get_attribute("href")
    assert href.startswith("data:text/plain") and codes[0] in href
    Shell(page).sign_out()

    login = LoginPage(page)
    login.login()
    page.wait_for_url("**/admin/login/2fa")
    login.code("000000")
    assert "not valid" in login.error()
    login.code(next_code(totp))
    page.wait_for_url("**/admin")
    Shell(page).sign_out()

    # A backup code works once.
    login.login()
    page.wait_for_url("**/admin/login/2fa")
    login.code(codes[0])
    page.wait_for_url("**/admin")
    Shell(page).sign_out()
    login.login()
    page.wait_for_url("**/admin/login/2fa")
    login.code(codes[0])
    assert "not valid" in login.error()


def test_qr_code_is_drawn_and_a_wrong_code_keeps_the_secret(page):
    signed_up(page)
    AccountPage(page).open()
    page.click("text=Set up two-factor authentication")
    assert page.locator("svg.qr path").count() == 1
    secret = page.locator("#totp-secret").inner_text()
    page.fill("#twofa input[name=code]", "123")
    page.click("text=Turn on two-factor authentication")
    assert page.locator("#twofa .error").count() == 1
    assert page.locator("#totp-secret").inner_text() == secret


def test_regenerate_backup_codes(page):
    signed_up(page)
    totp, codes = AccountPage(page).open().enrol_2fa()
    page.goto("/admin/account")
    page.fill("form[action$='backup-codes'] input[name=code]", next_code(totp))
    page.click("text=New backup codes")
    new_codes = page.locator("#backup-codes li").all_inner_texts()
    assert new_codes and set(new_codes).isdisjoint(codes)


def test_disable_2fa_asks_for_a_code(page):
    signed_up(page)
    account = AccountPage(page).open()
    totp, _ = account.enrol_2fa()
    page.goto("/admin/account")
    page.watch.accept_confirm = True  # the data-confirm prompt
    page.fill("form[action$='disable'] input[name=code]", "000000")
    page.click("button:has-text('Turn off')")
    # Turning 2FA off is a step-up action: the database asks for a fresh
    # re-authentication first (FBR01), then the form is sent again.
    StepUp(page).wait_open().confirm(PASSWORD)
    assert "not valid" in account.message("twofa")
    page.watch.accept_confirm = True
    page.fill("form[action$='disable'] input[name=code]", next_code(totp))
    page.click("button:has-text('Turn off')")
    # (the earlier refusal stays on the page until this answer replaces it)
    page.locator("#twofa [role=alert]", has_text="Two-factor authentication is off").wait_for()


def test_change_password(page):
    signed_up(page)
    AccountPage(page).open()
    page.fill("input[name=old_password]", "wrong-old-password")
    page.fill("input[name=new_password]", "a-brand-new-passphrase-42")
    page.click("button:has-text('Change password')")
    assert page.locator("#password .error").count() == 1
    page.fill("input[name=old_password]", PASSWORD)
    page.fill("input[name=new_password]", "a-brand-new-passphrase-42")
    page.click("button:has-text('Change password')")
    assert "Password changed" in page.locator("#password .notice").inner_text()
    Shell(page).sign_out()
    LoginPage(page).login(password="a-brand-new-passphrase-42")
    page.wait_for_url("**/admin")


def test_sign_out_everywhere_else(page, browser):
    signed_up(page)
    other = browser.new_context(base_url=page.server.url).new_page()
    LoginPage(other).open().login()
    other.wait_for_url("**/admin")
    AccountPage(page).open()
    assert page.locator("#sessions tbody tr").count() == 2
    page.click("text=Sign out everywhere else")
    assert "Signed out everywhere else (1 session)" in page.content()
    other.goto("/admin")
    assert "/admin/login?reason=expired" in other.url
    other.context.close()


def test_session_revoked_with_the_cli_sends_next_click_to_login(page, db):
    signed_up(page)
    env = dict(os.environ, DATABASE_URL=db_url(db.name, "postgres"))
    out = subprocess.run([BIN, "--no-session", "-o", "json", "admin", "sessions", "list"], env=env,
                         capture_output=True, text=True, check=True).stdout
    import json
    sessions = json.loads(out)
    assert len(sessions) == 1
    subprocess.run([BIN, "--no-session", "-y", "admin", "sessions", "revoke", sessions[0]["id"]], env=env,
                   capture_output=True, text=True, check=True)
    page.click(".topbar .me")
    page.wait_for_url("**/admin/login?reason=expired")
    assert "Your session has ended" in page.content()
