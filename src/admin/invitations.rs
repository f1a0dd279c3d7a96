//! Admin invitations: `invite_admin` hands out a one-time token (digest at
//! rest), `accept_invitation` turns it into an account, `list_invitations`,
//! `revoke_invitation`.

use fluxbase_core::email::normalize_email;
use fluxbase_core::error::require_text;
use fluxbase_core::token::{self, TokenKind};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{Interval, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::json;

use crate::admin::accounts::{clean_name, hash_new_password, insert_admin};
use crate::runtime::actor::{self, AdminRole};
use crate::audit::{self, Event};
use crate::runtime::db;
use crate::runtime::errors::{raise, OrRaise};

/// The state of an invitation, as SQL, for the row aliased `i`.
const STATUS_SQL: &str = "CASE WHEN i.accepted_at IS NOT NULL THEN 'accepted'
                               WHEN i.revoked_reason = 'revoked' THEN 'revoked'
                               WHEN i.revoked_at IS NOT NULL OR i.expires_at <= now() THEN 'expired'
                               ELSE 'pending' END";

fn bad_token(msg: &str) -> ! {
    raise(
        FbError::new(Code::InvalidAuthorization, msg.to_string())
            .with_hint("ask an admin for a new invitation"),
    )
}

/// Invite someone to be an admin. Returns the invitation token (shown once;
/// only its digest is kept), valid for `valid_for`.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn invite_admin(
    email: Option<&str>,
    role: default!(Option<&str>, "'dashboard_viewer'"),
    valid_for: default!(Option<Interval>, "'7 days'"),
) -> String {
    actor::writer("inviting admins");
    let email = normalize_email(email).or_raise();
    let role = AdminRole::parse(require_text("role", role, 64).or_raise()).or_raise();
    if role == AdminRole::Admin {
        crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::InviteAdmin);
    }
    let Some(valid_for) = valid_for else { raise(FbError::new(Code::NullValue, "valid_for is required")) };
    let ok = db::one::<bool>("SELECT $1::interval > interval '0' AND $1::interval <= interval '90 days'", &[valid_for.into()]);
    if ok != Some(true) {
        raise(FbError::invalid("valid_for must be a positive interval of at most 90 days"));
    }
    if db::one::<bool>("SELECT true FROM dashboard_auth.users WHERE email = $1", &[email.as_str().into()]).is_some() {
        raise(FbError::new(Code::AlreadyExists, format!("an admin with email {email} already exists")));
    }
    // An expired open invitation no longer blocks a new one for the email.
    db::execute(
        "UPDATE dashboard_auth.invitations SET revoked_at = now(), revoked_reason = 'superseded'
         WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= now()",
        &[email.as_str().into()],
    );
    let t = token::generate(TokenKind::Invitation);
    let me = actor::current();
    let row = db::update(
        "INSERT INTO dashboard_auth.invitations (email, role, token_digest, invited_by, invited_by_label, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + $6::interval)
         ON CONFLICT (email) WHERE accepted_at IS NULL AND revoked_at IS NULL DO NOTHING
         RETURNING id, expires_at",
        &[
            email.as_str().into(),
            role.as_str().into(),
            t.digest.to_vec().into(),
            me.id().into(),
            me.label().into(),
            valid_for.into(),
        ],
        |r| Ok((r.get::<Uuid>(1)?.expect("id"), r.get::<TimestampWithTimeZone>(2)?)),
    );
    let Some((id, expires_at)) = row.into_iter().next() else {
        raise(
            FbError::new(Code::AlreadyExists, format!("a pending invitation for {email} exists already"))
                .with_hint("revoke it with dashboard_auth.revoke_invitation() to send a new one"),
        );
    };
    audit::record(Event::new("invitation.create", "invitation", id).details(json!({
        "email": email, "role": role.as_str(), "expires_at": expires_at.map(|e| e.to_string()),
    })));
    t.token
}

/// Create the invited admin account with the invitee's password and name.
/// The token works once; a revoked, expired or used one is refused (28000).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn accept_invitation(token: Option<&str>, password: Option<&str>, full_name: Option<&str>) -> Uuid {
    let token = token.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "token is required")));
    let Some(digest) = token::digest_if_well_formed(TokenKind::Invitation, token) else {
        bad_token("invalid invitation token");
    };
    let name = clean_name(full_name);
    let check = |lock: bool| {
        let sql = format!(
            "SELECT i.id, i.email, i.role, {STATUS_SQL} FROM dashboard_auth.invitations i WHERE i.token_digest = $1 {}",
            if lock { "FOR UPDATE" } else { "" }
        );
        let row = db::update(&sql, &[digest.to_vec().into()], |r| {
            Ok((
                r.get::<Uuid>(1)?.expect("id"),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<String>(4)?.unwrap_or_default(),
            ))
        })
        .into_iter()
        .next();
        let Some((id, email, role, status)) = row else { bad_token("invalid invitation token") };
        match status.as_str() {
            "pending" => {}
            "accepted" => bad_token("this invitation has already been used"),
            "revoked" => bad_token("this invitation has been revoked"),
            _ => bad_token("this invitation has expired"),
        }
        (id, email, role)
    };
    // Hash first (argon2 is the slow part), then lock the invitation and look
    // again: of two concurrent accepts, the second sees it used.
    let (_, email, _) = check(false);
    let hash = hash_new_password(password, &email, Some(&name));
    let (id, email, role) = check(true);
    let role = AdminRole::parse(&role).or_raise();
    let user_id = insert_admin(&email, &hash, &name, role, "invitation");
    db::execute(
        "UPDATE dashboard_auth.invitations SET accepted_at = now(), accepted_user_id = $2 WHERE id = $1",
        &[id.into(), user_id.into()],
    );
    audit::record(
        Event::new("invitation.accept", "invitation", id)
            .actor(Some(user_id), email.clone())
            .details(json!({ "email": email, "role": role.as_str(), "user_id": user_id.to_string() })),
    );
    user_id
}

/// Invitations, pending ones by default; accepted and expired/revoked ones on request.
#[pg_extern(schema = "dashboard_auth", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_invitations(
    include_accepted: default!(Option<bool>, "false"),
    include_expired: default!(Option<bool>, "false"),
) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, String),
        name!(role, String),
        name!(status, String),
        name!(invited_by, Option<Uuid>),
        name!(invited_by_label, String),
        name!(created_at, TimestampWithTimeZone),
        name!(expires_at, TimestampWithTimeZone),
        name!(accepted_at, Option<TimestampWithTimeZone>),
        name!(revoked_at, Option<TimestampWithTimeZone>),
    )> {
    actor::reader();
    let sql = format!(
        "SELECT * FROM (
             SELECT i.id, i.email, i.role, {STATUS_SQL} AS status, i.invited_by, i.invited_by_label,
                    i.created_at, i.expires_at, i.accepted_at, i.revoked_at
             FROM dashboard_auth.invitations i) x
         WHERE x.status = 'pending'
            OR ($1 AND x.status = 'accepted')
            OR ($2 AND x.status IN ('expired', 'revoked'))
         ORDER BY x.created_at DESC, x.email"
    );
    let rows = db::select(
        &sql,
        &[include_accepted.unwrap_or(false).into(), include_expired.unwrap_or(false).into()],
        |r| {
            Ok((
                r.get::<Uuid>(1)?.expect("id"),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<String>(4)?.unwrap_or_default(),
                r.get::<Uuid>(5)?,
                r.get::<String>(6)?.unwrap_or_default(),
                r.get::<TimestampWithTimeZone>(7)?.expect("created_at"),
                r.get::<TimestampWithTimeZone>(8)?.expect("expires_at"),
                r.get::<TimestampWithTimeZone>(9)?,
                r.get::<TimestampWithTimeZone>(10)?,
            ))
        },
    );
    TableIterator::new(rows)
}

/// Revoke a pending invitation, named by its token or by its id (as
/// `list_invitations` shows it).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_invitation(token: Option<&str>) {
    let token = require_text("token", token, 200).or_raise().trim();
    actor::writer("revoking invitations");
    let row = if let Some(digest) = token::digest_if_well_formed(TokenKind::Invitation, token) {
        db::update(
            &format!("SELECT i.id, i.email, {STATUS_SQL} FROM dashboard_auth.invitations i WHERE i.token_digest = $1 FOR UPDATE"),
            &[digest.to_vec().into()],
            |r| Ok((r.get::<Uuid>(1)?.expect("id"), r.get::<String>(2)?.unwrap_or_default(), r.get::<String>(3)?.unwrap_or_default())),
        )
    } else if fluxbase_core::is_hyphenated_uuid(token) {
        db::update(
            &format!("SELECT i.id, i.email, {STATUS_SQL} FROM dashboard_auth.invitations i WHERE i.id = $1::uuid FOR UPDATE"),
            &[token.into()],
            |r| Ok((r.get::<Uuid>(1)?.expect("id"), r.get::<String>(2)?.unwrap_or_default(), r.get::<String>(3)?.unwrap_or_default())),
        )
    } else {
        raise(FbError::invalid("not an invitation token or invitation id"));
    };
    let Some((id, email, status)) = row.into_iter().next() else {
        raise(FbError::not_found("no such invitation"));
    };
    match status.as_str() {
        "accepted" => raise(FbError::new(Code::WrongState, "this invitation has already been accepted")),
        "revoked" => raise(FbError::new(Code::WrongState, "this invitation has already been revoked")),
        _ => {}
    }
    // An expired (or superseded) one may still be revoked explicitly: it then shows as revoked.
    db::execute(
        "UPDATE dashboard_auth.invitations SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = $1",
        &[id.into()],
    );
    audit::record(Event::new("invitation.revoke", "invitation", id).details(json!({ "email": email, "was": status })));
}
