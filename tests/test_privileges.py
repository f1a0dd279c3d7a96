"""Who may call what: the privilege matrix, search_path pinning, grants on tables."""
import psycopg
import pytest

from conftest import PASSWORD, one, setup_admin

API_SCHEMAS = ("dashboard_auth", "dashboard")


def api_functions(conn):
    return conn.execute(
        """SELECT p.oid::regprocedure::text, p.oid FROM pg_proc p
           WHERE p.pronamespace::regnamespace::text = ANY(%s) AND p.proname NOT LIKE '\\_%%'
           ORDER BY 1""",
        (list(API_SCHEMAS),),
    ).fetchall()


def test_every_api_function_is_executable_only_by_the_dashboard_group(su):
    funcs = api_functions(su)
    assert len(funcs) >= 17
    for role in ["anon", "authenticated", "fb_plain", "fb_app", "public"]:
        allowed = [name for name, oid in funcs if one(su, "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, oid))]
        assert allowed == [], (role, allowed)
    denied = [name for name, oid in funcs if not one(su, "SELECT has_function_privilege('fb_web', %s, 'EXECUTE')", (oid,))]
    assert denied == []


def test_internal_functions_are_not_callable_by_the_dashboard_group(su):
    internal = su.execute(
        """SELECT p.oid FROM pg_proc p WHERE p.pronamespace::regnamespace::text = ANY(%s) AND p.proname LIKE '\\_%%'""",
        (["dashboard_auth", "dashboard", "auth"],),
    ).fetchall()
    for (oid,) in internal:
        assert not one(su, "SELECT has_function_privilege('fb_web', %s, 'EXECUTE')", (oid,))


def test_security_definer_functions_pin_search_path(su):
    rows = su.execute(
        """SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p
           WHERE p.prosecdef AND p.pronamespace::regnamespace::text IN ('dashboard_auth', 'dashboard', 'auth')"""
    ).fetchall()
    assert rows, "expected SECURITY DEFINER functions"
    for name, config in rows:
        assert config and any(c.startswith("search_path=pg_catalog") for c in config), (name, config)


@pytest.mark.parametrize("role", ["anon", "authenticated", "fb_plain"])
@pytest.mark.parametrize("call", [
    "SELECT dashboard_auth.needs_setup()",
    "SELECT * FROM dashboard_auth.login('root@example.com', 'x')",
    "SELECT * FROM dashboard_auth.validate_session('fbs_x')",
    "SELECT dashboard_auth.create_admin('x@example.com', 'a-long-enough-passphrase', 'X')",
    "SELECT * FROM dashboard_auth.list_admins()",
    "SELECT dashboard_auth.set_setting('mfa.required', 'true')",
    "SELECT * FROM dashboard_auth.setup_first_admin('x@example.com', 'a-long-enough-passphrase', 'X')",
])
def test_refused_roles_get_42501(db, role, call):
    conn = db.conn("fb_plain" if role == "fb_plain" else "fb_app")
    if role != "fb_plain":
        conn.execute(f"SET ROLE {role}")
    with pytest.raises(psycopg.Error) as e:
        conn.execute(call)
    assert e.value.sqlstate == "42501"


@pytest.mark.parametrize("table", ["users", "credentials", "sessions", "audit_log", "settings", "settings_store", "login_throttle"])
def test_dashboard_auth_tables_are_unreadable_to_app_roles(db, table):
    conn = db.conn("fb_app")
    for role in ["anon", "authenticated"]:
        conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.Error) as e:
            conn.execute(f"SELECT * FROM dashboard_auth.{table}")
        assert e.value.sqlstate == "42501"
        conn.execute("RESET ROLE")


def test_dashboard_group_reads_history_but_not_secrets(db):
    su = db.conn()
    setup_admin(su)
    web = db.conn("fb_web")
    assert one(web, "SELECT count(*) FROM dashboard_auth.sessions") == 1
    assert one(web, "SELECT count(*) FROM dashboard_auth.audit_log") >= 1
    for table in ["credentials", "settings_store", "login_throttle"]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(f"SELECT * FROM dashboard_auth.{table}")
        assert e.value.sqlstate == "42501"
    for sql in ["UPDATE dashboard_auth.users SET role = 'dashboard_admin'", "DELETE FROM dashboard_auth.sessions",
                "INSERT INTO dashboard_auth.audit_log (actor, action) VALUES ('me', 'forged')"]:
        with pytest.raises(psycopg.Error) as e:
            web.execute(sql)
        assert e.value.sqlstate == "42501"


def test_roles_exist_with_supabase_attributes(su):
    rows = dict(su.execute(
        "SELECT rolname, rolbypassrls FROM pg_roles WHERE rolname IN ('anon','authenticated','service_role','fluxbase_dashboard')"
    ).fetchall())
    assert rows == {"anon": False, "authenticated": False, "service_role": True, "fluxbase_dashboard": False}
    assert one(su, "SELECT bool_and(NOT rolcanlogin) FROM pg_roles WHERE rolname IN ('anon','authenticated','service_role','fluxbase_dashboard')")


def test_second_database_of_the_cluster_installs_too(db):
    import uuid
    from conftest import connect
    name = "second_" + uuid.uuid4().hex[:8]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        with connect(name) as c:
            c.execute("CREATE EXTENSION fluxbase_admin")
            assert one(c, "SELECT dashboard_auth.needs_setup()") is True
            c.execute("DROP EXTENSION fluxbase_admin")
            c.execute("CREATE EXTENSION fluxbase_admin")
    finally:
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE {name} WITH (FORCE)")

