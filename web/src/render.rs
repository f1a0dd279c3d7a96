//! The shell every page uses (top bar with product name, navigation, the
//! signed-in admin and role) and the full page vs htmx fragment choice: an
//! htmx request gets the partial alone, a normal one the partial inside
//! `templates/base.html` (which prints it with `|safe`, our only one).

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use uuid::Uuid;

use crate::api;
use crate::assets::{self, Links};
use crate::db::Tx;
use crate::error::WebError;
use crate::urls::{Url, NAV};
use crate::session::{HxRequest, Session};
use crate::App;

/// One entry of the top bar.
pub struct NavLink {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// What the top bar shows about the signed-in admin.
pub struct Chrome {
    pub name: String,
    pub email: String,
    /// `admin` or `viewer` (the database role without its prefix).
    pub role: String,
    pub nav: Vec<NavLink>,
    /// The admin's running impersonation: the orange banner of every page.
    pub banner: Option<api::impersonation::Live>,
}

impl Chrome {
    /// The top bar for admin `me`, with `section` marked current.
    pub async fn load(tx: &Tx<'_>, me: Uuid, section: Url) -> Result<Chrome, WebError> {
        let a = api::accounts::get_admin(tx, me).await?;
        let nav = NAV
            .iter()
            .map(|n| NavLink { label: n.label, href: n.url.path(), current: n.url == section })
            .collect();
        let role = a.role.strip_prefix("dashboard_").unwrap_or(&a.role).to_string();
        Ok(Chrome { name: a.full_name, email: a.email, role, nav, banner: None })
    }
}

/// The whole page: `<head>`, top bar (when signed in), the content.
#[derive(Template)]
#[template(path = "base.html")]
pub struct Shell<'a> {
    pub assets: &'static Links,
    pub title: &'a str,
    pub chrome: Option<Chrome>,
    /// The session's CSRF token, for `hx-headers` and the sign-out form.
    pub csrf: Option<&'a str>,
    /// The rendered partial (escaped by its own template).
    pub content: String,
}

/// Render a template into a response (a render error is a 500).
pub fn html(t: &impl Template) -> Result<Response, WebError> {
    Ok(Html(t.render().map_err(|e| WebError::internal(format!("template: {e}")))?).into_response())
}

/// A full page around `partial`.
pub fn full(title: &str, chrome: Option<Chrome>, csrf: Option<&str>, partial: &impl Template) -> Result<Response, WebError> {
    let content = partial.render().map_err(|e| WebError::internal(format!("template: {e}")))?;
    html(&Shell { assets: assets::links(), title, chrome, csrf, content })
}

/// The usual handler body: in one session transaction, build the partial
/// with `f`; a normal request gets it inside the shell of `section`, an htmx
/// request the partial alone.
pub async fn page<P: Template>(
    app: &App,
    s: &Session,
    hx: HxRequest,
    section: Url,
    title: &str,
    f: impl AsyncFnOnce(&Tx<'_>, Uuid) -> Result<P, WebError>,
) -> Result<Response, WebError> {
    let (partial, chrome) = app
        .db
        .with_session(&s.token, async |tx, me| {
            let partial = f(tx, me).await?;
            let chrome = if hx.0 { None } else { Some(Chrome::load_with_banner(tx, me, section, s.imp).await?) };
            Ok((partial, chrome))
        })
        .await?;
    let ended = s.imp.is_some() && chrome.as_ref().is_some_and(|c| c.banner.is_none());
    let mut resp = if hx.0 { html(&partial)? } else { full(title, chrome, Some(&s.csrf), &partial)? };
    if ended {
        forget_impersonation(&mut resp);
    }
    Ok(resp)
}

impl Chrome {
    /// The top bar plus the banner of impersonation `imp` when it still runs.
    pub async fn load_with_banner(tx: &Tx<'_>, me: Uuid, section: Url, imp: Option<Uuid>) -> Result<Chrome, WebError> {
        let mut c = Chrome::load(tx, me, section).await?;
        if let Some(id) = imp {
            c.banner = api::impersonation::live(tx, me, id).await?;
        }
        Ok(c)
    }
}

/// Clear the impersonation cookie (it ended: stopped or expired).
pub fn forget_impersonation(resp: &mut Response) {
    resp.headers_mut()
        .append(axum::http::header::SET_COOKIE, crate::cookies::clear(crate::cookies::IMPERSONATION));
}
