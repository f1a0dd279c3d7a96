//! Monitoring: `dashboard.active_sessions`, `connection_breakdown`,
//! `cache_hit_ratio`, `query_stats_available`, `top_queries`,
//! `storage_usage`, `largest_indexes` (extension `src/monitoring/mod.rs`,
//! `src/monitoring/analytics.rs`).

use serde::Deserialize;

use super::{one, rows, Ts};
use crate::db::Tx;
use crate::error::WebError;

#[derive(Deserialize, Clone)]
pub struct ActiveSession {
    pub kind: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub started_at: Ts,
    pub expires_at: Ts,
    pub ip: Option<String>,
}

pub async fn active_sessions(tx: &Tx<'_>) -> Result<Vec<ActiveSession>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.active_sessions() t", &[]).await
}

#[derive(Deserialize, Clone)]
pub struct ConnGroup {
    pub database: Option<String>,
    pub state: String,
    pub application_name: String,
    pub role: Option<String>,
    pub connections: i64,
    pub waiting: i64,
    pub longest_running_seconds: Option<f64>,
    pub max_connections: i32,
}

pub async fn connection_breakdown(tx: &Tx<'_>) -> Result<Vec<ConnGroup>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.connection_breakdown() t", &[]).await
}

#[derive(Deserialize, Clone)]
pub struct CacheHits {
    pub scope: String,
    pub hits: i64,
    pub reads: i64,
    pub ratio: Option<f64>,
}

pub async fn cache_hit_ratio(tx: &Tx<'_>) -> Result<Vec<CacheHits>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.cache_hit_ratio() t", &[]).await
}

#[derive(Deserialize, Clone)]
pub struct StatsAvailable {
    pub available: bool,
    pub hint: Option<String>,
}

pub async fn query_stats_available(tx: &Tx<'_>) -> Result<StatsAvailable, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.query_stats_available() t", &[]).await
}

#[derive(Deserialize, Clone)]
pub struct TopQuery {
    pub query: Option<String>,
    pub username: Option<String>,
    pub calls: i64,
    pub total_exec_ms: f64,
    pub mean_exec_ms: f64,
    pub rows: i64,
    pub cache_hit_ratio: Option<f64>,
}

pub async fn top_queries(tx: &Tx<'_>, order_by: &str, limit: i32) -> Result<Vec<TopQuery>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.top_queries($1, $2) t", &[&order_by, &limit]).await
}

#[derive(Deserialize, Clone)]
pub struct Storage {
    pub kind: String,
    pub schema_name: Option<String>,
    pub name: String,
    pub total_bytes: i64,
    pub table_bytes: Option<i64>,
    pub index_bytes: Option<i64>,
    pub row_estimate: Option<i64>,
}

pub async fn storage_usage(tx: &Tx<'_>) -> Result<Vec<Storage>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.storage_usage() t", &[]).await
}

#[derive(Deserialize, Clone)]
pub struct IndexSize {
    pub schema_name: String,
    pub table_name: String,
    pub index_name: String,
    pub bytes: i64,
    pub scans: Option<i64>,
}

pub async fn largest_indexes(tx: &Tx<'_>, limit: i32) -> Result<Vec<IndexSize>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.largest_indexes($1) t", &[&limit]).await
}
