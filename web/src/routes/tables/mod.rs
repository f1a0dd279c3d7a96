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

// ------------------------------------------------------------ list

#[derive(Template)]
#[template(path = "tables/list_partial.html")]
struct ListPartial {
    /// The session's CSRF token for the forms' `_csrf` field.
    csrf: String,
    schemas: Vec<(String, Vec<TableRow>)>,
    viewer: String,
    impersonating: bool,
    /// This page's address, where *View as…* returns (see `back_to`).
    here: String,
}

struct TableRow {
    href: String,
    t: TableInfo,
    size: String,
    /// How many RLS policies the table has (asked only when RLS is on).
    policies: Option<usize>,
}

pub fn human_bytes(n: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[i]) }
}

async fn list_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    section_page(&app, &s, hx.0, "Tables", async |tx, v| {
        let tables = ex::list_tables(tx, None).await?;
        // (one pipelined call per table with RLS on)
        let policies = futures_util::future::try_join_all(tables.iter().map(async |t| {
            Ok::<_, WebError>(if t.rls_enabled { Some(ex::policies(tx, &t.schema, &t.name).await?.len()) } else { None })
        }))
        .await?;
        let mut schemas: Vec<(String, Vec<TableRow>)> = Vec::new();
        for (t, policies) in tables.into_iter().zip(policies) {
            let row = TableRow { href: table_path(&t.schema, &t.name), size: human_bytes(t.total_bytes), t, policies };
            match schemas.last_mut() {
                Some((name, rows)) if *name == row.t.schema => rows.push(row),
                _ => schemas.push((row.t.schema.clone(), vec![row])),
            }
        }
        let here = Url::Tables.path().to_string();
        Ok(ListPartial { csrf: s.csrf.clone(), schemas, viewer: viewer_label(v), impersonating: v.imp.is_some(), here })
    })
    .await
}

// ------------------------------------------------------------ table page + grid

#[derive(Template)]
#[template(path = "tables/table_partial.html")]
struct TablePartial {
    /// The session's CSRF token for the forms' `_csrf` field.
    csrf: String,
    schema: String,
    table: String,
    base: String,
    info: Option<TableInfo>,
    columns: Vec<ColumnInfo>,
    indexes: Vec<ex::IndexInfo>,
    policies: Vec<ex::PolicyInfo>,
    view: View,
    grid: GridPartial,
    ops: &'static [(&'static str, &'static str)],
    sizes: &'static [i32],
    viewer: String,
    impersonating: bool,
    /// This page's address, where *View as…* returns (see `back_to`).
    here: String,
}

/// A table's page, or why the impersonated viewer can't see it.
#[derive(Template)]
#[template(source = "{% match page %}{% when Ok with (p) %}{{ p|safe }}{% when Err with (d) %}{{ d|safe }}{% endmatch %}", ext = "html")]
struct TableOrDenied {
    page: Result<TablePartial, DeniedPartial>,
}

#[derive(Template)]
#[template(path = "tables/denied_partial.html")]
struct DeniedPartial {
    schema: String,
    table: String,
    viewer: String,
    message: String,
}

#[derive(Template)]
#[template(path = "tables/grid_partial.html")]
pub struct GridPartial {
    /// The session's CSRF token for the forms' `_csrf` field.
    csrf: String,
    base: String,
    /// This page's own URL (the live refresh re-fetches it).
    src: String,
    headers: Vec<Header>,
    rows: Vec<GridRow>,
    estimated_total: i64,
    next: Option<String>,
    first: Option<String>,
    page_no: u32,
    /// Why rows can't be edited (no primary key, a view), if so.
    read_only: Option<String>,
    view_query: String,
    viewer: String,
}

pub struct Header {
    name: String,
    typ: String,
    pk: bool,
    /// `asc`/`desc` when sorted on, with its position.
    sorted: Option<(usize, &'static str)>,
    sort_href: String,
    then_href: String,
}

pub struct GridRow {
    /// The primary key as JSON (edit, select), None when read-only.
    pk: Option<String>,
    cells: Vec<Cell>,
}

/// Primary key of a row as browse's edit functions take it: every value as
/// its text (the database casts it to the column type).
fn pk_of(row: &RawRow, pk_cols: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for c in pk_cols {
        let v = row.get(c).and_then(raw_text).map(Value::String).unwrap_or(Value::Null);
        m.insert(c.clone(), v);
    }
    Value::Object(m)
}

fn read_only_reason(info: Option<&TableInfo>) -> Option<String> {
    match info {
        None => Some("read-only: the table is not in the list this viewer may see".into()),
        Some(t) if t.kind != "table" && t.kind != "partitioned table" => Some(format!("read-only: a {} is not edited here", t.kind)),
        Some(t) if t.primary_key.is_empty() => {
            Some("read-only: this table has no primary key, so its rows can't be addressed for editing".into())
        }
        Some(_) => None,
    }
}

struct Loaded {
    info: Option<TableInfo>,
    columns: Vec<ColumnInfo>,
    tables: Vec<TableInfo>,
    page: Page,
}

async fn load_grid(tx: &Tx<'_>, schema: &str, table: &str, view: &View) -> Result<Loaded, WebError> {
    let columns = ex::describe(tx, schema, table).await?;
    let tables = ex::list_tables(tx, Some(schema)).await?;
    let info = tables.iter().find(|t| t.name == table).cloned();
    let tables = if columns.iter().any(|c| c.foreign_key.is_some()) { ex::list_tables(tx, None).await? } else { tables };
    let page = ex::browse(tx, schema, table, &view.browse_query(), view.page_size()?, view.cursor()?.as_ref()).await?;
    Ok(Loaded { info, columns, tables, page })
}

fn grid(schema: &str, table: &str, view: &View, l: &Loaded, viewer: String, csrf: &str) -> GridPartial {
    let base = table_path(schema, table);
    let read_only = read_only_reason(l.info.as_ref());
    let pk_cols: Vec<String> = l.info.as_ref().map(|t| t.primary_key.clone()).unwrap_or_default();
    let fks: Vec<Option<(String, String, String)>> = l.columns.iter().map(|c| fk_target(c, &l.tables)).collect();
    let headers = l
        .columns
        .iter()
        .map(|c| Header {
            name: c.name.clone(),
            typ: c.typ.clone(),
            pk: c.primary_key,
            sorted: view
                .sort
                .iter()
                .position(|(n, _)| *n == c.name)
                .map(|i| (i + 1, if view.sort[i].1 { "desc" } else { "asc" })),
            sort_href: format!("{base}?{}", view.sorted_by(&c.name, false).query(None, 1)),
            then_href: format!("{base}?{}", view.sorted_by(&c.name, true).query(None, 1)),
        })
        .collect();
    let rows = l
        .page
        .rows
        .iter()
        .map(|r| GridRow {
            pk: read_only.is_none().then(|| pk_of(r, &pk_cols).to_string()),
            cells: l
                .columns
                .iter()
                .zip(&fks)
                .map(|(c, fk)| {
                    let v = r.get(&c.name);
                    let link = match (fk, v.and_then(raw_text)) {
                        (Some((s, t, col)), Some(val)) => Some(format!(
                            "{}?{}",
                            table_path(s, t),
                            serde_urlencoded::to_string([("fc", col.as_str()), ("fo", "eq"), ("fv", val.as_str())]).unwrap_or_default()
                        )),
                        _ => None,
                    };
                    cell(&c.name, v, link)
                })
                .collect(),
        })
        .collect();
    let next = l.page.next_cursor.as_ref().map(|c| format!("{base}?{}", view.query(Some(&c.to_string()), view.p + 1)));
    let first = view.after.is_some().then(|| format!("{base}?{}", view.query(None, 1)));
    let src = format!("{base}/grid?{}", view.query(view.after.as_deref(), view.p));
    GridPartial {
        csrf: csrf.to_string(),
        base,
        src,
        headers,
        rows,
        estimated_total: l.page.estimated_total,
        next,
        first,
        page_no: view.p,
        read_only,
        view_query: view.query(None, 1),
        viewer,
    }
}

async fn table_get(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    Path((schema, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let view = View::parse(raw.as_deref());
    let title = format!("{schema}.{table}");
    section_page(&app, &s, hx.0, &title, async |tx, v| {
        let l = match load_grid(tx, &schema, &table, &view).await {
            // The impersonated user may not read it: say so inside the
            // section, under the banner (its Stop comes back here).
            Err(WebError::Denied(message)) if v.imp.is_some() => {
                let (schema, table, viewer) = (schema.clone(), table.clone(), viewer_label(v));
                return Ok(TableOrDenied { page: Err(DeniedPartial { schema, table, viewer, message }) });
            }
            l => l?,
        };
        let indexes = ex::indexes(tx, &schema, &table).await?;
        let policies = ex::policies(tx, &schema, &table).await?;
        let grid = grid(&schema, &table, &view, &l, viewer_label(v), &s.csrf);
        Ok(TableOrDenied { page: Ok(TablePartial {
            csrf: s.csrf.clone(),
            base: table_path(&schema, &table),
            schema: schema.clone(),
            table: table.clone(),
            info: l.info,
            columns: l.columns,
            indexes,
            policies,
            view: view.clone(),
            grid,
            ops: &OPS,
            sizes: &PAGE_SIZES,
            viewer: viewer_label(v),
            impersonating: v.imp.is_some(),
            here: format!("{}?{}", table_path(&schema, &table), view.query(view.after.as_deref(), view.p)),
        }) })
    })
    .await
}

/// The grid alone (the live refresh and paging inside the page).
async fn grid_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let view = View::parse(raw.as_deref());
    section_page(&app, &s, true, "", async |tx, v| {
        let l = load_grid(tx, &schema, &table, &view).await?;
        Ok(grid(&schema, &table, &view, &l, viewer_label(v), &s.csrf))
    })
    .await
}

#[derive(Template)]
#[template(path = "tables/count_partial.html")]
struct CountPartial {
    /// None when the count ran out of time.
    count: Option<i64>,
    /// The planner's estimate (pg_class.reltuples) shown instead.
    estimate: i64,
    seconds: u64,
}

/// The exact count of the view's rows, as the viewer: `dashboard.count_rows`
/// under a statement timeout of COUNT_TIMEOUT; past it the page says so and
/// shows the planner's estimate instead.
async fn count_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let view = View::parse(raw.as_deref());
    section_page(&app, &s, true, "", async |tx, _| {
        let q = view.browse_query();
        let count = crate::db::Db::with_timeout(tx, COUNT_TIMEOUT, async |tx| ex::count_rows(tx, &schema, &table, &q).await).await?;
        let estimate = match count {
            Some(_) => 0,
            None => ex::list_tables(tx, Some(&schema)).await?.iter().find(|t| t.name == table).map_or(0, |t| t.row_estimate),
        };
        Ok(CountPartial { count, estimate, seconds: COUNT_TIMEOUT.as_secs() })
    })
    .await
}

/// Browse every row of the view by keyset (1000 a call) in `tx`, calling
/// `each` per row.
async fn walk(tx: &Tx<'_>, schema: &str, table: &str, view: &View, mut each: impl FnMut(&RawRow)) -> Result<(), WebError> {
    let q = view.browse_query();
    let mut after: Option<Value> = None;
    loop {
        let page = ex::browse(tx, schema, table, &q, ex::MAX_PAGE, after.as_ref()).await?;
        page.rows.iter().for_each(&mut each);
        match page.next_cursor {
            None => return Ok(()),
            Some(c) => after = Some(c),
        }
    }
}

// ------------------------------------------------------------ editing

#[derive(Deserialize)]
struct CellQuery {
    pk: String,
    col: String,
    #[serde(default)]
    show: Option<String>,
}

#[derive(Template)]
#[template(path = "tables/cell_partial.html")]
struct CellPartial {
    c: Cell,
}

#[derive(Template)]
#[template(path = "tables/editor_partial.html")]
struct EditorPartial {
    action: String,
    cancel: String,
    pk: String,
    col: String,
    typ: String,
    /// `bool`, `number`, `date`, `time`, `datetime`, `json`, `text`, or
    /// `enum` (a select of `choices`).
    editor: &'static str,
    value: String,
    is_null: bool,
    nullable: bool,
    /// An enum column's labels, in the enum's order.
    choices: Vec<String>,
    error: Option<String>,
}

/// The labels of column `col` when it is an enum (or a domain over one).
fn choices_of(all: &[(String, Vec<String>)], col: &str) -> Option<Vec<String>> {
    all.iter().find(|(c, _)| c == col).map(|(_, l)| l.clone())
}

/// What an enum select sent: `null`, or `l:` and the label (a label may be
/// any text, so NULL can't be one of them).
fn choice_value(choice: &str) -> Result<Value, WebError> {
    match (choice, choice.strip_prefix("l:")) {
        ("null", _) => Ok(Value::Null),
        (_, Some(label)) => Ok(Value::String(label.to_string())),
        _ => Err(WebError::BadRequest("invalid choice".into())),
    }
}

fn editor_for(typ: &str) -> &'static str {
    let t = typ.to_ascii_lowercase();
    if t == "boolean" {
        "bool"
    } else if ["smallint", "integer", "bigint", "real", "double precision"].contains(&t.as_str()) || t.starts_with("numeric") {
        "number"
    } else if t == "date" {
        "date"
    } else if t.starts_with("time ") || t == "time without time zone" || t.starts_with("time(") {
        "time"
    } else if t.starts_with("timestamp") {
        "datetime"
    } else if t == "json" || t == "jsonb" {
        "json"
    } else {
        "text"
    }
}

fn parse_pk(pk: &str) -> Result<Value, WebError> {
    serde_json::from_str(pk).map_err(|_| WebError::BadRequest("invalid row key".into()))
}

/// The one row with primary key `pk`, as the viewer sees it.
async fn row_by_pk(tx: &Tx<'_>, schema: &str, table: &str, pk: &Value) -> Result<Option<RawRow>, WebError> {
    let filters: Vec<Value> = pk
        .as_object()
        .ok_or_else(|| WebError::BadRequest("invalid row key".into()))?
        .iter()
        .map(|(c, v)| json!({"column": c, "op": "eq", "value": v}))
        .collect();
    let q = Query { filters: Value::Array(filters), sort: json!([]), search: None };
    Ok(ex::browse(tx, schema, table, &q, 1, None).await?.rows.into_iter().next())
}

fn column<'a>(columns: &'a [ColumnInfo], name: &str) -> Result<&'a ColumnInfo, WebError> {
    columns.iter().find(|c| c.name == name).ok_or_else(|| WebError::NotFound(format!("no column {name}")))
}

fn editor(
    base: &str,
    q: &CellQuery,
    c: &ColumnInfo,
    choices: Option<Vec<String>>,
    value: Option<String>,
    error: Option<String>,
) -> EditorPartial {
    let editor = if choices.is_some() { "enum" } else { editor_for(&c.typ) };
    let mut v = value.clone().unwrap_or_default();
    if editor == "datetime" && v.len() >= 19 {
        v = v.replacen('T', " ", 1);
    }
    EditorPartial {
        action: format!("{base}/cell"),
        cancel: format!("{base}/cell?{}", serde_urlencoded::to_string([("pk", &q.pk), ("col", &q.col), ("show", &"1".to_string())]).unwrap_or_default()),
        pk: q.pk.clone(),
        col: q.col.clone(),
        typ: c.typ.clone(),
        editor,
        value: v,
        is_null: value.is_none(),
        nullable: c.nullable,
        choices: choices.unwrap_or_default(),
        error,
    }
}

/// The editor of one cell (`show=1`: the cell's value again, for Cancel).
async fn cell_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<CellQuery>,
) -> Result<Response, WebError> {
    let pk = parse_pk(&q.pk)?;
    let base = table_path(&schema, &table);
    let (_, out) = as_viewer(&app, &s, async |tx, _| {
        let columns = ex::describe(tx, &schema, &table).await?;
        let c = column(&columns, &q.col)?.clone();
        let row = row_by_pk(tx, &schema, &table, &pk).await?.ok_or_else(|| WebError::NotFound("the row is gone (or not visible to this viewer)".into()))?;
        let choices = if q.show.is_none() { choices_of(&ex::choices(tx, &schema, &table).await?, &q.col) } else { None };
        Ok((c, row.get(&q.col).and_then(raw_text), choices))
    })
    .await?;
    let (c, value, choices) = out;
    if q.show.is_some() {
        let raw = value.map(|v| serde_json::value::RawValue::from_string(serde_json::to_string(&v).unwrap_or_default()).ok()).flatten();
        return html(&CellPartial { c: cell(&c.name, raw.as_deref(), None) });
    }
    html(&editor(&base, &q, &c, choices, value, None))
}

#[derive(Deserialize)]
struct CellForm {
    pk: String,
    col: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    null: Option<String>,
    /// An enum select's answer (see `choice_value`).
    #[serde(default)]
    choice: Option<String>,
}

/// Save one cell through `dashboard.update_row` (as the viewer). A refusal
/// (bad value, constraint, RLS) comes back as the editor with the database's
/// message beside it; nothing is saved.
async fn cell_post(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    WebForm(f): WebForm<CellForm>,
) -> Result<Response, WebError> {
    let pk = parse_pk(&f.pk)?;
    let base = table_path(&schema, &table);
    let q = CellQuery { pk: f.pk.clone(), col: f.col.clone(), show: None };
    let (columns, choices) = as_viewer(&app, &s, async |tx, _| {
        Ok((ex::describe(tx, &schema, &table).await?, ex::choices(tx, &schema, &table).await?))
    })
    .await?
    .1;
    let c = column(&columns, &f.col)?.clone();
    let choices = choices_of(&choices, &f.col);
    // (the value typed, shown again with a refusal)
    let typed = match &f.choice {
        Some(ch) => ch.strip_prefix("l:").map(str::to_string),
        None => Some(f.value.clone()),
    };
    let value = if f.null.is_some() {
        Value::Null
    } else if let Some(ch) = &f.choice {
        choice_value(ch)?
    } else if editor_for(&c.typ) == "json" {
        match serde_json::from_str::<Value>(&f.value) {
            Ok(v) => Value::String(v.to_string()),
            Err(e) => return html(&editor(&base, &q, &c, choices, typed, Some(format!("not valid JSON: {e}")))),
        }
    } else {
        Value::String(f.value.clone())
    };
    let changes = json!({ f.col.clone(): value });
    let saved = as_viewer(&app, &s, async |tx, _| ex::update_row(tx, &schema, &table, &pk, &changes).await).await;
    match saved {
        Ok((_, row)) => {
            let new = row.get(&f.col).cloned().unwrap_or(Value::Null);
            let raw = serde_json::value::RawValue::from_string(new.to_string()).ok();
            html(&CellPartial { c: cell(&c.name, raw.as_deref(), None) })
        }
        Err(WebError::BadRequest(m)) | Err(WebError::Denied(m)) | Err(WebError::NotFound(m)) => {
            html(&editor(&base, &q, &c, choices, typed, Some(m)))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "tables/insert_partial.html")]
struct InsertPartial {
    /// The session's CSRF token for the forms' `_csrf` field.
    csrf: String,
    base: String,
    schema: String,
    table: String,
    columns: Vec<ColumnInfo>,
    /// Enum columns' labels (a select instead of a text field).
    choices: Vec<(String, Vec<String>)>,
    error: Option<String>,
    /// The fields sent (`c:`/`e:` and the column name), shown again with a refusal.
    values: Vec<(String, String)>,
}

impl InsertPartial {
    fn value_of(&self, col: &str) -> String {
        self.values.iter().find(|(k, _)| k == col).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    fn labels_of(&self, col: &str) -> Option<&Vec<String>> {
        self.choices.iter().find(|(c, _)| c == col).map(|(_, l)| l)
    }
}

async fn insert_get(State(app): State<App>, s: Session, hx: HxRequest, Path((schema, table)): Path<(String, String)>) -> Result<Response, WebError> {
    insert_page(&app, &s, hx.0, &schema, &table, None, vec![]).await
}

/// The insert form (again with the database's refusal and the values typed).
async fn insert_page(
    app: &App,
    s: &Session,
    hx: bool,
    schema: &str,
    table: &str,
    error: Option<String>,
    values: Vec<(String, String)>,
) -> Result<Response, WebError> {
    section_page(app, s, hx, "Insert row", async |tx, _| {
        let columns = ex::describe(tx, schema, table).await?;
        let choices = ex::choices(tx, schema, table).await?;
        let (base, schema, table) = (table_path(schema, table), schema.to_string(), table.to_string());
        Ok(InsertPartial { csrf: s.csrf.clone(), base, schema, table, columns, choices, error, values })
    })
    .await
}

/// Insert one row: every filled field (`c:<name>`), the others take their
/// defaults; `n:<name>` sends NULL; an enum select (`e:<name>`) sends its
/// label (`l:…`), NULL (`null`) or nothing (empty: the default).
async fn insert_post(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    Path((schema, table)): Path<(String, String)>,
    WebForm(fields): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let mut row = serde_json::Map::new();
    for (k, v) in &fields {
        if let Some(c) = k.strip_prefix("c:") {
            if !v.is_empty() {
                row.insert(c.to_string(), Value::String(v.clone()));
            }
        } else if let Some(c) = k.strip_prefix("n:") {
            row.insert(c.to_string(), Value::Null);
        } else if let Some(c) = k.strip_prefix("e:") {
            if !v.is_empty() {
                row.insert(c.to_string(), choice_value(v)?);
            }
        }
    }
    let rows = Value::Array(vec![Value::Object(row)]);
    let base = table_path(&schema, &table);
    match as_viewer(&app, &s, async |tx, _| ex::insert_rows(tx, &schema, &table, &rows).await).await {
        Ok(_) => Ok(Redirect::to(&base).into_response()),
        Err(WebError::BadRequest(m)) | Err(WebError::Denied(m)) => {
            let values = fields
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("c:").or_else(|| k.strip_prefix("e:")).map(|c| (c.to_string(), v.clone())))
                .collect();
            let mut r = insert_page(&app, &s, hx.0, &schema, &table, Some(m), values).await?;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

// ------------------------------------------------------------ batch

#[derive(Deserialize, Clone)]
struct BatchForm {
    /// `delete` or `set`.
    action: String,
    /// `selected` or `all` (every row matching the view's filters).
    scope: String,
    #[serde(default)]
    set_col: String,
    #[serde(default)]
    set_value: String,
    #[serde(default)]
    set_null: Option<String>,
    /// The view's query string (filters, sort, search).
    #[serde(default)]
    view: String,
    /// Selected rows' keys (JSON), newline-separated when confirmed.
    #[serde(default)]
    pks: String,
}

fn batch_form(fields: &[(String, String)]) -> Result<BatchForm, WebError> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let pks: Vec<String> = fields.iter().filter(|(n, _)| n == "pk").map(|(_, v)| v.clone()).collect();
    Ok(BatchForm {
        action: get("action").unwrap_or_default(),
        scope: get("scope").unwrap_or_else(|| "selected".into()),
        set_col: get("set_col").unwrap_or_default(),
        set_value: get("set_value").unwrap_or_default(),
        set_null: get("set_null").filter(|v| !v.is_empty()),
        view: get("view").unwrap_or_default(),
        pks: get("pks").unwrap_or_else(|| pks.join("\n")),
    })
}

impl BatchForm {
    fn changes(&self) -> Result<Option<Value>, WebError> {
        match self.action.as_str() {
            "delete" => Ok(None),
            "set" if !self.set_col.is_empty() => {
                let v = if self.set_null.is_some() { Value::Null } else { Value::String(self.set_value.clone()) };
                Ok(Some(json!({ self.set_col.clone(): v })))
            }
            "set" => Err(WebError::BadRequest("choose the column to set".into())),
            _ => Err(WebError::BadRequest("choose delete or set".into())),
        }
    }

    fn selected(&self) -> Result<Vec<Value>, WebError> {
        self.pks.lines().filter(|l| !l.trim().is_empty()).map(parse_pk).collect()
    }
}

/// The rows a batch acts on, as the viewer: the selected keys that the
/// viewer can see, or every row matching the view (browsed by keyset).
async fn batch_keys(tx: &Tx<'_>, schema: &str, table: &str, f: &BatchForm) -> Result<Vec<Value>, WebError> {
    let info = ex::list_tables(tx, Some(schema)).await?.into_iter().find(|t| t.name == table);
    if let Some(why) = read_only_reason(info.as_ref()) {
        return Err(WebError::BadRequest(why));
    }
    let pk_cols = info.map(|t| t.primary_key).unwrap_or_default();
    if f.scope == "all" {
        let view = View::parse(Some(&f.view));
        let mut keys = Vec::new();
        walk(tx, schema, table, &view, |r| keys.push(pk_of(r, &pk_cols))).await?;
        Ok(keys)
    } else {
        let mut keys = Vec::new();
        for pk in f.selected()? {
            if row_by_pk(tx, schema, table, &pk).await?.is_some() {
                keys.push(pk);
            }
        }
        Ok(keys)
    }
}

#[derive(Template)]
#[template(path = "tables/batch_partial.html")]
struct BatchPartial {
    /// The session's CSRF token for the forms' `_csrf` field.
    csrf: String,
    base: String,
    table: String,
    f: BatchForm,
    /// Rows that will change (preview) or changed (done).
    count: usize,
    done: bool,
    viewer: String,
    back: String,
}

async fn batch_preview_post(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    Path((schema, table)): Path<(String, String)>,
    WebForm(fields): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let f = batch_form(&fields)?;
    f.changes()?;
    section_page(&app, &s, hx.0, "Batch change", async |tx, v| {
        let keys = batch_keys(tx, &schema, &table, &f).await?;
        let base = table_path(&schema, &table);
        let mut f = f.clone();
        if f.scope != "all" {
            f.pks = keys.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
        }
        Ok(BatchPartial { csrf: s.csrf.clone(), back: format!("{base}?{}", f.view), base, table: table.clone(), f, count: keys.len(), done: false, viewer: viewer_label(v) })
    })
    .await
}

/// Run a confirmed batch: the keys are collected and changed in ONE
/// transaction as the viewer (all or nothing); the page reports the count
/// the database really changed.
async fn batch_post(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    Path((schema, table)): Path<(String, String)>,
    WebForm(fields): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let f = batch_form(&fields)?;
    let changes = f.changes()?;
    section_page(&app, &s, hx.0, "Batch change", async |tx, v| {
        let keys = batch_keys(tx, &schema, &table, &f).await?;
        let mut changed = 0usize;
        for chunk in keys.chunks(ex::MAX_BATCH) {
            let pks = Value::Array(chunk.to_vec());
            changed += match &changes {
                None => ex::delete_rows(tx, &schema, &table, &pks).await?,
                Some(c) => ex::update_rows(tx, &schema, &table, &pks, c).await?,
            } as usize;
        }
        let base = table_path(&schema, &table);
        Ok(BatchPartial { csrf: s.csrf.clone(), back: format!("{base}?{}", f.view), base, table: table.clone(), f: f.clone(), count: changed, done: true, viewer: viewer_label(v) })
    })
    .await
}

// ------------------------------------------------------------ live

#[derive(Deserialize)]
struct LiveForm {
    on: String,
}

/// Turn live updates of the table on or off (`watch_table` adds the
/// notifying trigger; that is the admin's act, not the viewer's).
async fn live_post(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    WebForm(f): WebForm<LiveForm>,
) -> Result<Response, WebError> {
    let on = f.on == "1";
    app.db.with_session(&s.token, async |tx, _| ex::watch(tx, &schema, &table, on).await).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Server-sent events for one table: rights are checked first (the viewer
/// must be able to describe it), then every change of that table is sent as
/// an event `change` (data: the op) and `resync` when some may have been
/// missed. The page refetches its grid through the normal handler.
async fn events_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
) -> Result<Response, WebError> {
    as_viewer(&app, &s, async |tx, _| ex::describe(tx, &schema, &table).await.map(|_| ())).await?;
    let rx = app.live.subscribe().await;
    let closed = Box::pin(app.live.closed());
    let stream = futures_util::stream::unfold((rx, schema, table, closed), |(mut rx, schema, table, mut closed)| async move {
        loop {
            let got = tokio::select! {
                got = rx.recv() => got,
                _ = &mut closed => return None,
            };
            let ev = match got {
                Ok(Change::Row { schema: s, table: t, op }) if s == schema && t == table => Event::default().event("change").data(op),
                Ok(Change::Row { .. }) => continue,
                Ok(Change::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Event::default().event("resync").data(""),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok::<_, std::convert::Infallible>(ev), (rx, schema, table, closed)));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

// ------------------------------------------------------------ export

/// Chunks fetched ahead of the one being sent (each at most ~1 MiB and
/// EXPORT_ROWS rows): the server's memory stays a few chunks, whatever the
/// table's size.
const EXPORT_AHEAD: usize = 2;

/// One chunk of the export as the viewer: its own short transaction
/// (`with_session_as`: the session checked again, the impersonation applied
/// again; nothing is held open between chunks).
#[allow(clippy::too_many_arguments)]
async fn export_chunk(
    app: &App,
    token: &str,
    imp: Option<uuid::Uuid>,
    schema: &str,
    table: &str,
    q: &Query,
    format: &str,
    after: Option<&Value>,
) -> Result<ex::ExportChunk, WebError> {
    let (_, _, chunk) = app
        .db
        .with_session_as(token, imp, async |_, _| Ok(()), async |tx, _| ex::export_rows(tx, schema, table, q, format, after).await)
        .await?;
    Ok(chunk)
}

/// CSV or JSON of the whole view (filters, sort, search; as the viewer),
/// streamed chunk by chunk by keyset from `dashboard.export_rows`. The CSV is
/// COPY's (each value through its type's output function, COPY's quoting);
/// the JSON an array of one object per row. The first chunk is read before
/// the answer starts (an error then gets its normal page); later ones are
/// fetched by a task at most EXPORT_AHEAD chunks ahead of the download, so
/// memory stays constant; a failure then cuts the download short.
async fn export_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let view = View::parse(raw.as_deref());
    let csv = !raw.as_deref().unwrap_or("").split('&').any(|kv| kv == "format=json");
    let format = if csv { "csv" } else { "json" };
    let q = view.browse_query();
    let first = export_chunk(&app, &s.token, s.imp, &schema, &table, &q, format, None).await?;
    let name: String = table.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    let disposition = format!("attachment; filename=\"{name}.{format}\"");
    let (send, recv) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(EXPORT_AHEAD);
    let (token, imp) = (s.token.clone(), s.imp);
    tokio::spawn(async move {
        // JSON: "[", the chunks' objects joined by ",\n", "]".
        let mut wrote = false;
        let frame = |data: String, wrote: &mut bool| -> String {
            if csv || data.is_empty() {
                return data;
            }
            let sep = if *wrote { ",\n" } else { "\n" };
            *wrote = true;
            let mut out = String::with_capacity(data.len() + 2);
            out.push_str(sep);
            out.push_str(&data);
            out
        };
        let mut next = first.next;
        let mut data = frame(first.data, &mut wrote);
        if !csv {
            data.insert(0, '[');
        }
        loop {
            let last = next.is_none();
            if last && !csv {
                data.push_str("\n]\n");
            }
            if send.send(Ok(data)).await.is_err() || last {
                return; // the download was dropped, or that was the end
            }
            match export_chunk(&app, &token, imp, &schema, &table, &q, format, next.as_ref()).await {
                Ok(c) => {
                    next = c.next;
                    data = frame(c.data, &mut wrote);
                }
                Err(e) => {
                    let _ = send.send(Err(std::io::Error::other(format!("export stopped: {e:?}")))).await;
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(recv, |mut r| async move { r.recv().await.map(|c| (c, r)) });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if csv { "text/csv; charset=utf-8" } else { "application/json" }),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

// ------------------------------------------------------------ impersonation

#[derive(Deserialize)]
struct ViewAsForm {
    target: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// Where starting or stopping *View as…* returns to: the page it was
/// started from (`back`, the browser's path and query) when that is a path of
/// this dashboard, else the tables list. Only `/admin` or `/admin/...` is
/// taken, made of visible ASCII (a Location header's), with no `//`, no
/// backslash (browsers read `/\` as `//`, another host) and no `.`/`..`
/// segment, also percent-encoded (`/admin/%2e%2e/x` is `/x`).
pub fn back_to(back: &str) -> String {
    let fallback = || Url::Tables.path().to_string();
    if !back.bytes().all(|b| b.is_ascii_graphic()) {
        return fallback();
    }
    let path = back.split(['?', '#']).next().unwrap_or("");
    if path != "/admin" && !path.starts_with("/admin/") {
        return fallback();
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if decoded.contains("//") || decoded.contains('\\') || decoded.split('/').any(|seg| seg == "." || seg == "..") {
        return fallback();
    }
    back.to_string()
}

/// Start *View as…*: one impersonation per admin session (a running one
/// must be stopped first); the database requires the reason and records it.
async fn view_as_post(State(app): State<App>, s: Session, WebForm(f): WebForm<ViewAsForm>) -> Result<Response, WebError> {
    let id = app
        .db
        .with_session_as(&s.token, s.imp, async |tx, v| {
            if v.imp.is_some() {
                return Err(WebError::BadRequest("An impersonation is already running: stop it first.".into()));
            }
            imp::start(tx, f.target.trim(), &f.reason).await
        }, async |_, _| Ok(()))
        .await?
        .1;
    let mut resp = Redirect::to(&back_to(&f.back)).into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookies::set(cookies::IMPERSONATION, &id.to_string(), None));
    Ok(resp)
}

/// Options of the *View as…* field: the app users whose email or id matches
/// what was typed (`dashboard.list_users`, as the admin), then `anon` and
/// `service_role`.
#[derive(Template)]
#[template(
    source = "{% for (value, label) in users %}<option value=\"{{ value }}\">{{ label }}</option>{% endfor %}<option value=\"anon\"><option value=\"service_role\">",
    ext = "html"
)]
struct ViewAsOptions {
    users: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct ViewAsQuery {
    #[serde(default)]
    target: String,
}

async fn view_as_users_get(
    State(app): State<App>,
    s: Session,
    axum::extract::Query(q): axum::extract::Query<ViewAsQuery>,
) -> Result<Response, WebError> {
    let search = Some(q.target.trim()).filter(|t| !t.is_empty());
    let filter = crate::api::users::UserFilter {
        search,
        confirmed: None,
        role: None,
        sort: "email",
        descending: false,
        page_size: 10,
        after: None,
    };
    let users = app.db.with_session(&s.token, async |tx, _| crate::api::users::search(tx, &filter).await).await?;
    let users = users
        .into_iter()
        .map(|l| l.user)
        .map(|u| {
            let value = u.email.clone().unwrap_or_else(|| u.id.to_string());
            (value, format!("{} · {} · {}", u.email.as_deref().unwrap_or("(no email)"), u.role, u.id))
        })
        .collect();
    html(&ViewAsOptions { users })
}

#[derive(Deserialize)]
struct StopForm {
    #[serde(default)]
    back: String,
}

async fn stop_post(State(app): State<App>, s: Session, WebForm(f): WebForm<StopForm>) -> Result<Response, WebError> {
    if let Some(id) = s.imp {
        app.db
            .with_session(&s.token, async |tx, me| {
                if imp::live(tx, me, id).await?.is_some() {
                    imp::stop(tx, id).await?;
                }
                Ok(())
            })
            .await?;
    }
    let mut resp = Redirect::to(&back_to(&f.back)).into_response();
    forget_impersonation(&mut resp);
    Ok(resp)
}

// ------------------------------------------------------------ SQL console

#[derive(Template)]
#[template(path = "tables/sql_partial.html")]
struct SqlPartial {
    /// The session's CSRF token for the forms' `_csrf` field.
    csrf: String,
    sql: String,
    impersonating: bool,
    viewer: String,
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
    capped: bool,
    cap: usize,
    ran: bool,
    error: Option<String>,
    /// Where *View as…* returns: this console.
    here: &'static str,
}

fn sql_result(rows: Vec<Box<serde_json::value::RawValue>>) -> (Vec<String>, Vec<Vec<Cell>>, bool) {
    let capped = rows.len() > QUERY_CAP;
    let parsed: Vec<RawRow> = rows.iter().take(QUERY_CAP).filter_map(|r| serde_json::from_str(r.get()).ok()).collect();
    let mut columns: Vec<String> = Vec::new();
    for r in &parsed {
        for (k, _) in &r.0 {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let cells = parsed.iter().map(|r| columns.iter().map(|c| cell(c, r.get(c), None)).collect()).collect();
    (columns, cells, capped)
}

async fn sql_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    section_page(&app, &s, hx.0, "SQL as user", async |_, v| {
        Ok(SqlPartial { csrf: s.csrf.clone(), sql: String::new(), impersonating: v.imp.is_some(), viewer: viewer_label(v), columns: vec![], rows: vec![], capped: false, cap: QUERY_CAP, ran: false, error: None, here: SQL_PATH })
    })
    .await
}

#[derive(Deserialize)]
struct SqlForm {
    sql: String,
}

/// Run one statement through `dashboard.query_as` (it needs a running
/// impersonation: the statement runs as that user, RLS applies). The
/// console's own transaction is the admin's: query_as switches and restores
/// the role itself.
async fn sql_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<SqlForm>) -> Result<Response, WebError> {
    let ran = match s.imp {
        Some(id) => Some(app.db.with_session(&s.token, async |tx, _| imp::query_as(tx, id, &f.sql).await).await),
        None => None,
    };
    let (columns, rows, capped, error) = match ran {
        Some(Ok(r)) => {
            let (c, r, capped) = sql_result(r);
            (c, r, capped, None)
        }
        Some(Err(WebError::BadRequest(m))) | Some(Err(WebError::Denied(m))) | Some(Err(WebError::NotFound(m))) => (vec![], vec![], false, Some(m)),
        Some(Err(WebError::Internal(m) | WebError::Cancelled(m))) => (vec![], vec![], false, Some(m.split_once(": ").map(|x| x.1.to_string()).unwrap_or(m))),
        Some(Err(e)) => return Err(e),
        None => (vec![], vec![], false, Some("Start “View as…” first: the console runs statements as the impersonated user.".into())),
    };
    let ran = error.is_none();
    section_page(&app, &s, hx.0, "SQL as user", async |_, v| {
        Ok(SqlPartial { csrf: s.csrf.clone(), sql: f.sql.clone(), impersonating: v.imp.is_some(), viewer: viewer_label(v), columns, rows, capped, cap: QUERY_CAP, ran, error, here: SQL_PATH })
    })
    .await
}
