"""dashboard.search_users (issue 20): the Users list's filters (confirmed,
role), sorts (email, created_at, last_sign_in_at, both directions, NULLs last,
ties by id), keyset paging (every row exactly once across pages), live
sessions and impersonations, validation, hostile text, a viewer reads."""
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin
from test_app_users import INJECTIONS as APP_USER_INJECTIONS

INJECTIONS = APP_USER_INJECTIONS + ["email DESC; DROP TABLE auth.users"]

SORTS = ["email", "created_at", "last_sign_in_at"]
COLS = ["id", "email", "phone", "role", "created_at", "last_sign_in_at", "confirmed_at", "email_confirmed_at",
        "phone_confirmed_at", "confirmation_sent_at", "invited_at", "banned_until", "is_anonymous", "app_metadata",
        "user_metadata", "active_sessions", "active_impersonations", "cursor"]


def uid(n):
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


@pytest.fixture
def people(su):
    """23 users with ties in every sort key, NULL keys (no email, never signed
    in), confirmed and not, three roles. Returns {id: row dict} as stored."""
    su.execute("DO $$ BEGIN CREATE ROLE app_editor NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    su.execute("GRANT app_editor TO fluxbase_impersonator")
    roles = ["authenticated", "anon", "app_editor"]
    base = "2026-01-01 00:00:00+00"
    for n in range(1, 24):
        email = None if n % 7 == 0 else f"user{n % 5}.{n}@example.com"
        if n in (3, 4):
            email = f"Tie{n}@Example.com"  # distinct emails, same created_at and sign-in
        phone = f"4915{n:08d}" if email is None else None
        su.execute(
            "INSERT INTO auth.users (id, email, phone, role, created_at, last_sign_in_at, email_confirmed_at)"
            " VALUES (%s, %s, %s, %s, %s::timestamptz + %s * interval '1 hour',"
            "         CASE WHEN %s THEN NULL ELSE %s::timestamptz + %s * interval '1 minute' END,"
            "         CASE WHEN %s THEN now() END)",
            (uid(n), email, phone, roles[n % 3], base, n // 4, n % 3 == 0, base, n % 5, n % 2 == 0))
    rows = su.execute("SELECT id, lower(email), role, created_at, last_sign_in_at, confirmed_at IS NOT NULL"
                      " FROM auth.users").fetchall()
    return {r[0]: dict(zip(["id", "email", "role", "created_at", "last_sign_in_at", "confirmed"], r)) for r in rows}


def expected(people, sort, desc, keep=lambda p: True):
    """The order the function promises: key (NULLs last either way), then id, same direction."""
    rows = [p for p in people.values() if keep(p)]
    non_null = sorted((p for p in rows if p[sort] is not None),
                      key=lambda p: (p[sort].encode() if sort == "email" else p[sort], p["id"]), reverse=desc)
    nulls = sorted((p for p in rows if p[sort] is None), key=lambda p: p["id"], reverse=desc)
    return [p["id"] for p in non_null + nulls]


def page_through(conn, page_size, **kw):
    """All pages, following each page's last cursor; returns ids in order."""
    ids, after, pages = [], None, 0
    while True:
        rows = conn.execute(
            "SELECT id, cursor FROM dashboard.search_users(%(search)s, %(confirmed)s, %(role)s, %(sort)s,"
            " %(descending)s, %(page_size)s, %(after)s)",
            dict(search=kw.get("search"), confirmed=kw.get("confirmed"), role=kw.get("role"),
                 sort=kw.get("sort", "email"), descending=kw.get("descending", False), page_size=page_size,
                 after=Jsonb(after) if after is not None else None)).fetchall()
        pages += 1
        assert pages < 100
        ids += [r[0] for r in rows]
        if len(rows) < page_size:
            return ids
        after = rows[-1][1]


def test_columns_are_list_users_plus_sessions_and_cursor(web, people):
    cur = web.execute("SELECT * FROM dashboard.search_users(page_size => 1)")
    assert [d.name for d in cur.description] == COLS
    list_cols = [d.name for d in web.execute("SELECT * FROM dashboard.list_users(page_size => 1)").description]
    assert COLS[:len(list_cols)] == list_cols


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("desc", [False, True])
def test_every_row_once_in_order_across_pages(web, people, sort, desc):
    want = expected(people, sort, desc)
    assert len(want) == 23
    for page_size in (1, 3, 7, 23, 50):
        got = page_through(web, page_size, sort=sort, descending=desc)
        assert got == want, (sort, desc, page_size)


def test_filters_confirmed_role_and_search_combine_with_sort_and_paging(web, people):
    cases = [
        (dict(confirmed=True), lambda p: p["confirmed"]),
        (dict(confirmed=False), lambda p: not p["confirmed"]),
        (dict(role="anon"), lambda p: p["role"] == "anon"),
        (dict(role="app_editor", confirmed=True), lambda p: p["role"] == "app_editor" and p["confirmed"]),
        (dict(search="user2"), lambda p: p["email"] is not None and "user2" in p["email"]),
        (dict(search="tie", confirmed=False), lambda p: (p["email"] or "").startswith("tie") and not p["confirmed"]),
        (dict(role="nobody"), lambda p: False),
    ]
    for kw, keep in cases:
        for sort in SORTS:
            for desc in (False, True):
                want = expected(people, sort, desc, keep)
                assert page_through(web, 2, sort=sort, descending=desc, **kw) == want, (kw, sort, desc)


def test_search_by_id_prefix_and_phone(web, people):
    ids = page_through(web, 50, search="00000000-0000-4000-8000-00000000001")
    assert sorted(ids) == sorted(uid(n) for n in range(10, 20))
    ids = page_through(web, 50, search="491500000014")
    assert ids == [uid(14)]


def test_unknown_sort_bad_page_size_and_bad_cursors_are_22023(web, people):
    bad = [
        ("SELECT * FROM dashboard.search_users(sort => 'id')", ()),
        ("SELECT * FROM dashboard.search_users(sort => 'email desc')", ()),
        ("SELECT * FROM dashboard.search_users(page_size => 0)", ()),
        ("SELECT * FROM dashboard.search_users(page_size => 1001)", ()),
        ("SELECT * FROM dashboard.search_users(after => '[]')", ()),
        ("SELECT * FROM dashboard.search_users(after => '\"x\"')", ()),
        # a cursor of another sort or direction
        ("SELECT * FROM dashboard.search_users(sort => 'created_at', after => %s)",
         (Jsonb({"sort": "email", "desc": False, "key": "a", "id": str(uid(1))}),)),
        ("SELECT * FROM dashboard.search_users(descending => true, after => %s)",
         (Jsonb({"sort": "email", "desc": False, "key": "a", "id": str(uid(1))}),)),
        ("SELECT * FROM dashboard.search_users(after => %s)",
         (Jsonb({"sort": "email", "desc": False, "key": "a", "id": "1' OR '1'='1"}),)),
        ("SELECT * FROM dashboard.search_users(sort => 'created_at', after => %s)",
         (Jsonb({"sort": "created_at", "desc": False, "key": "'; DROP TABLE auth.users; --", "id": str(uid(1))}),)),
        ("SELECT * FROM dashboard.search_users(sort => 'created_at', after => %s)",
         (Jsonb({"sort": "created_at", "desc": False, "key": "2026-13-45T99:00:00", "id": str(uid(1))}),)),
        ("SELECT * FROM dashboard.search_users(role => %s)", ("r" * 64,)),
        ("SELECT * FROM dashboard.search_users(search => %s)", ("s" * 255,)),
    ]
    for sql, params in bad:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql, params)
        assert e.value.sqlstate == "22023", (sql, e.value)
    assert one(web, "SELECT count(*) FROM dashboard.search_users()") == 23


def test_injection_text_in_every_text_argument_is_only_data(web, su, people):
    for text in INJECTIONS:
        assert web.execute("SELECT * FROM dashboard.search_users(search => %s)", (text,)).fetchall() == []
        assert web.execute("SELECT * FROM dashboard.search_users(role => %s)", (text,)).fetchall() == []
        with pytest.raises(psycopg.Error) as e:
            web.execute("SELECT * FROM dashboard.search_users(sort => %s)", (text,))
        assert e.value.sqlstate == "22023"
        # an email cursor's key is compared as a value: the rest of the list follows it
        rows = web.execute("SELECT id FROM dashboard.search_users(after => %s)",
                           (Jsonb({"sort": "email", "desc": False, "key": text, "id": str(uid(1))}),)).fetchall()
        assert {r[0] for r in rows} <= set(people)
    assert one(su, "SELECT count(*) FROM auth.users") == 23


def test_hostile_email_comes_back_as_stored(web, su):
    email = "{{7*7}}&lt&x%27--@example.com"
    su.execute("INSERT INTO auth.users (id, email) VALUES (%s, %s)", (uid(99), email))
    assert one(web, "SELECT email FROM dashboard.search_users(search => '{{7')") == email


def test_active_sessions_counts_gotrue_sessions_and_impersonations(web, su, people):
    # No auth.sessions table (no auth server keeps sessions here): unknown.
    assert {r[0] for r in web.execute("SELECT active_sessions FROM dashboard.search_users()")} == {None}
    # A view by that name is not read (it could run anything as the owner).
    su.execute("CREATE VIEW auth.sessions AS SELECT id AS user_id, now() AS not_after FROM auth.users")
    assert {r[0] for r in web.execute("SELECT active_sessions FROM dashboard.search_users()")} == {None}
    su.execute("DROP VIEW auth.sessions")
    # GoTrue's table (the columns counted: user_id, not_after).
    su.execute("CREATE TABLE auth.sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
               " user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,"
               " created_at timestamptz DEFAULT now(), not_after timestamptz)")
    su.execute("INSERT INTO auth.sessions (user_id, not_after) VALUES (%s, NULL), (%s, now() + interval '1 hour'),"
               " (%s, now() - interval '1 hour'), (%s, NULL)", (uid(1), uid(1), uid(1), uid(2)))
    su.execute("SELECT dashboard.start_impersonation(%s, 'support ticket 1')", (str(uid(2)),))
    counts = {r[0]: (r[1], r[2]) for r in web.execute(
        "SELECT id, active_sessions, active_impersonations FROM dashboard.search_users(page_size => 100)")}
    assert counts[uid(1)] == (2, 0)
    assert counts[uid(2)] == (1, 1)
    assert counts[uid(5)] == (0, 0)


def test_viewer_session_reads(db, su, web, people):
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'V', 'dashboard_viewer')", (PASSWORD,))
    token = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    as_session(web, token)
    assert page_through(web, 5, confirmed=False, sort="last_sign_in_at", descending=True) == \
        expected(people, "last_sign_in_at", True, lambda p: not p["confirmed"])
    web.execute("COMMIT")
    plain = db.conn("fb_plain")
    with pytest.raises(psycopg.Error) as e:
        plain.execute("SELECT * FROM dashboard.search_users()")
    assert e.value.sqlstate == "42501"
