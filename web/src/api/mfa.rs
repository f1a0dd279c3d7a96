//! Two-factor authentication of the signed-in admin: `dashboard_auth.totp_*`,
//! `regenerate_backup_codes` (extension `src/admin/mfa.rs`).

use serde::Deserialize;

use super::one;
use crate::db::Tx;
use crate::error::WebError;

#[derive(Deserialize)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
}

pub async fn totp_setup(tx: &Tx<'_>) -> Result<TotpSetup, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.totp_setup() t", &[]).await
}

/// Turns 2FA on; the backup codes, shown once.
pub async fn totp_enable(tx: &Tx<'_>, code: &str) -> Result<Vec<String>, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.totp_enable($1) t", &[&code]).await
}

pub async fn totp_disable(tx: &Tx<'_>, code: &str) -> Result<(), WebError> {
    super::call(tx, "SELECT dashboard_auth.totp_disable($1)", &[&code]).await
}

pub async fn regenerate_backup_codes(tx: &Tx<'_>, code: &str) -> Result<Vec<String>, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.regenerate_backup_codes($1) t", &[&code]).await
}
