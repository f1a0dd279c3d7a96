"""dashboard.overview(): the home page's instance at a glance (issue 30, item 5)."""
import psycopg
import pytest

from conftest import as_session, one, setup_admin


def test_overview_counts_what_the_home_page_shows(web, su):
    token = setup_admin(su)[1]
    for e in ["a@example.com", "b@example.com", "c@example.com"]:
        su.execute("SELECT dashboard.invite_user(%s)", (e,))
    su.execute("UPDATE auth.users SET created_at = now() - interval '10 days' WHERE email = 'a@example.com'")
    su.execute("UPDATE auth.users SET created_at = now() - interval '30 days', deleted_at = now() WHERE email = 'c@example.com'")
    as_session(web, token)
    v = one(web, "SELECT dashboard.overview()")
    web.execute("COMMIT")
    assert v["app_users"] == 2 and v["app_users_new_7d"] == 1
    assert len(v["signups_14d"]) == 14 and sum(v["signups_14d"]) == 2 and v["signups_14d"][-1] == 1
    assert v["admin_sessions_live"] >= 1 and v["impersonations_live"] == 0
    assert v["admins_without_2fa"] == 1
    assert v["database_bytes"] > 0 and 1 <= v["connections"] <= v["max_connections"]
    assert 1 <= len(v["recent_audit"]) <= 5
    assert set(v["recent_audit"][0]) == {"id", "occurred_at", "actor", "action", "success"}
    ids = [a["id"] for a in v["recent_audit"]]
    assert ids == sorted(ids, reverse=True)


def test_overview_is_for_dashboard_members(db):
    with pytest.raises(psycopg.Error) as e:
        db.conn("fb_plain").execute("SELECT dashboard.overview()")
    assert e.value.sqlstate == "42501"
