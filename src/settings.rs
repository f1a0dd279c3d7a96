//! Typed settings: `get_setting`, `set_setting`, the `settings` view.

use fluxbase_core::settings::{self as rules, Checked};
use fluxbase_core::error::require_text;
use pgrx::datum::JsonB;
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::audit::{self, Event};
use crate::{actor, db, errors::OrRaise};

/// SQL that reads one interval setting, for use inside other queries.
pub const IDLE_TIMEOUT_SQL: &str =
    "(SELECT (value #>> '{}')::interval FROM dashboard_auth.settings_store WHERE key = 'session.idle_timeout')";
pub const ABSOLUTE_TIMEOUT_SQL: &str =
    "(SELECT (value #>> '{}')::interval FROM dashboard_auth.settings_store WHERE key = 'session.absolute_timeout')";

pub fn get(key: &str) -> Value {
    rules::lookup(key).or_raise();
    db::one::<JsonB>("SELECT value FROM dashboard_auth.settings_store WHERE key = $1", &[key.into()])
        .map(|j| j.0)
        .unwrap_or(Value::Null)
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
fn set_setting(key: Option<&str>, value: Option<JsonB>) {
    let key = require_text("key", key, 100).or_raise();
    let value = value.map(|j| j.0).unwrap_or(Value::Null);
    let actor = actor::writer("changing settings");
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
    let old = db::one::<JsonB>(
        "UPDATE dashboard_auth.settings_store s SET value = $2, updated_at = now(), updated_by = $3
         FROM dashboard_auth.settings_store o WHERE s.key = $1 AND o.key = s.key RETURNING o.value",
        &[key.into(), JsonB(value.clone()).into(), actor.label().into()],
    );
    audit::record(Event::new("settings.update", "setting", key).details(json!({
        "old": old.map(|j| j.0), "new": value,
    })));
}

/// Called once by the install script: write every known key with its default.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn _install_default_settings() {
    for s in rules::SETTINGS {
        let v: Value = serde_json::from_str(s.default).expect("defaults are valid JSON");
        db::execute(
            "INSERT INTO dashboard_auth.settings_store (key, value, default_value, description)
             VALUES ($1, $2, $2, $3) ON CONFLICT (key) DO NOTHING",
            &[s.key.into(), JsonB(v).into(), s.description.into()],
        );
    }
}
