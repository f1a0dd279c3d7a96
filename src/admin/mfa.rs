//! Admin two-factor authentication: TOTP enrollment (`totp_setup`,
//! `totp_enable`), `totp_disable`, backup codes, and `login_mfa`, the second
//! half of a login that answered `mfa_required`.
//!
//! The rules (RFC 6238 codes, replay refusal, backup code format, sealing of
//! the secret) live in fluxbase_core::totp; this module keeps the state: the
//! sealed secret and last accepted step in `credentials`, the backup code
//! digests in `backup_codes`.

use std::cell::Cell;
use std::ffi::CStr;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use fluxbase_core::error::require_text;
use fluxbase_core::token::{self, sha256, TokenKind};
use fluxbase_core::totp::{self, Presented};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{Inet, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::json;

use crate::admin::accounts::{clear_throttle, count_failure, lock_throttle, login_answer};
use crate::runtime::actor::{self, AdminIdentity};
use crate::audit::{self, Event};
use crate::runtime::errors::{raise, OrRaise};
use crate::admin::sessions;
use crate::runtime::db;

const KEY_FILE: &str = "fluxbase_admin.key";

/// The key that seals TOTP secrets: 32 random bytes in a file of the server's
/// data directory, made (mode 0600) the first time it is needed. Kept out of
/// the database on purpose: dumps and table copies don't carry it.
fn master_key() -> [u8; 32] {
    thread_local! {
        static KEY: Cell<Option<[u8; 32]>> = const { Cell::new(None) };
    }
    if let Some(k) = KEY.with(|c| c.get()) {
        return k;
    }
    let dir = unsafe {
        if pg_sys::DataDir.is_null() {
            raise(FbError::new(Code::WrongState, "the server's data directory is not known"));
        }
        CStr::from_ptr(pg_sys::DataDir).to_string_lossy().into_owned()
    };
    let path = PathBuf::from(&dir).join(KEY_FILE);
    let fail = |what: &str, e: std::io::Error| -> ! {
        raise(FbError::new(Code::WrongState, format!("cannot {what} the 2FA key file {}: {e}", path.display())))
    };
    if !path.exists() {
        // Write a new key under a private name, then link it into place: the
        // link fails if another backend won the race, and then we use theirs.
        let tmp = PathBuf::from(&dir).join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .unwrap_or_else(|e| fail("create", e));
        f.write_all(&token::random_bytes::<32>()).and_then(|_| f.sync_all()).unwrap_or_else(|e| fail("write", e));
        drop(f);
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => fail("install", e),
        }
        let _ = std::fs::remove_file(&tmp);
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| fail("read", e));
    let key: [u8; 32] = bytes.as_slice().try_into().unwrap_or_else(|_| {
        raise(FbError::new(Code::WrongState, format!("the 2FA key file {} is damaged (not 32 bytes)", path.display())))
    });
    KEY.with(|c| c.set(Some(key)));
    key
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

struct TotpState {
    sealed: Option<Vec<u8>>,
    last_step: Option<i64>,
    enabled: bool,
}

/// The admin's 2FA state, with their credentials row locked: two concurrent
/// uses of one code are checked one after the other, so only one wins.
fn lock_state(user_id: Uuid) -> TotpState {
    db::update(
        "SELECT c.totp_secret_sealed, c.totp_last_step, u.totp_enabled
         FROM dashboard_auth.credentials c JOIN dashboard_auth.users u ON u.id = c.user_id
         WHERE c.user_id = $1 FOR UPDATE OF c",
        &[user_id.into()],
        |r| {
            Ok(TotpState {
                sealed: r.get::<Vec<u8>>(1)?,
                last_step: r.get::<i64>(2)?,
                enabled: r.get::<bool>(3)?.unwrap_or(false),
            })
        },
    )
    .into_iter()
    .next()
    .unwrap_or_else(|| raise(FbError::not_found(format!("no admin with id {user_id}"))))
}

fn open_secret(user_id: Uuid, sealed: &[u8]) -> Result<Vec<u8>, FbError> {
    totp::open(&master_key(), &user_id.to_string(), sealed)
}

/// How a presented code was accepted, or why not.
enum Outcome {
    Totp,
    BackupCode { remaining: i64 },
    Refused(&'static str),
}

/// Check a TOTP code (and, when allowed, a backup code) for this admin,
/// consuming it when it is good: the TOTP step is recorded, the backup code
/// marked used.
fn consume_code(user_id: Uuid, state: &TotpState, code: &str, allow_backup: bool) -> Outcome {
    match totp::classify(code) {
        Presented::Totp(c) => {
            let Some(sealed) = state.sealed.as_deref() else { return Outcome::Refused("no_secret") };
            let secret = match open_secret(user_id, sealed) {
                Ok(s) => s,
                Err(_) => return Outcome::Refused("secret_unreadable"),
            };
            let now = now_unix();
            match totp::verify(&secret, &c, now, state.last_step) {
                Some(step) => {
                    db::execute(
                        "UPDATE dashboard_auth.credentials SET totp_last_step = $2 WHERE user_id = $1",
                        &[user_id.into(), step.into()],
                    );
                    Outcome::Totp
                }
                None if totp::verify(&secret, &c, now, None).is_some() => Outcome::Refused("code_already_used"),
                None => Outcome::Refused("wrong_code"),
            }
        }
        Presented::Backup(c) if allow_backup => {
            let digest = totp::backup_code_digest(&user_id.to_string(), &c);
            let used = db::one::<i64>(
                "UPDATE dashboard_auth.backup_codes SET used_at = now()
                 WHERE user_id = $1 AND code_digest = $2 AND used_at IS NULL RETURNING id",
                &[user_id.into(), digest.to_vec().into()],
            );
            if used.is_none() {
                return Outcome::Refused("wrong_or_used_backup_code");
            }
            let remaining = db::one::<i64>(
                "SELECT count(*) FROM dashboard_auth.backup_codes WHERE user_id = $1 AND used_at IS NULL",
                &[user_id.into()],
            )
            .unwrap_or(0);
            Outcome::BackupCode { remaining }
        }
        Presented::Backup(_) => Outcome::Refused("backup_code_not_accepted_here"),
        Presented::Malformed => Outcome::Refused("malformed_code"),
    }
}

/// A TOTP code or an unused backup code of `user_id`, consumed when good
/// (for `reauthenticate`): how it was proven, or why not.
pub fn check_second_factor(user_id: Uuid, code: &str) -> Result<&'static str, &'static str> {
    let state = lock_state(user_id);
    if !state.enabled {
        return Err("mfa_not_enabled");
    }
    match consume_code(user_id, &state, code, true) {
        Outcome::Totp => Ok("totp"),
        Outcome::BackupCode { remaining } => {
            audit::record(Event::new("mfa.backup_code_used", "admin", user_id).details(json!({ "remaining": remaining, "for": "reauthenticate" })));
            Ok("backup_code")
        }
        Outcome::Refused(reason) => Err(reason),
    }
}

fn refuse_code(reason: &str) -> ! {
    let msg = match reason {
        "code_already_used" => "this code has already been used: wait for the next one",
        "backup_code_not_accepted_here" => "a code from the authenticator app is required here, not a backup code",
        _ => "the code is not valid",
    };
    raise(FbError::new(Code::InvalidPassword, msg))
}

/// Replace the admin's backup codes with ten new ones, returned once.
fn replace_backup_codes(user_id: Uuid) -> Vec<String> {
    db::execute("DELETE FROM dashboard_auth.backup_codes WHERE user_id = $1", &[user_id.into()]);
    let codes = totp::generate_backup_codes();
    let owner = user_id.to_string();
    for c in &codes {
        db::execute(
            "INSERT INTO dashboard_auth.backup_codes (user_id, code_digest) VALUES ($1, $2)",
            &[user_id.into(), totp::backup_code_digest(&owner, c).to_vec().into()],
        );
    }
    codes
}

fn code_arg(code: Option<&str>) -> &str {
    require_text("code", code, 64).or_raise()
}

/// Start enrolling the acting admin: a new secret, shown this once (also as an
/// otpauth:// URI for a QR code). 2FA is on only after `totp_enable(code)`.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn totp_setup() -> TableIterator<'static, (name!(secret, String), name!(otpauth_uri, String))> {
    let me = actor::session_admin("totp_setup");
    let state = lock_state(me.user_id);
    if state.enabled {
        raise(
            FbError::new(Code::WrongState, "two-factor authentication is already enabled")
                .with_hint("to change the device, call dashboard_auth.totp_disable(code) first"),
        );
    }
    let secret = totp::generate_secret();
    let sealed = totp::seal(&master_key(), &me.user_id.to_string(), &secret);
    db::execute(
        "UPDATE dashboard_auth.credentials
         SET totp_secret_sealed = $2, totp_last_step = NULL, totp_setup_at = now(), totp_enabled_at = NULL
         WHERE user_id = $1",
        &[me.user_id.into(), sealed.into()],
    );
    audit::record(Event::new("mfa.setup", "admin", me.user_id).details(json!({ "method": "totp" })));
    TableIterator::once((totp::secret_base32(&secret), totp::otpauth_uri(&secret, &me.email)))
}

/// Finish enrolling with a code from the app: 2FA is on from now, and the ten
/// backup codes returned are shown only this once. A session limited to
/// enrolling (mfa.required) becomes a full one.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn totp_enable(code: Option<&str>) -> Vec<String> {
    let me = actor::session_admin("totp_enable");
    let code = code_arg(code);
    let state = lock_state(me.user_id);
    if state.enabled {
        raise(FbError::new(Code::WrongState, "two-factor authentication is already enabled"));
    }
    if state.sealed.is_none() {
        raise(
            FbError::new(Code::WrongState, "two-factor authentication has not been set up")
                .with_hint("call dashboard_auth.totp_setup() first"),
        );
    }
    if let Some(sealed) = state.sealed.as_deref() {
        open_secret(me.user_id, sealed).or_raise();
    }
    match consume_code(me.user_id, &state, code, false) {
        Outcome::Totp => {}
        Outcome::Refused(reason) => refuse_code(reason),
        Outcome::BackupCode { .. } => unreachable!("backup codes are not accepted here"),
    }
    db::execute("UPDATE dashboard_auth.credentials SET totp_enabled_at = now() WHERE user_id = $1", &[me.user_id.into()]);
    db::execute("UPDATE dashboard_auth.users SET totp_enabled = true, updated_at = now() WHERE id = $1", &[me.user_id.into()]);
    let codes = replace_backup_codes(me.user_id);
    if me.scope == "mfa_enroll" {
        db::execute("UPDATE dashboard_auth.sessions SET scope = 'full' WHERE id = $1", &[me.session_id.into()]);
        actor::set_admin(AdminIdentity { scope: "full".into(), ..me.clone() });
    }
    audit::record(Event::new("mfa.enable", "admin", me.user_id).details(json!({
        "method": "totp", "backup_codes": codes.len(), "session_upgraded": me.scope == "mfa_enroll",
    })));
    codes
}

/// Turn 2FA off for the acting admin, proven with a current code or a backup code.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn totp_disable(code: Option<&str>) {
    let me = actor::session_admin("totp_disable");
    crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::TotpDisable);
    let code = code_arg(code);
    let state = lock_state(me.user_id);
    if !state.enabled {
        raise(FbError::new(Code::WrongState, "two-factor authentication is not enabled"));
    }
    let method = match consume_code(me.user_id, &state, code, true) {
        Outcome::Totp => "totp",
        Outcome::BackupCode { remaining } => {
            audit::record(Event::new("mfa.backup_code_used", "admin", me.user_id).details(json!({ "remaining": remaining, "for": "totp_disable" })));
            "backup_code"
        }
        Outcome::Refused(reason) => refuse_code(reason),
    };
    db::execute(
        "UPDATE dashboard_auth.credentials
         SET totp_secret_sealed = NULL, totp_last_step = NULL, totp_setup_at = NULL, totp_enabled_at = NULL
         WHERE user_id = $1",
        &[me.user_id.into()],
    );
    db::execute("UPDATE dashboard_auth.users SET totp_enabled = false, updated_at = now() WHERE id = $1", &[me.user_id.into()]);
    db::execute("DELETE FROM dashboard_auth.backup_codes WHERE user_id = $1", &[me.user_id.into()]);
    audit::record(Event::new("mfa.disable", "admin", me.user_id).details(json!({ "proven_with": method })));
}

/// Ten new backup codes (the old ones stop working), proven with a current
/// code from the authenticator app.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn regenerate_backup_codes(code: Option<&str>) -> Vec<String> {
    let me = actor::session_admin("regenerate_backup_codes");
    let code = code_arg(code);
    let state = lock_state(me.user_id);
    if !state.enabled {
        raise(FbError::new(Code::WrongState, "two-factor authentication is not enabled"));
    }
    if let Outcome::Refused(reason) = consume_code(me.user_id, &state, code, false) {
        refuse_code(reason);
    }
    let codes = replace_backup_codes(me.user_id);
    audit::record(Event::new("mfa.backup_codes_regenerate", "admin", me.user_id).details(json!({ "backup_codes": codes.len() })));
    codes
}

/// The login a pending token (`login` answered `mfa_required`) stands for,
/// while still live: the second step's starting point, by code or passkey.
pub(crate) fn pending_login(pending_token: Option<&str>) -> Option<sessions::LiveSession> {
    pending_token.and_then(|t| sessions::lookup(t, TokenKind::MfaPending)).filter(|s| s.scope == "mfa_pending")
}

/// The pending login `id`, locked (FOR UPDATE) while still live, with the IP
/// and user agent it was started from: the second step (a code or a passkey)
/// completes it once, even when raced. None when used, revoked or expired.
pub(crate) fn lock_pending_login(id: Uuid) -> Option<(Option<Inet>, Option<String>)> {
    db::update(
        "SELECT ip, user_agent FROM dashboard_auth.sessions
         WHERE id = $1 AND revoked_at IS NULL AND expires_at > now() FOR UPDATE",
        &[id.into()],
        |r| Ok((r.get::<Inet>(1)?, r.get::<String>(2)?)),
    )
    .into_iter()
    .next()
}

/// Second step of a login that answered `mfa_required`: the pending token and
/// a TOTP code or an unused backup code. Failures answer `invalid` (they do not
/// raise, so the audit row and the lockout count are kept) and count toward
/// the lockout of the account's email, like wrong passwords.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn login_mfa(
    pending_token: Option<&str>,
    code: Option<&str>,
) -> TableIterator<'static, (
        name!(status, String),
        name!(session_token, Option<String>),
        name!(expires_at, Option<TimestampWithTimeZone>),
    )> {
    let code = code.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "code is required")));
    let pending = pending_login(pending_token);
    let Some(pending) = pending else {
        audit::record(
            Event::new("login.mfa_failed", "session", "unknown")
                .details(json!({ "reason": "invalid_or_expired_pending_token" }))
                .failed(),
        );
        return login_answer("invalid", None);
    };
    let user_id = pending.user_id;
    let email = pending.email.clone();
    let audit_mfa = |action: &'static str, reason: Option<&str>, extra: serde_json::Value, ok: bool| {
        let mut ev = Event::new(action, "admin", user_id)
            .actor(Some(user_id), email.clone())
            .details(json!({ "email": email, "reason": reason, "pending_session_id": pending.id.to_string(), "detail": extra }));
        if !ok {
            ev = ev.failed();
        }
        audit::record(ev);
    };
    let live = lock_pending_login(pending.id);
    let Some((ip, user_agent)) = live else {
        audit_mfa("login.mfa_failed", Some("pending_token_already_used"), json!({}), false);
        return login_answer("invalid", None);
    };
    let email_digest = sha256(email.as_bytes());
    if lock_throttle(&email_digest) {
        audit_mfa("login.mfa_failed", Some("locked"), json!({}), false);
        return login_answer("locked", None);
    }
    let state = lock_state(user_id);
    // mfa.phishing_resistant_required (issue 33): a TOTP code can be phished
    // in real time, so only a passkey (login_mfa_passkey) signs in; backup
    // codes stay as the recovery path, audited loudly below.
    let phishing_resistant = crate::admin::settings::get_bool("mfa.phishing_resistant_required");
    let outcome = if !state.enabled {
        Outcome::Refused("mfa_not_enabled")
    } else if phishing_resistant && matches!(totp::classify(code), Presented::Totp(_)) {
        Outcome::Refused("phishing_resistant_required")
    } else {
        consume_code(user_id, &state, code, true)
    };
    let method = match outcome {
        Outcome::Refused(reason) => {
            let locked_now = count_failure(&email_digest);
            audit_mfa("login.mfa_failed", Some(reason), json!({}), false);
            if locked_now {
                audit_mfa("login.lockout", Some("too many failed attempts"), json!({}), false);
                sessions::revoke_where("id = $1", &[pending.id.into()], "locked");
            }
            return login_answer("invalid", None);
        }
        Outcome::Totp => "totp",
        Outcome::BackupCode { remaining } => {
            audit_mfa("mfa.backup_code_used", None, json!({ "remaining": remaining, "phishing_resistant_required": phishing_resistant }), true);
            if phishing_resistant {
                audit_mfa(
                    "mfa.phishing_resistant_bypass",
                    Some("a backup code signed in while mfa.phishing_resistant_required is on"),
                    json!({ "remaining": remaining }),
                    true,
                );
            }
            "backup_code"
        }
    };
    sessions::revoke_where("id = $1", &[pending.id.into()], "mfa_completed");
    clear_throttle(&email_digest);
    // Without a passkey under mfa.phishing_resistant_required, the session may
    // only enroll one (passkey_register_finish makes it a full session).
    let scope = if phishing_resistant && crate::admin::passkeys::count_of(user_id) == 0 { "mfa_enroll" } else { "full" };
    let s = sessions::create(user_id, scope, ip, user_agent.as_deref());
    db::execute("UPDATE dashboard_auth.users SET last_login_at = now() WHERE id = $1", &[user_id.into()]);
    audit_mfa("login.success", None, json!({ "mfa": method, "session_id": s.id.to_string() }), true);
    login_answer("ok", Some(s))
}
