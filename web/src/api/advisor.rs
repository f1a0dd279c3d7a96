//! The security advisor and RLS explanations (issue 32): `dashboard.advisories()`
//! and `dashboard.explain_access(..)` (extension `src/rls/advisor.rs`, `src/rls/explain.rs`).

use serde::Deserialize;

use super::{one, rows};
use crate::db::Tx;
use crate::error::WebError;

#[derive(Deserialize, Clone, Debug)]
pub struct Finding {
    pub lint: String,
    pub level: String,
    pub schema_name: String,
    pub object_name: String,
    pub detail: String,
    pub remedy: String,
}

pub async fn advisories(tx: &Tx<'_>) -> Result<Vec<Finding>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.advisories() t", &[]).await
}

/// The verdict, as explain_access returns it (a JSON object).
pub async fn explain_access(
    tx: &Tx<'_>,
    table: &str,
    key: &serde_json::Value,
    as_user: &str,
    command: &str,
    new_row: Option<&serde_json::Value>,
) -> Result<serde_json::Value, WebError> {
    one(
        tx,
        "SELECT dashboard.explain_access($1::pg_catalog.text::pg_catalog.regclass, $2, $3, $4, $5)",
        &[&table, key, &as_user, &command, &new_row],
    )
    .await
}

/// Why an UPDATE/DELETE run as `as_user` changed 0 rows (issue 32, item 2):
/// `dashboard.explain_zero_rows` reads the statement with the names resolved
/// as query_as resolved them (the same search path), so it is called as
/// `query_as` is.
pub async fn explain_zero_rows(tx: &Tx<'_>, as_user: &str, sql: &str, max_keys: i32) -> Result<serde_json::Value, WebError> {
    tx.batch_execute("SET LOCAL search_path TO \"$user\", public").await?;
    let v = one(
        tx,
        "SELECT dashboard.explain_zero_rows($1, $2, '[]'::pg_catalog.jsonb, $3)",
        &[&as_user, &sql, &max_keys],
    )
    .await?;
    tx.batch_execute("SET LOCAL search_path TO pg_catalog, pg_temp").await?;
    Ok(v)
}
