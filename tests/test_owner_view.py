"""The admin's own view of a table (issue 30, item 1; src/owner_view.rs).

An admin session that is not impersonating browses, counts, exports and edits
a table as the table's owner, restricted: RLS filters only a FORCE ROW LEVEL
SECURITY table, no grant to the web login is needed, the owner's code gets the
owner's rights, and a superuser's table runs as fluxbase_explorer, never as a
superuser. Impersonation, database roles without a session and the
extension's private schemas keep the caller's rights.
"""
import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PASSWORD, as_session, one, setup_admin


def err(conn, sql, args=()):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, args)
    return e.value


@pytest.fixture
def admin(su):
    return setup_admin(su)[1]


@pytest.fixture
def todos(db, su):
    """The issue's newcomer table: owned by a plain role, RLS on, a policy for
    authenticated, 250 rows (3 of them alice's), no grant to the dashboard."""
    # Roles are cluster-wide: other modules make the login a member of
    # authenticated to emulate SET ROLE (test_explorer, test_export); here it
    # must hold no grant at all.
    su.execute("REVOKE anon, authenticated, service_role FROM fb_web")
    alice = one(su, "SELECT user_id FROM dashboard.invite_user('alice@example.com')")
    su.execute("GRANT CREATE ON SCHEMA public TO fb_plain")
    su.execute("GRANT USAGE ON SCHEMA auth TO fb_plain")  # its policy calls auth.uid()
    owner = db.conn("fb_plain")
    owner.execute("""
        CREATE TABLE public.todos (id int PRIMARY KEY, owner uuid, title text NOT NULL);
        ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own ON public.todos TO authenticated USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.todos TO authenticated;
    """)
    owner.execute("INSERT INTO public.todos SELECT g, CASE WHEN g <= 3 THEN %s::uuid END, 'todo ' || g "
                  "FROM generate_series(1, 250) g", (alice,))
    return owner


def browse_ids(conn, tbl, **kw):
    res = one(conn, "SELECT dashboard.browse(%s, page_size => 1000)", (tbl,))
    return sorted(r["id"] for r in res["rows"])


def overview(conn, schema=None):
    rows = conn.execute("SELECT to_json(t) FROM dashboard.table_overview(%s) t", (schema,)).fetchall()
    return {(r[0]["schema"], r[0]["name"]): r[0] for r in rows}


def test_the_admin_sees_every_row_as_the_owner_and_alice_only_hers(web, su, admin, todos):
    # a database role without a session: its own rights, as before (no grant: nothing)
    assert ("public", "todos") not in overview(web)
    assert err(web, "SELECT dashboard.browse('public.todos')").sqlstate == "42501"
    as_session(web, admin)
    t = overview(web)[("public", "todos")]
    assert (t["owner"], t["runs_as"], t["rls"], t["policies"], t["readable"]) == ("fb_plain", "fb_plain", "on", 1, True)
    assert browse_ids(web, "public.todos") == list(range(1, 251))
    assert one(web, "SELECT dashboard.count_rows('public.todos')") == 250
    data, n, _ = web.execute("SELECT * FROM dashboard.export_rows('public.todos', format => 'csv')").fetchone()
    assert n == 250 and "todo 250" in data
    # an edit as the owner: audited with the role it ran as
    row = one(web, "SELECT dashboard.update_row('public.todos', %s, %s)", (Jsonb({"id": 7}), Jsonb({"title": "edited"})))
    assert row["title"] == "edited"
    web.execute("COMMIT")
    assert one(su, "SELECT title FROM public.todos WHERE id = 7") == "edited"
    details = one(su, "SELECT details FROM dashboard_auth.audit_log WHERE action = 'explorer.update_row'")
    assert details["as_role"] == "fb_plain"
    # View as alice: RLS as alice decides
    as_session(web, admin)
    sid = one(web, "SELECT dashboard.start_impersonation('alice@example.com', 'ticket 30')")
    web.execute("COMMIT")
    as_session(web, admin)
    web.execute("SELECT dashboard.apply_impersonation(%s)", (sid,))
    assert browse_ids(web, "public.todos") == [1, 2, 3]
    assert one(web, "SELECT dashboard.count_rows('public.todos')") == 3
    assert overview(web)[("public", "todos")]["runs_as"] == "authenticated"
    web.execute("ROLLBACK")


def test_forced_rls_filters_the_owner_too_and_says_so(web, admin, todos):
    todos.execute("ALTER TABLE public.todos FORCE ROW LEVEL SECURITY")
    as_session(web, admin)
    assert overview(web)[("public", "todos")]["rls"] == "forced"
    # the owner is subject to the policy now; the policy names authenticated only
    assert browse_ids(web, "public.todos") == []
    web.execute("ROLLBACK")


def test_a_plain_owners_trigger_gets_the_owners_rights_only(db, web, su, admin, todos):
    su.execute("CREATE TABLE public.superuser_only (secret text)")
    su.execute("INSERT INTO public.superuser_only VALUES ('s3cret')")
    todos.execute("""
        ALTER TABLE public.todos ADD COLUMN note text;
        CREATE FUNCTION public.peek() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            NEW.note := current_user || ' ' || current_setting('is_superuser') || ': '
                        || (SELECT secret FROM public.superuser_only LIMIT 1);
            RETURN NEW;
        EXCEPTION WHEN insufficient_privilege THEN
            NEW.note := current_user || ' ' || current_setting('is_superuser') || ': ' || SQLERRM;
            RETURN NEW;
        END $f$;
        CREATE TRIGGER peek BEFORE UPDATE ON public.todos FOR EACH ROW EXECUTE FUNCTION public.peek();
    """)
    as_session(web, admin)
    row = one(web, "SELECT dashboard.update_row('public.todos', %s, %s)", (Jsonb({"id": 9}), Jsonb({"title": "by the admin"})))
    web.execute("COMMIT")
    assert row["title"] == "by the admin"
    assert row["note"] == "fb_plain off: permission denied for table superuser_only"
    assert one(su, "SELECT title || ' / ' || note FROM public.todos WHERE id = 9") == \
        "by the admin / fb_plain off: permission denied for table superuser_only"


def test_a_superusers_table_runs_as_fluxbase_explorer_never_as_a_superuser(web, su, admin):
    su.execute("""
        CREATE TABLE public.su_owned (id int PRIMARY KEY, v text, who text);
        INSERT INTO public.su_owned VALUES (1, 'a', NULL), (2, 'b', NULL);
        ALTER TABLE public.su_owned ENABLE ROW LEVEL SECURITY;
        CREATE FUNCTION public.who() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            NEW.who := current_user || ' ' || current_setting('is_superuser') || ' '
                       || (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
            RETURN NEW;
        END $f$;
        CREATE TRIGGER who BEFORE UPDATE ON public.su_owned FOR EACH ROW EXECUTE FUNCTION public.who();
    """)
    assert one(su, "SELECT rolbypassrls AND NOT rolsuper AND NOT rolcanlogin FROM pg_roles WHERE rolname = 'fluxbase_explorer'")
    as_session(web, admin)
    t = overview(web)[("public", "su_owned")]
    assert (t["owner"], t["runs_as"]) == ("postgres", "fluxbase_explorer")
    # RLS on without a policy: the dedicated role bypasses it
    assert browse_ids(web, "public.su_owned") == [1, 2]
    row = one(web, "SELECT dashboard.update_row('public.su_owned', %s, %s)", (Jsonb({"id": 1}), Jsonb({"v": "x"})))
    web.execute("COMMIT")
    assert row["who"] == "fluxbase_explorer off false"
    assert one(su, "SELECT v FROM public.su_owned WHERE id = 1") == "x"


def test_private_schemas_and_the_catalog_stay_out_of_reach(web, su, admin):
    as_session(web, admin)
    for tbl in ["dashboard_auth.credentials", "dashboard_auth.backup_codes", "auth.users", "pg_catalog.pg_authid"]:
        web.execute("SAVEPOINT s")
        e = err(web, "SELECT dashboard.browse(%s)", (tbl,))
        assert e.sqlstate == "42501", (tbl, e)
        web.execute("ROLLBACK TO SAVEPOINT s")
    names = overview(web)
    assert not any(s in ("dashboard_auth", "dashboard", "auth", "pg_catalog", "information_schema") for s, _ in names)
    # named: only what the login itself may read, as list_tables
    assert set(n for _, n in overview(web, "dashboard_auth")) == \
        set(r[1] for r in web.execute("SELECT * FROM dashboard.list_tables('dashboard_auth')"))
    web.execute("ROLLBACK")


def test_viewers_stay_read_only(web, su, todos):
    setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')", (PASSWORD,))
    token = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    as_session(web, token)
    assert len(browse_ids(web, "public.todos")) == 250
    web.execute("SAVEPOINT s")
    assert err(web, "SELECT dashboard.update_row('public.todos', %s, %s)",
               (Jsonb({"id": 1}), Jsonb({"title": "no"}))).sqlstate == "42501"
    web.execute("ROLLBACK TO SAVEPOINT s")
    assert err(web, "SELECT dashboard.delete_rows('public.todos', %s)", (Jsonb([{"id": 1}]),)).sqlstate == "42501"
    web.execute("ROLLBACK")
    assert one(su, "SELECT count(*) FROM public.todos") == 250


def test_the_owners_code_cannot_climb(web, su, admin, todos):
    """As the owner, still confined: no role change, no API, no claims."""
    todos.execute("""
        ALTER TABLE public.todos ADD COLUMN note text;
        CREATE FUNCTION public.climb() RETURNS trigger LANGUAGE plpgsql AS $f$
        DECLARE r text := '';
        BEGIN
            BEGIN PERFORM set_config('role', session_user::text, true); r := r || 'role ok;';
            EXCEPTION WHEN others THEN r := r || 'role ' || SQLSTATE || ';'; END;
            BEGIN PERFORM dashboard.list_tables(); r := r || 'api ok;';
            EXCEPTION WHEN others THEN r := r || 'api ' || SQLSTATE || ';'; END;
            BEGIN PERFORM set_config('request.jwt.claims', '{}', true); r := r || 'claims ok;';
            EXCEPTION WHEN others THEN r := r || 'claims ' || SQLSTATE || ';'; END;
            NEW.note := r;
            RETURN NEW;
        END $f$;
        CREATE TRIGGER climb BEFORE UPDATE ON public.todos FOR EACH ROW EXECUTE FUNCTION public.climb();
    """)
    as_session(web, admin)
    row = one(web, "SELECT dashboard.update_row('public.todos', %s, %s)", (Jsonb({"id": 1}), Jsonb({"title": "t"})))
    assert row["note"] == "role 42501;api 42501;claims 42501;", row
    web.execute("COMMIT")
    assert one(web, "SELECT current_user") == "fb_web"


def test_hostile_table_name_as_the_owner(db, web, su, admin):
    su.execute("GRANT CREATE ON SCHEMA public TO fb_plain")
    name = """x'; DROP TABLE victim; --"""
    owner = db.conn("fb_plain")
    owner.execute(f'CREATE TABLE public."{name}" (id int PRIMARY KEY)')
    owner.execute(f'INSERT INTO public."{name}" VALUES (1)')
    as_session(web, admin)
    assert ("public", name) in overview(web)
    res = one(web, "SELECT dashboard.browse(format('%%I.%%I', 'public', %s::text)::regclass)", (name,))
    assert res["rows"] == [{"id": 1}]
    web.execute("ROLLBACK")
