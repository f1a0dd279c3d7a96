//! Passkeys in the browser (issue 33): the WebAuthn ceremonies' two halves,
//! each a POST that `app.js` makes with `fetch`: `…/begin` answers the
//! options JSON of the database (for `navigator.credentials.create` / `get`),
//! `…/finish` posts the browser's answer (the PublicKeyCredential as JSON,
//! binary fields base64url) back to the database, which verifies it. This
//! server passes both through as text and decides nothing.
//!
//! Adding a passkey (My account), the second sign-in step after the password
//! (instead of a TOTP code), signing in with a passkey alone
//! (`auth.passwordless`), and the step-up dialog. Every answer a script reads
//! is JSON (200), nothing (204), or a refusal in plain text that `app.js`
//! puts on the page as text: a refusal is the ceremony's answer (200 with
//! `X-Fluxbase-Refused`), so the browser logs no failed resource for it; an
//! ended session, a 403 or a 500 keep their status.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use super::Url;
use crate::api;
use crate::cookies;
use crate::error::WebError;
use crate::form::WebForm;
use crate::session::{Client, Session};
use crate::App;

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::AccountPasskeyBegin.path(), post(register_begin))
        .route(Url::AccountPasskeyFinish.path(), post(register_finish))
        .route(Url::LoginPasskeyBegin.path(), post(login_begin))
        .route(Url::LoginPasskeyFinish.path(), post(login_finish))
        .route(Url::Login2faPasskeyBegin.path(), post(mfa_begin))
        .route(Url::Login2faPasskeyFinish.path(), post(mfa_finish))
        .route(Url::ReauthPasskeyBegin.path(), post(reauth_begin))
        .route(Url::ReauthPasskeyFinish.path(), post(reauth_finish))
}

/// A message a script shows: plain text, never HTML.
fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = (status, text.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// A refusal (by the database, or an expired step): the ceremony's answer.
fn no(text: &str) -> Response {
    let mut r = plain(StatusCode::OK, text);
    r.headers_mut().insert("X-Fluxbase-Refused", HeaderValue::from_static("1"));
    r
}

/// An error of the database (or ours) as a script's refusal. A 500 keeps
/// its request id and logs the detail (`WebError::respond`); its text is
/// replaced by a plain one.
fn refusal(e: WebError) -> Response {
    match e {
        WebError::BadRequest(m) => no(&m),
        WebError::Denied(m) => plain(StatusCode::FORBIDDEN, &format!("Not allowed: {m}")),
        WebError::NotFound(m) => no(&m),
        WebError::Reauth(m) => no(&m),
        WebError::Expired | WebError::NoSession => {
            plain(StatusCode::UNAUTHORIZED, "Your session has ended. Reload the page and sign in again.")
        }
        WebError::EnrolFirst => plain(StatusCode::FORBIDDEN, "Set up two-factor authentication first."),
        e => {
            let status = e.clone().respond(false).status();
            plain(status, "The server could not do this just now (see its log). Try again.")
        }
    }
}

/// The options JSON the database made, as the answer.
fn options(json: String) -> Response {
    let mut r = json.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn answer(r: Result<String, WebError>) -> Response {
    match r {
        Ok(json) => options(json),
        Err(e) => refusal(e),
    }
}

/// Signed in: 204 with the session cookie (the 2FA cookie cleared); the
/// script goes to the home page.
fn signed_in(token: &str) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().append(header::SET_COOKIE, cookies::set(cookies::SESSION, token, None));
    r.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::MFA));
    r
}

const LOCKED: &str = "Too many failed attempts: sign-in is locked for a while. Try again later.";
const NOT_ACCEPTED: &str = "That passkey was not accepted (it may have been removed from this account, or this sign-in step has expired). Try again, or sign in another way.";

#[derive(Deserialize)]
struct NameInput {
    name: String,
}

#[derive(Deserialize)]
struct CredentialInput {
    credential: String,
}

// ---- My account: adding a passkey ----

async fn register_begin(State(app): State<App>, s: Session, WebForm(f): WebForm<NameInput>) -> Response {
    let name = f.name.trim().to_string();
    answer(app.db.with_session(&s.token, async |tx, _| api::passkeys::register_begin(tx, &name).await).await)
}

async fn register_finish(State(app): State<App>, s: Session, WebForm(f): WebForm<CredentialInput>) -> Response {
    match app.db.with_session(&s.token, async |tx, _| api::passkeys::register_finish(tx, &f.credential).await).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refusal(e),
    }
}

// ---- signing in with a passkey alone (auth.passwordless) ----

async fn login_begin(State(app): State<App>) -> Response {
    answer(app.db.without_session(async |tx| api::passkeys::login_begin(tx).await).await)
}

async fn login_finish(State(app): State<App>, client: Client, WebForm(f): WebForm<CredentialInput>) -> Response {
    let r = app
        .db
        .without_session(async |tx| {
            api::passkeys::login_finish(tx, &f.credential, client.ip.as_deref(), client.user_agent.as_deref()).await
        })
        .await;
    match r {
        Ok(a) => match (a.status.as_str(), a.session_token) {
            ("ok", Some(token)) => {
                crate::prom::signin("passkey_ok");
                signed_in(&token)
            }
            ("locked", _) => {
                crate::prom::signin("locked");
                no(LOCKED)
            }
            _ => {
                crate::prom::signin("passkey_failed");
                no(NOT_ACCEPTED)
            }
        },
        Err(e) => refusal(e),
    }
}

// ---- the second step after the password ----

const STEP_EXPIRED: &str = "This sign-in step has expired. Start again with your password.";

async fn mfa_begin(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(pending) = cookies::get(&headers, cookies::MFA) else {
        return no(STEP_EXPIRED);
    };
    match app.db.without_session(async |tx| api::passkeys::mfa_begin(tx, &pending).await).await {
        Ok(Some(json)) => options(json),
        Ok(None) => no(STEP_EXPIRED),
        Err(e) => refusal(e),
    }
}

async fn mfa_finish(State(app): State<App>, headers: HeaderMap, WebForm(f): WebForm<CredentialInput>) -> Response {
    let Some(pending) = cookies::get(&headers, cookies::MFA) else {
        return no(STEP_EXPIRED);
    };
    match app.db.without_session(async |tx| api::passkeys::mfa_finish(tx, &pending, &f.credential).await).await {
        Ok(a) => match (a.status.as_str(), a.session_token) {
            ("ok", Some(token)) => {
                crate::prom::signin("mfa_passkey_ok");
                signed_in(&token)
            }
            ("locked", _) => {
                crate::prom::signin("locked");
                let mut r = no(LOCKED);
                r.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::MFA));
                r
            }
            _ => {
                crate::prom::signin("mfa_failed");
                no(NOT_ACCEPTED)
            }
        },
        Err(e) => refusal(e),
    }
}

// ---- step-up ----

async fn reauth_begin(State(app): State<App>, s: Session) -> Response {
    answer(app.db.with_session(&s.token, async |tx, _| api::passkeys::reauth_begin(tx).await).await)
}

/// 204 with `HX-Trigger: fbReauthed` (as `reauth::reauth_post`): the script
/// closes the dialog and sends the refused action again.
async fn reauth_finish(State(app): State<App>, s: Session, WebForm(f): WebForm<CredentialInput>) -> Response {
    match app.db.with_session(&s.token, async |tx, _| api::passkeys::reauth_finish(tx, &f.credential).await).await {
        Ok(Some(_)) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut().insert("HX-Trigger", HeaderValue::from_static("fbReauthed"));
            r
        }
        Ok(None) => {
            crate::prom::stepup_refused();
            no("That passkey was not accepted. Try again, or enter your password.")
        }
        Err(e) => refusal(e),
    }
}
