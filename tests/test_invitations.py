"""Admin invitations: invite, accept, list, revoke; one-time expiring tokens
stored as digests; concurrent accepts; refusals."""
import hashlib
import threading

import psycopg
import pytest
from conftest import PASSWORD, as_session, one, setup_admin

NEW_PASSWORD = "violet-otter-quarry-lantern"
INJECTIONS = ["'; DROP TABLE dashboard_auth.users; --", "1' OR '1'='1", "fbi_' OR 1=1 --", "$1"]


@pytest.fixture
def admin(su):
    return setup_admin(su)


def invite(conn, email, *args):
    if not args:
        return one(conn, "SELECT dashboard_auth.invite_admin(%s)", (email,))
    if len(args) == 1:
        return one(conn, "SELECT dashboard_auth.invite_admin(%s, %s)", (email, args[0]))
    return one(conn, "SELECT dashboard_auth.invite_admin(%s, %s, %s::interval)", (email, args[0], args[1]))


def accept(conn, token, password=NEW_PASSWORD, name="Grace Hopper"):
    return one(conn, "SELECT dashboard_auth.accept_invitation(%s, %s, %s)", (token, password, name))


def invitations(conn, accepted=False, expired=False):
    return conn.execute(
        "SELECT email, role, status FROM dashboard_auth.list_invitations(%s, %s) ORDER BY email", (accepted, expired)
    ).fetchall()


def error_of(conn, sql, params=()):
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql, params)
    return e.value.sqlstate


def test_invite_accept_login(admin, web, su):
    uid, token = admin
    as_session(web, token)
    t = invite(web, "Grace@Example.com")
    web.execute("COMMIT")
    assert t.startswith("fbi_") and len(t) == 47
    assert invitations(web) == [("grace@example.com", "dashboard_viewer", "pending")]
    inviter = one(su, "SELECT invited_by FROM dashboard_auth.invitations")
    assert inviter == uid
    new_id = accept(web, t)
    assert one(su, "SELECT role FROM dashboard_auth.users WHERE id = %s", (new_id,)) == "dashboard_viewer"
    assert one(su, "SELECT created_via FROM dashboard_auth.users WHERE id = %s", (new_id,)) == "invitation"
    assert one(su, "SELECT full_name FROM dashboard_auth.users WHERE id = %s", (new_id,)) == "Grace Hopper"
    assert one(web, "SELECT status FROM dashboard_auth.login('grace@example.com', %s)", (NEW_PASSWORD,)) == "ok"
    assert invitations(web) == []
    assert invitations(web, accepted=True) == [("grace@example.com", "dashboard_viewer", "accepted")]
    acts = [r[0] for r in su.execute("SELECT action FROM dashboard_auth.audit_log ORDER BY id").fetchall()]
    assert "invitation.create" in acts and "invitation.accept" in acts
    actor = one(su, "SELECT actor FROM dashboard_auth.audit_log WHERE action = 'invitation.accept'")
    assert actor == "grace@example.com"


def test_invite_admin_role_and_validity(admin, web, su):
    t = invite(web, "ops@example.com", "dashboard_admin", "2 hours")
    assert one(su, "SELECT expires_at - created_at FROM dashboard_auth.invitations").total_seconds() == 7200
    assert one(su, "SELECT invited_by_label FROM dashboard_auth.invitations") == "db:fb_web"
    assert one(su, "SELECT role FROM dashboard_auth.users WHERE id = %s", (accept(web, t),)) == "dashboard_admin"
    default = invite(web, "later@example.com")
    assert default
    days = one(su, "SELECT extract(day FROM expires_at - created_at) FROM dashboard_auth.invitations WHERE email = 'later@example.com'")
    assert int(days) == 7


def test_invite_refusals(admin, web, su):
    invite(web, "dup@example.com")
    assert error_of(web, "SELECT dashboard_auth.invite_admin('root@example.com')") == "23505"
    assert error_of(web, "SELECT dashboard_auth.invite_admin('DUP@example.com')") == "23505"
    assert error_of(web, "SELECT dashboard_auth.invite_admin('x@example.com', 'superuser')") == "22023"
    assert error_of(web, "SELECT dashboard_auth.invite_admin('x@example.com', 'dashboard_viewer', '-1 day')") == "22023"
    assert error_of(web, "SELECT dashboard_auth.invite_admin('x@example.com', 'dashboard_viewer', '1000 days')") == "22023"
    assert error_of(web, "SELECT dashboard_auth.invite_admin('x@example.com', 'dashboard_viewer', NULL)") == "22004"
    assert error_of(web, "SELECT dashboard_auth.invite_admin(NULL)") == "22004"
    for s in INJECTIONS:
        assert error_of(web, "SELECT dashboard_auth.invite_admin(%s)", (s,)) == "22023"
        assert error_of(web, "SELECT dashboard_auth.invite_admin('y@example.com', %s)", (s,)) == "22023"
    assert one(su, "SELECT count(*) FROM dashboard_auth.invitations") == 1


def test_reused_revoked_expired_and_bad_tokens_are_refused(admin, web, su):
    t1 = invite(web, "a@example.com")
    accept(web, t1)
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, %s, 'A')", (t1, NEW_PASSWORD)) == "28000"

    t2 = invite(web, "b@example.com")
    web.execute("SELECT dashboard_auth.revoke_invitation(%s)", (t2,))
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, %s, 'B')", (t2, NEW_PASSWORD)) == "28000"

    t3 = invite(web, "c@example.com")
    iid = one(su, "SELECT id FROM dashboard_auth.invitations WHERE email = 'c@example.com'")
    web.execute("SELECT dashboard_auth.revoke_invitation(%s)", (str(iid),))
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, %s, 'C')", (t3, NEW_PASSWORD)) == "28000"

    t4 = invite(web, "d@example.com")
    su.execute("UPDATE dashboard_auth.invitations SET expires_at = now() - interval '1 second' WHERE email = 'd@example.com'")
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, %s, 'D')", (t4, NEW_PASSWORD)) == "28000"

    for bad in ["fbi_" + "A" * 43, "garbage", "", t4[:-1], t4.replace("fbi_", "fbs_")] + INJECTIONS:
        assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, %s, 'E')", (bad, NEW_PASSWORD)) == "28000", bad
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(NULL, %s, 'E')", (NEW_PASSWORD,)) == "22004"
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == 2  # root + a
    assert sorted(invitations(web, True, True)) == [
        ("a@example.com", "dashboard_viewer", "accepted"),
        ("b@example.com", "dashboard_viewer", "revoked"),
        ("c@example.com", "dashboard_viewer", "revoked"),
        ("d@example.com", "dashboard_viewer", "expired"),
    ]
    assert invitations(web) == []
    assert [r[2] for r in invitations(web, expired=True)] == ["revoked", "revoked", "expired"]


def test_expired_invitation_can_be_replaced(admin, web, su):
    old = invite(web, "e@example.com")
    su.execute("UPDATE dashboard_auth.invitations SET expires_at = now() - interval '1 second'")
    new = invite(web, "e@example.com")
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, %s, 'E')", (old, NEW_PASSWORD)) == "28000"
    assert accept(web, new)
    assert sorted(r[2] for r in invitations(web, True, True)) == ["accepted", "expired"]


def test_weak_password_leaves_invitation_pending(admin, web, su):
    t = invite(web, "weak@example.com")
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, 'short', 'W')", (t,)) == "22023"
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, NULL, 'W')", (t,)) == "22004"
    assert error_of(web, "SELECT dashboard_auth.accept_invitation(%s, %s, %s)", (t, NEW_PASSWORD, "x" * 500)) == "22023"
    assert invitations(web) == [("weak@example.com", "dashboard_viewer", "pending")]
    # Injection strings as a name are just a name.
    uid = accept(web, t, name=INJECTIONS[0])
    assert one(su, "SELECT full_name FROM dashboard_auth.users WHERE id = %s", (uid,)) == INJECTIONS[0]


def test_concurrent_accepts_make_one_account(admin, db, su):
    web = db.conn("fb_web")
    t = invite(web, "race@example.com")
    n = 4
    conns = [db.conn("fb_web") for _ in range(n)]
    barrier = threading.Barrier(n)
    results = []

    def run(c):
        barrier.wait()
        try:
            results.append(("ok", accept(c, t)))
        except psycopg.Error as e:
            results.append(("err", e.sqlstate))

    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r[0] for r in results) == ["err"] * (n - 1) + ["ok"]
    assert {r[1] for r in results if r[0] == "err"} == {"28000"}
    assert one(su, "SELECT count(*) FROM dashboard_auth.users WHERE email = 'race@example.com'") == 1


def test_concurrent_invites_of_one_email_make_one(admin, db, su):
    n = 4
    conns = [db.conn("fb_web") for _ in range(n)]
    barrier = threading.Barrier(n)
    results = []

    def run(c):
        barrier.wait()
        try:
            results.append(("ok", invite(c, "twice@example.com")))
        except psycopg.Error as e:
            results.append(("err", e.sqlstate))

    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r[0] for r in results) == ["err"] * (n - 1) + ["ok"]
    assert {r[1] for r in results if r[0] == "err"} == {"23505"}


def test_revoke_errors(admin, web, su):
    t = invite(web, "r@example.com")
    assert error_of(web, "SELECT dashboard_auth.revoke_invitation(%s)", ("fbi_" + "B" * 43,)) == "P0002"
    assert error_of(web, "SELECT dashboard_auth.revoke_invitation('00000000-0000-0000-0000-000000000000')") == "P0002"
    for s in INJECTIONS:
        assert error_of(web, "SELECT dashboard_auth.revoke_invitation(%s)", (s,)) == "22023"
    assert error_of(web, "SELECT dashboard_auth.revoke_invitation(NULL)") == "22004"
    web.execute("SELECT dashboard_auth.revoke_invitation(%s)", (t,))
    assert error_of(web, "SELECT dashboard_auth.revoke_invitation(%s)", (t,)) == "55000"
    t2 = invite(web, "r2@example.com")
    accept(web, t2)
    assert error_of(web, "SELECT dashboard_auth.revoke_invitation(%s)", (t2,)) == "55000"
    assert one(su, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'invitation.revoke'") == 1


def test_role_refusals(admin, db, web, su):
    uid, token = admin
    as_session(web, token)
    web.execute("SELECT dashboard_auth.create_admin('viewer@example.com', %s, 'Vi Ewer', 'dashboard_viewer')", (PASSWORD,))
    t = invite(web, "someone@example.com")
    web.execute("COMMIT")
    vs = one(web, "SELECT session_token FROM dashboard_auth.login('viewer@example.com', %s)", (PASSWORD,))
    as_session(web, vs)
    assert error_of(web, "SELECT dashboard_auth.invite_admin('z@example.com')") == "42501"
    web.execute("ROLLBACK")
    as_session(web, vs)
    assert error_of(web, "SELECT dashboard_auth.revoke_invitation(%s)", (t,)) == "42501"
    web.execute("ROLLBACK")
    as_session(web, vs)
    assert len(invitations(web)) == 1  # viewers may read
    web.execute("COMMIT")
    plain = db.conn("fb_plain")
    app = db.conn("fb_app")
    for conn, role in [(plain, None), (app, "anon"), (app, "authenticated")]:
        if role:
            conn.execute(f"SET ROLE {role}")
        for sql, args in [
            ("SELECT dashboard_auth.invite_admin('z@example.com')", ()),
            ("SELECT dashboard_auth.accept_invitation(%s, %s, 'Z')", (t, NEW_PASSWORD)),
            ("SELECT * FROM dashboard_auth.list_invitations()", ()),
            ("SELECT dashboard_auth.revoke_invitation(%s)", (t,)),
            ("SELECT email FROM dashboard_auth.invitations", ()),
        ]:
            assert error_of(conn, sql, args) == "42501", (role, sql)
        conn.execute("RESET ROLE")


def test_token_digest_only_and_hidden_from_dashboard(admin, web, su):
    t = invite(web, "hidden@example.com")
    assert one(su, "SELECT token_digest FROM dashboard_auth.invitations") == hashlib.sha256(t.encode()).digest()
    hits = []
    cols = su.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'dashboard_auth' "
        "AND data_type IN ('text', 'jsonb', 'bytea', 'character varying') "
        "AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_schema = 'dashboard_auth' AND table_type = 'BASE TABLE')"
    ).fetchall()
    for table, col in cols:
        if one(su, f'SELECT count(*) FROM dashboard_auth."{table}" WHERE strpos("{col}"::text, %s) > 0 '
                   f'OR strpos(encode(convert_to("{col}"::text, \'UTF8\'), \'escape\'), %s) > 0', (t, t)):
            hits.append((table, col))
    assert hits == []
    # The dashboard role may read invitations, but not the digests.
    assert one(web, "SELECT email FROM dashboard_auth.invitations") == "hidden@example.com"
    assert error_of(web, "SELECT token_digest FROM dashboard_auth.invitations") == "42501"
    assert error_of(web, "SELECT * FROM dashboard_auth.invitations") == "42501"
