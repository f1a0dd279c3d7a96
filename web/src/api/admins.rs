//! Admin accounts, invitations and sessions: `dashboard_auth.list_admins`,
//! `update_admin_role`, `unlock_admin`, `delete_admin` (extension `src/admin/accounts.rs`),
//! `invite_admin`, `list_invitations`, `revoke_invitation`
//! (`src/admin/invitations.rs`), `list_sessions`, `revoke_session`,
//! `revoke_all_sessions` (`src/admin/sessions.rs`).

use serde::Deserialize;
use uuid::Uuid;

use super::{one, rows, Ts};
use crate::db::Tx;
use crate::error::WebError;

#[derive(Deserialize, Clone)]
pub struct AdminRow {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub totp_enabled: bool,
    pub last_login_at: Ts,
    pub created_at: Ts,
    pub active_sessions: i64,
    /// Until when the login is locked (failed attempts); unset when it is not.
    pub locked_until: Ts,
    /// Failed attempts counted since the last lock or success.
    pub failed_attempts: i32,
}

pub async fn list(tx: &Tx<'_>) -> Result<Vec<AdminRow>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.list_admins() t", &[]).await
}

pub async fn update_role(tx: &Tx<'_>, id: Uuid, role: &str) -> Result<(), WebError> {
    tx.execute("SELECT dashboard_auth.update_admin_role($1, $2)", &[&id, &role]).await?;
    Ok(())
}

/// Lift an admin's login lockout (a step-up action); true when it was locked.
pub async fn unlock(tx: &Tx<'_>, id: Uuid) -> Result<bool, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.unlock_admin($1) t", &[&id]).await
}

pub async fn delete(tx: &Tx<'_>, id: Uuid) -> Result<(), WebError> {
    tx.execute("SELECT dashboard_auth.delete_admin($1)", &[&id]).await?;
    Ok(())
}

pub async fn invite(tx: &Tx<'_>, email: &str, role: &str) -> Result<String, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.invite_admin($1, $2) t", &[&email, &role]).await
}

#[derive(Deserialize, Clone)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub status: String,
    pub invited_by_label: String,
    pub created_at: Ts,
    pub expires_at: Ts,
}

pub async fn invitations(tx: &Tx<'_>) -> Result<Vec<Invitation>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.list_invitations() t", &[]).await
}

/// Revoke by the id `list_invitations` shows (the function takes a token or an id).
pub async fn revoke_invitation(tx: &Tx<'_>, id: Uuid) -> Result<(), WebError> {
    tx.execute("SELECT dashboard_auth.revoke_invitation($1)", &[&id.to_string()]).await?;
    Ok(())
}

#[derive(Deserialize, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub created_at: Ts,
    pub last_seen_at: Ts,
    pub expires_at: Ts,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub is_current: bool,
}

pub async fn sessions(tx: &Tx<'_>) -> Result<Vec<SessionRow>, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.list_sessions() t", &[]).await
}

pub async fn revoke_session(tx: &Tx<'_>, id: Uuid) -> Result<bool, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.revoke_session($1) t", &[&id]).await
}

pub async fn revoke_all_sessions(tx: &Tx<'_>, user_id: Uuid) -> Result<i32, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.revoke_all_sessions($1) t", &[&user_id]).await
}
