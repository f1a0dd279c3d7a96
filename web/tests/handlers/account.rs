//! The 2FA login step and the account page's actions, through the handlers.

use axum::http::StatusCode;

use crate::common::*;

/// RFC 4648 base32 (no padding), as authenticator apps read the secret.
fn base32(s: &str) -> Vec<u8> {
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        bits = (bits << 5) | v as u32;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let i = body.find(start).unwrap_or_else(|| panic!("{start} in {body}")) + start.len();
    &body[i..i + body[i..].find(end).unwrap()]
}

/// Enrol 2FA through the account page; returns the secret's bytes.
async fn enrol(db: &TestDb, token: &str) -> Vec<u8> {
    let csrf = db.send(get("/admin/account", Some(token))).await.csrf();
    let r = db.send(post("/admin/account/2fa/setup", "", Some((token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<svg") && r.body.contains("class=\"qr\""), "QR drawn");
    assert!(!r.body.contains("style="), "no style attribute, SVG included");
    let secret_text = between(&r.body, "id=\"totp-secret\">", "<").to_string();
    let uri = between(&r.body, "name=\"otpauth_uri\" value=\"", "\"").replace("&amp;", "&").replace("&#x2f;", "/");
    let secret = base32(&secret_text);
    let code = fluxbase_core::totp::code_at(&secret, 6, now());
    let body = form(&[("code", &code), ("secret", &secret_text), ("otpauth_uri", &uri)]);
    let r = db.send(post("/admin/account/2fa/enable", &body, Some((token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"backup-codes\""));
    assert!(r.body.contains("data:text/plain;charset=utf-8,"));
    secret
}

#[tokio::test]
async fn login_with_2fa_step() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let secret = enrol(&db, &token).await;

    let r = db.send(post("/admin/login", &form(&[("email", "root@example.com"), ("password", PASSWORD)]), None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/admin/login/2fa"));
    assert!(r.cookie("__Host-fluxbase_session").is_none(), "no session before the code");
    let mfa_cookie = r.set_cookies().into_iter().find(|c| c.starts_with("__Host-fluxbase_mfa=")).unwrap().to_string();
    assert!(mfa_cookie.contains("Max-Age=300") && mfa_cookie.contains("HttpOnly") && mfa_cookie.contains("Secure"));
    let pending = r.cookie("__Host-fluxbase_mfa").unwrap();

    let step = |code: &str| {
        let mut req = post("/admin/login/2fa", &form(&[("code", code)]), None);
        req.headers_mut().insert("cookie", format!("__Host-fluxbase_mfa={pending}").parse().unwrap());
        req
    };
    let r = db.send(step("000000")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("not valid"));
    let code = fluxbase_core::totp::code_at(&secret, 6, now() + 30);
    let r = db.send(step(&code)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.cookie("__Host-fluxbase_mfa").as_deref(), Some(""), "pending cookie cleared");
    let session = r.cookie("__Host-fluxbase_session").unwrap();
    assert_eq!(db.send(get("/admin", Some(&session))).await.status, StatusCode::OK);
    // The pending step is used up.
    assert_eq!(db.send(step(&code)).await.status, StatusCode::BAD_REQUEST);
    // Without the pending cookie the step page sends back to the password.
    let r = db.send(get("/admin/login/2fa", None)).await;
    assert_eq!(r.header("location"), Some("/admin/login?reason=mfa_expired"));
    db.drop().await;
}

#[tokio::test]
async fn wrong_old_password_is_shown_by_the_form() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let csrf = db.send(get("/admin/account", Some(&token))).await.csrf();
    let body = form(&[("old_password", "not-my-password"), ("new_password", "another-long-passphrase-9")]);
    let r = db.send(post("/admin/account/password", &body, Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("My account"), "the account page again, with the message");
    let body = form(&[("old_password", PASSWORD), ("new_password", "short")]);
    let r = db.send(post("/admin/account/password", &body, Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let body = form(&[("old_password", PASSWORD), ("new_password", "another-long-passphrase-9")]);
    let r = db.send(post("/admin/account/password", &body, Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Password changed"));
    db.drop().await;
}

#[tokio::test]
async fn account_page_needs_a_session_and_missing_fields_are_400() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    assert_eq!(db.send(get("/admin/account", None)).await.header("location"), Some("/admin/login"));
    let csrf = db.send(get("/admin/account", Some(&token))).await.csrf();
    let r = db.send(post("/admin/account/2fa/enable", &form(&[("code", "1")]), Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = db.send(post("/admin/account/sessions/revoke", &form(&[("id", "not-a-uuid")]), Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    db.drop().await;
}

#[tokio::test]
async fn mfa_required_sends_to_enrolment_first() {
    let db = TestDb::new().await;
    db.setup().await;
    db.su().await.execute("SELECT dashboard_auth.set_setting('mfa.required', 'true'::jsonb)", &[]).await.unwrap();
    let r = db.send(post("/admin/login", &form(&[("email", "root@example.com"), ("password", PASSWORD)]), None)).await;
    let token = r.cookie("__Host-fluxbase_session").expect("an enrolment-only session");
    let r = db.send(get("/admin", Some(&token))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/admin/account/2fa/required"));
    // The page writes nothing (issue 28 item 5): the secret is made by a POST.
    let sealed = "SELECT c.totp_secret_sealed IS NULL FROM dashboard_auth.credentials c
                  JOIN dashboard_auth.users u ON u.id = c.user_id WHERE u.email = 'root@example.com'";
    let page = db.send(get("/admin/account/2fa/required", Some(&token))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("totp-secret"), "{}", page.body);
    assert!(db.su().await.query_one(sealed, &[]).await.unwrap().get::<_, bool>(0), "no secret stored by a GET");
    let csrf = page.csrf();
    let page = db.send(post("/admin/account/2fa/setup", &form(&[]), Some((&token, &csrf)))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!db.su().await.query_one(sealed, &[]).await.unwrap().get::<_, bool>(0), "the POST stored one");
    let secret_text = between(&page.body, "id=\"totp-secret\">", "<").to_string();
    let secret = base32(&secret_text);
    let bad = form(&[("code", "000000"), ("secret", &secret_text), ("otpauth_uri", "x")]);
    let r = db.send(post("/admin/account/2fa/enable", &bad, Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains(&secret_text), "the same secret again");
    let code = fluxbase_core::totp::code_at(&secret, 6, now());
    let good = form(&[("code", &code), ("secret", &secret_text), ("otpauth_uri", "x")]);
    let r = db.send(post("/admin/account/2fa/enable", &good, Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"backup-codes\""));
    assert_eq!(db.send(get("/admin", Some(&token))).await.status, StatusCode::OK, "now a full session");
    db.drop().await;
}
