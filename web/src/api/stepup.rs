//! Step-up re-authentication: `dashboard_auth.reauthenticate` (extension
//! `src/admin/stepup.rs`).

use crate::db::Tx;
use crate::error::WebError;

/// The password, a TOTP code or a backup code again: the end of the window
/// (as text), or None when the secret was wrong (the database audited it and
/// counted it toward the lockout; the transaction must commit for that).
pub async fn reauthenticate(tx: &Tx<'_>, secret: &str) -> Result<Option<String>, WebError> {
    let row = tx.query_one("SELECT dashboard_auth.reauthenticate($1)::text", &[&secret]).await?;
    Ok(row.get(0))
}
