"""Page objects of the Users, Admins, Settings, Audit and Analytics sections
(Playwright's POM pattern), and the step-up dialog every destructive action
may open. The section tests and their screenshots use them."""
from conftest import PASSWORD, LoginPage, SetupPage


def sign_in_first_admin(page, name="Root Admin"):
    SetupPage(page).open().create(name=name)
    page.wait_for_url("**/admin")


def sign_in(page, email, password=PASSWORD):
    LoginPage(page).open().login(email=email, password=password)
    page.wait_for_url("**/admin")


class StepUp:
    """The re-authentication dialog (#reauth dialog)."""

    def __init__(self, page):
        self.page = page
        self.dialog = page.locator("#reauth dialog")

    def wait_open(self):
        self.dialog.wait_for(state="visible")
        return self

    def confirm(self, secret=PASSWORD):
        self.dialog.locator("input[name=secret]").fill(secret)
        self.dialog.locator("button:has-text('Confirm')").click()

    def error(self):
        return self.dialog.locator(".error").inner_text()


class UsersPage:
    def __init__(self, page):
        self.page = page

    def open(self, q=None):
        self.page.goto("/admin/users" + (f"?q={q}" if q else ""))
        return self

    def rows(self):
        return self.page.locator("#users tbody tr")

    def search(self, text):
        self.page.fill("input[name=q]", text)
        self.page.click("button:has-text('Search')")

    def filter(self, q="", confirmed="", role="", sort="email", direction="asc"):
        """Set the search, filter and sort controls and submit them."""
        form = self.page.locator("#user-filters")
        form.locator("input[name=q]").fill(q)
        form.locator("select[name=confirmed]").select_option(confirmed)
        form.locator("input[name=role]").fill(role)
        form.locator("select[name=sort]").select_option(sort)
        form.locator("select[name=dir]").select_option(direction)
        form.locator("button:has-text('Search')").click()

    def ids(self):
        return self.page.locator("#users tbody tr[data-user]").evaluate_all("rs => rs.map(r => r.dataset.user)")

    def invite(self, email, role="authenticated"):
        self.page.click("summary:has-text('Invite a user')")
        self.page.fill("form[action='/admin/users/invite'] input[name=email]", email)
        self.page.fill("form[action='/admin/users/invite'] input[name=role]", role)
        self.page.click("button:has-text('Invite')")
        return self.shown()

    def shown(self):
        self.page.locator("#shown-value").wait_for()
        return self.page.locator("#shown-value").inner_text()

    def open_user(self, email):
        self.page.click(f"#users a:has-text('{email}')")
        self.page.wait_for_url("**/admin/users/*")


class UserPage:
    def __init__(self, page):
        self.page = page

    def open(self, user_id):
        self.page.goto(f"/admin/users/{user_id}")
        return self

    def change_role(self, role):
        self.page.fill("form[action$='/role'] input[name=role]", role)
        self.page.click("button:has-text('Change role')")

    def reset_password(self):
        self.page.click("button:has-text('Reset password')")

    def delete(self, confirm_text):
        self.page.fill("input[name=confirm]", confirm_text)
        self.page.click("button:has-text('Delete user')")


class AdminsPage:
    def __init__(self, page):
        self.page = page

    def open(self):
        self.page.goto("/admin/admins")
        return self

    def row(self, email):
        return self.page.locator(f"#admins tr[data-admin='{email}']")

    def invite(self, email, role="dashboard_viewer", step_up=False):
        form = self.page.locator("form[action='/admin/admins/invite']")
        form.locator("input[name=email]").fill(email)
        form.locator("select[name=role]").select_option(role)
        form.locator("button").click()
        if step_up:
            # inviting a dashboard_admin is a step-up action (issue 28)
            StepUp(self.page).wait_open().confirm()
        self.page.locator("#shown-value").wait_for()
        return self.page.locator("#shown-value").inner_text()

    def set_role(self, email, role):
        row = self.row(email)
        row.locator("select[name=role]").select_option(role)
        row.locator("button:has-text('Set role')").click()

    def unlock(self, email):
        self.row(email).locator("button:has-text('Unlock')").click()

    def revoke_sessions(self, email):
        self.row(email).locator("button:has-text('Revoke sessions')").click()

    def delete(self, email):
        row = self.row(email)
        row.locator("input[name=confirm]").fill(email)
        row.locator("button:has-text('Delete')").click()

    def notice(self):
        self.page.locator(".notice").wait_for()
        return self.page.locator(".notice").inner_text()

    def form_error(self):
        self.page.locator("#form-error:not(:empty)").wait_for()
        return self.page.locator("#form-error").inner_text()


class SettingsPage:
    def __init__(self, page):
        self.page = page

    def open(self):
        self.page.goto("/admin/settings")
        return self

    def form(self, key):
        return self.page.locator(f"#setting-{key.replace('.', '-')}")

    def save(self, key, value):
        f = self.form(key)
        f.locator("input[name=value]").fill(value)
        f.locator("button:has-text('Save')").click()

    def posture(self):
        return self.page.locator("#posture").inner_text()


class AuditPage:
    def __init__(self, page):
        self.page = page

    def open(self, **q):
        from urllib.parse import urlencode
        self.page.goto("/admin/audit" + ("?" + urlencode(q) if q else ""))
        return self

    def ids(self):
        return [int(x) for x in self.page.locator("#audit tbody tr[data-id]").evaluate_all("rs => rs.map(r => r.dataset.id)")]

    def verify(self):
        self.page.click("#chain button")
        self.page.locator("#chain [data-chain]").wait_for()
        return self.page.locator("#chain").inner_text()


class AnalyticsPage:
    def __init__(self, page):
        self.page = page

    def open(self):
        self.page.goto("/admin/analytics")
        return self

    def total_connections(self):
        return int(self.page.locator("#total-connections").inner_text())


def forged_post(page, path, fields):
    """A POST made by script in the signed-in page (same origin, the session's
    CSRF token): what a viewer could send without the buttons. Returns the status."""
    return page.evaluate(
        """async ([path, fields]) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const r = await fetch(path, {method: 'POST', headers: {'X-CSRF-Token': token,
                'Content-Type': 'application/x-www-form-urlencoded'}, body: new URLSearchParams(fields)});
            return r.status;
        }""",
        [path, fields],
    )


def allow_refusals(page):
    """The test expects refused requests (4xx): not a page fault."""
    page.watch.problems[:] = [p for p in page.watch.problems
                              if "the server responded with a status of 4" not in p
                              and "Response Status Error Code 4" not in p]
