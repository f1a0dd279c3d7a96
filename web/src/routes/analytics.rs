//! Analytics: active sessions, connections by state / application / role
//! against max_connections, this server's own pool, query performance from
//! pg_stat_statements (or how to enable it), cache hit ratio, storage, and
//! the last hour as small server-rendered SVG charts (`metrics`). The page
//! polls its own fragment every 5 seconds (htmx `every 5s`).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::Url;
use crate::api::analytics::{ActiveSession, CacheHits, ConnGroup, IndexSize, Storage, TopQuery};
use crate::error::WebError;
use crate::metrics::{self, Chart};
use crate::render::page;
use crate::session::{HxRequest, Session};
use crate::{api, App};

pub fn router() -> Router<App> {
    Router::new().route(Url::Analytics.path(), get(page_get))
}

pub struct Pool {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

#[derive(Template)]
#[template(path = "analytics/page_partial.html")]
struct AnalyticsPartial {
    sessions: Vec<ActiveSession>,
    conns: Vec<ConnGroup>,
    total_connections: i64,
    max_connections: i32,
    by_state: Vec<(String, i64)>,
    pool: Pool,
    stats_hint: Option<String>,
    top: Vec<TopQuery>,
    cache: Vec<CacheHits>,
    storage: Vec<Storage>,
    indexes: Vec<IndexSize>,
    charts: Vec<Chart>,
    /// The query-performance order: total_time, mean_time or calls.
    order: &'static str,
    w: f64,
    h: f64,
}

/// Bytes for people.
pub fn size(b: &i64) -> String {
    let b = *b as f64;
    match b {
        b if b >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GB", b / 1024.0 / 1024.0 / 1024.0),
        b if b >= 1024.0 * 1024.0 => format!("{:.1} MB", b / 1024.0 / 1024.0),
        b if b >= 1024.0 => format!("{:.0} kB", b / 1024.0),
        b => format!("{b:.0} B"),
    }
}

pub fn pct(r: &Option<f64>) -> String {
    r.map(|r| format!("{:.1} %", r * 100.0)).unwrap_or_else(|| "—".into())
}

pub fn ms(v: &f64) -> String {
    format!("{v:.2} ms")
}

impl AnalyticsPartial {
    fn size(&self, b: &i64) -> String {
        size(b)
    }
    fn pct(&self, r: &Option<f64>) -> String {
        pct(r)
    }
    fn ms(&self, v: &f64) -> String {
        ms(v)
    }
    fn opt_size(&self, b: &Option<i64>) -> String {
        b.as_ref().map(size).unwrap_or_default()
    }
}

#[derive(serde::Deserialize)]
struct AnalyticsQuery {
    order: Option<String>,
}

/// The orders `top_queries` knows, with their labels.
const ORDERS: [(&str, &str); 3] = [("total_time", "Total time"), ("mean_time", "Mean time"), ("calls", "Calls")];

impl AnalyticsPartial {
    fn orders(&self) -> &'static [(&'static str, &'static str)] {
        &ORDERS
    }
}

async fn page_get(State(app): State<App>, s: Session, hx: HxRequest, Query(q): Query<AnalyticsQuery>) -> Result<Response, WebError> {
    let order = ORDERS.iter().map(|o| o.0).find(|o| Some(*o) == q.order.as_deref()).unwrap_or("total_time");
    if app.samples.stale() {
        if let Some(x) = metrics::sample(&app.db).await {
            app.samples.push(x);
        }
    }
    page(&app, &s, hx, Url::Analytics, "Analytics", async |tx, _| {
        let conns = api::analytics::connection_breakdown(tx).await?;
        let total_connections = conns.iter().map(|c| c.connections).sum();
        let max_connections = conns.first().map(|c| c.max_connections).unwrap_or(0);
        let mut by_state: Vec<(String, i64)> = Vec::new();
        for c in &conns {
            match by_state.iter_mut().find(|(s, _)| *s == c.state) {
                Some((_, n)) => *n += c.connections,
                None => by_state.push((c.state.clone(), c.connections)),
            }
        }
        let avail = api::analytics::query_stats_available(tx).await?;
        let top = if avail.available { api::analytics::top_queries(tx, order, 10).await? } else { Vec::new() };
        let st = app.db.pool.status();
        let samples = app.samples.all();
        let charts = vec![
            metrics::chart("Connections", &samples, |s| s.connections as f64, ""),
            metrics::chart("Active queries", &samples, |s| s.active as f64, ""),
            metrics::chart("Admin sessions", &samples, |s| s.admin_sessions as f64, ""),
            metrics::chart("Cache hit ratio", &samples, |s| s.cache_hit_pct, " %"),
            metrics::chart("Web pool in use", &samples, |s| s.pool_in_use as f64, ""),
            metrics::chart("Database size", &samples, |s| s.db_mb, " MB"),
        ];
        Ok(AnalyticsPartial {
            sessions: api::analytics::active_sessions(tx).await?,
            conns,
            total_connections,
            max_connections,
            by_state,
            pool: Pool { max_size: st.max_size, size: st.size, available: st.available, waiting: st.waiting },
            stats_hint: avail.hint,
            top,
            cache: api::analytics::cache_hit_ratio(tx).await?,
            storage: api::analytics::storage_usage(tx).await?,
            indexes: api::analytics::largest_indexes(tx, 10).await?,
            charts,
            order,
            w: metrics::W,
            h: metrics::H,
        })
    })
    .await
}
