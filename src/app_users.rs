//! App (end) users in `auth.users`: listing with search and keyset pagination,
//! invitations, role changes, password resets, deletion. Every change is
//! audited; dashboard_viewer sessions may only read.

use fluxbase_core::email::normalize_email;
use fluxbase_core::error::{check_len, require_text};
use fluxbase_core::sqlguard::contains_pattern;
use fluxbase_core::token::{self, TokenKind};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{JsonB, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::json::JsonArg;
use crate::actor;
use crate::audit::{self, Event};
use crate::db;
use crate::errors::{raise, required, OrRaise};

pub const MAX_PAGE_SIZE: i32 = 1000;

type UserRow = (
    Uuid,
    Option<String>,
    String,
    TimestampWithTimeZone,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    JsonB,
    JsonB,
);

const USER_COLUMNS: &str = "u.id, u.email, u.role, u.created_at, u.last_sign_in_at, u.confirmed_at, u.invited_at,
    u.banned_until, u.raw_app_meta_data, u.raw_user_meta_data";

fn map_user(r: &pgrx::spi::SpiHeapTupleData) -> pgrx::spi::SpiResult<UserRow> {
    Ok((
        r.get::<Uuid>(1)?.expect("id"),
        r.get::<String>(2)?,
        r.get::<String>(3)?.unwrap_or_default(),
        r.get::<TimestampWithTimeZone>(4)?.expect("created_at"),
        r.get::<TimestampWithTimeZone>(5)?,
        r.get::<TimestampWithTimeZone>(6)?,
        r.get::<TimestampWithTimeZone>(7)?,
        r.get::<TimestampWithTimeZone>(8)?,
        JsonB(r.get::<JsonArg>(9)?.map(|j| j.into_value("raw_app_meta_data")).unwrap_or(json!({}))),
        JsonB(r.get::<JsonArg>(10)?.map(|j| j.into_value("raw_user_meta_data")).unwrap_or(json!({}))),
    ))
}

/// A role an app user may have: an existing, non-superuser role that the
/// impersonation group may become (anon, authenticated, service_role unless an
/// operator granted more). Anything else is refused with 22023.
pub fn check_app_role(role: Option<&str>) -> String {
    let role = require_text("role", role, 63).or_raise();
    let ok = db::one::<bool>(
        "SELECT pg_catalog.pg_has_role('fluxbase_impersonator', r.oid, 'MEMBER')
         FROM pg_catalog.pg_roles r
         WHERE r.rolname = $1 AND NOT r.rolsuper
           AND r.rolname NOT IN ('fluxbase_impersonator', 'fluxbase_dashboard')",
        &[role.into()],
    )
    .unwrap_or(false);
    if !ok {
        raise(
            FbError::invalid(format!(
                "'{}' is not a role an app user can have",
                role.chars().filter(|c| !c.is_control()).take(63).collect::<String>()
            ))
            .with_hint("use authenticated, anon or service_role (or GRANT the role TO fluxbase_impersonator)"),
        );
    }
    role.to_string()
}

fn user_email(id: Uuid) -> Option<String> {
    let rows = db::select(
        "SELECT email FROM auth.users WHERE id = $1 AND deleted_at IS NULL",
        &[id.into()],
        |r| r.get::<String>(1),
    );
    match rows.into_iter().next() {
        Some(e) => e,
        None => raise(FbError::not_found(format!("no app user with id {id}"))),
    }
}

#[pg_extern(schema = "dashboard", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_users(
    search: default!(Option<&str>, "NULL"),
    page_size: default!(Option<i32>, 50),
    after: default!(Option<Uuid>, "NULL"),
) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, Option<String>),
        name!(role, String),
        name!(created_at, TimestampWithTimeZone),
        name!(last_sign_in_at, Option<TimestampWithTimeZone>),
        name!(confirmed_at, Option<TimestampWithTimeZone>),
        name!(invited_at, Option<TimestampWithTimeZone>),
        name!(banned_until, Option<TimestampWithTimeZone>),
        name!(app_metadata, JsonB),
        name!(user_metadata, JsonB),
    )> {
    actor::reader();
    let page_size = page_size.unwrap_or(50);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        raise(FbError::invalid(format!("page_size must be between 1 and {MAX_PAGE_SIZE}")));
    }
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = search {
        check_len("search", s, 254).or_raise();
    }
    // Constant SQL per case (so each plan fits its case); values are bound.
    let mut sql = format!("SELECT {USER_COLUMNS} FROM auth.users u WHERE u.deleted_at IS NULL");
    if search.is_some() {
        sql.push_str(" AND lower(u.email) COLLATE \"C\" LIKE $2");
    }
    if let Some(a) = after {
        if db::one::<bool>("SELECT true FROM auth.users WHERE id = $1", &[a.into()]).is_none() {
            raise(FbError::invalid(format!("after: no app user with id {a} to continue from")));
        }
        sql.push_str(
            " AND (lower(u.email) COLLATE \"C\", u.id) >
                  (SELECT lower(a.email) COLLATE \"C\", a.id FROM auth.users a WHERE a.id = $3)",
        );
    }
    sql.push_str(" ORDER BY lower(u.email) COLLATE \"C\", u.id LIMIT $1");
    let pattern = search.map(|s| contains_pattern(&s.to_lowercase()));
    let rows = db::select(&sql, &[page_size.into(), pattern.into(), after.into()], map_user);
    TableIterator::new(rows)
}

#[pg_extern(schema = "dashboard", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn get_user(id: Option<Uuid>) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, Option<String>),
        name!(role, String),
        name!(created_at, TimestampWithTimeZone),
        name!(last_sign_in_at, Option<TimestampWithTimeZone>),
        name!(confirmed_at, Option<TimestampWithTimeZone>),
        name!(invited_at, Option<TimestampWithTimeZone>),
        name!(banned_until, Option<TimestampWithTimeZone>),
        name!(app_metadata, JsonB),
        name!(user_metadata, JsonB),
    )> {
    let id = required("id", id);
    actor::reader();
    let rows = db::select(
        &format!("SELECT {USER_COLUMNS} FROM auth.users u WHERE u.id = $1 AND u.deleted_at IS NULL"),
        &[id.into()],
        map_user,
    );
    if rows.is_empty() {
        raise(FbError::not_found(format!("no app user with id {id}")));
    }
    TableIterator::new(rows)
}

#[pg_extern(schema = "dashboard", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn invite_user(
    email: Option<&str>,
    role: default!(Option<&str>, "'authenticated'"),
    metadata: default!(Option<JsonArg>, "'{}'"),
) -> TableIterator<'static, (name!(user_id, Uuid), name!(invite_token, String))> {
    let email = normalize_email(email).or_raise();
    let role = check_app_role(Some(role.unwrap_or("authenticated")));
    let metadata = match metadata.map(|j| j.into_value("metadata")) {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v,
        Some(_) => raise(FbError::invalid("metadata must be a JSON object")),
    };
    if metadata.to_string().len() > 64 * 1024 {
        raise(FbError::invalid("metadata is too large (at most 64 kB)"));
    }
    actor::writer("inviting app users");
    db::execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))", &[email.as_str().into()]);
    if db::one::<bool>("SELECT true FROM auth.users WHERE email = $1 AND deleted_at IS NULL", &[email.as_str().into()]).is_some() {
        raise(FbError::new(Code::AlreadyExists, format!("an app user with email {email} already exists")));
    }
    let t = token::generate(TokenKind::AppUserInvite);
    let id = db::one::<Uuid>(
        "INSERT INTO auth.users (email, role, raw_app_meta_data, raw_user_meta_data, invited_at, confirmation_token_digest)
         VALUES ($1, $2, '{\"provider\": \"email\", \"providers\": [\"email\"]}'::jsonb, $3, now(), $4)
         RETURNING id",
        &[email.as_str().into(), role.as_str().into(), JsonB(metadata.clone()).into(), t.digest.to_vec().into()],
    )
    .expect("INSERT RETURNING gives a row");
    audit::record(Event::new("app_user.invite", "app_user", id).details(json!({
        "email": email, "role": role, "metadata": metadata,
    })));
    TableIterator::once((id, t.token))
}

#[pg_extern(schema = "dashboard", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn update_user_role(id: Option<Uuid>, role: Option<&str>) {
    let id = required("id", id);
    let role = check_app_role(role);
    actor::writer("changing app user roles");
    crate::stepup::require_recent_auth(fluxbase_core::stepup::Action::ChangeUserRole);
    let old = db::one::<String>(
        "UPDATE auth.users n SET role = $2, updated_at = now() FROM auth.users o
         WHERE n.id = $1 AND o.id = n.id AND n.deleted_at IS NULL RETURNING o.role",
        &[id.into(), role.as_str().into()],
    )
    .unwrap_or_else(|| raise(FbError::not_found(format!("no app user with id {id}"))));
    audit::record(Event::new("app_user.role_change", "app_user", id).details(json!({ "old": old, "new": role })));
}

#[pg_extern(schema = "dashboard", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn reset_user_password(id: Option<Uuid>) -> String {
    let id = required("id", id);
    actor::writer("resetting app user passwords");
    let email = user_email(id);
    let t = token::generate(TokenKind::PasswordReset);
    db::execute(
        "UPDATE auth.users SET recovery_token_digest = $2, recovery_sent_at = now(), updated_at = now() WHERE id = $1",
        &[id.into(), t.digest.to_vec().into()],
    );
    audit::record(Event::new("app_user.password_reset", "app_user", id).details(json!({ "email": email })));
    t.token
}

#[pg_extern(schema = "dashboard", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn delete_user(id: Option<Uuid>) {
    let id = required("id", id);
    actor::writer("deleting app users");
    crate::stepup::require_recent_auth(fluxbase_core::stepup::Action::DeleteUser);
    let email = user_email(id);
    db::execute("DELETE FROM auth.users WHERE id = $1", &[id.into()]);
    audit::record(Event::new("app_user.delete", "app_user", id).details(json!({ "email": email })));
}
