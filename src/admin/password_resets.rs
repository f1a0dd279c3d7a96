//! Admin password resets: `request_password_reset(email)` returns a one-time
//! token (digest at rest, valid one hour) for the dashboard to send by email;
//! `reset_password(token, new_password)` sets the password and ends every
//! session of that admin.

use fluxbase_core::email::normalize_email;
use fluxbase_core::token::{self, sha256, TokenKind};
use fluxbase_core::{Code, FbError};
use pgrx::datum::Uuid;
use pgrx::prelude::*;
use serde_json::json;

use crate::admin::accounts::{clear_throttle, hash_new_password, set_password_hash};
use crate::runtime::actor::{self, Actor, AdminRole};
use crate::audit::{self, Event};
use crate::runtime::errors::{raise, OrRaise};
use crate::admin::sessions;
use crate::runtime::db;

pub const RESET_LIFETIME: &str = "1 hour";

/// A reset token for the admin with this email. An unknown email gets a token
/// of the same shape and nothing is stored, so the answer does not tell which
/// emails are admins. A new request voids the earlier unused tokens.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn request_password_reset(email: Option<&str>) -> String {
    let email = normalize_email(email).or_raise();
    // A viewer's session may ask for its own reset only; a session limited to
    // enrolling in 2FA (mfa.required) for none (actor::reader refuses it, as
    // every other function beyond enrolling does: the answer is a token that
    // sets another admin's password).
    if let Actor::Admin(a) = actor::reader() {
        if a.role != AdminRole::Admin && a.email != email {
            raise(FbError::denied("permission denied: a dashboard_viewer may only reset its own password"));
        }
    }
    let t = token::generate(TokenKind::PasswordReset);
    let user = db::one::<Uuid>("SELECT id FROM dashboard_auth.users WHERE email = $1", &[email.as_str().into()]);
    match user {
        Some(user_id) => {
            db::execute(
                "UPDATE dashboard_auth.password_resets SET revoked_at = now()
                 WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
                &[user_id.into()],
            );
            let id = db::one::<Uuid>(
                &format!(
                    "INSERT INTO dashboard_auth.password_resets (user_id, token_digest, expires_at)
                     VALUES ($1, $2, now() + interval '{RESET_LIFETIME}') RETURNING id"
                ),
                &[user_id.into(), t.digest.to_vec().into()],
            );
            audit::record(Event::new("password_reset.request", "admin", user_id).details(json!({
                "email": email, "reset_id": id.map(|i| i.to_string()), "valid_for": RESET_LIFETIME,
            })));
        }
        None => {
            audit::record(
                Event::new("password_reset.request", "admin", email.clone())
                    .details(json!({ "email": email, "reason": "unknown_email" }))
                    .failed(),
            );
        }
    }
    t.token
}

fn bad_token(msg: &str) -> ! {
    raise(FbError::new(Code::InvalidAuthorization, msg.to_string()).with_hint("request a new password reset"))
}

/// Set a new password with a reset token. The token works once and for an
/// hour; every session of the admin is revoked.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn reset_password(token: Option<&str>, new_password: Option<&str>) {
    let token = token.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "token is required")));
    let Some(digest) = token::digest_if_well_formed(TokenKind::PasswordReset, token) else {
        bad_token("invalid password reset token");
    };
    let check = |lock: bool| {
        let sql = format!(
            "SELECT r.id, r.user_id, u.email, u.full_name,
                    CASE WHEN r.used_at IS NOT NULL THEN 'used'
                         WHEN r.revoked_at IS NOT NULL THEN 'revoked'
                         WHEN r.expires_at <= now() THEN 'expired' ELSE 'ok' END
             FROM dashboard_auth.password_resets r JOIN dashboard_auth.users u ON u.id = r.user_id
             WHERE r.token_digest = $1 {}",
            if lock { "FOR UPDATE OF r" } else { "" }
        );
        let row = db::update(&sql, &[digest.to_vec().into()], |r| {
            Ok((
                r.get::<Uuid>(1)?.expect("id"),
                r.get::<Uuid>(2)?.expect("user_id"),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<String>(4)?.unwrap_or_default(),
                r.get::<String>(5)?.unwrap_or_default(),
            ))
        })
        .into_iter()
        .next();
        let Some((id, user_id, email, name, state)) = row else { bad_token("invalid password reset token") };
        match state.as_str() {
            "ok" => {}
            "used" => bad_token("this password reset token has already been used"),
            "revoked" => bad_token("this password reset token was replaced by a newer one"),
            _ => bad_token("this password reset token has expired"),
        }
        (id, user_id, email, name)
    };
    let (_, _, email, name) = check(false);
    let hash = hash_new_password(new_password, &email, Some(&name));
    let (id, user_id, email, _) = check(true);
    set_password_hash(user_id, &hash);
    db::execute("UPDATE dashboard_auth.password_resets SET used_at = now() WHERE id = $1", &[id.into()]);
    db::execute(
        "UPDATE dashboard_auth.password_resets SET revoked_at = now()
         WHERE user_id = $1 AND id <> $2 AND used_at IS NULL AND revoked_at IS NULL",
        &[user_id.into(), id.into()],
    );
    let ended = sessions::revoke_where("user_id = $1", &[user_id.into()], "password_reset");
    // The owner proved control of the account: lift a lockout of its email.
    clear_throttle(&sha256(email.as_bytes()));
    audit::record(
        Event::new("password_reset.complete", "admin", user_id)
            .actor(Some(user_id), email.clone())
            .details(json!({ "email": email, "reset_id": id.to_string(), "sessions_revoked": ended.len() })),
    );
}
