//! Settings: every key of `dashboard_auth.setting_definitions()` as a typed
//! field (interval text, whole number or on/off) with its bounds and default,
//! saved one at a time with `set_setting` (the database validates and may
//! refuse: its message is shown by the field); a security posture panel.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use fluxbase_core::settings::{Kind, SETTINGS};
use serde::Deserialize;
use uuid::Uuid;

use super::{can_write, Url};
use crate::db::Tx;
use crate::error::WebError;
use crate::form::WebForm;
use crate::render::page;
use crate::session::{HxRequest, Session};
use crate::{api, App};

pub fn router() -> Router<App> {
    Router::new().route(Url::Settings.path(), get(list_get)).route("/admin/settings/save", post(save_post))
}

/// One setting as a form field.
pub struct Field {
    pub key: String,
    pub description: String,
    /// `interval`, `integer` or `boolean`.
    pub kind: &'static str,
    pub value: String,
    pub default: String,
    pub min: String,
    pub max: String,
    pub is_default: bool,
}

impl Field {
    pub fn checked(&self) -> bool {
        self.value == "true"
    }
    pub fn dom_id(&self) -> String {
        self.key.replace('.', "-")
    }
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn duration(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s % 86400 == 0 => (s / 86400, "day"),
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub struct Posture {
    pub admins: usize,
    pub admins_with_2fa: usize,
    pub mfa_required: bool,
    pub idle_timeout: String,
    pub absolute_timeout: String,
    pub reauth_window: String,
}

#[derive(Template)]
#[template(path = "settings/list_partial.html")]
struct SettingsPartial {
    /// The session's CSRF token for the forms (htmx sends it as a header too).
    csrf: String,
    can_write: bool,
    fields: Vec<Field>,
    posture: Posture,
    saved: Option<String>,
}

async fn partial(tx: &Tx<'_>, me: Uuid, s: &Session, saved: Option<String>) -> Result<SettingsPartial, WebError> {
    let mut fields = Vec::new();
    for d in api::settings::definitions(tx).await? {
        let value = api::settings::get_setting(tx, &d.key).await?;
        // Bounds as the extension's core defines them (the database checks them).
        let (kind, min, max) = match SETTINGS.iter().find(|s| s.key == d.key).map(|s| s.kind) {
            Some(Kind::Interval { min_secs, max_secs }) => ("interval", duration(min_secs), duration(max_secs)),
            Some(Kind::Integer { min, max }) => ("integer", min.to_string(), max.to_string()),
            Some(Kind::Boolean) | None if value.is_boolean() => ("boolean", String::new(), String::new()),
            _ => ("text", String::new(), String::new()),
        };
        fields.push(Field {
            is_default: value == d.default_value,
            value: show(&value),
            default: show(&d.default_value),
            key: d.key,
            description: d.description,
            kind,
            min,
            max,
        });
    }
    let admins = api::admins::list(tx).await?;
    let get = |k: &str| fields.iter().find(|f| f.key == k).map(|f| f.value.clone()).unwrap_or_default();
    let posture = Posture {
        admins: admins.len(),
        admins_with_2fa: admins.iter().filter(|a| a.totp_enabled).count(),
        mfa_required: get("mfa.required") == "true",
        idle_timeout: get("session.idle_timeout"),
        absolute_timeout: get("session.absolute_timeout"),
        reauth_window: get("session.reauth_window"),
    };
    Ok(SettingsPartial { csrf: s.csrf.clone(), can_write: can_write(tx, me).await?, fields, posture, saved })
}

async fn list_get(State(app): State<App>, s: Session, hx: HxRequest) -> Result<Response, WebError> {
    page(&app, &s, hx, Url::Settings, "Settings", async |tx, me| partial(tx, me, &s, None).await).await
}

#[derive(Deserialize)]
struct SaveInput {
    key: String,
    kind: String,
    value: Option<String>,
}

async fn save_post(State(app): State<App>, s: Session, hx: HxRequest, WebForm(f): WebForm<SaveInput>) -> Result<Response, WebError> {
    let raw = f.value.unwrap_or_default();
    // The form's field type decides the JSON type; the database validates the value.
    let value = match f.kind.as_str() {
        "boolean" => serde_json::Value::Bool(raw == "true"),
        "integer" => match raw.trim().parse::<i64>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => return Err(WebError::BadRequest(format!("{}: enter a whole number", f.key))),
        },
        _ => serde_json::Value::String(raw.trim().to_string()),
    };
    page(&app, &s, hx, Url::Settings, "Settings", async |tx, me| {
        api::settings::set_setting(tx, &f.key, &value).await?;
        partial(tx, me, &s, Some(f.key.clone())).await
    })
    .await
}
