"""The Users list's filters, sort and paging (kept in the URL), its sessions
column and hostile emails; the Admins page's locked state, unlocked by an
admin after step-up, read-only for a viewer (issue 20)."""
import uuid
from urllib.parse import parse_qs, urlparse

from conftest import PASSWORD, LoginPage
from section_pages import AdminsPage, StepUp, UsersPage, allow_refusals, forged_post, sign_in, sign_in_first_admin

HOSTILE_EMAILS = ["{{7*7}}&lt&x@example.com", "%3cscript%3e@example.com", "a&gt&amp@example.com"]


def one(conn, sql, params=()):
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def uid(n):
    return f"00000000-0000-4000-8000-{n:012d}"


def seed(su, n=56):
    """n users: every third unconfirmed, roles anon/authenticated, created_at in
    groups of eight equal times (ties), every fourth never signed in."""
    for i in range(1, n + 1):
        su.execute(
            "INSERT INTO auth.users (id, email, role, created_at, last_sign_in_at, email_confirmed_at)"
            " VALUES (%s, %s, %s, '2026-01-01'::timestamptz + %s * interval '1 day',"
            " CASE WHEN %s THEN NULL ELSE '2026-02-01'::timestamptz + %s * interval '1 minute' END,"
            " CASE WHEN %s THEN now() END)",
            (uid(i), f"person{i:03d}@example.com", "anon" if i % 5 == 0 else "authenticated", i // 8,
             i % 4 == 0, i, i % 3 != 0))


def db_ids(su, where="true", order="email"):
    return [str(r[0]) for r in su.execute(f"SELECT id FROM auth.users WHERE {where} ORDER BY {order}").fetchall()]


def test_users_filters_sort_and_paging_live_in_the_url(page, db):
    su = db.conn()
    seed(su)
    sign_in_first_admin(page)
    users = UsersPage(page).open()
    # Unconfirmed, newest first: ties in created_at broken by id, same direction.
    users.filter(confirmed="no", sort="created_at", direction="desc")
    page.wait_for_url("**/admin/users?*dir=desc*")
    q = parse_qs(urlparse(page.url).query)
    assert q["confirmed"] == ["no"] and q["sort"] == ["created_at"] and q["dir"] == ["desc"]
    want = db_ids(su, "confirmed_at IS NULL", "created_at DESC, id DESC")
    assert len(want) == 18
    assert users.ids() == want
    # Bookmarkable: the same address shows the same list with the controls set.
    bookmarked = page.url
    page.goto("/admin")
    page.goto(bookmarked)
    assert users.ids() == want
    assert page.locator("select[name=confirmed]").input_value() == "no"
    assert page.locator("select[name=sort]").input_value() == "created_at"
    assert page.locator("select[name=dir]").input_value() == "desc"
    # Role filter, by last sign-in ascending (never signed in last).
    users.filter(role="anon", sort="last_sign_in_at")
    page.wait_for_url("**/admin/users?*role=anon*")
    assert users.ids() == db_ids(su, "role = 'anon'", "last_sign_in_at ASC NULLS LAST, id")
    # Keyset paging over all 56 in created_at order (50 a page): every user
    # once, across a tie group that spans the page boundary, filters kept.
    users.filter(sort="created_at")
    page.wait_for_url("**/admin/users?*sort=created_at*")
    first = users.ids()
    assert len(first) == 50
    page.click("#next-page")
    page.wait_for_url("**after=*")
    q = parse_qs(urlparse(page.url).query)
    assert q["sort"] == ["created_at"] and q["dir"] == ["asc"]
    second = users.ids()
    assert first + second == db_ids(su, order="created_at, id")
    assert page.locator("#next-page").count() == 0
    # A tampered cursor or an unknown sort is the database's clear refusal.
    page.goto("/admin/users?sort=password")
    assert "unknown sort" in page.locator("body").inner_text()
    allow_refusals(page)


def test_users_sessions_column_and_hostile_emails_as_text(page, db):
    su = db.conn()
    ids = [str(one(su, "INSERT INTO auth.users (email) VALUES (%s) RETURNING id", (e,))) for e in HOSTILE_EMAILS]
    sign_in_first_admin(page)
    users = UsersPage(page).open()
    text = page.locator("#users").inner_text()
    for e in HOSTILE_EMAILS:
        assert e in text
    # No auth.sessions table here: unknown, not zero.
    assert page.locator(f"#users tr[data-user='{ids[0]}'] td.sessions").inner_text().strip() == "—"
    # With an auth server's sessions table (GoTrue's shape), live ones counted;
    # a live impersonation shows too.
    su.execute("CREATE TABLE auth.sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
               " user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE, not_after timestamptz)")
    su.execute("INSERT INTO auth.sessions (user_id, not_after) VALUES (%s, NULL), (%s, now() + interval '1 day'),"
               " (%s, now() - interval '1 day')", (ids[0], ids[0], ids[0]))
    su.execute("SELECT dashboard.start_impersonation(%s, 'ticket 7')", (ids[1],))
    users.open()
    assert page.locator(f"#users tr[data-user='{ids[0]}'] td.sessions").inner_text().strip() == "2"
    assert "1 impersonated" in page.locator(f"#users tr[data-user='{ids[1]}'] td.sessions").inner_text()
    # A hostile search is shown back as text in the search box, not as markup.
    hostile = '"><script>alert(1)</script>'
    users.search(hostile)
    page.wait_for_url("**/admin/users?q=*")
    assert page.locator("input[name=q]").input_value() == hostile
    assert page.locator("main script").count() == 0


def test_admins_locked_by_failed_logins_then_unlocked_with_step_up(page, db):
    su = db.conn()
    web = db.conn("fb_web")
    sign_in_first_admin(page)
    other = one(su, "SELECT dashboard_auth.create_admin('locked@example.com', %s, 'Lou Locked', 'dashboard_admin')",
                (PASSWORD,))
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Vera', 'dashboard_viewer')", (PASSWORD,))
    su.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '3')")
    # Failed logins through the login page (another browser).
    ctx = page.context.browser.new_context(base_url=page.server.url)
    intruder = ctx.new_page()
    for _ in range(3):
        LoginPage(intruder).open().login(email="locked@example.com", password="a wrong password!")
        intruder.locator(".error:not(:empty)").first.wait_for()
    ctx.close()
    assert one(web, "SELECT status FROM dashboard_auth.login('locked@example.com', %s)", (PASSWORD,)) == "locked"
    admins = AdminsPage(page).open()
    assert "locked until" in admins.row("locked@example.com").locator("td.locked").inner_text()
    assert "locked until" not in admins.row("root@example.com").locator("td.locked").inner_text()
    admins.unlock("locked@example.com")
    StepUp(page).wait_open().confirm()
    page.locator(".notice:has-text('Admin unlocked')").wait_for()
    assert admins.row("locked@example.com").locator("td.locked").inner_text().strip() == "no"
    assert admins.row("locked@example.com").locator("button:has-text('Unlock')").count() == 0
    assert one(web, "SELECT status FROM dashboard_auth.login('locked@example.com', %s)", (PASSWORD,)) == "ok"
    assert su.execute(
        "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'admin.unlock' AND actor = 'root@example.com'"
        " AND target_id = %s AND success", (str(other),)).fetchone()[0] == 1
    # A viewer sees the locked state, has no button, and a forged POST is refused.
    for _ in range(3):
        web.execute("SELECT dashboard_auth.login('locked@example.com', 'wrong again, sorry')")
    page.click(".topbar button:has-text('Sign out')")
    page.wait_for_url("**/admin/login*")
    sign_in(page, "viewer@example.com")
    admins.open()
    assert "locked until" in admins.row("locked@example.com").locator("td.locked").inner_text()
    assert page.locator("#admins button:has-text('Unlock')").count() == 0
    assert forged_post(page, f"/admin/admins/{other}/unlock", {}) == 403
    assert one(web, "SELECT status FROM dashboard_auth.login('locked@example.com', %s)", (PASSWORD,)) == "locked"
    allow_refusals(page)


def test_admin_invitation_link_creates_the_account(page, db):
    su = db.conn()
    sign_in_first_admin(page)
    admins = AdminsPage(page).open()
    token = admins.invite("new.admin@example.com", "dashboard_admin", step_up=True)
    link = page.locator("#invite-link").inner_text().strip()
    assert link.endswith("/admin/invitation#token=" + token)
    page.click(".topbar button:has-text('Sign out')")
    page.wait_for_url("**/admin/login*")
    page.goto(link)
    # The token came from the fragment, which then left the address.
    assert page.locator("input[name=token]").input_value() == token
    assert "#" not in page.url
    page.fill("input[name=full_name]", "Nina New")
    page.fill("input[name=password]", "aaaaaaaaaaaaaaaa")
    page.click("button:has-text('Create my account')")
    assert "different characters" in page.locator("#form-error").inner_text()
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Create my account')")
    page.wait_for_url("**/admin/login?reason=invited")
    assert one(su, "SELECT role FROM dashboard_auth.users WHERE email = 'new.admin@example.com'") == "dashboard_admin"
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'invitation.accept' AND success") == 1
    sign_in(page, "new.admin@example.com")
    # A used token is refused, with the database's reason on the form.
    page.click(".topbar button:has-text('Sign out')")
    page.wait_for_url("**/admin/login*")
    page.goto(link)
    page.fill("input[name=full_name]", "Mallory")
    page.fill("input[name=password]", PASSWORD + "x")
    page.click("button:has-text('Create my account')")
    assert "already been used" in page.locator("#form-error").inner_text()
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 2
    allow_refusals(page)
