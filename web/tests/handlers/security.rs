//! Web security: headers on every response, CSRF, bad input.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::common::*;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn assert_security_headers(r: &Res, what: &str) {
    assert_eq!(r.header("content-security-policy"), Some(CSP), "{what}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

#[tokio::test]
async fn headers_on_every_kind_of_response() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let health = db.send(get("/admin/healthz", None)).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_security_headers(&health, "healthz");
    let home = db.send(get("/admin", Some(&token))).await;
    assert_security_headers(&home, "home");
    assert_eq!(home.header("cache-control"), Some("no-store"));
    let missing = db.send(get("/admin/no-such-page", Some(&token))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("404"));
    assert_security_headers(&missing, "404");
    let login = db.send(get("/admin/login", None)).await;
    assert_security_headers(&login, "login");
    let redirect = db.send(get("/", None)).await;
    assert_eq!(redirect.header("location"), Some("/admin"));
    assert_security_headers(&redirect, "redirect");
    db.drop().await;
}

#[tokio::test]
async fn assets_are_hashed_and_cacheable() {
    let db = TestDb::new().await;
    let page = db.send(get("/admin/setup", None)).await;
    for name in ["app.css", "app.js", "htmx.min.js"] {
        let i = page.body.find(&format!("/admin/assets/{name}?v=")).unwrap_or_else(|| panic!("{name} linked"));
        let href: String = page.body[i..].chars().take_while(|c| *c != '"').collect();
        assert!(page.body[i..].contains("integrity=\"sha384-"), "{name} has integrity");
        let r = db.send(get(&href, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{href}");
        assert!(r.header("cache-control").unwrap().contains("max-age=31536000"));
        assert_security_headers(&r, name);
    }
    // No inline script or style anywhere on the page.
    assert!(!page.body.contains("<script>") && !page.body.contains("style="), "{}", page.body);
    db.drop().await;
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let csrf = db.send(get("/admin", Some(&token))).await.csrf();
    let body = form(&[("_csrf", &csrf)]);
    let make = |site: Option<&str>, origin: Option<&str>| {
        let mut b = Request::post("/admin/logout")
            .header(header::HOST, "localhost:8080")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("__Host-fluxbase_session={token}"));
        if let Some(s) = site {
            b = b.header("sec-fetch-site", s);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(Body::from(body.clone())).unwrap()
    };
    for (site, origin) in [
        (Some("cross-site"), Some("https://evil.example")),
        (Some("same-site"), None),
        (None, Some("http://evil.example")),
        (None, None),
    ] {
        let r = db.send(make(site, origin)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{site:?} {origin:?}");
        assert!(r.body.contains("cross-site"), "{}", r.body);
        assert_security_headers(&r, "403");
    }
    // Still signed in: nothing happened.
    assert_eq!(db.send(get("/admin", Some(&token))).await.status, StatusCode::OK);
    // Same origin by the Origin header alone works.
    assert_eq!(db.send(make(None, Some("http://localhost:8080"))).await.status, StatusCode::SEE_OTHER);
    db.drop().await;
}

#[tokio::test]
async fn csrf_token_is_required_with_a_session() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let r = db.send(post("/admin/logout", "", Some((&token, "00")))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("stale"));
    let other = db.send(post("/admin/login", &form(&[("email", "root@example.com"), ("password", PASSWORD)]), None)).await;
    let other_token = other.cookie("__Host-fluxbase_session").unwrap();
    let other_csrf = db.send(get("/admin", Some(&other_token))).await.csrf();
    let r = db.send(post("/admin/logout", "", Some((&token, &other_csrf)))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another session's token does not work");
    // The form field works as well as the header.
    let csrf = db.send(get("/admin", Some(&token))).await.csrf();
    let req = Request::post("/admin/logout")
        .header(header::HOST, "localhost:8080")
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("__Host-fluxbase_session={token}"))
        .body(Body::from(form(&[("_csrf", &csrf)])))
        .unwrap();
    assert_eq!(db.send(req).await.status, StatusCode::SEE_OTHER);
    db.drop().await;
}

#[tokio::test]
async fn bad_forms_get_a_400_page() {
    let db = TestDb::new().await;
    db.setup().await;
    let missing = db.send(post("/admin/login", &form(&[("email", "root@example.com")]), None)).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body.contains("<html"), "a page");
    assert_security_headers(&missing, "400");
    // From htmx: the message alone, aimed at the form's error slot.
    let mut req = post("/admin/login", &form(&[("email", "root@example.com")]), None);
    req.headers_mut().insert("hx-request", "true".parse().unwrap());
    let r = db.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<html") && r.body.contains("class=\"error\""), "{}", r.body);
    assert_eq!(r.header("hx-retarget"), Some("find .form-error, #form-error, #flash"));
    let garbage = db.send(post("/admin/login", "%%%&&&=%ZZ", None)).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let big = "x".repeat(200 * 1024);
    let huge = db.send(post("/admin/login", &form(&[("email", &big), ("password", "p")]), None)).await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST);
    assert!(huge.body.contains("too large"));
    // A long but acceptable email: the database's refusal, not a 500.
    let long = format!("{}@example.com", "a".repeat(5000));
    let r = db.send(post("/admin/login", &form(&[("email", &long), ("password", "p")]), None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    db.drop().await;
}
