//! The Users, Admins, Settings, Audit and Analytics sections: every page
//! renders; a viewer's forged POSTs are refused by the database (403); a
//! step-up action answers the re-auth dialog to htmx, and succeeds after
//! `/admin/reauth`; hostile values are escaped.

use axum::http::StatusCode;

use crate::common::*;

/// An htmx POST (what the pages' forms send).
fn hx_post(path: &str, body: &str, session: (&str, &str)) -> axum::http::Request<axum::body::Body> {
    let mut r = post(path, body, Some(session));
    r.headers_mut().insert("hx-request", "true".parse().unwrap());
    r
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.su().await.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn every_section_page_renders() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let su = db.su().await;
    let uid: uuid::Uuid = su.query_one("SELECT user_id FROM dashboard.invite_user('p@example.com')", &[]).await.unwrap().get(0);
    let entry: i64 = su.query_one("SELECT max(id) FROM dashboard_auth.audit_log", &[]).await.unwrap().get(0);
    for path in [
        "/admin/users".to_string(),
        format!("/admin/users/{uid}"),
        "/admin/admins".into(),
        "/admin/settings".into(),
        "/admin/audit".into(),
        "/admin/audit?action=app_user.".into(),
        format!("/admin/audit/entry/{entry}"),
        "/admin/audit/verify".into(),
        "/admin/analytics".into(),
        "/admin/analytics?order=calls".into(),
    ] {
        let r = db.send(get(&path, Some(&token))).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(!r.body.contains("style="), "{path} has inline style");
    }
    let csv = db.send(get("/admin/audit/export.csv?action=app_user.", Some(&token))).await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    assert!(csv.body.contains("p@example.com"));
    // Without JavaScript: the forms carry the CSRF token as a field.
    let page = db.send(get("/admin/users", Some(&token))).await;
    let csrf = page.csrf();
    assert!(page.body.contains(&format!("name=\"_csrf\" value=\"{csrf}\"")));
    let plain = axum::http::Request::post("/admin/users/invite")
        .header(axum::http::header::HOST, "localhost:8080")
        .header("sec-fetch-site", "same-origin")
        .header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(axum::http::header::COOKIE, format!("__Host-fluxbase_session={token}"))
        .body(axum::body::Body::from(form(&[("_csrf", &csrf), ("email", "nojs@example.com"), ("role", "authenticated")])))
        .unwrap();
    let r = db.send(plain).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("shown-value"), "the token is shown once");
    // Time bounds: a bad one is the 400 page with the database's words, a good one filters.
    let r = db.send(get("/admin/audit?since=not-a-time", Some(&token))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = db.send(get("/admin/audit?since=2999-01-01T00:00", Some(&token))).await;
    assert!(r.body.contains("No entries match"), "{}", r.body);
    let missing = db.send(get("/admin/users/00000000-0000-0000-0000-000000000000", Some(&token))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    db.drop().await;
}

#[tokio::test]
async fn viewer_forged_posts_are_refused_by_the_database() {
    let db = TestDb::new().await;
    let _root = db.setup().await;
    let su = db.su().await;
    su.batch_execute(&format!(
        "SELECT dashboard_auth.create_admin('viewer@example.com', '{PASSWORD}', 'Vera', 'dashboard_viewer')"
    ))
    .await
    .unwrap();
    let uid: uuid::Uuid = su.query_one("SELECT user_id FROM dashboard.invite_user('v@example.com')", &[]).await.unwrap().get(0);
    let r = db.send(post("/admin/login", &form(&[("email", "viewer@example.com"), ("password", PASSWORD)]), None)).await;
    let viewer = r.cookie("__Host-fluxbase_session").expect("viewer signed in");
    let page = db.send(get("/admin/users", Some(&viewer))).await;
    assert!(!page.body.contains("Invite a user"), "no invite form for a viewer");
    let csrf = page.csrf();
    for (path, body) in [
        ("/admin/users/invite".to_string(), form(&[("email", "evil@example.com"), ("role", "authenticated")])),
        (format!("/admin/users/{uid}/delete"), String::new()),
        (format!("/admin/users/{uid}/reset"), String::new()),
        ("/admin/admins/invite".into(), form(&[("email", "evil@example.com"), ("role", "dashboard_admin")])),
        ("/admin/settings/save".into(), form(&[("key", "password.min_length"), ("kind", "integer"), ("value", "8")])),
    ] {
        let r = db.send(post(&path, &body, Some((&viewer, &csrf)))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    assert_eq!(count(&db, "SELECT count(*) FROM auth.users").await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM dashboard_auth.invitations").await, 0);
    db.drop().await;
}

#[tokio::test]
async fn step_up_dialog_then_retry() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let csrf = db.send(get("/admin/users", Some(&token))).await.csrf();
    let su = db.su().await;
    let uid: uuid::Uuid = su.query_one("SELECT user_id FROM dashboard.invite_user('d@example.com')", &[]).await.unwrap().get(0);
    let delete = format!("/admin/users/{uid}/delete");
    // Without a recent re-auth: the dialog, into #reauth, and nothing deleted.
    let r = db.send(hx_post(&delete, "", (&token, &csrf))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("hx-retarget"), Some("#reauth"));
    assert_eq!(r.header("x-fluxbase-reauth"), Some("required"));
    assert!(r.body.contains("<dialog") && r.body.contains("name=\"secret\""));
    // A plain form POST gets a 400 page saying so.
    let r = db.send(post(&delete, "", Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("re-authentication required"), "{}", r.body);
    assert_eq!(count(&db, "SELECT count(*) FROM auth.users").await, 1);
    // A wrong secret: the dialog again, with the message; audited as a failure.
    let r = db.send(hx_post("/admin/reauth", &form(&[("secret", "wrong-password-here")]), (&token, &csrf))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("not right"), "{}", r.body);
    assert_eq!(count(&db, "SELECT count(*) FROM dashboard_auth.audit_log WHERE action = 'session.reauth' AND NOT success").await, 1);
    // The right one: 204 and the event app.js retries on.
    let r = db.send(hx_post("/admin/reauth", &form(&[("secret", PASSWORD)]), (&token, &csrf))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("hx-trigger"), Some("fbReauthed"));
    let r = db.send(hx_post(&delete, "", (&token, &csrf))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.header("hx-redirect"), Some("/admin/users?deleted=1"));
    assert_eq!(count(&db, "SELECT count(*) FROM auth.users").await, 0);
    // The window ends: the next step-up action asks again.
    let uid: uuid::Uuid = su.query_one("SELECT user_id FROM dashboard.invite_user('e@example.com')", &[]).await.unwrap().get(0);
    su.batch_execute("UPDATE dashboard_auth.sessions SET reauthenticated_at = now() - interval '6 minutes'").await.unwrap();
    let r = db.send(hx_post(&format!("/admin/users/{uid}/delete"), "", (&token, &csrf))).await;
    assert_eq!(r.header("x-fluxbase-reauth"), Some("required"));
    assert_eq!(count(&db, "SELECT count(*) FROM auth.users").await, 1);
    db.drop().await;
}

#[tokio::test]
async fn hostile_values_render_as_text() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let su = db.su().await;
    let uid: uuid::Uuid = su
        .query_one(
            "SELECT user_id FROM dashboard.invite_user('h@example.com', 'authenticated', '{\"n\": \"<script>alert(1)</script>\"}')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    su.batch_execute(&format!(
        "SELECT dashboard_auth.create_admin('x@example.com', '{PASSWORD}', '<script>alert(2)</script>', 'dashboard_viewer')"
    ))
    .await
    .unwrap();
    for path in [format!("/admin/users/{uid}"), "/admin/admins".into(), "/admin/audit".into()] {
        let r = db.send(get(&path, Some(&token))).await;
        assert!(!r.body.contains("<script>alert"), "{path} renders markup: {}", r.body);
        // askama writes < as &#60; (or &lt;): either way, text.
        assert!(r.body.contains("&#60;script&#62;alert") || r.body.contains("&lt;script&gt;alert"), "{path} shows it as text");
    }
    db.drop().await;
}
