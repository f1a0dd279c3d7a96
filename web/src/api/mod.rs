//! The extension's SQL API, one function per SQL function, split like the
//! extension's `src/`. Each reads `SELECT to_json(t) FROM fn(..) t` into serde
//! structs (as the CLI does). No other SQL anywhere in the server.

pub mod accounts;
pub mod explorer;
pub mod impersonation;
pub mod sessions;
pub mod settings;

use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

use crate::db::Tx;
use crate::error::WebError;

/// Every row of `sql` (which selects one json column), deserialised.
pub async fn rows<T: DeserializeOwned>(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<T>, WebError> {
    let rows = tx.query(sql, params).await?;
    rows.iter()
        .map(|r| {
            let v: serde_json::Value = r.get(0);
            serde_json::from_value(v).map_err(|e| WebError::internal(format!("unexpected answer from the database: {e}")))
        })
        .collect()
}

/// Exactly one row of `sql`, deserialised.
pub async fn one<T: DeserializeOwned>(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<T, WebError> {
    rows(tx, sql, params)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| WebError::internal("the database answered no row"))
}
