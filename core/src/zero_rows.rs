//! "My UPDATE as this user changed 0 rows: why?" (issue 32, item 2): the
//! plain rules of `dashboard.explain_zero_rows` (extension
//! `src/rls/zero_rows.rs`).
//!
//! The extension parse-analyses the statement with PostgreSQL's parser and
//! takes only its WHERE, deparsed by PostgreSQL after every function and
//! operator in it was checked (built-in, in pg_catalog, not volatile, not one
//! of `refused_builtin`). This module bounds the answer (`max_keys`,
//! `COUNT_CAP`) and builds the two searches run in the admin's own view: the
//! first keys that WHERE matches, and a bounded count. Identifiers come from
//! the catalog and are quoted here; the WHERE text is PostgreSQL's own
//! deparse, never the caller's text; values stay bound parameters.

use crate::explorer::quote_ident;
use crate::{FbError, FbResult};

/// How many keys are asked for when the caller does not say.
pub const DEFAULT_KEYS: i32 = 3;
/// The most keys (each explained with explain_access) one call gives.
pub const MAX_KEYS: i32 = 10;
/// The count stops here ("at least 1000 rows").
pub const COUNT_CAP: i64 = 1000;
/// How long both searches together may take (a statement timeout of their own).
pub const SEARCH_TIMEOUT_MS: i32 = 2000;

/// `max_keys` as given (NULL: the default), within 1..=MAX_KEYS.
pub fn check_max_keys(n: Option<i32>) -> FbResult<usize> {
    let n = n.unwrap_or(DEFAULT_KEYS);
    if !(1..=MAX_KEYS).contains(&n) {
        return Err(FbError::invalid(format!("max_keys must be between 1 and {MAX_KEYS}")));
    }
    Ok(n as usize)
}

/// Whether `sql` is worth asking about: an UPDATE or DELETE (or a WITH that
/// may hold one), by its first word. The extension decides; this only spares
/// the web a call (and an audit row) for every SELECT that found nothing.
pub fn may_explain(sql: &str) -> bool {
    match crate::sqlguard::tokenize(sql).ok().and_then(|t| t.into_iter().next()) {
        Some(crate::sqlguard::Tok::Word(w)) => matches!(w.as_str(), "update" | "delete" | "with"),
        _ => false,
    }
}

/// Built-in (pg_catalog) functions a WHERE may not call although they are
/// STABLE or IMMUTABLE: they read whole tables, schemas or databases by name
/// (`table_to_xml` and its family; the search runs with the owner's rights,
/// which for a superuser's table include reading every table), or are among
/// what query_as refuses anyway (`sqlguard::forbidden_name`).
pub fn refused_builtin(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("_to_xml") || n.ends_with("_to_xmlschema") || n.ends_with("_to_xml_and_xmlschema")
        || crate::sqlguard::forbidden_name(&n)
}

/// The table searched, as the statement named it.
pub struct Target<'a> {
    pub schema: &'a str,
    pub name: &'a str,
    /// `UPDATE ONLY t` / `DELETE FROM ONLY t`: not the inheritance children.
    pub only: bool,
    /// The alias the deparsed WHERE refers to the table by.
    pub alias: &'a str,
}

impl Target<'_> {
    fn from(&self) -> String {
        format!(
            "{}{}.{} AS {}",
            if self.only { "ONLY " } else { "" },
            quote_ident(self.schema),
            quote_ident(self.name),
            quote_ident(self.alias)
        )
    }
}

fn where_clause(qual: Option<&str>) -> String {
    match qual {
        Some(q) => format!(" WHERE ({q})"),
        None => String::new(),
    }
}

/// The first `max_keys` primary keys (in key order) the WHERE matches, each
/// as a JSON object `{column: value}`.
pub fn keys_sql(t: &Target, pk: &[String], qual: Option<&str>, max_keys: usize) -> FbResult<String> {
    if pk.is_empty() {
        return Err(FbError::invalid("the table has no primary key: rows can't be named by key"));
    }
    let cols: Vec<String> = pk.iter().map(|c| format!("{}.{}", quote_ident(t.alias), quote_ident(c))).collect();
    let cols = cols.join(", ");
    Ok(format!(
        "SELECT pg_catalog.to_jsonb(_fb_k) FROM (SELECT {cols} FROM {}{} ORDER BY {cols} LIMIT {max_keys}) AS _fb_k",
        t.from(),
        where_clause(qual)
    ))
}

/// How many rows the WHERE matches, counted up to COUNT_CAP + 1.
pub fn count_sql(t: &Target, qual: Option<&str>) -> String {
    format!(
        "SELECT pg_catalog.count(*)::pg_catalog.int8 FROM (SELECT 1 FROM {}{} LIMIT {}) AS _fb_c",
        t.from(),
        where_clause(qual),
        COUNT_CAP + 1
    )
}

/// "N rows" / "at least 1000 rows" for a count from count_sql.
pub fn count_label(n: i64) -> String {
    match n {
        n if n > COUNT_CAP => format!("more than {COUNT_CAP} rows"),
        1 => "1 row".into(),
        n => format!("{n} rows"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(only: bool) -> Target<'static> {
        Target { schema: "we\"ird", name: "t'; x", only, alias: "t'; x" }
    }

    #[test]
    fn max_keys_bounds() {
        assert_eq!(check_max_keys(None).unwrap(), 3);
        assert_eq!(check_max_keys(Some(1)).unwrap(), 1);
        assert_eq!(check_max_keys(Some(10)).unwrap(), 10);
        assert!(check_max_keys(Some(0)).is_err());
        assert!(check_max_keys(Some(11)).is_err());
        assert!(check_max_keys(Some(-5)).is_err());
    }

    #[test]
    fn what_is_worth_asking_about() {
        for q in ["UPDATE t SET a = 1 RETURNING a", "  delete from t returning *", "-- c\nUpdate t set a = 1",
                  "/* x */ WITH d AS (DELETE FROM t RETURNING 1) SELECT 1"] {
            assert!(may_explain(q), "{q}");
        }
        for q in ["SELECT 1", "INSERT INTO t VALUES (1) RETURNING 1", "", "'update'", "(SELECT 1)", "\"update\" x"] {
            assert!(!may_explain(q), "{q}");
        }
    }

    #[test]
    fn refused_builtins() {
        for f in ["table_to_xml", "TABLE_TO_XMLSCHEMA", "schema_to_xml_and_xmlschema", "database_to_xml",
                  "query_to_xml", "cursor_to_xml", "set_config", "pg_sleep", "lo_get", "dblink_exec", "pg_read_file"] {
            assert!(refused_builtin(f), "{f}");
        }
        for f in ["lower", "texteq", "int4eq", "jsonb_path_exists", "xmlexists", "now", "current_setting"] {
            assert!(!refused_builtin(f), "{f}");
        }
    }

    #[test]
    fn searches_quote_every_identifier() {
        let q = keys_sql(&t(false), &["k \"1".into(), "k2".into()], Some("(k2 = $1)"), 3).unwrap();
        assert_eq!(
            q,
            "SELECT pg_catalog.to_jsonb(_fb_k) FROM (SELECT \"t'; x\".\"k \"\"1\", \"t'; x\".\"k2\" \
             FROM \"we\"\"ird\".\"t'; x\" AS \"t'; x\" WHERE ((k2 = $1)) \
             ORDER BY \"t'; x\".\"k \"\"1\", \"t'; x\".\"k2\" LIMIT 3) AS _fb_k"
        );
        assert_eq!(
            count_sql(&t(true), None),
            "SELECT pg_catalog.count(*)::pg_catalog.int8 FROM (SELECT 1 FROM ONLY \"we\"\"ird\".\"t'; x\" AS \"t'; x\" LIMIT 1001) AS _fb_c"
        );
        assert!(keys_sql(&t(false), &[], None, 3).is_err());
    }

    #[test]
    fn count_labels() {
        assert_eq!(count_label(0), "0 rows");
        assert_eq!(count_label(1), "1 row");
        assert_eq!(count_label(1000), "1000 rows");
        assert_eq!(count_label(1001), "more than 1000 rows");
    }
}
