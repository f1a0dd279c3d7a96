"""The Tables section in a real browser: browse, edit inline, View as…,
live updates from psql, and screenshots (normal and narrow width) saved to
target/screenshots/ for people to look at."""
import pathlib
import time

import pytest

from conftest import ROOT, SetupPage

SHOTS = ROOT / "target/screenshots"


class TablesPage:
    """`/admin/tables` and a table's page (Playwright page object)."""

    def __init__(self, page):
        self.page = page

    def open_list(self):
        self.page.goto("/admin/tables")
        return self

    def open_table(self, schema, table, query=""):
        self.page.goto(f"/admin/tables/{schema}/{table}{query}")
        return self

    def row(self, key):
        return self.page.locator(f"#grid tr[data-key='{key}']")

    def cell(self, key, n):
        return self.row(key).locator("td.cell").nth(n)

    def view_as(self, target, reason):
        self.page.click("details.view-as summary")
        self.page.fill("input[name=target]", target)
        self.page.fill("input[name=reason]", reason)
        self.page.click("details.view-as button:has-text('Start')")

    def banner(self):
        return self.page.locator(".imp-banner")

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        for label, size in [("", {"width": 1280, "height": 900}), ("-narrow", {"width": 390, "height": 844})]:
            self.page.set_viewport_size(size)
            self.page.screenshot(path=str(SHOTS / f"{name}{label}.png"), full_page=True)
        self.page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def tables(page, su):
    su.execute("SELECT dashboard.invite_user('alice@example.com')")
    alice = su.execute("SELECT id FROM auth.users WHERE email = 'alice@example.com'").fetchone()[0]
    su.execute("""CREATE TABLE notes (id int PRIMARY KEY, owner uuid, title text, body text, done boolean DEFAULT false,
                                      meta jsonb, n int CHECK (n >= 0))""")
    su.execute("""INSERT INTO notes SELECT g, CASE WHEN g %% 3 = 0 THEN %s::uuid END, 'note ' || g,
                  CASE g %% 4 WHEN 0 THEN NULL WHEN 1 THEN '' ELSE repeat('long text ', 20) END, g %% 2 = 0,
                  jsonb_build_object('g', g), g FROM generate_series(1, 40) g""", (alice,))
    su.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
    su.execute("CREATE POLICY own ON notes TO authenticated USING (owner = auth.uid())")
    su.execute("CREATE POLICY dash ON notes TO fluxbase_dashboard USING (true) WITH CHECK (true)")
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE, TRIGGER ON notes TO fluxbase_dashboard, authenticated")
    SetupPage(page).open().create()
    page.wait_for_url("**/admin")
    return TablesPage(page)


def test_list_browse_and_screenshots(tables, page):
    tables.open_list()
    assert page.locator("a:has-text('notes')").count() == 1
    tables.shot("tables")
    tables.open_table("public", "notes", "?n=25")
    assert page.locator("#grid tr[data-key]").count() == 25
    # NULL and '' look different; long text is cut and expands on click.
    assert page.locator("#grid td .null").count() > 0
    assert page.locator("#grid td .empty").count() > 0
    long = page.locator("#grid details.long").first
    long.locator("summary").click()
    assert long.locator("pre.full").is_visible()
    tables.shot("table")
    page.click("a.next-page")
    page.wait_for_url("**after=**")
    assert tables.row('{"id":"26"}').count() == 1
    page.click("button:has-text('Exact count')")
    page.wait_for_selector(".exact:has-text('exactly 40 rows')")


def test_inline_edit_and_the_databases_error(tables, page, su):
    tables.open_table("public", "notes")
    cell = tables.cell('{"id":"1"}', 6)  # n
    cell.dblclick()
    cell.locator("input[name=value]").fill("-5")
    cell.locator("button:has-text('Save')").click()
    page.wait_for_selector("#grid .cell-error")
    assert "check" in cell.locator(".cell-error").inner_text().lower()
    tables.shot("table-edit-error")
    assert su.execute("SELECT n FROM notes WHERE id = 1").fetchone()[0] == 1
    cell.locator("input[name=value]").fill("77")
    cell.locator("button:has-text('Save')").click()
    page.wait_for_selector("#grid tr[data-key='{\"id\":\"1\"}'] td.cell >> text=77")
    assert su.execute("SELECT n FROM notes WHERE id = 1").fetchone()[0] == 77


def test_view_as_alice_banner_and_stop(tables, page):
    tables.open_table("public", "notes", "?n=100")
    tables.view_as("alice@example.com", "support ticket 7")
    page.wait_for_selector(".imp-banner")
    assert "alice@example.com" in tables.banner().inner_text()
    assert "support ticket 7" in tables.banner().inner_text()
    tables.open_table("public", "notes", "?n=100")
    assert page.locator("#grid tr[data-key]").count() == 13
    tables.shot("table-view-as")
    page.goto("/admin")
    assert tables.banner().count() == 1, "the banner is on every page"
    page.click(".imp-banner button:has-text('Stop')")
    page.wait_for_function("() => !document.querySelector('.imp-banner')")
    assert page.url.endswith("/admin"), "Stop stays on the page it was pressed on"
    assert tables.banner().count() == 0


def test_live_updates_from_psql_within_2_seconds(tables, page, su):
    tables.open_table("public", "notes", "?n=100")
    page.check("[data-live-toggle]")
    page.wait_for_selector("body[data-live=on]")
    t0 = time.time()
    su.execute("INSERT INTO notes (id, title, n) VALUES (1000, 'from psql', 1)")
    page.wait_for_selector("#grid tr[data-key='{\"id\":\"1000\"}']", timeout=2000)
    assert time.time() - t0 < 2
    su.execute("UPDATE notes SET title = 'changed in psql' WHERE id = 2")
    page.wait_for_selector("#grid td >> text=changed in psql", timeout=2000)
    su.execute("DELETE FROM notes WHERE id = 1000")
    page.wait_for_selector("#grid tr[data-key='{\"id\":\"1000\"}']", state="detached", timeout=2000)


def test_sql_console_as_alice(tables, page):
    tables.open_list()
    tables.view_as("alice@example.com", "console check")
    page.wait_for_selector(".imp-banner")
    page.goto("/admin/tables/sql")
    page.fill("textarea[name=sql]", "SELECT id, title FROM notes ORDER BY id")
    page.click("button:has-text('Run')")
    page.wait_for_selector(".sql-count")
    assert page.locator("table.data tbody tr").count() == 13
    tables.shot("sql-console")
