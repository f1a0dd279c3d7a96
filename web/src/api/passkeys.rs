//! Passkeys (issue 33): `dashboard_auth.passkey_*`, `login_mfa_passkey`,
//! `reauthenticate_passkey`, `list_passkeys`, `rename_passkey`,
//! `remove_passkey` (extension `src/admin/passkeys.rs`). The options and the
//! browser's answers pass through as JSON text: the database reads and checks
//! them (webauthn-rs), this server never looks inside.

use serde::Deserialize;
use uuid::Uuid;

use super::accounts::LoginAnswer;
use super::{call, one, rows, Ts};
use crate::db::Tx;
use crate::error::WebError;

/// One JSON value (options) as text.
async fn json_text(tx: &Tx<'_>, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<String, WebError> {
    let rows = super::query(tx, sql, params).await?;
    let row = rows.first().ok_or_else(|| WebError::internal("the database answered no row"))?;
    Ok(row.get::<_, String>(0))
}

/// A passkey of the list (no key material).
#[derive(Deserialize, Clone)]
pub struct Passkey {
    pub id: Uuid,
    pub name: String,
    pub created_at: Ts,
    pub last_used_at: Ts,
}

/// The signed-in admin's passkeys.
pub async fn list_mine(tx: &Tx<'_>) -> Result<Vec<Passkey>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.list_passkeys() t", &[]).await
}

pub async fn register_begin(tx: &Tx<'_>, name: &str) -> Result<String, WebError> {
    json_text(tx, "SELECT dashboard_auth.passkey_register_begin($1)::text", &[&name]).await
}

/// The new passkey's id. A credential that does not verify is SQLSTATE
/// 28000 from the extension: here the form's message, not "session ended".
pub async fn register_finish(tx: &Tx<'_>, credential: &str) -> Result<Uuid, WebError> {
    let sql = "SELECT dashboard_auth.passkey_register_finish($1::text::jsonb)";
    match tx.query_one(sql, &[&credential]).await {
        Ok(row) => Ok(row.get(0)),
        Err(e) => match e.as_db_error() {
            Some(db) if db.code().code() == "28000" && db.message().starts_with("the passkey was not registered") => {
                Err(WebError::BadRequest(db.message().to_string()))
            }
            _ => Err(e.into()),
        },
    }
}

pub async fn rename(tx: &Tx<'_>, id: Uuid, name: &str) -> Result<(), WebError> {
    call(tx, "SELECT dashboard_auth.rename_passkey($1, $2)", &[&id, &name]).await
}

pub async fn remove(tx: &Tx<'_>, id: Uuid) -> Result<(), WebError> {
    call(tx, "SELECT dashboard_auth.remove_passkey($1)", &[&id]).await
}

/// Passwordless sign-in (`auth.passwordless`): options for any passkey of the site.
pub async fn login_begin(tx: &Tx<'_>) -> Result<String, WebError> {
    json_text(tx, "SELECT dashboard_auth.passkey_login_begin()::text", &[]).await
}

pub async fn login_finish(tx: &Tx<'_>, assertion: &str, ip: Option<&str>, user_agent: Option<&str>) -> Result<LoginAnswer, WebError> {
    one(
        tx,
        "SELECT pg_catalog.to_json(t) FROM dashboard_auth.passkey_login_finish($1::text::jsonb, $2::text::inet, $3) t",
        &[&assertion, &ip, &user_agent],
    )
    .await
}

/// The second step after the password. An expired pending sign-in is 28000:
/// `None` (the page sends the admin back to the password).
pub async fn mfa_begin(tx: &Tx<'_>, pending: &str) -> Result<Option<String>, WebError> {
    match tx.query_one("SELECT dashboard_auth.passkey_mfa_begin($1)::text", &[&pending]).await {
        Ok(row) => Ok(Some(row.get(0))),
        Err(e) => match e.as_db_error() {
            Some(db) if db.code().code() == "28000" => Ok(None),
            _ => Err(e.into()),
        },
    }
}

pub async fn mfa_finish(tx: &Tx<'_>, pending: &str, assertion: &str) -> Result<LoginAnswer, WebError> {
    one(
        tx,
        "SELECT pg_catalog.to_json(t) FROM dashboard_auth.login_mfa_passkey($1, $2::text::jsonb) t",
        &[&pending, &assertion],
    )
    .await
}

pub async fn reauth_begin(tx: &Tx<'_>) -> Result<String, WebError> {
    json_text(tx, "SELECT dashboard_auth.passkey_reauth_begin()::text", &[]).await
}

/// The end of the step-up window, or None when the assertion was refused
/// (audited and counted by the database; the transaction must commit).
pub async fn reauth_finish(tx: &Tx<'_>, assertion: &str) -> Result<Option<String>, WebError> {
    let row = tx.query_one("SELECT dashboard_auth.reauthenticate_passkey($1::text::jsonb)::text", &[&assertion]).await?;
    Ok(row.get(0))
}
