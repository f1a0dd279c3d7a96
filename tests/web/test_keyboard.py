"""The Tables grid by keyboard only (issue 34): an ARIA grid with one tab
stop; arrows, Home/End, PageUp/PageDown move; Enter or F2 edits, Enter
saves, Escape cancels and gives focus back to the cell; Space selects the
row; Tab leaves the grid. A whole edit and a batch delete are driven with
no mouse at all; a screenshot of the focused grid goes to target/screenshots/."""
from conftest import ROOT
from test_tables import TablesPage, tables  # noqa: F401 - the fixture

SHOTS = ROOT / "target/screenshots"

FOCUSED = """() => {
    const a = document.activeElement;
    const td = a && a.closest('td, th');
    const tr = td && td.closest('tr');
    return {tag: a.tagName, name: a.getAttribute('name'), text: (a.innerText || '').trim().slice(0, 40),
            inGrid: !!a.closest('table[role=grid]'), key: tr ? tr.getAttribute('data-key') : null,
            col: td ? td.cellIndex : null, tabindex: a.getAttribute('tabindex')};
}"""


def focused(page):
    return page.evaluate(FOCUSED)


def tab_until(page, predicate, limit=60):
    for _ in range(limit):
        page.keyboard.press("Tab")
        f = focused(page)
        if predicate(f):
            return f
    raise AssertionError(f"Tab never reached the control; last focus {focused(page)}")


def test_grid_roles_and_one_tab_stop(tables, page):
    tables.open_table("public", "notes", "?n=25")
    grid = page.locator("#grid table")
    assert grid.get_attribute("role") == "grid"
    stops = page.evaluate("""() => [...document.querySelectorAll('#grid table *')]
        .filter(e => e.tabIndex >= 0 && !e.disabled).length""")
    assert stops == 1, f"the grid is one tab stop, found {stops}"


def test_edit_a_cell_by_keyboard_only(tables, page, su):
    tables.open_table("public", "notes", "?n=25")
    page.focus("#grid a.next-page")
    page.keyboard.press("Tab")
    f = focused(page)
    assert f["tag"] == "TD" and f["key"] == '{"id":"1"}' and f["col"] == 1, f"Tab enters the grid at its first cell: {f}"
    page.keyboard.press("End")
    assert focused(page)["col"] == 7, "End: the row's last cell (n)"
    page.keyboard.press("ArrowDown")
    assert focused(page)["key"] == '{"id":"2"}'
    page.keyboard.press("PageDown")
    assert focused(page)["key"] == '{"id":"12"}'
    page.keyboard.press("PageUp")
    assert focused(page)["key"] == '{"id":"2"}'
    page.keyboard.press("Home")
    assert focused(page)["col"] == 0
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    f = focused(page)
    assert (f["key"], f["col"]) == ('{"id":"2"}', 3), f"on row 2's title: {f}"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert (focused(page)["key"], focused(page)["col"]) == ('{"id":"2"}', 3)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "table-keyboard.png"))

    # Enter opens the editor with its field focused; Enter saves; focus is
    # back on the cell, announced in the live region.
    page.keyboard.press("Enter")
    page.locator("#grid form.editor textarea[name=value]").wait_for()
    f = focused(page)
    assert f["tag"] == "TEXTAREA" and f["name"] == "value", f
    page.keyboard.press("Control+A")
    page.keyboard.type("typed by keyboard")
    page.keyboard.press("Enter")
    page.locator("#grid form.editor").wait_for(state="detached")
    page.wait_for_function("() => document.activeElement.matches('td.cell')")
    f = focused(page)
    assert (f["key"], f["col"], f["text"]) == ('{"id":"2"}', 3, "typed by keyboard"), f
    assert su.execute("SELECT title FROM notes WHERE id = 2").fetchone()[0] == "typed by keyboard"
    assert "Saved title" in page.locator("#flash").inner_text()

    # F2 opens it too; Escape cancels: nothing written, focus back on the cell.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("F2")
    page.locator("#grid form.editor textarea[name=value]").wait_for()
    page.keyboard.type(" never saved")
    page.keyboard.press("Escape")
    page.locator("#grid form.editor").wait_for(state="detached")
    page.wait_for_function("() => document.activeElement.matches('td.cell')")
    f = focused(page)
    assert (f["key"], f["col"], f["text"]) == ('{"id":"3"}', 3, "note 3"), f
    assert su.execute("SELECT title FROM notes WHERE id = 3").fetchone()[0] == "note 3"

    # The database's refusal comes back in the editor, focused; Escape leaves.
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.locator("#grid form.editor input[name=value]").wait_for()
    page.keyboard.press("Control+A")
    page.keyboard.type("-5")
    page.keyboard.press("Enter")
    page.locator("#grid .cell-error").wait_for()
    assert focused(page)["name"] == "value", "the field keeps focus after the refusal"
    page.keyboard.press("Escape")
    page.locator("#grid form.editor").wait_for(state="detached")
    assert su.execute("SELECT n FROM notes WHERE id = 3").fetchone()[0] == 3

    # Tab leaves the grid (the next control after it).
    page.wait_for_function("() => document.activeElement.matches('td.cell')")
    page.keyboard.press("Tab")
    f = focused(page)
    assert not f["inGrid"] and f["name"] == "scope", f"Tab leaves the grid: {f}"


def test_batch_delete_by_keyboard_only(tables, page, su):
    tables.open_table("public", "notes", "?n=25")
    page.focus("#grid a.next-page")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focused(page)["key"] == '{"id":"3"}'
    page.keyboard.press(" ")
    page.keyboard.press("ArrowDown")
    page.keyboard.press(" ")
    page.keyboard.press("ArrowDown")
    page.keyboard.press(" ")
    page.keyboard.press(" ")  # toggled twice: row 5 is not selected
    checked = page.locator("#grid input[name=pk]:checked").evaluate_all("bs => bs.map(b => b.value)")
    assert checked == ['{"id":"3"}', '{"id":"4"}'], checked
    tab_until(page, lambda f: f["tag"] == "BUTTON" and f["text"].startswith("Preview"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/batch/preview")
    assert page.locator(".batch-count").inner_text() == "2"
    tab_until(page, lambda f: f["tag"] == "BUTTON" and f["text"].startswith("Confirm"))
    page.keyboard.press("Enter")
    page.locator(".batch-result").wait_for()
    assert "Deleted 2 rows" in page.locator(".batch-result").inner_text()
    assert su.execute("SELECT array_agg(id ORDER BY id) FROM notes WHERE id BETWEEN 2 AND 6").fetchone()[0] == [2, 5, 6]


def test_skip_link_and_focus_after_htmx_swap(tables, page):
    page.goto("/admin/users")
    page.keyboard.press("Tab")
    f = focused(page)
    assert f["tag"] == "A" and f["text"] == "Skip to main content", f
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # An htmx search swaps #main: focus goes to the new heading, announced.
    page.fill("#user-filters input[name=q]", "alice")
    page.focus("#user-filters button:has-text('Search')")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.tagName === 'H1'")
    assert page.evaluate("() => document.activeElement.textContent") == "Users"
    assert "Users" in page.locator("#flash").inner_text()


def test_step_up_dialog_keeps_focus_and_gives_it_back(page, su):
    from section_pages import StepUp, UserPage, sign_in_first_admin

    su.execute("SELECT dashboard.invite_user('dialog.user@example.com')")
    uid = su.execute("SELECT id FROM auth.users WHERE email = 'dialog.user@example.com'").fetchone()[0]
    sign_in_first_admin(page)
    UserPage(page).open(uid)
    page.fill("form[action$='/role'] input[name=role]", "anon")
    page.focus("button:has-text('Change role')")
    page.keyboard.press("Enter")
    StepUp(page).wait_open()
    assert focused(page)["name"] == "secret", "the dialog's field has focus"
    # Modal: Tab cycles inside the dialog (the page behind is inert).
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('#reauth dialog')") or \
            page.evaluate("() => document.activeElement === document.body"), focused(page)
    page.keyboard.press("Escape")
    page.locator("#reauth dialog").wait_for(state="detached")
    f = focused(page)
    assert f["tag"] == "BUTTON" and f["text"] == "Change role", f"focus back on the button that opened it: {f}"
    assert su.execute("SELECT role FROM auth.users WHERE id = %s", (uid,)).fetchone()[0] == "authenticated"


def test_phone_width_keeps_the_key_column_and_motion_can_be_reduced(tables, page):
    page.set_viewport_size({"width": 390, "height": 844})
    tables.open_table("public", "notes", "?n=25")
    key = page.locator("#grid tr[data-key='{\"id\":\"1\"}'] td.cell").first
    x0 = key.bounding_box()["x"]
    wrap = page.locator("#grid .table-wrap")
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth + 100"), "the grid scrolls sideways at 390 px"
    wrap.evaluate("w => { w.scrollLeft = 400; }")
    page.wait_for_function("() => document.querySelector('#grid .table-wrap').scrollLeft >= 400")
    assert abs(key.bounding_box()["x"] - x0) < 1, "the key column (id) stays in view"
    title = page.locator("#grid tr[data-key='{\"id\":\"1\"}'] td.cell").nth(2)
    assert title.bounding_box()["x"] < x0, "the other columns scrolled under it"
    # prefers-reduced-motion: the live grid's row highlight does not fade.
    row = page.locator("#grid tr[data-key='{\"id\":\"1\"}']")
    row.evaluate("r => r.classList.add('changed')")
    fade = lambda: row.locator("td").nth(1).evaluate("td => parseFloat(getComputedStyle(td).transitionDuration)")  # noqa: E731
    assert fade() == 1.0
    page.emulate_media(reduced_motion="reduce")
    assert fade() < 0.001
