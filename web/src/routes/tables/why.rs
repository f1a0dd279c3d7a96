use super::*;

// ------------------------------------------------------------ Why? (issue 32)

/// The verdict of `dashboard.explain_access` for one row of the table, as the
/// impersonated user: the Why? of a visible row (its key as JSON) and the
/// "Why can't I see a row?" form (one field per primary key column).
#[derive(Template)]
#[template(path = "tables/why_partial.html")]
struct WhyPartial {
    v: crate::routes::advisor::Verdict,
    who: String,
    command: String,
    key: String,
}

/// The commands the table page asks about (INSERT needs a new row: the
/// Advisor's form asks that one).
const WHY_COMMANDS: [&str; 3] = ["select", "update", "delete"];

/// The key asked about: `key` (a row's key as JSON, the Why? buttons), else
/// the `k.<column>` fields of the form, each value as typed (the database
/// casts it to the column's type).
pub(super) fn why_key(pairs: &[(String, String)]) -> Result<Value, WebError> {
    if let Some((_, k)) = pairs.iter().find(|(n, _)| n == "key") {
        return parse_pk(k);
    }
    let mut m = serde_json::Map::new();
    for (n, v) in pairs {
        if let Some(col) = n.strip_prefix("k.") {
            if v.is_empty() {
                return Err(WebError::BadRequest(format!("Enter a value for the key column {col}.")));
            }
            m.insert(col.to_string(), Value::String(v.clone()));
        }
    }
    if m.is_empty() {
        return Err(WebError::BadRequest("Enter the row's key.".into()));
    }
    Ok(Value::Object(m))
}

pub(super) fn why_command(pairs: &[(String, String)]) -> Result<String, WebError> {
    let c = pairs.iter().find(|(n, _)| n == "command").map_or("select", |(_, c)| c.as_str());
    WHY_COMMANDS
        .iter()
        .find(|w| **w == c)
        .map(|w| w.to_string())
        .ok_or_else(|| WebError::BadRequest("command must be select, update or delete".into()))
}

/// POST (explain_access is audited: GETs never write). Runs as the admin
/// (the session without the impersonation: explain_access is admin-only) for
/// the principal the running *View as…* impersonates.
pub(super) async fn why_post(
    State(app): State<App>,
    s: Session,
    Path((schema, table)): Path<(String, String)>,
    WebForm(pairs): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    use fluxbase_core::explorer::quote_ident;
    let Some(id) = s.imp else {
        return Err(WebError::BadRequest("Start “View as…” first: Why? explains what the impersonated user may see.".into()));
    };
    let key = why_key(&pairs)?;
    let command = why_command(&pairs)?;
    let tbl = format!("{}.{}", quote_ident(&schema), quote_ident(&table));
    let (who, v) = app
        .db
        .with_session(&s.token, async |tx, me| {
            let live = imp::live(tx, me, id)
                .await?
                .ok_or_else(|| WebError::BadRequest("The impersonation has ended: start “View as…” again.".into()))?;
            let v = crate::api::advisor::explain_access(tx, &tbl, &key, &live.who, &command, None).await?;
            Ok((live.who, v))
        })
        .await?;
    html(&WhyPartial { v: crate::routes::advisor::Verdict::from_json(&v), who, command, key: key.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn the_key_from_a_row_or_the_form() {
        assert_eq!(why_key(&pairs(&[("key", r#"{"id":"1"}"#), ("k.id", "9")])).unwrap(), json!({"id": "1"}));
        assert_eq!(why_key(&pairs(&[("k.a", "1"), ("k.b\"<x>", "x'; drop")])).unwrap(), json!({"a": "1", "b\"<x>": "x'; drop"}));
        assert!(why_key(&pairs(&[("key", "{nope")])).is_err());
        assert!(why_key(&pairs(&[("k.id", "")])).is_err());
        assert!(why_key(&pairs(&[("command", "select")])).is_err());
    }

    #[test]
    fn only_select_update_delete() {
        assert_eq!(why_command(&pairs(&[])).unwrap(), "select");
        assert_eq!(why_command(&pairs(&[("command", "delete")])).unwrap(), "delete");
        assert!(why_command(&pairs(&[("command", "insert")])).is_err());
        assert!(why_command(&pairs(&[("command", "select; drop")])).is_err());
    }
}
