//! The audit trail: `dashboard.audit_search`, `dashboard_auth.audit_details`,
//! `verify_audit_chain` (extension `src/audit/record.rs`).

use serde::Deserialize;
use uuid::Uuid;

use super::{one, rows, Ts};
use crate::db::Tx;
use crate::error::WebError;

#[derive(Deserialize, Clone)]
pub struct Entry {
    pub id: i64,
    pub occurred_at: Ts,
    pub actor_id: Option<Uuid>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub success: Option<bool>,
}

impl Entry {
    pub fn details_text(&self) -> String {
        self.details.to_string()
    }
    pub fn details_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.details).unwrap_or_default()
    }
    /// A row-change entry carries decoded rows.
    pub fn is_row_change(&self) -> bool {
        self.action.as_deref().is_some_and(|a| a.starts_with("row."))
    }
    pub fn target(&self) -> String {
        match (&self.target_type, &self.target_id) {
            (Some(t), Some(i)) => format!("{t}:{i}"),
            (Some(t), None) => t.clone(),
            (None, Some(i)) => i.clone(),
            (None, None) => String::new(),
        }
    }
    pub fn occurred_exact(&self) -> String {
        self.occurred_at.0.clone().unwrap_or_default()
    }
}

/// The search form's fields, as `audit_search` takes them.
#[derive(Deserialize, Default, Clone)]
pub struct Search {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub after: Option<i64>,
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub async fn search(tx: &Tx<'_>, q: &Search, page_size: i32) -> Result<Vec<Entry>, WebError> {
    // `action` is a prefix in this form: audit_search takes a trailing '*'.
    let action = blank(&q.action).map(|a| if a.ends_with('*') { a.to_string() } else { format!("{a}*") });
    rows(
        tx,
        "SELECT pg_catalog.to_json(t) FROM dashboard.audit_search($1, $2, $3, $4::text::timestamptz, $5::text::timestamptz, $6, $7) t",
        &[&blank(&q.actor), &action, &blank(&q.target), &blank(&q.since), &blank(&q.until), &page_size, &q.after],
    )
    .await
}

/// One entry's details with a row change's rows decoded (None: no such entry).
pub async fn details(tx: &Tx<'_>, id: i64) -> Result<Option<serde_json::Value>, WebError> {
    let row = tx.query_one("SELECT dashboard_auth.audit_details($1)", &[&id]).await?;
    Ok(row.get(0))
}

#[derive(Deserialize, Clone)]
pub struct Chain {
    pub ok: bool,
    pub first_bad_id: Option<i64>,
}

pub async fn verify_chain(tx: &Tx<'_>) -> Result<Chain, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard_auth.verify_audit_chain() t", &[]).await
}
