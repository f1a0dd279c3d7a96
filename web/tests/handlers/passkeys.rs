//! Passkeys (issue 33) through the handlers: the script-facing endpoints
//! answer JSON options, 204, or a refusal in plain text (never HTML, never a
//! 500), and the account page shows the setup hint and escaped names. The
//! ceremonies themselves are tested in a real browser (tests/web/test_passkey_pages.py).

use axum::http::StatusCode;

use crate::common::*;

const INJECTIONS: &[&str] = &["'; DROP TABLE dashboard_auth.passkeys; --", "{\"id\": \"x\"}", "<script>alert(1)</script>", "null", "[]"];

/// A refusal: 200, plain text, `X-Fluxbase-Refused`.
fn refused(r: &Res) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("x-fluxbase-refused"), Some("1"), "{}", r.body);
    plain(r);
}

fn plain(r: &Res) {
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")), "plain text: {:?} {}", r.headers, r.body);
    assert!(!r.body.contains('<'), "no markup: {}", r.body);
}

async fn configure(db: &TestDb) {
    let su = db.su().await;
    su.batch_execute(
        "SELECT dashboard_auth.set_setting('webauthn.rp_id', '\"localhost\"');
         SELECT dashboard_auth.set_setting('webauthn.origins', '[\"http://localhost:8080\"]');",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn account_hint_then_options_and_refusals() {
    let db = TestDb::new().await;
    let token = db.setup().await;
    let page = db.send(get("/admin/account", Some(&token))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"passkeys-unset\""), "hint while unset");
    assert!(page.body.contains("webauthn.rp_id"));
    let csrf = page.csrf();

    // Unset: begin is refused in words (55000), as text.
    let r = db.send(post("/admin/account/passkeys/begin", &form(&[("name", "Laptop")]), Some((&token, &csrf)))).await;
    refused(&r);
    assert!(r.body.contains("webauthn.rp_id"), "{}", r.body);

    configure(&db).await;
    let page = db.send(get("/admin/account", Some(&token))).await;
    assert!(!page.body.contains("id=\"passkeys-unset\""));
    assert!(page.body.contains("id=\"passkeys-none\""));

    let r = db.send(post("/admin/account/passkeys/begin", &form(&[("name", "Laptop")]), Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    let o: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(o["publicKey"]["rp"]["id"], "localhost");

    // Bad names: refused as text.
    for name in ["", "   ", "a\u{7}b", &"x".repeat(101)] {
        let r = db.send(post("/admin/account/passkeys/begin", &form(&[("name", name)]), Some((&token, &csrf)))).await;
        refused(&r);
    }
    // Garbage credentials: refused as text, the session kept.
    for c in INJECTIONS {
        let r = db.send(post("/admin/account/passkeys/finish", &form(&[("credential", c)]), Some((&token, &csrf)))).await;
        refused(&r);
        let again = db.send(get("/admin/account", Some(&token))).await;
        assert_eq!(again.status, StatusCode::OK, "the session survives {c}");
    }
    // Without the CSRF token: refused.
    let r = db.send(post("/admin/account/passkeys/begin", &form(&[("name", "x")]), Some((&token, "nope")))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Step-up: no passkey to offer.
    let r = db.send(post("/admin/reauth/passkey/begin", "", Some((&token, &csrf)))).await;
    refused(&r);
    for c in INJECTIONS {
        let r = db.send(post("/admin/reauth/passkey/finish", &form(&[("credential", c)]), Some((&token, &csrf)))).await;
        refused(&r);
    }
    // Rename / remove of a passkey that does not exist: the card says so.
    let id = "00000000-0000-0000-0000-000000000000";
    let r = db.send(post("/admin/account/passkeys/rename", &form(&[("id", id), ("name", "x")]), Some((&token, &csrf)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("no passkey with id"));
    db.drop().await;
}

#[tokio::test]
async fn sign_in_endpoints_refuse_in_words() {
    let db = TestDb::new().await;
    let _ = db.setup().await;
    configure(&db).await;
    // Passwordless off: no button, and begin is refused.
    let page = db.send(get("/admin/login", None)).await;
    assert!(!page.body.contains("data-passkey-login"));
    let r = db.send(post("/admin/login/passkey/begin", "", None)).await;
    refused(&r);
    db.su().await.batch_execute("SELECT dashboard_auth.set_setting('auth.passwordless', 'true')").await.unwrap();
    let page = db.send(get("/admin/login", None)).await;
    assert!(page.body.contains("data-passkey-login") && page.body.contains("username webauthn"));
    let r = db.send(post("/admin/login/passkey/begin", "", None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for c in INJECTIONS {
        let r = db.send(post("/admin/login/passkey/finish", &form(&[("credential", c)]), None)).await;
        refused(&r);
        assert!(r.cookie("__Host-fluxbase_session").is_none());
    }
    // The second step without its cookie, or with a made-up one.
    let r = db.send(post("/admin/login/2fa/passkey/begin", "", None)).await;
    refused(&r);
    let mut req = post("/admin/login/2fa/passkey/begin", "", None);
    req.headers_mut().insert("cookie", "__Host-fluxbase_mfa=made-up".parse().unwrap());
    let r = db.send(req).await;
    refused(&r);
    assert!(r.body.contains("expired"));
    // Cross-site: refused before anything runs.
    let mut req = post("/admin/login/passkey/begin", "", None);
    req.headers_mut().insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(db.send(req).await.status, StatusCode::FORBIDDEN);
    db.drop().await;
}
