//! The home page `/admin`: who is signed in and where to go.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{Url, NAV};
use crate::error::WebError;
use crate::render::page;
use crate::session::{HxRequest, Session};
use crate::{api, App};

pub fn router() -> Router<App> {
    Router::new().route(Url::Home.path(), get(index_get))
}

#[derive(Template)]
#[template(path = "home/index_partial.html")]
struct HomePartial {
    name: String,
    totp_enabled: bool,
    sections: Vec<(&'static str, &'static str)>,
}

async fn index_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Home, "Home", async |tx, me| {
        let a = api::accounts::get_admin(tx, me).await?;
        Ok(HomePartial {
            name: a.full_name,
            totp_enabled: a.totp_enabled,
            sections: NAV.iter().map(|n| (n.label, n.url.path())).collect(),
        })
    })
    .await
}
