//! Settings: `dashboard_auth.get_setting` (extension `src/settings.rs`).

use super::one;
use crate::db::Tx;
use crate::error::WebError;

pub async fn get_setting(tx: &Tx<'_>, key: &str) -> Result<serde_json::Value, WebError> {
    one(tx, "SELECT to_json(t) FROM dashboard_auth.get_setting($1) t", &[&key]).await
}
