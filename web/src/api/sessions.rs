//! Sessions: `dashboard_auth.logout`, `login_mfa` (extension `src/admin/sessions.rs`,
//! `src/admin/mfa.rs`). `use_session` itself is called by `db::Db::with_session`.

use super::{accounts::LoginAnswer, one};
use crate::db::Tx;
use crate::error::WebError;

pub async fn logout(tx: &Tx<'_>, token: &str) -> Result<bool, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.logout($1) t", &[&token]).await
}

pub async fn login_mfa(tx: &Tx<'_>, pending_token: &str, code: &str) -> Result<LoginAnswer, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.login_mfa($1, $2) t", &[&pending_token, &code]).await
}

/// A live admin session (`dashboard_auth.list_sessions`).
#[derive(serde::Deserialize)]
pub struct SessionRow {
    pub id: uuid::Uuid,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub is_current: bool,
}

pub async fn list_sessions(tx: &Tx<'_>, user_id: Option<uuid::Uuid>) -> Result<Vec<SessionRow>, WebError> {
    super::rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.list_sessions($1) t", &[&user_id]).await
}

pub async fn revoke_session(tx: &Tx<'_>, id: uuid::Uuid) -> Result<bool, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.revoke_session($1) t", &[&id]).await
}
