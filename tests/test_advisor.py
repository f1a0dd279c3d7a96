"""dashboard.advisories() (issue 32): each lint fires on its bad case and stays
quiet on the fixed one. Findings come from the catalogs and parse trees, so a
lookalike in text (a comment, a string elsewhere) never fires."""
import psycopg
import pytest

from conftest import as_session, one, setup_admin


def findings(conn, lint=None):
    rows = conn.execute("SELECT lint, level, schema_name, object_name, detail, remedy FROM dashboard.advisories()").fetchall()
    return [r for r in rows if lint is None or r[0] == lint]


def objects(conn, lint):
    return {(r[2], r[3]) for r in findings(conn, lint)}


# lint -> (setup SQL with the problem, SQL that fixes it, (schema, object) reported, level)
CASES = {
    "rls_disabled_exposed": (
        "CREATE TABLE public.open (id int PRIMARY KEY); GRANT SELECT ON public.open TO anon;",
        "ALTER TABLE public.open ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON public.open FOR SELECT USING (id > 0);",
        ("public", "open"), "error"),
    "rls_enabled_no_policy": (
        "CREATE TABLE public.shut (id int PRIMARY KEY); ALTER TABLE public.shut ENABLE ROW LEVEL SECURITY;",
        "CREATE POLICY p ON public.shut FOR SELECT TO authenticated USING (id > 0);",
        ("public", "shut"), "info"),
    "policy_always_true": (
        "CREATE TABLE public.t (id int PRIMARY KEY, owner uuid); ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY everyone ON public.t FOR SELECT TO authenticated USING (1 = 1 OR owner = auth.uid());"
        "CREATE INDEX ON public.t (owner);",
        "ALTER POLICY everyone ON public.t USING (owner = auth.uid());",
        ("public", "t"), "warn"),
    "policy_uses_user_metadata": (
        "CREATE TABLE public.m (id int PRIMARY KEY); ALTER TABLE public.m ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY meta ON public.m TO authenticated USING ((auth.jwt() -> 'user_metadata' ->> 'role') = 'admin');",
        "ALTER POLICY meta ON public.m USING ((auth.jwt() -> 'app_metadata' ->> 'role') = 'admin');",
        ("public", "m"), "error"),
    "security_definer_exposed": (
        "CREATE FUNCTION public.danger() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = '' AS 'SELECT 1';",
        "REVOKE EXECUTE ON FUNCTION public.danger() FROM PUBLIC;",
        ("public", "public.danger()"), "warn"),
    "function_search_path_mutable": (
        "CREATE FUNCTION public.loose() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        "ALTER FUNCTION public.loose() SET search_path = '';",
        ("public", "public.loose()"), "warn"),
    "security_definer_view_exposed": (
        "CREATE TABLE public.priv (id int PRIMARY KEY); ALTER TABLE public.priv ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY p ON public.priv FOR SELECT TO authenticated USING (id > 0);"
        "CREATE VIEW public.priv_v AS SELECT * FROM public.priv; GRANT SELECT ON public.priv_v TO authenticated;",
        "ALTER VIEW public.priv_v SET (security_invoker = on);",
        ("public", "priv_v"), "error"),
    "auth_users_exposed": (
        "CREATE VIEW public.people AS SELECT id, email FROM auth.users; GRANT SELECT ON public.people TO anon;",
        "REVOKE ALL ON public.people FROM anon;",
        ("public", "people"), "error"),
    "no_primary_key": (
        "CREATE TABLE public.loose_rows (a int);",
        "ALTER TABLE public.loose_rows ADD PRIMARY KEY (a);",
        ("public", "loose_rows"), "info"),
    "unindexed_foreign_key": (
        "CREATE TABLE public.parent (id int PRIMARY KEY);"
        "CREATE TABLE public.child (id int PRIMARY KEY, a int, parent_id int REFERENCES public.parent);",
        "CREATE INDEX ON public.child (parent_id, a);",
        ("public", "child"), "info"),
    "duplicate_index": (
        "CREATE TABLE public.dup (id int PRIMARY KEY, a int); CREATE INDEX dup_a1 ON public.dup (a);"
        "CREATE INDEX dup_a2 ON public.dup (a);",
        "DROP INDEX public.dup_a2;",
        ("public", "dup"), "warn"),
    "policy_column_unindexed": (
        "CREATE TABLE public.owned (id int PRIMARY KEY, user_id uuid); ALTER TABLE public.owned ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY mine ON public.owned TO authenticated USING (user_id = (SELECT auth.uid()));",
        "CREATE INDEX ON public.owned (user_id);",
        ("public", "owned"), "info"),
}


@pytest.mark.parametrize("lint", list(CASES))
def test_lint_fires_then_clears(su, lint):
    bad, fix, obj, level = CASES[lint]
    before = objects(su, lint)
    assert obj not in before
    su.execute(bad)
    found = [r for r in findings(su, lint) if (r[2], r[3]) == obj]
    assert found, f"{lint} did not fire: {findings(su)}"
    assert found[0][1] == level and found[0][4] and found[0][5]
    su.execute(fix)
    assert obj not in objects(su, lint), findings(su, lint)


def test_remedies_fix_what_they_name(su):
    """Each remedy is real SQL: running it clears its finding (those without a placeholder)."""
    su.execute(CASES["rls_disabled_exposed"][0] + CASES["security_definer_view_exposed"][0]
               + CASES["function_search_path_mutable"][0] + CASES["duplicate_index"][0]
               + CASES["unindexed_foreign_key"][0] + CASES["policy_column_unindexed"][0]
               + CASES["auth_users_exposed"][0])
    for lint in ["rls_disabled_exposed", "security_definer_view_exposed", "function_search_path_mutable",
                 "duplicate_index", "unindexed_foreign_key", "policy_column_unindexed", "auth_users_exposed"]:
        mine = [r for r in findings(su, lint) if r[2] == "public"]
        assert mine, lint
        for r in mine:
            su.execute(r[5])
        assert not [r for r in findings(su, lint) if r[2] == "public"], lint


def test_lookalikes_do_not_fire(su):
    su.execute("""
        CREATE TABLE public.quiet (id int PRIMARY KEY, user_id uuid, note text);
        CREATE INDEX ON public.quiet (user_id);
        ALTER TABLE public.quiet ENABLE ROW LEVEL SECURITY;
        -- text that merely mentions user_metadata, a true that is not constant, an indexed uid column
        CREATE POLICY p1 ON public.quiet TO authenticated USING (note <> 'user_metadata is not read here' AND user_id = auth.uid());
        CREATE POLICY p2 ON public.quiet FOR SELECT TO authenticated USING (auth.role() = 'authenticated');
        -- constant true, but only for service_role: not exposed
        CREATE POLICY p3 ON public.quiet FOR SELECT TO service_role USING (true);
        -- restrictive true is harmless
        CREATE POLICY p4 ON public.quiet AS RESTRICTIVE TO authenticated USING (true);
        COMMENT ON TABLE public.quiet IS 'USING (true) raw_user_meta_data SECURITY DEFINER';
    """)
    mine = [r for r in findings(su) if r[3] == "quiet"]
    assert mine == [], mine
    # and the extension's own objects are not reported
    assert not [r for r in findings(su) if r[2] in ("dashboard", "dashboard_auth")]


def test_hostile_names_are_quoted_in_remedies(su):
    su.execute("""CREATE TABLE public."x; DROP TABLE public.victim; --" (a int);
                  CREATE TABLE public.victim (id int PRIMARY KEY);
                  GRANT SELECT ON public."x; DROP TABLE public.victim; --" TO anon""")
    r = [r for r in findings(su, "rls_disabled_exposed") if r[3].startswith("x;")][0]
    su.execute(r[5])
    assert one(su, "SELECT relrowsecurity FROM pg_class WHERE relname = 'x; DROP TABLE public.victim; --'") is True
    assert one(su, "SELECT to_regclass('public.victim') IS NOT NULL") is True


def test_who_may_call(db, su):
    _, token = setup_admin(su)
    web = db.conn("fb_web")
    as_session(web, token)
    assert isinstance(web.execute("SELECT * FROM dashboard.advisories()").fetchall(), list)
    web.execute("COMMIT")
    plain = db.conn("fb_plain")
    with pytest.raises(psycopg.Error) as e:
        plain.execute("SELECT * FROM dashboard.advisories()")
    assert e.value.sqlstate == "42501"


def test_cli_advisor_exit_code_and_json(db, su, tmp_path):
    from test_cli import Cli, FAILED
    cli = Cli(db, tmp_path)
    su.execute("CREATE TABLE public.fine (id int PRIMARY KEY)")
    rows = cli.json("advisor")
    assert isinstance(rows, list) and not [r for r in rows if r["level"] == "error"]
    su.execute("CREATE TABLE public.open (id int PRIMARY KEY); GRANT SELECT ON public.open TO anon")
    r = cli.run("-o", "json", "advisor")
    assert r.returncode == FAILED, r
    rows = __import__("json").loads(r.stdout)
    hit = [x for x in rows if x["lint"] == "rls_disabled_exposed" and x["object_name"] == "open"]
    assert hit and hit[0]["level"] == "error" and hit[0]["remedy"] == 'ALTER TABLE public.open ENABLE ROW LEVEL SECURITY;'
    assert "error-level finding" in r.stderr
    r = cli.run("advisor")
    assert r.returncode == FAILED and "rls_disabled_exposed" in r.stdout
