"""Issue 28 item 5, the web side: a table owner's code cannot sign the admin
out, sign-out ends *View as…*, event streams end with their session, bad
filters are a 400, the invitation link comes from --public-url."""
import http.client
import re
import time
import urllib.parse

from conftest import PASSWORD, Server
from section_pages import sign_in
from test_starvation import request


def admin(su):
    su.execute("SELECT dashboard_auth.setup_first_admin('root@example.com', %s, 'Root')", (PASSWORD,))
    return su.execute("SELECT session_token FROM dashboard_auth.login('root@example.com', %s)", (PASSWORD,)).fetchone()[0]


def csrf_of(html):
    return re.search(r'name="_csrf" value="([^"]+)"', html).group(1)


def test_a_views_28000_or_enrolment_hint_does_not_sign_out(db, su):
    su.execute("""
        CREATE FUNCTION public.says_28000() RETURNS int LANGUAGE plpgsql AS
          $$BEGIN RAISE SQLSTATE '28000' USING MESSAGE = 'session expired'; END$$;
        CREATE FUNCTION public.says_enrol() RETURNS int LANGUAGE plpgsql AS
          $$BEGIN RAISE SQLSTATE '42501' USING MESSAGE = 'enrol first', HINT = 'call dashboard_auth.totp_setup() first'; END$$;
        CREATE VIEW public.v28 AS SELECT public.says_28000() AS id;
        CREATE VIEW public.venrol AS SELECT public.says_enrol() AS id;
        GRANT SELECT ON public.v28, public.venrol TO fluxbase_dashboard;
    """)
    token = admin(su)
    s = Server(db.name)
    try:
        for view in ("v28", "venrol"):
            for path in (f"/admin/tables/public/{view}", f"/admin/tables/public/{view}/grid",
                         f"/admin/tables/public/{view}/export"):
                st, text, cookie = request(s.port, "GET", path, token=token)
                # refused (403), or, for the table's page, said inside the section
                # (200, issue 30 item 2) - never a redirect to the sign-in page
                assert st == 403 or (st == 200 and path.endswith(view)), (path, st, text[:300])
                assert 'action="/admin/login"' not in text, (path, text[:300])
                assert "fluxbase_session=;" not in cookie and "Max-Age=0" not in cookie, (path, cookie)
            st, _, _ = request(s.port, "GET", "/admin/users", token=token)
            assert st == 200, "still signed in"
        assert su.execute("SELECT count(*) FROM dashboard_auth.validate_session(%s)", (token,)).fetchone()[0] == 1
        # The API's own 28000 still ends the session's pages.
        su.execute("SELECT dashboard_auth.logout(%s)", (token,))
        st, _, cookie = request(s.port, "GET", "/admin/tables/public/v28", token=token)
        assert st == 303 and "Max-Age=0" in cookie
    finally:
        s.stop()


def test_bad_filters_and_sorts_answer_400(db, su):
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, title text)")
    su.execute("INSERT INTO public.notes VALUES (1, 'a')")
    su.execute("GRANT SELECT ON public.notes TO fluxbase_dashboard")
    token = admin(su)
    s = Server(db.name)
    try:
        for q in ("fc=nope&fo=eq&fv=1", "s=-", "s=nope", "fc=title&fo=eq&fv=a%00b", "q=a%00b"):
            for path in ("/admin/tables/public/notes", "/admin/tables/public/notes/grid",
                         "/admin/tables/public/notes/export", "/admin/tables/public/notes/count"):
                if q == "s=nope" and path.endswith("/count"):
                    continue  # a count has no order
                st, text, _ = request(s.port, "GET", f"{path}?{q}", token=token)
                assert st == 400, (path, q, st, text[:300])
        st, _, _ = request(s.port, "GET", "/admin/tables/public/notes?fc=title&fo=eq&fv=a", token=token)
        assert st == 200
    finally:
        s.stop()


def test_invitation_link_comes_from_public_url_not_the_host_header(db, su):
    token = admin(su)
    s = Server(db.name, extra=("--public-url", "https://admin.example.com/"))
    try:
        st, html, _ = request(s.port, "GET", "/admin/admins", token=token)
        assert st == 200
        body = urllib.parse.urlencode({"_csrf": csrf_of(html), "email": "new@example.com", "role": "dashboard_viewer"})
        c = http.client.HTTPConnection("localhost", s.port, timeout=30)
        c.request("POST", "/admin/admins/invite", body=body, headers={
            "Host": "evil.example", "Cookie": f"__Host-fluxbase_session={token}", "Sec-Fetch-Site": "same-origin",
            "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        text = r.read().decode()
        assert r.status == 200, text[:500]
        assert "https://admin.example.com/admin/invitation#token=" in text, text
        assert "evil.example" not in text
    finally:
        s.stop()


def test_event_stream_ends_when_the_session_is_revoked(db, su):
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, title text)")
    su.execute("GRANT SELECT ON public.notes TO fluxbase_dashboard")
    token = admin(su)
    s = Server(db.name)
    try:
        c = http.client.HTTPConnection("localhost", s.port, timeout=30)
        c.request("GET", "/admin/tables/public/notes/events", headers={"Cookie": f"__Host-fluxbase_session={token}"})
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
        su.execute("UPDATE dashboard_auth.sessions SET revoked_at = now() "
                   "WHERE token_digest = sha256(convert_to(%s, 'UTF8'))", (token,))
        t0 = time.time()
        while r.read1(4096):
            assert time.time() - t0 < 15, "the stream goes on after the revocation"
        assert time.time() - t0 < 15
    finally:
        s.stop()


def test_sign_out_ends_view_as(page, su):
    su.execute("CREATE TABLE public.notes (id int PRIMARY KEY, title text)")
    su.execute("GRANT SELECT ON public.notes TO fluxbase_dashboard, authenticated")
    su.execute("SELECT dashboard.invite_user('alice@example.com')")
    page.goto("/admin/setup")
    page.fill("input[name=email]", "root@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=full_name]", "Root Admin")
    page.click("text=Create Admin Account")
    page.wait_for_url("**/admin")
    page.goto("/admin/tables/public/notes")
    page.click("details.view-as summary")
    page.fill("input[name=target]", "alice@example.com")
    page.fill("input[name=reason]", "sign-out check")
    page.click("details.view-as button:has-text('Start')")
    page.wait_for_selector(".imp-banner")
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/admin/login*")
    assert su.execute("SELECT count(*) FROM auth.impersonation_sessions WHERE ended_at IS NULL").fetchone()[0] == 0
    sign_in(page, "root@example.com")
    page.goto("/admin/tables/public/notes")
    assert page.locator(".imp-banner").count() == 0, "the next sign-in does not resume it"
