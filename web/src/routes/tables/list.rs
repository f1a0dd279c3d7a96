use super::*;

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

pub(super) async fn list_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    section_page(&app, &s, hx.0, "Tables", async |tx, v| {
        let tables = ex::list_tables(tx, None).await?;
        let mut schemas: Vec<(String, Vec<TableRow>)> = Vec::new();
        for t in tables {
            let policies = t.rls_enabled.then_some(t.policies as usize);
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
