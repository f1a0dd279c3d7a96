//! Admins: admin accounts (role, 2FA, last login, sessions, lockout with unlock), invitations
//! with revoke, every admin session with revoke and revoke-all, role change,
//! delete. A viewer sees it read-only; the database refuses its writes.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use uuid::Uuid;

use super::{can_write, Shown, Url};
use crate::api::admins::{AdminRow, Invitation, SessionRow};
use crate::db::Tx;
use crate::error::WebError;
use crate::form::WebForm;
use crate::render::page;
use crate::session::{HxRequest, Session};
use crate::{api, App};

pub fn router() -> Router<App> {
    Router::new()
        .route(Url::Admins.path(), get(list_get))
        .route("/admin/admins/invite", post(invite_post))
        .route("/admin/admins/invitations/{id}/revoke", post(revoke_invitation_post))
        .route("/admin/admins/sessions/{id}/revoke", post(revoke_session_post))
        .route("/admin/admins/{id}/revoke-all", post(revoke_all_post))
        .route("/admin/admins/{id}/role", post(role_post))
        .route("/admin/admins/{id}/unlock", post(unlock_post))
        .route("/admin/admins/{id}/delete", post(delete_post))
}

#[derive(Template)]
#[template(path = "admins/list_partial.html")]
struct AdminsPartial {
    /// The session's CSRF token for the forms (htmx sends it as a header too).
    csrf: String,
    me: Uuid,
    can_write: bool,
    admins: Vec<AdminRow>,
    invitations: Vec<Invitation>,
    sessions: Vec<SessionRow>,
    shown: Option<Shown>,
    /// After an invitation: the link to hand to the invitee (token in the fragment).
    invite_link: Option<String>,
    notice: Option<String>,
}

async fn partial(tx: &Tx<'_>, me: Uuid, s: &Session, shown: Option<Shown>, notice: Option<String>) -> Result<AdminsPartial, WebError> {
    Ok(AdminsPartial {
        csrf: s.csrf.clone(),
        me,
        can_write: can_write(tx, me).await?,
        admins: api::admins::list(tx).await?,
        invitations: api::admins::invitations(tx).await?,
        sessions: api::admins::sessions(tx).await?,
        shown,
        invite_link: None,
        notice,
    })
}

async fn list_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Admins, "Admins", async |tx, me| partial(tx, me, &s, None, None).await).await
}

/// Do `act` in the session's transaction, then show the page with `notice`.
async fn act(
    app: &App,
    s: &Session,
    hx: HxRequest,
    act: impl AsyncFnOnce(&Tx<'_>) -> Result<(Option<Shown>, String), WebError>,
) -> Result<Response, WebError> {
    page(app, s, hx, Url::Admins, "Admins", async |tx, me| {
        let (shown, notice) = act(tx).await?;
        partial(tx, me, s, shown, Some(notice)).await
    })
    .await
}

#[derive(Deserialize)]
struct InviteInput {
    email: String,
    role: String,
}

async fn invite_post(
    State(app): State<App>,
    s: Session,
    hx: HxRequest,
    WebForm(f): WebForm<InviteInput>,
) -> Result<Response, WebError> {
    // From --public-url (or the listen address), never the request's Host.
    let origin = crate::public_url::public_url();
    page(&app, &s, hx, Url::Admins, "Admins", async |tx, me| {
        let token = api::admins::invite(tx, f.email.trim(), &f.role).await?;
        // The token rides in the fragment: no server, log or Referer sees it.
        let link = format!("{origin}/admin/invitation#token={token}");
        let shown = Shown { label: "Invitation token (shown once): send it to the new admin", value: token };
        let mut p = partial(tx, me, &s, Some(shown), Some(format!("Invitation created for {}.", f.email.trim()))).await?;
        p.invite_link = Some(link);
        Ok(p)
    })
    .await
}

async fn revoke_invitation_post(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    act(&app, &s, hx, async |tx| {
        api::admins::revoke_invitation(tx, id).await?;
        Ok((None, "Invitation revoked.".into()))
    })
    .await
}

async fn revoke_session_post(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    act(&app, &s, hx, async |tx| {
        api::admins::revoke_session(tx, id).await?;
        Ok((None, "Session revoked.".into()))
    })
    .await
}

async fn revoke_all_post(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    act(&app, &s, hx, async |tx| {
        let n = api::admins::revoke_all_sessions(tx, id).await?;
        Ok((None, format!("{n} session(s) revoked.")))
    })
    .await
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
    act(&app, &s, hx, async |tx| {
        api::admins::update_role(tx, id, &f.role).await?;
        Ok((None, "Role changed.".into()))
    })
    .await
}

async fn unlock_post(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    act(&app, &s, hx, async |tx| {
        let was_locked = api::admins::unlock(tx, id).await?;
        Ok((None, if was_locked { "Admin unlocked." } else { "The admin was not locked; failed attempts cleared." }.into()))
    })
    .await
}

async fn delete_post(State(app): State<App>, s: Session, hx: HxRequest, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    act(&app, &s, hx, async |tx| {
        api::admins::delete(tx, id).await?;
        Ok((None, "Admin deleted.".into()))
    })
    .await
}
