"""The privilege matrix: every function of the API, every kind of caller.

MATRIX below has one row per function of the schemas dashboard_auth, dashboard
and auth: a representative call with plausible arguments (a call that works,
or fails for a stated non-privilege reason, when the caller may make it) and
who may make it. test_every_function_has_a_row compares MATRIX with pg_proc at
run time, so a function added without a row fails ("no expectation for ...").

Each (function, caller) pair is its own test. The expected outcome is either
"ok" — the call got past every privilege check: it succeeded, or failed with
one of the row's listed non-privilege SQLSTATEs — or "42501", asserted exactly.
A refusal may come from Postgres (no EXECUTE, no USAGE on the schema) or from
the function itself (a viewer writing, a call that needs an admin session, the
explorer's session_user gate): for the caller it is the same promise.

Every call runs in its own transaction, rolled back afterwards, on one shared
database (a fresh database per pair would take minutes).
"""
import psycopg
import pytest

from conftest import PASSWORD, connect, one, setup_admin

# ---------------------------------------------------------------- callers
#
# login:   the connection's login role (session_user)
# session: dashboard_auth.use_session(<token>) first, in the same transaction
# role:    SET LOCAL ROLE first (current_user changes, session_user does not)
CALLERS = {
    "superuser": dict(login="postgres"),
    # a fluxbase_dashboard member without an admin session: acts as db:fb_web with admin power
    "member": dict(login="fb_web"),
    "admin_session": dict(login="fb_web", session="admin_token"),
    "viewer_session": dict(login="fb_web", session="viewer_token"),
    # an admin who passed the password step while mfa.required is on and has no
    # 2FA yet: the session may only enroll (scope mfa_enroll)
    "enroll_only_session": dict(login="fb_web", session="enroll_token"),
    # a dashboard member that switched to an app role (what apply_impersonation
    # does): the explorer still serves it (RLS decides), nothing else does
    "member_as_authenticated": dict(login="fb_web", role="authenticated"),
    "member_as_anon": dict(login="fb_web", role="anon"),
    # an app user's own connection (PostgREST's authenticator is a login like fb_app)
    "anon": dict(login="fb_app", role="anon"),
    "authenticated": dict(login="fb_app", role="authenticated"),
    "service_role": dict(login="fb_app", role="service_role"),
    # a login role with no membership at all
    "plain": dict(login="fb_plain"),
}
ALL = list(CALLERS)


def profile(ok):
    return {c: ("ok" if c in ok else "42501") for c in ALL}


# Who gets past the privilege checks, by kind of function.
# Any dashboard member, whatever its session (no role or scope check: the login
# flow, token-based steps, static definitions).
MEMBERS = profile({"superuser", "member", "admin_session", "viewer_session", "enroll_only_session"})
# Readers: a viewer may read everything the dashboard shows; an enroll-only session nothing.
READ = profile({"superuser", "member", "admin_session", "viewer_session"})
# Writers: a dashboard_viewer session is refused too.
WRITE = profile({"superuser", "member", "admin_session"})
# Needs an admin session (acts on "my" account, enrolling included): a database role without one is refused.
SESSION = profile({"admin_session", "viewer_session", "enroll_only_session"})
# Needs a full admin session (not one limited to enrolling in 2FA).
FULL_SESSION = profile({"admin_session", "viewer_session"})
# The table explorer: gated on session_user being a dashboard member, whatever current_user is.
EXPLORER_READ = profile({"superuser", "member", "admin_session", "viewer_session", "member_as_authenticated",
                         "member_as_anon"})
EXPLORER_WRITE = profile({"superuser", "member", "admin_session", "member_as_authenticated", "member_as_anon"})
# auth.uid() and friends: every role that may reach schema auth.
CLAIM_HELPERS = profile(set(ALL) - {"plain"})
# Internal functions: nobody but the superuser / the extension's owner.
INTERNAL = profile({"superuser"})
# dashboard._check_values: the explorer (SECURITY INVOKER) calls it as its
# caller, so its callers hold EXECUTE; it only tries casts the caller could
# write itself (see sql/explorer.sql).
CAST_HELPER = profile(set(ALL) - {"plain"})

# function (regprocedure text) -> (call, who, acceptable non-privilege SQLSTATEs)
# %(name)s parameters come from the fixture (see `context`).
M = {}


def row(sig, call, who, errors=()):
    assert sig not in M, sig
    M[sig] = (call, who, set(errors))


# ---- dashboard_auth: accounts
row("dashboard_auth.needs_setup()", "SELECT dashboard_auth.needs_setup()", MEMBERS)
row("dashboard_auth.setup_first_admin(text,text,text)",
    "SELECT * FROM dashboard_auth.setup_first_admin('second@example.com', %(pw)s, 'Second')", MEMBERS,
    errors={"55000"})  # setup is done: refused as a state, not a privilege
row("dashboard_auth.create_admin(text,text,text,text)",
    "SELECT dashboard_auth.create_admin('new-admin@example.com', %(pw)s, 'New Admin', 'dashboard_viewer')", WRITE)
row("dashboard_auth.list_admins()", "SELECT * FROM dashboard_auth.list_admins()", READ)
row("dashboard_auth.get_admin(uuid)", "SELECT * FROM dashboard_auth.get_admin(%(victim_id)s)", READ)
row("dashboard_auth.update_admin_role(uuid,text)",
    "SELECT dashboard_auth.update_admin_role(%(victim_id)s, 'dashboard_viewer')", WRITE)
row("dashboard_auth.delete_admin(uuid)", "SELECT dashboard_auth.delete_admin(%(victim_id)s)", WRITE)
row("dashboard_auth.unlock_admin(uuid)", "SELECT dashboard_auth.unlock_admin(%(victim_id)s)", WRITE)
row("dashboard_auth.login(text,text,inet,text)",
    "SELECT * FROM dashboard_auth.login('victim@example.com', %(pw)s, '10.0.0.1', 'matrix')", MEMBERS)
# step-up re-authentication: any full admin session, viewers included
row("dashboard_auth.reauthenticate(text)", "SELECT dashboard_auth.reauthenticate(%(pw)s)", FULL_SESSION)
row("dashboard_auth.change_password(text,text)",
    "SELECT dashboard_auth.change_password(%(pw)s, 'another-correct-horse-battery')", SESSION)
# ---- sessions
# validate_session is an inlined SQL function running as its caller: the two
# helpers it calls are executable by dashboard members (and nobody else).
row("dashboard_auth._token_digest(text)", "SELECT dashboard_auth._token_digest('fbs_x')", MEMBERS)
row("dashboard_auth._session_live(uuid,timestamp with time zone,interval,timestamp with time zone,timestamp with time zone)",
    "SELECT dashboard_auth._session_live(gen_random_uuid(), now(), '1 hour', now() + '1 hour', NULL)", MEMBERS)
row("dashboard_auth._validate_session_native(text)",
    "SELECT * FROM dashboard_auth._validate_session_native(%(victim_token)s)", INTERNAL)
row("dashboard_auth._session_copy_user()", "SELECT dashboard_auth._session_copy_user()", INTERNAL,
    errors={"0A000", "XX000", "39P01"})
row("dashboard_auth._sessions_follow_user()", "SELECT dashboard_auth._sessions_follow_user()", INTERNAL,
    errors={"0A000", "XX000", "39P01"})
row("dashboard_auth.validate_session(text)", "SELECT * FROM dashboard_auth.validate_session(%(victim_token)s)", MEMBERS)
row("dashboard_auth.use_session(text)", "SELECT dashboard_auth.use_session(%(victim_token)s)", MEMBERS)
row("dashboard_auth.logout(text)", "SELECT dashboard_auth.logout(%(victim_token)s)", MEMBERS)
row("dashboard_auth.list_sessions(uuid)", "SELECT * FROM dashboard_auth.list_sessions()", READ)
# someone else's session: a viewer may revoke only its own
row("dashboard_auth.revoke_session(uuid)", "SELECT dashboard_auth.revoke_session(%(victim_session)s)", WRITE)
row("dashboard_auth.revoke_all_sessions(uuid)", "SELECT dashboard_auth.revoke_all_sessions(%(victim_id)s)", WRITE)
# ---- settings
row("dashboard_auth.get_setting(text)", "SELECT dashboard_auth.get_setting('lockout.max_attempts')", READ)
row("dashboard_auth.set_setting(text,jsonb)", "SELECT dashboard_auth.set_setting('lockout.max_attempts', '7')", WRITE)
row("dashboard_auth.setting_definitions()", "SELECT * FROM dashboard_auth.setting_definitions()", MEMBERS)
row("dashboard_auth._setting_value(text)", "SELECT dashboard_auth._setting_value('lockout.max_attempts')", INTERNAL)
# ---- audit
row("dashboard_auth.verify_audit_chain(bigint,bytea)", "SELECT * FROM dashboard_auth.verify_audit_chain()", READ)
row("dashboard_auth.audit_witness()", "SELECT * FROM dashboard_auth.audit_witness()", READ)
row("dashboard_auth.audit_details(bigint)", "SELECT dashboard_auth.audit_details(1)", READ)
row("dashboard_auth.purge_audit(interval)", "SELECT dashboard_auth.purge_audit('100 years')", WRITE)
# (issue 35: audit streaming and retention)
row("dashboard_auth.audit_entries(bigint,integer)", "SELECT * FROM dashboard_auth.audit_entries(0, 10)", READ)
row("dashboard_auth.audit_checkpoint()", "SELECT * FROM dashboard_auth.audit_checkpoint()", READ)
row("dashboard_auth.purge_audit_through(bigint)", "SELECT dashboard_auth.purge_audit_through(1)", WRITE)
row("dashboard.audit_search(text,text,text,timestamp with time zone,timestamp with time zone,integer,bigint)",
    "SELECT * FROM dashboard.audit_search(action => 'admin.setup')", READ)
# trigger functions: refused to everyone but the superuser, who gets "can only be called as a trigger"
row("dashboard_auth._audit_guard()", "SELECT dashboard_auth._audit_guard()", INTERNAL, errors={"0A000", "XX000", "39P01"})
row("dashboard_auth._audit_chain()", "SELECT dashboard_auth._audit_chain()", INTERNAL, errors={"0A000", "XX000", "39P01"})
row("dashboard_auth._audit_row_change()", "SELECT dashboard_auth._audit_row_change()", INTERNAL,
    errors={"0A000", "XX000", "39P01"})
row("dashboard_auth._sync_session_idle_timeout()", "SELECT dashboard_auth._sync_session_idle_timeout()", INTERNAL,
    errors={"0A000", "XX000", "39P01"})
row("dashboard.audited_tables()", "SELECT * FROM dashboard.audited_tables()", READ)
row("dashboard.enable_audit(regclass,text[])", "SELECT dashboard.enable_audit('public.notes')", WRITE)
# the DDL watch (issue 17, item 5): outside an event trigger it has nothing to read
row("dashboard_auth._audit_ddl(text)", "SELECT dashboard_auth._audit_ddl('ddl_command_end')", INTERNAL,
    errors={"39P03", "XX000"})
row("dashboard_auth._audit_ddl_watch()", "SELECT dashboard_auth._audit_ddl_watch()", INTERNAL,
    errors={"0A000", "XX000"})
row("dashboard.disable_audit(regclass)", "SELECT dashboard.disable_audit('public.audited')", WRITE)
# ---- invitations and password resets
row("dashboard_auth.invite_admin(text,text,interval)",
    "SELECT dashboard_auth.invite_admin('invitee2@example.com', 'dashboard_viewer', '1 day')", WRITE)
row("dashboard_auth.accept_invitation(text,text,text)",
    "SELECT dashboard_auth.accept_invitation(%(invite_token)s, %(pw)s, 'Invitee')", MEMBERS)
row("dashboard_auth.list_invitations(boolean,boolean)", "SELECT * FROM dashboard_auth.list_invitations(true, true)", READ)
row("dashboard_auth.revoke_invitation(text)", "SELECT dashboard_auth.revoke_invitation(%(invite_token)s)", WRITE)
# (a viewer may ask for its own reset only — this is another admin's; an
# enroll-only session for none: it was let through before, see the test below)
row("dashboard_auth.request_password_reset(text)", "SELECT dashboard_auth.request_password_reset('victim@example.com')",
    WRITE)
row("dashboard_auth.reset_password(text,text)",
    "SELECT dashboard_auth.reset_password(%(reset_token)s, 'another-correct-horse-battery')", MEMBERS)
# ---- two-factor authentication: on the session's own account
row("dashboard_auth.totp_setup()", "SELECT * FROM dashboard_auth.totp_setup()", SESSION)
# wrong code / 2FA not set up: refused as input or state (the code is checked after the session)
row("dashboard_auth.totp_enable(text)", "SELECT dashboard_auth.totp_enable('000000')", SESSION,
    errors={"55000", "28000", "22023"})
# (a step-up action: sessions that have not re-authenticated get FBR01, test_stepup.py)
row("dashboard_auth.totp_disable(text)", "SELECT dashboard_auth.totp_disable('000000')", SESSION,
    errors={"55000", "28000", "22023", "FBR01"})
row("dashboard_auth.regenerate_backup_codes(text)", "SELECT dashboard_auth.regenerate_backup_codes('000000')", SESSION,
    errors={"55000", "28000", "22023"})
row("dashboard_auth.login_mfa(text,text)", "SELECT * FROM dashboard_auth.login_mfa('fbs_not-a-pending-token', '000000')",
    MEMBERS, errors={"28000", "22023"})
# ---- passkeys (issue 33); the matrix database has no webauthn settings (55000)
row("dashboard_auth.passkey_register_begin(text)", "SELECT dashboard_auth.passkey_register_begin('matrix')", SESSION,
    errors={"55000"})
row("dashboard_auth.passkey_register_finish(jsonb)", "SELECT dashboard_auth.passkey_register_finish('{}')", SESSION,
    errors={"22023"})
row("dashboard_auth.passkey_login_begin(text)", "SELECT dashboard_auth.passkey_login_begin('victim@example.com')", MEMBERS,
    errors={"55000"})
row("dashboard_auth.passkey_login_finish(jsonb,inet,text)",
    "SELECT * FROM dashboard_auth.passkey_login_finish('{}', '10.0.0.1', 'matrix')", MEMBERS, errors={"22023"})
row("dashboard_auth.passkey_mfa_begin(text)", "SELECT dashboard_auth.passkey_mfa_begin('fbm_not-a-pending-token')", MEMBERS,
    errors={"28000"})
row("dashboard_auth.login_mfa_passkey(text,jsonb)",
    "SELECT * FROM dashboard_auth.login_mfa_passkey('fbm_not-a-pending-token', '{}')", MEMBERS, errors={"22023", "28000"})
row("dashboard_auth.passkey_reauth_begin()", "SELECT dashboard_auth.passkey_reauth_begin()", FULL_SESSION,
    errors={"55000"})
row("dashboard_auth.reauthenticate_passkey(jsonb)", "SELECT dashboard_auth.reauthenticate_passkey('{}')", FULL_SESSION,
    errors={"22023"})
row("dashboard_auth.list_passkeys(uuid)", "SELECT * FROM dashboard_auth.list_passkeys(%(victim_id)s)", READ)
row("dashboard_auth.rename_passkey(uuid,text)", "SELECT dashboard_auth.rename_passkey(gen_random_uuid(), 'x')", READ,
    errors={"P0002"})
row("dashboard_auth.remove_passkey(uuid)", "SELECT dashboard_auth.remove_passkey(gen_random_uuid())", READ,
    errors={"P0002"})
# ---- monitoring
row("dashboard.active_sessions()", "SELECT * FROM dashboard.active_sessions()", READ)
row("dashboard.connection_stats()", "SELECT * FROM dashboard.connection_stats()", READ)
row("dashboard.query_stats(integer)", "SELECT * FROM dashboard.query_stats(5)", READ)
row("dashboard.storage_usage()", "SELECT * FROM dashboard.storage_usage()", READ)
row("dashboard.metrics()", "SELECT dashboard.metrics()", READ)
# ---- Analytics (issue 20)
row("dashboard.connection_breakdown()", "SELECT * FROM dashboard.connection_breakdown()", READ)
row("dashboard.cache_hit_ratio()", "SELECT * FROM dashboard.cache_hit_ratio()", READ)
row("dashboard.query_stats_available()", "SELECT * FROM dashboard.query_stats_available()", READ)
row("dashboard.top_queries(text,integer)", "SELECT * FROM dashboard.top_queries('calls', 5)", READ)
row("dashboard.largest_indexes(integer)", "SELECT * FROM dashboard.largest_indexes(5)", READ)
# ---- app users
row("dashboard.list_users(text,integer,uuid)", "SELECT * FROM dashboard.list_users()", READ)
row("dashboard.get_user(uuid)", "SELECT * FROM dashboard.get_user(%(app_user_id)s)", READ)
row("dashboard.search_users(text,boolean,text,text,boolean,integer,jsonb)",
    "SELECT * FROM dashboard.search_users('a', false, 'authenticated', 'created_at', true, 10)", READ)
row("dashboard.invite_user(text,text,jsonb)", "SELECT * FROM dashboard.invite_user('new-app-user@example.com')", WRITE)
row("dashboard.update_user_role(uuid,text)", "SELECT dashboard.update_user_role(%(app_user_id)s, 'service_role')", WRITE)
row("dashboard.reset_user_password(uuid)", "SELECT dashboard.reset_user_password(%(app_user_id)s)", WRITE)
row("dashboard.delete_user(uuid)", "SELECT dashboard.delete_user(%(app_user_id)s)", WRITE)
row("auth._users_normalize()", "SELECT auth._users_normalize()", INTERNAL, errors={"0A000", "XX000", "39P01"})
# ---- impersonation (each caller uses an impersonation session it started itself)
row("dashboard.start_impersonation(text,text)",
    "SELECT dashboard.start_impersonation('app-user@example.com', 'privilege matrix')", READ)
row("dashboard.apply_impersonation(uuid)", "SELECT dashboard.apply_impersonation(%(imp)s)", READ)
row("dashboard.stop_impersonation(uuid)", "SELECT dashboard.stop_impersonation(%(imp)s)", READ)
row("dashboard.query_as(uuid,text,jsonb)", "SELECT * FROM dashboard.query_as(%(imp)s, 'SELECT 1 AS one')", READ)
# ---- table explorer
row("dashboard.list_tables(text)", "SELECT * FROM dashboard.list_tables('public')", EXPLORER_READ)
row("dashboard.overview()", "SELECT dashboard.overview()", READ)
row("dashboard.table_overview(text)", "SELECT * FROM dashboard.table_overview('public')", EXPLORER_READ)
row("dashboard.describe_table(regclass)", "SELECT dashboard.describe_table('public.notes')", EXPLORER_READ)
row("dashboard.table_indexes(regclass)", "SELECT * FROM dashboard.table_indexes('public.notes')", EXPLORER_READ)
row("dashboard.table_policies(regclass)", "SELECT * FROM dashboard.table_policies('public.notes')", EXPLORER_READ)
row("dashboard.column_choices(regclass)", "SELECT * FROM dashboard.column_choices('public.notes')", EXPLORER_READ)
row("dashboard.browse(regclass,jsonb,jsonb,text,integer,jsonb)", "SELECT dashboard.browse('public.notes')", EXPLORER_READ)
row("dashboard.export_rows(regclass,jsonb,jsonb,text,text,jsonb,integer)",
    "SELECT * FROM dashboard.export_rows('public.notes')", EXPLORER_READ)
row("dashboard.count_rows(regclass,jsonb,text)", "SELECT dashboard.count_rows('public.notes')", EXPLORER_READ)
row("dashboard.update_row(regclass,jsonb,jsonb)",
    """SELECT dashboard.update_row('public.notes', '{"id": 1}', '{"body": "edited"}')""", EXPLORER_WRITE)
row("dashboard.update_rows(regclass,jsonb,jsonb)",
    """SELECT dashboard.update_rows('public.notes', '[{"id": 1}, {"id": 2}]', '{"body": "edited"}')""", EXPLORER_WRITE)
row("dashboard.insert_rows(regclass,jsonb)",
    """SELECT dashboard.insert_rows('public.notes', '[{"id": 100, "body": "new"}]')""", EXPLORER_WRITE)
row("dashboard.delete_rows(regclass,jsonb)", """SELECT dashboard.delete_rows('public.notes', '[{"id": 2}]')""",
    EXPLORER_WRITE)
row("dashboard.watch_table(regclass)", "SELECT dashboard.watch_table('public.notes')", EXPLORER_WRITE)
row("dashboard.unwatch_table(regclass)", "SELECT dashboard.unwatch_table('public.notes')", EXPLORER_WRITE)
row("dashboard._check_values(text[],oid[],integer[])",
    "SELECT * FROM dashboard._check_values(ARRAY['1', 'x'], ARRAY[23, 23]::oid[], ARRAY[-1, -1])", CAST_HELPER)
row("dashboard._notify_change()", "SELECT dashboard._notify_change()", INTERNAL, errors={"0A000", "XX000", "39P01"})
# ---- RLS debugging and advisor (issue 32): admins, viewers included (read-only)
row("dashboard.explain_access(regclass,jsonb,text,text,jsonb)",
    """SELECT dashboard.explain_access('public.notes', '{"id": 1}', 'anon')""", READ)
row("dashboard.advisories()", "SELECT * FROM dashboard.advisories()", READ)
row("dashboard.explain_zero_rows(text,text,jsonb,integer)",
    """SELECT dashboard.explain_zero_rows('anon', 'DELETE FROM public.notes WHERE id = 1 RETURNING id')""", READ)
# ---- auth: the claim helpers. EXECUTE is granted to PUBLIC, but as in Supabase
# USAGE on schema auth is for the API roles (anon, authenticated, service_role)
# and fluxbase_dashboard only, so a login with no membership is refused at the
# schema (test_impersonation.py: test_refused_roles says the same).
for f in ("uid", "role", "email", "jwt"):
    row(f"auth.{f}()", f"SELECT auth.{f}()", CLAIM_HELPERS)

SCHEMAS = ["dashboard_auth", "dashboard", "auth"]


# ---------------------------------------------------------------- fixture


@pytest.fixture(scope="module")
def matrix_db(template_db):
    import uuid

    name = "pm_" + uuid.uuid4().hex[:12]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")
        c.execute("GRANT service_role TO fb_app")
    conns = {}
    try:
        su = connect(name)
        conns["_setup"] = su
        su.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, body text)")
        su.execute("INSERT INTO public.notes VALUES (1, 'one'), (2, 'two')")
        su.execute("GRANT ALL ON public.notes TO PUBLIC")
        su.execute("CREATE TABLE public.audited (id int PRIMARY KEY)")
        su.execute("GRANT ALL ON public.audited TO PUBLIC")
        web = connect(name, user="fb_web")
        conns["_web"] = web
        admin_id, admin_token = setup_admin(web)
        ctx = {"pw": PASSWORD, "admin_id": admin_id, "admin_token": admin_token}
        ctx["viewer_id"] = one(web, "SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')",
                               (PASSWORD,))
        ctx["victim_id"] = one(web, "SELECT dashboard_auth.create_admin('victim@example.com', %s, 'Victim', 'dashboard_admin')",
                               (PASSWORD,))
        for who in ("viewer", "victim"):
            ctx[f"{who}_token"] = one(web, "SELECT session_token FROM dashboard_auth.login(%s, %s)",
                                      (f"{who}@example.com", PASSWORD))
        # The admin session re-authenticated (step-up, issue 20) for the whole
        # run: the matrix is about privileges; tests/test_stepup.py covers FBR01.
        web.execute("SELECT dashboard_auth.set_setting('session.reauth_window', '\"1 hour\"')")
        web.execute("BEGIN")
        web.execute("SELECT dashboard_auth.use_session(%s)", (admin_token,))
        assert one(web, "SELECT dashboard_auth.reauthenticate(%s)", (PASSWORD,)) is not None
        web.execute("COMMIT")
        # an admin without 2FA logging in while mfa.required is on gets an enroll-only session
        one(web, "SELECT dashboard_auth.create_admin('enrollee@example.com', %s, 'Enrollee', 'dashboard_admin')", (PASSWORD,))
        web.execute("SELECT dashboard_auth.set_setting('mfa.required', 'true')")
        ctx["enroll_token"] = one(web, "SELECT session_token FROM dashboard_auth.login('enrollee@example.com', %s)", (PASSWORD,))
        web.execute("SELECT dashboard_auth.set_setting('mfa.required', 'false')")
        ctx["victim_session"] = one(web, "SELECT id FROM dashboard_auth.list_sessions(%s)", (ctx["victim_id"],))
        ctx["invite_token"] = one(web, "SELECT dashboard_auth.invite_admin('invitee@example.com', 'dashboard_viewer')")
        ctx["reset_token"] = one(web, "SELECT dashboard_auth.request_password_reset('victim@example.com')")
        ctx["app_user_id"] = one(web, "SELECT user_id FROM dashboard.invite_user('app-user@example.com')")
        web.execute("SELECT dashboard.enable_audit('public.audited')")
        # An impersonation session of each caller that may start one (the actor
        # must own the session it applies); the others get the admin's.
        start = "SELECT dashboard.start_impersonation('app-user@example.com', 'privilege matrix')"
        imps = {"superuser": one(su, start), "member": one(web, start)}
        for who in ("admin", "viewer"):
            web.execute("BEGIN")
            web.execute("SELECT dashboard_auth.use_session(%s)", (ctx[f"{who}_token"],))
            imps[f"{who}_session"] = one(web, start)
            web.execute("COMMIT")
        for caller, spec in CALLERS.items():
            conns[caller] = connect(name, user=spec["login"])
        yield {"conns": conns, "ctx": ctx, "imps": imps, "name": name}
    finally:
        for c in conns.values():
            c.close()
        with connect("postgres") as c:
            c.execute(f"DROP DATABASE {name} WITH (FORCE)")


def run_as(m, caller, call):
    """Make `call` as `caller` in a transaction that is rolled back; the SQLSTATE or None."""
    spec = CALLERS[caller]
    conn = m["conns"][caller]
    params = dict(m["ctx"], imp=m["imps"].get(caller, m["imps"]["admin_session"]))
    conn.execute("BEGIN")
    try:
        if "session" in spec:
            conn.execute("SELECT dashboard_auth.use_session(%s)", (m["ctx"][spec["session"]],))
        if "role" in spec:
            conn.execute(f"SET LOCAL ROLE {spec['role']}")
        conn.execute(call, params).fetchall()
        return None, None
    except psycopg.Error as e:
        return e.sqlstate, str(e).strip().splitlines()[0]
    finally:
        conn.execute("ROLLBACK")


# ---------------------------------------------------------------- tests


def test_every_function_has_a_row(matrix_db):
    conn = matrix_db["conns"]["_setup"]
    conn.execute("SET search_path = pg_catalog")  # so regprocedure always names the schema
    catalog = {r[0] for r in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace::regnamespace::text = ANY(%s)",
        (SCHEMAS,))}
    conn.execute("RESET search_path")
    missing = sorted(catalog - set(M))
    stale = sorted(set(M) - catalog)
    assert not missing, "no expectation for " + ", ".join(missing) + " (add a row to MATRIX in tests/test_privilege_matrix.py)"
    assert not stale, "MATRIX has rows for functions that do not exist: " + ", ".join(stale)


@pytest.mark.parametrize("caller", ALL)
@pytest.mark.parametrize("function", sorted(M))
def test_privilege(matrix_db, function, caller):
    call, who, errors = M[function]
    expected = who[caller]
    state, message = run_as(matrix_db, caller, call)
    if expected == "42501":
        assert state == "42501", f"{caller} calling {function}: expected refusal 42501, got {state or 'success'} {message or ''}"
    else:
        assert state is None or state in errors, (
            f"{caller} calling {function}: expected it allowed (success"
            f"{' or ' + '/'.join(sorted(errors)) if errors else ''}), got {state} {message}"
        )


def snapshot(su):
    """What every table of the API schemas and public holds (one digest a
    table), but the audit log and its chain head (checked on their own)."""
    tables = [r[0] for r in su.execute(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('dashboard_auth', 'dashboard', 'auth', 'public')"
        " AND c.relname NOT IN ('audit_log', 'audit_chain_head') ORDER BY 1").fetchall()]
    return {t: one(su, f"SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x") for t in tables}


def test_refusals_leave_no_trace(matrix_db):
    """Every refused (function, caller) pair, attempted in a transaction that is
    then COMMITted (not rolled back): afterwards every table holds what it held
    before, and the audit log grew by refusal entries only, its chain intact."""
    su = matrix_db["conns"]["_setup"]
    before = snapshot(su)
    assert "public.notes" in before and "dashboard_auth.users" in before
    last_audit = one(su, "SELECT coalesce(max(id), 0) FROM dashboard_auth.audit_log")
    attempts = 0
    for function in sorted(M):
        call, who, _ = M[function]
        for caller in ALL:
            if who[caller] != "42501":
                continue
            spec = CALLERS[caller]
            conn = matrix_db["conns"][caller]
            params = dict(matrix_db["ctx"], imp=matrix_db["imps"].get(caller, matrix_db["imps"]["admin_session"]))
            conn.execute("BEGIN")
            try:
                if "session" in spec:
                    conn.execute("SELECT dashboard_auth.use_session(%s)", (matrix_db["ctx"][spec["session"]],))
                if "role" in spec:
                    conn.execute(f"SET LOCAL ROLE {spec['role']}")
                conn.execute(call, params).fetchall()
                state = None
            except psycopg.Error as e:
                state = e.sqlstate
            finally:
                conn.execute("COMMIT")
            assert state == "42501", f"{caller} calling {function}: {state or 'success'}"
            attempts += 1
    assert attempts > 500
    after = snapshot(su)
    changed = sorted(t for t in before if before[t] != after.get(t))
    assert changed == [] and sorted(after) == sorted(before), changed
    assert su.execute("SELECT id, body FROM public.notes ORDER BY id").fetchall() == [(1, "one"), (2, "two")]
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 4
    actions = {r[0] for r in su.execute("SELECT DISTINCT action FROM dashboard_auth.audit_log WHERE id > %s", (last_audit,))}
    assert actions <= {"api.refused"}, actions
    assert su.execute("SELECT ok FROM dashboard_auth.verify_audit_chain()").fetchone() == (True,)


def test_enroll_only_session_gets_no_password_reset_token(matrix_db):
    """A session that may only set up 2FA (mfa.required, password step passed)
    must not obtain a reset token — for another admin, or for itself — the one
    way such a session reached past enrolling."""
    for email in ("victim@example.com", "enrollee@example.com"):
        state, message = run_as(matrix_db, "enroll_only_session",
                                f"SELECT dashboard_auth.request_password_reset('{email}')")
        assert state == "42501", (email, state, message)
    su = matrix_db["conns"]["_setup"]
    assert one(su, "SELECT count(*) FROM dashboard_auth.password_resets r JOIN dashboard_auth.users u ON u.id = r.user_id "
                   "WHERE u.email = 'enrollee@example.com'") == 0
    # the same admin, once enrolled, has a full session and may again
    state, _ = run_as(matrix_db, "admin_session", "SELECT dashboard_auth.request_password_reset('victim@example.com')")
    assert state is None
