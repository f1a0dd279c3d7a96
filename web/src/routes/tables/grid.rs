use super::*;

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
    /// The SQL that would let the dashboard open it (not when impersonating:
    /// the user's own grants and policies are the point then).
    fix: Option<String>,
    impersonating: bool,
}

/// The statement that would give `grantee` what the refusal `message` says is
/// missing: USAGE on the schema, else SELECT on the table (names quoted).
pub fn denied_fix(message: &str, schema: &str, table: &str, grantee: &str) -> String {
    use fluxbase_core::explorer::quote_ident;
    if message.contains("for schema") {
        format!("GRANT USAGE ON SCHEMA {} TO {grantee};", quote_ident(schema))
    } else {
        format!("GRANT SELECT ON {}.{} TO {grantee};", quote_ident(schema), quote_ident(table))
    }
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
    /// A *View as…* runs: each row gets a Why? (issue 32).
    why: bool,
}

impl GridPartial {
    /// What a row's Why? posts (htmx `hx-vals`): its key and the command.
    fn why_vals(&self, pk: &str) -> String {
        json!({"key": pk, "command": "select"}).to_string()
    }
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
pub(super) fn pk_of(row: &RawRow, pk_cols: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for c in pk_cols {
        let v = row.get(c).and_then(raw_text).map(Value::String).unwrap_or(Value::Null);
        m.insert(c.clone(), v);
    }
    Value::Object(m)
}

pub(super) fn read_only_reason(info: Option<&TableInfo>) -> Option<String> {
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

fn grid(schema: &str, table: &str, view: &View, l: &Loaded, viewer: String, csrf: &str, why: bool) -> GridPartial {
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
        why,
    }
}

pub(super) async fn table_get(
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
            // The viewer may not read it: say why inside the section (under
            // the banner when impersonating: its Stop comes back here), with
            // the SQL that would let them.
            Err(WebError::Denied(message)) => {
                let (schema, table, viewer) = (schema.clone(), table.clone(), viewer_label(v));
                let grantee = match &v.imp {
                    Some(_) => None,
                    None => Some("fluxbase_dashboard"),
                };
                let fix = grantee.map(|g| denied_fix(&message, &schema, &table, g));
                let impersonating = v.imp.is_some();
                return Ok(TableOrDenied { page: Err(DeniedPartial { schema, table, viewer, message, fix, impersonating }) });
            }
            l => l?,
        };
        let indexes = ex::indexes(tx, &schema, &table).await?;
        let policies = ex::policies(tx, &schema, &table).await?;
        let grid = grid(&schema, &table, &view, &l, viewer_label(v), &s.csrf, v.imp.is_some());
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
pub(super) async fn grid_get(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let view = View::parse(raw.as_deref());
    section_page(&app, &s, true, "", async |tx, v| {
        let l = load_grid(tx, &schema, &table, &view).await?;
        Ok(grid(&schema, &table, &view, &l, viewer_label(v), &s.csrf, v.imp.is_some()))
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
pub(super) async fn count_get(
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
pub(super) async fn walk(tx: &Tx<'_>, schema: &str, table: &str, view: &View, mut each: impl FnMut(&RawRow)) -> Result<(), WebError> {
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
pub(super) struct CellQuery {
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
pub(super) fn choice_value(choice: &str) -> Result<Value, WebError> {
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

pub(super) fn parse_pk(pk: &str) -> Result<Value, WebError> {
    serde_json::from_str(pk).map_err(|_| WebError::BadRequest("invalid row key".into()))
}

/// The one row with primary key `pk`, as the viewer sees it.
pub(super) async fn row_by_pk(tx: &Tx<'_>, schema: &str, table: &str, pk: &Value) -> Result<Option<RawRow>, WebError> {
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
pub(super) async fn cell_get(
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
pub(super) struct CellForm {
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
pub(super) async fn cell_post(
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
