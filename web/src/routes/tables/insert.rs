use super::*;

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

pub(super) async fn insert_get(State(app): State<App>, s: Session, hx: HxRequest, Path((schema, table)): Path<(String, String)>) -> Result<Response, WebError> {
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
pub(super) async fn insert_post(
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
