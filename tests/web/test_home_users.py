"""Issue 30, items 5 and 6 in a real browser: the home page's instance at a
glance (one extension call, a server-built SVG sparkline, each tile linking to
its section; the page fixture fails on any CSP violation), and the Users list
enriched from the metadata, hostile metadata rendered as text."""
import json

import pytest

from conftest import SetupPage

HOSTILE = '<img src=x onerror="document.title=\'pwned\'">Eve'


@pytest.fixture
def signed_in(page, su):
    for i in range(3):
        su.execute("SELECT dashboard.invite_user(%s)", (f"user{i}@example.com",))
    su.execute("UPDATE auth.users SET created_at = now() - interval '10 days' WHERE email = 'user0@example.com'")
    su.execute("""INSERT INTO auth.users (email, raw_user_meta_data, raw_app_meta_data, last_sign_in_at, banned_until)
                  VALUES ('eve@example.com', %s, %s, now() - interval '1 hour', now() + interval '10 days')""",
               (json.dumps({"full_name": HOSTILE, "avatar_url": "javascript:alert(1)"}),
                json.dumps({"provider": "email", "providers": ["email", "github"]})))
    su.execute("""INSERT INTO auth.users (email, raw_user_meta_data)
                  VALUES ('ada@example.com', '{"name": "Ada Lovelace", "avatar_url": "https://example.com/a.png"}')""")
    SetupPage(page).open().create()
    page.wait_for_url("**/admin")
    return page


def test_home_shows_the_instance_at_a_glance(signed_in):
    page = signed_in
    page.goto("/admin")
    tiles = page.locator("#overview")
    users = tiles.locator("[data-tile='users']")
    assert "5" in users.locator(".tile-value").inner_text()
    assert "4 new in 7 days" in users.inner_text()
    points = users.locator("svg.spark polyline").get_attribute("points").split()
    assert len(points) == 14
    assert "sign-ups per day" in users.locator("svg.spark").get_attribute("aria-label")
    assert tiles.locator("[data-tile='sessions'] .tile-value").inner_text().strip() == "1"
    assert tiles.locator("[data-tile='2fa'] .tile-value").inner_text().strip() == "1"
    assert tiles.locator("[data-tile='connections'] .tile-value").inner_text().count("/") == 1
    for tile, href in [("users", "/admin/users"), ("database", "/admin/analytics"), ("chain", "/admin/audit"),
                       ("2fa", "/admin/admins")]:
        assert tiles.locator(f"[data-tile='{tile}'] a").get_attribute("href") == href
    assert page.locator("#recent-audit tbody tr").count() >= 1
    page.click("[data-tile='users'] a")
    page.wait_for_url("**/admin/users")


def test_users_show_name_initials_providers_and_banned_hostile_as_text(signed_in):
    page = signed_in
    page.goto("/admin/users")
    eve = page.locator("tr", has=page.locator("a:text-is('eve@example.com')"))
    assert HOSTILE in eve.locator(".user-name").inner_text()
    assert eve.locator("img").count() == 0 and page.title() != "pwned"
    assert "email, github" in eve.inner_text()
    assert eve.locator(".badge.banned").count() == 1
    ada = page.locator("tr", has=page.locator("a:text-is('ada@example.com')"))
    assert ada.locator(".user-name").inner_text() == "Ada Lovelace"
    assert ada.locator(".avatar").inner_text() == "AL"
