//! Table explorer: turning the caller's filters, sort, search, cursor and edits
//! (JSON) into SQL.
//!
//! The rule that makes this safe: nothing the caller sends is pasted into SQL.
//! * identifiers (schema, table, column names) come from the catalog (the
//!   extension reads them from pg_class/pg_attribute for the regclass) and are
//!   quoted here with [`quote_ident`]; a column the caller names is only used to
//!   *look up* a catalog column, never written out as given;
//! * type names come from the catalog too (`format_type`, which quotes);
//! * every value is a bound `$n` parameter passed as text and cast to the
//!   column's catalog type: `$3::text::integer`;
//! * the only numbers written into the SQL are ones this module produced
//!   (page size, already range-checked).
//!
//! Pagination is keyset pagination on (sort keys, row key): the row key is the
//! primary key; a table without one uses `ctid` (`tableoid, ctid` for a
//! partitioned table; a view or foreign table uses the row's whole JSON text).
//! `ctid` is stable while a row is not updated: a row updated between two page
//! loads may move and be shown again or skipped, as with any ctid paging.

use serde_json::{json, Map, Value};

use crate::error::{check_len, Code, FbError, FbResult};

/// Export and exact count (issue 19): their plans and COPY's CSV rules.
pub mod export;

/// The alias every generated query gives the browsed table. Whole-row
/// references are written `_fb_t.*`, so a column named `_fb_t` can't capture them.
const T: &str = "_fb_t";

pub const MAX_PAGE_SIZE: i32 = 1000;
/// Tables with fewer rows than this (per pg_class.reltuples, or never analysed)
/// get an exact, filtered count as `estimated_total`.
pub const EXACT_COUNT_BELOW: f64 = 10_000.0;
/// At most this many rows/keys in one edit call, and values in an `in` filter.
pub const MAX_BATCH: usize = 1000;

/// Quote an identifier the way Postgres's quote_ident does for names that need
/// it, but always: `"name"` with every `"` doubled. Always quoting is never
/// wrong and keeps capitals, spaces and keywords intact.
pub fn quote_ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for ch in name.chars() {
        if ch == '"' {
            s.push('"');
        }
        s.push(ch);
    }
    s.push('"');
    s
}

/// Quote a string literal as Postgres's quote_literal does: `'...'` with `'`
/// doubled, and the `E'...'` form (backslashes doubled) when it holds a backslash.
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    if s.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for ch in s.chars() {
        if ch == '\'' || ch == '\\' {
            out.push(ch);
        }
        out.push(ch);
    }
    out.push('\'');
    out
}

/// One column of the table, as read from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The type to cast bound values to (from format_type: already quoted).
    pub cast_type: String,
    pub type_oid: i64,
    pub typmod: i32,
    pub not_null: bool,
    pub generated: bool,
    /// GENERATED ALWAYS AS IDENTITY: may not be given a value.
    pub identity_always: bool,
    /// String category (text, varchar, char, citext, ...): what `search` looks at.
    pub text_like: bool,
    /// The schema whose comparison operators the generated SQL names for this
    /// column: pg_catalog, or the schema of a user-defined base type (citext,
    /// ...). Operators are always written `OPERATOR(schema.op)`, so one
    /// planted in a schema of the caller's search path is never picked.
    pub op_schema: String,
}

/// `OPERATOR(schema.op)`.
pub fn op(schema: &str, o: &str) -> String {
    if schema == "pg_catalog" {
        format!("OPERATOR(pg_catalog.{o})")
    } else {
        format!("OPERATOR({}.{o})", quote_ident(schema))
    }
}

/// `OPERATOR(pg_catalog.op)`.
pub fn pg_op(o: &str) -> String {
    op("pg_catalog", o)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// pg_class.relkind: r, p, v, m, f.
    pub kind: char,
    pub columns: Vec<Column>,
    /// Indexes into `columns`, in primary-key order; empty when there is none.
    pub pk: Vec<usize>,
    pub reltuples: f64,
}

fn field<'a>(v: &'a Value, k: &str) -> FbResult<&'a Value> {
    v.get(k).ok_or_else(|| FbError::invalid(format!("catalog description lacks '{k}'")))
}

fn str_field(v: &Value, k: &str) -> FbResult<String> {
    field(v, k)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| FbError::invalid(format!("catalog field '{k}' is not text")))
}

impl Table {
    /// Build from the JSON the extension's catalog query returns:
    /// `{schema, name, kind, reltuples, columns: [{name, cast_type, type_oid,
    /// typmod, not_null, generated, identity_always, text_like}], pk: [names]}`.
    pub fn from_catalog(v: &Value) -> FbResult<Table> {
        let mut columns = Vec::new();
        for c in field(v, "columns")?.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            columns.push(Column {
                name: str_field(c, "name")?,
                cast_type: str_field(c, "cast_type")?,
                type_oid: c.get("type_oid").and_then(Value::as_i64).unwrap_or(0),
                typmod: c.get("typmod").and_then(Value::as_i64).unwrap_or(-1) as i32,
                not_null: c.get("not_null").and_then(Value::as_bool).unwrap_or(false),
                generated: c.get("generated").and_then(Value::as_bool).unwrap_or(false),
                identity_always: c.get("identity_always").and_then(Value::as_bool).unwrap_or(false),
                text_like: c.get("text_like").and_then(Value::as_bool).unwrap_or(false),
                op_schema: c.get("op_schema").and_then(Value::as_str).unwrap_or("pg_catalog").to_owned(),
            });
        }
        let mut t = Table {
            schema: str_field(v, "schema")?,
            name: str_field(v, "name")?,
            kind: str_field(v, "kind")?.chars().next().unwrap_or('r'),
            columns,
            pk: vec![],
            reltuples: v.get("reltuples").and_then(Value::as_f64).unwrap_or(-1.0),
        };
        if let Some(pk) = v.get("pk").and_then(Value::as_array) {
            for p in pk {
                let name = p.as_str().unwrap_or_default();
                let i = t
                    .columns
                    .iter()
                    .position(|c| c.name == name)
                    .ok_or_else(|| FbError::invalid("primary key column missing from the column list"))?;
                t.pk.push(i);
            }
        }
        Ok(t)
    }

    /// `"schema"."table"`, quoted.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// The display name used in messages and the audit log: schema.table.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Look up a column the caller named. Unknown names are refused (42703)
    /// with the name shown (shortened; it is the caller's own text).
    pub fn column(&self, name: &str) -> FbResult<usize> {
        self.columns.iter().position(|c| c.name == name).ok_or_else(|| {
            FbError::new(
                Code::UndefinedColumn,
                format!("column \"{}\" does not exist in {}", shorten(name), self.display()),
            )
        })
    }

    fn col_ref(&self, i: usize) -> String {
        format!("{T}.{}", quote_ident(&self.columns[i].name))
    }
}

/// The caller's text, cut to a length fit for an error message.
pub fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// A JSON value as the text that is bound for it (NULL for JSON null).
/// Strings are taken as they are; numbers and booleans in their JSON spelling;
/// objects and arrays as JSON text (for json/jsonb columns).
pub fn json_to_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// Bound parameters, all text; each use is cast to its column's type.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Params(pub Vec<Option<String>>);

impl Params {
    /// Bind `v` and return `$n::text::<cast>`.
    pub fn bind(&mut self, v: Option<String>, cast: &str) -> FbResult<String> {
        if let Some(s) = &v {
            if s.contains('\0') {
                return Err(FbError::invalid("values must not contain NUL characters"));
            }
        }
        self.0.push(v);
        Ok(format!("${}::pg_catalog.text::{}", self.0.len(), cast))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Like,
    Ilike,
    In,
    IsNull,
    NotNull,
}

impl Op {
    pub fn parse(s: &str) -> FbResult<Op> {
        Ok(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "in" => Op::In,
            "is_null" => Op::IsNull,
            "not_null" => Op::NotNull,
            other => {
                return Err(FbError::invalid(format!(
                    "unknown filter op \"{}\": use eq, neq, lt, lte, gt, gte, like, ilike, in, is_null or not_null",
                    shorten(other)
                )))
            }
        })
    }
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Neq => "<>",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Like => "~~",
            Op::Ilike => "~~*",
            _ => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: usize,
    pub op: Op,
    pub values: Vec<Option<String>>,
}

/// Parse `[{"column","op","value"}]`.
pub fn parse_filters(t: &Table, v: Option<&Value>) -> FbResult<Vec<Filter>> {
    let items = match v {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(FbError::invalid("filters must be a JSON array of {\"column\", \"op\", \"value\"}")),
    };
    if items.len() > 100 {
        return Err(FbError::invalid("too many filters (at most 100)"));
    }
    let mut out = Vec::new();
    for f in items {
        let obj = f
            .as_object()
            .ok_or_else(|| FbError::invalid("each filter must be an object {\"column\", \"op\", \"value\"}"))?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "column" | "op" | "value") {
                return Err(FbError::invalid(format!("unknown filter field \"{}\"", shorten(k))));
            }
        }
        let col_name = obj
            .get("column")
            .and_then(Value::as_str)
            .ok_or_else(|| FbError::invalid("a filter needs \"column\" (text)"))?;
        let column = t.column(col_name)?;
        let op = Op::parse(
            obj.get("op").and_then(Value::as_str).ok_or_else(|| FbError::invalid("a filter needs \"op\" (text)"))?,
        )?;
        let value = obj.get("value");
        let values = match op {
            Op::IsNull | Op::NotNull => vec![],
            Op::In => {
                let arr = value.and_then(Value::as_array).ok_or_else(|| {
                    FbError::invalid(format!("filter \"in\" on column \"{col_name}\" needs an array value"))
                })?;
                if arr.len() > MAX_BATCH {
                    return Err(FbError::invalid(format!("filter \"in\" takes at most {MAX_BATCH} values")));
                }
                arr.iter().map(json_to_text).collect()
            }
            _ => match value {
                None | Some(Value::Null) => {
                    return Err(FbError::invalid(format!(
                        "filter on column \"{}\" needs a non-null value (use is_null / not_null for NULL)",
                        shorten(col_name)
                    )))
                }
                Some(Value::Array(_)) | Some(Value::Object(_))
                    if matches!(op, Op::Like | Op::Ilike) =>
                {
                    return Err(FbError::invalid(format!("filter {col_name}: like/ilike take a text value")))
                }
                Some(v) => vec![json_to_text(v)],
            },
        };
        out.push(Filter { column, op, values });
    }
    Ok(out)
}

/// One sort key the caller asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SortSpec {
    pub column: usize,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Parse `[{"column", "dir": "asc"|"desc", "nulls": "first"|"last"}]` (also
/// plain column names). NULLs go where Postgres puts them by default: last
/// ascending, first descending.
pub fn parse_sort(t: &Table, v: Option<&Value>) -> FbResult<Vec<SortSpec>> {
    let items = match v {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(FbError::invalid("sort must be a JSON array of {\"column\", \"dir\"}")),
    };
    if items.len() > 32 {
        return Err(FbError::invalid("too many sort keys (at most 32)"));
    }
    let mut out: Vec<SortSpec> = Vec::new();
    for s in items {
        let (name, dir, nulls) = match s {
            Value::String(n) => (n.as_str(), None, None),
            Value::Object(o) => {
                for k in o.keys() {
                    if !matches!(k.as_str(), "column" | "dir" | "nulls") {
                        return Err(FbError::invalid(format!("unknown sort field \"{}\"", shorten(k))));
                    }
                }
                (
                    o.get("column")
                        .and_then(Value::as_str)
                        .ok_or_else(|| FbError::invalid("a sort key needs \"column\" (text)"))?,
                    o.get("dir").filter(|d| !d.is_null()),
                    o.get("nulls").filter(|d| !d.is_null()),
                )
            }
            _ => return Err(FbError::invalid("each sort key must be an object {\"column\", \"dir\"}")),
        };
        let column = t.column(name)?;
        let desc = match dir.map(|d| d.as_str().unwrap_or("?").to_ascii_lowercase()) {
            None => false,
            Some(d) if d == "asc" => false,
            Some(d) if d == "desc" => true,
            Some(d) => return Err(FbError::invalid(format!("sort dir \"{}\": use asc or desc", shorten(&d)))),
        };
        let nulls_first = match nulls.map(|d| d.as_str().unwrap_or("?").to_ascii_lowercase()) {
            None => desc,
            Some(d) if d == "first" => true,
            Some(d) if d == "last" => false,
            Some(d) => return Err(FbError::invalid(format!("sort nulls \"{}\": use first or last", shorten(&d)))),
        };
        if out.iter().any(|o| o.column == column) {
            return Err(FbError::invalid(format!("column \"{}\" is sorted on twice", shorten(name))));
        }
        out.push(SortSpec { column, desc, nulls_first });
    }
    Ok(out)
}

/// One key of the keyset order.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// SQL for the key over the table alias (catalog identifiers only).
    pub expr: String,
    /// The type cursor values are cast back to.
    pub cast: String,
    pub desc: bool,
    pub nulls_first: bool,
    /// The key can't be NULL (NOT NULL column, ctid, ...).
    pub not_null: bool,
    /// How it appears in the cursor's fingerprint.
    pub label: String,
    /// Where its comparison operators live (see Column::op_schema).
    pub op_schema: String,
}

impl Key {
    fn order_sql(&self, expr: &str) -> String {
        format!(
            "{expr} {} NULLS {}",
            if self.desc { "DESC" } else { "ASC" },
            if self.nulls_first { "FIRST" } else { "LAST" }
        )
    }
}

/// The full keyset order: the caller's sort keys, then the row key.
pub fn keys(t: &Table, sort: &[SortSpec]) -> Vec<Key> {
    let mut keys: Vec<Key> = sort
        .iter()
        .map(|s| {
            let c = &t.columns[s.column];
            Key {
                expr: t.col_ref(s.column),
                cast: c.cast_type.clone(),
                desc: s.desc,
                nulls_first: s.nulls_first,
                not_null: c.not_null,
                label: c.name.clone(),
                op_schema: c.op_schema.clone(),
            }
        })
        .collect();
    let plain = |expr: String, cast: &str, label: &str, op_schema: &str| Key {
        expr,
        cast: cast.to_owned(),
        desc: false,
        nulls_first: false,
        not_null: true,
        label: label.to_owned(),
        op_schema: op_schema.to_owned(),
    };
    if !t.pk.is_empty() {
        for &i in &t.pk {
            if sort.iter().any(|s| s.column == i) {
                continue;
            }
            keys.push(plain(t.col_ref(i), &t.columns[i].cast_type, &t.columns[i].name, &t.columns[i].op_schema));
        }
    } else {
        match t.kind {
            'r' | 'm' => keys.push(plain(format!("{T}.ctid"), "pg_catalog.tid", "ctid", "pg_catalog")),
            'p' => {
                keys.push(plain(format!("{T}.tableoid"), "pg_catalog.oid", "tableoid", "pg_catalog"));
                keys.push(plain(format!("{T}.ctid"), "pg_catalog.tid", "ctid", "pg_catalog"));
            }
            // Views and foreign tables have no usable row address: the row's
            // own JSON text (byte order) breaks ties; identical rows are one.
            _ => keys.push(plain(
                format!("(pg_catalog.to_jsonb({T}.*)::pg_catalog.text COLLATE \"C\")"),
                "pg_catalog.text",
                "row",
                "pg_catalog",
            )),
        }
    }
    keys
}

/// A stable description of the order, stored in the cursor so a cursor is
/// only used with the order it came from.
pub fn fingerprint(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| format!("{} {}{}", k.label, if k.desc { 'd' } else { 'a' }, if k.nulls_first { 'f' } else { 'l' }))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parse the cursor a previous page returned: `{"after": [text|null...], "order": fp}`.
pub fn parse_cursor(keys: &[Key], v: Option<&Value>) -> FbResult<Option<Vec<Option<String>>>> {
    let v = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let bad = || FbError::invalid("invalid cursor: pass the next_cursor of the previous page unchanged");
    let vals = v.get("after").and_then(Value::as_array).ok_or_else(bad)?;
    if v.get("order").and_then(Value::as_str) != Some(fingerprint(keys).as_str()) {
        return Err(FbError::invalid(
            "the cursor belongs to another sort order (or table): start again from the first page",
        ));
    }
    if vals.len() != keys.len() {
        return Err(bad());
    }
    let mut out = Vec::new();
    for (k, x) in keys.iter().zip(vals) {
        match x {
            Value::Null if k.not_null => return Err(bad()),
            Value::Null => out.push(None),
            Value::String(s) => out.push(Some(s.clone())),
            _ => return Err(bad()),
        }
    }
    Ok(Some(out))
}

pub fn make_cursor(keys: &[Key], last: Vec<Option<String>>) -> Value {
    json!({"after": last, "order": fingerprint(keys)})
}

/// "key i comes after value v" (v known in Rust, so NULL handling is decided here).
fn after_one(k: &Key, v: &Option<String>, p: &mut Params) -> FbResult<Option<String>> {
    let nulls_after = !k.nulls_first; // NULLs sort after every value
    Ok(match v {
        None => {
            if nulls_after {
                None // nothing sorts after NULL in this key
            } else {
                Some(format!("{} IS NOT NULL", k.expr))
            }
        }
        Some(_) => {
            let b = p.bind(v.clone(), &k.cast)?;
            let cmp = format!("{} {} {}", k.expr, op(&k.op_schema, if k.desc { "<" } else { ">" }), b);
            if nulls_after && !k.not_null {
                Some(format!("({cmp} OR {} IS NULL)", k.expr))
            } else {
                Some(cmp)
            }
        }
    })
}

fn equal_one(k: &Key, v: &Option<String>, p: &mut Params) -> FbResult<String> {
    Ok(match v {
        None => format!("{} IS NULL", k.expr),
        Some(_) => format!("{} {} {}", k.expr, op(&k.op_schema, "="), p.bind(v.clone(), &k.cast)?),
    })
}

/// WHERE condition selecting rows strictly after the cursor in the key order.
pub fn after_condition(keys: &[Key], vals: &[Option<String>], p: &mut Params) -> FbResult<String> {
    // Fast path an index can serve: one direction, no NULLs possible.
    let same_dir = keys.iter().all(|k| k.desc == keys[0].desc);
    // (A row comparison names one operator for every column: only when all
    // of them are pg_catalog's.)
    if same_dir
        && keys.iter().all(|k| k.not_null && k.op_schema == "pg_catalog")
        && vals.iter().all(Option::is_some)
    {
        let lhs: Vec<&str> = keys.iter().map(|k| k.expr.as_str()).collect();
        let mut rhs = Vec::new();
        for (k, v) in keys.iter().zip(vals) {
            rhs.push(p.bind(v.clone(), &k.cast)?);
        }
        return Ok(format!(
            "ROW({}) {} ROW({})",
            lhs.join(", "),
            pg_op(if keys[0].desc { "<" } else { ">" }),
            rhs.join(", ")
        ));
    }
    // General form: (k1 after v1) OR (k1 = v1 AND k2 after v2) OR ...
    let mut alts = Vec::new();
    for i in 0..keys.len() {
        let Some(last) = after_one(&keys[i], &vals[i], p)? else { continue };
        let mut parts = Vec::new();
        for j in 0..i {
            parts.push(equal_one(&keys[j], &vals[j], p)?);
        }
        parts.push(last);
        alts.push(format!("({})", parts.join(" AND ")));
    }
    Ok(if alts.is_empty() { "false".into() } else { format!("({})", alts.join(" OR ")) })
}

fn filter_sql(t: &Table, f: &Filter, p: &mut Params) -> FbResult<String> {
    let c = &t.columns[f.column];
    let col = t.col_ref(f.column);
    Ok(match f.op {
        Op::IsNull => format!("{col} IS NULL"),
        Op::NotNull => format!("{col} IS NOT NULL"),
        Op::Like | Op::Ilike => {
            format!("{col}::pg_catalog.text {} {}", pg_op(f.op.sql()), p.bind(f.values[0].clone(), "pg_catalog.text")?)
        }
        Op::In => {
            let mut items = Vec::new();
            for v in &f.values {
                items.push(p.bind(v.clone(), &c.cast_type)?);
            }
            if items.is_empty() {
                "false".into()
            } else {
                format!("{col} {} ANY (ARRAY[{}])", op(&c.op_schema, "="), items.join(", "))
            }
        }
        o => format!("{col} {} {}", op(&c.op_schema, o.sql()), p.bind(f.values[0].clone(), &c.cast_type)?),
    })
}

/// Escape LIKE wildcards so `search` matches its text literally.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The view's WHERE conditions (filters, then search), ANDed by the caller:
/// shared by browse, export and count, so they select the same rows.
pub fn conditions(t: &Table, filters: &[Filter], search: Option<&str>, p: &mut Params) -> FbResult<Vec<String>> {
    let mut conds = Vec::new();
    for f in filters {
        conds.push(filter_sql(t, f, p)?);
    }
    if let Some(s) = search.filter(|s| !s.is_empty()) {
        check_len("search", s, 500)?;
        let text_cols: Vec<usize> = (0..t.columns.len()).filter(|&i| t.columns[i].text_like).collect();
        if text_cols.is_empty() {
            return Err(FbError::invalid(format!("{} has no text columns to search", t.display())));
        }
        let b = p.bind(Some(format!("%{}%", like_escape(s))), "pg_catalog.text")?;
        let ors: Vec<String> = text_cols
            .iter()
            .map(|&i| format!("{}::pg_catalog.text {} {b}", t.col_ref(i), pg_op("~~*")))
            .collect();
        conds.push(format!("({})", ors.join(" OR ")));
    }
    Ok(conds)
}

/// A view (filters, sort, search, cursor) as SQL pieces shared by browse,
/// export and count: the keyset keys, the bound values, and the WHERE clause
/// (" WHERE ..." or "") without and with the cursor's condition.
pub struct ViewSql {
    pub keys: Vec<Key>,
    pub params: Params,
    pub where_filters: String,
    pub where_all: String,
}

pub fn view_sql(
    t: &Table,
    filters: Option<&Value>,
    sort: Option<&Value>,
    search: Option<&str>,
    after: Option<&Value>,
) -> FbResult<ViewSql> {
    let filters = parse_filters(t, filters)?;
    let sort = parse_sort(t, sort)?;
    let keys = keys(t, &sort);
    let cursor = parse_cursor(&keys, after)?;
    let mut params = Params::default();
    let mut conds = conditions(t, &filters, search, &mut params)?;
    let clause = |conds: &[String]| if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let where_filters = clause(&conds);
    if let Some(vals) = &cursor {
        conds.push(after_condition(&keys, vals, &mut params)?);
    }
    let where_all = clause(&conds);
    Ok(ViewSql { keys, params, where_filters, where_all })
}

#[derive(Debug, Clone, PartialEq)]
pub struct BrowsePlan {
    /// One statement returning one jsonb: {rows, next_cursor, estimated_total}
    /// (next_cursor as `make_cursor` spells it).
    pub sql: String,
    pub params: Params,
    pub keys: Vec<Key>,
    pub page_size: i32,
}

pub fn check_page_size(n: Option<i32>) -> FbResult<i32> {
    let n = n.unwrap_or(50);
    if !(1..=MAX_PAGE_SIZE).contains(&n) {
        return Err(FbError::invalid(format!("page_size must be between 1 and {MAX_PAGE_SIZE} (got {n})")));
    }
    Ok(n)
}

/// Build the one statement behind `browse`.
pub fn plan_browse(
    t: &Table,
    filters: Option<&Value>,
    sort: Option<&Value>,
    search: Option<&str>,
    page_size: Option<i32>,
    after: Option<&Value>,
) -> FbResult<BrowsePlan> {
    let page_size = check_page_size(page_size)?;
    // (The filtered count, small tables only, must not see the cursor.)
    let ViewSql { keys, params: mut p, where_filters, where_all } = view_sql(t, filters, sort, search, after)?;

    let select_keys: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("{} AS s{i}", k.expr)).collect();
    let inner_order: Vec<String> = keys.iter().map(|k| k.order_sql(&k.expr)).collect();
    let key_texts: Vec<String> = (0..keys.len()).map(|i| format!("q.s{i}::pg_catalog.text")).collect();
    let total = if t.reltuples < EXACT_COUNT_BELOW {
        format!("(SELECT pg_catalog.count(*) FROM {} AS {T}{where_filters})", t.qualified())
    } else {
        format!("{}::pg_catalog.int8", t.reltuples.round() as i64)
    };
    // The cursor's order fingerprint is bound too (it holds column names).
    let fp = p.bind(Some(fingerprint(&keys)), "pg_catalog.text")?;
    // At most page_size + 1 rows: the extra row only tells whether there is
    // a next page. The rows are numbered in the subquery's order
    // (row_number() OVER () adds no sort) and the aggregates take them in
    // that order: the outer levels have no join or grouping that could
    // reorder them (the case the Postgres manual calls safe for ordered
    // aggregate input from a sorted subquery), which saves sorting the page
    // a second time.
    let sql = format!(
        "SELECT pg_catalog.jsonb_build_object(
                'rows', COALESCE(pg_catalog.jsonb_agg(q.r) FILTER (WHERE q.n OPERATOR(pg_catalog.<=) {ps}::pg_catalog.int8), '[]'::pg_catalog.jsonb),
                'next_cursor', CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.>) {ps}::pg_catalog.int8 THEN pg_catalog.jsonb_build_object(
                    'after', (pg_catalog.array_agg(pg_catalog.jsonb_build_array({kt})) FILTER (WHERE q.n OPERATOR(pg_catalog.=) {ps}::pg_catalog.int8))[1],
                    'order', {fp}) END,
                'estimated_total', {total})
         FROM (SELECT p.*, pg_catalog.row_number() OVER () AS n
               FROM (SELECT pg_catalog.to_jsonb({T}.*) AS r, {sk}
                     FROM {tbl} AS {T}{where_all}
                     ORDER BY {io}
                     LIMIT {lim}) p) q",
        ps = page_size,
        kt = key_texts.join(", "),
        sk = select_keys.join(", "),
        tbl = t.qualified(),
        io = inner_order.join(", "),
        lim = page_size + 1,
    );
    Ok(BrowsePlan { sql, params: p, keys, page_size })
}

// ---------------------------------------------------------------- edits

/// A value to validate before an edit: (column index, text) — checked with the
/// column's type so a bad one fails naming its column.
pub type Check = (usize, String);

/// Columns that may be written: not generated, not GENERATED ALWAYS identity.
fn writable(t: &Table, name: &str) -> FbResult<usize> {
    let i = t.column(name)?;
    let c = &t.columns[i];
    if c.generated {
        return Err(FbError::invalid(format!(
            "column \"{}\" is a generated column and can't be written",
            c.name
        )));
    }
    if c.identity_always {
        return Err(FbError::invalid(format!(
            "column \"{}\" is GENERATED ALWAYS AS IDENTITY and can't be written",
            c.name
        )));
    }
    Ok(i)
}

fn object<'a>(what: &str, v: &'a Value) -> FbResult<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| FbError::invalid(format!("{what} must be a JSON object of column: value")))
}

fn need_pk(t: &Table) -> FbResult<()> {
    if t.pk.is_empty() {
        return Err(FbError::new(
            Code::WrongState,
            format!("{} has no primary key: rows can't be addressed for editing", t.display()),
        )
        .with_hint("add a primary key, or edit it with plain SQL"));
    }
    Ok(())
}

/// `(pk1 = $a AND pk2 = $b)` for one primary key object, which must name
/// exactly the primary key columns.
fn pk_condition(t: &Table, pk: &Value, p: &mut Params, checks: &mut Vec<Check>) -> FbResult<String> {
    let obj = object("a primary key", pk)?;
    let mut parts = Vec::new();
    for k in obj.keys() {
        let i = t.column(k)?;
        if !t.pk.contains(&i) {
            return Err(FbError::invalid(format!("column \"{}\" is not part of the primary key", t.columns[i].name)));
        }
    }
    for &i in &t.pk {
        let c = &t.columns[i];
        let v = obj.get(&c.name).ok_or_else(|| {
            FbError::invalid(format!("the primary key needs a value for column \"{}\"", c.name))
        })?;
        let s = json_to_text(v)
            .ok_or_else(|| FbError::invalid(format!("primary key column \"{}\" can't be null", c.name)))?;
        checks.push((i, s.clone()));
        parts.push(format!("{} {} {}", t.col_ref(i), op(&c.op_schema, "="), p.bind(Some(s), &c.cast_type)?));
    }
    Ok(format!("({})", parts.join(" AND ")))
}

fn pks_condition(t: &Table, pks: &[Value], p: &mut Params, checks: &mut Vec<Check>) -> FbResult<String> {
    if pks.is_empty() {
        return Err(FbError::invalid("no primary keys given"));
    }
    if pks.len() > MAX_BATCH {
        return Err(FbError::invalid(format!("at most {MAX_BATCH} rows per call")));
    }
    let mut ors = Vec::new();
    for pk in pks {
        ors.push(pk_condition(t, pk, p, checks)?);
    }
    Ok(ors.join(" OR "))
}

/// SQL for an edit: `lock` selects (and locks) the old rows, `write` changes
/// them; both return `to_jsonb` of rows; they share `params`.
#[derive(Debug, Clone, PartialEq)]
pub struct EditPlan {
    pub lock: Option<String>,
    pub write: String,
    pub params: Params,
    pub checks: Vec<Check>,
}

fn set_list(t: &Table, changes: &Value, p: &mut Params, checks: &mut Vec<Check>) -> FbResult<String> {
    let obj = object("changes", changes)?;
    if obj.is_empty() {
        return Err(FbError::invalid("changes is empty: name at least one column"));
    }
    let mut sets = Vec::new();
    for (k, v) in obj {
        let i = writable(t, k)?;
        let s = json_to_text(v);
        if let Some(s) = &s {
            checks.push((i, s.clone()));
        }
        sets.push(format!("{} = {}", quote_ident(&t.columns[i].name), p.bind(s, &t.columns[i].cast_type)?));
    }
    Ok(sets.join(", "))
}

/// update_row / update_rows.
pub fn plan_update(t: &Table, pks: &[Value], changes: &Value) -> FbResult<EditPlan> {
    need_pk(t)?;
    let mut p = Params::default();
    let mut checks = Vec::new();
    let sets = set_list(t, changes, &mut p, &mut checks)?;
    let cond = pks_condition(t, pks, &mut p, &mut checks)?;
    let tbl = t.qualified();
    Ok(EditPlan {
        lock: Some(format!("SELECT pg_catalog.to_jsonb({T}.*) FROM {tbl} AS {T} WHERE {cond} FOR UPDATE")),
        write: format!("UPDATE {tbl} AS {T} SET {sets} WHERE {cond} RETURNING pg_catalog.to_jsonb({T}.*)"),
        params: p,
        checks,
    })
}

pub fn plan_delete(t: &Table, pks: &[Value]) -> FbResult<EditPlan> {
    need_pk(t)?;
    let mut p = Params::default();
    let mut checks = Vec::new();
    let cond = pks_condition(t, pks, &mut p, &mut checks)?;
    Ok(EditPlan {
        lock: None,
        write: format!("DELETE FROM {} AS {T} WHERE {cond} RETURNING pg_catalog.to_jsonb({T}.*)", t.qualified()),
        params: p,
        checks,
    })
}

/// insert_rows: one multi-row INSERT over the union of the keys given; a
/// column a row leaves out gets its DEFAULT.
pub fn plan_insert(t: &Table, rows: &[Value]) -> FbResult<EditPlan> {
    if rows.is_empty() {
        return Err(FbError::invalid("rows is empty"));
    }
    if rows.len() > MAX_BATCH {
        return Err(FbError::invalid(format!("at most {MAX_BATCH} rows per call")));
    }
    let mut cols: Vec<usize> = Vec::new();
    for r in rows {
        for k in object("each row", r)?.keys() {
            let i = writable(t, k)?;
            if !cols.contains(&i) {
                cols.push(i);
            }
        }
    }
    cols.sort_unstable();
    let mut p = Params::default();
    let mut checks = Vec::new();
    let tbl = t.qualified();
    let write = if cols.is_empty() {
        if rows.len() != 1 {
            return Err(FbError::invalid("rows without any column: insert them one at a time"));
        }
        format!("INSERT INTO {tbl} AS {T} DEFAULT VALUES RETURNING pg_catalog.to_jsonb({T}.*)")
    } else {
        let mut tuples = Vec::new();
        for r in rows {
            let obj = r.as_object().expect("checked above");
            let mut vals = Vec::new();
            for &i in &cols {
                let c = &t.columns[i];
                match obj.get(&c.name) {
                    None => vals.push("DEFAULT".to_owned()),
                    Some(v) => {
                        let s = json_to_text(v);
                        if let Some(s) = &s {
                            checks.push((i, s.clone()));
                        }
                        vals.push(p.bind(s, &c.cast_type)?);
                    }
                }
            }
            tuples.push(format!("({})", vals.join(", ")));
        }
        let names: Vec<String> = cols.iter().map(|&i| quote_ident(&t.columns[i].name)).collect();
        format!(
            "INSERT INTO {tbl} AS {T} ({}) VALUES {} RETURNING pg_catalog.to_jsonb({T}.*)",
            names.join(", "),
            tuples.join(", ")
        )
    };
    Ok(EditPlan { lock: None, write, params: p, checks })
}

/// The message for a value that does not fit its column's type.
pub fn bad_value(t: &Table, col: usize, value: &str, pg_message: &str) -> FbError {
    FbError::new(
        Code::InvalidTextRepresentation,
        format!(
            "column \"{}\": invalid input for type {}: \"{}\"",
            t.columns[col].name,
            t.columns[col].cast_type,
            shorten(value)
        ),
    )
    .with_detail(pg_message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, not_null: bool) -> Column {
        Column {
            name: name.into(),
            cast_type: ty.into(),
            type_oid: 0,
            typmod: -1,
            not_null,
            generated: false,
            identity_always: false,
            text_like: ty == "text",
            op_schema: "pg_catalog".into(),
        }
    }

    pub(crate) fn table() -> Table {
        let mut g = col("full", "text", false);
        g.generated = true;
        Table {
            schema: "public".into(),
            name: "My \"T\"".into(),
            kind: 'r',
            columns: vec![col("id", "integer", true), col("name", "text", false), col("age", "integer", false), g],
            pk: vec![0],
            reltuples: 1e6,
        }
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("My Table"), "\"My Table\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("\"; drop table x; --"), "\"\"\"; drop table x; --\"");
        assert_eq!(quote_ident("ünï"), "\"ünï\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn quote_literal_doubles_quotes_and_backslashes() {
        assert_eq!(quote_literal("a"), "'a'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b'"), r"E'a\\b'''");
        assert_eq!(quote_literal("'); drop table x; --"), "'''); drop table x; --'");
    }

    #[test]
    fn qualified_name_is_quoted() {
        assert_eq!(table().qualified(), "\"public\".\"My \"\"T\"\"\"");
    }

    #[test]
    fn from_catalog_reads_columns_and_pk() {
        let v = json!({"schema": "s", "name": "t", "kind": "r", "reltuples": 5.0,
            "columns": [{"name": "a", "cast_type": "integer", "not_null": true}, {"name": "b", "cast_type": "text", "text_like": true}],
            "pk": ["a"]});
        let t = Table::from_catalog(&v).unwrap();
        assert_eq!(t.pk, vec![0]);
        assert!(t.columns[1].text_like);
        assert!(t.columns[0].not_null);
    }

    #[test]
    fn values_are_bound_never_pasted() {
        let t = table();
        let evil = "x'; DROP TABLE users; --";
        let plan = plan_browse(
            &t,
            Some(&json!([{"column": "name", "op": "eq", "value": evil}])),
            None,
            Some(evil),
            Some(10),
            None,
        )
        .unwrap();
        assert!(!plan.sql.contains("DROP"));
        assert!(plan.sql.contains("\"_fb_t\"") || plan.sql.contains("_fb_t.\"name\" OPERATOR(pg_catalog.=) $1::pg_catalog.text::text"));
        assert_eq!(plan.params.0[0].as_deref(), Some(evil));
        assert_eq!(plan.params.0[1].as_deref(), Some("%x'; DROP TABLE users; --%"));
        assert_eq!(plan.params.0[2].as_deref(), Some("id al"));
    }

    #[test]
    fn unknown_column_and_op_are_refused() {
        let t = table();
        let e = plan_browse(&t, Some(&json!([{"column": "nope\"", "op": "eq", "value": 1}])), None, None, None, None)
            .unwrap_err();
        assert_eq!(e.code, Code::UndefinedColumn);
        assert!(e.message.contains("nope"));
        let e = plan_browse(&t, Some(&json!([{"column": "id", "op": "; drop", "value": 1}])), None, None, None, None)
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidParameter);
        let e = plan_browse(&t, None, Some(&json!([{"column": "id", "dir": "sideways"}])), None, None, None).unwrap_err();
        assert_eq!(e.code, Code::InvalidParameter);
    }

    #[test]
    fn every_op_builds() {
        let t = table();
        for (op, v) in [
            ("eq", json!(1)),
            ("neq", json!(1)),
            ("lt", json!(1)),
            ("lte", json!(1)),
            ("gt", json!(1)),
            ("gte", json!(1)),
            ("like", json!("a%")),
            ("ilike", json!("a%")),
            ("in", json!([1, 2])),
            ("is_null", Value::Null),
            ("not_null", Value::Null),
        ] {
            let p = plan_browse(&t, Some(&json!([{"column": "age", "op": op, "value": v}])), None, None, None, None)
                .unwrap();
            assert!(p.sql.contains("\"age\""), "{op}");
        }
        let p = plan_browse(&t, Some(&json!([{"column": "age", "op": "in", "value": []}])), None, None, None, None)
            .unwrap();
        assert!(p.sql.contains("false"));
        assert!(plan_browse(&t, Some(&json!([{"column": "age", "op": "eq"}])), None, None, None, None).is_err());
        assert!(plan_browse(&t, Some(&json!([{"column": "age", "op": "in", "value": 3}])), None, None, None, None)
            .is_err());
    }

    #[test]
    fn page_size_range() {
        assert_eq!(check_page_size(None).unwrap(), 50);
        assert_eq!(check_page_size(Some(0)).unwrap_err().code, Code::InvalidParameter);
        assert_eq!(check_page_size(Some(1001)).unwrap_err().code, Code::InvalidParameter);
        assert_eq!(check_page_size(Some(1000)).unwrap(), 1000);
    }

    #[test]
    fn keys_end_with_row_key() {
        let mut t = table();
        let s = parse_sort(&t, Some(&json!([{"column": "age", "dir": "desc"}]))).unwrap();
        let k = keys(&t, &s);
        assert_eq!(k.len(), 2);
        assert!(k[0].desc && k[0].nulls_first);
        assert_eq!(k[1].label, "id");
        t.pk.clear();
        assert_eq!(keys(&t, &s)[1].label, "ctid");
        t.kind = 'p';
        assert_eq!(keys(&t, &s).len(), 3);
        t.kind = 'v';
        assert_eq!(keys(&t, &s)[1].label, "row");
        // sorting on the pk itself adds no duplicate key
        let t = table();
        let s = parse_sort(&t, Some(&json!(["id"]))).unwrap();
        assert_eq!(keys(&t, &s).len(), 1);
        assert!(parse_sort(&t, Some(&json!(["id", "id"]))).is_err());
    }

    #[test]
    fn cursor_roundtrip_and_fingerprint() {
        let t = table();
        let s = parse_sort(&t, Some(&json!(["age"]))).unwrap();
        let k = keys(&t, &s);
        let c = make_cursor(&k, vec![None, Some("7".into())]);
        assert_eq!(parse_cursor(&k, Some(&c)).unwrap().unwrap(), vec![None, Some("7".into())]);
        let other = keys(&t, &parse_sort(&t, Some(&json!(["name"]))).unwrap());
        assert!(parse_cursor(&other, Some(&c)).is_err());
        assert!(parse_cursor(&k, Some(&json!({"after": [1, 2], "order": fingerprint(&k)}))).is_err());
        assert!(parse_cursor(&k, Some(&json!("garbage"))).is_err());
        // pk can't be NULL in a cursor
        assert!(parse_cursor(&k, Some(&json!({"after": [null, null], "order": fingerprint(&k)}))).is_err());
    }

    #[test]
    fn after_condition_handles_nulls() {
        let t = table();
        let k = keys(&t, &parse_sort(&t, Some(&json!(["age"]))).unwrap());
        // ascending, NULLs last, cursor at NULL: only ties on age (NULL) with greater id
        let mut p = Params::default();
        let c = after_condition(&k, &[None, Some("5".into())], &mut p).unwrap();
        assert_eq!(c, "((_fb_t.\"age\" IS NULL AND _fb_t.\"id\" OPERATOR(pg_catalog.>) $1::pg_catalog.text::integer))");
        // cursor at a value: greater values, or NULLs (they come last), or ties
        let mut p = Params::default();
        let c = after_condition(&k, &[Some("3".into()), Some("5".into())], &mut p).unwrap();
        assert!(c.contains("OR _fb_t.\"age\" IS NULL"));
        assert_eq!(p.0.len(), 3);
        // pk only: a row comparison an index can serve
        let k = keys(&t, &[]);
        let mut p = Params::default();
        assert_eq!(
            after_condition(&k, &[Some("9".into())], &mut p).unwrap(),
            "ROW(_fb_t.\"id\") OPERATOR(pg_catalog.>) ROW($1::pg_catalog.text::integer)"
        );
        // descending NULLS FIRST at NULL: the non-null values come after
        let k = keys(&t, &parse_sort(&t, Some(&json!([{"column": "age", "dir": "desc"}]))).unwrap());
        let mut p = Params::default();
        let c = after_condition(&k, &[None, Some("1".into())], &mut p).unwrap();
        assert!(c.contains("_fb_t.\"age\" IS NOT NULL"));
    }

    #[test]
    fn small_tables_count_exactly() {
        let mut t = table();
        t.reltuples = -1.0;
        let p = plan_browse(&t, None, None, None, None, None).unwrap();
        assert!(p.sql.contains("count(*) FROM"));
        t.reltuples = 2e6;
        let p = plan_browse(&t, None, None, None, None, None).unwrap();
        assert!(p.sql.contains("2000000::pg_catalog.int8"));
    }

    #[test]
    fn search_escapes_wildcards() {
        assert_eq!(like_escape("50%_a\\"), "50\\%\\_a\\\\");
    }

    #[test]
    fn edits_refuse_generated_and_bad_keys() {
        let t = table();
        let e = plan_update(&t, &[json!({"id": 1})], &json!({"full": "x"})).unwrap_err();
        assert!(e.message.contains("generated"));
        let e = plan_insert(&t, &[json!({"full": "x"})]).unwrap_err();
        assert!(e.message.contains("\"full\""));
        assert!(plan_update(&t, &[json!({"name": 1})], &json!({"age": 1})).is_err());
        assert!(plan_update(&t, &[json!({})], &json!({"age": 1})).is_err());
        assert!(plan_update(&t, &[json!({"id": null})], &json!({"age": 1})).is_err());
        assert!(plan_update(&t, &[json!({"id": 1})], &json!({})).is_err());
        let mut nopk = table();
        nopk.pk.clear();
        assert_eq!(plan_delete(&nopk, &[json!({"id": 1})]).unwrap_err().code, Code::WrongState);
    }

    #[test]
    fn update_binds_everything() {
        let t = table();
        let p = plan_update(&t, &[json!({"id": 1}), json!({"id": "2"})], &json!({"name": "a'b", "age": null})).unwrap();
        assert!(p.write.starts_with("UPDATE \"public\".\"My \"\"T\"\"\" AS _fb_t SET"));
        assert!(p.lock.as_ref().unwrap().ends_with("FOR UPDATE"));
        assert_eq!(p.params.0.len(), 4);
        assert!(p.params.0.contains(&None));
        // values to type-check: name, id 1, id 2 (NULL needs none)
        assert_eq!(p.checks.len(), 3);
    }

    #[test]
    fn insert_uses_defaults_for_missing_keys() {
        let t = table();
        let p = plan_insert(&t, &[json!({"id": 1, "name": "a"}), json!({"id": 2})]).unwrap();
        assert!(p.write.contains("(\"id\", \"name\") VALUES ($1::pg_catalog.text::integer, $2::pg_catalog.text::text), ($3::pg_catalog.text::integer, DEFAULT)"));
        let p = plan_insert(&t, &[json!({})]).unwrap();
        assert!(p.write.contains("DEFAULT VALUES"));
    }

    #[test]
    fn nul_in_values_refused() {
        let t = table();
        assert!(plan_browse(&t, Some(&json!([{"column": "name", "op": "eq", "value": "a\u{0}b"}])), None, None, None, None)
            .is_err());
    }
}
