//! The router: one module per section, each with `router()`, merged here;
//! every URL in the `Url` enum; the top bar's entries in `NAV`.

pub mod home;
pub mod login;
pub mod tables;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::WebError;
use crate::{api, assets, csrf, headers, App};

/// Every path of the dashboard (section developers: add yours, in order).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Url {
    Home,
    Healthz,
    Assets,
    Setup,
    Login,
    Login2fa,
    Logout,
    Account,
    Tables,
}

impl Url {
    pub const fn path(self) -> &'static str {
        match self {
            Url::Home => "/admin",
            Url::Healthz => "/admin/healthz",
            Url::Assets => "/admin/assets",
            Url::Setup => "/admin/setup",
            Url::Login => "/admin/login",
            Url::Login2fa => "/admin/login/2fa",
            Url::Logout => "/admin/logout",
            Url::Account => "/admin/account",
            Url::Tables => "/admin/tables",
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

/// An entry of the top bar.
pub struct NavEntry {
    pub label: &'static str,
    pub url: Url,
}

/// The top bar's sections, in display order. A section adds its line here
/// once its page exists (Tables: issue 19; Users, Settings, Analytics,
/// Admins, Audit: issue 20).
pub const NAV: &[NavEntry] = &[
    // Tables
    NavEntry { label: "Tables", url: Url::Tables },

    // Users

    // Settings

    // Analytics

    // Admins

    // Audit
];

/// The whole application (tests call it with their own state).
pub fn app(state: App) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to(Url::Home.path()) }))
        .route("/admin/", get(|| async { Redirect::to(Url::Home.path()) }))
        .route(Url::Healthz.path(), get(healthz))
        .route(&format!("{}/{{name}}", Url::Assets.path()), get(assets::get))
        .merge(login::router())
        .merge(home::router())
        .merge(tables::router())
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), headers::setup_gate))
        .layer(from_fn_with_state(state.clone(), csrf::protect))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(from_fn(headers::security))
        .with_state(state)
}

/// Liveness: the database answers (no session needed).
async fn healthz(axum::extract::State(app): axum::extract::State<App>) -> Response {
    match app.db.without_session(async |tx| api::accounts::needs_setup(tx).await).await {
        Ok(_) => "ok\n".into_response(),
        Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
    }
}

async fn not_found() -> WebError {
    WebError::NotFound("There is no page at this address.".into())
}

/// A panic in a handler is a 500 page; the server goes on.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    WebError::internal("a handler panicked").into_response()
}
