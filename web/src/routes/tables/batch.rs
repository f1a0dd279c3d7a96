use super::*;

// ------------------------------------------------------------ batch

#[derive(Deserialize, Clone)]
struct BatchForm {
    /// `delete` or `set`.
    action: String,
    /// `selected` or `all` (every row matching the view's filters).
    scope: String,
    #[serde(default)]
    set_col: String,
    #[serde(default)]
    set_value: String,
    #[serde(default)]
    set_null: Option<String>,
    /// The view's query string (filters, sort, search).
    #[serde(default)]
    view: String,
    /// Selected rows' keys (JSON), newline-separated when confirmed.
    #[serde(default)]
    pks: String,
}

fn batch_form(fields: &[(String, String)]) -> Result<BatchForm, WebError> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let pks: Vec<String> = fields.iter().filter(|(n, _)| n == "pk").map(|(_, v)| v.clone()).collect();
    Ok(BatchForm {
        action: get("action").unwrap_or_default(),
        scope: get("scope").unwrap_or_else(|| "selected".into()),
        set_col: get("set_col").unwrap_or_default(),
        set_value: get("set_value").unwrap_or_default(),
        set_null: get("set_null").filter(|v| !v.is_empty()),
        view: get("view").unwrap_or_default(),
        pks: get("pks").unwrap_or_else(|| pks.join("\n")),
    })
}

impl BatchForm {
    fn changes(&self) -> Result<Option<Value>, WebError> {
        match self.action.as_str() {
            "delete" => Ok(None),
            "set" if !self.set_col.is_empty() => {
                let v = if self.set_null.is_some() { Value::Null } else { Value::String(self.set_value.clone()) };
                Ok(Some(json!({ self.set_col.clone(): v })))
            }
            "set" => Err(WebError::BadRequest("choose the column to set".into())),
            _ => Err(WebError::BadRequest("choose delete or set".into())),
        }
    }

    fn selected(&self) -> Result<Vec<Value>, WebError> {
        self.pks.lines().filter(|l| !l.trim().is_empty()).map(parse_pk).collect()
    }
}

/// The rows a batch acts on, as the viewer: the selected keys that the
/// viewer can see, or every row matching the view (browsed by keyset).
async fn batch_keys(tx: &Tx<'_>, schema: &str, table: &str, f: &BatchForm) -> Result<Vec<Value>, WebError> {
    let info = ex::list_tables(tx, Some(schema)).await?.into_iter().find(|t| t.name == table);
    if let Some(why) = read_only_reason(info.as_ref()) {
        return Err(WebError::BadRequest(why));
    }
    let pk_cols = info.map(|t| t.primary_key).unwrap_or_default();
    if f.scope == "all" {
        let view = View::parse(Some(&f.view));
        let mut keys = Vec::new();
        walk(tx, schema, table, &view, |r| keys.push(pk_of(r, &pk_cols))).await?;
        Ok(keys)
    } else {
        let mut keys = Vec::new();
        for pk in f.selected()? {
            if row_by_pk(tx, schema, table, &pk).await?.is_some() {
                keys.push(pk);
            }
        }
        Ok(keys)
    }
}

#[derive(Template)]
#[template(path = "tables/batch_partial.html")]
struct BatchPartial {
    /// The session's CSRF token for the forms' `_csrf` field.
    csrf: String,
    base: String,
    table: String,
    f: BatchForm,
    /// Rows that will change (preview) or changed (done).
    count: usize,
    done: bool,
    viewer: String,
    back: String,
}

pub(super) async fn batch_preview_post(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    Path((schema, table)): Path<(String, String)>,
    WebForm(fields): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let f = batch_form(&fields)?;
    f.changes()?;
    section_page(&app, &s, hx.0, "Batch change", async |tx, v| {
        let keys = batch_keys(tx, &schema, &table, &f).await?;
        let base = table_path(&schema, &table);
        let mut f = f.clone();
        if f.scope != "all" {
            f.pks = keys.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
        }
        Ok(BatchPartial { csrf: s.csrf.clone(), back: format!("{base}?{}", f.view), base, table: table.clone(), f, count: keys.len(), done: false, viewer: viewer_label(v) })
    })
    .await
}

/// Run a confirmed batch: the keys are collected and changed in ONE
/// transaction as the viewer (all or nothing); the page reports the count
/// the database really changed.
pub(super) async fn batch_post(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    Path((schema, table)): Path<(String, String)>,
    WebForm(fields): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let f = batch_form(&fields)?;
    let changes = f.changes()?;
    section_page(&app, &s, hx.0, "Batch change", async |tx, v| {
        let keys = batch_keys(tx, &schema, &table, &f).await?;
        let mut changed = 0usize;
        for chunk in keys.chunks(ex::MAX_BATCH) {
            let pks = Value::Array(chunk.to_vec());
            changed += match &changes {
                None => ex::delete_rows(tx, &schema, &table, &pks).await?,
                Some(c) => ex::update_rows(tx, &schema, &table, &pks, c).await?,
            } as usize;
        }
        let base = table_path(&schema, &table);
        Ok(BatchPartial { csrf: s.csrf.clone(), back: format!("{base}?{}", f.view), base, table: table.clone(), f: f.clone(), count: changed, done: true, viewer: viewer_label(v) })
    })
    .await
}
