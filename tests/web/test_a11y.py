"""Accessibility (issue 34): axe-core over every page and dialog of the
dashboard at 1280 and 390 px, in the light and the dark colour scheme, with
the WCAG 2.0/2.1 A and AA rules: 0 violations. One browser context, signed in
once, walks them all; the count per page view is printed (pytest -s shows it)
and any violation fails the test with its rule and nodes."""
import time

import pyotp

from a11y import Axe
from conftest import PASSWORD, AccountPage, LoginPage, SetupPage, Shell
from section_pages import StepUp, UserPage


def seed(su):
    su.execute("GRANT pg_read_all_stats TO fb_web")
    su.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    for i in range(3):
        su.execute("SELECT dashboard.invite_user(%s, 'authenticated', %s::jsonb)",
                   (f"user{i}@example.com", '{"plan": "pro"}'))
    alice = su.execute("SELECT id FROM auth.users WHERE email = 'user0@example.com'").fetchone()[0]
    su.execute("""CREATE TABLE notes (id int PRIMARY KEY, owner uuid, title text, body text,
                                      done boolean DEFAULT false, meta jsonb, n int CHECK (n >= 0))""")
    su.execute("SELECT dashboard.enable_audit('public.notes')")
    su.execute("""INSERT INTO notes SELECT g, CASE WHEN g %% 3 = 0 THEN %s::uuid END, 'note ' || g,
                  CASE g %% 4 WHEN 0 THEN NULL WHEN 1 THEN '' ELSE repeat('long text ', 20) END, g %% 2 = 0,
                  jsonb_build_object('g', g), g FROM generate_series(1, 30) g""", (alice,))
    su.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
    su.execute("CREATE POLICY own ON notes TO authenticated USING (owner = auth.uid())")
    su.execute("CREATE POLICY dash ON notes TO fluxbase_dashboard USING (true) WITH CHECK (true)")
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO fluxbase_dashboard, authenticated")
    su.execute("SELECT dashboard_auth.invite_admin('new.admin@example.com', 'dashboard_viewer')")
    return alice


def heading(page, text):
    """The page is the one meant (not an error page): its h1 says so."""
    h1 = page.locator("h1").first
    h1.wait_for()
    assert text in h1.inner_text(), f"{page.url}: h1 is {h1.inner_text()!r}, expected {text!r}"


def test_every_page_and_dialog_has_no_axe_violations(page, su):
    alice = seed(su)
    try:
        axe = Axe(page)
        SetupPage(page).open()
        heading(page, "Welcome to Fluxbase")
        axe.check("setup")
        SetupPage(page).create()
        page.wait_for_url("**/admin")
        heading(page, "Welcome, Root Admin")
        axe.check("home")

        # Tables: the list, a grid with a filter, the cell editor, the
        # insert form, the batch preview, the SQL console, View as.
        page.goto("/admin/tables")
        heading(page, "Tables")
        axe.check("tables")
        page.goto("/admin/tables/public/notes?fc=n&fo=gt&fv=3&n=25")
        heading(page, "notes")
        assert page.locator("#grid tr[data-key]").count() == 25
        axe.check("table grid, filtered")
        cell = page.locator("#grid tr[data-key='{\"id\":\"4\"}'] td.cell").nth(2)  # title
        cell.dblclick()
        cell.locator("textarea[name=value]").wait_for()
        axe.check("table cell editor")
        cell.locator("button:has-text('Cancel')").click()
        cell.locator("form.editor").wait_for(state="detached")
        page.locator("#grid input[name=pk]").nth(0).check()
        page.locator("#grid input[name=pk]").nth(1).check()
        page.click("#grid button:has-text('Preview')")
        heading(page, "Confirm the batch change")
        axe.check("batch preview")
        page.goto("/admin/tables/public/notes/insert")
        heading(page, "Insert a row")
        axe.check("insert form")
        page.goto("/admin/tables/sql")
        page.fill("textarea[name=sql]", "SELECT 1")
        page.click("button:has-text('Run')")
        page.locator("p.error").wait_for()
        heading(page, "SQL as user")
        axe.check("SQL console, refused (no View as)")
        page.goto("/admin/tables/public/notes")
        page.click("details.view-as summary")
        page.fill("input[name=target]", "user0@example.com")
        page.fill("input[name=reason]", "accessibility check")
        page.click("details.view-as button:has-text('Start')")
        page.wait_for_selector(".imp-banner")
        heading(page, "notes")
        axe.check("table grid, View-as banner")
        # Why? on a visible row, then the key form on a row the user can't see (issue 32).
        page.locator("#grid button[data-why]").first.click()
        page.locator("#row-why #verdict").wait_for()
        axe.check("table grid, a row's Why? verdict")
        page.fill(".why-form input[name='k.id']", "999999")
        page.click(".why-form button:has-text('Explain')")
        page.locator("#row-why #verdict[data-allowed=false]").wait_for()
        axe.check("table grid, Why can't I see a row? verdict")
        page.goto("/admin/tables/sql")
        page.fill("textarea[name=sql]", "SELECT id, title, body FROM notes ORDER BY id LIMIT 5")
        page.click("button:has-text('Run')")
        page.wait_for_selector(".sql-count")
        heading(page, "SQL as user")
        axe.check("SQL console")
        page.click(".imp-banner button:has-text('Stop')")
        page.wait_for_function("() => !document.querySelector('.imp-banner')")

        # The sections.
        for name, path, h1 in [
            ("users", "/admin/users", "Users"),
            ("user", f"/admin/users/{alice}", "user0@example.com"),
            ("admins", "/admin/admins", "Admins"),
            ("settings", "/admin/settings", "Settings"),
            ("analytics", "/admin/analytics", "Analytics"),
            ("audit", "/admin/audit", "Audit trail"),
            ("advisor", "/admin/advisor", "Advisor"),
            ("why", "/admin/advisor/why?table=public.notes", "Why can't I see a row?"),
        ]:
            page.goto(path)
            heading(page, h1)
            axe.check(name)
        # The advisor's verdict on one row, as an app user.
        page.fill("#why input[name=key]", '{"id": 1}')
        page.fill("#why input[name=as_user]", "user0@example.com")
        page.click("#why button:has-text('Explain')")
        page.locator("#verdict").wait_for()
        axe.check("why verdict")
        row_id = su.execute("SELECT max(id) FROM dashboard_auth.audit_log WHERE action LIKE %s", ("row.%",)).fetchone()[0]
        page.goto(f"/admin/audit/entry/{row_id}")
        heading(page, f"Audit entry {row_id}")
        axe.check("audit entry")

        # The step-up dialog, opened by a role change.
        UserPage(page).open(alice).change_role("anon")
        StepUp(page).wait_open()
        axe.check("re-auth dialog")
        page.keyboard.press("Escape")
        page.locator("#reauth dialog").wait_for(state="detached")

        # My account, 2FA enrolment, backup codes.
        AccountPage(page).open()
        heading(page, "My account")
        axe.check("account")
        page.click("text=Set up two-factor authentication")
        page.locator("#totp-secret").wait_for()
        axe.check("account 2FA enrolment")
        totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
        page.fill("#twofa input[name=code]", totp.now())
        page.click("text=Turn on two-factor authentication")
        page.locator("#backup-codes li").first.wait_for()
        axe.check("account backup codes")

        # Error pages.
        page.goto("/admin/no-such-page")
        heading(page, "404")
        axe.check("404 page")
        page.goto("/admin/audit/entry/999999999")
        heading(page, "404")
        axe.check("404 page (no such entry)")

        # Signed out: sign-in, its error, the 2FA step.
        page.goto("/admin")
        Shell(page).sign_out()
        login = LoginPage(page).open(reason="expired")
        heading(page, "Sign in")
        axe.check("sign-in")
        login.login(password="wrong-password-here")
        page.locator(".error").wait_for()
        axe.check("sign-in error")
        login.login()
        page.wait_for_url("**/admin/login/2fa")
        heading(page, "Two-factor authentication")
        axe.check("2FA step")
        login.code(totp.at(time.time() + 30))
        page.wait_for_url("**/admin")
        assert PASSWORD
    finally:
        su.execute("REVOKE pg_read_all_stats FROM fb_web")
    axe.report()


def test_passkey_states_have_no_axe_violations(page, su):
    """Passkeys (issue 33): the account card unset and with a list, the
    step-up dialog offering a passkey, the sign-in page with "Sign in with a
    passkey", the 2FA step offering the passkey (and, phishing-resistant, no
    code field), a refusal shown by the script."""
    from test_passkey_pages import NO_CONDITIONAL_UI, Authenticator, add_passkey, configure

    axe = Axe(page)
    Authenticator(page)
    page.context.add_init_script(NO_CONDITIONAL_UI)  # (else the autofill signs in at once)
    SetupPage(page).open().create()
    page.wait_for_url("**/admin")
    AccountPage(page).open()
    page.locator("#passkeys-unset").wait_for()
    axe.check("account, passkeys unset")
    configure(su, page.server, passwordless=True)
    add_passkey(page, "Laptop")
    axe.check("account, a passkey added")
    page.watch.accept_confirm = True
    page.locator("#passkey-list button:has-text('Remove')").first.click()
    StepUp(page).wait_open().dialog.locator("button:has-text('Use a passkey')").wait_for()
    axe.check("re-auth dialog with a passkey")
    page.keyboard.press("Escape")
    page.locator("#reauth dialog").wait_for(state="detached")
    Shell(page).sign_out()
    LoginPage(page).open()
    page.locator("button:has-text('Sign in with a passkey')").wait_for()
    axe.check("sign-in with a passkey")
    su.execute("SELECT dashboard_auth.set_setting('mfa.phishing_resistant_required', 'true')")
    LoginPage(page).login()
    page.wait_for_url("**/admin/login/2fa")
    page.locator("button:has-text('Use your passkey')").wait_for()
    axe.check("2FA step with a passkey, phishing-resistant")
    axe.report()
