//! The home page `/admin`: who is signed in, the instance at a glance
//! (`dashboard.overview()`, one call; issue 30) and where to go.

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
    o: api::overview::Overview,
    /// The sign-ups sparkline's polyline points, and its text alternative.
    spark: String,
    spark_label: String,
    db_size: String,
}

async fn index_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Home, "Home", async |tx, me| {
        let a = api::accounts::get_admin(tx, me).await?;
        let o = api::overview::get(tx).await?;
        let spark = api::overview::sparkline(&o.signups_14d, 140, 32);
        let spark_label = format!(
            "sign-ups per day over the last 14 days: {}",
            o.signups_14d.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        );
        let db_size = super::tables::list::human_bytes(o.database_bytes);
        Ok(HomePartial {
            name: a.full_name,
            totp_enabled: a.totp_enabled,
            sections: NAV.iter().map(|n| (n.label, n.url.path())).collect(),
            o,
            spark,
            spark_label,
            db_size,
        })
    })
    .await
}
