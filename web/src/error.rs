//! Errors → pages, by SQLSTATE as the CLI's `fail.rs` `from_db` does:
//! 28000 from use_session → clear the cookie, back to the login page with a
//! reason (htmx: `HX-Redirect`); 42501 → 403; 22023 22004 22P02 23505 28P01
//! 55000 P0001 (and the step-up code FBR01) → 400 with the database's message;
//! P0002 → 404; 57014 (`Cancelled`) → 504 naming the statement timeout; no
//! free connection in time (`Unavailable`) → 503; anything else → 500 with a
//! request id, the detail only logged.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::cookies;
use crate::urls::Url;

#[derive(Debug, Clone)]
pub enum WebError {
    /// The session expired or was revoked (or there is none): to the login page.
    Expired,
    /// No session cookie at all: to the login page without a reason.
    NoSession,
    /// The session may only enrol in 2FA (`mfa.required` is on): to the
    /// enrolment page.
    EnrolFirst,
    /// 403, the database's (or our) message.
    Denied(String),
    /// 400, a message for the person (a refusal by the database, a bad form).
    BadRequest(String),
    /// SQLSTATE FBR01: the action needs a fresh re-authentication. htmx
    /// requests get the re-auth dialog (into `#reauth`; `app.js` retries the
    /// action after it), others a 400 page saying so.
    Reauth(String),
    /// 404.
    NotFound(String),
    /// 500; the detail is logged, the page shows only the request id.
    Internal(String),
    /// SQLSTATE 57014: a statement cancelled (a statement timeout). Told
    /// apart so that `Db::with_timeout` can catch exactly it; the page (504)
    /// names the dashboard's statement timeout (`limits`).
    Cancelled(String),
    /// 503: no database connection came free in time (`limits`).
    Unavailable(String),
}

impl WebError {
    pub fn internal(detail: impl Into<String>) -> WebError {
        WebError::Internal(detail.into())
    }

    /// The message a form shows next to it, for the 400 kinds.
    pub fn form_message(&self) -> Option<&str> {
        match self {
            WebError::BadRequest(m) => Some(m),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for WebError {
    fn from(e: tokio_postgres::Error) -> WebError {
        let Some(db) = e.as_db_error() else {
            return WebError::internal(format!("database: {e}"));
        };
        let msg = db.message().to_string();
        // The extension's own errors name their routine `fluxbase_admin`
        // (src/errors.rs `raise`); a table owner's code (a view, a trigger, a
        // function the SQL console calls) cannot. Only the API's own 28000
        // or enrolment refusal means "your session": the same codes from
        // anyone else's code are an error of that code (issue 28 item 5).
        let ours = db.routine() == Some("fluxbase_admin");
        match db.code().code() {
            // A session limited to 2FA enrolment (its hint names totp_setup).
            "42501" if ours && db.hint().is_some_and(|h| h.contains("totp_setup")) => WebError::EnrolFirst,
            "42501" => WebError::Denied(msg),
            "22023" | "22004" | "22P02" | "23505" | "28P01" | "55000" | "P0001" | "23514" | "22001" | "22007" | "22008" => {
                WebError::BadRequest(msg)
            }
            // An unknown column, a NUL or an escape jsonb cannot hold (a filter, a sort).
            "42703" | "22P05" | "22021" => WebError::BadRequest(msg),
            "FBR01" => WebError::Reauth(msg),
            "P0002" => WebError::NotFound(msg),
            "28000" if ours => WebError::Expired,
            "28000" => WebError::Denied(msg),
            // A bound the extension keeps (too many passkey sign-ins open): say so.
            "53400" if ours => WebError::BadRequest(msg),
            "57014" => WebError::Cancelled(format!("database 57014: {msg}")),
            code => WebError::internal(format!("database {code}: {msg}")),
        }
    }
}

/// The error page's content (shown without the top bar: it needs no session
/// and no database).
#[derive(Template)]
#[template(path = "error_page.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub status: u16,
    pub message: &'a str,
}

/// The same message as a fragment, for htmx requests.
#[derive(Template)]
#[template(path = "error_partial.html")]
pub struct ErrorPartial<'a> {
    pub message: &'a str,
}

/// Render the error page for `status`. htmx requests get the fragment,
/// retargeted for a 400 to the requesting form's own `.form-error` element,
/// else the page's `#form-error`, else the shell's `#flash` (htmx takes the
/// first that exists); for other statuses to `#flash`.
pub fn error_response(status: StatusCode, message: &str, htmx: bool) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let page = if htmx {
        crate::render::html(&ErrorPartial { message })
    } else {
        crate::render::full(title, None, None, &ErrorPage { title, status: status.as_u16(), message })
    };
    let mut resp = page.unwrap_or_else(|_| message.to_string().into_response());
    *resp.status_mut() = status;
    if htmx {
        let target = if status == StatusCode::BAD_REQUEST { "find .form-error, #form-error, #flash" } else { "#flash" };
        resp.headers_mut().insert("HX-Retarget", HeaderValue::from_static(target));
        resp.headers_mut().insert("HX-Reswap", HeaderValue::from_static("innerHTML"));
    }
    resp
}

/// The step-up dialog (password or 2FA code), answered with 200 so htmx swaps
/// it into `#reauth`; `X-Fluxbase-Reauth` tells `app.js` to keep the element
/// whose request was refused and to retry it once the dialog succeeds.
#[derive(Template)]
#[template(path = "reauth_dialog.html")]
pub struct ReauthDialog<'a> {
    pub error: Option<&'a str>,
}

pub fn reauth_dialog(error: Option<&str>) -> Response {
    let mut resp = match (ReauthDialog { error }).render() {
        Ok(html) => axum::response::Html(html).into_response(),
        Err(_) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "template error", true),
    };
    let h = resp.headers_mut();
    h.insert("HX-Retarget", HeaderValue::from_static("#reauth"));
    h.insert("HX-Reswap", HeaderValue::from_static("innerHTML"));
    h.insert("X-Fluxbase-Reauth", HeaderValue::from_static("required"));
    resp
}

/// A short random id joining a 500 page to its log line.
fn request_id() -> String {
    // (the request layer's id, when there is one: `prom`)
    if let Some(id) = crate::prom::request_id() {
        return id;
    }
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

impl WebError {
    pub fn respond(self, htmx: bool) -> Response {
        match self {
            WebError::Expired => to_login(Some("expired"), htmx),
            WebError::NoSession => to_login(None, htmx),
            WebError::EnrolFirst => redirect(Url::Enrol.path(), htmx),
            WebError::Denied(m) => error_response(StatusCode::FORBIDDEN, &format!("Not allowed: {m}"), htmx),
            WebError::BadRequest(m) => error_response(StatusCode::BAD_REQUEST, &m, htmx),
            WebError::Reauth(_) if htmx => {
                crate::prom::stepup_refused();
                reauth_dialog(None)
            }
            WebError::Reauth(m) => crate::prom::stepup_refused_then(error_response(
                StatusCode::BAD_REQUEST,
                &format!("{m}: confirm your password or a 2FA code in the dialog, then try again."),
                false,
            )),
            WebError::NotFound(m) => error_response(StatusCode::NOT_FOUND, &m, htmx),
            WebError::Unavailable(m) => {
                error_response(StatusCode::SERVICE_UNAVAILABLE, &format!("The dashboard is busy: {m}. Try again in a moment."), htmx)
            }
            WebError::Cancelled(detail) => {
                let id = request_id();
                eprintln!("fluxbase serve: request {id} cancelled: {detail}");
                error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!(
                        "The database statement ran longer than the dashboard's statement timeout ({} s, fluxbase serve --statement-timeout) and was cancelled (request id {id}). Narrow the view with a filter, or try again.",
                        crate::limits::statement_timeout().as_secs_f32()
                    ),
                    htmx,
                )
            }
            WebError::Internal(detail) => {
                let id = request_id();
                eprintln!("fluxbase serve: request {id} failed: {detail}");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("Something went wrong on the server (request id {id})."),
                    htmx,
                )
            }
        }
    }
}

impl IntoResponse for WebError {
    /// The page is rendered by `headers::security`, which knows whether the
    /// request came from htmx (a fragment then, a full page otherwise).
    fn into_response(self) -> Response {
        let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        r.extensions_mut().insert(Deferred(self));
        r
    }
}

/// An error waiting to be rendered by the middleware.
#[derive(Clone)]
pub struct Deferred(pub WebError);

/// A 303 to `to`, or for htmx an `HX-Redirect` there.
pub fn redirect(to: &str, htmx: bool) -> Response {
    if htmx {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers_mut().insert("HX-Redirect", v);
        }
        r
    } else {
        Redirect::to(to).into_response()
    }
}

/// Clear the session cookie and go to the login page (with a reason).
pub fn to_login(reason: Option<&str>, htmx: bool) -> Response {
    let to = match reason {
        Some(r) => format!("{}?reason={r}", Url::Login.path()),
        None => Url::Login.path().to_string(),
    };
    let mut resp = redirect(&to, htmx);
    if reason.is_some() {
        resp.headers_mut().append(header::SET_COOKIE, cookies::clear(cookies::SESSION));
    }
    resp
}
