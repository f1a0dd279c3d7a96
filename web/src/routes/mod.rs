//! The router: one module per section, each with `router()`, merged here;
//! every URL in the `Url` enum and the top bar's entries in `NAV` are in
//! `crate::urls` (re-exported here).

pub mod account;
pub mod admins;
pub mod advisor;
pub mod analytics;
pub mod audit;
pub mod home;
pub mod login;
pub mod passkeys;
pub mod reauth;
pub mod settings;
pub mod users;
pub mod tables;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::WebError;
use crate::{api, assets, csrf, headers, App};

// The URLs and the top bar live in crate::urls (a leaf every layer may
// import); re-exported here for the sections.
pub use crate::urls::{NavEntry, Url, NAV};

/// The whole application (tests call it with their own state).
pub fn app(state: App) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to(Url::Home.path()) }))
        .route("/admin/", get(|| async { Redirect::to(Url::Home.path()) }))
        .route(Url::Healthz.path(), get(healthz))
        .route(&format!("{}/{{name}}", Url::Assets.path()), get(assets::get))
        .merge(login::router())
        .merge(home::router())
        .merge(account::router())
        .merge(users::router())
        .merge(admins::router())
        .merge(reauth::router())
        .merge(settings::router())
        .merge(audit::router())
        .merge(analytics::router())
        .merge(tables::router())
        .merge(advisor::router())
        .merge(passkeys::router())
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), crate::replica::route_reads))
        .layer(from_fn_with_state(state.clone(), headers::setup_gate))
        .layer(from_fn(crate::limits::classify))
        .layer(from_fn_with_state(state.clone(), csrf::protect))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(from_fn(headers::security))
        // (outermost: metrics, request id and log line for every answer; `prom`)
        .layer(from_fn(crate::prom::observe))
        .with_state(state)
}

/// Liveness: the database answers (no session needed).
async fn healthz(axum::extract::State(app): axum::extract::State<App>) -> Response {
    match app.db.without_session(async |tx| api::accounts::needs_setup(tx).await).await {
        Ok(_) => "ok\n".into_response(),
        Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
    }
}

/// Whether admin `me` may write (a `dashboard_admin`): pages show their
/// action buttons only then. The database enforces it regardless.
pub async fn can_write(tx: &crate::db::Tx<'_>, me: uuid::Uuid) -> Result<bool, WebError> {
    Ok(api::accounts::get_admin(tx, me).await?.role == "dashboard_admin")
}

/// A value shown once (a new token), with what it is.
pub struct Shown {
    pub label: &'static str,
    pub value: String,
}

/// An htmx answer that sends the browser to `to` (a normal request: 303).
pub fn go_to(to: &str, htmx: bool) -> Response {
    if htmx {
        let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = axum::http::HeaderValue::from_str(to) {
            r.headers_mut().insert("HX-Redirect", v);
        }
        r
    } else {
        Redirect::to(to).into_response()
    }
}

async fn not_found() -> WebError {
    WebError::NotFound("There is no page at this address.".into())
}

/// A panic in a handler is a 500 page; the server goes on.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    WebError::internal("a handler panicked").into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    /// A panicking handler answers the 500 page (with the security headers)
    /// and the service goes on serving.
    #[tokio::test]
    async fn a_panic_is_a_500_page() {
        let router: Router = Router::new()
            .route("/boom", get(|| async { if true { panic!("boom") } "unreachable" }))
            .route("/fine", get(|| async { "fine" }))
            .layer(CatchPanicLayer::custom(panicked))
            .layer(from_fn(headers::security));
        let r = router.clone().oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.headers()["content-security-policy"], headers::CSP);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("request id"));
        let r = router.oneshot(Request::get("/fine").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
