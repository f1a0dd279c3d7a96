"""dashboard.column_choices: the labels of a table's enum columns (and of
domains over enums), in the enum's order, for the dashboard's enum select
editor (issue 19)."""
import psycopg
import psycopg.sql
import pytest


HOSTILE = """<img src=x onerror=alert(1)> "quoted" 'single'"""


@pytest.fixture
def moods(su):
    su.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
    # added later, sorted between: the order is pg_enum.enumsortorder, not the OID
    su.execute("ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'")
    su.execute("ALTER TYPE mood ADD VALUE %s" % psycopg.sql.Literal(HOSTILE).as_string(su))
    su.execute("CREATE DOMAIN mood_d AS mood")
    su.execute("CREATE DOMAIN mood_dd AS mood_d CHECK (VALUE::text <> 'sad')")
    su.execute("CREATE SCHEMA \"we\"\"ird\"")
    su.execute("CREATE TYPE \"we\"\"ird\".\"Odd type\" AS ENUM ('a b', 'c')")
    su.execute("""CREATE TABLE feelings (id int PRIMARY KEY, m mood, label text, md mood_d NOT NULL DEFAULT 'ok',
                                         mdd mood_dd, odd "we""ird"."Odd type", ms mood[])""")
    su.execute("ALTER TABLE feelings DROP COLUMN label")
    su.execute("GRANT SELECT ON feelings TO fluxbase_dashboard")
    return "feelings"


def test_labels_of_enum_columns_and_domains_in_order(web, moods):
    rows = web.execute("SELECT column_name, labels FROM dashboard.column_choices('feelings')").fetchall()
    mood = ["sad", "meh", "ok", HOSTILE]
    assert rows == [("m", mood), ("md", mood), ("mdd", mood), ("odd", ["a b", "c"])]


def test_a_table_without_enums_has_none(web, su):
    su.execute("CREATE TABLE plain (id int PRIMARY KEY, t text)")
    su.execute("GRANT SELECT ON plain TO fluxbase_dashboard")
    assert web.execute("SELECT * FROM dashboard.column_choices('plain')").fetchall() == []


def test_refused_without_select_and_for_other_logins(web, su, db, moods):
    su.execute("CREATE TABLE hidden (id int PRIMARY KEY, m mood)")
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.column_choices('hidden')")
    assert e.value.sqlstate == "42501"
    with pytest.raises(psycopg.Error) as e:
        web.execute("SELECT * FROM dashboard.column_choices(NULL)")
    assert e.value.sqlstate in ("22004", "39004")
    # an app login (not a dashboard member) that may read the table is still refused
    su.execute("GRANT SELECT ON feelings TO authenticated")
    app = db.conn("fb_app")
    with pytest.raises(psycopg.Error) as e:
        app.execute("SET ROLE authenticated")
        app.execute("SELECT * FROM dashboard.column_choices('feelings')")
    assert e.value.sqlstate == "42501"
