//! Users (app users, `auth.users`): keyset-paged list with search, filters
//! (confirmed, role) and sort kept in the URL, live sessions; a user's
//! page with all metadata, invite, change role, reset password, delete.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use uuid::Uuid;

use super::{can_write, go_to, Shown, Url};
use crate::api::users::{AppUser, ListedUser, UserFilter};
use crate::db::Tx;
use crate::error::WebError;
use crate::form::WebForm;
use crate::render::page;
use crate::session::{HxRequest, Session};
use crate::{api, App};

const PAGE_SIZE: i32 = 50;

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::Users.path(), get(list_get))
        .route("/admin/users/invite", post(invite_post))
        .route("/admin/users/{id}", get(user_get))
        .route("/admin/users/{id}/role", post(role_post))
        .route("/admin/users/{id}/reset", post(reset_post))
        .route("/admin/users/{id}/delete", post(delete_post))
}

#[derive(Template)]
#[template(path = "users/list_partial.html")]
struct ListPartial {
    /// The session's CSRF token for the forms (htmx sends it as a header too).
    csrf: String,
    can_write: bool,
    q: ListQuery,
    /// The filters or search narrow the list (for the "no users" line).
    filtered: bool,
    users: Vec<ListedUser>,
    /// The next page's address (same search, filters and sort), when there may be one.
    next: Option<String>,
    shown: Option<Shown>,
    notice: Option<&'static str>,
}

/// The list's state, all in the URL (bookmarkable): search `q`, `confirmed`
/// (yes / no / all), `role`, `sort` (email, created_at, last_sign_in_at),
/// `dir` (asc / desc) and `after`, the cursor of the previous page's last row.
#[derive(Deserialize, Default, Clone)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    confirmed: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    after: Option<String>,
    deleted: Option<u8>,
}

impl ListQuery {
    fn sort(&self) -> &str {
        if self.sort.is_empty() { "email" } else { &self.sort }
    }
    fn descending(&self) -> bool {
        self.dir == "desc"
    }
    fn confirmed(&self) -> Option<bool> {
        match self.confirmed.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }
    /// This list's address continuing after `cursor`.
    fn href_after(&self, cursor: &serde_json::Value) -> String {
        let pairs = [
            ("q", self.q.trim()), ("confirmed", self.confirmed.as_str()), ("role", self.role.trim()),
            ("sort", self.sort()), ("dir", if self.descending() { "desc" } else { "asc" }),
        ];
        let mut pairs: Vec<(&str, String)> =
            pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (*k, v.to_string())).collect();
        pairs.push(("after", cursor.to_string()));
        format!("{}?{}", Url::Users.path(), serde_urlencoded::to_string(&pairs).unwrap_or_default())
    }
}

async fn list_partial(tx: &Tx<'_>, me: Uuid, s: &Session, q: &ListQuery, shown: Option<Shown>) -> Result<ListPartial, WebError> {
    let nonempty = |v: &str| Some(v.trim()).filter(|v| !v.is_empty()).map(str::to_string);
    let (search, role) = (nonempty(&q.q), nonempty(&q.role));
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(serde_json::from_str(a).map_err(|_| WebError::BadRequest("after is not a cursor of this list".into()))?),
        None => None,
    };
    let filter = UserFilter {
        search: search.as_deref(),
        confirmed: q.confirmed(),
        role: role.as_deref(),
        sort: q.sort(),
        descending: q.descending(),
        page_size: PAGE_SIZE,
        after,
    };
    let users = api::users::search(tx, &filter).await?;
    let next = (users.len() == PAGE_SIZE as usize).then(|| users.last().map(|u| q.href_after(&u.cursor))).flatten();
    Ok(ListPartial {
        csrf: s.csrf.clone(),
        can_write: can_write(tx, me).await?,
        filtered: search.is_some() || role.is_some() || filter.confirmed.is_some(),
        q: q.clone(),
        users,
        next,
        shown,
        notice: q.deleted.map(|_| "The user was deleted."),
    })
}

async fn list_get(State(app): State<App>, s: Session, hx: HxRequest, Query(q): Query<ListQuery>) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Users, "Users", async |tx, me| list_partial(tx, me, &s, &q, None).await).await
}

#[derive(Deserialize)]
struct InviteInput {
    email: String,
    role: String,
}

async fn invite_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<InviteInput>) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Users, "Users", async |tx, me| {
        let invited = api::users::invite(tx, f.email.trim(), f.role.trim()).await?;
        let shown = Shown { label: "Invitation token for the new user (shown once)", value: invited.invite_token };
        list_partial(tx, me, &s, &ListQuery::default(), Some(shown)).await
    })
    .await
}

#[derive(Template)]
#[template(path = "users/user_partial.html")]
struct UserPartial {
    csrf: String,
    can_write: bool,
    user: AppUser,
    shown: Option<Shown>,
    notice: Option<&'static str>,
}

async fn user_partial(tx: &Tx<'_>, me: Uuid, s: &Session, id: Uuid, shown: Option<Shown>, notice: Option<&'static str>) -> Result<UserPartial, WebError> {
    Ok(UserPartial { csrf: s.csrf.clone(), can_write: can_write(tx, me).await?, user: api::users::get(tx, id).await?, shown, notice })
}

async fn user_get(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Users, "User", async |tx, me| user_partial(tx, me, &s, id, None, None).await).await
}

#[derive(Deserialize)]
struct RoleInput {
    role: String,
}

async fn role_post(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    Path(id): Path<Uuid>,
    WebForm(f): WebForm<RoleInput>,
) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Users, "User", async |tx, me| {
        api::users::update_role(tx, id, f.role.trim()).await?;
        user_partial(tx, me, &s, id, None, Some("Role changed.")).await
    })
    .await
}

async fn reset_post(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Users, "User", async |tx, me| {
        let token = api::users::reset_password(tx, id).await?;
        user_partial(tx, me, &s, id, Some(Shown { label: "Password reset token (one-time, shown once)", value: token }), None).await
    })
    .await
}

async fn delete_post(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    app.db.with_session(&s.token, async |tx, _| api::users::delete(tx, id).await).await?;
    Ok(go_to(&format!("{}?deleted=1", Url::Users.path()), hx.0))
}
