//! My account (`/admin/account`): password change, 2FA enrolment with a QR
//! code, backup codes (shown once, downloadable as text), 2FA off, my
//! sessions with "sign out everywhere else". Every action is one database
//! call under the admin's session; its refusal is shown by the form.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use uuid::Uuid;

use super::Url;
use crate::api;
use crate::api::accounts::Admin;
use crate::error::WebError;
use crate::form::WebForm;
use crate::qr::Qr;
use crate::render::{full, page};
use crate::session::{HxRequest, Session};
use crate::App;

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::Account.path(), get(index_get))
        .route(Url::AccountPassword.path(), post(password_post))
        .route(Url::Account2faSetup.path(), post(twofa_setup_post))
        .route(Url::Account2faEnable.path(), post(twofa_enable_post))
        .route(Url::Account2faDisable.path(), post(twofa_disable_post))
        .route(Url::AccountBackupCodes.path(), post(backup_codes_post))
        .route(Url::AccountSessionRevoke.path(), post(session_revoke_post))
        .route(Url::AccountSessionsRevokeOthers.path(), post(sessions_revoke_others_post))
        .route(Url::Enrol.path(), get(enrol_get))
        .route(Url::AccountPasskeyRename.path(), post(passkey_rename_post))
        .route(Url::AccountPasskeyRemove.path(), post(passkey_remove_post))
}

/// A message by one card's form.
struct Msg {
    ok: bool,
    text: String,
}

fn ok(text: &str) -> Option<Msg> {
    Some(Msg { ok: true, text: text.into() })
}

/// A refusal by the database becomes the form's message; anything else
/// (expired session, 403, 500) stays an error page.
fn refusal(e: WebError) -> Result<Option<Msg>, WebError> {
    match e {
        WebError::BadRequest(text) => Ok(Some(Msg { ok: false, text })),
        e => Err(e),
    }
}

/// 2FA enrolment in progress: the secret and its QR code.
struct Enrol {
    secret: String,
    otpauth_uri: String,
    qr: Option<Qr>,
}

impl Enrol {
    fn new(secret: String, otpauth_uri: String) -> Enrol {
        let qr = Qr::new(&otpauth_uri, "QR code of the authenticator secret");
        Enrol { secret, otpauth_uri, qr }
    }
}

/// Backup codes just made: shown once, with a download link carrying them
/// as a data: URL (the server keeps only their digests).
struct Codes {
    codes: Vec<String>,
    href: String,
}

impl Codes {
    fn new(codes: Vec<String>, email: &str) -> Codes {
        let text = format!(
            "Fluxbase backup codes for {email}\nEach code signs you in once, in place of an authenticator code.\n\n{}\n",
            codes.join("\n")
        );
        let mut href = String::from("data:text/plain;charset=utf-8,");
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                href.push(b as char);
            } else {
                href.push_str(&format!("%{b:02X}"));
            }
        }
        Codes { codes, href }
    }
}

/// What a POST adds to the page.
#[derive(Default)]
struct View {
    password: Option<Msg>,
    mfa: Option<Msg>,
    enrol: Option<Enrol>,
    codes: Option<Vec<String>>,
    sessions: Option<Msg>,
    passkeys: Option<Msg>,
}

/// A passkey of the list.
struct PasskeyView {
    id: Uuid,
    name: String,
    created: String,
    last_used: String,
}

/// `webauthn.rp_id` / `webauthn.origins` unset: what to set them to, from
/// the dashboard's public URL (`--public-url`, else the listen address).
struct WebauthnHint {
    rp_id: String,
    origins: String,
    /// The public URL's host is an address other than loopback: a relying
    /// party id must be a domain name.
    needs_domain: bool,
}

/// What to set, from `public` (`scheme://host[:port]`). A loopback address
/// becomes `localhost` (browsers treat http://localhost as secure; an IP
/// address cannot be a relying party id).
fn webauthn_hint(public: &str) -> WebauthnHint {
    let (scheme, rest) = public.split_once("://").unwrap_or(("https", public));
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (rest, None),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = bare.parse::<std::net::IpAddr>().ok();
    let host = match ip {
        Some(a) if a.is_loopback() => "localhost".to_string(),
        _ => bare.to_ascii_lowercase(),
    };
    let origin = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    WebauthnHint {
        origins: serde_json::json!([origin]).to_string(),
        rp_id: serde_json::Value::String(host).to_string(),
        needs_domain: ip.is_some_and(|a| !a.is_loopback()),
    }
}

struct SessionView {
    id: Uuid,
    created: String,
    last_seen: String,
    expires: String,
    ip: String,
    agent: String,
    current: bool,
}

/// "2026-12-01T22:55:00.123+00:00" → "2026-12-01 22:55 UTC" (timestamps come in UTC).
fn when(ts: &str) -> String {
    let t = ts.replace('T', " ");
    format!("{} UTC", t.get(..16).unwrap_or(&t))
}

#[derive(Template)]
#[template(path = "account/index_partial.html")]
struct AccountPartial {
    csrf: String,
    admin: Admin,
    role: String,
    password: Option<Msg>,
    mfa: Option<Msg>,
    enrol: Option<Enrol>,
    codes: Option<Codes>,
    sessions: Vec<SessionView>,
    sessions_msg: Option<Msg>,
    others: usize,
    passkeys: Vec<PasskeyView>,
    passkeys_msg: Option<Msg>,
    webauthn: Option<WebauthnHint>,
}

/// The account page with what `v` adds; 400 when a form was refused.
async fn show(app: &App, s: &Session, hx: HxRequest, v: View) -> Result<Response, WebError> {
    let htmx = hx.0;
    let refused = [&v.password, &v.mfa, &v.sessions, &v.passkeys].iter().any(|m| m.as_ref().is_some_and(|m| !m.ok));
    let mut resp = page(app, s, hx, Url::Account, "My account", async |tx, me| {
        let admin = api::accounts::get_admin(tx, me).await?;
        let sessions: Vec<SessionView> = api::sessions::list_sessions(tx, Some(me))
            .await?
            .into_iter()
            .map(|r| SessionView {
                id: r.id,
                created: when(&r.created_at),
                last_seen: when(&r.last_seen_at),
                expires: when(&r.expires_at),
                ip: r.ip.unwrap_or_default(),
                agent: r.user_agent.unwrap_or_default(),
                current: r.is_current,
            })
            .collect();
        let others = sessions.iter().filter(|x| !x.current).count();
        let role = admin.role.strip_prefix("dashboard_").unwrap_or(&admin.role).to_string();
        let codes = v.codes.map(|c| Codes::new(c, &admin.email));
        let passkeys = api::passkeys::list_mine(tx)
            .await?
            .into_iter()
            .map(|p| PasskeyView {
                id: p.id,
                name: p.name,
                created: p.created_at.to_string(),
                last_used: if p.last_used_at.is_set() { p.last_used_at.to_string() } else { "never".into() },
            })
            .collect();
        let rp_id = api::settings::get_setting(tx, "webauthn.rp_id").await?;
        let origins = api::settings::get_setting(tx, "webauthn.origins").await?;
        let unset = rp_id.as_str().is_none_or(str::is_empty) || origins.as_array().is_none_or(Vec::is_empty);
        let webauthn = unset.then(|| webauthn_hint(crate::public_url::public_url()));
        Ok(AccountPartial {
            csrf: s.csrf.clone(),
            admin,
            role,
            password: v.password,
            mfa: v.mfa,
            enrol: v.enrol,
            codes,
            sessions,
            sessions_msg: v.sessions,
            others,
            passkeys,
            passkeys_msg: v.passkeys,
            webauthn,
        })
    })
    .await?;
    // A plain form post that was refused answers 400 (the page shows why);
    // htmx swaps the same page in with a 200, its message in the card.
    if refused && !htmx {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(resp)
}

#[derive(Template)]
#[template(path = "account/enrol_partial.html")]
struct EnrolPartial {
    csrf: String,
    mfa: Option<Msg>,
    enrol: Option<Enrol>,
}

/// The only page of a session limited to enrolling in 2FA (`mfa.required`):
/// a button that makes a fresh secret (a POST to `twofa_setup_post`: a GET
/// writes nothing, issue 28 item 5); confirming its code
/// (`twofa_enable_post`) makes the session a full one.
async fn enrol_get(s: Session) -> Result<Response, WebError> {
    let partial = EnrolPartial { csrf: s.csrf.clone(), mfa: None, enrol: None };
    full("Set up two-factor authentication", None, Some(&s.csrf), &partial)
}

async fn index_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    show(&app, &s, hx, View::default()).await
}

#[derive(Deserialize)]
struct PasswordInput {
    old_password: String,
    new_password: String,
}

async fn password_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<PasswordInput>) -> Result<Response, WebError> {
    let r = app
        .db
        .with_session(&s.token, async |tx, _| api::accounts::change_password(tx, &f.old_password, &f.new_password).await)
        .await;
    let password = match r {
        Ok(()) => ok("Password changed. Your other sessions were signed out."),
        Err(e) => refusal(e)?,
    };
    show(&app, &s, hx, View { password, ..View::default() }).await
}

async fn twofa_setup_post(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    match app.db.with_session(&s.token, async |tx, _| api::mfa::totp_setup(tx).await).await {
        Ok(t) => match show(&app, &s, hx, View { enrol: Some(Enrol::new(t.secret.clone(), t.otpauth_uri.clone())), ..View::default() }).await {
            // A session limited to enrolment: the enrolment page, with the secret.
            Err(WebError::EnrolFirst) => {
                let partial = EnrolPartial { csrf: s.csrf.clone(), mfa: None, enrol: Some(Enrol::new(t.secret, t.otpauth_uri)) };
                full("Set up two-factor authentication", None, Some(&s.csrf), &partial)
            }
            r => r,
        },
        Err(e) => show(&app, &s, hx, View { mfa: refusal(e)?, ..View::default() }).await,
    }
}

#[derive(Deserialize)]
struct EnableInput {
    code: String,
    /// The secret being enrolled, posted back so a mistyped code can be
    /// retried without scanning a new QR code (it is on the page anyway).
    secret: String,
    otpauth_uri: String,
}

fn clean(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

async fn twofa_enable_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<EnableInput>) -> Result<Response, WebError> {
    let code = clean(&f.code);
    match app.db.with_session(&s.token, async |tx, _| api::mfa::totp_enable(tx, &code).await).await {
        Ok(codes) => {
            let v = View { mfa: ok("Two-factor authentication is on."), codes: Some(codes), ..View::default() };
            show(&app, &s, hx, v).await
        }
        Err(e) => {
            let text = refusal(e)?.map(|m| m.text).unwrap_or_default();
            let again = |text: &str| (Some(Msg { ok: false, text: text.to_string() }), Some(Enrol::new(f.secret.clone(), f.otpauth_uri.clone())));
            let (mfa, enrol) = again(&text);
            match show(&app, &s, hx, View { mfa, enrol, ..View::default() }).await {
                // A session limited to enrolment can't show the account page:
                // the enrolment page again, with the message.
                Err(WebError::EnrolFirst) => {
                    let (mfa, enrol) = again(&text);
                    let mut r = full("Set up two-factor authentication", None, Some(&s.csrf), &EnrolPartial { csrf: s.csrf.clone(), mfa, enrol })?;
                    *r.status_mut() = StatusCode::BAD_REQUEST;
                    Ok(r)
                }
                r => r,
            }
        }
    }
}

#[derive(Deserialize)]
struct CodeInput {
    code: String,
}

async fn twofa_disable_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<CodeInput>) -> Result<Response, WebError> {
    let code = clean(&f.code);
    let mfa = match app.db.with_session(&s.token, async |tx, _| api::mfa::totp_disable(tx, &code).await).await {
        Ok(()) => ok("Two-factor authentication is off."),
        Err(e) => refusal(e)?,
    };
    show(&app, &s, hx, View { mfa, ..View::default() }).await
}

async fn backup_codes_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<CodeInput>) -> Result<Response, WebError> {
    let code = clean(&f.code);
    match app.db.with_session(&s.token, async |tx, _| api::mfa::regenerate_backup_codes(tx, &code).await).await {
        Ok(codes) => {
            let v = View { mfa: ok("New backup codes made; the old ones no longer work."), codes: Some(codes), ..View::default() };
            show(&app, &s, hx, v).await
        }
        Err(e) => show(&app, &s, hx, View { mfa: refusal(e)?, ..View::default() }).await,
    }
}

#[derive(Deserialize)]
struct RevokeInput {
    id: Uuid,
}

async fn session_revoke_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<RevokeInput>) -> Result<Response, WebError> {
    let r = app.db.with_session(&s.token, async |tx, _| api::sessions::revoke_session(tx, f.id).await).await;
    let sessions = match r {
        Ok(_) => ok("Session signed out."),
        Err(e) => refusal(e)?,
    };
    show(&app, &s, hx, View { sessions, ..View::default() }).await
}

async fn sessions_revoke_others_post(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    let r = app
        .db
        .with_session(&s.token, async |tx, me| {
            let mut n = 0;
            for other in api::sessions::list_sessions(tx, Some(me)).await?.into_iter().filter(|x| !x.is_current) {
                if api::sessions::revoke_session(tx, other.id).await? {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await;
    let sessions = match r {
        Ok(n) => Some(Msg { ok: true, text: format!("Signed out everywhere else ({n} session{}).", if n == 1 { "" } else { "s" }) }),
        Err(e) => refusal(e)?,
    };
    show(&app, &s, hx, View { sessions, ..View::default() }).await
}

// ---- passkeys (issue 33; adding one is `routes::passkeys`, by script) ----

#[derive(Deserialize)]
struct PasskeyRenameInput {
    id: Uuid,
    name: String,
}

async fn passkey_rename_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<PasskeyRenameInput>) -> Result<Response, WebError> {
    let name = f.name.trim().to_string();
    let r = app.db.with_session(&s.token, async |tx, _| api::passkeys::rename(tx, f.id, &name).await).await;
    let passkeys = match r {
        Ok(()) => ok("Passkey renamed."),
        Err(WebError::NotFound(text)) => Some(Msg { ok: false, text }),
        Err(e) => refusal(e)?,
    };
    show(&app, &s, hx, View { passkeys, ..View::default() }).await
}

#[derive(Deserialize)]
struct PasskeyRemoveInput {
    id: Uuid,
}

/// Removing a passkey needs a fresh re-authentication (FBR01): htmx gets
/// the step-up dialog, and the form is sent again after it.
async fn passkey_remove_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<PasskeyRemoveInput>) -> Result<Response, WebError> {
    let r = app.db.with_session(&s.token, async |tx, _| api::passkeys::remove(tx, f.id).await).await;
    let passkeys = match r {
        Ok(()) => ok("Passkey removed."),
        Err(WebError::NotFound(text)) => Some(Msg { ok: false, text }),
        Err(e) => refusal(e)?,
    };
    show(&app, &s, hx, View { passkeys, ..View::default() }).await
}

#[cfg(test)]
mod tests {
    use super::webauthn_hint;

    #[test]
    fn hint_from_the_public_url() {
        let h = webauthn_hint("https://Admin.Example.com");
        assert_eq!((h.rp_id.as_str(), h.origins.as_str(), h.needs_domain), ("\"admin.example.com\"", "[\"https://admin.example.com\"]", false));
        let h = webauthn_hint("http://127.0.0.1:8080");
        assert_eq!((h.rp_id.as_str(), h.origins.as_str(), h.needs_domain), ("\"localhost\"", "[\"http://localhost:8080\"]", false));
        let h = webauthn_hint("http://[::1]:9000");
        assert_eq!(h.origins, "[\"http://localhost:9000\"]");
        let h = webauthn_hint("https://10.1.2.3:8443");
        assert!(h.needs_domain);
    }
}
