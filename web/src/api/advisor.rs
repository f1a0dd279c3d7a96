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
