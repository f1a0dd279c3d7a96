"""First run, login, logout in a real browser."""
from conftest import LoginPage, SetupPage, Shell


def test_first_run_logs_in(page):
    page.goto("/admin")
    assert page.url.endswith("/admin/setup")
    SetupPage(page).create()
    page.wait_for_url("**/admin")
    assert "Root Admin" in Shell(page).who()
    assert "admin" in Shell(page).who().lower()


def test_wrong_password_then_logout(page, db):
    SetupPage(page).open().create()
    page.wait_for_url("**/admin")
    Shell(page).sign_out()
    page.wait_for_url("**/admin/login?reason=signed_out")
    assert "You have signed out" in page.content()
    login = LoginPage(page)
    login.login(password="not-the-password")
    assert login.error() == "Wrong email or password."
    login.login()
    page.wait_for_url("**/admin")
    assert "Root Admin" in Shell(page).who()
