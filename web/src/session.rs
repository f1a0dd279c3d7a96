//! Request extractors: the admin session (its cookie) and whether htmx asked.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::WebError;
use crate::{cookies, csrf, App};

/// The session token of the request's cookie and its CSRF token. Only the
/// cookie is read here: the database checks the token (`db::with_session`).
/// Without a cookie the request goes to the login page.
pub struct Session {
    pub token: String,
    pub csrf: String,
    /// The impersonation this browser started (cookie `__Host-fluxbase_imp`);
    /// only an id: the database decides whether it is live and whose it is.
    pub imp: Option<uuid::Uuid>,
}

impl FromRequestParts<App> for Session {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, WebError> {
        let token = cookies::get(&parts.headers, cookies::SESSION).ok_or(WebError::NoSession)?;
        let csrf = csrf::token(&app.csrf_key, &token);
        let imp = cookies::get(&parts.headers, cookies::IMPERSONATION).and_then(|v| v.parse().ok());
        Ok(Session { token, csrf, imp })
    }
}

/// True when htmx made the request (and it is not a history restore, which
/// wants the full page): the handler answers with the fragment only.
pub struct HxRequest(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for HxRequest {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let h = &parts.headers;
        Ok(HxRequest(h.contains_key("hx-request") && !h.contains_key("hx-history-restore-request")))
    }
}

/// The client's address (the TCP peer; absent in tests) and User-Agent, for
/// the login audit entries.
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(500).collect());
        Ok(Client { ip, user_agent })
    }
}
