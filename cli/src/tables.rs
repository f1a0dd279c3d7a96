use super::*;

/// `col:op:value` → {"column","op","value"}; `in` takes a comma-separated list;
/// is_null / not_null take no value. The value may itself contain ':'.
pub fn parse_filter(f: &str) -> Result<Value, String> {
    let mut parts = f.splitn(3, ':');
    let col = parts.next().unwrap_or("");
    let op = parts.next().ok_or_else(|| format!("bad filter {f:?}: expected column:op:value"))?;
    let value = parts.next();
    if col.is_empty() {
        return Err(format!("bad filter {f:?}: the column is empty"));
    }
    const OPS: [&str; 11] = ["eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "in", "is_null", "not_null"];
    if !OPS.contains(&op) {
        return Err(format!("bad filter {f:?}: unknown operator {op:?} (one of {})", OPS.join(", ")));
    }
    match (op, value) {
        ("is_null" | "not_null", None) => Ok(json!({ "column": col, "op": op })),
        ("is_null" | "not_null", Some(_)) => Err(format!("bad filter {f:?}: {op} takes no value")),
        (_, None) => Err(format!("bad filter {f:?}: {op} needs a value (column:{op}:value)")),
        ("in", Some(v)) => Ok(json!({ "column": col, "op": op, "value": v.split(',').collect::<Vec<_>>() })),
        (_, Some(v)) => Ok(json!({ "column": col, "op": op, "value": v })),
    }
}

/// `col` or `col:asc` / `col:desc` → {"column","dir"}.
pub fn parse_sort(s: &str) -> Result<Value, String> {
    let (col, dir) = match s.rsplit_once(':') {
        Some((c, d)) if d.eq_ignore_ascii_case("desc") || d.eq_ignore_ascii_case("asc") => (c, d.to_lowercase()),
        _ => (s, "asc".to_string()),
    };
    if col.is_empty() {
        return Err(format!("bad sort {s:?}: expected column[:desc]"));
    }
    Ok(json!({ "column": col, "dir": dir }))
}

/// The cursor printed by a previous page is JSON; anything else is taken as a JSON string.
pub fn parse_cursor(c: &str) -> Value {
    serde_json::from_str(c).unwrap_or_else(|_| Value::String(c.to_string()))
}

/// `[schema.]table` as the server should resolve it: the CLI's connection pins
/// `search_path` to `pg_catalog` (a look-alike there must not shadow the
/// extension), so a name without a schema is taken as `public`'s, as a
/// default search_path would find it. A dot inside double quotes is part of a
/// name, not a separator.
pub fn qualified(table: &str) -> String {
    let mut quoted = false;
    for c in table.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => return table.to_string(),
            _ => {}
        }
    }
    format!("public.{table}")
}

pub(super) fn tables(ctx: &mut Ctx, cmd: TablesCmd) -> Result<(), Fail> {
    match cmd {
        TablesCmd::List { schema } => {
            let rows = ctx.rows("dashboard.list_tables", "SELECT pg_catalog.to_json(t)::text FROM dashboard.list_tables($1) t", &[schema])?;
            ctx.out.list_view(&rows, "tables", output::views::TABLES);
        }
        TablesCmd::Describe { table } => {
            let rows = ctx.rows(
                "dashboard.describe_table",
                "SELECT pg_catalog.to_json(t)::text FROM dashboard.describe_table($1::text::regclass) t",
                &[s(&qualified(&table))],
            )?;
            ctx.out.list(&rows, "columns");
        }
        TablesCmd::Browse { table, filter, sort, search, page_size, after } => {
            let filters = filter.iter().map(|f| parse_filter(f)).collect::<Result<Vec<_>, _>>().map_err(Fail::usage)?;
            let sorts = sort.iter().map(|x| parse_sort(x)).collect::<Result<Vec<_>, _>>().map_err(Fail::usage)?;
            let after = after.as_deref().map(|c| parse_cursor(c).to_string());
            let v = ctx.json_scalar(
                "dashboard.browse",
                "SELECT dashboard.browse($1::text::regclass, $2::text::jsonb, $3::text::jsonb, $4, $5::text::int, $6::text::jsonb)::text",
                &[s(&qualified(&table)), Some(Value::Array(filters).to_string()), Some(Value::Array(sorts).to_string()), search, s(&page_size.to_string()), after],
            )?;
            if ctx.out.for_scripts() {
                ctx.out.record(&v);
            } else {
                let rows = v.get("rows").and_then(Value::as_array).cloned().unwrap_or_default();
                ctx.out.list(&rows, "rows");
                if ctx.out.quiet {
                    return Ok(());
                }
                if let Some(t) = v.get("estimated_total").filter(|t| !t.is_null()) {
                    say!("estimated total: {}", output::cell(t));
                }
                if let Some(c) = v.get("next_cursor").filter(|c| !c.is_null()) {
                    say!("next page: --after '{}'", c.to_string().replace('\'', "'\\''"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(parse_filter("age:gt:30").unwrap(), json!({"column":"age","op":"gt","value":"30"}));
        assert_eq!(parse_filter("url:eq:http://x:1").unwrap()["value"], "http://x:1");
        assert_eq!(parse_filter("id:in:1,2,3").unwrap()["value"], json!(["1", "2", "3"]));
        assert_eq!(parse_filter("email:is_null").unwrap(), json!({"column":"email","op":"is_null"}));
        assert!(parse_filter("email").is_err());
        assert!(parse_filter("email:regex:x").is_err());
        assert!(parse_filter("email:eq").is_err());
        assert!(parse_filter(":eq:x").is_err());
        assert!(parse_filter("a:is_null:x").is_err());
    }

    #[test]
    fn names_without_a_schema_are_public() {
        assert_eq!(qualified("items"), "public.items");
        assert_eq!(qualified("app.items"), "app.items");
        assert_eq!(qualified("\"My.Table\""), "public.\"My.Table\"");
        assert_eq!(qualified("\"a.b\".c"), "\"a.b\".c");
    }

    #[test]
    fn sorts_and_cursors() {
        assert_eq!(parse_sort("name").unwrap(), json!({"column":"name","dir":"asc"}));
        assert_eq!(parse_sort("created_at:DESC").unwrap(), json!({"column":"created_at","dir":"desc"}));
        assert_eq!(parse_sort("a:b").unwrap()["column"], "a:b");
        assert!(parse_sort(":desc").is_err());
        assert_eq!(parse_cursor("{\"id\": 5}"), json!({"id": 5}));
        assert_eq!(parse_cursor("abc"), json!("abc"));
    }
}
