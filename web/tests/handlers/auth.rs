//! First run, login, logout, expiry and revocation.

use axum::http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn first_run_redirects_to_setup_then_logs_in() {
    let db = TestDb::new().await;
    let r = db.send(get("/admin", None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/admin/setup"));
    let r = db.send(get("/admin/login", None)).await;
    assert_eq!(r.header("location"), Some("/admin/setup"), "every page goes to setup");
    let r = db.send(get("/admin/setup", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Create Admin Account"));
    assert!(r.body.contains("At least 12 characters"), "the policy is shown");

    let token = db.setup().await;
    let r = db.send(get("/admin", Some(&token))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Root Admin"));
    assert!(r.body.contains(">admin<"), "role shown");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Setup is over: the form now sends people to the login page.
    let r = db.send(get("/admin/setup", None)).await;
    assert_eq!(r.header("location"), Some("/admin/login"));
    db.drop().await;
}

#[tokio::test]
async fn setup_cookie_flags() {
    let db = TestDb::new().await;
    let r = db
        .send(post("/admin/setup", &form(&[("email", "a@example.com"), ("password", PASSWORD), ("full_name", "A")]), None))
        .await;
    let c = r.set_cookies().into_iter().find(|c| c.starts_with("__Host-fluxbase_session=")).expect("cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(c.contains(flag), "{c} lacks {flag}");
    }
    assert!(!c.to_lowercase().contains("domain"), "{c}");
    db.drop().await;
}

#[tokio::test]
async fn setup_race_gives_exactly_one_admin() {
    let db = TestDb::new().await;
    let f = |i: usize| form(&[("email", &format!("racer{i}@example.com")), ("password", PASSWORD), ("full_name", "Racer")]);
    let (a, b, c) = tokio::join!(
        db.send(post("/admin/setup", &f(1), None)),
        db.send(post("/admin/setup", &f(2), None)),
        db.send(post("/admin/setup", &f(3), None)),
    );
    let statuses = [a.status, b.status, c.status];
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count(), 1, "{statuses:?}");
    for r in [a, b, c] {
        if r.status != StatusCode::SEE_OTHER {
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            assert!(r.body.contains("already been completed"), "{}", r.body);
        }
    }
    let n: i64 = db.su().await.query_one("SELECT count(*) FROM dashboard_auth.users", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    db.drop().await;
}

#[tokio::test]
async fn login_wrong_password_then_right() {
    let db = TestDb::new().await;
    db.setup().await;
    let r = db
        .send(post("/admin/login", &form(&[("email", "root@example.com"), ("password", "wrong-password-123")]), None))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Wrong email or password"));
    let unknown = db
        .send(post("/admin/login", &form(&[("email", "nobody@example.com"), ("password", "wrong-password-123")]), None))
        .await;
    assert_eq!(unknown.body.replace("nobody@example.com", "root@example.com"), r.body, "unknown email looks the same");
    let r = db.send(post("/admin/login", &form(&[("email", "root@example.com"), ("password", PASSWORD)]), None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/admin"));
    let token = r.cookie("__Host-fluxbase_session").unwrap();
    assert_eq!(db.send(get("/admin", Some(&token))).await.status, StatusCode::OK);
    db.drop().await;
}

#[tokio::test]
async fn lockout_is_shown() {
    let db = TestDb::new().await;
    db.setup().await;
    let mut last = String::new();
    for _ in 0..8 {
        let r = db.send(post("/admin/login", &form(&[("email", "root@example.com"), ("password", "nope-nope-nope")]), None)).await;
        last = r.body;
    }
    assert!(last.contains("locked"), "{last}");
    db.drop().await;
}

#[tokio::test]
async fn logout_ends_the_session() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let page = db.send(get("/admin", Some(&token))).await;
    let csrf = page.csrf();
    let r = db.send(post("/admin/logout", "", Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/admin/login?reason=signed_out"));
    assert_eq!(r.cookie("__Host-fluxbase_session").as_deref(), Some(""), "cookie cleared");
    let r = db.send(get("/admin", Some(&token))).await;
    assert_eq!(r.header("location"), Some("/admin/login?reason=expired"));
    db.drop().await;
}

#[tokio::test]
async fn revoked_from_outside_goes_to_login() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    db.su().await.execute("SELECT dashboard_auth.logout($1)", &[&token]).await.unwrap();
    let r = db.send(get("/admin", Some(&token))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/admin/login?reason=expired"));
    assert_eq!(r.cookie("__Host-fluxbase_session").as_deref(), Some(""));
    // htmx asks: HX-Redirect instead of a 303.
    let mut req = get("/admin", Some(&token));
    req.headers_mut().insert("hx-request", "true".parse().unwrap());
    let r = db.send(req).await;
    assert_eq!(r.header("hx-redirect"), Some("/admin/login?reason=expired"));
    let r = db.send(get("/admin/login?reason=expired", None)).await;
    assert!(r.body.contains("Your session has ended"));
    db.drop().await;
}

#[tokio::test]
async fn no_cookie_goes_to_login() {
    let db = TestDb::new().await;
    db.setup().await;
    let r = db.send(get("/admin", None)).await;
    assert_eq!(r.header("location"), Some("/admin/login"));
    db.drop().await;
}
