"""Table explorer (dashboard.list_tables / describe_table / browse / edits / watch)."""
import json
import threading

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin


def browse(conn, tbl, filters=None, sort=None, search=None, page_size=50, after=None):
    return one(
        conn,
        "SELECT dashboard.browse(%s::regclass, %s, %s, %s, %s, %s)",
        (tbl, Jsonb(filters or []), Jsonb(sort or []), search, page_size, None if after is None else Jsonb(after)),
    )


def browse_all(conn, tbl, page_size, **kw):
    """Follow next_cursor to the end; returns every row in order."""
    rows, after, pages = [], None, 0
    while True:
        res = browse(conn, tbl, page_size=page_size, after=after, **kw)
        assert len(res["rows"]) <= page_size
        rows += res["rows"]
        pages += 1
        after = res["next_cursor"]
        if after is None:
            return rows
        assert pages < 1000


@pytest.fixture
def people(su):
    su.execute(
        """CREATE TABLE people (id int PRIMARY KEY, name text, age int, score numeric,
                                born date, tags text[], full_name text GENERATED ALWAYS AS (name || '!') STORED)"""
    )
    # ties and NULLs on purpose: age has 5 distinct values and NULLs
    su.execute(
        """INSERT INTO people (id, name, age, score, born)
           SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'name ' || g END,
                  CASE WHEN g % 4 = 0 THEN NULL ELSE g % 5 END,
                  (g % 3) * 1.5, date '2000-01-01' + g
           FROM generate_series(1, 53) g"""
    )
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON people TO fluxbase_dashboard")
    return "people"


def ids(rows):
    return [r["id"] for r in rows]


def sql_ids(conn, where="true", order="id"):
    return [r[0] for r in conn.execute(f"SELECT id FROM people WHERE {where} ORDER BY {order}").fetchall()]


# ------------------------------------------------------------------ browse


@pytest.mark.parametrize(
    "op,value,where",
    [
        ("eq", 3, "age = 3"),
        ("neq", 3, "age <> 3"),
        ("lt", 2, "age < 2"),
        ("lte", 2, "age <= 2"),
        ("gt", 2, "age > 2"),
        ("gte", "2", "age >= 2"),
        ("in", [1, "3"], "age IN (1, 3)"),
        ("is_null", None, "age IS NULL"),
        ("not_null", None, "age IS NOT NULL"),
    ],
)
def test_each_filter_op(web, people, op, value, where):
    res = browse(web, people, filters=[{"column": "age", "op": op, "value": value}], page_size=1000)
    assert ids(res["rows"]) == sql_ids(web, where)
    assert res["next_cursor"] is None
    assert res["estimated_total"] == len(sql_ids(web, where))


def test_like_ilike_and_search(web, people):
    res = browse(web, people, filters=[{"column": "name", "op": "like", "value": "name 1%"}], page_size=1000)
    assert ids(res["rows"]) == sql_ids(web, "name LIKE 'name 1%'")
    res = browse(web, people, filters=[{"column": "name", "op": "ilike", "value": "NAME 2_"}], page_size=1000)
    assert ids(res["rows"]) == sql_ids(web, "name ILIKE 'NAME 2_'")
    # search is literal (wildcards escaped) over text-like columns
    res = browse(web, people, search="ME 5", page_size=1000)
    assert ids(res["rows"]) == sql_ids(web, "name ILIKE '%me 5%'")
    assert browse(web, people, search="%")["rows"] == []


def test_filters_combine_with_and(web, people):
    res = browse(
        web,
        people,
        filters=[{"column": "age", "op": "gte", "value": 1}, {"column": "born", "op": "lt", "value": "2000-01-20"}],
        page_size=1000,
    )
    assert ids(res["rows"]) == sql_ids(web, "age >= 1 AND born < '2000-01-20'")


@pytest.mark.parametrize(
    "sort,order",
    [
        ([], "id"),
        ([{"column": "age"}], "age ASC NULLS LAST, id"),
        ([{"column": "age", "dir": "desc"}], "age DESC NULLS FIRST, id"),
        ([{"column": "age", "dir": "asc", "nulls": "first"}], "age ASC NULLS FIRST, id"),
        ([{"column": "age", "dir": "desc", "nulls": "last"}], "age DESC NULLS LAST, id"),
        ([{"column": "name", "dir": "desc"}, "score"], "name DESC NULLS FIRST, score, id"),
        ([{"column": "score", "dir": "desc"}, {"column": "age"}], "score DESC, age ASC NULLS LAST, id"),
        ([{"column": "id", "dir": "desc"}], "id DESC"),
    ],
)
@pytest.mark.parametrize("page_size", [1, 4, 7])
def test_sort_and_cursor_pagination_with_ties_and_nulls(web, people, sort, order, page_size):
    rows = browse_all(web, people, page_size, sort=sort)
    assert ids(rows) == sql_ids(web, order=order)


def test_cursor_pages_with_filter(web, people):
    rows = browse_all(web, people, 3, sort=[{"column": "age", "dir": "desc"}], filters=[{"column": "score", "op": "gt", "value": 0}])
    assert ids(rows) == sql_ids(web, "score > 0", "age DESC NULLS FIRST, id")


def test_first_page_shape(web, people):
    res = browse(web, people, page_size=5)
    assert ids(res["rows"]) == [1, 2, 3, 4, 5]
    assert set(res["rows"][0]) == {"id", "name", "age", "score", "born", "tags", "full_name"}
    assert res["next_cursor"] is not None
    assert res["estimated_total"] == 53
    # the last page has no cursor
    assert browse(web, people, page_size=53)["next_cursor"] is None


def test_cursor_from_another_order_is_refused(web, people):
    cur = browse(web, people, page_size=2)["next_cursor"]
    with pytest.raises(psycopg.Error) as e:
        browse(web, people, sort=["age"], after=cur)
    assert e.value.sqlstate == "22023"
    for bad in ["junk", {"after": "x"}, {"after": [1], "order": cur["order"]}, {"after": ["1", "2"], "order": cur["order"]}]:
        with pytest.raises(psycopg.Error) as e:
            browse(web, people, after=bad)
        assert e.value.sqlstate == "22023"
    # a tampered value is still only a bound parameter
    with pytest.raises(psycopg.Error) as e:
        browse(web, people, after={"after": ["1; DROP TABLE people"], "order": cur["order"]})
    assert e.value.sqlstate == "22P02"
    assert one(web, "SELECT count(*) FROM people") == 53


@pytest.mark.parametrize("size", [0, -1, 1001, 100000])
def test_page_size_out_of_range(web, people, size):
    with pytest.raises(psycopg.Error) as e:
        browse(web, people, page_size=size)
    assert e.value.sqlstate == "22023"
    assert "page_size" in str(e.value)


def test_page_size_bounds_accepted(web, people):
    assert len(browse(web, people, page_size=1)["rows"]) == 1
    assert len(browse(web, people, page_size=1000)["rows"]) == 53


@pytest.mark.parametrize(
    "filters,state",
    [
        ([{"column": "nope", "op": "eq", "value": 1}], "42703"),
        ([{"column": "age", "op": "between", "value": 1}], "22023"),
        ([{"column": "age", "op": "eq"}], "22023"),
        ([{"column": "age", "op": "eq", "value": None}], "22023"),
        ([{"column": "age", "op": "in", "value": 5}], "22023"),
        ([{"column": "age", "op": "eq", "value": "abc"}], "22P02"),
        ({"column": "age"}, "22023"),
        (["age"], "22023"),
        ([{"column": "age", "op": "eq", "value": 1, "extra": 1}], "22023"),
    ],
)
def test_bad_filters(web, people, filters, state):
    with pytest.raises(psycopg.Error) as e:
        browse(web, people, filters=filters)
    assert e.value.sqlstate == state


def test_bad_sorts(web, people):
    for sort, state in [
        ([{"column": "nope"}], "42703"),
        ([{"column": "age", "dir": "up"}], "22023"),
        ([{"column": "age", "nulls": "middle"}], "22023"),
        (["age", "age"], "22023"),
        ([1], "22023"),
    ]:
        with pytest.raises(psycopg.Error) as e:
            browse(web, people, sort=sort)
        assert e.value.sqlstate == state, sort


def test_composite_primary_key(web, su):
    su.execute("CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (a, b))")
    su.execute("INSERT INTO pairs SELECT g % 4, 'k' || (g % 5), g FROM generate_series(1, 20) g")
    su.execute("GRANT ALL ON pairs TO fluxbase_dashboard")
    rows = browse_all(web, "pairs", 3)
    assert [(r["a"], r["b"]) for r in rows] == web.execute("SELECT a, b FROM pairs ORDER BY a, b").fetchall()
    rows = browse_all(web, "pairs", 2, sort=[{"column": "v", "dir": "desc"}])
    assert [r["v"] for r in rows] == list(range(20, 0, -1))
    # edits address the row by the whole key
    assert one(web, "SELECT dashboard.update_row('pairs', %s, %s)", (Jsonb({"a": 1, "b": "k1"}), Jsonb({"v": 99})))["v"] == 99
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.update_row('pairs', %s, %s)", (Jsonb({"a": 1}), Jsonb({"v": 1})))
    assert e.value.sqlstate == "22023" and '"b"' in str(e.value)
    assert one(web, "SELECT dashboard.delete_rows('pairs', %s)", (Jsonb([{"a": 1, "b": "k1"}, {"a": 2, "b": "k2"}]),)) == 2


def test_table_without_primary_key_browses_by_ctid(web, su):
    su.execute("CREATE TABLE heap (x int, y text)")
    su.execute("INSERT INTO heap SELECT g % 3, 'same' FROM generate_series(1, 25) g")  # full duplicates
    su.execute("GRANT ALL ON heap TO fluxbase_dashboard")
    rows = browse_all(web, "heap", 4)
    assert len(rows) == 25
    rows = browse_all(web, "heap", 4, sort=["x"])
    assert [r["x"] for r in rows] == sorted(r["x"] for r in rows) and len(rows) == 25
    # no key to address rows: edits refused clearly, inserts work
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.delete_rows('heap', %s)", (Jsonb([{"x": 1}]),))
    assert e.value.sqlstate == "55000"
    assert one(web, "SELECT dashboard.insert_rows('heap', %s)", (Jsonb([{"x": 7}]),)) == 1


def test_views_and_partitioned_tables_browse(web, su, people):
    su.execute("CREATE VIEW adults AS SELECT id, name, age FROM people WHERE age >= 2")
    su.execute("CREATE TABLE parted (k int, v text) PARTITION BY RANGE (k)")
    su.execute("CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (10)")
    su.execute("CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (10) TO (20)")
    su.execute("INSERT INTO parted SELECT g % 20, 'v' FROM generate_series(1, 40) g")
    su.execute("GRANT SELECT ON adults, parted TO fluxbase_dashboard")
    assert sorted(ids(browse_all(web, "adults", 4))) == sql_ids(web, "age >= 2")
    rows = browse_all(web, "parted", 6)
    assert sorted(r["k"] for r in rows) == sorted(g % 20 for g in range(1, 41))


def test_null_sort_keys_paginate_exactly_once(web, su):
    su.execute("CREATE TABLE n (id int PRIMARY KEY, a int, b text)")
    su.execute(
        "INSERT INTO n SELECT g, CASE WHEN g % 2 = 0 THEN NULL ELSE g % 3 END, CASE WHEN g % 3 = 0 THEN NULL ELSE 'b' || (g % 2) END FROM generate_series(1, 30) g"
    )
    su.execute("GRANT SELECT ON n TO fluxbase_dashboard")
    for sort, order in [
        (["a", "b"], "a NULLS LAST, b NULLS LAST, id"),
        ([{"column": "a", "dir": "desc"}, {"column": "b", "nulls": "first"}], "a DESC NULLS FIRST, b NULLS FIRST, id"),
        ([{"column": "b", "dir": "desc", "nulls": "last"}, {"column": "a", "nulls": "first"}], "b DESC NULLS LAST, a NULLS FIRST, id"),
    ]:
        for size in (1, 2, 5):
            got = [r["id"] for r in browse_all(web, "n", size, sort=sort)]
            assert got == [r[0] for r in web.execute(f"SELECT id FROM n ORDER BY {order}").fetchall()], (sort, size)


def test_many_types_filter_and_page(web, su):
    su.execute(
        "CREATE TABLE typed (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), c char(3), v varchar(5), ts timestamptz, j jsonb, b bool, bits bit(3))"
    )
    su.execute(
        "INSERT INTO typed (c, v, ts, j, b, bits) SELECT 'a' || (g % 3), 'v' || g, '2024-01-01'::timestamptz + g * interval '1 hour', jsonb_build_object('g', g), g % 2 = 0, '101' FROM generate_series(1, 12) g"
    )
    su.execute("GRANT ALL ON typed TO fluxbase_dashboard")
    assert len(browse_all(web, "typed", 5, sort=[{"column": "ts", "dir": "desc"}])) == 12
    assert len(browse(web, "typed", filters=[{"column": "c", "op": "eq", "value": "a1"}])["rows"]) == 4
    assert len(browse(web, "typed", filters=[{"column": "b", "op": "eq", "value": True}])["rows"]) == 6
    assert len(browse(web, "typed", filters=[{"column": "bits", "op": "eq", "value": "101"}])["rows"]) == 12
    assert len(browse(web, "typed", filters=[{"column": "ts", "op": "gt", "value": "2024-01-01 06:00+00"}])["rows"]) == 6
    assert len(browse(web, "typed", filters=[{"column": "j", "op": "eq", "value": {"g": 3}}])["rows"]) == 1
    assert len(browse_all(web, "typed", 5, sort=["c"])) == 12
    # varchar(5) overflow is a plain constraint error, not a silent truncation
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.insert_rows('typed', %s)", (Jsonb([{"v": "toolongvalue"}]),))
    assert e.value.sqlstate == "22001"


# ------------------------------------------------------------------ list / describe


def test_list_tables(web, su, people):
    su.execute("CREATE SCHEMA other")
    su.execute("CREATE TABLE other.hidden (id int)")  # no grant: not listed
    su.execute("COMMENT ON TABLE people IS 'the people'")
    su.execute("ALTER TABLE people ENABLE ROW LEVEL SECURITY")
    rows = web.execute("SELECT schema, name, kind, primary_key, rls_enabled, comment, total_bytes FROM dashboard.list_tables()").fetchall()
    assert ("public", "people", "table", ["id"], True, "the people") == rows[0][:6]
    assert rows[0][6] > 0
    assert all(r[1] != "hidden" for r in rows)
    # the extension's own tables only when asked for by schema
    assert all(r[0] not in ("dashboard_auth", "dashboard", "auth") for r in rows)
    assert "audit_log" in [r[1] for r in web.execute("SELECT * FROM dashboard.list_tables('dashboard_auth')")]
    assert web.execute("SELECT * FROM dashboard.list_tables(%s)", ("x'; drop table people; --",)).fetchall() == []
    assert one(su, "SELECT count(*) FROM people") == 53


def test_describe_table(web, su, people):
    su.execute("CREATE TABLE child (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, person int REFERENCES people(id), note text NOT NULL DEFAULT 'x')")
    su.execute("GRANT SELECT ON child TO fluxbase_dashboard")
    cols = {r[0]: r for r in web.execute("SELECT * FROM dashboard.describe_table('child')")}
    assert cols["id"][1:] == ("integer", False, None, True, "identity always", None)
    assert cols["person"][6] == "people(id)"
    assert cols["note"][1:4] == ("text", False, "'x'::text")
    cols = {r[0]: r for r in web.execute("SELECT * FROM dashboard.describe_table('people')")}
    assert cols["full_name"][5].startswith("stored")
    idx = web.execute("SELECT name, is_primary FROM dashboard.table_indexes('people')").fetchall()
    assert idx == [("people_pkey", True)]


# ------------------------------------------------------------------ privileges, hostile input


def test_unreadable_table_is_refused_without_leaking(web, su):
    su.execute('CREATE TABLE secret ("password hash" text, id int PRIMARY KEY)')
    su.execute("INSERT INTO secret VALUES ('xyz', 1)")
    for sql in [
        "SELECT dashboard.browse('secret')",
        "SELECT * FROM dashboard.describe_table('secret')",
        "SELECT * FROM dashboard.table_policies('secret')",
        """SELECT dashboard.browse('secret', '[{"column": "password hash", "op": "eq", "value": "xyz"}]')""",
        """SELECT dashboard.update_row('secret', '{"id": 1}', '{"password hash": "x"}')""",
        """SELECT dashboard.delete_rows('secret', '[{"id": 1}]')""",
        """SELECT dashboard.insert_rows('secret', '[{"id": 2}]')""",
        "SELECT dashboard.watch_table('secret')",
    ]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql)
        assert e.value.sqlstate == "42501", sql
        assert "password hash" not in str(e.value) and "xyz" not in str(e.value)
    assert one(su, "SELECT count(*) FROM secret") == 1


HOSTILE = [
    "'; DROP TABLE victim; --",
    '"; drop table victim; --',
    "1; DELETE FROM victim",
    "/* comment */ 1",
    "-- 1",
    "$1",
    "$$; drop table victim; $$",
    "\\'; drop table victim; --",
    "ünïcödé 🚀",
    "Robert'); DROP TABLE victim;--",
    "a\nb",
]


@pytest.fixture
def weird(su):
    # a table and columns whose names need quoting
    su.execute('CREATE TABLE victim (id int PRIMARY KEY)')
    su.execute('CREATE TABLE "My ""Weird"" Table" ("Id" int PRIMARY KEY, "a b" text, "x""; drop table victim; --" text, "ÜÇ" int)')
    su.execute("""INSERT INTO "My ""Weird"" Table" VALUES (1, 'one', 'x', 1), (2, 'two', 'y', 2), (3, 'three', NULL, NULL)""")
    su.execute('GRANT ALL ON victim, "My ""Weird"" Table" TO fluxbase_dashboard')
    return '"My ""Weird"" Table"'


def test_weird_names_work(web, weird):
    rows = browse_all(web, weird, 1, sort=[{"column": 'x"; drop table victim; --', "dir": "desc"}, "ÜÇ"])
    assert [r["Id"] for r in rows] == [3, 2, 1]
    res = browse(web, weird, filters=[{"column": "a b", "op": "eq", "value": "two"}])
    assert [r["Id"] for r in res["rows"]] == [2]
    new = one(web, f"SELECT dashboard.update_row('{weird}', %s, %s)", (Jsonb({"Id": 1}), Jsonb({'x"; drop table victim; --': "'; drop"})))
    assert new['x"; drop table victim; --'] == "'; drop"
    assert one(web, "SELECT count(*) FROM victim") == 0


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_values_are_only_data(web, su, weird, evil):
    # as filter values, search, column names, ops, sort dirs and edit values
    assert browse(web, weird, filters=[{"column": "a b", "op": "eq", "value": evil}])["rows"] == []
    assert browse(web, weird, filters=[{"column": "a b", "op": "in", "value": [evil, evil]}])["rows"] == []
    assert browse(web, weird, filters=[{"column": "a b", "op": "like", "value": evil}])["rows"] == []
    assert browse(web, weird, search=evil)["rows"] == []
    for bad in [
        {"filters": [{"column": evil, "op": "eq", "value": 1}]},
        {"filters": [{"column": "a b", "op": evil, "value": 1}]},
        {"sort": [{"column": evil}]},
        {"sort": [{"column": "a b", "dir": evil}]},
        {"filters": [{"column": "Id", "op": "eq", "value": evil}]},
    ]:
        with pytest.raises(psycopg.Error) as e:
            browse(web, weird, **bad)
        assert e.value.sqlstate in ("42703", "22023", "22P02")
    # edits: values stored verbatim, bad column names refused
    one(web, f"SELECT dashboard.update_row('{weird}', %s, %s)", (Jsonb({"Id": 2}), Jsonb({"a b": evil})))
    assert one(su, f'SELECT "a b" FROM {weird} WHERE "Id" = 2') == evil
    with pytest.raises(psycopg.Error) as e:
        web.execute(f"SELECT dashboard.update_row('{weird}', %s, %s)", (Jsonb({"Id": 2}), Jsonb({evil: 1})))
    assert e.value.sqlstate == "42703"
    with pytest.raises(psycopg.Error) as e:
        web.execute(f"SELECT dashboard.insert_rows('{weird}', %s)", (Jsonb([{"Id": evil}]),))
    assert e.value.sqlstate == "22P02"
    assert one(su, "SELECT to_regclass('victim') IS NOT NULL") is True
    assert one(su, f"SELECT count(*) FROM {weird}") == 3


def test_hostile_regclass_text(web, weird):
    for evil in ["victim; drop table victim", "'; drop table victim; --", "pg_catalog.pg_authid"]:
        with pytest.raises(psycopg.Error) as e:
            browse(web, evil)
        assert e.value.sqlstate in ("42P01", "42602", "42501", "22P02"), evil
    assert one(web, "SELECT count(*) FROM victim") == 0


def test_refused_roles(db, people):
    plain = db.conn("fb_plain")
    with pytest.raises(psycopg.Error) as e:
        plain.execute("SELECT dashboard.browse('people')")
    assert e.value.sqlstate == "42501"
    # an app user's own login (PostgREST-style) is refused even as authenticated,
    # though the role has EXECUTE for impersonation's sake
    app = db.conn("fb_app")
    for role in ("anon", "authenticated"):
        app.execute(f"SET ROLE {role}")
        for sql in ["SELECT dashboard.browse('people')", "SELECT * FROM dashboard.list_tables()",
                    "SELECT dashboard.delete_rows('people', '[{\"id\": 1}]')"]:
            with pytest.raises(psycopg.Error) as e:
                app.execute(sql)
            assert e.value.sqlstate == "42501"
        app.execute("RESET ROLE")


# ------------------------------------------------------------------ edits


def test_update_row_returns_new_and_audits_old_and_new(web, people):
    new = one(web, "SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 5}), Jsonb({"age": "42", "name": "Eve"})))
    assert new["age"] == 42 and new["name"] == "Eve" and new["full_name"] == "Eve!"
    action, details, actor = web.execute(
        "SELECT action, details, actor FROM dashboard_auth.audit_log ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert action == "explorer.update_row" and actor == "db:fb_web" and details["as_role"] == "fb_web"
    assert details["old"][0]["age"] == 0 and details["new"][0]["age"] == 42
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 999}), Jsonb({"age": 1})))
    assert e.value.sqlstate == "P0002"


def test_update_rows_delete_rows_insert_rows(web, people):
    assert one(web, "SELECT dashboard.update_rows('people', %s, %s)", (Jsonb([{"id": 1}, {"id": 2}, {"id": 999}]), Jsonb({"score": 7}))) == 2
    assert sql_ids(web, "score = 7") == [1, 2]
    assert one(web, "SELECT dashboard.insert_rows('people', %s)", (Jsonb([{"id": 100, "name": "a", "tags": "{x,y}"}, {"id": 101}]),)) == 2
    assert one(web, "SELECT tags FROM people WHERE id = 100") == ["x", "y"]
    assert one(web, "SELECT dashboard.delete_rows('people', %s)", (Jsonb([{"id": 100}, {"id": 101}]),)) == 2
    actions = [r[0] for r in web.execute("SELECT action FROM dashboard_auth.audit_log ORDER BY id")]
    assert actions == ["explorer.update_rows", "explorer.insert_rows", "explorer.delete_rows"]
    old = one(web, "SELECT details FROM dashboard_auth.audit_log WHERE action = 'explorer.delete_rows'")["old"]
    assert sorted(r["id"] for r in old) == [100, 101]


@pytest.mark.parametrize(
    "sql,args,col",
    [
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 1}), Jsonb({"age": "abc"})), "age"),
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 1}), Jsonb({"born": "yesterday-ish"})), "born"),
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": "one"}), Jsonb({"age": 1})), "id"),
        ("SELECT dashboard.update_rows('people', %s, %s)", (Jsonb([{"id": 1}]), Jsonb({"score": "1.2.3"})), "score"),
        ("SELECT dashboard.insert_rows('people', %s)", (Jsonb([{"id": 200}, {"id": 201, "age": "1e400"}]),), "age"),
        ("SELECT dashboard.delete_rows('people', %s)", (Jsonb([{"id": 1}, {"id": "x"}]),), "id"),
    ],
)
def test_wrong_value_types_name_the_column(web, people, sql, args, col):
    with pytest.raises(psycopg.Error) as e:
        web.execute(sql, args)
    assert e.value.sqlstate == "22P02"
    assert f'column "{col}"' in str(e.value)
    assert one(web, "SELECT count(*) FROM people") == 53
    assert one(web, "SELECT count(*) FROM dashboard_auth.audit_log") == 0


def test_generated_columns_refused(web, people):
    for sql, args in [
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 1}), Jsonb({"full_name": "x"}))),
        ("SELECT dashboard.update_rows('people', %s, %s)", (Jsonb([{"id": 1}]), Jsonb({"full_name": "x"}))),
        ("SELECT dashboard.insert_rows('people', %s)", (Jsonb([{"id": 300, "full_name": "x"}]),)),
    ]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql, args)
        assert e.value.sqlstate == "22023" and '"full_name"' in str(e.value) and "generated" in str(e.value)


def test_batches_are_all_or_nothing(web, people):
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.insert_rows('people', %s)", (Jsonb([{"id": 400}, {"id": 1}]),))
    assert e.value.sqlstate == "23505"
    assert sql_ids(web, "id = 400") == []
    with pytest.raises(psycopg.Error):
        web.execute("SELECT dashboard.update_rows('people', %s, %s)", (Jsonb([{"id": 1}, {"id": 2}]), Jsonb({"id": 3})))
    assert sql_ids(web, "id IN (1, 2)") == [1, 2]
    assert one(web, "SELECT count(*) FROM dashboard_auth.audit_log") == 0


def test_bad_edit_arguments(web, people):
    for sql, args, state in [
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 1}), Jsonb({})), "22023"),
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb([1]), Jsonb({"age": 1})), "22023"),
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 1, "age": 2}), Jsonb({"age": 1})), "22023"),
        ("SELECT dashboard.update_row('people', %s, %s)", (None, Jsonb({"age": 1})), "22004"),
        ("SELECT dashboard.insert_rows('people', %s)", (Jsonb({"id": 1}),), "22023"),
        ("SELECT dashboard.insert_rows('people', %s)", (Jsonb([]),), "22023"),
        ("SELECT dashboard.delete_rows('people', %s)", (None,), "22004"),
        ("SELECT dashboard.update_rows('people', %s, %s)", (Jsonb([{"id": 1}]), Jsonb({"nope": 1})), "42703"),
    ]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql, args)
        assert e.value.sqlstate == state, (sql, args)


def test_viewer_may_browse_but_not_edit(db, su, web, people):
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')", (PASSWORD,))
    status, token = web.execute("SELECT status, session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,)).fetchone()[:2]
    assert status == "ok"
    as_session(web, token)
    assert len(browse(web, people)["rows"]) == 50
    for sql, args in [
        ("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 1}), Jsonb({"age": 1}))),
        ("SELECT dashboard.update_rows('people', %s, %s)", (Jsonb([{"id": 1}]), Jsonb({"age": 1}))),
        ("SELECT dashboard.insert_rows('people', %s)", (Jsonb([{"id": 500}]),)),
        ("SELECT dashboard.delete_rows('people', %s)", (Jsonb([{"id": 1}]),)),
        ("SELECT dashboard.watch_table('people')", ()),
    ]:
        web.execute("SAVEPOINT s")
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql, args)
        assert e.value.sqlstate == "42501", sql
        web.execute("ROLLBACK TO SAVEPOINT s")
    web.execute("ROLLBACK")


# ------------------------------------------------------------------ RLS under impersonation


@pytest.fixture
def notes(su):
    su.execute("CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, body text)")
    su.execute("INSERT INTO notes SELECT g, CASE WHEN g % 2 = 0 THEN 'alice' ELSE 'bob' END, 'note ' || g FROM generate_series(1, 10) g")
    su.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
    su.execute(
        """CREATE POLICY own ON notes TO authenticated
           USING (owner = nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
           WITH CHECK (owner = nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')"""
    )
    su.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO authenticated, fluxbase_dashboard")
    # the impersonation step (dashboard.apply_impersonation) switches the role
    # for the transaction; emulated here, so the login may SET ROLE
    su.execute("GRANT authenticated TO fb_web")
    return "notes"


def impersonate(conn, sub):
    conn.execute("BEGIN")
    conn.execute("SET LOCAL ROLE authenticated")
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": sub, "role": "authenticated"}),))


def test_rls_decides_what_is_seen_and_changed(web, su, notes):
    # without impersonation the dashboard role (no policy for it, RLS on) sees nothing
    assert browse(web, notes)["rows"] == []
    impersonate(web, "alice")
    rows = browse_all(web, notes, 2)
    assert {r["owner"] for r in rows} == {"alice"}
    assert sorted(r["id"] for r in browse_all(web, notes, 2)) == [2, 4, 6, 8, 10]
    assert browse(web, notes, filters=[{"column": "id", "op": "eq", "value": 1}])["rows"] == []
    # bob's row can't be changed: not visible, so not found
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.update_row('notes', %s, %s)", (Jsonb({"id": 1}), Jsonb({"body": "hacked"})))
    assert e.value.sqlstate == "P0002"
    web.execute("ROLLBACK")
    impersonate(web, "alice")
    assert one(web, "SELECT dashboard.delete_rows('notes', %s)", (Jsonb([{"id": 1}, {"id": 2}]),)) == 1
    # inserting a row for someone else violates the policy's WITH CHECK
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.insert_rows('notes', %s)", (Jsonb([{"id": 50, "owner": "bob"}]),))
    assert e.value.sqlstate == "42501"
    web.execute("ROLLBACK")
    assert one(su, "SELECT count(*) FROM notes") == 10
    impersonate(web, "alice")
    one(web, "SELECT dashboard.update_row('notes', %s, %s)", (Jsonb({"id": 2}), Jsonb({"body": "mine"})))
    web.execute("COMMIT")
    assert one(su, "SELECT body FROM notes WHERE id = 2") == "mine"
    assert one(web, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'explorer.update_row'") == 1
    details = one(web, "SELECT details FROM dashboard_auth.audit_log WHERE action = 'explorer.update_row'")
    assert details["as_role"] == "authenticated" and details["old"][0]["body"] == "note 2"


# ------------------------------------------------------------------ watch


def test_watch_table_notifies_without_keys_or_values(db, web, su, people):
    su.execute("GRANT TRIGGER ON people TO fluxbase_dashboard")
    listener = db.conn()
    listener.execute("LISTEN dashboard_changes")
    web.execute("SELECT dashboard.watch_table('people')")
    web.execute("SELECT dashboard.watch_table('people')")  # idempotent
    su.execute("UPDATE people SET age = 1 WHERE id = 3")
    web.execute("SELECT dashboard.insert_rows('people', %s)", (Jsonb([{"id": 77, "name": "x" * 5000}]),))
    su.execute("DELETE FROM people WHERE id = 77")
    got = []
    for n in listener.notifies(timeout=5, stop_after=3):
        got.append(json.loads(n.payload))
    # {schema, table, op, seq}: no key, no value (any role can LISTEN)
    assert [{k: v for k, v in g.items() if k != "seq"} for g in got] == [
        {"schema": "public", "table": "people", "op": "UPDATE"},
        {"schema": "public", "table": "people", "op": "INSERT"},
        {"schema": "public", "table": "people", "op": "DELETE"},
    ]
    assert got[0]["seq"] < got[1]["seq"] < got[2]["seq"]
    web.execute("SELECT dashboard.unwatch_table('people')")
    su.execute("UPDATE people SET age = 2 WHERE id = 3")
    assert list(listener.notifies(timeout=1, stop_after=1)) == []
    actions = [r[0] for r in su.execute("SELECT action FROM dashboard_auth.audit_log WHERE action LIKE 'explorer.%watch' ORDER BY id")]
    assert actions == ["explorer.watch", "explorer.watch", "explorer.unwatch"]


def test_watch_fires_for_impersonated_writes_and_big_keys(db, web, su, notes):
    su.execute("CREATE TABLE bigkey (k text PRIMARY KEY)")
    su.execute("GRANT ALL ON bigkey TO fluxbase_dashboard")
    su.execute("SELECT dashboard.watch_table('notes')")
    su.execute("SELECT dashboard.watch_table('bigkey')")
    listener = db.conn()
    listener.execute("LISTEN dashboard_changes")
    impersonate(web, "alice")
    web.execute("SELECT dashboard.update_row('notes', %s, %s)", (Jsonb({"id": 4}), Jsonb({"body": "b"})))
    web.execute("COMMIT")
    web.execute("INSERT INTO bigkey VALUES (repeat('k', 9000))")  # the write works whatever the key
    got = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=2)]
    assert [(g["table"], g["op"]) for g in got] == [("notes", "UPDATE"), ("bigkey", "INSERT")]
    assert all(set(g) == {"schema", "table", "op", "seq"} for g in got)


def test_watch_needs_trigger_privilege(web, people):
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT dashboard.watch_table('people')")
    assert e.value.sqlstate == "42501"


def test_concurrent_updates_serialise(db, su, people):
    """Two sessions updating the same row: both succeed, audit old values chain."""
    errs = []

    def work(n):
        try:
            c = db.conn("fb_web")
            for _ in range(5):
                c.execute("SELECT dashboard.update_row('people', %s, %s)", (Jsonb({"id": 1}), Jsonb({"score": n})))
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert errs == []
    rows = su.execute(
        "SELECT details FROM dashboard_auth.audit_log WHERE action = 'explorer.update_row' ORDER BY id"
    ).fetchall()
    assert len(rows) == 20
    # each edit's old value is the previous edit's new value
    for prev, cur in zip(rows, rows[1:]):
        assert cur[0]["old"][0]["score"] == prev[0]["new"][0]["score"]


def test_catalog_changes_are_seen_by_the_same_session(web, su, people):
    """The per-backend table cache is dropped on relcache invalidation."""
    assert "extra" not in browse(web, people, page_size=1)["rows"][0]
    su.execute("ALTER TABLE people ADD COLUMN extra text DEFAULT 'x'")
    assert browse(web, people, page_size=1)["rows"][0]["extra"] == "x"
    su.execute("ALTER TABLE people ALTER COLUMN age TYPE text USING age::text")
    res = browse(web, people, filters=[{"column": "age", "op": "eq", "value": "abc"}])
    assert res["rows"] == []  # text now: no cast error
    su.execute("ALTER TABLE people DROP COLUMN extra")
    with pytest.raises(psycopg.Error) as e:
        browse(web, people, filters=[{"column": "extra", "op": "eq", "value": "x"}])
    assert e.value.sqlstate == "42703"
    # a new table under the old name
    su.execute("DROP TABLE people")
    su.execute("CREATE TABLE people (pid bigint PRIMARY KEY, label text)")
    su.execute("INSERT INTO people VALUES (1, 'a'), (2, 'b')")
    su.execute("GRANT SELECT ON people TO fluxbase_dashboard")
    assert [r["pid"] for r in browse_all(web, "people", 1)] == [1, 2]
    # privileges are checked on every call, not cached
    su.execute("REVOKE SELECT ON people FROM fluxbase_dashboard")
    with pytest.raises(psycopg.Error) as e:
        browse(web, "people")
    assert e.value.sqlstate == "42501"
