//! Typed settings: `get_setting`, `set_setting`, the `settings` view.

use fluxbase_core::settings::{self as rules, Checked};
use fluxbase_core::error::require_text;
use fluxbase_core::{Code, FbError};
use pgrx::datum::JsonB;
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::audit::{self, Event};
use crate::runtime::json::{self, JsonArg};
use crate::runtime::{actor, db, errors::OrRaise};

/// A SQL expression for one setting's current value (set, or the default),
/// cast to `sql_type`, for use inside other queries. Keys and defaults are
/// constants of the core crate, never caller input.
pub fn sql_value(key: &str, sql_type: &str) -> String {
    let setting = rules::lookup(key).or_raise();
    let default: Value = serde_json::from_str(setting.default).expect("defaults are valid JSON");
    let default_text = match default {
        Value::String(t) => t,
        other => other.to_string(),
    };
    format!(
        "coalesce((SELECT (value #>> '{{}}')::{sql_type} FROM dashboard_auth.settings_store WHERE key = '{key}'), '{default_text}'::{sql_type})"
    )
}

fn default_of(key: &str) -> Value {
    serde_json::from_str(rules::lookup(key).or_raise().default).expect("defaults are valid JSON")
}

/// The current value of a setting: the one set, or its default.
pub fn get(key: &str) -> Value {
    rules::lookup(key).or_raise();
    db::one::<JsonB>("SELECT value FROM dashboard_auth.settings_store WHERE key = $1", &[key.into()])
        .map(|j| j.0)
        .unwrap_or_else(|| default_of(key))
}

pub fn get_i64(key: &str) -> i64 {
    get(key).as_i64().unwrap_or_default()
}

pub fn get_bool(key: &str) -> bool {
    get(key).as_bool().unwrap_or(false)
}

#[pg_extern(schema = "dashboard_auth", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn get_setting(key: Option<&str>) -> Option<JsonB> {
    let key = require_text("key", key, 100).or_raise();
    actor::reader();
    Some(JsonB(get(key)))
}

#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn set_setting(key: Option<&str>, value: Option<JsonArg>) {
    let key = require_text("key", key, 100).or_raise();
    let value = json::value_of(value, "value");
    let actor = actor::writer("changing settings");
    if fluxbase_core::stepup::is_security_setting(key) {
        crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::ChangeSecuritySetting);
    }
    let value = match rules::validate(key, &value).or_raise() {
        Checked::Ready(v) => v,
        Checked::IntervalText(text) => {
            // Postgres is the authority on interval syntax; the bounds are ours.
            let secs = db::one::<f64>("SELECT extract(epoch FROM $1::interval)::float8", &[text.as_str().into()])
                .unwrap_or(-1.0);
            rules::check_interval_secs(key, secs).or_raise();
            Value::String(text)
        }
    };
    // An admin turning on mfa.phishing_resistant_required must hold a passkey
    // already: otherwise their own next sign-in (and that of every admin
    // without one) could only enroll, and the web cannot enroll a passkey
    // everywhere yet (issue 33). A database role (an operator in psql) may.
    if key == "mfa.phishing_resistant_required" && value == Value::Bool(true) {
        if let actor::Actor::Admin(a) = &actor {
            if crate::admin::passkeys::count_of(a.user_id) == 0 {
                Err::<(), _>(
                    FbError::new(
                        Code::WrongState,
                        "register a passkey before requiring phishing-resistant sign-in: without one your own next sign-in could only enroll",
                    )
                    .with_hint("dashboard_auth.passkey_register_begin(name), then passkey_register_finish(credential)"),
                )
                .or_raise();
            }
        }
    }
    let old = get(key);
    db::execute(
        "INSERT INTO dashboard_auth.settings_store AS s (key, value, updated_by) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by",
        &[key.into(), JsonB(value.clone()).into(), actor.label().into()],
    );
    audit::record(Event::new("settings.update", "setting", key).details(json!({ "old": old, "new": value })));
}

/// Every known setting: key, default and what it does (from the Rust core).
#[pg_extern(schema = "dashboard_auth", immutable, parallel_safe)]
fn setting_definitions() -> TableIterator<'static, (name!(key, String), name!(default_value, JsonB), name!(description, String))> {
    TableIterator::new(rules::SETTINGS.iter().map(|s| {
        (s.key.to_string(), JsonB(serde_json::from_str(s.default).expect("defaults are valid JSON")), s.description.to_string())
    }))
}

/// A setting's current value without any caller check, for the extension's own triggers.
#[pg_extern(schema = "dashboard_auth", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn _setting_value(key: &str) -> JsonB {
    JsonB(get(key))
}
