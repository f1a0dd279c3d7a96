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


def test_sql_console_explains_an_update_that_changed_0_rows(tables, page, su):
    """Issue 32, item 2: as alice (she owns every third note), an UPDATE of
    notes 1 and 2 changes nothing; the console says the admin's own view
    matches both and shows each key's verdict naming her policy. Hostile text
    stays text; a WHERE with a subquery is not explained (and not run)."""
    tables.open_list()
    tables.view_as("alice@example.com", "zero rows")
    page.wait_for_selector(".imp-banner")
    page.goto("/admin/tables/sql")
    page.fill("textarea[name=sql]", "UPDATE notes SET title = '<b>x</b>' WHERE id IN (1, 2) RETURNING id")
    page.click("button:has-text('Run')")
    page.wait_for_selector(".zero-rows")
    assert page.locator(".sql-count").inner_text().startswith("0 rows")
    assert page.locator(".zero-count").inner_text() == "2 rows"
    assert page.locator(".zero-key").all_inner_texts() == ['{"id":1}', '{"id":2}']
    verdicts = page.locator(".zero-verdict")
    assert verdicts.count() == 2
    for i in range(2):
        v = verdicts.nth(i).locator(".verdict")
        assert v.get_attribute("data-allowed") == "false"
        assert v.locator(".decided-by li").all_inner_texts() == ["no permissive policy allows it"]
        own = v.locator(".policies tbody tr[data-policy='own'] td")
        # (notes 1 and 2 have no owner: her policy is NULL, not true, on them)
        assert own.nth(4).inner_text() == "yes" and own.nth(5).inner_text() == "null"
    assert page.locator("#verdict").count() == 0, "several verdicts: no duplicate ids"
    assert page.locator("b:has-text('x')").count() == 0
    tables.shot("sql-console-zero-rows")
    assert su.execute("SELECT count(*) FROM notes WHERE title LIKE '<b>%'").fetchone()[0] == 0

    # A key alice may change: the statement changes it (no explanation);
    # hostile text in the WHERE is shown as text in the textarea only.
    page.fill("textarea[name=sql]", "UPDATE notes SET title = 'mine' WHERE id = 3 RETURNING id")
    page.click("button:has-text('Run')")
    page.wait_for_selector(".sql-count:has-text('1 rows')")
    assert page.locator(".zero-rows").count() == 0
    page.fill("textarea[name=sql]", "DELETE FROM notes WHERE title = '<img src=x class=pwn>' RETURNING id")
    page.click("button:has-text('Run')")
    page.wait_for_selector(".zero-rows")
    assert page.locator(".zero-count").inner_text() == "0 rows"
    assert page.locator("img.pwn").count() == 0
    su.execute("CREATE TABLE zr_log (n int)")
    su.execute("GRANT INSERT ON zr_log TO authenticated")
    su.execute("CREATE FUNCTION leak(int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO zr_log VALUES ($1); RETURN false; END $$")
    page.fill("textarea[name=sql]", "DELETE FROM notes WHERE id IN (SELECT id FROM notes WHERE leak(id)) RETURNING id")
    page.click("button:has-text('Run')")
    page.wait_for_selector(".zero-rows .zero-why")
    assert "subquery" in page.locator(".zero-rows .zero-why").inner_text()
    # (alice's own statement ran leak on her rows; the explanation ran it on none of the others)
    assert su.execute("SELECT count(*) FROM zr_log WHERE n % 3 <> 0").fetchone()[0] == 0


# ------------------------------------------------------------ Why? (issue 32)

def verdict(page):
    """The verdict shown in the table page's #row-why, once it is there."""
    page.locator("#row-why #verdict").wait_for()
    v = page.locator("#row-why #verdict")
    return {
        "allowed": v.get_attribute("data-allowed"),
        "decided_by": [d.strip() for d in v.locator("#decided-by li").all_inner_texts()],
        "policies": {
            r.locator("td").nth(0).inner_text(): [c.strip() for c in r.locator("td").all_inner_texts()]
            for r in v.locator("#policies tbody tr").all()
        },
    }


def test_why_on_rows_and_keys_as_alice(tables, page, su):
    """The real verdict: a row alice sees names the policy that let it
    through; a key she can't see says no permissive policy, or the
    restrictive policy that took it away; keyboard-only works."""
    su.execute("CREATE POLICY not_done ON notes AS RESTRICTIVE TO authenticated USING (NOT done)")
    tables.open_table("public", "notes", "?n=100")
    assert page.locator("#grid button[data-why]").count() == 0, "no Why? without View as"
    assert page.locator("#row-why").count() == 0
    tables.view_as("alice@example.com", "why check")
    page.wait_for_selector(".imp-banner")
    tables.open_table("public", "notes", "?n=100")
    # alice owns every third row; the restrictive policy hides the done (even) ones.
    assert page.locator("#grid tr[data-key]").count() == 7
    assert page.locator("#grid button[data-why]").count() == 7
    before = su.execute("SELECT count(*) FROM dashboard_auth.audit_log").fetchone()[0]

    tables.row('{"id":"3"}').locator("button[data-why]").click()
    v = verdict(page)
    assert v["allowed"] == "true"
    assert v["decided_by"] == ["own"]
    assert v["policies"]["own"][4] == "yes" and v["policies"]["own"][5] == "true"
    assert v["policies"]["not_done"][2] == "restrictive" and v["policies"]["not_done"][5] == "true"
    assert v["policies"]["dash"][4] == "no", "the dashboard's policy is not alice's"
    assert page.locator("#row-why .why-key").inner_text() == '{"id":"3"}'
    assert page.evaluate("document.activeElement.closest('#row-why') !== null"), "the verdict takes focus"
    # The explanation was audited (by the admin, not as alice).
    assert su.execute("SELECT count(*) FROM dashboard_auth.audit_log").fetchone()[0] > before

    # A key alice can't see: not hers (no permissive policy), or done (restrictive).
    page.fill(".why-form input[name='k.id']", "1")
    page.click(".why-form button:has-text('Explain')")
    page.wait_for_selector("#row-why .why-key:has-text('\"1\"')")
    v = verdict(page)
    assert (v["allowed"], v["decided_by"]) == ("false", ["no permissive policy allows it"])
    assert v["policies"]["own"][5] == "null", "owner is NULL: the USING is NULL, not true"
    page.fill(".why-form input[name='k.id']", "6")
    page.click(".why-form button:has-text('Explain')")
    page.wait_for_selector("#row-why .why-key:has-text('\"6\"')")
    v = verdict(page)
    assert (v["allowed"], v["decided_by"]) == ("false", ["restrictive: not_done"])
    # UPDATE as alice on a row she can't see changes 0 rows.
    page.fill(".why-form input[name='k.id']", "2")
    page.select_option(".why-form select[name=command]", "update")
    page.click(".why-form button:has-text('Explain')")
    page.wait_for_selector("#row-why .why-asked:has-text('update')")
    assert page.locator("#row-why #outcome").inner_text() == "0 rows"
    # Bad input: a clear message in the form, no verdict replaced.
    page.fill(".why-form input[name='k.id']", "not a number'; drop table notes --")
    page.select_option(".why-form select[name=command]", "select")
    page.click(".why-form button:has-text('Explain')")
    page.wait_for_selector(".why-form .form-error:not(:empty)")
    assert "integer" in page.locator(".why-form .form-error").inner_text().lower()
    # (the refused POST's 400 is expected: htmx logs it)
    page.watch.problems[:] = [p for p in page.watch.problems if "/notes/why" not in p or "400" not in p]
    assert su.execute("SELECT count(*) FROM notes").fetchone()[0] == 40

    # Keyboard only: into the grid, to the row's last cell (its Why?), Enter.
    page.locator("#grid td.cell").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.querySelector('button[data-why]') !== null")
    page.keyboard.press("Enter")
    page.wait_for_selector("#row-why .why-key:has-text('\"9\"')")
    assert verdict(page)["allowed"] == "true"
    assert page.evaluate("document.activeElement.tagName") == "H2"


def test_why_renders_hostile_names_and_keys_as_text(tables, page, su):
    alice = su.execute("SELECT id FROM auth.users WHERE email = 'alice@example.com'").fetchone()[0]
    su.execute("""CREATE TABLE "h<i>x" (k text PRIMARY KEY, owner uuid)""")
    su.execute("""INSERT INTO "h<i>x" VALUES ('<img src=x onerror=window.pwned=1>', %s), ('"><b>2', NULL)""", (alice,))
    su.execute("""ALTER TABLE "h<i>x" ENABLE ROW LEVEL SECURITY""")
    su.execute("""CREATE POLICY "<img src=y onerror=window.pwned=2>" ON "h<i>x" TO authenticated USING (owner = auth.uid())""")
    su.execute("""GRANT SELECT ON "h<i>x" TO fluxbase_dashboard, authenticated""")
    tables.open_list()
    tables.view_as("alice@example.com", "hostile names")
    page.wait_for_selector(".imp-banner")
    tables.open_table("public", "h%3Ci%3Ex")
    assert page.locator("#grid tr[data-key]").count() == 1
    page.locator("#grid button[data-why]").click()
    v = verdict(page)
    assert v["allowed"] == "true"
    assert v["decided_by"] == ["<img src=y onerror=window.pwned=2>"]
    assert page.locator("#row-why .why-key").inner_text() == '{"k":"<img src=x onerror=window.pwned=1>"}'
    page.fill(".why-form input[name='k.k']", '"><b>2')
    page.click(".why-form button:has-text('Explain')")
    page.wait_for_selector("#row-why #verdict[data-allowed=false]")
    assert page.locator("#row-why img, #row-why b").count() == 0
    assert page.evaluate("window.pwned === undefined")
