//! First run, an invited admin's first visit, login (password, then TOTP or
//! backup code), logout. The
//! database answers each step; these pages only show its answer in words,
//! never whether an email exists.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::Url;
use crate::api;
use crate::cookies;
use crate::csrf::CsrfToken;
use crate::error::{to_login, WebError};
use crate::form::WebForm;
use crate::render::full;
use crate::session::Client;
use crate::App;

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::Setup.path(), get(setup_get).post(setup_post))
        .route(Url::Login.path(), get(login_get).post(login_post))
        .route(Url::Login2fa.path(), get(twofa_get).post(twofa_post))
        .route(Url::Logout.path(), post(logout_post))
        .route("/admin/invitation", get(invitation_get).post(invitation_post))
}

/// Signed in: the session cookie set, the 2FA cookie cleared, to the home page.
fn signed_in(token: &str) -> Response {
    let mut r = Redirect::to(Url::Home.path()).into_response();
    r.headers_mut().append(header::SET_COOKIE, cookies::set(cookies::SESSION, token, None));
    r.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::MFA));
    r
}

/// A form page again, with the message by the form and a 400.
fn refused(title: &str, csrf: &CsrfToken, t: &impl Template) -> Result<Response, WebError> {
    let mut r = full(title, None, csrf.0.as_deref(), t)?;
    *r.status_mut() = StatusCode::BAD_REQUEST;
    Ok(r)
}

// ---- first run ----

#[derive(Template)]
#[template(path = "login/setup.html")]
struct SetupForm<'a> {
    csrf: Option<&'a str>,
    email: &'a str,
    full_name: &'a str,
    min_length: i64,
    error: Option<&'a str>,
    /// Someone else completed setup meanwhile: offer the login page.
    taken: bool,
}

#[derive(Deserialize)]
struct SetupInput {
    email: String,
    password: String,
    full_name: String,
}

/// The password policy shown on the form (the database enforces it).
async fn min_password_length(app: &App) -> i64 {
    app.db
        .without_session(async |tx| api::settings::get_setting(tx, "password.min_length").await)
        .await
        .ok()
        .and_then(|v| v.as_i64())
        .unwrap_or(12)
}

async fn setup_get(State(app): State<App>, csrf: CsrfToken) -> Result<Response, WebError> {
    if !app.needs_setup().await? {
        return Ok(Redirect::to(Url::Login.path()).into_response());
    }
    let min_length = min_password_length(&app).await;
    let form = SetupForm { csrf: csrf.0.as_deref(), email: "", full_name: "", min_length, error: None, taken: false };
    full("Create the first admin account", None, csrf.0.as_deref(), &form)
}

async fn setup_post(State(app): State<App>, csrf: CsrfToken, WebForm(f): WebForm<SetupInput>) -> Result<Response, WebError> {
    let answer = app
        .db
        .without_session(async |tx| api::accounts::setup_first_admin(tx, &f.email, &f.password, &f.full_name).await)
        .await;
    match answer {
        Ok(s) => {
            let _ = app.needs_setup().await;
            Ok(signed_in(&s.session_token))
        }
        Err(WebError::BadRequest(msg)) => {
            // Lost a race with another first-run form: say so plainly.
            let taken = !app.needs_setup().await?;
            let error = if taken {
                "Setup has already been completed: someone else created the first admin account just now. Sign in with that account, or ask its owner for an invitation.".to_string()
            } else {
                msg
            };
            let min_length = min_password_length(&app).await;
            let form = SetupForm {
                csrf: csrf.0.as_deref(),
                email: &f.email,
                full_name: &f.full_name,
                min_length,
                error: Some(&error),
                taken,
            };
            refused("Create the first admin account", &csrf, &form)
        }
        Err(e) => Err(e),
    }
}

// ---- an invited admin's first visit ----

#[derive(Template)]
#[template(path = "login/invitation.html")]
struct InvitationForm<'a> {
    csrf: Option<&'a str>,
    /// Kept after a refusal only; the link an admin hands out carries the
    /// token in its fragment (`#token=...`: never sent to a server, never in
    /// a log or a Referer), which app.js copies into the field.
    token: &'a str,
    full_name: &'a str,
    min_length: i64,
    error: Option<&'a str>,
}

async fn invitation_get(State(app): State<App>, csrf: CsrfToken) -> Result<Response, WebError> {
    let min_length = min_password_length(&app).await;
    let form = InvitationForm { csrf: csrf.0.as_deref(), token: "", full_name: "", min_length, error: None };
    full("Accept your invitation", None, csrf.0.as_deref(), &form)
}

#[derive(Deserialize)]
struct InvitationInput {
    token: String,
    password: String,
    full_name: String,
}

/// `dashboard_auth.accept_invitation`; then to the sign-in page. A refusal
/// (unknown, used, revoked or expired token; a weak password) is the
/// database's message on the form.
async fn invitation_post(State(app): State<App>, csrf: CsrfToken, WebForm(f): WebForm<InvitationInput>) -> Result<Response, WebError> {
    let answer = app
        .db
        .without_session(async |tx| api::accounts::accept_invitation(tx, f.token.trim(), &f.password, f.full_name.trim()).await)
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to(&format!("{}?reason=invited", Url::Login.path())).into_response()),
        Err(WebError::BadRequest(msg)) | Err(WebError::NotFound(msg)) | Err(WebError::Denied(msg)) => {
            let min_length = min_password_length(&app).await;
            let form = InvitationForm {
                csrf: csrf.0.as_deref(),
                token: &f.token,
                full_name: &f.full_name,
                min_length,
                error: Some(&msg),
            };
            refused("Accept your invitation", &csrf, &form)
        }
        Err(e) => Err(e),
    }
}

// ---- login ----

#[derive(Template)]
#[template(path = "login/login.html")]
struct LoginForm<'a> {
    csrf: Option<&'a str>,
    email: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    /// `auth.passwordless`: offer "Sign in with a passkey" (issue 33).
    passwordless: bool,
}

/// A boolean setting read without a session (false when unreadable: the
/// page then offers less; the database decides either way).
async fn setting_on(app: &App, key: &str) -> bool {
    app.db
        .without_session(async |tx| api::settings::get_setting(tx, key).await)
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

#[derive(Deserialize)]
struct LoginQuery {
    reason: Option<String>,
}

/// The one-line reasons the login page can show (never text from the URL).
fn reason_text(reason: Option<&str>) -> Option<&'static str> {
    Some(match reason? {
        "expired" => "Your session has ended (it expired or was signed out elsewhere). Please sign in again.",
        "signed_out" => "You have signed out.",
        "mfa_expired" => "The sign-in step expired. Enter your password again.",
        "locked" => LOCKED,
        "invited" => "Your account is ready. Sign in with your email and the password you chose.",
        _ => return None,
    })
}

const LOCKED: &str = "Too many failed attempts: sign-in is locked for a while. Try again later.";
const WRONG: &str = "Wrong email or password.";

async fn login_get(State(app): State<App>, csrf: CsrfToken, Query(q): Query<LoginQuery>) -> Result<Response, WebError> {
    let passwordless = setting_on(&app, "auth.passwordless").await;
    let form = LoginForm { csrf: csrf.0.as_deref(), email: "", notice: reason_text(q.reason.as_deref()), error: None, passwordless };
    full("Sign in", None, csrf.0.as_deref(), &form)
}

#[derive(Deserialize)]
struct LoginInput {
    email: String,
    password: String,
}

async fn login_post(
    State(app): State<App>,
    csrf: CsrfToken,
    client: Client,
    WebForm(f): WebForm<LoginInput>,
) -> Result<Response, WebError> {
    let answer = app
        .db
        .without_session(async |tx| {
            api::accounts::login(tx, &f.email, &f.password, client.ip.as_deref(), client.user_agent.as_deref()).await
        })
        .await;
    let error = match answer {
        Ok(a) => match (a.status.as_str(), a.session_token) {
            ("ok", Some(token)) => {
                crate::prom::signin("ok");
                return Ok(signed_in(&token));
            }
            ("mfa_required", Some(pending)) => {
                crate::prom::signin("mfa_required");
                let mut r = Redirect::to(Url::Login2fa.path()).into_response();
                r.headers_mut()
                    .append(header::SET_COOKIE, cookies::set(cookies::MFA, &pending, Some(cookies::MFA_MAX_AGE)));
                return Ok(r);
            }
            ("locked", _) => {
                crate::prom::signin("locked");
                LOCKED.to_string()
            }
            _ => {
                crate::prom::signin("failed");
                WRONG.to_string()
            }
        },
        Err(WebError::BadRequest(msg)) => {
            crate::prom::signin("refused");
            msg
        }
        Err(e) => return Err(e),
    };
    let passwordless = setting_on(&app, "auth.passwordless").await;
    let form = LoginForm { csrf: csrf.0.as_deref(), email: &f.email, notice: None, error: Some(&error), passwordless };
    refused("Sign in", &csrf, &form)
}

// ---- second step ----

#[derive(Template)]
#[template(path = "login/twofa.html")]
struct TwofaForm<'a> {
    csrf: Option<&'a str>,
    error: Option<&'a str>,
    /// `mfa.phishing_resistant_required`: no field for an authenticator
    /// code, only a passkey or a backup code (issue 33).
    phishing_resistant: bool,
}

async fn twofa_get(State(app): State<App>, headers: HeaderMap, csrf: CsrfToken) -> Result<Response, WebError> {
    if cookies::get(&headers, cookies::MFA).is_none() {
        return Ok(Redirect::to(&format!("{}?reason=mfa_expired", Url::Login.path())).into_response());
    }
    let phishing_resistant = setting_on(&app, "mfa.phishing_resistant_required").await;
    full("Two-factor authentication", None, csrf.0.as_deref(), &TwofaForm { csrf: csrf.0.as_deref(), error: None, phishing_resistant })
}

#[derive(Deserialize)]
struct TwofaInput {
    code: String,
}

async fn twofa_post(
    State(app): State<App>,
    headers: HeaderMap,
    csrf: CsrfToken,
    WebForm(f): WebForm<TwofaInput>,
) -> Result<Response, WebError> {
    let Some(pending) = cookies::get(&headers, cookies::MFA) else {
        return Ok(Redirect::to(&format!("{}?reason=mfa_expired", Url::Login.path())).into_response());
    };
    let code: String = f.code.chars().filter(|c| !c.is_whitespace()).collect();
    let answer = app.db.without_session(async |tx| api::sessions::login_mfa(tx, &pending, &code).await).await;
    let error = match answer {
        Ok(a) => match (a.status.as_str(), a.session_token) {
            ("ok", Some(token)) => {
                crate::prom::signin("mfa_ok");
                return Ok(signed_in(&token));
            }
            ("locked", _) => {
                crate::prom::signin("locked");
                let mut r = Redirect::to(&format!("{}?reason=locked", Url::Login.path())).into_response();
                r.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::MFA));
                return Ok(r);
            }
            _ => {
                crate::prom::signin("mfa_failed");
                "That code is not valid, or this sign-in step has expired.".to_string()
            }
        },
        Err(WebError::BadRequest(msg)) => msg,
        Err(e) => return Err(e),
    };
    let phishing_resistant = setting_on(&app, "mfa.phishing_resistant_required").await;
    refused("Two-factor authentication", &csrf, &TwofaForm { csrf: csrf.0.as_deref(), error: Some(&error), phishing_resistant })
}

// ---- logout ----

async fn logout_post(State(app): State<App>, headers: HeaderMap) -> Result<Response, WebError> {
    if let Some(token) = cookies::get(&headers, cookies::SESSION) {
        // Signing out ends a running *View as…* (issue 28 item 5): the next
        // sign-in does not resume it. (A session already gone cannot stop
        // it; the impersonation then ends at its own expiry.)
        if let Some(imp) = cookies::get(&headers, cookies::IMPERSONATION).and_then(|v| v.parse::<uuid::Uuid>().ok()) {
            let stopped = app.db.with_session(&token, async |tx, _| api::impersonation::stop(tx, imp).await).await;
            if let Err(e) = stopped {
                eprintln!("fluxbase serve: sign-out could not stop impersonation {imp}: {e:?}");
            }
        }
        app.db.without_session(async |tx| api::sessions::logout(tx, &token).await).await?;
    }
    let mut resp = to_login(Some("signed_out"), headers.contains_key("hx-request"));
    resp.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::IMPERSONATION));
    Ok(resp)
}
