use super::*;

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

pub(super) async fn sql_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    section_page(&app, &s, hx.0, "SQL as user", async |_, v| {
        Ok(SqlPartial { csrf: s.csrf.clone(), sql: String::new(), impersonating: v.imp.is_some(), viewer: viewer_label(v), columns: vec![], rows: vec![], capped: false, cap: QUERY_CAP, ran: false, error: None, here: SQL_PATH })
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct SqlForm {
    sql: String,
}

/// Run one statement through `dashboard.query_as` (it needs a running
/// impersonation: the statement runs as that user, RLS applies). The
/// console's own transaction is the admin's: query_as switches and restores
/// the role itself.
pub(super) async fn sql_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<SqlForm>) -> Result<Response, WebError> {
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
