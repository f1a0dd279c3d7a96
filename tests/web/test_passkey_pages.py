"""Passkeys in the browser (issue 33): Chromium's virtual authenticator
(DevTools protocol, WebAuthn domain) plays the platform authenticator; the
database verifies every ceremony. WebAuthn needs a secure context:
http://localhost is one, so the relying party is `localhost` and the origin
the test server's http://localhost:PORT."""
from psycopg.types.json import Jsonb

from conftest import PASSWORD, SHOTS, AccountPage, LoginPage, SetupPage, Shell
from section_pages import StepUp

# A browser without conditional mediation (autofill) for passkeys.
NO_CONDITIONAL_UI = "if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);"

HOSTILE = '<img src=x onerror="alert(1)">&amp;\'"'


class Authenticator:
    """A virtual CTAP2 platform authenticator with resident keys and user
    verification, in this page's browser context."""

    def __init__(self, page, uv=True):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.id = self.add(uv)

    def add(self, uv=True):
        options = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                   "hasUserVerification": True, "isUserVerified": uv, "automaticPresenceSimulation": True}
        return self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]

    def replace(self):
        """A fresh authenticator in place of the current one (a second device)."""
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.id})
        self.id = self.add()

    def credentials(self):
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def user_verified(self, on):
        self.cdp.send("WebAuthn.setUserVerified", {"authenticatorId": self.id, "isUserVerified": on})


def configure(su, server, origin=None, passwordless=False):
    su.execute("SELECT dashboard_auth.set_setting('webauthn.rp_id', %s)", (Jsonb("localhost"),))
    su.execute("SELECT dashboard_auth.set_setting('webauthn.origins', %s)", (Jsonb([origin or server.url]),))
    if passwordless:
        su.execute("SELECT dashboard_auth.set_setting('auth.passwordless', 'true')")


def signed_up(page):
    SetupPage(page).open().create()
    page.wait_for_url("**/admin")


def add_passkey(page, name="Laptop"):
    AccountPage(page).open()
    page.fill("#passkey-add input[name=name]", name)
    page.click("#passkey-add button:has-text('Add a passkey')")
    page.locator("#passkeys [data-passkey-status]:has-text('Passkey added')").wait_for()
    return page.locator("#passkey-list tbody tr", has=page.locator("td.passkey-name", has_text=name))


def names(page):
    return page.locator("#passkey-list td.passkey-name").all_inner_texts()


def status(page):
    out = page.locator("[data-passkey-status]:visible")
    out.wait_for()
    return out.inner_text()


def audit(su, action):
    return su.execute(
        "SELECT success, details FROM dashboard_auth.audit_log WHERE action = %s ORDER BY id", (action,)
    ).fetchall()


def test_account_says_what_to_set_while_passkeys_are_unset(page, su):
    signed_up(page)
    AccountPage(page).open()
    hint = page.locator("#passkeys-unset")
    port = page.server.port
    # The server listens on 127.0.0.1: the hint names localhost (an IP
    # address cannot be a relying party id).
    assert '"localhost"' in hint.inner_text()
    assert f'["http://localhost:{port}"]' in hint.inner_text()
    # Adding one now is refused by the database, in words, on the page.
    page.click("#passkey-add button:has-text('Add a passkey')")
    assert "webauthn.rp_id" in status(page)
    configure(su, page.server)
    AccountPage(page).open()
    assert page.locator("#passkeys-unset").count() == 0
    assert page.locator("#passkeys-none").is_visible()


def test_register_then_sign_in_with_password_and_passkey(page, su):
    auth = Authenticator(page)
    signed_up(page)
    configure(su, page.server)
    row = add_passkey(page, "Laptop")
    assert row.locator("td").nth(2).inner_text() == "never"
    [cred] = auth.credentials()
    assert cred["isResidentCredential"] and cred["rpId"] == "localhost"
    [(ok, details)] = audit(su, "passkey.register")
    assert ok and details["name"] == "Laptop"
    page.screenshot(path=str(SHOTS / "passkeys-account.png"), full_page=True)
    Shell(page).sign_out()

    login = LoginPage(page)
    login.login()
    page.wait_for_url("**/admin/login/2fa")
    button = page.locator("button:has-text('Use your passkey')")
    button.wait_for()
    # TOTP is still offered beside it (mfa.phishing_resistant_required is off).
    assert page.locator("input[autocomplete=one-time-code]").count() == 1
    page.screenshot(path=str(SHOTS / "passkeys-2fa.png"), full_page=True)
    button.click()
    page.wait_for_url("**/admin")
    ok, details = audit(su, "login.success")[-1]
    assert ok and details["method"] == "passkey" and details["detail"]["mfa"] == "passkey"
    AccountPage(page).open()
    assert row.locator("td").nth(2).inner_text() != "never"


def test_phishing_resistant_hides_the_code_field(page, su):
    Authenticator(page)
    signed_up(page)
    configure(su, page.server)
    add_passkey(page)
    su.execute("SELECT dashboard_auth.set_setting('mfa.phishing_resistant_required', 'true')")
    Shell(page).sign_out()
    LoginPage(page).login()
    page.wait_for_url("**/admin/login/2fa")
    page.locator("button:has-text('Use your passkey')").wait_for()
    assert page.locator("input[autocomplete=one-time-code]").count() == 0
    assert page.locator("label:has-text('Backup code') input[name=code]").count() == 1
    page.click("button:has-text('Use your passkey')")
    page.wait_for_url("**/admin")


def test_passwordless_sign_in(page, su):
    auth = Authenticator(page)
    signed_up(page)
    configure(su, page.server)
    add_passkey(page)
    Shell(page).sign_out()
    # Off: the sign-in page offers no passkey.
    LoginPage(page).open()
    assert page.locator("[data-passkey-login]").count() == 0
    assert page.locator("input[name=email]").get_attribute("autocomplete") == "username"

    su.execute("SELECT dashboard_auth.set_setting('auth.passwordless', 'true')")
    # Conditional UI: the page asks at once with mediation "conditional" (the
    # autofill); the virtual authenticator picks its passkey by itself.
    LoginPage(page).open()
    page.wait_for_url("**/admin")
    assert "Root Admin" in Shell(page).who()
    # A browser without conditional UI: the button.
    page.context.add_init_script(NO_CONDITIONAL_UI)
    Shell(page).sign_out()
    page.wait_for_url("**/admin/login**")
    assert page.locator("input[name=email]").get_attribute("autocomplete") == "username webauthn"
    page.locator("button:has-text('Sign in with a passkey')").wait_for()
    page.screenshot(path=str(SHOTS / "passkeys-sign-in.png"), full_page=True)
    page.click("button:has-text('Sign in with a passkey')")
    page.wait_for_url("**/admin")
    assert "Root Admin" in Shell(page).who()
    successes = [d for ok, d in audit(su, "login.success") if ok and d.get("method") == "passkey"]
    assert len(successes) == 2 and all("mfa" not in d["detail"] for d in successes)
    assert auth.credentials()[0]["signCount"] >= 2


def test_step_up_with_a_passkey_removes_another(page, su):
    auth = Authenticator(page)
    signed_up(page)
    configure(su, page.server)
    add_passkey(page, "Laptop")
    auth.replace()
    add_passkey(page, "Phone")
    assert names(page) == ["Laptop", "Phone"]

    page.watch.accept_confirm = True
    page.locator("#passkey-list tr", has_text="Laptop").locator("button:has-text('Remove')").click()
    step = StepUp(page).wait_open()
    use = step.dialog.locator("button:has-text('Use a passkey')")
    use.wait_for()
    page.screenshot(path=str(SHOTS / "passkeys-reauth.png"), full_page=True)
    use.click()
    page.locator("#passkeys [role=alert]:has-text('Passkey removed')").wait_for()
    assert names(page) == ["Phone"]
    [(ok, details)] = audit(su, "passkey.remove")
    assert ok and details["name"] == "Laptop"
    ok, details = audit(su, "session.reauth")[-1]
    assert ok and details["method"] == "passkey"


def test_a_removed_passkey_is_refused(page, su):
    auth = Authenticator(page)
    page.context.add_init_script(NO_CONDITIONAL_UI)
    signed_up(page)
    configure(su, page.server, passwordless=True)
    add_passkey(page, "Laptop")
    page.watch.accept_confirm = True
    page.locator("#passkey-list tr", has_text="Laptop").locator("button:has-text('Remove')").click()
    StepUp(page).wait_open().confirm(PASSWORD)
    page.locator("#passkeys [role=alert]:has-text('Passkey removed')").wait_for()
    assert page.locator("#passkeys-none").is_visible()
    assert len(auth.credentials()) == 1  # still in the authenticator
    Shell(page).sign_out()

    LoginPage(page).open()
    page.click("button:has-text('Sign in with a passkey')")
    assert "not accepted" in status(page)
    assert "/admin/login" in page.url
    assert audit(su, "login.failed")[-1][1]["detail"]["reason"] == "unknown_or_removed_passkey"


def test_a_wrong_origin_is_refused(page, su):
    Authenticator(page)
    signed_up(page)
    configure(su, page.server)
    add_passkey(page)
    # The dashboard now accepts passkeys only from another origin.
    su.execute("SELECT dashboard_auth.set_setting('webauthn.origins', %s)", (Jsonb(["http://localhost:1"]),))
    Shell(page).sign_out()
    LoginPage(page).login()
    page.wait_for_url("**/admin/login/2fa")
    page.click("button:has-text('Use your passkey')")
    assert "not accepted" in status(page)
    assert "/admin/login/2fa" in page.url
    reasons = [d["detail"]["reason"] for ok, d in audit(su, "login.mfa_failed")]
    assert reasons[-1] == "wrong_origin", reasons


def test_user_verification_off_is_refused(page, su):
    auth = Authenticator(page)
    signed_up(page)
    configure(su, page.server)
    add_passkey(page)
    Shell(page).sign_out()
    auth.user_verified(False)
    LoginPage(page).login()
    page.wait_for_url("**/admin/login/2fa")
    page.click("button:has-text('Use your passkey')")
    status(page)
    assert "/admin/login/2fa" in page.url
    assert not [d for ok, d in audit(su, "login.success") if d.get("method") == "passkey"]


def test_hostile_passkey_names_render_as_text_and_rename(page, su):
    Authenticator(page)
    signed_up(page)
    configure(su, page.server)
    row = add_passkey(page, HOSTILE)
    assert names(page) == [HOSTILE]
    assert page.locator("#passkey-list img").count() == 0
    row.locator("input[name=name]").fill("Work laptop")
    row.locator("button:has-text('Rename')").click()
    page.locator("#passkeys [role=alert]:has-text('Passkey renamed')").wait_for()
    assert names(page) == ["Work laptop"]
    [(ok, details)] = audit(su, "passkey.rename")
    assert details["old"] == HOSTILE and details["new"] == "Work laptop"
    # An empty name is refused by the database, shown by the card.
    row = page.locator("#passkey-list tbody tr").first
    row.locator("input[name=name]").evaluate("e => { e.removeAttribute('required'); e.value = '   '; }")
    row.locator("button:has-text('Rename')").click()
    page.locator("#passkeys p.error[role=alert]").wait_for()
    assert names(page) == ["Work laptop"]
