//! The table explorer: `dashboard.list_tables`, `describe_table`,
//! `table_indexes`, `table_policies`, `column_choices`, `browse`, `export_rows`, `count_rows`,
//! `update_row`, `insert_rows`,
//! `update_rows`, `delete_rows`, `watch_table`, `unwatch_table` (extension
//! `src/explorer/mod.rs`). A table is named by schema and name, both bound; the
//! database turns them into a regclass (`format('%I.%I')`), so no name is
//! ever pasted into SQL.
//!
//! `browse` rows are read as raw JSON text per column (`RawRow`): a numeric
//! keeps every digit and the export can rebuild each value's text exactly.

use fluxbase_core::explorer::quote_ident;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::rows;
use crate::db::Tx;
use crate::error::WebError;

/// The regclass of `$1`, bound as text: the table's schema and name, each
/// double-quoted here (`qualified`), read by regclass's own input function.
/// A plain cast of a parameter, because while an impersonation is applied the
/// extension accepts a client's API call only with plain arguments (constants,
/// parameters, built-in casts of them: src/runtime/confine.rs).
const REL: &str = "$1::pg_catalog.text::pg_catalog.regclass";

/// `"schema"."table"`, each part always quoted (the extension's own
/// `quote_ident`): a value bound as `$1`, never pasted into SQL.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// Largest page `browse` takes (core/src/explorer/mod.rs MAX_PAGE_SIZE) and the
/// most keys an edit function takes at once (MAX_BATCH).
pub const MAX_PAGE: i32 = 1000;
pub const MAX_BATCH: usize = 1000;

#[derive(Deserialize, Clone, Debug)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub kind: String,
    pub row_estimate: i64,
    pub total_bytes: i64,
    #[serde(default)]
    pub rls_enabled: bool,
    pub primary_key: Vec<String>,
    pub comment: Option<String>,
    /// `on`, `forced` or `off` (issue 30: `dashboard.table_overview`).
    #[serde(default)]
    pub rls: String,
    #[serde(default)]
    pub policies: i32,
    #[serde(default)]
    pub owner: String,
    /// The role the explorer reads and edits it as: its owner (or
    /// fluxbase_explorer for a superuser's table) in the admin's own view,
    /// else the viewer's role.
    #[serde(default)]
    pub runs_as: String,
    #[serde(default)]
    pub readable: bool,
}

/// Every table the viewer may open (`dashboard.table_overview`): in the
/// admin's own view every table of the user schemas, with its owner, RLS
/// state and policy count.
pub async fn list_tables(tx: &Tx<'_>, schema: Option<&str>) -> Result<Vec<TableInfo>, WebError> {
    let mut tables: Vec<TableInfo> = rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.table_overview($1) t", &[&schema]).await?;
    for t in &mut tables {
        t.rls_enabled = t.rls != "off";
    }
    Ok(tables)
}

#[derive(Deserialize, Clone, Debug)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub typ: String,
    pub nullable: bool,
    pub default: Option<String>,
    pub primary_key: bool,
    pub generated: Option<String>,
    pub foreign_key: Option<String>,
}

pub async fn describe(tx: &Tx<'_>, schema: &str, table: &str) -> Result<Vec<ColumnInfo>, WebError> {
    rows(tx, &format!("SELECT pg_catalog.to_json(t) FROM dashboard.describe_table({REL}) t"), &[&qualified(schema, table)]).await
}

#[derive(Deserialize, Clone, Debug)]
pub struct IndexInfo {
    pub name: String,
    pub definition: String,
    pub is_primary: bool,
    pub is_unique: bool,
}

pub async fn indexes(tx: &Tx<'_>, schema: &str, table: &str) -> Result<Vec<IndexInfo>, WebError> {
    rows(tx, &format!("SELECT pg_catalog.to_json(t) FROM dashboard.table_indexes({REL}) t"), &[&qualified(schema, table)]).await
}

#[derive(Deserialize, Clone, Debug)]
pub struct PolicyInfo {
    pub name: String,
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using_expr: Option<String>,
    pub check_expr: Option<String>,
}

pub async fn policies(tx: &Tx<'_>, schema: &str, table: &str) -> Result<Vec<PolicyInfo>, WebError> {
    rows(tx, &format!("SELECT pg_catalog.to_json(t) FROM dashboard.table_policies({REL}) t"), &[&qualified(schema, table)]).await
}

/// The labels of each enum column (domains over enums too), in the enum's
/// order: `dashboard.column_choices`.
pub async fn choices(tx: &Tx<'_>, schema: &str, table: &str) -> Result<Vec<(String, Vec<String>)>, WebError> {
    let rs = super::query(tx, &format!("SELECT column_name, labels FROM dashboard.column_choices({REL})"), &[&qualified(schema, table)]).await?;
    Ok(rs.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One row of `browse`: (column, its JSON text) in the order `to_jsonb` gave.
#[derive(Debug)]
pub struct RawRow(pub Vec<(String, Box<RawValue>)>);

impl RawRow {
    pub fn get(&self, column: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == column).map(|(_, v)| &**v)
    }
}

impl<'de> Deserialize<'de> for RawRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawRow, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawRow, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(RawRow(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Refuse with 400 what no column name or value can be: an empty sort or
/// filter column (`s=-`), a NUL anywhere (PostgreSQL text cannot hold it).
/// An unknown column is the extension's 42703, also a 400 (`error.rs`).
pub fn check_query(q: &Query) -> Result<(), WebError> {
    fn walk(v: &Value, key: Option<&str>) -> Result<(), WebError> {
        match v {
            Value::String(s) if s.contains('\0') => Err(WebError::BadRequest("a filter or search value cannot contain a NUL character".into())),
            Value::String(s) if key == Some("column") && s.is_empty() => {
                Err(WebError::BadRequest("a sort or filter names no column".into()))
            }
            Value::Array(a) => a.iter().try_for_each(|x| walk(x, None)),
            Value::Object(o) => o.iter().try_for_each(|(k, x)| walk(x, Some(k))),
            _ => Ok(()),
        }
    }
    walk(&q.filters, None)?;
    walk(&q.sort, None)?;
    if q.search.as_deref().is_some_and(|s| s.contains('\0')) {
        return Err(WebError::BadRequest("the search cannot contain a NUL character".into()));
    }
    Ok(())
}

/// One page of `browse`.
#[derive(Deserialize, Debug)]
pub struct Page {
    pub rows: Vec<RawRow>,
    pub next_cursor: Option<Value>,
    pub estimated_total: i64,
}

/// What a view asks `browse` for (filters and sort in browse's JSON shapes).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub filters: Value,
    pub sort: Value,
    pub search: Option<String>,
}

pub async fn browse(
    tx: &Tx<'_>,
    schema: &str,
    table: &str,
    q: &Query,
    page_size: i32,
    after: Option<&Value>,
) -> Result<Page, WebError> {
    check_query(q)?;
    let row = tx
        .query_one(
            &format!("SELECT dashboard.browse({REL}, $2, $3, $4, $5, $6)"),
            &[&qualified(schema, table), &q.filters, &q.sort, &q.search, &page_size, &after],
        )
        .await?;
    let text: JsonbText = row.get(0);
    serde_json::from_str(&text.0).map_err(|e| WebError::internal(format!("unexpected answer from browse: {e}")))
}

/// One chunk of `dashboard.export_rows`: `data` (CSV as COPY writes it, or
/// the JSON objects of the rows joined by ",\n"), its row count, and the
/// cursor of the next chunk (None after the last).
pub struct ExportChunk {
    pub data: String,
    pub rows: i32,
    pub next: Option<Value>,
}

/// Rows an export chunk may hold (the extension also ends a chunk after
/// about 1 MiB of text, whatever the rows' width).
pub const EXPORT_ROWS: i32 = 100_000;

pub async fn export_rows(
    tx: &Tx<'_>,
    schema: &str,
    table: &str,
    q: &Query,
    format: &str,
    after: Option<&Value>,
) -> Result<ExportChunk, WebError> {
    check_query(q)?;
    let row = tx
        .query_one(
            &format!("SELECT data, row_count, next_cursor FROM dashboard.export_rows({REL}, $2, $3, $4, $5, $6, $7)"),
            &[&qualified(schema, table), &q.filters, &q.sort, &q.search, &format, &after, &EXPORT_ROWS],
        )
        .await?;
    Ok(ExportChunk { data: row.get(0), rows: row.get(1), next: row.get(2) })
}

/// The exact number of rows of the view (filters and search), as the viewer.
pub async fn count_rows(tx: &Tx<'_>, schema: &str, table: &str, q: &Query) -> Result<i64, WebError> {
    check_query(q)?;
    let row = tx
        .query_one(&format!("SELECT dashboard.count_rows({REL}, $2, $3)"), &[&qualified(schema, table), &q.filters, &q.search])
        .await?;
    Ok(row.get(0))
}

pub async fn update_row(tx: &Tx<'_>, schema: &str, table: &str, pk: &Value, changes: &Value) -> Result<Value, WebError> {
    let row = tx
        .query_one(&format!("SELECT dashboard.update_row({REL}, $2, $3)"), &[&qualified(schema, table), pk, changes])
        .await?;
    Ok(row.get(0))
}

pub async fn insert_rows(tx: &Tx<'_>, schema: &str, table: &str, new_rows: &Value) -> Result<i32, WebError> {
    let row = tx.query_one(&format!("SELECT dashboard.insert_rows({REL}, $2)"), &[&qualified(schema, table), new_rows]).await?;
    Ok(row.get(0))
}

pub async fn update_rows(tx: &Tx<'_>, schema: &str, table: &str, pks: &Value, changes: &Value) -> Result<i32, WebError> {
    let row = tx
        .query_one(&format!("SELECT dashboard.update_rows({REL}, $2, $3)"), &[&qualified(schema, table), pks, changes])
        .await?;
    Ok(row.get(0))
}

pub async fn delete_rows(tx: &Tx<'_>, schema: &str, table: &str, pks: &Value) -> Result<i32, WebError> {
    let row = tx.query_one(&format!("SELECT dashboard.delete_rows({REL}, $2)"), &[&qualified(schema, table), pks]).await?;
    Ok(row.get(0))
}

pub async fn watch(tx: &Tx<'_>, schema: &str, table: &str, on: bool) -> Result<(), WebError> {
    let f = if on { "watch_table" } else { "unwatch_table" };
    tx.execute(&format!("SELECT dashboard.{f}({REL})"), &[&qualified(schema, table)]).await?;
    Ok(())
}

/// A jsonb value read as its text, unparsed (jsonb's binary form is a version
/// byte, 1, and the text), so that `RawRow` keeps every digit of a numeric.
pub struct JsonbText(pub String);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonbText {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        match raw.split_first() {
            Some((1, text)) => Ok(JsonbText(std::str::from_utf8(text)?.to_owned())),
            _ => Err("unsupported jsonb version".into()),
        }
    }
    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSONB
    }
}
