//! Admin sessions: creation at login, the `validate_session` hot path,
//! `use_session`, logout and revocation.

use fluxbase_core::token::{self, TokenKind};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{Inet, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::json;

use crate::actor::{self, AdminIdentity, AdminRole};
use crate::audit::{self, Event};
use crate::errors::{raise, required, OrRaise};
use crate::settings;
use crate::db;
use crate::fastpath;

/// How long a password-checked login may wait for its 2FA code.
pub const MFA_PENDING_LIFETIME: &str = "5 minutes";

pub struct NewSession {
    pub id: Uuid,
    pub token: String,
    pub expires_at: TimestampWithTimeZone,
}

/// Start a session for `user_id`. The token is returned once; only its digest is stored.
pub fn create(user_id: Uuid, scope: &str, ip: Option<Inet>, user_agent: Option<&str>) -> NewSession {
    let kind = if scope == "mfa_pending" { TokenKind::MfaPending } else { TokenKind::Session };
    let t = token::generate(kind);
    let lifetime = if scope == "mfa_pending" {
        format!("interval '{MFA_PENDING_LIFETIME}'")
    } else {
        settings::sql_value("session.absolute_timeout", "interval")
    };
    let idle = settings::sql_value("session.idle_timeout", "interval");
    // The reported expiry is the nearer of the absolute and the idle one.
    let sql = format!(
        "INSERT INTO dashboard_auth.sessions (user_id, token_digest, scope, expires_at, idle_timeout, ip, user_agent)
         VALUES ($1, $2, $3, now() + {lifetime}, {idle}, $4, $5)
         RETURNING id, least(expires_at, now() + idle_timeout)"
    );
    let row = db::update(
        &sql,
        &[user_id.into(), t.digest.to_vec().into(), scope.into(), ip.into(), user_agent.into()],
        |r| Ok((r.get::<Uuid>(1)?, r.get::<TimestampWithTimeZone>(2)?)),
    );
    let (id, expires_at) = row.into_iter().next().expect("INSERT RETURNING gives a row");
    NewSession { id: id.expect("id"), token: t.token, expires_at: expires_at.expect("expiry") }
}

pub struct LiveSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub scope: String,
    pub expires_at: TimestampWithTimeZone,
}

/// Look a presented session token up: one index probe on the digest, no
/// argon2. Returns None for anything unknown, expired (idle or absolute) or
/// revoked. Refreshes `last_seen_at` at most about once a minute, so the hot
/// path stays read-only almost always.
///
/// The probe itself is src/fastpath.rs (direct index scans rather than SPI,
/// for speed); its doc comment holds the SQL it is equivalent to.
pub fn lookup(presented: &str, kind: TokenKind) -> Option<LiveSession> {
    let digest = token::digest_if_well_formed(kind, presented)?;
    let found = fastpath::validate(&digest)?;
    if found.stale {
        // As the owner: validate_session runs as its caller (see below).
        db::as_extension_owner(|| {
            db::execute("UPDATE dashboard_auth.sessions SET last_seen_at = now() WHERE id = $1", &[found.id.into()])
        });
    }
    Some(LiveSession {
        id: found.id,
        user_id: found.user_id,
        email: found.email,
        role: found.role,
        scope: found.scope,
        expires_at: found.expires_at,
    })
}

/// The dashboard's per-request check. Empty when the token is unknown,
/// expired or revoked.
///
/// The hot path, so it is SECURITY INVOKER without a SET clause: a SECURITY
/// DEFINER function re-parses and sets `search_path` on every call, which
/// measured as a large share of the call. It needs neither: the lookup
/// (fastpath.rs) reads the two tables through their indexes by schema-qualified
/// name, with no SQL and no permission checks, and the rare `last_seen_at`
/// refresh runs through `db::as_extension_owner`, which pins `search_path`.
/// EXECUTE is granted to fluxbase_dashboard only, as for the rest of the API.
#[pg_extern(schema = "dashboard_auth")]
fn validate_session(token: Option<&str>) -> TableIterator<'static, (
        name!(user_id, Uuid),
        name!(email, String),
        name!(role, String),
        name!(expires_at, TimestampWithTimeZone),
    )> {
    let rows = token
        .filter(|t| t.len() < 200)
        .and_then(|t| lookup(t, TokenKind::Session))
        .filter(|s| s.scope == "full")
        .map(|s| (s.user_id, s.email, s.role, s.expires_at));
    TableIterator::new(rows)
}

/// Verify an admin session token and make that admin the actor for the rest of
/// the current transaction.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn use_session(token: Option<&str>) -> Uuid {
    let bad = || FbError::new(Code::InvalidAuthorization, "invalid or expired admin session token");
    let Some(s) = token.filter(|t| t.len() < 200).and_then(|t| lookup(t, TokenKind::Session)) else {
        raise(bad().with_hint("log in again with dashboard_auth.login()"));
    };
    if s.scope != "full" && s.scope != "mfa_enroll" {
        raise(bad());
    }
    actor::set_admin(AdminIdentity {
        user_id: s.user_id,
        email: s.email,
        role: AdminRole::parse(&s.role).or_raise(),
        session_id: s.id,
        scope: s.scope,
    });
    s.user_id
}

/// End the session the token belongs to. True when a live session was ended.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn logout(token: Option<&str>) -> bool {
    let Some(digest) = token.and_then(|t| token::digest_if_well_formed(TokenKind::Session, t)) else {
        return false;
    };
    let ended = db::update(
        "UPDATE dashboard_auth.sessions s SET revoked_at = now(), revoked_reason = 'logout'
         FROM dashboard_auth.users u
         WHERE s.token_digest = $1 AND s.revoked_at IS NULL AND u.id = s.user_id
         RETURNING s.id, u.id, u.email",
        &[digest.to_vec().into()],
        |r| Ok((r.get::<Uuid>(1)?.expect("id"), r.get::<Uuid>(2)?, r.get::<String>(3)?.unwrap_or_default())),
    );
    for (id, user_id, email) in &ended {
        audit::record(Event::new("session.logout", "session", id).actor(*user_id, email.clone()));
    }
    !ended.is_empty()
}

/// Live sessions, of everyone or of one admin.
#[pg_extern(schema = "dashboard_auth", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_sessions(user_id: default!(Option<Uuid>, "NULL")) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(user_id, Uuid),
        name!(email, String),
        name!(created_at, TimestampWithTimeZone),
        name!(last_seen_at, TimestampWithTimeZone),
        name!(expires_at, TimestampWithTimeZone),
        name!(ip, Option<Inet>),
        name!(user_agent, Option<String>),
        name!(is_current, bool),
    )> {
    let actor = actor::reader();
    let current = actor.admin().map(|a| a.session_id);
    let sql = "SELECT s.id, s.user_id, u.email, s.created_at, s.last_seen_at,
                least(s.expires_at, s.last_seen_at + s.idle_timeout), s.ip, s.user_agent
         FROM dashboard_auth.sessions s JOIN dashboard_auth.users u ON u.id = s.user_id
         WHERE s.scope = 'full' AND s.revoked_at IS NULL AND s.expires_at > now()
           AND s.last_seen_at + s.idle_timeout > now()
           AND ($1::uuid IS NULL OR s.user_id = $1)
         ORDER BY s.last_seen_at DESC";
    let rows = db::select(sql, &[user_id.into()], |r| {
        let id = r.get::<Uuid>(1)?.expect("id");
        Ok((
            id,
            r.get::<Uuid>(2)?.expect("user"),
            r.get::<String>(3)?.unwrap_or_default(),
            r.get::<TimestampWithTimeZone>(4)?.expect("created"),
            r.get::<TimestampWithTimeZone>(5)?.expect("seen"),
            r.get::<TimestampWithTimeZone>(6)?.expect("expires"),
            r.get::<Inet>(7)?,
            r.get::<String>(8)?,
            Some(id) == current,
        ))
    });
    TableIterator::new(rows)
}

/// Revoke the given sessions (all of them live), returning how many ended.
pub fn revoke_where(condition: &str, args: &[pgrx::datum::DatumWithOid], reason: &str) -> Vec<(Uuid, Uuid)> {
    let sql = format!(
        "UPDATE dashboard_auth.sessions SET revoked_at = now(), revoked_reason = '{reason}'
         WHERE revoked_at IS NULL AND {condition} RETURNING id, user_id"
    );
    db::update(&sql, args, |r| Ok((r.get::<Uuid>(1)?.expect("id"), r.get::<Uuid>(2)?.expect("user"))))
}

/// Revoke one session. An admin may revoke anyone's; a viewer only their own.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_session(session_id: Option<Uuid>) -> bool {
    let session_id = required("session_id", session_id);
    let actor = actor::reader();
    let owner = db::one::<Uuid>("SELECT user_id FROM dashboard_auth.sessions WHERE id = $1", &[session_id.into()]);
    let Some(owner) = owner else {
        raise(FbError::not_found(format!("no session with id {session_id}")));
    };
    if actor.id() != Some(owner) {
        actor::writer("revoking another admin's session");
    }
    let ended = revoke_where("id = $1", &[session_id.into()], "revoked");
    if !ended.is_empty() {
        audit::record(Event::new("session.revoke", "session", session_id).details(json!({ "user_id": owner.to_string() })));
    }
    !ended.is_empty()
}

/// Revoke every live session of one admin; returns how many ended.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_all_sessions(user_id: Option<Uuid>) -> i32 {
    let user_id = required("user_id", user_id);
    let actor = actor::reader();
    if actor.id() != Some(user_id) {
        actor::writer("revoking another admin's sessions");
    }
    if db::one::<bool>("SELECT true FROM dashboard_auth.users WHERE id = $1", &[user_id.into()]).is_none() {
        raise(FbError::not_found(format!("no admin with id {user_id}")));
    }
    let ended = revoke_where("user_id = $1", &[user_id.into()], "revoked");
    audit::record(Event::new("session.revoke_all", "admin", user_id).details(json!({ "sessions": ended.len() })));
    ended.len() as i32
}
