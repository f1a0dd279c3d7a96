//! The Tables section (issue 19): schemas and tables, a table's structure,
//! the grid (keyset pages of `dashboard.browse`, cursor in the URL), filters,
//! sort, search, inline edit, insert, batch delete/set, live updates (SSE),
//! CSV/JSON export, *View as…* impersonation and the SQL console.
//!
//! Every database call of the section goes through `Db::with_session_as`
//! with the browser's impersonation (cookie `__Host-fluxbase_imp`): while one
//! runs, the calls happen after `dashboard.apply_impersonation`, so RLS
//! decides what is seen, counted, exported and changed. The page's chrome is
//! loaded before that step (the admin API is out of reach afterwards).

use std::time::Duration;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Url;
use crate::api::explorer::{self as ex, ColumnInfo, Page, Query, RawRow, TableInfo};
use crate::api::impersonation::{self as imp, QUERY_CAP};
use crate::db::{Tx, Viewer};
use crate::error::WebError;
use crate::form::WebForm;
use crate::live::Change;
use crate::render::{forget_impersonation, full, html, Chrome};
use crate::session::{HxRequest, Session};
use crate::{cookies, App};

mod batch;
mod export;
mod grid;
mod insert;
pub(crate) mod list;
mod live;
mod sql;
mod view_as;
mod why;

use batch::*;
use export::*;
use grid::*;
use insert::*;
use list::*;
use live::*;
use sql::*;
use view_as::*;
use why::*;

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::Tables.path(), get(list_get))
        .route("/admin/tables/view-as", post(view_as_post))
        .route("/admin/tables/view-as/stop", post(stop_post))
        .route("/admin/tables/view-as/users", get(view_as_users_get))
        .route(SQL_PATH, get(sql_get).post(sql_post))
        .route("/admin/tables/{schema}/{table}", get(table_get))
        .route("/admin/tables/{schema}/{table}/grid", get(grid_get))
        .route("/admin/tables/{schema}/{table}/count", get(count_get))
        .route("/admin/tables/{schema}/{table}/cell", get(cell_get).post(cell_post))
        .route("/admin/tables/{schema}/{table}/insert", get(insert_get).post(insert_post))
        .route("/admin/tables/{schema}/{table}/batch/preview", post(batch_preview_post))
        .route("/admin/tables/{schema}/{table}/batch", post(batch_post))
        .route("/admin/tables/{schema}/{table}/live", post(live_post))
        .route("/admin/tables/{schema}/{table}/events", get(events_get))
        .route("/admin/tables/{schema}/{table}/export", get(export_get))
        .route("/admin/tables/{schema}/{table}/why", post(why_post))
}

const SQL_PATH: &str = "/admin/tables/sql";

/// Page sizes offered (browse takes up to 1000).
pub const PAGE_SIZES: [i32; 4] = [25, 50, 100, 500];
/// Every operator `dashboard.browse` takes.
pub const OPS: [(&str, &str); 11] = [
    ("eq", "="),
    ("neq", "≠"),
    ("lt", "<"),
    ("lte", "≤"),
    ("gt", ">"),
    ("gte", "≥"),
    ("like", "like"),
    ("ilike", "ilike"),
    ("in", "in (a,b,…)"),
    ("is_null", "is null"),
    ("not_null", "is not null"),
];
/// Characters of a value shown in a cell before "…" (click shows the rest).
const CELL_CHARS: usize = 60;
/// The exact count's statement timeout.
const COUNT_TIMEOUT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------ helpers

/// Percent-encode a path segment (names may hold anything: `/`, `?`, quotes).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn table_path(schema: &str, table: &str) -> String {
    format!("{}/{}/{}", Url::Tables.path(), seg(schema), seg(table))
}

/// Run `f` for the Tables section: as the viewer (impersonated when one
/// runs); a normal request gets the page with its chrome, htmx the partial.
async fn section_page<P: Template>(
    app: &App,
    s: &Session,
    hx: bool,
    title: &str,
    f: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<P, WebError>,
) -> Result<Response, WebError> {
    let (viewer, chrome, partial) = app
        .db
        .with_session_as(
            &s.token,
            s.imp,
            async |tx, v| if hx { Ok(None) } else { Some(Chrome::load(tx, v.me, Url::Tables).await).transpose() },
            f,
        )
        .await?;
    let mut resp = match chrome {
        Some(mut c) => {
            c.banner = viewer.imp.clone();
            full(title, Some(c), Some(&s.csrf), &partial)?
        }
        None => html(&partial)?,
    };
    if s.imp.is_some() && viewer.imp.is_none() {
        forget_impersonation(&mut resp);
    }
    Ok(resp)
}

/// As `section_page` for a call that renders nothing itself.
async fn as_viewer<T>(app: &App, s: &Session, f: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<T, WebError>) -> Result<(Viewer, T), WebError> {
    let (v, _, t) = app.db.with_session_as(&s.token, s.imp, async |_, _| Ok(()), f).await?;
    Ok((v, t))
}

/// Who the calls run as, for the pages' wording.
fn viewer_label(v: &Viewer) -> String {
    match &v.imp {
        Some(l) => format!("{} (impersonated)", l.who),
        None => "you (the admin)".into(),
    }
}

// ------------------------------------------------------------ the view (URL state)

/// What a grid shows, all of it in the URL: `fc`/`fo`/`fv` filter triples,
/// `s` sort keys (`col` or `-col`), `q` search, `n` page size, `after` the
/// keyset cursor of the page (browse's next_cursor, as JSON), `p` the page's
/// number (display only).
#[derive(Clone, Debug, Default)]
pub struct View {
    pub filters: Vec<(String, String, String)>,
    pub sort: Vec<(String, bool)>,
    pub q: String,
    pub n: i32,
    pub after: Option<String>,
    pub p: u32,
}

impl View {
    pub fn parse(raw: Option<&str>) -> View {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default();
        let mut v = View { n: 50, p: 1, ..View::default() };
        let (mut fc, mut fo, mut fv) = (vec![], vec![], vec![]);
        for (k, val) in pairs {
            match k.as_str() {
                "fc" => fc.push(val),
                "fo" => fo.push(val),
                "fv" => fv.push(val),
                "s" if !val.is_empty() => match val.strip_prefix('-') {
                    Some(c) => v.sort.push((c.to_string(), true)),
                    None => v.sort.push((val, false)),
                },
                "q" => v.q = val,
                "n" => v.n = val.parse().unwrap_or(50),
                "after" if !val.is_empty() => v.after = Some(val),
                "p" => v.p = val.parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        for (i, c) in fc.into_iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            let op = fo.get(i).cloned().unwrap_or_else(|| "eq".into());
            v.filters.push((c, op, fv.get(i).cloned().unwrap_or_default()));
        }
        v
    }

    /// The query string (without `?`); `after`/`p` only when given.
    pub fn query(&self, after: Option<&str>, p: u32) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (c, o, val) in &self.filters {
            pairs.push(("fc", c.clone()));
            pairs.push(("fo", o.clone()));
            pairs.push(("fv", val.clone()));
        }
        for (c, desc) in &self.sort {
            pairs.push(("s", if *desc { format!("-{c}") } else { c.clone() }));
        }
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        if self.n != 50 {
            pairs.push(("n", self.n.to_string()));
        }
        if let Some(a) = after {
            pairs.push(("after", a.to_string()));
            pairs.push(("p", p.to_string()));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    /// browse's filters/sort/search.
    pub fn browse_query(&self) -> Query {
        let filters = self
            .filters
            .iter()
            .map(|(c, o, val)| match o.as_str() {
                "is_null" | "not_null" => json!({"column": c, "op": o}),
                "in" => json!({"column": c, "op": o, "value": val.split(',').map(|x| x.trim()).collect::<Vec<_>>()}),
                _ => json!({"column": c, "op": o, "value": val}),
            })
            .collect();
        let sort = self
            .sort
            .iter()
            .map(|(c, d)| json!({"column": c, "dir": if *d { "desc" } else { "asc" }}))
            .collect();
        Query { filters: Value::Array(filters), sort: Value::Array(sort), search: Some(self.q.clone()).filter(|q| !q.is_empty()) }
    }

    pub fn page_size(&self) -> Result<i32, WebError> {
        if PAGE_SIZES.contains(&self.n) {
            Ok(self.n)
        } else {
            Err(WebError::BadRequest(format!("page size must be one of 25, 50, 100, 500 (got {})", self.n)))
        }
    }

    pub fn cursor(&self) -> Result<Option<Value>, WebError> {
        self.after
            .as_deref()
            .map(|a| serde_json::from_str(a).map_err(|_| WebError::BadRequest("invalid cursor in the address: start again from the first page".into())))
            .transpose()
    }

    /// The sort a header link sets: first click sorts by the column
    /// ascending, the next descending; `then` adds it as a further key.
    fn sorted_by(&self, col: &str, then: bool) -> View {
        let mut v = self.clone();
        v.after = None;
        if then {
            if !v.sort.iter().any(|(c, _)| c == col) {
                v.sort.push((col.to_string(), false));
            }
        } else {
            let desc = matches!(self.sort.as_slice(), [(c, false)] if c == col);
            v.sort = vec![(col.to_string(), desc)];
        }
        v
    }
}

// ------------------------------------------------------------ cells

/// A value as the grid shows it.
pub struct Cell {
    /// `null`, `empty` (''), or `value`.
    pub kind: &'static str,
    pub short: String,
    /// The whole value when `short` was cut.
    pub full: Option<String>,
    /// A filtered view of the referenced table (foreign key).
    pub link: Option<String>,
    pub column: String,
}

/// The text of a raw JSON value: strings unquoted, the rest as written
/// (numbers keep every digit), None for null.
pub fn raw_text(v: &serde_json::value::RawValue) -> Option<String> {
    let s = v.get();
    if s == "null" {
        None
    } else if s.starts_with('"') {
        Some(serde_json::from_str::<String>(s).unwrap_or_else(|_| s.to_string()))
    } else {
        Some(s.to_string())
    }
}

fn cell(column: &str, v: Option<&serde_json::value::RawValue>, link: Option<String>) -> Cell {
    let text = v.and_then(raw_text);
    match text {
        None => Cell { kind: "null", short: "NULL".into(), full: None, link: None, column: column.into() },
        Some(t) if t.is_empty() => Cell { kind: "empty", short: "''".into(), full: None, link: None, column: column.into() },
        Some(t) => {
            let cut = t.chars().count() > CELL_CHARS;
            let short = if cut { format!("{}…", t.chars().take(CELL_CHARS).collect::<String>()) } else { t.clone() };
            Cell { kind: "value", short, full: cut.then_some(t), link, column: column.into() }
        }
    }
}

/// A table's name as `regclass::text` prints it (how describe_table names a
/// foreign key's target): schema left out for `public`, quoted when needed.
fn regclass_text(schema: &str, name: &str) -> String {
    let q = |s: &str| {
        let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
        if plain { s.to_string() } else { format!("\"{}\"", s.replace('"', "\"\"")) }
    };
    if schema == "public" { q(name) } else { format!("{}.{}", q(schema), q(name)) }
}

/// Where column `c`'s foreign key points: (schema, table, column).
fn fk_target(c: &ColumnInfo, tables: &[TableInfo]) -> Option<(String, String, String)> {
    let fk = c.foreign_key.as_deref()?.split(", ").next()?;
    let open = fk.rfind('(')?;
    let (rel, col) = (&fk[..open], fk[open + 1..].trim_end_matches(')'));
    tables
        .iter()
        .find(|t| regclass_text(&t.schema, &t.name) == rel)
        .map(|t| (t.schema.clone(), t.name.clone(), col.to_string()))
}
