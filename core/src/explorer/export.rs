//! `dashboard.export_rows` and `dashboard.count_rows` (issue 19): the view's
//! rows (the same filters, search and keyset order as `browse`) written in
//! chunks as COPY writes them, and the view's exact row count.
//!
//! The statements are built like browse's (see the parent module: catalog
//! identifiers quoted, every value bound, keyset conditions, never OFFSET).
//! The rows' text is made by the extension from each value's own type output
//! function (what COPY calls), then quoted here by COPY's CSV rules
//! ([`csv_field`]).

use serde_json::Value;

use super::{view_sql, Key, Params, Table, ViewSql, T};
use crate::error::{FbError, FbResult};

/// Most rows one `export_rows` call returns.
pub const MAX_EXPORT_ROWS: i32 = 100_000;
/// A chunk ends after the row that takes it past this many bytes (so a
/// chunk's size is bounded whatever the rows' width, and stays in memory).
pub const EXPORT_CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// COPY ... TO STDOUT (FORMAT csv): no header, NULL as nothing.
    Csv,
    /// One JSON object per row (`to_json` of the row), rows joined by ",\n".
    Json,
}

impl Format {
    pub fn parse(s: Option<&str>) -> FbResult<Format> {
        match s.unwrap_or("csv") {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(FbError::invalid(format!(
                "unknown export format \"{}\": use csv or json",
                super::shorten(other)
            ))),
        }
    }
}

pub fn check_export_rows(n: Option<i32>) -> FbResult<i32> {
    let n = n.unwrap_or(10_000);
    if !(1..=MAX_EXPORT_ROWS).contains(&n) {
        return Err(FbError::invalid(format!("max_rows must be between 1 and {MAX_EXPORT_ROWS} (got {n})")));
    }
    Ok(n)
}

/// The statement behind one `export_rows` call. Its result columns: the
/// `data_columns` values to write (every column of the table in order for
/// CSV; one `json` for JSON), then one column per keyset key (the next
/// cursor is made from the last written row's).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPlan {
    pub sql: String,
    pub params: Params,
    pub keys: Vec<Key>,
    pub data_columns: usize,
    pub format: Format,
    pub max_rows: i32,
}

#[allow(clippy::too_many_arguments)]
pub fn plan_export(
    t: &Table,
    filters: Option<&Value>,
    sort: Option<&Value>,
    search: Option<&str>,
    format: Option<&str>,
    after: Option<&Value>,
    max_rows: Option<i32>,
) -> FbResult<ExportPlan> {
    let format = Format::parse(format)?;
    let max_rows = check_export_rows(max_rows)?;
    let ViewSql { keys, params: p, where_all, .. } = view_sql(t, filters, sort, search, after)?;
    let mut select: Vec<String> = match format {
        Format::Csv => (0..t.columns.len()).map(|i| t.col_ref(i)).collect(),
        Format::Json => vec![format!("pg_catalog.to_json({T}.*)")],
    };
    let data_columns = select.len();
    select.extend(keys.iter().map(|k| k.expr.clone()));
    let order: Vec<String> = keys.iter().map(|k| k.order_sql(&k.expr)).collect();
    // LIMIT: the rows asked for and one more (whether a next chunk exists);
    // the extension fetches them through a cursor and may stop earlier.
    let sql = format!(
        "SELECT {} FROM {} AS {T}{where_all} ORDER BY {} LIMIT {}",
        select.join(", "),
        t.qualified(),
        order.join(", "),
        max_rows as i64 + 1
    );
    Ok(ExportPlan { sql, params: p, keys, data_columns, format, max_rows })
}

/// `SELECT count(*)` of the view (filters and search; no order, no cursor).
pub fn plan_count(t: &Table, filters: Option<&Value>, search: Option<&str>) -> FbResult<(String, Params)> {
    let v = view_sql(t, filters, None, search, None)?;
    Ok((format!("SELECT pg_catalog.count(*) FROM {} AS {T}{}", t.qualified(), v.where_filters), v.params))
}

/// One field as `COPY ... TO STDOUT (FORMAT csv)` writes it with its defaults
/// (delimiter `,`, quote and escape `"`, NULL as the empty string), from the
/// value's output-function text `v` (copyto.c, CopyAttributeOutCSV): quoted
/// when it is the NULL string (''), holds the delimiter, the quote, CR or LF,
/// or is `\.` in a single-column table (the old end-of-data marker); inside
/// quotes a quote is doubled. A NULL is written as nothing (the caller skips
/// this call).
pub fn csv_field(out: &mut Vec<u8>, v: &[u8], single_column: bool) {
    let quote = v.is_empty()
        || (single_column && v == b"\\.")
        || v.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r'));
    if !quote {
        out.extend_from_slice(v);
        return;
    }
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in v.iter().enumerate() {
        if c == b'"' {
            out.extend_from_slice(&v[start..=i]);
            out.push(b'"');
            start = i + 1;
        }
    }
    out.extend_from_slice(&v[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::super::tests::table;
    use super::*;
    use crate::error::Code;
    use serde_json::json;

    fn field(v: &str, single: bool) -> String {
        let mut out = Vec::new();
        csv_field(&mut out, v.as_bytes(), single);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_as_copy_does() {
        assert_eq!(field("plain", false), "plain");
        assert_eq!(field("", false), "\"\"");
        assert_eq!(field("a,b", false), "\"a,b\"");
        assert_eq!(field("say \"hi\"", false), "\"say \"\"hi\"\"\"");
        assert_eq!(field("a\nb", false), "\"a\nb\"");
        assert_eq!(field("a\rb", false), "\"a\rb\"");
        assert_eq!(field("\\.", true), "\"\\.\"");
        assert_eq!(field("\\.", false), "\\.");
        assert_eq!(field("x", true), "x");
        assert_eq!(field("{\"a b\",c}", false), "\"{\"\"a b\"\",c}\"");
        assert_eq!(field("ünï \\ '", false), "ünï \\ '");
    }

    #[test]
    fn export_plan_is_keyset_and_binds_values() {
        let t = table();
        let evil = "x'; DROP TABLE users; --";
        let p = plan_export(
            &t,
            Some(&json!([{"column": "name", "op": "eq", "value": evil}])),
            Some(&json!([{"column": "age", "dir": "desc"}])),
            Some(evil),
            Some("csv"),
            None,
            Some(500),
        )
        .unwrap();
        assert!(!p.sql.contains("DROP") && !p.sql.contains("OFFSET"));
        assert!(p.sql.ends_with("LIMIT 501"), "{}", p.sql);
        assert_eq!(p.data_columns, 4);
        assert_eq!(p.keys.len(), 2);
        assert!(p.sql.contains("ORDER BY _fb_t.\"age\" DESC NULLS FIRST, _fb_t.\"id\" ASC NULLS LAST"), "{}", p.sql);
        let j = plan_export(&t, None, None, None, Some("json"), None, None).unwrap();
        assert_eq!(j.data_columns, 1);
        assert!(j.sql.starts_with("SELECT pg_catalog.to_json(_fb_t.*), _fb_t.\"id\" FROM"), "{}", j.sql);
        // the cursor as browse makes it
        let c = super::super::make_cursor(&j.keys, vec![Some("7".into())]);
        let j = plan_export(&t, None, None, None, Some("json"), Some(&c), None).unwrap();
        assert!(j.sql.contains("ROW(_fb_t.\"id\") OPERATOR(pg_catalog.>) ROW($1::pg_catalog.text::integer)"), "{}", j.sql);
    }

    #[test]
    fn export_refuses_bad_arguments() {
        let t = table();
        for (f, n) in [(Some("xml"), None), (Some("csv'; --"), None), (None, Some(0)), (None, Some(100_001)), (None, Some(-1))] {
            let e = plan_export(&t, None, None, None, f, None, n).unwrap_err();
            assert_eq!(e.code, Code::InvalidParameter, "{f:?} {n:?}");
        }
        assert!(plan_export(&t, None, None, None, None, Some(&json!({"after": ["1"], "order": "x"})), None).is_err());
    }

    #[test]
    fn count_plan_has_filters_and_search_only() {
        let t = table();
        let (sql, p) = plan_count(&t, Some(&json!([{"column": "age", "op": "gt", "value": 3}])), Some("al")).unwrap();
        assert!(sql.starts_with("SELECT pg_catalog.count(*) FROM \"public\".\"My \"\"T\"\"\" AS _fb_t WHERE"), "{sql}");
        assert_eq!(p.0, vec![Some("3".into()), Some("%al%".into())]);
        let (sql, _) = plan_count(&t, None, None).unwrap();
        assert!(!sql.contains("WHERE"));
    }
}
