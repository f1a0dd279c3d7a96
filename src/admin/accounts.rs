//! Admin accounts: first-run setup, creation, listing, roles, deletion, login
//! and password changes.

use fluxbase_core::email::normalize_email;
use fluxbase_core::error::{check_len, require_text};
use fluxbase_core::password::{self, Owner};
use fluxbase_core::token::sha256;
use fluxbase_core::{Code, FbError};
use pgrx::datum::{Inet, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::json;

use crate::runtime::actor::{self, AdminRole};
use crate::audit::{self, Event};
use crate::runtime::errors::{raise, required, OrRaise};
use crate::admin::{sessions, settings};
use crate::runtime::db;

pub const MAX_NAME_CHARS: usize = 200;

fn min_password_length() -> usize {
    settings::get_i64("password.min_length").max(8) as usize
}

/// Check and hash a new password for this owner (policy first, with reasons).
pub fn hash_new_password(pw: Option<&str>, email: &str, full_name: Option<&str>) -> String {
    password::check_policy(pw, min_password_length(), &Owner { email: Some(email), full_name }).or_raise();
    password::hash_password(pw.unwrap_or_default()).or_raise()
}

pub fn clean_name(full_name: Option<&str>) -> String {
    let name = full_name.unwrap_or("").trim();
    check_len("full_name", name, MAX_NAME_CHARS).or_raise();
    if name.chars().any(|c| c.is_control()) {
        raise(FbError::invalid("full_name must not contain control characters"));
    }
    name.to_string()
}

/// Insert an admin with a checked email, name and password. Refuses a taken email.
pub fn insert_admin(email: &str, password_hash: &str, full_name: &str, role: AdminRole, created_via: &str) -> Uuid {
    if db::one::<bool>("SELECT true FROM dashboard_auth.users WHERE email = $1", &[email.into()]).is_some() {
        raise(FbError::new(Code::AlreadyExists, format!("an admin with email {email} already exists")));
    }
    let id = db::one::<Uuid>(
        "INSERT INTO dashboard_auth.users (email, full_name, role, created_via) VALUES ($1, $2, $3, $4) RETURNING id",
        &[email.into(), full_name.into(), role.as_str().into(), created_via.into()],
    )
    .expect("INSERT RETURNING gives a row");
    db::execute(
        "INSERT INTO dashboard_auth.credentials (user_id, password_hash) VALUES ($1, $2)",
        &[id.into(), password_hash.into()],
    );
    id
}

#[pg_extern(schema = "dashboard_auth", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn needs_setup() -> bool {
    db::one::<bool>("SELECT NOT EXISTS (SELECT 1 FROM dashboard_auth.users)", &[]).unwrap_or(true)
}

/// First run: create the first dashboard_admin and log them in. Exactly one
/// caller wins when many race; every later call is refused.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn setup_first_admin(
    email: Option<&str>,
    password: Option<&str>,
    full_name: Option<&str>,
) -> TableIterator<'static, (name!(user_id, Uuid), name!(session_token, String))> {
    let email = normalize_email(email).or_raise();
    let name = clean_name(full_name);
    // Hash before taking the lock: argon2 is the slow part.
    let hash = hash_new_password(password, &email, Some(&name));
    // Serialise first-run attempts; the loser then sees the winner's row.
    db::execute("LOCK TABLE dashboard_auth.users IN SHARE ROW EXCLUSIVE MODE", &[]);
    if db::one::<bool>("SELECT true FROM dashboard_auth.users LIMIT 1", &[]).is_some() {
        raise(
            FbError::new(Code::WrongState, "setup has already been completed: an admin account exists")
                .with_hint("log in with dashboard_auth.login(), or ask an admin for an invitation"),
        );
    }
    let id = insert_admin(&email, &hash, &name, AdminRole::Admin, "setup");
    let s = sessions::create(id, "full", None, None);
    db::execute("UPDATE dashboard_auth.users SET last_login_at = now() WHERE id = $1", &[id.into()]);
    audit::record(
        Event::new("admin.setup", "admin", id)
            .actor(Some(id), email.clone())
            .details(json!({ "email": email, "session_id": s.id.to_string() })),
    );
    TableIterator::once((id, s.token))
}

#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn create_admin(
    email: Option<&str>,
    password: Option<&str>,
    full_name: Option<&str>,
    role: default!(Option<&str>, "'dashboard_admin'"),
) -> Uuid {
    actor::writer("creating admins");
    let email = normalize_email(email).or_raise();
    let role = AdminRole::parse(role.unwrap_or("dashboard_admin")).or_raise();
    if role == AdminRole::Admin {
        crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::CreateAdmin);
    }
    let name = clean_name(full_name);
    let hash = hash_new_password(password, &email, Some(&name));
    let id = insert_admin(&email, &hash, &name, role, "api");
    audit::record(Event::new("admin.create", "admin", id).details(json!({ "email": email, "role": role.as_str() })));
    id
}

type AdminRow = (
    name!(id, Uuid),
    name!(email, String),
    name!(full_name, String),
    name!(role, String),
    name!(totp_enabled, bool),
    name!(last_login_at, Option<TimestampWithTimeZone>),
    name!(created_at, TimestampWithTimeZone),
    name!(active_sessions, i64),
);

/// An admin row since 0.3.0 (issue 20): `AdminRow` plus the login lockout —
/// until when the account is locked (NULL when it is not, now) and the failed
/// attempts counted since the last lock or success. The lockout is kept by the
/// SHA-256 of the (normalised, stored) email in dashboard_auth.login_throttle.
type AdminRowV3 = (
    name!(id, Uuid),
    name!(email, String),
    name!(full_name, String),
    name!(role, String),
    name!(totp_enabled, bool),
    name!(last_login_at, Option<TimestampWithTimeZone>),
    name!(created_at, TimestampWithTimeZone),
    name!(active_sessions, i64),
    name!(locked_until, Option<TimestampWithTimeZone>),
    name!(failed_attempts, i32),
);

fn admins(filter: Option<Uuid>) -> Vec<AdminRowV3> {
    let sql = "SELECT u.id, u.email, u.full_name, u.role, u.totp_enabled, u.last_login_at, u.created_at,
                (SELECT count(*) FROM dashboard_auth.sessions s
                 WHERE s.user_id = u.id AND s.scope = 'full' AND s.revoked_at IS NULL AND s.expires_at > now()
                   AND s.last_seen_at + s.idle_timeout > now()),
                CASE WHEN t.locked_until > now() THEN t.locked_until END,
                coalesce(t.failed_attempts, 0)
         FROM dashboard_auth.users u
         LEFT JOIN dashboard_auth.login_throttle t ON t.email_digest = sha256(convert_to(u.email, 'UTF8'))
         WHERE $1::uuid IS NULL OR u.id = $1
         ORDER BY u.created_at, u.email";
    db::select(sql, &[filter.into()], |r| {
        Ok((
            r.get::<Uuid>(1)?.expect("id"),
            r.get::<String>(2)?.unwrap_or_default(),
            r.get::<String>(3)?.unwrap_or_default(),
            r.get::<String>(4)?.unwrap_or_default(),
            r.get::<bool>(5)?.unwrap_or(false),
            r.get::<TimestampWithTimeZone>(6)?,
            r.get::<TimestampWithTimeZone>(7)?.expect("created_at"),
            r.get::<i64>(8)?.unwrap_or(0),
            r.get::<TimestampWithTimeZone>(9)?,
            r.get::<i32>(10)?.unwrap_or(0),
        ))
    })
}

/// The admins as 0.2.0's `list_admins`/`get_admin` return them.
fn admins_0_2(filter: Option<Uuid>) -> Vec<AdminRow> {
    admins(filter).into_iter().map(|(a, b, c, d, e, f, g, h, _, _)| (a, b, c, d, e, f, g, h)).collect()
}

fn one_admin<T: 'static>(rows: Vec<T>, id: Uuid) -> TableIterator<'static, T> {
    if rows.is_empty() {
        raise(FbError::not_found(format!("no admin with id {id}")));
    }
    TableIterator::new(rows)
}

// `list_admins` and `get_admin` as 0.1.0/0.2.0 defined them (eight columns):
// their symbols are named by the archived install scripts, so they stay in the
// library (docs/RELEASING.md); 0.3.0's SQL functions are list_admins_v3 and
// get_admin_v3 below.
#[pg_extern(sql = false)]
fn list_admins() -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, String),
        name!(full_name, String),
        name!(role, String),
        name!(totp_enabled, bool),
        name!(last_login_at, Option<TimestampWithTimeZone>),
        name!(created_at, TimestampWithTimeZone),
        name!(active_sessions, i64),
    )> {
    actor::reader();
    TableIterator::new(admins_0_2(None))
}

#[pg_extern(sql = false)]
fn get_admin(id: Option<Uuid>) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, String),
        name!(full_name, String),
        name!(role, String),
        name!(totp_enabled, bool),
        name!(last_login_at, Option<TimestampWithTimeZone>),
        name!(created_at, TimestampWithTimeZone),
        name!(active_sessions, i64),
    )> {
    let id = required("id", id);
    actor::reader();
    one_admin(admins_0_2(Some(id)), id)
}

#[pg_extern(schema = "dashboard_auth", name = "list_admins", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_admins_v3() -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, String),
        name!(full_name, String),
        name!(role, String),
        name!(totp_enabled, bool),
        name!(last_login_at, Option<TimestampWithTimeZone>),
        name!(created_at, TimestampWithTimeZone),
        name!(active_sessions, i64),
        name!(locked_until, Option<TimestampWithTimeZone>),
        name!(failed_attempts, i32),
    )> {
    actor::reader();
    TableIterator::new(admins(None))
}

#[pg_extern(schema = "dashboard_auth", name = "get_admin", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn get_admin_v3(id: Option<Uuid>) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, String),
        name!(full_name, String),
        name!(role, String),
        name!(totp_enabled, bool),
        name!(last_login_at, Option<TimestampWithTimeZone>),
        name!(created_at, TimestampWithTimeZone),
        name!(active_sessions, i64),
        name!(locked_until, Option<TimestampWithTimeZone>),
        name!(failed_attempts, i32),
    )> {
    let id = required("id", id);
    actor::reader();
    one_admin(admins(Some(id)), id)
}

/// Lift the login lockout of an admin account and forget its failed attempts
/// (issue 20): for a dashboard_admin, after a fresh re-authentication (an
/// unlock lets the next guesses at that account's password begin, so a stolen
/// session must not be able to repeat it), audited. True when the account was
/// locked.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn unlock_admin(id: Option<Uuid>) -> bool {
    let id = required("id", id);
    actor::writer("unlocking admins");
    crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::UnlockAdmin);
    let email = db::one::<String>("SELECT email FROM dashboard_auth.users WHERE id = $1", &[id.into()])
        .unwrap_or_else(|| raise(FbError::not_found(format!("no admin with id {id}"))));
    let cleared = db::update(
        "DELETE FROM dashboard_auth.login_throttle WHERE email_digest = $1
         RETURNING coalesce(locked_until > now(), false), failed_attempts",
        &[sha256(email.as_bytes()).to_vec().into()],
        |r| Ok((r.get::<bool>(1)?.unwrap_or(false), r.get::<i32>(2)?.unwrap_or(0))),
    );
    let (was_locked, failed) = cleared.into_iter().next().unwrap_or((false, 0));
    audit::record(Event::new("admin.unlock", "admin", id).details(json!({
        "email": email, "was_locked": was_locked, "failed_attempts": failed,
    })));
    was_locked
}

/// Lock every dashboard_admin row and refuse if `id` is the only one. Locking
/// them all makes two concurrent demotions of the last two admins wait for each
/// other instead of both succeeding.
fn refuse_if_last_admin(id: Uuid, what: &str) {
    let admins = db::update(
        "SELECT id FROM dashboard_auth.users WHERE role = 'dashboard_admin' ORDER BY id FOR UPDATE",
        &[],
        |r| r.get::<Uuid>(1),
    );
    let others = admins.iter().filter(|a| **a != Some(id)).count();
    if others == 0 && admins.len() == 1 {
        raise(FbError::refused(format!("cannot {what} the last dashboard_admin")).with_hint("make another admin a dashboard_admin first"));
    }
}

fn role_of(id: Uuid) -> String {
    db::one::<String>("SELECT role FROM dashboard_auth.users WHERE id = $1", &[id.into()])
        .unwrap_or_else(|| raise(FbError::not_found(format!("no admin with id {id}"))))
}

#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn update_admin_role(id: Option<Uuid>, role: Option<&str>) {
    let id = required("id", id);
    let new_role = AdminRole::parse(require_text("role", role, 64).or_raise()).or_raise();
    actor::writer("changing admin roles");
    crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::ChangeAdminRole);
    let old_role = role_of(id);
    if old_role == new_role.as_str() {
        return;
    }
    if new_role != AdminRole::Admin {
        refuse_if_last_admin(id, "demote");
    }
    db::execute(
        "UPDATE dashboard_auth.users SET role = $2, updated_at = now() WHERE id = $1",
        &[id.into(), new_role.as_str().into()],
    );
    audit::record(Event::new("admin.role_change", "admin", id).details(json!({ "old": old_role, "new": new_role.as_str() })));
}

#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn delete_admin(id: Option<Uuid>) {
    let id = required("id", id);
    actor::writer("deleting admins");
    crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::DeleteAdmin);
    let old_role = role_of(id);
    if old_role == "dashboard_admin" {
        refuse_if_last_admin(id, "delete");
    }
    let email = db::one::<String>("DELETE FROM dashboard_auth.users WHERE id = $1 RETURNING email", &[id.into()]);
    audit::record(Event::new("admin.delete", "admin", id).details(json!({ "email": email, "role": old_role })));
}

pub fn login_answer(status: &str, session: Option<sessions::NewSession>) -> TableIterator<'static, (
        name!(status, String),
        name!(session_token, Option<String>),
        name!(expires_at, Option<TimestampWithTimeZone>),
    )> {
    let (token, expires) = match session {
        Some(s) => (Some(s.token), Some(s.expires_at)),
        None => (None, None),
    };
    TableIterator::once((status.to_string(), token, expires))
}

/// Count a failed attempt against this email; true when that locked it.
pub fn count_failure(email_digest: &[u8]) -> bool {
    let sql = format!(
        "UPDATE dashboard_auth.login_throttle t SET
             failed_attempts = CASE WHEN t.failed_attempts + 1 >= m.max THEN 0 ELSE t.failed_attempts + 1 END,
             locked_until = CASE WHEN t.failed_attempts + 1 >= m.max THEN now() + m.duration ELSE t.locked_until END,
             last_failed_at = now()
         FROM (SELECT {} AS max, {} AS duration) m
         WHERE t.email_digest = $1
         RETURNING coalesce(t.locked_until > now(), false)",
        settings::sql_value("lockout.max_attempts", "int"),
        settings::sql_value("lockout.duration", "interval"),
    );
    db::one::<bool>(&sql, &[email_digest.to_vec().into()]).unwrap_or(false)
}

/// Forget the failed attempts of this email: its owner proved control of the
/// account (a completed login, or a password reset).
pub fn clear_throttle(email_digest: &[u8]) {
    db::execute("DELETE FROM dashboard_auth.login_throttle WHERE email_digest = $1", &[email_digest.to_vec().into()]);
}

/// Take (creating if needed) the throttle row of this email, locking it so
/// concurrent attempts on one account are counted one after another. True when
/// the email is currently locked out.
pub fn lock_throttle(email_digest: &[u8]) -> bool {
    db::one::<bool>(
        "INSERT INTO dashboard_auth.login_throttle AS t (email_digest) VALUES ($1)
         ON CONFLICT (email_digest) DO UPDATE SET email_digest = t.email_digest
         RETURNING coalesce(t.locked_until > now(), false)",
        &[email_digest.to_vec().into()],
    )
    .unwrap_or(false)
}

/// Password login. Unknown email and wrong password give the same answer in
/// about the same time; repeated failures lock the email (known or not).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn login(
    email: Option<&str>,
    password: Option<&str>,
    ip: default!(Option<Inet>, "NULL"),
    user_agent: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (
        name!(status, String),
        name!(session_token, Option<String>),
        name!(expires_at, Option<TimestampWithTimeZone>),
    )> {
    let email = normalize_email(email).or_raise();
    let password = password.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "password is required")));
    check_len("password", password, password::MAX_PASSWORD_CHARS).or_raise();
    if let Some(ua) = user_agent {
        check_len("user_agent", ua, 1000).or_raise();
    }
    let ip_text = ip.as_ref().map(|i| i.0.clone());
    let email_digest = sha256(email.as_bytes());
    let audit_attempt = |action: &'static str, user: Option<Uuid>, reason: Option<&str>, ok: bool| {
        let mut ev = Event::new(action, "admin", user.map(|u| u.to_string()).unwrap_or_else(|| email.clone()))
            .actor(user, email.clone())
            .ip(ip_text.clone())
            .details(json!({ "email": email, "reason": reason, "user_agent": user_agent }));
        if !ok {
            ev = ev.failed();
        }
        audit::record(ev);
    };

    if lock_throttle(&email_digest) {
        audit_attempt("login.failed", None, Some("locked"), false);
        return login_answer("locked", None);
    }
    let account = db::select(
        "SELECT u.id, c.password_hash, u.totp_enabled
         FROM dashboard_auth.users u JOIN dashboard_auth.credentials c ON c.user_id = u.id
         WHERE u.email = $1",
        &[email.as_str().into()],
        |r| Ok((r.get::<Uuid>(1)?.expect("id"), r.get::<String>(2)?.unwrap_or_default(), r.get::<bool>(3)?.unwrap_or(false))),
    )
    .into_iter()
    .next();

    let known = account.is_some();
    let verified = match &account {
        Some((_, hash, _)) => password::verify_password(hash, password),
        None => {
            password::dummy_verify(password);
            password::Verified { ok: false, needs_rehash: false }
        }
    };
    let Some((user_id, _, totp_enabled)) = account.filter(|_| verified.ok) else {
        let reason = if known { "wrong_password" } else { "unknown_email" };
        let locked_now = count_failure(&email_digest);
        audit_attempt("login.failed", None, Some(reason), false);
        if locked_now {
            audit_attempt("login.lockout", None, Some("too many failed attempts"), false);
        }
        return login_answer("invalid", None);
    };

    // A passkey is a second factor too (issue 33).
    let has_passkey = crate::admin::passkeys::count_of(user_id) > 0;
    let second_factor = totp_enabled || has_passkey;
    // With 2FA on, the failure count (wrong codes count too) is cleared only
    // when login_mfa succeeds: a right password alone must not reset it.
    if !second_factor {
        clear_throttle(&email_digest);
    }
    if verified.needs_rehash {
        // The stored hash was made with weaker or other parameters: upgrade it now
        // that we hold the plain password.
        let new_hash = password::hash_password(password).or_raise();
        db::execute(
            "UPDATE dashboard_auth.credentials SET password_hash = $2, updated_at = now() WHERE user_id = $1",
            &[user_id.into(), new_hash.into()],
        );
        audit::record(Event::new("admin.password_rehash", "admin", user_id).actor(Some(user_id), email.clone()));
    }
    if second_factor {
        let pending = sessions::create(user_id, "mfa_pending", ip, user_agent);
        audit_attempt("login.mfa_required", Some(user_id), None, true);
        return login_answer("mfa_required", Some(pending));
    }
    let must_enroll = settings::get_bool("mfa.required") || settings::get_bool("mfa.phishing_resistant_required");
    let scope = if must_enroll { "mfa_enroll" } else { "full" };
    let s = sessions::create(user_id, scope, ip, user_agent);
    db::execute("UPDATE dashboard_auth.users SET last_login_at = now() WHERE id = $1", &[user_id.into()]);
    audit_attempt("login.success", Some(user_id), if scope == "full" { None } else { Some("mfa enrollment required") }, true);
    login_answer("ok", Some(s))
}

/// Change the acting admin's own password. Other sessions of theirs end.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn change_password(old_password: Option<&str>, new_password: Option<&str>) {
    let me = actor::session_admin("change_password");
    let old = old_password.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "old_password is required")));
    check_len("old_password", old, password::MAX_PASSWORD_CHARS).or_raise();
    let stored = db::one::<String>(
        "SELECT password_hash FROM dashboard_auth.credentials WHERE user_id = $1 FOR UPDATE",
        &[me.user_id.into()],
    )
    .unwrap_or_default();
    if !password::verify_password(&stored, old).ok {
        raise(FbError::new(Code::InvalidPassword, "the current password is not correct"));
    }
    if new_password == Some(old) {
        raise(FbError::invalid("the new password must differ from the current one"));
    }
    let name = db::one::<String>("SELECT full_name FROM dashboard_auth.users WHERE id = $1", &[me.user_id.into()]);
    let hash = hash_new_password(new_password, &me.email, name.as_deref());
    set_password_hash(me.user_id, &hash);
    let ended = sessions::revoke_where(
        "user_id = $1 AND id <> $2",
        &[me.user_id.into(), me.session_id.into()],
        "password_changed",
    );
    audit::record(Event::new("admin.password_change", "admin", me.user_id).details(json!({ "sessions_revoked": ended.len() })));
}

pub fn set_password_hash(user_id: Uuid, hash: &str) {
    db::execute(
        "UPDATE dashboard_auth.credentials SET password_hash = $2, updated_at = now() WHERE user_id = $1",
        &[user_id.into(), hash.into()],
    );
    db::execute("UPDATE dashboard_auth.users SET password_changed_at = now(), updated_at = now() WHERE id = $1", &[user_id.into()]);
}
