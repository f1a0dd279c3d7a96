//! Step-up re-authentication (issue 20): `dashboard_auth.reauthenticate`
//! records on the admin's session that they re-entered their password or a
//! 2FA code; `require_recent_auth`, called at the top of each destructive
//! function, refuses an admin session outside `session.reauth_window` with
//! SQLSTATE FBR01. The rules (which actions, the window) are
//! fluxbase_core::stepup; callers without an admin identity (`db:<role>`) are
//! never asked.

use fluxbase_core::error::check_len;
use fluxbase_core::password;
use fluxbase_core::stepup::{self as rules, Action, SecretKind};
use fluxbase_core::token::sha256;
use fluxbase_core::{Code, FbError};
use pgrx::datum::{TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::json;

use crate::admin::accounts::{clear_throttle, count_failure, lock_throttle};
use crate::runtime::actor::{self, Actor};
use crate::audit::{self, Event};
use crate::runtime::errors::{raise, OrRaise};
use crate::admin::{mfa, sessions, settings};
use crate::runtime::db;

/// At load (`_PG_init`): the audit log's destructive calls (under admin)
/// reach `require_recent_auth` through this hook.
pub fn init() {
    crate::runtime::hooks::on_require_recent_auth(require_recent_auth);
}

/// Refuse (FBR01) unless the acting admin session re-authenticated within the
/// window. A no-op for callers without an admin session. Call it after the
/// role checks, so a viewer still gets 42501 first.
pub fn require_recent_auth(action: Action) {
    let Actor::Admin(me) = actor::current() else { return };
    // As the owner: disable_audit runs as its caller, who may not read the settings.
    // The column is read through to_jsonb so that the SQL of a version before
    // 0.3.0, served by this library until ALTER EXTENSION UPDATE, keeps working:
    // that version has no reauthenticate and promised no step-up.
    let (has_column, reauth_at, now, window) = db::as_extension_owner(|| {
        let sql = format!(
            "SELECT to_jsonb(s) ? 'reauthenticated_at',
                    extract(epoch FROM (to_jsonb(s) ->> 'reauthenticated_at')::timestamptz)::float8,
                    extract(epoch FROM now())::float8, extract(epoch FROM {})::float8
             FROM (SELECT) AS one LEFT JOIN dashboard_auth.sessions s ON s.id = $1",
            settings::sql_value(rules::WINDOW_SETTING, "interval")
        );
        db::select(&sql, &[me.session_id.into()], |r| {
            Ok((r.get::<bool>(1)?, r.get::<f64>(2)?, r.get::<f64>(3)?, r.get::<f64>(4)?))
        })
        .into_iter()
        .next()
        .unwrap_or((None, None, None, None))
    });
    if has_column == Some(false) {
        return;
    }
    rules::check_window(action, reauth_at, now.unwrap_or(f64::NAN), window.unwrap_or(0.0)).or_raise();
}

/// How a presented secret was proven, or why not.
fn verify_secret(user_id: Uuid, secret: &str) -> Result<&'static str, &'static str> {
    let password_ok = |secret: &str| {
        let stored = db::one::<String>("SELECT password_hash FROM dashboard_auth.credentials WHERE user_id = $1", &[user_id.into()])
            .unwrap_or_default();
        password::verify_password(&stored, secret).ok
    };
    match rules::classify_secret(secret) {
        SecretKind::TotpCode => mfa::check_second_factor(user_id, secret),
        SecretKind::BackupCodeOrPassword => match mfa::check_second_factor(user_id, secret) {
            Ok(method) => Ok(method),
            Err(_) if password_ok(secret) => Ok("password"),
            Err(reason) => Err(reason),
        },
        SecretKind::Password if password_ok(secret) => Ok("password"),
        SecretKind::Password => Err("wrong_password"),
    }
}

/// Re-enter the password, a TOTP code or a backup code (consumed) under
/// `use_session`: step-up actions are allowed in this session until the
/// returned time. A wrong secret returns NULL rather than raising, so that the
/// failure's audit entry and its count toward the account's lockout are kept
/// (as `login` answers `invalid`); reaching the lockout ends this session.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn reauthenticate(secret: Option<&str>) -> Option<TimestampWithTimeZone> {
    actor::reader();
    let me = actor::session_admin("reauthenticate");
    let secret = secret.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "secret is required")));
    check_len("secret", secret, password::MAX_PASSWORD_CHARS).or_raise();
    reauthenticate_with(&me, || verify_secret(me.user_id, secret))
}

/// Record a re-authentication of `me` proven by `check` (a password, a code,
/// or a passkey assertion: issue 33): the lockout is consulted first, a
/// failure is audited and counted (reaching the lockout ends the session),
/// a success opens the step-up window. The time it ends, or None.
pub fn reauthenticate_with(
    me: &actor::AdminIdentity,
    check: impl FnOnce() -> Result<&'static str, &'static str>,
) -> Option<TimestampWithTimeZone> {
    let email_digest = sha256(me.email.as_bytes());
    let audit_reauth = |method: Option<&str>, reason: Option<&str>, ok: bool| {
        let ev = Event::new("session.reauth", "session", me.session_id)
            .details(json!({ "method": method, "reason": reason, "user_id": me.user_id.to_string() }));
        audit::record(if ok { ev } else { ev.failed() });
    };
    if lock_throttle(&email_digest) {
        audit_reauth(None, Some("locked"), false);
        return None;
    }
    match check() {
        Ok(method) => {
            clear_throttle(&email_digest);
            let sql = format!(
                "UPDATE dashboard_auth.sessions SET reauthenticated_at = now()
                 WHERE id = $1 AND revoked_at IS NULL RETURNING now() + {}",
                settings::sql_value(rules::WINDOW_SETTING, "interval")
            );
            let until = db::one::<TimestampWithTimeZone>(&sql, &[me.session_id.into()]);
            audit_reauth(Some(method), None, until.is_some());
            until
        }
        Err(reason) => {
            let locked_now = count_failure(&email_digest);
            audit_reauth(None, Some(reason), false);
            if locked_now {
                audit::record(
                    Event::new("login.lockout", "admin", me.user_id)
                        .details(json!({ "reason": "too many failed re-authentications" }))
                        .failed(),
                );
                sessions::revoke_where("id = $1", &[me.session_id.into()], "locked");
            }
            None
        }
    }
}
