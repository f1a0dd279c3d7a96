//! The home page's instance at a glance: `dashboard.overview()` (extension
//! `src/overview.rs`), one call.

use serde::Deserialize;

use super::{one, Ts};
use crate::db::Tx;
use crate::error::WebError;

#[derive(Deserialize, Clone)]
pub struct AuditLine {
    pub id: i64,
    pub occurred_at: Ts,
    pub actor: String,
    pub action: String,
    pub success: bool,
}

#[derive(Deserialize, Clone)]
pub struct Overview {
    pub app_users: i64,
    pub app_users_new_7d: i64,
    /// Sign-ups per day, the last 14 days, oldest first (today last).
    pub signups_14d: Vec<i64>,
    pub admin_sessions_live: i64,
    pub impersonations_live: i64,
    pub database_bytes: i64,
    pub connections: i64,
    pub max_connections: i64,
    pub recent_audit: Vec<AuditLine>,
    pub chain_head: Option<i64>,
    pub last_purge: Ts,
    pub admins_without_2fa: i64,
}

pub async fn get(tx: &Tx<'_>) -> Result<Overview, WebError> {
    one(tx, "SELECT dashboard.overview()", &[]).await
}

/// The points of a sparkline polyline for `values` in a `w` x `h` box (1 px
/// margin), built here so the page needs no script and no inline style.
pub fn sparkline(values: &[i64], w: u32, h: u32) -> String {
    if values.is_empty() {
        return String::new();
    }
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = if values.len() > 1 { (w as f64 - 2.0) / (values.len() - 1) as f64 } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = 1.0 + step * i as f64;
            let y = 1.0 + (h as f64 - 2.0) * (1.0 - (*v).max(0) as f64 / max);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_points() {
        assert_eq!(sparkline(&[], 140, 32), "");
        assert_eq!(sparkline(&[0, 2, 1], 10, 12), "1.0,11.0 5.0,1.0 9.0,6.0");
        // all zero: a flat line at the bottom
        assert_eq!(sparkline(&[0, 0], 10, 12), "1.0,11.0 9.0,11.0");
    }
}
