"""dashboard.export_rows and dashboard.count_rows (issue 19): the export is
COPY ... TO STDOUT CSV byte for byte, chunked by keyset; the count is count(*)
of the view; both as the caller (RLS), both refuse bad arguments."""
import json
import pathlib

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import one

HOSTILE = '"; drop table x; --'

RICH = (pathlib.Path(__file__).parent / "fixtures" / "export_rich.sql").read_text()


def copy_csv(conn, query):
    out = bytearray()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT CSV") as cp:
        for chunk in cp:
            out += chunk
    return bytes(out)


def export(conn, tbl, filters=None, sort=None, search=None, fmt="csv", max_rows=7):
    """Every chunk of export_rows, joined; also returns the chunk count."""
    data, after, chunks = [], None, 0
    while True:
        d, n, after = conn.execute(
            "SELECT data, row_count, next_cursor FROM dashboard.export_rows(%s::regclass, %s, %s, %s, %s, %s, %s)",
            (tbl, Jsonb(filters or []), Jsonb(sort or []), search, fmt, None if after is None else Jsonb(after), max_rows),
        ).fetchone()
        assert n <= max_rows
        chunks += 1
        if d:
            data.append(d)
        if after is None:
            return data, chunks
        assert chunks < 1000


@pytest.fixture
def rich(su):
    su.execute(RICH)
    return "rich"


def test_csv_export_equals_copy_byte_for_byte(web, rich):
    data, chunks = export(web, rich, max_rows=500)
    assert chunks == 6, "3000 rows, 500 a chunk, keyset"
    assert "".join(data).encode() == copy_csv(web, "SELECT * FROM rich ORDER BY id")
    # sort (nullable, descending) + filter + search, as COPY of the same query
    data, _ = export(web, rich, filters=[{"column": "id", "op": "lte", "value": 2000}],
                     sort=[{"column": "n", "dir": "desc"}], search="row", max_rows=97)
    want = copy_csv(web, "SELECT * FROM rich WHERE id <= 2000 AND t ILIKE '%row%' ORDER BY n DESC NULLS FIRST, id")
    assert "".join(data).encode() == want
    # one chunk of everything
    data, chunks = export(web, rich, max_rows=100000)
    assert chunks == 1 and "".join(data).encode() == copy_csv(web, "SELECT * FROM rich ORDER BY id")


def test_single_column_table_quotes_the_end_marker(web, rich):
    data, _ = export(web, "one", max_rows=2)
    got = "".join(data).encode()
    assert got == copy_csv(web, "SELECT v FROM one ORDER BY ctid")
    assert got.startswith(b'"\\."\n')


def test_json_export_is_one_object_per_row(web, rich):
    data, chunks = export(web, rich, fmt="json", max_rows=700)
    assert chunks == 5
    rows = json.loads("[" + ",\n".join(data) + "]")
    assert [r["id"] for r in rows] == list(range(1, 3001))
    want = [r[0] for r in web.execute("SELECT to_json(r) FROM rich r ORDER BY id").fetchall()]
    assert rows == want
    assert rows[0][HOSTILE] == "x" and rows[2]["t"] is None and rows[1]["t"] == ""


def test_export_and_count_see_what_rls_shows(web, su):
    su.execute("CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, body text)")
    su.execute("INSERT INTO notes SELECT g, CASE WHEN g % 3 = 0 THEN 'alice' ELSE 'bob' END, 'note, ' || g FROM generate_series(1, 30) g")
    su.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
    su.execute("CREATE POLICY own ON notes TO authenticated USING (owner = nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')")
    su.execute("GRANT SELECT ON notes TO authenticated, fluxbase_dashboard")
    su.execute("GRANT authenticated TO fb_web")
    assert export(web, "notes")[0] == [] and one(web, "SELECT dashboard.count_rows('notes')") == 0
    web.execute("BEGIN")
    web.execute("SET LOCAL ROLE authenticated")
    web.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": "alice", "role": "authenticated"}),))
    data, _ = export(web, "notes", max_rows=3)
    assert "".join(data).encode() == copy_csv(web, "SELECT * FROM notes ORDER BY id")
    assert len("".join(data).splitlines()) == 10
    assert one(web, "SELECT dashboard.count_rows('notes')") == 10
    assert one(web, "SELECT dashboard.count_rows('notes', %s)", (Jsonb([{"column": "id", "op": "gt", "value": 15}]),)) == 5
    assert one(web, "SELECT dashboard.count_rows('notes', '[]', '9')") == one(web, "SELECT count(*) FROM notes WHERE body LIKE '%%9%%'") == 1
    web.execute("ROLLBACK")


def test_count_equals_count_star(web, rich):
    assert one(web, "SELECT dashboard.count_rows('rich')") == 3000
    f = Jsonb([{"column": "id", "op": "in", "value": [1, 2, 3, 99]}, {"column": "b", "op": "not_null"}])
    assert one(web, "SELECT dashboard.count_rows('rich', %s)", (f,)) == 2
    assert one(web, "SELECT dashboard.count_rows('rich', '[]', 'row 1')") == one(web, "SELECT count(*) FROM rich WHERE t ILIKE '%%row 1%%'")


@pytest.mark.parametrize(
    "args,state",
    [
        ({"fmt": "xml"}, "22023"),
        ({"fmt": "csv'; drop table rich; --"}, "22023"),
        ({"fmt": "CSV"}, "22023"),
        ({"max_rows": 0}, "22023"),
        ({"max_rows": -5}, "22023"),
        ({"max_rows": 100001}, "22023"),
        ({"after": {"after": ["1"], "order": "'; drop table rich; --"}}, "22023"),
        ({"after": "x'); drop table rich; --"}, "22023"),
        ({"filters": [{"column": "id", "op": "eq; drop table rich", "value": 1}]}, "22023"),
        ({"filters": [{"column": "id", "op": "eq", "value": "1; drop table rich"}]}, "22P02"),
        ({"filters": {"column": "id"}}, "22023"),
        ({"sort": [{"column": "id", "dir": "desc; drop table rich"}]}, "22023"),
        ({"filters": [{"column": "x\"; drop table rich; --", "op": "eq", "value": 1}]}, "42703"),
    ],
)
def test_bad_arguments_are_refused(web, rich, args, state):
    a = {"filters": [], "sort": [], "fmt": "csv", "after": None, "max_rows": 10} | args
    with pytest.raises(psycopg.Error) as e:
        web.execute(
            "SELECT * FROM dashboard.export_rows('rich', %s, %s, NULL, %s, %s, %s)",
            (Jsonb(a["filters"]), Jsonb(a["sort"]), a["fmt"], None if a["after"] is None else Jsonb(a["after"]), a["max_rows"]),
        )
    assert e.value.sqlstate == state
    if "filters" in args:
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT dashboard.count_rows('rich', %s)", (Jsonb(a["filters"]),))
        assert e.value.sqlstate == state
    # the search text is bound, never SQL: it just matches nothing
    assert one(web, "SELECT row_count FROM dashboard.export_rows('rich', search => %s)", ("'); drop table rich; --",)) == 0
    assert one(web, "SELECT dashboard.count_rows('rich', search => %s)", ("%' OR 1=1; --",)) == 0
    assert one(web, "SELECT count(*) FROM rich") == 3000


def test_who_may_export(db, su, rich):
    # a login that is not a dashboard member: refused before anything is read
    su.execute("GRANT EXECUTE ON FUNCTION dashboard.export_rows(regclass, jsonb, jsonb, text, text, jsonb, integer) TO fb_plain")
    su.execute("GRANT USAGE ON SCHEMA dashboard TO fb_plain")
    plain = db.conn("fb_plain")
    with pytest.raises(psycopg.Error) as e:
        plain.execute("SELECT * FROM dashboard.export_rows('rich')")
    assert e.value.sqlstate == "42501"
    # a dashboard member without SELECT on the table
    su.execute("REVOKE SELECT ON rich FROM fluxbase_dashboard")
    web = db.conn("fb_web")
    for sql in ["SELECT * FROM dashboard.export_rows('rich')", "SELECT dashboard.count_rows('rich')"]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql)
        assert e.value.sqlstate == "42501"
