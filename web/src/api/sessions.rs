//! Sessions: `dashboard_auth.logout`, `login_mfa` (extension `src/sessions.rs`,
//! `src/mfa.rs`). `use_session` itself is called by `db::Db::with_session`.

use super::{accounts::LoginAnswer, one};
use crate::db::Tx;
use crate::error::WebError;

pub async fn logout(tx: &Tx<'_>, token: &str) -> Result<bool, WebError> {
    one(tx, "SELECT to_json(t) FROM dashboard_auth.logout($1) t", &[&token]).await
}

pub async fn login_mfa(tx: &Tx<'_>, pending_token: &str, code: &str) -> Result<LoginAnswer, WebError> {
    one(tx, "SELECT to_json(t) FROM dashboard_auth.login_mfa($1, $2) t", &[&pending_token, &code]).await
}
