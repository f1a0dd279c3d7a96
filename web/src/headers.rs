//! The middleware around every response: security headers (CSP without
//! inline script or style, nosniff, no referrer, no framing), `no-store`
//! unless a handler chose a cache policy (assets), errors rendered as a page
//! or an htmx fragment, and the first-run gate (while no admin exists every
//! page goes to the setup form).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::Deferred;
use crate::urls::Url;
use crate::App;

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `https` when we serve TLS, or when the trusted proxy says so.
pub fn scheme(app: &App, headers: &HeaderMap) -> &'static str {
    if app.tls {
        return "https";
    }
    if app.behind_proxy {
        if let Some(p) = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
            if p.trim().eq_ignore_ascii_case("https") {
                return "https";
            }
        }
    }
    "http"
}

pub async fn security(req: Request, next: Next) -> Response {
    let htmx = req.headers().contains_key("hx-request") && !req.headers().contains_key("hx-history-restore-request");
    let mut resp = next.run(req).await;
    if let Some(Deferred(e)) = resp.extensions_mut().remove::<Deferred>() {
        resp = e.respond(htmx);
    }
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// While `needs_setup()`, every page but the setup form, health and assets
/// redirects to the setup form.
pub async fn setup_gate(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let exempt = path == Url::Setup.path() || path == Url::Healthz.path() || path.starts_with(Url::Assets.path());
    if !exempt {
        match app.needs_setup().await {
            Ok(true) => {
                if req.headers().contains_key("hx-request") {
                    let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
                    r.headers_mut().insert("HX-Redirect", HeaderValue::from_static(Url::Setup.path()));
                    return r;
                }
                return Redirect::to(Url::Setup.path()).into_response();
            }
            Ok(false) => {}
            Err(e) => return e.into_response(),
        }
    }
    next.run(req).await
}
