use super::*;

// ------------------------------------------------------------ impersonation

#[derive(Deserialize)]
pub(super) struct ViewAsForm {
    target: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// Where starting or stopping *View as…* returns to: the page it was
/// started from (`back`, the browser's path and query) when that is a path of
/// this dashboard, else the tables list. Only `/admin` or `/admin/...` is
/// taken, made of visible ASCII (a Location header's), with no `//`, no
/// backslash (browsers read `/\` as `//`, another host) and no `.`/`..`
/// segment, also percent-encoded (`/admin/%2e%2e/x` is `/x`).
pub fn back_to(back: &str) -> String {
    let fallback = || Url::Tables.path().to_string();
    if !back.bytes().all(|b| b.is_ascii_graphic()) {
        return fallback();
    }
    let path = back.split(['?', '#']).next().unwrap_or("");
    if path != "/admin" && !path.starts_with("/admin/") {
        return fallback();
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if decoded.contains("//") || decoded.contains('\\') || decoded.split('/').any(|seg| seg == "." || seg == "..") {
        return fallback();
    }
    back.to_string()
}

/// Start *View as…*: one impersonation per admin session (a running one
/// must be stopped first); the database requires the reason and records it.
pub(super) async fn view_as_post(State(app): State<App>, s: Session, WebForm(f): WebForm<ViewAsForm>) -> Result<Response, WebError> {
    let id = app
        .db
        .with_session_as(&s.token, s.imp, async |tx, v| {
            if v.imp.is_some() {
                return Err(WebError::BadRequest("An impersonation is already running: stop it first.".into()));
            }
            imp::start(tx, f.target.trim(), &f.reason).await
        }, async |_, _| Ok(()))
        .await?
        .1;
    let mut resp = Redirect::to(&back_to(&f.back)).into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookies::set(cookies::IMPERSONATION, &id.to_string(), None));
    Ok(resp)
}

/// Options of the *View as…* field: the app users whose email or id matches
/// what was typed (`dashboard.list_users`, as the admin), then `anon` and
/// `service_role`.
#[derive(Template)]
#[template(
    source = "{% for (value, label) in users %}<option value=\"{{ value }}\">{{ label }}</option>{% endfor %}<option value=\"anon\"><option value=\"service_role\">",
    ext = "html"
)]
struct ViewAsOptions {
    users: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub(super) struct ViewAsQuery {
    #[serde(default)]
    target: String,
}

pub(super) async fn view_as_users_get(
    State(app): State<App>,
    s: Session,
    axum::extract::Query(q): axum::extract::Query<ViewAsQuery>,
) -> Result<Response, WebError> {
    let search = Some(q.target.trim()).filter(|t| !t.is_empty());
    let filter = crate::api::users::UserFilter {
        search,
        confirmed: None,
        role: None,
        sort: "email",
        descending: false,
        page_size: 10,
        after: None,
    };
    let users = app.db.with_session(&s.token, async |tx, _| crate::api::users::search(tx, &filter).await).await?;
    let users = users
        .into_iter()
        .map(|l| l.user)
        .map(|u| {
            let value = u.email.clone().unwrap_or_else(|| u.id.to_string());
            (value, format!("{} · {} · {}", u.email.as_deref().unwrap_or("(no email)"), u.role, u.id))
        })
        .collect();
    html(&ViewAsOptions { users })
}

#[derive(Deserialize)]
pub(super) struct StopForm {
    #[serde(default)]
    back: String,
}

pub(super) async fn stop_post(State(app): State<App>, s: Session, WebForm(f): WebForm<StopForm>) -> Result<Response, WebError> {
    if let Some(id) = s.imp {
        app.db
            .with_session(&s.token, async |tx, me| {
                if imp::live(tx, me, id).await?.is_some() {
                    imp::stop(tx, id).await?;
                }
                Ok(())
            })
            .await?;
    }
    let mut resp = Redirect::to(&back_to(&f.back)).into_response();
    forget_impersonation(&mut resp);
    Ok(resp)
}
