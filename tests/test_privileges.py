"""Who may call what: the privilege matrix, search_path pinning, grants on tables."""
import psycopg
import pytest

from conftest import PASSWORD, connect, one, setup_admin

API_SCHEMAS = ("dashboard_auth", "dashboard")


def api_functions(conn):
    return conn.execute(
        """SELECT p.oid::regprocedure::text, p.oid FROM pg_proc p
           WHERE p.pronamespace::regnamespace::text = ANY(%s) AND p.proname NOT LIKE '\\_%%'
           ORDER BY 1""",
        (list(API_SCHEMAS),),
    ).fetchall()


# The table explorer must keep working after dashboard.apply_impersonation has
# switched the role to anon/authenticated (RLS decides what is seen), so those
# roles hold EXECUTE on it; every explorer function then refuses unless the
# *login* (session_user) is a member of fluxbase_dashboard — see
# test_explorer_refuses_app_logins below.
EXPLORER = {"browse", "export_rows", "count_rows", "list_tables", "describe_table", "table_indexes", "table_policies", "column_choices",
            "table_overview",
            "update_row",
            "update_rows", "insert_rows", "delete_rows", "watch_table", "unwatch_table"}


def test_every_api_function_is_executable_only_by_the_dashboard_group(su):
    funcs = api_functions(su)
    assert len(funcs) >= 17
    for role in ["anon", "authenticated", "service_role", "fb_plain", "fb_app", "public"]:
        allowed = [name for name, oid in funcs if one(su, "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, oid))]
        if role in ("anon", "authenticated", "service_role"):
            allowed = [n for n in allowed if not (n.startswith("dashboard.") and n.split(".")[1].split("(")[0] in EXPLORER)]
        assert allowed == [], (role, allowed)
    denied = [name for name, oid in funcs if not one(su, "SELECT has_function_privilege('fb_web', %s, 'EXECUTE')", (oid,))]
    assert denied == []


def test_internal_functions_are_not_callable_by_the_dashboard_group(su):
    # dashboard._check_values tries casts as the caller (casting into a user type
    # may run user code, so it must not run as the owner): the explorer, a
    # SECURITY INVOKER function, needs its callers to hold EXECUTE on it.
    internal = su.execute(
        """SELECT p.oid, p.proname FROM pg_proc p WHERE p.pronamespace::regnamespace::text = ANY(%s) AND p.proname LIKE '\\_%%'""",
        (["dashboard_auth", "dashboard", "auth"],),
    ).fetchall()
    assert len(internal) >= 3
    for oid, name in internal:
        # _token_digest and _session_live: called by the inlined SQL function
        # validate_session, whose query runs as its caller (sql/validate_session.sql).
        expected = name in ("_check_values", "_token_digest", "_session_live")
        assert one(su, "SELECT has_function_privilege('fb_web', %s, 'EXECUTE')", (oid,)) is expected, name


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_explorer_refuses_app_logins(db, role):
    su = db.conn()
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, body text)")
    su.execute("GRANT ALL ON public.notes TO anon, authenticated, service_role")
    su.execute("GRANT service_role TO fb_app")
    conn = db.conn("fb_app")
    conn.execute(f"SET ROLE {role}")
    for call in ["SELECT dashboard.browse('public.notes')", "SELECT * FROM dashboard.list_tables()",
                 "SELECT dashboard.insert_rows('public.notes', '[{\"id\": 1, \"body\": \"x\"}]')",
                 "SELECT dashboard.watch_table('public.notes')"]:
        with pytest.raises(psycopg.Error) as e:
            conn.execute(call)
        assert e.value.sqlstate == "42501", call
    assert one(su, "SELECT count(*) FROM public.notes") == 0


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



# validate_session is inlined into its caller's query, so fluxbase_dashboard
# holds SELECT on columns of dashboard_auth.sessions and EXECUTE on two internal
# helpers (sql/grants.sql). Nobody else may use any of that.
SESSION_COLUMNS = ["id", "user_id", "token_digest", "scope", "last_seen_at", "expires_at", "idle_timeout",
                   "revoked_at", "user_email", "user_role"]
HELPERS = [
    "SELECT dashboard_auth._token_digest('fbs_x')",
    "SELECT dashboard_auth._session_live(gen_random_uuid(), now(), '1 hour', now() + interval '1 hour', NULL)",
    "SELECT * FROM dashboard_auth._validate_session_native('fbs_x')",
]


@pytest.mark.parametrize("role", ["anon", "authenticated", "fb_plain"])
def test_validate_session_grants_reach_no_other_role(db, role):
    su = db.conn()
    setup_admin(su)
    conn = db.conn("fb_plain" if role == "fb_plain" else "fb_app")
    if role != "fb_plain":
        conn.execute(f"SET ROLE {role}")
    for column in SESSION_COLUMNS:
        assert one(su, "SELECT has_column_privilege(%s, 'dashboard_auth.sessions', %s, 'SELECT')", (role, column)) is False
        with pytest.raises(psycopg.Error) as e:
            conn.execute(f"SELECT {column} FROM dashboard_auth.sessions")
        assert e.value.sqlstate == "42501", column
    for sql in HELPERS:
        with pytest.raises(psycopg.Error) as e:
            conn.execute(sql)
        assert e.value.sqlstate == "42501", sql
    # and the function itself: not inlined for them (no EXECUTE), refused
    with pytest.raises(psycopg.Error) as e:
        conn.execute("SELECT * FROM dashboard_auth.validate_session('fbs_x')")
    assert e.value.sqlstate == "42501"


def test_dashboard_group_holds_just_the_validate_session_grants(db):
    su = db.conn()
    for column in SESSION_COLUMNS:
        assert one(su, "SELECT has_column_privilege('fluxbase_dashboard', 'dashboard_auth.sessions', %s, 'SELECT')", (column,))
    for column in SESSION_COLUMNS:
        for priv in ["INSERT", "UPDATE"]:
            assert one(su, "SELECT has_column_privilege('fluxbase_dashboard', 'dashboard_auth.sessions', %s, %s)", (column, priv)) is False
    # the Rust predecessor stays internal: nobody but the owner may call it
    assert one(su, "SELECT has_function_privilege('fb_web', 'dashboard_auth._validate_session_native(text)', 'EXECUTE')") is False
