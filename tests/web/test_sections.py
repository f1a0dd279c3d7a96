"""The Users, Admins, Settings, Audit and Analytics sections in Chromium:
each action done in the page, checked in the database, found in the audit
trail under the admin; step-up re-authentication prompts and then succeeds;
a viewer can do nothing, not even by a forged POST; hostile values render as
text; analytics shows what pg_stat_activity / pg_stat_statements hold."""
import re

from conftest import PASSWORD
from section_pages import (AdminsPage, AnalyticsPage, AuditPage, SettingsPage, StepUp, UserPage,
                           UsersPage, allow_refusals, forged_post, sign_in, sign_in_first_admin)

HOSTILE = "<script>alert(1)</script>"


def one(conn, sql, params=()):
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def audited(conn, action, admin_email="root@example.com"):
    """The audit entries of `action` made by the admin (actor and actor_id)."""
    return conn.execute(
        "SELECT a.id FROM dashboard_auth.audit_log a JOIN dashboard_auth.users u ON u.id = a.actor_id "
        "WHERE a.action = %s AND a.actor = %s AND u.email = %s AND a.success",
        (action, admin_email, admin_email)).fetchall()


def test_users_invite_search_reset_role_delete(page, db):
    su = db.conn()
    su.execute("SELECT dashboard.invite_user('hostile@example.com', 'authenticated', %s::jsonb)",
               ('{"name": "%s"}' % HOSTILE,))
    sign_in_first_admin(page)
    users = UsersPage(page).open()
    token = users.invite("new.user@example.com")
    assert len(token) > 30
    uid = one(su, "SELECT id FROM auth.users WHERE email = 'new.user@example.com'")
    assert uid is not None
    assert audited(su, "app_user.invite")
    # Shown once: a reload does not show it again.
    users.open()
    assert page.locator("#shown-value").count() == 0
    assert users.rows().count() == 2
    users.search("new.u")
    page.wait_for_url("**/admin/users?q=new.u*")
    assert users.rows().count() == 1
    # Hostile metadata is text, not markup.
    UserPage(page).open(one(su, "SELECT id FROM auth.users WHERE email = 'hostile@example.com'"))
    assert HOSTILE in page.locator("pre.json").nth(1).inner_text()
    assert page.locator("main script").count() == 0
    user = UserPage(page).open(uid)
    user.reset_password()
    page.locator("#shown-value").wait_for()
    assert one(su, "SELECT recovery_token_digest IS NOT NULL FROM auth.users WHERE id = %s", (uid,))
    assert audited(su, "app_user.password_reset")
    # Change role: a step-up action; the database asks, the dialog appears.
    su.execute("DO $$ BEGIN CREATE ROLE app_editor NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    su.execute("GRANT app_editor TO fluxbase_impersonator")
    user.change_role("app_editor")
    StepUp(page).wait_open().confirm()
    page.locator(".notice:has-text('Role changed')").wait_for()
    assert one(su, "SELECT role FROM auth.users WHERE id = %s", (uid,)) == "app_editor"
    assert audited(su, "app_user.role_change")
    assert audited(su, "session.reauth")
    assert page.locator("a:has-text('View data as this user')").get_attribute("href") == f"/admin/tables?view_as={uid}"
    # Delete needs the typed confirmation (the button stays disabled until then).
    assert page.locator("button:has-text('Delete user')").is_disabled()
    user.delete("new.user@example.com")
    page.wait_for_url("**/admin/users?deleted=1")
    assert one(su, "SELECT count(*) FROM auth.users WHERE id = %s", (uid,)) == 0
    assert audited(su, "app_user.delete")


def test_stepup_wrong_secret_then_right(page, db):
    su = db.conn()
    uid = one(su, "SELECT user_id FROM dashboard.invite_user('x@example.com')")
    sign_in_first_admin(page)
    user = UserPage(page).open(uid)
    user.delete("x@example.com")
    step = StepUp(page).wait_open()
    step.confirm("not-my-password")
    assert "not right" in step.error()
    assert one(su, "SELECT count(*) FROM auth.users WHERE id = %s", (uid,)) == 1
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'session.reauth' AND NOT success") == 1
    step.confirm(PASSWORD)
    page.wait_for_url("**/admin/users?deleted=1")
    assert one(su, "SELECT count(*) FROM auth.users WHERE id = %s", (uid,)) == 0


def test_admins_invite_revoke_role_sessions_delete_and_last_admin(page, db):
    su = db.conn()
    sign_in_first_admin(page)
    other = one(su, "SELECT dashboard_auth.create_admin('second@example.com', %s, %s, 'dashboard_viewer')",
                (PASSWORD, HOSTILE))
    su.execute("SELECT * FROM dashboard_auth.login('second@example.com', %s)", (PASSWORD,))
    admins = AdminsPage(page).open()
    # The hostile name is shown as text.
    assert HOSTILE in admins.row("second@example.com").inner_text()
    # Inviting a dashboard_admin: step-up (issue 28).
    token = admins.invite("third@example.com", "dashboard_admin", step_up=True)
    assert len(token) > 30
    assert one(su, "SELECT role FROM dashboard_auth.invitations WHERE email = 'third@example.com'") == "dashboard_admin"
    assert audited(su, "invitation.create")
    page.click("#invitations button:has-text('Revoke')")
    admins.page.locator(".notice:has-text('Invitation revoked')").wait_for()
    assert one(su, "SELECT revoked_at IS NOT NULL FROM dashboard_auth.invitations WHERE email = 'third@example.com'")
    assert audited(su, "invitation.revoke")
    # Revoke all of another admin's sessions: step-up, already given for the
    # invitation above (within session.reauth_window).
    admins.revoke_sessions("second@example.com")
    page.locator(".notice:has-text('session(s) revoked')").wait_for()
    assert one(su, "SELECT count(*) FROM dashboard_auth.sessions WHERE user_id = %s AND revoked_at IS NULL", (other,)) == 0
    assert audited(su, "session.revoke_all")
    admins.set_role("second@example.com", "dashboard_admin")
    page.locator(".notice:has-text('Role changed')").wait_for()
    assert one(su, "SELECT role FROM dashboard_auth.users WHERE id = %s", (other,)) == "dashboard_admin"
    assert audited(su, "admin.role_change")
    admins.delete("second@example.com")
    page.locator(".notice:has-text('Admin deleted')").wait_for()
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE id = %s", (other,)) == 0
    assert audited(su, "admin.delete")
    # The last admin: the database's guard, shown by the form.
    admins.delete("root@example.com")
    assert "last dashboard_admin" in admins.form_error()
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 1
    allow_refusals(page)


def test_viewer_is_read_only_and_forged_posts_are_refused(page, db):
    su = db.conn()
    sign_in_first_admin(page)
    root = one(su, "SELECT id FROM dashboard_auth.users WHERE email = 'root@example.com'")
    uid = one(su, "SELECT user_id FROM dashboard.invite_user('victim@example.com')")
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Vera Viewer', 'dashboard_viewer')", (PASSWORD,))
    page.click(".topbar button:has-text('Sign out')")
    page.wait_for_url("**/admin/login*")
    sign_in(page, "viewer@example.com")
    UsersPage(page).open()
    assert page.locator("summary:has-text('Invite')").count() == 0
    UserPage(page).open(uid)
    assert page.locator("main form[method=post]").count() == 0
    AdminsPage(page).open()
    assert page.locator("#admins button, #invitations button, form[action='/admin/admins/invite']").count() == 0
    SettingsPage(page).open()
    assert page.locator("form.setting button").count() == 0
    before = one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE success")
    for path, fields in [
        ("/admin/users/invite", {"email": "evil@example.com", "role": "authenticated"}),
        (f"/admin/users/{uid}/role", {"role": "service_role"}),
        (f"/admin/users/{uid}/reset", {}),
        (f"/admin/users/{uid}/delete", {"confirm": "victim@example.com"}),
        ("/admin/admins/invite", {"email": "evil@example.com", "role": "dashboard_admin"}),
        (f"/admin/admins/{root}/role", {"role": "dashboard_viewer"}),
        (f"/admin/admins/{root}/delete", {}),
        (f"/admin/admins/{root}/revoke-all", {}),
        (f"/admin/admins/{root}/unlock", {}),
        ("/admin/settings/save", {"key": "lockout.max_attempts", "kind": "integer", "value": "100"}),
    ]:
        assert forged_post(page, path, fields) == 403, path
    assert one(su, "SELECT count(*) FROM auth.users") == 1
    assert one(su, "SELECT role FROM auth.users WHERE id = %s", (uid,)) == "authenticated"
    assert one(su, "SELECT role FROM dashboard_auth.users WHERE id = %s", (root,)) == "dashboard_admin"
    assert one(su, "SELECT count(*) FROM dashboard_auth.invitations") == 0
    assert one(su, "SELECT dashboard_auth.get_setting('lockout.max_attempts')") == 5
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE success") == before
    allow_refusals(page)


def test_settings_typed_fields_bounds_and_posture(page, db):
    su = db.conn()
    sign_in_first_admin(page)
    settings = SettingsPage(page).open()
    assert "0 of 1" in settings.posture()
    assert settings.form("lockout.max_attempts").locator("input[type=number]").count() == 1
    assert settings.form("mfa.required").locator("input[type=checkbox]").count() == 1
    assert "Default 30 minutes" in settings.form("session.idle_timeout").inner_text()
    settings.save("session.idle_timeout", "45 minutes")
    StepUp(page).wait_open().confirm()
    page.locator(".notice:has-text('Saved session.idle_timeout')").wait_for()
    assert one(su, "SELECT dashboard_auth.get_setting('session.idle_timeout')") == "45 minutes"
    assert audited(su, "settings.update")
    assert "45 minutes" in settings.posture()
    settings.save("session.idle_timeout", "1 second")
    page.locator("#form-error:not(:empty)").wait_for()
    assert "session.idle_timeout" in page.locator("#form-error").inner_text()
    assert one(su, "SELECT dashboard_auth.get_setting('session.idle_timeout')") == "45 minutes"
    allow_refusals(page)


def test_audit_search_entry_chain_and_csv(page, db):
    su = db.conn()
    sign_in_first_admin(page)
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, body text)")
    su.execute("SELECT dashboard.enable_audit('public.notes')")
    su.execute("INSERT INTO public.notes VALUES (1, 'hello row')")
    su.execute("SELECT dashboard.invite_user('a1@example.com')")
    audit = AuditPage(page).open()
    ids = audit.ids()
    assert ids == sorted(ids, reverse=True) and len(ids) >= 3
    audit.open(action="app_user.")
    assert len(audit.ids()) == 1
    audit.open(actor="root@example.com")
    assert audit.ids() and all(
        one(su, "SELECT actor FROM dashboard_auth.audit_log WHERE id = %s", (i,)) == "root@example.com" for i in audit.ids())
    row_id = one(su, "SELECT max(id) FROM dashboard_auth.audit_log WHERE action LIKE %s", ("row.%",))
    page.goto(f"/admin/audit/entry/{row_id}")
    assert "hello row" in page.locator("pre.row-image").first.inner_text()
    audit.open()
    assert "intact" in audit.verify()
    csv = page.evaluate("async () => (await fetch('/admin/audit/export.csv?action=app_user.')).text()")
    lines = csv.strip().splitlines()
    assert lines[0].startswith("id,occurred_at,actor,action") and len(lines) == 2 and "app_user.invite" in lines[1]
    # Break the chain as a superuser with the triggers off: shown at that id.
    bad = one(su, "SELECT min(id) FROM dashboard_auth.audit_log WHERE action = 'app_user.invite'")
    su.execute("ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER ALL")
    su.execute("UPDATE dashboard_auth.audit_log SET actor = 'someone-else' WHERE id = %s", (bad,))
    su.execute("ALTER TABLE dashboard_auth.audit_log ENABLE TRIGGER ALL")
    audit.open()
    text = audit.verify()
    assert "BROKEN" in text and str(bad) in text
    assert page.locator("[data-first-bad]").get_attribute("data-first-bad") == str(bad)


def test_analytics_matches_pg_stat_activity_and_statements(page, db):
    su = db.conn()
    # Other roles' connections are visible to the server's login with
    # pg_read_all_stats (README: a deployment grants it); revoked at the end.
    su.execute("GRANT pg_read_all_stats TO fb_web")
    try:
        analytics_checks(page, db, su)
    finally:
        su.execute("REVOKE pg_read_all_stats FROM fb_web")


def analytics_checks(page, db, su):
    sign_in_first_admin(page)
    analytics = AnalyticsPage(page).open()
    assert page.locator("#stats-hint").count() == 1  # pg_stat_statements not installed in this database
    assert "pg_stat_statements" in page.locator("#stats-hint").inner_text()
    shown = analytics.total_connections()
    actual = one(su, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
    assert abs(shown - actual) <= 2, (shown, actual)
    su.execute("CREATE EXTENSION pg_stat_statements")
    web = db.conn("fb_web")  # its own statements' text is visible to the server's login
    for _ in range(2):
        web.execute("SELECT pg_sleep(0.25)")
    analytics.open()
    table = page.locator("#top-queries")
    assert table.count() == 1
    calls = one(su, "SELECT calls FROM pg_stat_statements WHERE query LIKE %s AND dbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())", ("SELECT pg_sleep($1)%",))
    row = table.locator("tr:has-text('SELECT pg_sleep($1)')")
    assert row.count() >= 1 and calls is not None
    assert calls == 2 and row.first.locator("td.num").first.inner_text() == "2"
    page.click("#query-order a:has-text('Calls')")
    page.wait_for_url("**/admin/analytics?order=calls")
    assert page.locator("#query-order .current").inner_text() == "Calls"
    assert page.locator("svg.spark polyline").count() == 6
    assert int(page.locator("#pool-size").inner_text()) >= 1
    # The fragment refreshes by itself: an open connection appears without a reload.
    extra = [db.conn() for _ in range(3)]
    page.wait_for_function(f"() => +document.querySelector('#total-connections').textContent >= {shown + 3}", timeout=12000)
    for c in extra:
        c.close()
