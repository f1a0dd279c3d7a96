//! The Advisor section and "Why can't I see a row?" (issue 32): the pages
//! render; findings link to their tables; hostile names are escaped; the
//! explanation is a POST behind CSRF that shows the verdict per policy; bad
//! input is a 400 with the database's words.

use axum::http::StatusCode;

use crate::common::*;

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[tokio::test]
async fn advisor_lists_findings_and_explains_a_row() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let su = db.su().await;
    su.batch_execute(&format!(
        r#"CREATE TABLE public."{HOSTILE}" (id int PRIMARY KEY, owner uuid);
           GRANT SELECT ON public."{HOSTILE}" TO anon;
           CREATE TABLE public.todos (id int PRIMARY KEY, owner uuid, title text);
           ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
           CREATE POLICY "{HOSTILE}" ON public.todos FOR SELECT TO authenticated USING (owner = auth.uid());
           CREATE INDEX ON public.todos (owner);
           GRANT SELECT ON public.todos TO authenticated;"#
    ))
    .await
    .unwrap();
    let uid: uuid::Uuid = su.query_one("SELECT user_id FROM dashboard.invite_user('alice@example.com')", &[]).await.unwrap().get(0);
    su.execute("INSERT INTO public.todos VALUES (1, $1, 'mine'), (2, NULL, 'not mine')", &[&uid]).await.unwrap();

    let r = db.send(get("/admin/advisor", Some(&token))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("rls_disabled_exposed"), "{}", r.body);
    assert!(!r.body.contains(HOSTILE), "hostile name printed raw");
    assert!(!r.body.contains("<img") && (r.body.contains("&#60;img") || r.body.contains("&lt;img")), "{}", r.body);
    assert!(r.body.contains("href=\"/admin/tables/public/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E\""), "{}", r.body);
    assert!(!r.body.contains("style="));

    let page = db.send(get("/admin/advisor/why?table=public.todos", Some(&token))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    for (id, allowed, decided) in [("1", "true", "img src=x onerror=alert(1)"), ("2", "false", "no permissive policy allows it")] {
        let body = form(&[("_csrf", &csrf), ("table", "public.todos"), ("key", &format!("{{\"id\": {id}}}")),
                          ("as_user", "alice@example.com"), ("command", "select")]);
        let r = db.send(post("/admin/advisor/why", &body, Some((&token, &csrf)))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(&format!("data-allowed=\"{allowed}\"")), "{}", r.body);
        assert!(r.body.contains(decided), "{}", r.body);
        assert!(!r.body.contains(HOSTILE));
    }
    let audited: i64 = su
        .query_one("SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'rls.explain_access'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 2);

    // bad JSON, unknown user, and no CSRF token
    let body = form(&[("_csrf", &csrf), ("table", "public.todos"), ("key", "{not json"), ("as_user", "anon")]);
    let r = db.send(post("/admin/advisor/why", &body, Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let body = form(&[("_csrf", &csrf), ("table", "public.todos"), ("key", "{\"id\": 1}"), ("as_user", "nobody@example.com")]);
    let r = db.send(post("/admin/advisor/why", &body, Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let body = form(&[("table", "public.todos"), ("key", "{\"id\": 1}"), ("as_user", "anon")]);
    let r = db.send(post("/admin/advisor/why", &body, Some((&token, "wrong")))).await;
    assert_ne!(r.status, StatusCode::OK, "{}", r.body);
    let audited_after: i64 = su
        .query_one("SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'rls.explain_access'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited_after, 2, "a refused or failed explanation leaves no entry");
    db.drop().await;
}
