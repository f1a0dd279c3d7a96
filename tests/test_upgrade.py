"""Upgrades: install a released version, fill it through its API, ALTER EXTENSION
UPDATE, then check that the data is intact and that the updated database's
extension is *identical* to a fresh CREATE EXTENSION of the current version.

The released versions are the archived install scripts sql/versions/
fluxbase_admin--<v>.sql (installed by scripts/install.sh); each is tested.
The identity check compares a normalised description of every object the
extension owns (pg_depend deptype 'e') and everything hanging off them:
columns, defaults, constraints, indexes, triggers, policies, view and function
definitions, sequences, grants (and pg_init_privs), comments, the dump
configuration. A difference means the upgrade script
sql/fluxbase_admin--<old>--<new>.sql is missing something — see docs/RELEASING.md.
"""
import difflib
import pathlib
import re
import uuid

import psycopg
import pytest

from conftest import PASSWORD, connect, one

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXT = "fluxbase_admin"


def current_version():
    m = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    return m.group(1)


def archived_versions():
    found = [re.match(rf"{EXT}--(.+)\.sql$", p.name).group(1) for p in (ROOT / "sql" / "versions").glob(f"{EXT}--*.sql")]
    return sorted((v for v in found if "--" not in v and v != current_version()),
                  key=lambda v: [int(x) if x.isdigit() else x for x in re.split(r"[.-]", v)])


@pytest.fixture
def new_db(template_db):
    """Empty databases (no extension), dropped at the end. template_db makes the test roles."""
    made = []

    def make():
        name = "up_" + uuid.uuid4().hex[:12]
        with connect("postgres") as c:
            c.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return name

    yield make
    with connect("postgres") as c:
        for name in made:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ------------------------------------------------------------------ the catalog description


def _acl(items):
    return ",".join(sorted(items or [])) or "-"


def _block(key, text):
    """A multi-line value as lines each naming the object, so a diff line says where it is."""
    return [f"{key} | {line}" for line in (text or "").rstrip().splitlines()]


def describe(conn):
    """Every object fluxbase_admin owns, as sorted, self-describing lines."""
    conn.execute("SET search_path = pg_catalog")  # every name prints schema-qualified
    try:
        return _describe(conn)
    finally:
        conn.execute("RESET search_path")


def _describe(conn):
    q = lambda sql, *a: conn.execute(sql, a).fetchall()  # noqa: E731
    ext_oid, relocatable, config, conditions = q(
        "SELECT oid, extrelocatable, extconfig, extcondition FROM pg_extension WHERE extname = %s", EXT)[0]
    out = {}
    ext_lines = [f"extension | relocatable={relocatable}"]
    for rel, cond in sorted(zip(
            [r[0] for r in q("SELECT c::regclass::text FROM unnest(%s::oid[]) c", config or [])], conditions or [])):
        ext_lines.append(f"extension | pg_dump config table {rel} condition {cond!r}")
    out["extension"] = ext_lines

    members = q(
        """SELECT d.classid::regclass::text, d.objid, i.type, i.identity
             FROM pg_depend d, LATERAL pg_identify_object(d.classid, d.objid, 0) i
            WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = %s AND d.deptype = 'e'""", ext_oid)
    for klass, oid, typ, identity in members:
        key = f"{typ} {identity}"
        lines = [key]
        if klass == "pg_class":
            lines += _describe_relation(q, key, oid)
        elif klass == "pg_proc":
            kind, acl, owner, comment = q(
                "SELECT prokind, proacl::text[], pg_get_userbyid(proowner), obj_description(oid, 'pg_proc') "
                "FROM pg_proc WHERE oid = %s", oid)[0]
            if kind != "a":
                lines += _block(key, q("SELECT pg_get_functiondef(%s)", oid)[0][0])
            lines += [f"{key} | owner {owner}", f"{key} | acl {_acl(acl)}", f"{key} | comment {comment!r}"]
        elif klass == "pg_namespace":
            acl, owner, comment = q(
                "SELECT nspacl::text[], pg_get_userbyid(nspowner), obj_description(oid, 'pg_namespace') "
                "FROM pg_namespace WHERE oid = %s", oid)[0]
            lines += [f"{key} | owner {owner}", f"{key} | acl {_acl(acl)}", f"{key} | comment {comment!r}"]
        elif klass == "pg_type":
            typtype, base, acl, comment = q(
                "SELECT typtype, format_type(typbasetype, typtypmod), typacl::text[], obj_description(oid, 'pg_type') "
                "FROM pg_type WHERE oid = %s", oid)[0]
            lines += [f"{key} | typtype {typtype} base {base}", f"{key} | acl {_acl(acl)}", f"{key} | comment {comment!r}"]
            for (label,) in q("SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder", oid):
                lines.append(f"{key} | enum label {label}")
            for name, d in q("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = %s ORDER BY 1", oid):
                lines.append(f"{key} | constraint {name} {d}")
            for name, typ_, in q(
                    """SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_type t
                       JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                       WHERE t.oid = %s AND t.typtype = 'c' ORDER BY a.attnum""", oid):
                lines.append(f"{key} | attribute {name} {typ_}")
        # (other kinds — casts, operators, languages — are compared by identity)
        # pg_init_privs: the privileges pg_dump treats as the extension's own
        for sub, privtype, init in q(
                "SELECT objsubid, privtype, initprivs::text[] FROM pg_init_privs WHERE classoid = %s::regclass AND objoid = %s "
                "ORDER BY objsubid", klass, oid):
            col = f" column {sub}" if sub else ""
            if sub:
                col = " column " + q("SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum = %s", oid, sub)[0][0]
            lines.append(f"{key} | pg_init_privs{col} ({privtype}) {_acl(init)}")
        if key in out:
            lines = out[key] + lines
        out[key] = lines
    return [line for k in sorted(out) for line in out[k]]


def _describe_relation(q, key, oid):
    (kind, persistence, rls, force_rls, options, replident, owner, acl, comment, viewdef) = q(
        """SELECT relkind, relpersistence, relrowsecurity, relforcerowsecurity, reloptions, relreplident,
                  pg_get_userbyid(relowner), relacl::text[], obj_description(oid, 'pg_class'),
                  CASE WHEN relkind IN ('v', 'm') THEN pg_get_viewdef(oid) END
             FROM pg_class WHERE oid = %s""", oid)[0]
    lines = [f"{key} | relkind {kind} persistence {persistence} rls {rls} force_rls {force_rls} "
             f"options {options} replica_identity {replident}",
             f"{key} | owner {owner}", f"{key} | acl {_acl(acl)}", f"{key} | comment {comment!r}"]
    lines += _block(f"{key} | view", viewdef)
    # Columns by name: ALTER TABLE ADD COLUMN can only append, so the position is
    # not compared (write new columns at the end of CREATE TABLE as well).
    for (name, typ, notnull, default, identity, generated, collation, cacl, copts, compression,
         ccomment, stattarget, storage, typstorage) in q(
            """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                      a.attidentity, a.attgenerated,
                      CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
                      a.attacl::text[], a.attoptions, a.attcompression, col_description(a.attrelid, a.attnum),
                      a.attstattarget, a.attstorage, t.typstorage
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attname""", oid):
        # (this server keeps a per-relation stamp, pg_attver=<n>, among the column options: not schema)
        copts = [o for o in (copts or []) if not o.startswith("pg_attver=")]
        lines.append(
            f"{key} | column {name} {typ}{' NOT NULL' if notnull else ''}"
            f"{f' DEFAULT {default}' if default else ''}{f' IDENTITY {identity}' if identity else ''}"
            f"{f' GENERATED {generated}' if generated else ''}{f' COLLATE {collation}' if collation else ''}"
            f"{f' COMPRESSION {compression}' if compression else ''}{f' OPTIONS {copts}' if copts else ''}"
            # (the default statistics target: -1 up to PostgreSQL 16, NULL from 17)
            f"{f' STATISTICS {stattarget}' if stattarget not in (-1, None) else ''}"
            f"{f' STORAGE {storage}' if storage != typstorage else ''}"
            f" acl {_acl(cacl)} comment {ccomment!r}")
    for name, contype, definition, deferrable, deferred, validated in q(
            "SELECT conname, contype, pg_get_constraintdef(oid), condeferrable, condeferred, convalidated "
            "FROM pg_constraint WHERE conrelid = %s ORDER BY conname", oid):
        lines.append(f"{key} | constraint {name} ({contype}) {definition}"
                     f"{' DEFERRABLE' if deferrable else ''}{' INITIALLY DEFERRED' if deferred else ''}"
                     f"{'' if validated else ' NOT VALID'}")
    for definition, clustered, replident_idx, icomment in q(
            "SELECT pg_get_indexdef(indexrelid), indisclustered, indisreplident, obj_description(indexrelid, 'pg_class') "
            "FROM pg_index WHERE indrelid = %s ORDER BY 1", oid):
        lines.append(f"{key} | index {definition}{' CLUSTERED' if clustered else ''}"
                     f"{' REPLICA IDENTITY' if replident_idx else ''} comment {icomment!r}")
    for name, definition, enabled in q(
            "SELECT tgname, pg_get_triggerdef(oid), tgenabled FROM pg_trigger WHERE tgrelid = %s AND NOT tgisinternal "
            "ORDER BY tgname", oid):
        lines.append(f"{key} | trigger {name} [{enabled}] {definition}")
    for name, cmd, permissive, roles, qual, check in q(
            """SELECT polname, polcmd, polpermissive,
                      ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END FROM unnest(polroles) r ORDER BY 1),
                      pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
                 FROM pg_policy WHERE polrelid = %s ORDER BY polname""", oid):
        lines.append(f"{key} | policy {name} {cmd} permissive={permissive} to {roles} using {qual} check {check}")
    for name, definition in q(
            "SELECT rulename, pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class = %s AND rulename <> '_RETURN' ORDER BY 1",
            oid):
        lines.append(f"{key} | rule {name} {definition}")
    for row in q(
            "SELECT format_type(seqtypid, NULL), seqstart, seqincrement, seqmax, seqmin, seqcache, seqcycle "
            "FROM pg_sequence WHERE seqrelid = %s", oid):
        lines.append(f"{key} | sequence {row}")
    for (owned_by,) in q(
            """SELECT d.refobjid::regclass::text || '.' || a.attname || ' (' || d.deptype::text || ')'
                 FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = %s AND d.refclassid = 'pg_class'::regclass
                  AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0""", oid):
        lines.append(f"{key} | owned by {owned_by}")
    return lines


def schema_diff(fresh, updated, old, new):
    return "\n".join(difflib.unified_diff(
        fresh, updated, fromfile=f"fresh CREATE EXTENSION {EXT} ({new})",
        tofile=f"CREATE EXTENSION {EXT} VERSION '{old}' + ALTER EXTENSION UPDATE", lineterm="", n=1))


# ------------------------------------------------------------------ install an old version


def create_old(conn, version):
    try:
        conn.execute(f"CREATE EXTENSION {EXT} VERSION '{version}'")
    except psycopg.Error as e:
        pytest.fail(
            f"CREATE EXTENSION {EXT} VERSION '{version}' failed: {e}\n"
            f"The archived install script sql/versions/{EXT}--{version}.sql creates its C functions by symbol name "
            f"(<rust_fn>_wrapper) in the CURRENT library. If the error names a missing function/symbol, a "
            f"#[pg_extern] Rust function that version references was removed or renamed: never remove one — keep it "
            f"(hidden: not granted, or moved out of the API by the upgrade script) — see docs/RELEASING.md. "
            f"If the script is not installed, run scripts/install.sh (it copies sql/versions/*).")


def fill_through_the_api(dbname):
    """Realistic data made through the old version's API; returns what to check after the update."""
    su = connect(dbname)
    web = connect(dbname, user="fb_web")
    try:
        uid, token = web.execute("SELECT user_id, session_token FROM dashboard_auth.setup_first_admin(%s, %s, %s)",
                                 ("root@example.com", PASSWORD, "Root Admin")).fetchone()
        second = one(web, "SELECT dashboard_auth.create_admin('second@example.com', %s, 'Second', 'dashboard_admin')",
                     (PASSWORD,))
        viewer = one(web, "SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Viewer', 'dashboard_viewer')",
                     (PASSWORD,))
        token2 = one(web, "SELECT session_token FROM dashboard_auth.login('second@example.com', %s, '10.1.2.3', 'ua')",
                     (PASSWORD,))
        viewer_token = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
        one(web, "SELECT status FROM dashboard_auth.login('second@example.com', 'a-wrong-password-here')")
        # audited actions by an admin session
        web.execute("BEGIN")
        web.execute("SELECT dashboard_auth.use_session(%s)", (token,))
        # Since 0.3.0 security settings and role changes are step-up actions.
        if one(web, "SELECT pg_catalog.to_regproc('dashboard_auth.reauthenticate') IS NOT NULL"):
            web.execute("SELECT dashboard_auth.reauthenticate(%s)", (PASSWORD,))
        web.execute("SELECT dashboard_auth.set_setting('lockout.max_attempts', '7')")
        web.execute("SELECT dashboard_auth.update_admin_role(%s, 'dashboard_viewer')", (second,))
        web.execute("SELECT dashboard_auth.update_admin_role(%s, 'dashboard_admin')", (second,))
        invite = one(web, "SELECT dashboard_auth.invite_admin('invitee@example.com', 'dashboard_viewer')")
        app_user = one(web, "SELECT user_id FROM dashboard.invite_user('app@example.com')")
        web.execute("COMMIT")
        # a confirmed app user (0.1.0/0.2.0 had a plain confirmed_at column; since 0.3.0 it is
        # generated from Supabase's email_confirmed_at)
        generated = one(su, "SELECT attgenerated <> '' FROM pg_catalog.pg_attribute "
                            "WHERE attrelid = 'auth.users'::regclass AND attname = 'confirmed_at'")
        column = "email_confirmed_at" if generated else "confirmed_at"
        su.execute(f"UPDATE auth.users SET {column} = '2026-01-02 03:04:05+00' WHERE id = %s", (app_user,))
        viewer_session = one(web, "SELECT id FROM dashboard_auth.list_sessions(%s)", (viewer,))
        web.execute("SELECT dashboard_auth.revoke_session(%s)", (viewer_session,))
        # an audited user table, changed directly and through the explorer
        su.execute("CREATE TABLE public.orders (id int PRIMARY KEY, item text, qty int)")
        su.execute("GRANT ALL ON public.orders TO fluxbase_dashboard")
        web.execute("SELECT dashboard.enable_audit('public.orders')")
        su.execute("INSERT INTO public.orders VALUES (1, 'apple', 3), (2, 'pear', 1)")
        su.execute("UPDATE public.orders SET qty = qty + 1 WHERE id = 1")
        web.execute("""SELECT dashboard.insert_rows('public.orders', '[{"id": 3, "item": "fig", "qty": 9}]')""")
        web.execute("""SELECT dashboard.update_row('public.orders', '{"id": 2}', '{"qty": 5}')""")
        audit = su.execute("SELECT id, action, row_hash FROM dashboard_auth.audit_log ORDER BY id").fetchall()
        assert su.execute("SELECT ok FROM dashboard_auth.verify_audit_chain()").fetchone() == (True,)
        return dict(uid=uid, token=token, second=second, token2=token2, viewer_token=viewer_token, invite=invite,
                    app_user=app_user, audit=audit)
    finally:
        su.close()
        web.close()


# ------------------------------------------------------------------ the tests


def test_archived_versions_are_installed():
    versions = archived_versions()
    assert versions, "no archived install script in sql/versions (the released 0.1.0 must be there)"
    with connect("postgres") as c:
        available = {r[0] for r in c.execute(
            "SELECT version FROM pg_available_extension_versions WHERE name = %s", (EXT,))}
        default = one(c, "SELECT default_version FROM pg_available_extensions WHERE name = %s", (EXT,))
    assert default == current_version()
    missing = [v for v in versions if v not in available]
    assert not missing, f"versions {missing} are not installed: run scripts/install.sh (it copies sql/versions/*)"


@pytest.mark.parametrize("old", archived_versions())
def test_update_keeps_data_and_matches_a_fresh_install(new_db, old):
    new = current_version()
    upgraded, fresh = new_db(), new_db()
    with connect(upgraded) as c:
        create_old(c, old)
        assert one(c, "SELECT extversion FROM pg_extension WHERE extname = %s", (EXT,)) == old
    try:
        before = fill_through_the_api(upgraded)
    except psycopg.Error as e:
        pytest.fail(
            f"the {old} API failed on the current library: {e}\n"
            f"Between installing a new build and ALTER EXTENSION UPDATE, the new library serves the old "
            f"version's SQL functions: a #[pg_extern] Rust function must keep the argument and result types its "
            f"archived definitions declare. To change a signature, add a Rust function under a new name and keep "
            f"the old one (docs/RELEASING.md).")

    with connect(upgraded) as c:
        try:
            c.execute(f"ALTER EXTENSION {EXT} UPDATE")
        except psycopg.Error as e:
            pytest.fail(f"ALTER EXTENSION {EXT} UPDATE from {old} failed: {e}\n"
                        f"(is there an upgrade path {old} -> {new}: sql/{EXT}--<a>--<b>.sql files, installed?)")
        assert one(c, "SELECT extversion FROM pg_extension WHERE extname = %s", (EXT,)) == new != old

    # the data survived, and works
    with connect(upgraded, user="fb_web") as web:
        assert one(web, "SELECT extversion FROM pg_extension WHERE extname = %s", (EXT,)) == new
        assert one(web, "SELECT user_id FROM dashboard_auth.validate_session(%s)", (before["token"],)) == before["uid"]
        assert one(web, "SELECT user_id FROM dashboard_auth.validate_session(%s)", (before["token2"],)) == before["second"]
        # the revoked session stays revoked
        assert one(web, "SELECT user_id FROM dashboard_auth.validate_session(%s)", (before["viewer_token"],)) is None
        assert one(web, "SELECT status FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)) == "ok"
        assert one(web, "SELECT dashboard_auth.get_setting('lockout.max_attempts')") == 7
        assert web.execute("SELECT email, role FROM dashboard_auth.list_admins() ORDER BY email").fetchall() == [
            ("root@example.com", "dashboard_admin"), ("second@example.com", "dashboard_admin"),
            ("viewer@example.com", "dashboard_viewer")]
        assert one(web, "SELECT email FROM dashboard.get_user(%s)", (before["app_user"],)) == "app@example.com"
        # 0.2.0's confirmed_at is Supabase's email_confirmed_at; confirmed_at is now generated from it
        assert web.execute("SELECT confirmed_at = '2026-01-02 03:04:05+00', email_confirmed_at = confirmed_at, phone "
                           "FROM dashboard.get_user(%s)", (before["app_user"],)).fetchone() == (True, True, None)
        assert web.execute("SELECT id, action, row_hash FROM dashboard_auth.audit_log WHERE id <= %s ORDER BY id",
                           (before["audit"][-1][0],)).fetchall() == before["audit"]
        assert web.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)
        # the old invitation is accepted by the new version; the audited table is still audited
        web.execute("SELECT dashboard_auth.accept_invitation(%s, %s, 'Invitee')", (before["invite"], PASSWORD))
        assert ("public.orders", ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]) in web.execute(
            "SELECT * FROM dashboard.audited_tables()").fetchall()
    with connect(upgraded) as su:
        n = one(su, "SELECT count(*) FROM dashboard_auth.audit_log")
        su.execute("DELETE FROM public.orders WHERE id = 3")
        assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log") == n + 1
        assert su.execute("SELECT ok, first_bad_id FROM dashboard_auth.verify_audit_chain()").fetchone() == (True, None)

    # the key check: the updated extension is the fresh one, object by object
    with connect(fresh) as c:
        c.execute(f"CREATE EXTENSION {EXT}")
        fresh_desc = describe(c)
    with connect(upgraded) as c:
        upgraded_desc = describe(c)
    if fresh_desc != upgraded_desc:
        pytest.fail(
            f"after ALTER EXTENSION {EXT} UPDATE from {old}, the extension differs from a fresh {new} install.\n"
            f"Lines with '-' are what a fresh install has and the updated database lacks (add them to the upgrade "
            f"script sql/{EXT}--{old}--{new}.sql or the chain of scripts to it); '+' lines are what the update "
            f"left that a fresh install does not have:\n" + schema_diff(fresh_desc, upgraded_desc, old, new),
            pytrace=False)


def test_the_comparison_sees_every_kind_of_change(new_db):
    """The description is thorough: each kind of drift an upgrade script could miss shows up."""
    name = new_db()
    with connect(name) as c:
        c.execute(f"CREATE EXTENSION {EXT}")
        base = describe(c)
        assert len(base) > 300
        changes = [
            ("ALTER TABLE dashboard_auth.sessions ADD COLUMN device text", "column device text"),
            ("ALTER TABLE dashboard_auth.audit_log ALTER COLUMN actor DROP NOT NULL", "column actor text STORAGE m acl"),
            ("ALTER TABLE dashboard_auth.audit_log ALTER COLUMN row_hash SET STORAGE EXTENDED", "column row_hash bytea acl"),
            ("ALTER TABLE dashboard_auth.audit_chain_head RESET (fillfactor)", "options None"),
            ("ALTER TABLE dashboard_auth.sessions ALTER COLUMN scope SET DEFAULT 'mfa_pending'", "DEFAULT 'mfa_pending'"),
            ("CREATE INDEX sessions_by_ip ON dashboard_auth.sessions (ip)", "sessions_by_ip"),
            ("ALTER TABLE dashboard_auth.users ADD CONSTRAINT name_short CHECK (length(full_name) < 500)", "name_short"),
            ("COMMENT ON TABLE dashboard_auth.sessions IS 'changed'", "comment 'changed'"),
            ("GRANT SELECT ON dashboard_auth.credentials TO fluxbase_dashboard", "acl"),
            ("GRANT EXECUTE ON FUNCTION dashboard_auth.list_admins() TO anon", "anon=X/postgres"),
            ("ALTER FUNCTION dashboard_auth.list_admins() SET work_mem = '8MB'", "work_mem"),
            ("ALTER FUNCTION dashboard_auth.needs_setup() VOLATILE", "dashboard_auth.needs_setup()"),
            ("ALTER VIEW dashboard_auth.settings SET (security_barrier = true)", "security_barrier"),
            ("ALTER TABLE dashboard_auth.audit_log DISABLE TRIGGER USER", "[D]"),
            ("ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY", "rls True"),
        ]
        for sql, marker in changes:
            c.execute("BEGIN")
            c.execute(sql)
            changed = describe(c)
            c.execute("ROLLBACK")
            diff = schema_diff(base, changed, "x", "y")
            assert diff, f"the comparison did not see: {sql}"
            assert marker in diff, (sql, diff)
        # a new function the fresh install does not have (made an extension member, as a script would)
        c.execute("BEGIN")
        c.execute("CREATE FUNCTION dashboard.extra() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        c.execute(f"ALTER EXTENSION {EXT} ADD FUNCTION dashboard.extra()")
        diff = schema_diff(base, describe(c), "x", "y")
        c.execute("ROLLBACK")
        assert "+function dashboard.extra()" in diff, diff
