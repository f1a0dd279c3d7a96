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
    /// An UPDATE/DELETE that changed 0 rows: what the admin's own view
    /// would have matched, and why the user's policies excluded it.
    zero: Option<ZeroRows>,
}

/// `dashboard.explain_zero_rows`'s answer, as shown (issue 32, item 2).
struct ZeroRows {
    explained: bool,
    /// update / delete
    command: String,
    /// The impersonated user, as *View as…* names them.
    who: String,
    why: Option<String>,
    searched_as: String,
    matched: String,
    /// The first keys, each as JSON text.
    keys: Vec<String>,
    verdicts: Vec<(String, crate::routes::advisor::Verdict)>,
    allowed: usize,
}

/// How many keys the console asks to have explained.
const ZERO_KEYS: i32 = 3;

impl ZeroRows {
    fn from_json(who: String, v: &Value) -> ZeroRows {
        let s = |k: &str| v[k].as_str().map(str::to_string);
        ZeroRows {
            explained: v["explained"].as_bool().unwrap_or(false),
            command: s("command").unwrap_or_default(),
            who,
            why: s("why"),
            searched_as: s("searched_as").unwrap_or_default(),
            matched: s("matched_label").unwrap_or_default(),
            keys: v["keys"].as_array().map(|a| a.iter().map(Value::to_string).collect()).unwrap_or_default(),
            verdicts: v["verdicts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|kv| {
                            let mut verdict = crate::routes::advisor::Verdict::from_json(&kv["verdict"]);
                            verdict.anchored = false;
                            (kv["key"].to_string(), verdict)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            allowed: v["allowed"].as_u64().unwrap_or(0) as usize,
        }
    }
}

/// Ask why `sql`, run as the impersonation `id`, changed no row. Only an
/// UPDATE or DELETE is asked about; an answer the database refuses is shown
/// as the reason it could not be explained.
async fn explain_zero(app: &App, s: &Session, id: uuid::Uuid, sql: &str) -> Option<ZeroRows> {
    if !fluxbase_core::zero_rows::may_explain(sql) {
        return None;
    }
    let r = app
        .db
        .with_session(&s.token, async |tx, me| {
            let Some(live) = imp::live(tx, me, id).await? else { return Ok(None) };
            let v = crate::api::advisor::explain_zero_rows(tx, &live.who, sql, ZERO_KEYS).await?;
            Ok(Some(ZeroRows::from_json(live.who, &v)))
        })
        .await;
    match r {
        Ok(z) => z,
        Err(WebError::BadRequest(m) | WebError::Denied(m) | WebError::NotFound(m)) => Some(ZeroRows {
            explained: false,
            command: String::new(),
            who: String::new(),
            why: Some(m),
            searched_as: String::new(),
            matched: String::new(),
            keys: vec![],
            verdicts: vec![],
            allowed: 0,
        }),
        Err(WebError::Internal(m) | WebError::Cancelled(m)) => Some(ZeroRows {
            explained: false,
            command: String::new(),
            who: String::new(),
            why: Some(m.split_once(": ").map(|x| x.1.to_string()).unwrap_or(m)),
            searched_as: String::new(),
            matched: String::new(),
            keys: vec![],
            verdicts: vec![],
            allowed: 0,
        }),
        Err(_) => None,
    }
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
        Ok(SqlPartial { csrf: s.csrf.clone(), sql: String::new(), impersonating: v.imp.is_some(), viewer: viewer_label(v), columns: vec![], rows: vec![], capped: false, cap: QUERY_CAP, ran: false, error: None, here: SQL_PATH, zero: None })
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
    let mut zero = None;
    let (columns, rows, capped, error) = match ran {
        Some(Ok(r)) => {
            if r.is_empty() {
                if let Some(id) = s.imp {
                    zero = explain_zero(&app, &s, id, &f.sql).await;
                }
            }
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
        Ok(SqlPartial { csrf: s.csrf.clone(), sql: f.sql.clone(), impersonating: v.imp.is_some(), viewer: viewer_label(v), columns, rows, capped, cap: QUERY_CAP, ran, error, here: SQL_PATH, zero })
    })
    .await
}
