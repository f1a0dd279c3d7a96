//! Audit: search the trail (actor, action prefix, target, time), newest
//! first, keyset-paged on id; one entry's page with a row change's decoded
//! rows (`audit_details`); the chain's state on demand (`verify_audit_chain`);
//! CSV export of a search.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Url;
use crate::api::audit::{Chain, Entry, Search};
use crate::error::WebError;
use crate::render::{html, page};
use crate::session::{HxRequest, Session};
use crate::{api, App};

const PAGE_SIZE: i32 = 50;
/// A CSV export stops after this many entries (read 1000 at a time).
const CSV_MAX: usize = 100_000;

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::Audit.path(), get(list_get))
        .route("/admin/audit/export.csv", get(csv_get))
        .route("/admin/audit/verify", get(verify_get))
        .route("/admin/audit/entry/{id}", get(entry_get))
}

#[derive(Template)]
#[template(path = "audit/list_partial.html")]
struct AuditPartial {
    q: Search,
    entries: Vec<Entry>,
    next: Option<i64>,
    /// The search as a query string (for the next page and the export).
    query: String,
}

impl AuditPartial {
    /// A search field's current value, for the form.
    fn v(&self, name: &str) -> &str {
        let f = match name {
            "actor" => &self.q.actor,
            "action" => &self.q.action,
            "target" => &self.q.target,
            "since" => &self.q.since,
            _ => &self.q.until,
        };
        f.as_deref().unwrap_or("")
    }
}

fn query_string(q: &Search) -> String {
    let pairs: Vec<(&str, &str)> = [("actor", &q.actor), ("action", &q.action), ("target", &q.target), ("since", &q.since), ("until", &q.until)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

async fn list_get(State(app): State<App>, s: Session, hx: HxRequest, Query(q): Query<Search>) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Audit, "Audit", async |tx, _| {
        let entries = api::audit::search(tx, &q, PAGE_SIZE).await?;
        let next = (entries.len() == PAGE_SIZE as usize).then(|| entries.last().map(|e| e.id)).flatten();
        Ok(AuditPartial { query: query_string(&q), q, entries, next })
    })
    .await
}

#[derive(Template)]
#[template(path = "audit/chain_partial.html")]
struct ChainPartial {
    chain: Chain,
}

async fn verify_get(State(app): State<App>, s: Session) -> Result<Response, WebError> {
    let chain = app.db.with_session(&s.token, async |tx, _| api::audit::verify_chain(tx).await).await?;
    html(&ChainPartial { chain })
}

#[derive(Template)]
#[template(path = "audit/entry_partial.html")]
struct EntryPartial {
    id: i64,
    details: String,
    rows: Vec<String>,
}

async fn entry_get(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<i64>) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Audit, "Audit entry", async |tx, _| {
        let d = api::audit::details(tx, id).await?.ok_or_else(|| WebError::NotFound(format!("no audit entry {id}")))?;
        let rows = d
            .get("rows")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().map(|r| serde_json::to_string_pretty(r).unwrap_or_default()).collect())
            .unwrap_or_default();
        Ok(EntryPartial { id, details: serde_json::to_string_pretty(&d).unwrap_or_default(), rows })
    })
    .await
}

/// One CSV field: quoted, quotes doubled; a leading = + - @ is prefixed with
/// ' so that a spreadsheet does not run it as a formula.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) { format!("'{v}") } else { v.to_string() };
    format!("\"{}\"", v.replace('"', "\"\""))
}

async fn csv_get(State(app): State<App>, s: Session, Query(mut q): Query<Search>) -> Result<Response, WebError> {
    let mut out = String::from("id,occurred_at,actor,action,target,success,ip,details\r\n");
    let mut count = 0;
    loop {
        let page = app.db.with_session(&s.token, async |tx, _| api::audit::search(tx, &q, 1000).await).await?;
        for e in &page {
            let fields = [
                e.id.to_string(),
                e.occurred_exact(),
                e.actor.clone().unwrap_or_default(),
                e.action.clone().unwrap_or_default(),
                e.target(),
                e.success.map(|b| b.to_string()).unwrap_or_default(),
                e.ip.clone().unwrap_or_default(),
                e.details_text(),
            ];
            out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        count += page.len();
        match page.last() {
            Some(last) if page.len() == 1000 && count < CSV_MAX => q.after = Some(last.id),
            _ => break,
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"fluxbase-audit.csv\""),
        ],
        out,
    )
        .into_response())
}
