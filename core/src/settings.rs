//! The typed, validated settings of `dashboard_auth.settings`. Each key has a
//! kind, bounds and a default; anything else is refused, so a typo or a hostile
//! value can never switch a protection off.

use serde_json::Value;

use crate::error::{FbError, FbResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An interval, stored as a JSON string Postgres can cast (`"30 minutes"`);
    /// bounds in seconds.
    Interval { min_secs: i64, max_secs: i64 },
    Integer { min: i64, max: i64 },
    Boolean,
    /// A WebAuthn relying party id (issue 33): a domain name, or "" (unset).
    RpId,
    /// A list of WebAuthn origins (issue 33): `["https://admin.example.com"]`.
    Origins,
}

#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    pub kind: Kind,
    pub default: &'static str, // JSON text
    pub description: &'static str,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86400;

pub const SETTINGS: &[Setting] = &[
    Setting { key: "session.idle_timeout", kind: Kind::Interval { min_secs: MINUTE, max_secs: 30 * DAY }, default: "\"30 minutes\"", description: "a session unused this long ends" },
    Setting { key: "session.absolute_timeout", kind: Kind::Interval { min_secs: 5 * MINUTE, max_secs: 90 * DAY }, default: "\"12 hours\"", description: "a session ends this long after login, used or not" },
    Setting { key: "lockout.max_attempts", kind: Kind::Integer { min: 1, max: 100 }, default: "5", description: "consecutive failed logins that lock an account" },
    Setting { key: "lockout.duration", kind: Kind::Interval { min_secs: MINUTE, max_secs: 7 * DAY }, default: "\"15 minutes\"", description: "how long a locked account stays locked" },
    Setting { key: "impersonation.max_duration", kind: Kind::Interval { min_secs: MINUTE, max_secs: DAY }, default: "\"1 hour\"", description: "an impersonation ends by itself after this long" },
    Setting { key: "password.min_length", kind: Kind::Integer { min: 8, max: 256 }, default: "12", description: "shortest admin password accepted" },
    Setting { key: "session.reauth_window", kind: Kind::Interval { min_secs: MINUTE, max_secs: HOUR }, default: "\"5 minutes\"", description: "step-up actions need the password or a 2FA code re-entered (dashboard_auth.reauthenticate) within this long" },
    Setting { key: "mfa.required", kind: Kind::Boolean, default: "false", description: "admins without 2FA get a session that can only enroll" },
    // issue 33: passkeys
    Setting { key: "webauthn.rp_id", kind: Kind::RpId, default: "\"\"", description: "the passkeys' relying party id: the dashboard's domain name (\"\" = passkeys off)" },
    Setting { key: "webauthn.origins", kind: Kind::Origins, default: "[]", description: "the dashboard URLs passkeys are accepted from, e.g. [\"https://admin.example.com\"]" },
    Setting { key: "auth.passwordless", kind: Kind::Boolean, default: "false", description: "admins may sign in with a passkey alone (no password)" },
    Setting { key: "mfa.phishing_resistant_required", kind: Kind::Boolean, default: "false", description: "sign-in needs a passkey as second factor: TOTP codes are refused (backup codes stay as recovery)" },
];

pub fn lookup(key: &str) -> FbResult<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key).ok_or_else(|| {
        let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        FbError::invalid(format!("unknown setting '{}'", key.chars().take(80).collect::<String>()))
            .with_hint(format!("known settings: {}", known.join(", ")))
    })
}

/// What the extension must still check with Postgres' help: an interval string
/// must be cast to seconds and the seconds passed to [`check_interval_secs`].
#[derive(Debug, PartialEq)]
pub enum Checked {
    Ready(Value),
    IntervalText(String),
}

pub fn validate(key: &str, value: &Value) -> FbResult<Checked> {
    let s = lookup(key)?;
    match s.kind {
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(Checked::Ready(value.clone())),
            _ => Err(FbError::invalid(format!("setting '{key}' takes true or false, not {value}"))),
        },
        Kind::Integer { min, max } => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Checked::Ready(value.clone())),
            Some(n) => Err(FbError::invalid(format!("setting '{key}' must be between {min} and {max}, not {n}"))),
            None => Err(FbError::invalid(format!("setting '{key}' takes a whole number, not {}", short(value)))),
        },
        Kind::Interval { .. } => match value {
            Value::String(t) if !t.trim().is_empty() && t.len() <= 64 => Ok(Checked::IntervalText(t.clone())),
            _ => Err(FbError::invalid(format!("setting '{key}' takes an interval as a string such as \"30 minutes\", not {}", short(value)))),
        },
        Kind::RpId => match value {
            Value::String(t) if t.is_empty() => Ok(Checked::Ready(value.clone())),
            Value::String(t) => crate::passkey::check_rp_id(t).map(|_| Checked::Ready(value.clone())),
            _ => Err(FbError::invalid(format!("setting '{key}' takes a domain name as a string, not {}", short(value)))),
        },
        Kind::Origins => match value {
            Value::Array(a) if a.len() <= crate::passkey::MAX_ORIGINS => {
                let mut out = Vec::new();
                for o in a {
                    let Value::String(o) = o else {
                        return Err(FbError::invalid(format!("setting '{key}' takes a list of origins as strings, not {}", short(value))));
                    };
                    let url = crate::passkey::check_origin(o)?;
                    out.push(Value::String(url.origin().ascii_serialization()));
                }
                Ok(Checked::Ready(Value::Array(out)))
            }
            _ => Err(FbError::invalid(format!(
                "setting '{key}' takes a list of at most {} origins such as [\"https://admin.example.com\"], not {}",
                crate::passkey::MAX_ORIGINS,
                short(value)
            ))),
        },
    }
}

pub fn check_interval_secs(key: &str, secs: f64) -> FbResult<()> {
    let s = lookup(key)?;
    if let Kind::Interval { min_secs, max_secs } = s.kind {
        if !(secs >= min_secs as f64 && secs <= max_secs as f64) {
            return Err(FbError::invalid(format!(
                "setting '{key}' must be between {} and {}",
                human(min_secs),
                human(max_secs)
            )));
        }
    }
    Ok(())
}

fn human(secs: i64) -> String {
    match secs {
        s if s % DAY == 0 => format!("{} day(s)", s / DAY),
        s if s % HOUR == 0 => format!("{} hour(s)", s / HOUR),
        s if s % MINUTE == 0 => format!("{} minute(s)", s / MINUTE),
        s => format!("{s} second(s)"),
    }
}

fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 60 {
        format!("{}…", t.chars().take(60).collect::<String>())
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_validate() {
        for s in SETTINGS {
            let v: Value = serde_json::from_str(s.default).unwrap();
            validate(s.key, &v).unwrap();
        }
    }

    #[test]
    fn refuses_unknown_and_mistyped() {
        assert!(validate("session.idle_timeoutx", &json!("1 hour")).unwrap_err().hint.unwrap().contains("session.idle_timeout"));
        assert!(validate("lockout.max_attempts", &json!(0)).unwrap_err().message.contains("between 1 and 100"));
        assert!(validate("lockout.max_attempts", &json!("5")).is_err());
        assert!(validate("lockout.max_attempts", &json!(2.5)).is_err());
        assert!(validate("mfa.required", &json!("yes")).is_err());
        assert!(validate("session.idle_timeout", &json!(30)).is_err());
        assert_eq!(validate("session.idle_timeout", &json!("10 minutes")).unwrap(), Checked::IntervalText("10 minutes".into()));
        assert!(check_interval_secs("session.idle_timeout", 1.0).unwrap_err().message.contains("1 minute(s)"));
        check_interval_secs("session.idle_timeout", 600.0).unwrap();
        // issue 33
        assert!(validate("webauthn.rp_id", &json!("evil.com'; --")).is_err());
        assert!(validate("webauthn.rp_id", &json!(1)).is_err());
        validate("webauthn.rp_id", &json!("admin.example.com")).unwrap();
        assert_eq!(validate("webauthn.origins", &json!(["https://A.example.com/"])).unwrap(), Checked::Ready(json!(["https://a.example.com"])));
        assert!(validate("webauthn.origins", &json!("https://a.example.com")).is_err());
        assert!(validate("webauthn.origins", &json!(["http://a.example.com"])).is_err());
        assert!(validate("auth.passwordless", &json!("true")).is_err());
    }
}
