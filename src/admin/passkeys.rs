//! Passkeys (WebAuthn) for admins (issue 33), verified in the database:
//! registration (`passkey_register_begin` / `_finish`), passwordless sign-in
//! (`passkey_login_begin` / `_finish`, setting `auth.passwordless`), the
//! second factor after a password (`passkey_mfa_begin`, `login_mfa_passkey`),
//! step-up (`passkey_reauth_begin`, `reauthenticate_passkey`), and the list,
//! rename and removal of an admin's passkeys.
//!
//! The WebAuthn rules are fluxbase_core::passkey (webauthn-rs); this module
//! keeps the state: credentials in `dashboard_auth.passkeys`, ceremonies in
//! `dashboard_auth.passkey_challenges` (sql/passkeys.sql). A finish takes its
//! ceremony's row by the challenge the browser signed and deletes it: one use,
//! before its expiry, for the ceremony (and admin, session) it was begun for.
//! Refused sign-ins answer `invalid` (and step-up NULL) rather than raising,
//! so their audit entry, the lockout count and the used challenge are kept.

use fluxbase_core::email::normalize_email;
use fluxbase_core::error::{check_len, require_text};
use fluxbase_core::passkey::{self as rules, Begun, RelyingParty};
use fluxbase_core::token::sha256;
use fluxbase_core::{Code, FbError};
use pgrx::datum::{Inet, JsonB, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::admin::accounts::{clear_throttle, count_failure, lock_throttle, login_answer};
use crate::admin::{sessions, settings};
use crate::audit::{self, Event};
use crate::runtime::actor::{self, Actor, AdminIdentity};
use crate::runtime::db;
use crate::runtime::errors::{raise, required, OrRaise};
use crate::runtime::json::{self, JsonArg};

/// The relying party from `webauthn.rp_id` and `webauthn.origins` (55000 while unset).
fn relying_party() -> RelyingParty {
    let rp_id = settings::get("webauthn.rp_id").as_str().unwrap_or_default().to_string();
    let origins: Vec<String> = settings::get("webauthn.origins")
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    RelyingParty::new(&rp_id, &origins).or_raise()
}

/// The number of passkeys an admin has (for the sign-in policy). 0 while the
/// SQL of a version before 0.4.0 (no passkeys table) is served by this
/// library, until ALTER EXTENSION UPDATE.
pub fn count_of(user_id: Uuid) -> i64 {
    if db::one::<bool>("SELECT pg_catalog.to_regclass('dashboard_auth.passkeys') IS NOT NULL", &[]) != Some(true) {
        return 0;
    }
    db::one::<i64>("SELECT count(*) FROM dashboard_auth.passkeys WHERE user_id = $1", &[user_id.into()]).unwrap_or(0)
}

/// An admin's credential ids and transports, for `allowCredentials` / exclusion.
fn credentials_of(user_id: Uuid) -> Vec<(Vec<u8>, Vec<String>)> {
    db::select(
        "SELECT credential_id, transports FROM dashboard_auth.passkeys WHERE user_id = $1 ORDER BY created_at",
        &[user_id.into()],
        |r| Ok((r.get::<Vec<u8>>(1)?.unwrap_or_default(), r.get::<Vec<String>>(2)?.unwrap_or_default())),
    )
}

fn clean_name(name: Option<&str>) -> String {
    let n = require_text("name", name, rules::MAX_NAME_CHARS).or_raise().trim();
    if n.is_empty() {
        raise(FbError::invalid("name must not be empty"));
    }
    if n.chars().any(|c| c.is_control()) {
        raise(FbError::invalid("name must not contain control characters"));
    }
    n.to_string()
}

fn store(b: Begun, ceremony: &str, user_id: Option<Uuid>, session_id: Option<Uuid>, name: Option<&str>) -> JsonB {
    db::execute("DELETE FROM dashboard_auth.passkey_challenges WHERE expires_at <= now()", &[]);
    let sql = format!(
        "INSERT INTO dashboard_auth.passkey_challenges (challenge_digest, ceremony, user_id, session_id, name, state, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + interval '{}')",
        rules::CHALLENGE_LIFETIME
    );
    db::execute(
        &sql,
        &[b.challenge_digest.to_vec().into(), ceremony.into(), user_id.into(), session_id.into(), name.into(), JsonB(b.state).into()],
    );
    JsonB(b.options)
}

struct Challenge {
    ceremony: String,
    user_id: Option<Uuid>,
    session_id: Option<Uuid>,
    name: Option<String>,
    state: Value,
    live: bool,
}

/// Take (delete) the ceremony a response answers; None when there is none
/// (never begun, used already).
fn take(response: &Value) -> Option<Challenge> {
    let digest = rules::challenge_digest_of(response).or_raise();
    db::update(
        "DELETE FROM dashboard_auth.passkey_challenges WHERE challenge_digest = $1
         RETURNING ceremony, user_id, session_id, name, state, expires_at > now()",
        &[digest.to_vec().into()],
        |r| {
            Ok(Challenge {
                ceremony: r.get::<String>(1)?.unwrap_or_default(),
                user_id: r.get::<Uuid>(2)?,
                session_id: r.get::<Uuid>(3)?,
                name: r.get::<String>(4)?,
                state: r.get::<JsonB>(5)?.map(|j| j.0).unwrap_or(Value::Null),
                live: r.get::<bool>(6)?.unwrap_or(false),
            })
        },
    )
    .into_iter()
    .next()
}

/// A verified assertion: which passkey, whose.
struct Used {
    passkey_id: Uuid,
    user_id: Uuid,
    name: String,
}

/// Why an assertion was refused, and whose passkey it named (when known).
struct Refused {
    reason: &'static str,
    user_id: Option<Uuid>,
}

fn refused(reason: &'static str, user_id: Option<Uuid>) -> Refused {
    Refused { reason, user_id }
}

/// Verify an assertion for `ceremony`: the challenge is taken (used once),
/// must be live, of this ceremony and of this session; the credential must be
/// registered (to `user` when given); then webauthn-rs checks origin, rp id
/// hash, user verification, the signature and the counter (against the value
/// stored now, the row locked). A counter regression is audited on its own.
fn verify(assertion: &Value, ceremony: &str, user: Option<Uuid>, session: Option<Uuid>) -> Result<Used, Refused> {
    let cred_id = rules::credential_id_of(assertion).or_raise();
    let Some(ch) = take(assertion) else { return Err(refused("unknown_or_used_challenge", None)) };
    if !ch.live {
        return Err(refused("expired_challenge", None));
    }
    if ch.ceremony != ceremony {
        return Err(refused("challenge_of_another_ceremony", None));
    }
    if session.is_some() && ch.session_id != session {
        return Err(refused("challenge_of_another_session", None));
    }
    let expect_user = user.or(ch.user_id);
    let row = db::update(
        "SELECT id, user_id, name, passkey, sign_count FROM dashboard_auth.passkeys WHERE credential_id = $1 FOR UPDATE",
        &[cred_id.into()],
        |r| {
            Ok((
                r.get::<Uuid>(1)?.expect("id"),
                r.get::<Uuid>(2)?.expect("user_id"),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<JsonB>(4)?.map(|j| j.0).unwrap_or(Value::Null),
                r.get::<i64>(5)?.unwrap_or(0),
            ))
        },
    )
    .into_iter()
    .next();
    let Some((passkey_id, owner, name, passkey, stored_count)) = row else {
        return Err(refused("unknown_or_removed_passkey", expect_user));
    };
    if expect_user.is_some_and(|u| u != owner) {
        return Err(refused("passkey_of_another_admin", expect_user));
    }
    let outcome = relying_party().auth_finish(assertion, &ch.state, &passkey).or_raise();
    let asserted = match outcome {
        Ok(a) if !a.user_verified => Err("user_not_verified"),
        Ok(a) if (a.counter > 0 || stored_count > 0) && i64::from(a.counter) <= stored_count => Err("counter_regression"),
        Ok(a) => Ok(a),
        Err(reason) => Err(reason),
    };
    match asserted {
        Ok(a) => {
            db::execute(
                "UPDATE dashboard_auth.passkeys SET passkey = $2, sign_count = $3, last_used_at = now() WHERE id = $1",
                &[passkey_id.into(), JsonB(a.passkey).into(), i64::from(a.counter).into()],
            );
            Ok(Used { passkey_id, user_id: owner, name })
        }
        Err(reason) => {
            if reason == "counter_regression" {
                audit::record(
                    Event::new("passkey.counter_regression", "passkey", passkey_id)
                        .details(json!({
                            "user_id": owner.to_string(), "name": name, "stored_count": stored_count,
                            "why": "the authenticator's signature counter went backwards: it may have been cloned",
                        }))
                        .failed(),
                );
            }
            Err(refused(reason, Some(owner)))
        }
    }
}

fn assertion_arg(a: Option<JsonArg>, what: &str) -> Value {
    let v = json::value_of(a, what);
    if v.is_null() {
        raise(FbError::new(Code::NullValue, format!("{what} is required")));
    }
    if !v.is_object() {
        raise(FbError::invalid(format!("{what} must be a JSON object (the browser's PublicKeyCredential)")));
    }
    v
}

fn email_of(user_id: Uuid) -> String {
    db::one::<String>("SELECT email FROM dashboard_auth.users WHERE id = $1", &[user_id.into()]).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Registration

/// Begin adding a passkey named `name` for the signed-in admin: the options
/// for `navigator.credentials.create` (binary fields base64url). Allowed in a
/// session limited to enrolling (mfa.required): a passkey is a second factor.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn passkey_register_begin(name: Option<&str>) -> JsonB {
    let me = actor::session_admin("passkey_register_begin");
    let name = clean_name(name);
    let rp = relying_party();
    let display = db::one::<String>("SELECT full_name FROM dashboard_auth.users WHERE id = $1", &[me.user_id.into()])
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| me.email.clone());
    let exclude = credentials_of(me.user_id).into_iter().map(|(id, _)| id).collect();
    let begun = rp.register_begin(*me.user_id.as_bytes(), &me.email, &display, exclude).or_raise();
    store(begun, "register", Some(me.user_id), Some(me.session_id), Some(&name))
}

/// Finish adding a passkey with the browser's answer (the PublicKeyCredential
/// as JSON, binary fields base64url): its id. Refused (28000) when the answer
/// does not verify; a session limited to enrolling becomes a full one.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn passkey_register_finish(credential: Option<JsonArg>) -> Uuid {
    let me = actor::session_admin("passkey_register_finish");
    let credential = assertion_arg(credential, "credential");
    let refuse = |why: &str| -> ! {
        raise(FbError::new(Code::InvalidAuthorization, format!("the passkey was not registered: {why}")).with_detail(why.to_string()))
    };
    let Some(ch) = take(&credential) else { refuse("unknown_or_used_challenge") };
    if !ch.live {
        refuse("expired_challenge");
    }
    if ch.ceremony != "register" || ch.session_id != Some(me.session_id) || ch.user_id != Some(me.user_id) {
        refuse("challenge_of_another_ceremony_or_session");
    }
    let reg = match relying_party().register_finish(&credential, &ch.state).or_raise() {
        Ok(r) => r,
        Err(reason) => refuse(reason),
    };
    if db::one::<bool>("SELECT true FROM dashboard_auth.passkeys WHERE credential_id = $1", &[reg.credential_id.clone().into()]).is_some() {
        raise(FbError::new(Code::AlreadyExists, "this passkey is registered already"));
    }
    let transports = rules::transports_of(&credential);
    let name = ch.name.unwrap_or_else(|| "passkey".into());
    let id = db::one::<Uuid>(
        "INSERT INTO dashboard_auth.passkeys (user_id, credential_id, name, passkey, sign_count, transports)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            me.user_id.into(),
            reg.credential_id.into(),
            name.as_str().into(),
            JsonB(reg.passkey).into(),
            i64::from(reg.counter).into(),
            transports.clone().into(),
        ],
    )
    .expect("INSERT RETURNING gives a row");
    let upgraded = me.scope == "mfa_enroll";
    if upgraded {
        db::execute("UPDATE dashboard_auth.sessions SET scope = 'full' WHERE id = $1", &[me.session_id.into()]);
        actor::set_admin(AdminIdentity { scope: "full".into(), ..me.clone() });
    }
    audit::record(Event::new("passkey.register", "passkey", id).details(json!({
        "user_id": me.user_id.to_string(), "name": name, "transports": transports, "session_upgraded": upgraded,
    })));
    id
}

// ---------------------------------------------------------------------------
// Passwordless sign-in

/// Begin a sign-in with a passkey alone (setting `auth.passwordless`): the
/// options for `navigator.credentials.get`. With `email`, they list that
/// admin's passkeys; without, any passkey of this site may answer (the
/// browser's autofill: `mediation: conditional`).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn passkey_login_begin(email: default!(Option<&str>, "NULL")) -> JsonB {
    if !settings::get_bool("auth.passwordless") {
        raise(
            FbError::new(Code::WrongState, "sign-in with a passkey alone is off")
                .with_hint("an admin turns it on with the setting auth.passwordless; a passkey is always accepted as the second factor after the password"),
        );
    }
    let rp = relying_party();
    let user = match email {
        Some(_) => {
            let e = normalize_email(email).or_raise();
            db::one::<Uuid>("SELECT id FROM dashboard_auth.users WHERE email = $1", &[e.as_str().into()])
        }
        None => None,
    };
    let allow = user.map(credentials_of).unwrap_or_default();
    // An unknown email, or one without passkeys, begins like the usernameless
    // ceremony: the answer does not tell the accounts apart.
    let bound = if allow.is_empty() { None } else { user };
    let open = db::one::<i64>(
        "SELECT count(*) FROM (SELECT FROM dashboard_auth.passkey_challenges
          WHERE ceremony = 'login' AND expires_at > now() LIMIT $1) c",
        &[rules::MAX_OPEN_SIGNIN_CEREMONIES.into()],
    )
    .unwrap_or(0);
    if open >= rules::MAX_OPEN_SIGNIN_CEREMONIES {
        raise(
            FbError::new(Code::LimitExceeded, "too many sign-ins with a passkey are in progress")
                .with_hint(format!("try again in a few minutes (a ceremony expires after {}), or sign in with your password", rules::CHALLENGE_LIFETIME)),
        );
    }
    let begun = rp.auth_begin(&allow, email.is_none()).or_raise();
    store(begun, "login", bound, None, None)
}

/// Finish a passwordless sign-in: a session as `login` returns it (status
/// `ok`), or `invalid` / `locked` (audited with the reason).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn passkey_login_finish(
    assertion: Option<JsonArg>,
    ip: default!(Option<Inet>, "NULL"),
    user_agent: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (
        name!(status, String),
        name!(session_token, Option<String>),
        name!(expires_at, Option<TimestampWithTimeZone>),
    )> {
    let assertion = assertion_arg(assertion, "assertion");
    if let Some(ua) = user_agent {
        check_len("user_agent", ua, 1000).or_raise();
    }
    let ip_text = ip.as_ref().map(|i| i.0.clone());
    let audit_attempt = |action: &'static str, user: Option<Uuid>, extra: Value, ok: bool| {
        let email = user.map(email_of);
        let mut ev = Event::new(action, "admin", user.map(|u| u.to_string()).unwrap_or_else(|| "unknown".into()))
            .ip(ip_text.clone())
            .details(json!({ "method": "passkey", "email": email, "user_agent": user_agent, "detail": extra }));
        if let Some(u) = user {
            ev = ev.actor(Some(u), email.unwrap_or_default());
        }
        audit::record(if ok { ev } else { ev.failed() });
    };
    if !settings::get_bool("auth.passwordless") {
        audit_attempt("login.failed", None, json!({ "reason": "passwordless_off" }), false);
        return login_answer("invalid", None);
    }
    match verify(&assertion, "login", None, None) {
        Ok(used) => {
            let email_digest = sha256(email_of(used.user_id).as_bytes());
            if lock_throttle(&email_digest) {
                audit_attempt("login.failed", Some(used.user_id), json!({ "reason": "locked" }), false);
                return login_answer("locked", None);
            }
            clear_throttle(&email_digest);
            let s = sessions::create(used.user_id, "full", ip, user_agent);
            db::execute("UPDATE dashboard_auth.users SET last_login_at = now() WHERE id = $1", &[used.user_id.into()]);
            audit_attempt(
                "login.success",
                Some(used.user_id),
                json!({ "passkey_id": used.passkey_id.to_string(), "passkey": used.name, "session_id": s.id.to_string() }),
                true,
            );
            login_answer("ok", Some(s))
        }
        Err(r) => {
            if let Some(u) = r.user_id {
                let email_digest = sha256(email_of(u).as_bytes());
                if lock_throttle(&email_digest) {
                    audit_attempt("login.failed", Some(u), json!({ "reason": "locked" }), false);
                    return login_answer("locked", None);
                }
                let locked_now = count_failure(&email_digest);
                audit_attempt("login.failed", Some(u), json!({ "reason": r.reason }), false);
                if locked_now {
                    audit_attempt("login.lockout", Some(u), json!({ "reason": "too many failed attempts" }), false);
                }
            } else {
                audit_attempt("login.failed", None, json!({ "reason": r.reason }), false);
            }
            login_answer("invalid", None)
        }
    }
}

// ---------------------------------------------------------------------------
// Second factor after the password

/// Begin the passkey step of a login that answered `mfa_required`: the
/// options for `navigator.credentials.get`, listing the admin's passkeys.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn passkey_mfa_begin(pending_token: Option<&str>) -> JsonB {
    let pending = crate::admin::mfa::pending_login(pending_token)
        .unwrap_or_else(|| raise(FbError::new(Code::InvalidAuthorization, "the pending login is invalid or has expired").with_hint("log in with the password again")));
    let allow = credentials_of(pending.user_id);
    if allow.is_empty() {
        raise(FbError::new(Code::WrongState, "this admin has no passkey").with_hint("use a code from the authenticator app"));
    }
    let begun = relying_party().auth_begin(&allow, false).or_raise();
    store(begun, "mfa", Some(pending.user_id), Some(pending.id), None)
}

/// Second step of a login that answered `mfa_required`, with a passkey: as
/// `login_mfa` does with a code (failures answer `invalid` and count toward
/// the lockout).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn login_mfa_passkey(
    pending_token: Option<&str>,
    assertion: Option<JsonArg>,
) -> TableIterator<'static, (
        name!(status, String),
        name!(session_token, Option<String>),
        name!(expires_at, Option<TimestampWithTimeZone>),
    )> {
    let assertion = assertion_arg(assertion, "assertion");
    let pending = crate::admin::mfa::pending_login(pending_token);
    let Some(pending) = pending else {
        audit::record(
            Event::new("login.mfa_failed", "session", "unknown")
                .details(json!({ "method": "passkey", "reason": "invalid_or_expired_pending_token" }))
                .failed(),
        );
        return login_answer("invalid", None);
    };
    let user_id = pending.user_id;
    let email = pending.email.clone();
    let audit_mfa = |action: &'static str, extra: Value, ok: bool| {
        let ev = Event::new(action, "admin", user_id)
            .actor(Some(user_id), email.clone())
            .details(json!({ "email": email, "method": "passkey", "pending_session_id": pending.id.to_string(), "detail": extra }));
        audit::record(if ok { ev } else { ev.failed() });
    };
    let live = crate::admin::mfa::lock_pending_login(pending.id);
    let Some((ip, user_agent)) = live else {
        audit_mfa("login.mfa_failed", json!({ "reason": "pending_token_already_used" }), false);
        return login_answer("invalid", None);
    };
    let email_digest = sha256(email.as_bytes());
    if lock_throttle(&email_digest) {
        audit_mfa("login.mfa_failed", json!({ "reason": "locked" }), false);
        return login_answer("locked", None);
    }
    match verify(&assertion, "mfa", Some(user_id), Some(pending.id)) {
        Ok(used) => {
            sessions::revoke_where("id = $1", &[pending.id.into()], "mfa_completed");
            clear_throttle(&email_digest);
            let s = sessions::create(user_id, "full", ip, user_agent.as_deref());
            db::execute("UPDATE dashboard_auth.users SET last_login_at = now() WHERE id = $1", &[user_id.into()]);
            audit_mfa(
                "login.success",
                json!({ "mfa": "passkey", "passkey_id": used.passkey_id.to_string(), "passkey": used.name, "session_id": s.id.to_string() }),
                true,
            );
            login_answer("ok", Some(s))
        }
        Err(r) => {
            let locked_now = count_failure(&email_digest);
            audit_mfa("login.mfa_failed", json!({ "reason": r.reason }), false);
            if locked_now {
                audit_mfa("login.lockout", json!({ "reason": "too many failed attempts" }), false);
                sessions::revoke_where("id = $1", &[pending.id.into()], "locked");
            }
            login_answer("invalid", None)
        }
    }
}

// ---------------------------------------------------------------------------
// Step-up

/// Begin a re-authentication with a passkey: options listing the signed-in
/// admin's passkeys, bound to this session.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn passkey_reauth_begin() -> JsonB {
    actor::reader();
    let me = actor::session_admin("passkey_reauth_begin");
    let allow = credentials_of(me.user_id);
    if allow.is_empty() {
        raise(FbError::new(Code::WrongState, "you have no passkey").with_hint("re-enter your password with dashboard_auth.reauthenticate"));
    }
    let begun = relying_party().auth_begin(&allow, false).or_raise();
    store(begun, "reauth", Some(me.user_id), Some(me.session_id), None)
}

/// `reauthenticate` with a passkey assertion: step-up actions are allowed in
/// this session until the returned time; NULL when refused (audited, counted
/// toward the lockout, as a wrong password is).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn reauthenticate_passkey(assertion: Option<JsonArg>) -> Option<TimestampWithTimeZone> {
    actor::reader();
    let me = actor::session_admin("reauthenticate_passkey");
    let assertion = assertion_arg(assertion, "assertion");
    crate::admin::stepup::reauthenticate_with(&me, || {
        verify(&assertion, "reauth", Some(me.user_id), Some(me.session_id)).map(|_| "passkey").map_err(|r| r.reason)
    })
}

// ---------------------------------------------------------------------------
// Listing, renaming, removing


/// Passkeys: the signed-in admin's (or, with `admin_id`, that admin's; for a
/// database role without a session and no `admin_id`, everyone's). Names,
/// dates and transports only: no key material.
#[pg_extern(schema = "dashboard_auth", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_passkeys(admin_id: default!(Option<Uuid>, "NULL")) -> TableIterator<'static, (
    name!(id, Uuid),
    name!(user_id, Uuid),
    name!(email, String),
    name!(name, String),
    name!(transports, Vec<String>),
    name!(sign_count, i64),
    name!(created_at, TimestampWithTimeZone),
    name!(last_used_at, Option<TimestampWithTimeZone>),
)> {
    let who = match actor::reader() {
        Actor::Admin(me) => Some(admin_id.unwrap_or(me.user_id)),
        Actor::Database { .. } => admin_id,
    };
    let rows = db::select(
        "SELECT p.id, p.user_id, u.email, p.name, p.transports, p.sign_count, p.created_at, p.last_used_at
         FROM dashboard_auth.passkeys p JOIN dashboard_auth.users u ON u.id = p.user_id
         WHERE $1::uuid IS NULL OR p.user_id = $1
         ORDER BY u.email, p.created_at, p.id",
        &[who.into()],
        |r| {
            Ok((
                r.get::<Uuid>(1)?.expect("id"),
                r.get::<Uuid>(2)?.expect("user_id"),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<String>(4)?.unwrap_or_default(),
                r.get::<Vec<String>>(5)?.unwrap_or_default(),
                r.get::<i64>(6)?.unwrap_or(0),
                r.get::<TimestampWithTimeZone>(7)?.expect("created_at"),
                r.get::<TimestampWithTimeZone>(8)?,
            ))
        },
    );
    TableIterator::new(rows)
}

fn owner_of(id: Uuid) -> (Uuid, String) {
    db::update(
        "SELECT user_id, name FROM dashboard_auth.passkeys WHERE id = $1 FOR UPDATE",
        &[id.into()],
        |r| Ok((r.get::<Uuid>(1)?.expect("user_id"), r.get::<String>(2)?.unwrap_or_default())),
    )
    .into_iter()
    .next()
    .unwrap_or_else(|| raise(FbError::not_found(format!("no passkey with id {id}"))))
}

/// Rename one of the signed-in admin's passkeys (a database role: anyone's).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rename_passkey(id: Option<Uuid>, name: Option<&str>) {
    let id = required("id", id);
    let name = clean_name(name);
    let actor = actor::reader();
    let (owner, old) = owner_of(id);
    match &actor {
        Actor::Admin(me) if me.user_id != owner => raise(FbError::denied("an admin may rename only their own passkeys")),
        Actor::Admin(_) => {}
        Actor::Database { .. } => {
            actor::writer("renaming passkeys");
        }
    }
    db::execute("UPDATE dashboard_auth.passkeys SET name = $2 WHERE id = $1", &[id.into(), name.as_str().into()]);
    audit::record(Event::new("passkey.rename", "passkey", id).details(json!({ "user_id": owner.to_string(), "old": old, "new": name })));
}

/// Remove a passkey: one's own, or (a dashboard_admin) another admin's;
/// after a fresh re-authentication either way (a stolen session must not
/// remove the owner's strongest factor). Audited.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn remove_passkey(id: Option<Uuid>) {
    let id = required("id", id);
    let actor = actor::reader();
    let (owner, name) = owner_of(id);
    let others = match &actor {
        Actor::Admin(me) => me.user_id != owner,
        Actor::Database { .. } => true,
    };
    if others {
        actor::writer("removing another admin's passkey");
    }
    crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::RemovePasskey);
    db::execute("DELETE FROM dashboard_auth.passkeys WHERE id = $1", &[id.into()]);
    audit::record(Event::new("passkey.remove", "passkey", id).details(json!({
        "user_id": owner.to_string(), "email": email_of(owner), "name": name, "own": !others,
    })));
}
