//! Admin accounts: `dashboard_auth.needs_setup`, `setup_first_admin`,
//! `login`, `get_admin` (extension `src/admin/accounts.rs`).

use serde::Deserialize;
use uuid::Uuid;

use super::one;
use crate::db::Tx;
use crate::error::WebError;

pub async fn needs_setup(tx: &Tx<'_>) -> Result<bool, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.needs_setup() t", &[]).await
}

#[derive(Deserialize)]
pub struct NewSession {
    pub user_id: Uuid,
    pub session_token: String,
}

pub async fn setup_first_admin(tx: &Tx<'_>, email: &str, password: &str, full_name: &str) -> Result<NewSession, WebError> {
    one(
        tx,
        "SELECT pg_catalog.to_json(t) FROM dashboard_auth.setup_first_admin($1, $2, $3) t",
        &[&email, &password, &full_name],
    )
    .await
}

/// The answer of `login` and `login_mfa`.
#[derive(Deserialize)]
pub struct LoginAnswer {
    /// `ok`, `mfa_required`, `invalid` or `locked`.
    pub status: String,
    pub session_token: Option<String>,
}

pub async fn login(tx: &Tx<'_>, email: &str, password: &str, ip: Option<&str>, user_agent: Option<&str>) -> Result<LoginAnswer, WebError> {
    one(
        tx,
        "SELECT pg_catalog.to_json(t) FROM dashboard_auth.login($1, $2, $3::text::inet, $4) t",
        &[&email, &password, &ip, &user_agent],
    )
    .await
}

#[derive(Deserialize, Clone)]
pub struct Admin {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub totp_enabled: bool,
}

/// An invited admin's account: `dashboard_auth.accept_invitation`. A bad,
/// used, revoked or expired token (SQLSTATE 28000) is the form's message
/// here, not a session that ended.
pub async fn accept_invitation(tx: &Tx<'_>, token: &str, password: &str, full_name: &str) -> Result<Uuid, WebError> {
    let sql = "SELECT pg_catalog.to_json(dashboard_auth.accept_invitation($1, $2, $3))";
    match tx.query_one(sql, &[&token, &password, &full_name]).await {
        Ok(row) => serde_json::from_value(row.get(0)).map_err(|e| WebError::internal(format!("unexpected answer: {e}"))),
        Err(e) => match e.as_db_error() {
            Some(db) if db.code().code() == "28000" => Err(WebError::BadRequest(db.message().to_string())),
            _ => Err(e.into()),
        },
    }
}

pub async fn get_admin(tx: &Tx<'_>, id: Uuid) -> Result<Admin, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.get_admin($1) t", &[&id]).await
}

pub async fn change_password(tx: &Tx<'_>, old: &str, new: &str) -> Result<(), WebError> {
    super::call(tx, "SELECT dashboard_auth.change_password($1, $2)", &[&old, &new]).await
}
