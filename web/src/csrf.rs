//! CSRF defence on every request that is not GET/HEAD:
//! 1. `Sec-Fetch-Site` must be `same-origin`; a browser that sends none must
//!    send an `Origin` equal to ours. A request with neither is refused.
//! 2. With a session cookie, the per-session token (HMAC-SHA256 of the session
//!    token under a per-process key) must come as the `X-CSRF-Token` header
//!    (htmx: `hx-headers` on `<body>`) or the `_csrf` form field; compared in
//!    constant time.
//! The body is read here, once, with the size limit (over it: the 400 page).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::error_response;
use crate::{cookies, App, BODY_LIMIT};

/// The token for a session: hex of HMAC-SHA256(key, session token).
pub fn token(key: &[u8; 32], session: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(session.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Our origin as the browser names it, from the Host header.
fn our_origin(app: &App, req: &Request) -> Option<String> {
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    Some(format!("{}://{host}", crate::headers::scheme(app, req.headers())))
}

fn same_origin(app: &App, req: &Request) -> bool {
    match req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin",
        None => match (req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()), our_origin(app, req)) {
            (Some(origin), Some(ours)) => origin.eq_ignore_ascii_case(&ours),
            _ => false,
        },
    }
}

/// The `_csrf` field of an urlencoded body.
fn form_token(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v)
}

pub async fn protect(State(app): State<App>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let htmx = req.headers().contains_key("hx-request");
    if !same_origin(&app, &req) {
        return error_response(StatusCode::FORBIDDEN, "Refused: this request did not come from the dashboard's own pages (cross-site request).", htmx);
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return error_response(StatusCode::BAD_REQUEST, "The request is too large or was cut off.", htmx),
    };
    if let Some(session) = cookies::get(&parts.headers, cookies::SESSION) {
        let expected = token(&app.csrf_key, &session);
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| form_token(&bytes))
            .unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return error_response(
                StatusCode::FORBIDDEN,
                "Refused: the form is stale or did not come from this session. Reload the page and try again.",
                htmx,
            );
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The CSRF token of the request's session cookie, if it has one: every page
/// puts it in its forms (`_csrf`) and on `<body hx-headers>`.
pub struct CsrfToken(pub Option<String>);

impl axum::extract::FromRequestParts<App> for CsrfToken {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(CsrfToken(cookies::get(&parts.headers, cookies::SESSION).map(|s| token(&app.csrf_key, &s))))
    }
}
