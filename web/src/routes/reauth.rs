//! Step-up re-authentication in the browser. A destructive action refused
//! with FBR01 answers the dialog (`error::reauth_dialog`); its form posts
//! here, which calls `dashboard_auth.reauthenticate` in the session's
//! transaction. Success: 204 with `HX-Trigger: fbReauthed`, on which `app.js`
//! closes the dialog and resubmits the refused form. A wrong secret: the
//! dialog again with the message (the database audited and counted it).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use super::Url;
use crate::error::{reauth_dialog, WebError};
use crate::form::WebForm;
use crate::session::Session;
use crate::{api, App};

pub fn router() -> Router<App> {
    Router::new().route(Url::Reauth.path(), post(reauth_post))
}

#[derive(Deserialize)]
struct ReauthInput {
    secret: String,
}

async fn reauth_post(State(app): State<App>, s: Session, WebForm(f): WebForm<ReauthInput>) -> Result<Response, WebError> {
    let secret = f.secret.trim();
    let until = app.db.with_session(&s.token, async |tx, _| api::stepup::reauthenticate(tx, secret).await).await?;
    Ok(match until {
        Some(_) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut().insert("HX-Trigger", HeaderValue::from_static("fbReauthed"));
            r
        }
        None => reauth_dialog(Some("That password or code is not right.")),
    })
}
