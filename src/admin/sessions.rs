//! Admin sessions: creation at login, the `validate_session` hot path,
//! `use_session`, logout and revocation.

use fluxbase_core::token::{self, TokenKind};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{Inet, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::json;

use crate::runtime::actor::{self, AdminIdentity, AdminRole};
use crate::audit::{self, Event};
use crate::runtime::errors::{raise, required, OrRaise};
use crate::admin::settings;
use crate::runtime::db;
use crate::admin::fastpath;

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
/// The probe itself is src/admin/fastpath.rs (direct index scans rather than SPI,
/// for speed); its doc comment holds the SQL it is equivalent to.
pub fn lookup(presented: &str, kind: TokenKind) -> Option<LiveSession> {
    let digest = token::digest_if_well_formed(kind, presented)?;
    let found = fastpath::validate(&digest)?;
    if found.stale && can_write() {
        // As the owner: the callers may run as a SECURITY INVOKER (see below).
        refresh_last_seen(found.id);
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

/// The dashboard's per-request check, as it was before 0.2.0: a set-returning
/// Rust function. `dashboard_auth.validate_session` is now an inlinable SQL
/// function (sql/validate_session.sql) built on `_token_digest` and
/// `_session_live` below. This one stays, under an internal name, because an
/// install script of 0.1.0 refers to its C symbol (`validate_session_wrapper`,
/// from the Rust name): the symbol must keep existing in the library.
/// Same result as the SQL function, except that it sees this statement's own
/// earlier writes (see sql/validate_session.sql).
#[pg_extern(schema = "dashboard_auth", name = "_validate_session_native")]
fn validate_session(token: Option<&str>) -> TableIterator<'static, (
        name!(user_id, Uuid),
        name!(email, String),
        name!(role, String),
        name!(expires_at, TimestampWithTimeZone),
    )> {
    let rows = token
        .and_then(|t| lookup(t, TokenKind::Session))
        .filter(|s| s.scope == "full")
        .map(|s| (s.user_id, s.email, s.role, s.expires_at));
    TableIterator::new(rows)
}

/// The digest `validate_session` looks a presented session token up by; NULL
/// for anything that cannot be a session token (wrong prefix, length or
/// characters: checked before any hashing, so a huge argument costs nothing),
/// so no row can match.
///
/// IMMUTABLE (a pure function of its argument), so a literal token is digested
/// once, at plan time; PARALLEL SAFE. EXECUTE is granted to fluxbase_dashboard
/// (sql/grants.sql): the inlined validate_session calls it as its caller.
#[pg_extern(schema = "dashboard_auth", name = "_token_digest", immutable, strict, parallel_safe)]
fn token_digest(token: &str) -> Option<Vec<u8>> {
    token::digest_if_well_formed(TokenKind::Session, token).map(|d| d.to_vec())
}

/// Whether the session row with these values is live now (not revoked, not
/// past its absolute or idle expiry: fluxbase_core::session), refreshing its
/// `last_seen_at` when stale. The filter of `dashboard_auth.validate_session`
/// (sql/validate_session.sql), called with the columns of the one row found by
/// the token_digest index.
///
/// Declared STABLE although it may write (the refresh): a VOLATILE function
/// in validate_session's body would stop Postgres from inlining that function
/// into the caller's query, and inlining is what makes validate_session as fast
/// as a plain index lookup (issue 2's benchmark). What STABLE promises the
/// planner still holds for the result: within one statement, the same
/// arguments give the same answer (the refresh changes `last_seen_at` in the
/// table, not the arguments of this call, and only ever extends a live
/// session). The write is done as the extension owner through SPI, not by the
/// SQL function, so Postgres' "UPDATE is not allowed in a non-volatile
/// function" check (which applies to SQL and PL/pgSQL bodies) does not arise.
/// PARALLEL UNSAFE (the default), so a query calling it never runs in a worker,
/// where it could not write.
///
/// In a read-only transaction or on a hot standby the refresh is skipped: the
/// session still validates (its idle expiry is just not extended).
///
/// EXECUTE is granted to fluxbase_dashboard (the inlined query runs as its
/// caller). Called directly, it can do no more than extend the idle expiry of
/// a session that is live anyway (the UPDATE re-checks that): see
/// docs/SECURITY.md.
#[pg_extern(schema = "dashboard_auth", name = "_session_live", stable, cost = 1000)]
fn session_live(
    id: Option<Uuid>,
    last_seen_at: Option<TimestampWithTimeZone>,
    idle_timeout: Option<pgrx::datum::Interval>,
    expires_at: Option<TimestampWithTimeZone>,
    revoked_at: Option<TimestampWithTimeZone>,
) -> bool {
    // NOT NULL columns: a NULL (a direct call) counts as not live.
    let (Some(id), Some(last_seen_at), Some(idle), Some(expires_at)) = (id, last_seen_at, idle_timeout, expires_at) else {
        return false;
    };
    let idle = idle.into_inner();
    // SAFETY: `idle` lives on this stack frame for the whole call.
    let verdict = unsafe {
        let now = pg_sys::GetCurrentTransactionStartTimestamp();
        let idle = pg_sys::Datum::from(&idle as *const pg_sys::Interval);
        fastpath::liveness(now, revoked_at.is_some(), i64::from(expires_at), i64::from(last_seen_at), idle)
    };
    match verdict {
        fluxbase_core::session::Liveness::Live { refresh } => {
            if refresh && can_write() {
                refresh_last_seen(id);
            }
            true
        }
        _ => false,
    }
}

/// False in a read-only transaction (which includes every transaction on a
/// hot standby), where an UPDATE would fail.
fn can_write() -> bool {
    // SAFETY: reads two backend globals.
    unsafe { !pg_sys::XactReadOnly && !pg_sys::RecoveryInProgress() }
}

/// Set `last_seen_at` of a session to now, if it is still live.
fn refresh_last_seen(id: Uuid) {
    db::as_extension_owner(|| {
        db::execute(
            "UPDATE dashboard_auth.sessions SET last_seen_at = now()
             WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()
               AND last_seen_at + idle_timeout > now() AND last_seen_at < now()",
            &[id.into()],
        )
    });
}

/// Verify an admin session token and make that admin the actor for the rest of
/// the current transaction.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn use_session(token: Option<&str>) -> Uuid {
    let bad = || FbError::new(Code::InvalidAuthorization, "invalid or expired admin session token");
    let Some(s) = token.and_then(|t| lookup(t, TokenKind::Session)) else {
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
        crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::RevokeOthersSession);
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
        crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::RevokeOthersSessions);
    }
    if db::one::<bool>("SELECT true FROM dashboard_auth.users WHERE id = $1", &[user_id.into()]).is_none() {
        raise(FbError::not_found(format!("no admin with id {user_id}")));
    }
    let ended = revoke_where("user_id = $1", &[user_id.into()], "revoked");
    audit::record(Event::new("session.revoke_all", "admin", user_id).details(json!({ "sessions": ended.len() })));
    ended.len() as i32
}
