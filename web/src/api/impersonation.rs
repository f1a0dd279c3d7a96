//! Impersonation: `dashboard.start_impersonation`, `apply_impersonation`,
//! `stop_impersonation`, `query_as`, and the live impersonation's details from
//! `dashboard.active_sessions` (extension `src/users/impersonation.rs`,
//! `src/monitoring/mod.rs`).

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{one, rows};
use crate::db::Tx;
use crate::error::WebError;

pub async fn start(tx: &Tx<'_>, target: &str, reason: &str) -> Result<Uuid, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.start_impersonation($1, $2) t", &[&target, &reason]).await
}

pub async fn stop(tx: &Tx<'_>, id: Uuid) -> Result<(), WebError> {
    tx.execute("SELECT dashboard.stop_impersonation($1)", &[&id]).await?;
    Ok(())
}

/// For the rest of the transaction: become the impersonated user.
pub async fn apply(tx: &Tx<'_>, id: Uuid) -> Result<(), WebError> {
    tx.execute("SELECT dashboard.apply_impersonation($1)", &[&id]).await?;
    Ok(())
}

/// A running impersonation, as the banner shows it.
#[derive(Clone, Debug)]
pub struct Live {
    pub id: Uuid,
    /// The app user's email, or `anon` / `service_role`.
    pub who: String,
    /// The database role it runs as.
    pub role: String,
    pub reason: String,
    /// Seconds before `impersonation.max_duration` ends it.
    pub seconds_left: i64,
}

impl Live {
    pub fn time_left(&self) -> String {
        let s = self.seconds_left.max(0);
        if s >= 3600 {
            format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
        } else {
            format!("{}m {:02}s", s / 60, s % 60)
        }
    }
}

#[derive(Deserialize)]
struct Row {
    role: Option<String>,
    detail: Option<Detail>,
    seconds_left: i64,
}

#[derive(Deserialize)]
struct Detail {
    target_user_id: Option<Uuid>,
    impersonation_type: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct AppUser {
    email: Option<String>,
}

/// Impersonation `id` if it is `me`'s and still running (not stopped, not
/// expired); None otherwise.
pub async fn live(tx: &Tx<'_>, me: Uuid, id: Uuid) -> Result<Option<Live>, WebError> {
    let found: Vec<Row> = rows(
        tx,
        "SELECT pg_catalog.json_build_object('role', t.role, 'detail', t.detail,
                'seconds_left', pg_catalog.ceil(pg_catalog.date_part('epoch', t.expires_at OPERATOR(pg_catalog.-) pg_catalog.now()))::pg_catalog.int8)
         FROM dashboard.active_sessions() t
         WHERE t.kind OPERATOR(pg_catalog.=) 'impersonation' AND t.session_id OPERATOR(pg_catalog.=) $1
           AND t.user_id OPERATOR(pg_catalog.=) $2",
        &[&id, &me],
    )
    .await?;
    let Some(r) = found.into_iter().next() else { return Ok(None) };
    let d = r.detail.unwrap_or(Detail { target_user_id: None, impersonation_type: None, reason: None });
    let who = match d.target_user_id {
        Some(uid) => {
            let u: Vec<AppUser> = rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.get_user($1) t", &[&uid]).await?;
            u.into_iter().next().and_then(|u| u.email).unwrap_or_else(|| uid.to_string())
        }
        None => d.impersonation_type.clone().unwrap_or_default(),
    };
    Ok(Some(Live {
        id,
        who,
        role: r.role.unwrap_or_default(),
        reason: d.reason.unwrap_or_default(),
        seconds_left: r.seconds_left,
    }))
}

/// Rows the SQL console shows at most (`query_as` itself returns all).
pub const QUERY_CAP: usize = 1000;

/// Run `sql` as the impersonated user; at most QUERY_CAP + 1 rows come back
/// (the extra one only says there were more).
pub async fn query_as(tx: &Tx<'_>, id: Uuid, sql: &str) -> Result<Vec<Box<RawValue>>, WebError> {
    let cap = (QUERY_CAP + 1) as i64;
    // The user's statement resolves names as that user's own login would
    // (PostgreSQL's default path); the server's own statements, before and
    // after, keep theirs pinned (`db::SEARCH_PATH`). This statement names
    // only the schema-qualified query_as.
    tx.batch_execute("SET LOCAL search_path TO \"$user\", public").await?;
    let rows = tx.query("SELECT r::pg_catalog.text FROM dashboard.query_as($1, $2) r LIMIT $3", &[&id, &sql, &cap]).await?;
    tx.batch_execute("SET LOCAL search_path TO pg_catalog, pg_temp").await?;
    rows.iter()
        .map(|r| {
            let s: String = r.get(0);
            RawValue::from_string(s).map_err(|e| WebError::internal(format!("query_as answered no JSON: {e}")))
        })
        .collect()
}
