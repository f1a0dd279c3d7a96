//! Settings: `dashboard_auth.get_setting`, `set_setting`,
//! `setting_definitions` (extension `src/admin/settings.rs`).

use serde::Deserialize;

use super::{one, rows};
use crate::db::Tx;
use crate::error::WebError;

pub async fn get_setting(tx: &Tx<'_>, key: &str) -> Result<serde_json::Value, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.get_setting($1) t", &[&key]).await
}

#[derive(Deserialize, Clone)]
pub struct Definition {
    pub key: String,
    pub default_value: serde_json::Value,
    pub description: String,
}

pub async fn definitions(tx: &Tx<'_>) -> Result<Vec<Definition>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.setting_definitions() t", &[]).await
}

pub async fn set_setting(tx: &Tx<'_>, key: &str, value: &serde_json::Value) -> Result<(), WebError> {
    tx.execute("SELECT dashboard_auth.set_setting($1, $2::text::jsonb)", &[&key, &value.to_string()]).await?;
    Ok(())
}
