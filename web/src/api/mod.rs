//! The extension's SQL API, one function per SQL function, split like the
//! extension's `src/`. Each reads `SELECT pg_catalog.to_json(t) FROM fn(..) t` into serde
//! structs (as the CLI does). No other SQL anywhere in the server.

pub mod accounts;
pub mod advisor;
pub mod mfa;
pub mod admins;
pub mod analytics;
pub mod audit;
pub mod explorer;
pub mod impersonation;
/// The home page's overview (issue 30).
pub mod overview;
/// Passkeys (issue 33).
pub mod passkeys;
pub mod sessions;
pub mod settings;
pub mod stepup;
pub mod users;
pub mod ops;

use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

use crate::db::Tx;
use crate::error::WebError;

/// Every row of `sql` (which selects one json column), deserialised.
pub async fn rows<T: DeserializeOwned>(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<T>, WebError> {
    let rows = query(tx, sql, params).await?;
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

/// Call a function for its effect (void or a value we don't need).
pub async fn call(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), WebError> {
    query(tx, sql, params).await?;
    Ok(())
}

/// Run `sql`. Directly connected: prepared once per pooled connection (a
/// statement costs one round trip instead of two: prepare, then execute).
/// Behind a transaction pooler (`db::pooler`): prepared and closed inside
/// this transaction, as the next transaction may run on another server
/// connection.
pub async fn query(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>, WebError> {
    if crate::db::pooler() {
        return Ok(tx.query(sql, params).await?);
    }
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, params).await?)
}

/// A timestamp as `to_json` writes it (`2026-12-01T23:12:36.12+00:00`),
/// shown to the minute ("2026-12-01 23:12"); empty when NULL.
#[derive(serde::Deserialize, Clone, Default, Debug)]
#[serde(transparent)]
pub struct Ts(pub Option<String>);

impl Ts {
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(t) => f.write_str(&t.chars().take(16).collect::<String>().replace('T', " ")),
            None => f.write_str("—"),
        }
    }
}
