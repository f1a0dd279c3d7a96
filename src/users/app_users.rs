//! App (end) users in `auth.users`: listing with search and keyset pagination,
//! invitations, role changes, password resets, deletion. Every change is
//! audited; dashboard_viewer sessions may only read.

use fluxbase_core::email::normalize_email;
use fluxbase_core::phone::{normalize_phone, phone_search_digits};
use fluxbase_core::error::{check_len, require_text};
use fluxbase_core::sqlguard::contains_pattern;
use fluxbase_core::token::{self, TokenKind};
use fluxbase_core::user_list::{self, UserSort};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{JsonB, TimestampWithTimeZone, Uuid};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use serde_json::{json, Value};
use std::str::FromStr;

use crate::runtime::json::JsonArg;
use crate::runtime::actor;
use crate::audit::{self, Event};
use crate::runtime::db;
use crate::runtime::errors::{raise, required, OrRaise};

pub const MAX_PAGE_SIZE: i32 = 1000;

/// A row of `dashboard.list_users` / `get_user` as 0.2.0 defined them, kept
/// for the 0.2.0 SQL definitions (see `list_users` below).
type UserRow02 = (
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

const USER_COLUMNS_0_2: &str = "u.id, u.email, u.role, u.created_at, u.last_sign_in_at, u.confirmed_at, u.invited_at,
    u.banned_until, u.raw_app_meta_data, u.raw_user_meta_data";

/// Reads only the columns 0.2.0 has: between installing this library and
/// `ALTER EXTENSION ... UPDATE`, the 0.2.0 definitions run on the 0.2.0 table.
fn map_user_0_2(r: &pgrx::spi::SpiHeapTupleData) -> pgrx::spi::SpiResult<UserRow02> {
    let ts = |i: usize| r.get::<TimestampWithTimeZone>(i);
    Ok((
        r.get::<Uuid>(1)?.expect("id"),
        r.get::<String>(2)?,
        r.get::<String>(3)?.unwrap_or_default(),
        ts(4)?.expect("created_at"),
        ts(5)?,
        ts(6)?,
        ts(7)?,
        ts(8)?,
        meta(r, 9, "raw_app_meta_data")?,
        meta(r, 10, "raw_user_meta_data")?,
    ))
}

fn meta(r: &pgrx::spi::SpiHeapTupleData, i: usize, what: &str) -> pgrx::spi::SpiResult<JsonB> {
    Ok(JsonB(r.get::<JsonArg>(i)?.map(|j| j.into_value(what)).unwrap_or(json!({}))))
}

/// A row of `dashboard.list_users` / `get_user` since 0.3.0 (issue 23): the
/// phone and the confirmation state (Supabase's columns) added.
type UserRow = (
    Uuid,
    Option<String>,
    Option<String>,
    String,
    TimestampWithTimeZone,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    bool,
    JsonB,
    JsonB,
);

const USER_COLUMNS: &str = "u.id, u.email, u.phone, u.role, u.created_at, u.last_sign_in_at, u.confirmed_at,
    u.email_confirmed_at, u.phone_confirmed_at, u.confirmation_sent_at, u.invited_at, u.banned_until,
    u.is_anonymous, u.raw_app_meta_data, u.raw_user_meta_data";

fn map_user(r: &pgrx::spi::SpiHeapTupleData) -> pgrx::spi::SpiResult<UserRow> {
    let ts = |i: usize| r.get::<TimestampWithTimeZone>(i);
    Ok((
        r.get::<Uuid>(1)?.expect("id"),
        r.get::<String>(2)?,
        r.get::<String>(3)?,
        r.get::<String>(4)?.unwrap_or_default(),
        ts(5)?.expect("created_at"),
        ts(6)?,
        ts(7)?,
        ts(8)?,
        ts(9)?,
        ts(10)?,
        ts(11)?,
        ts(12)?,
        r.get::<bool>(13)?.unwrap_or(false),
        meta(r, 14, "raw_app_meta_data")?,
        meta(r, 15, "raw_user_meta_data")?,
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

fn check_page_size(page_size: Option<i32>) -> i32 {
    let page_size = page_size.unwrap_or(50);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        raise(FbError::invalid(format!("page_size must be between 1 and {MAX_PAGE_SIZE}")));
    }
    page_size
}

/// The bound values of a search: a substring of the lower-cased email, of the
/// phone (when the text can only be a phone number) or a prefix of the id
/// (when it can only be one); with `email_only` the email only.
struct SearchTerms {
    pattern: Option<String>,
    phone: Option<String>,
    id_prefix: Option<String>,
}

impl SearchTerms {
    fn new(search: Option<&str>, email_only: bool) -> Self {
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        if let Some(s) = search {
            check_len("search", s, 254).or_raise();
        }
        let lower = search.map(str::to_lowercase);
        let phone = search.filter(|_| !email_only).and_then(phone_search_digits).map(|d| contains_pattern(&d));
        let id_prefix = lower
            .as_deref()
            .filter(|_| !email_only)
            .filter(|s| s.len() <= 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
            .map(|s| format!("{s}%"));
        SearchTerms { pattern: lower.as_deref().map(contains_pattern), phone, id_prefix }
    }
}

/// One page of live users in (lower(email), id) order, after the user `after`;
/// `search` matches a substring of the email, of the phone (when it can only
/// be a phone number) or a prefix of the id (when it can only be one); with
/// `email_only` (the 0.2.0 definitions: no phone column yet) the email only.
type RowMap<T> = fn(&pgrx::spi::SpiHeapTupleData) -> pgrx::spi::SpiResult<T>;

fn user_page<T>(
    search: Option<&str>,
    page_size: Option<i32>,
    after: Option<Uuid>,
    (columns, map, email_only): (&str, RowMap<T>, bool),
) -> Vec<T> {
    actor::reader();
    let page_size = check_page_size(page_size);
    let terms = SearchTerms::new(search, email_only);
    // Constant SQL per case (so each plan fits its case); values are bound.
    let mut sql = format!("SELECT {columns} FROM auth.users u WHERE u.deleted_at IS NULL");
    if terms.pattern.is_some() {
        sql.push_str(&user_list::search_sql(2, terms.phone.is_some().then_some(4), terms.id_prefix.is_some().then_some(5)));
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
    let SearchTerms { pattern, phone, id_prefix } = terms;
    db::select(&sql, &[page_size.into(), pattern.into(), after.into(), phone.into(), id_prefix.into()], map)
}

/// One live user, or P0002.
fn one_user<T>(id: Option<Uuid>, (columns, map, _): (&str, RowMap<T>, bool)) -> Vec<T> {
    let id = required("id", id);
    actor::reader();
    let rows = db::select(
        &format!("SELECT {columns} FROM auth.users u WHERE u.id = $1 AND u.deleted_at IS NULL"),
        &[id.into()],
        map,
    );
    if rows.is_empty() {
        raise(FbError::not_found(format!("no app user with id {id}")));
    }
    rows
}

const CURRENT: (&str, RowMap<UserRow>, bool) = (USER_COLUMNS, map_user, false);
const AS_0_2: (&str, RowMap<UserRow02>, bool) = (USER_COLUMNS_0_2, map_user_0_2, true);

#[pg_extern(schema = "dashboard", name = "list_users", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn list_users_v3(
    search: default!(Option<&str>, "NULL"),
    page_size: default!(Option<i32>, 50),
    after: default!(Option<Uuid>, "NULL"),
) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, Option<String>),
        name!(phone, Option<String>),
        name!(role, String),
        name!(created_at, TimestampWithTimeZone),
        name!(last_sign_in_at, Option<TimestampWithTimeZone>),
        name!(confirmed_at, Option<TimestampWithTimeZone>),
        name!(email_confirmed_at, Option<TimestampWithTimeZone>),
        name!(phone_confirmed_at, Option<TimestampWithTimeZone>),
        name!(confirmation_sent_at, Option<TimestampWithTimeZone>),
        name!(invited_at, Option<TimestampWithTimeZone>),
        name!(banned_until, Option<TimestampWithTimeZone>),
        name!(is_anonymous, bool),
        name!(app_metadata, JsonB),
        name!(user_metadata, JsonB),
    )> {
    TableIterator::new(user_page(search, page_size, after, CURRENT))
}

#[pg_extern(schema = "dashboard", name = "get_user", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn get_user_v3(id: Option<Uuid>) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, Option<String>),
        name!(phone, Option<String>),
        name!(role, String),
        name!(created_at, TimestampWithTimeZone),
        name!(last_sign_in_at, Option<TimestampWithTimeZone>),
        name!(confirmed_at, Option<TimestampWithTimeZone>),
        name!(email_confirmed_at, Option<TimestampWithTimeZone>),
        name!(phone_confirmed_at, Option<TimestampWithTimeZone>),
        name!(confirmation_sent_at, Option<TimestampWithTimeZone>),
        name!(invited_at, Option<TimestampWithTimeZone>),
        name!(banned_until, Option<TimestampWithTimeZone>),
        name!(is_anonymous, bool),
        name!(app_metadata, JsonB),
        name!(user_metadata, JsonB),
    )> {
    TableIterator::new(one_user(id, CURRENT))
}

/// App users' live sessions: the extension keeps none of its own (app users
/// sign in through an auth server such as Supabase's GoTrue, which keeps them
/// in `auth.sessions`: user_id, not_after). When that table is there — a plain
/// table (not a view: nothing of the caller's runs), owned by the owner of
/// schema `auth` or a superuser, readable, with those columns — its live rows
/// are counted; without it the count is NULL (unknown).
fn app_sessions_sql() -> &'static str {
    let usable = db::one::<bool>(
        "SELECT true FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'auth' AND c.relname = 'sessions' AND c.relkind IN ('r', 'p')
            AND (c.relowner = n.nspowner OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = c.relowner))
            AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
            AND (SELECT count(*) FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND NOT a.attisdropped
                    AND ((a.attname = 'user_id' AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype)
                      OR (a.attname = 'not_after' AND a.atttypid = 'pg_catalog.timestamptz'::pg_catalog.regtype))) = 2",
        &[],
    )
    .unwrap_or(false);
    if usable {
        "(SELECT count(*) FROM auth.sessions s WHERE s.user_id = u.id AND (s.not_after IS NULL OR s.not_after > now()))"
    } else {
        "NULL::bigint"
    }
}

type SearchRow = (
    Uuid,
    Option<String>,
    Option<String>,
    String,
    TimestampWithTimeZone,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    bool,
    JsonB,
    JsonB,
    Option<i64>,
    i64,
    JsonB,
);

/// The Users list of the dashboard (issue 20): `list_users`' columns plus the
/// user's live sessions and live impersonations and the row's cursor, with
/// filters (confirmed or not, role) and a sort (email, created_at,
/// last_sign_in_at; NULLs last in both directions; ties by id), keyset-paged:
/// `after` is the `cursor` of the last row of the previous page.
#[pg_extern(schema = "dashboard", security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn search_users(
    search: default!(Option<&str>, "NULL"),
    confirmed: default!(Option<bool>, "NULL"),
    role: default!(Option<&str>, "NULL"),
    sort: default!(Option<&str>, "'email'"),
    descending: default!(Option<bool>, false),
    page_size: default!(Option<i32>, 50),
    after: default!(Option<JsonArg>, "NULL"),
) -> TableIterator<'static, (
        name!(id, Uuid),
        name!(email, Option<String>),
        name!(phone, Option<String>),
        name!(role, String),
        name!(created_at, TimestampWithTimeZone),
        name!(last_sign_in_at, Option<TimestampWithTimeZone>),
        name!(confirmed_at, Option<TimestampWithTimeZone>),
        name!(email_confirmed_at, Option<TimestampWithTimeZone>),
        name!(phone_confirmed_at, Option<TimestampWithTimeZone>),
        name!(confirmation_sent_at, Option<TimestampWithTimeZone>),
        name!(invited_at, Option<TimestampWithTimeZone>),
        name!(banned_until, Option<TimestampWithTimeZone>),
        name!(is_anonymous, bool),
        name!(app_metadata, JsonB),
        name!(user_metadata, JsonB),
        name!(active_sessions, Option<i64>),
        name!(active_impersonations, i64),
        name!(cursor, JsonB),
    )> {
    actor::reader();
    let sort = UserSort::parse(sort).or_raise();
    let descending = descending.unwrap_or(false);
    let page_size = check_page_size(page_size);
    let terms = SearchTerms::new(search, false);
    let role = role.map(str::trim).filter(|r| !r.is_empty());
    if let Some(r) = role {
        check_len("role", r, 63).or_raise();
    }
    let cursor = after
        .map(|j| j.into_value("after"))
        .filter(|v| !v.is_null())
        .map(|v| user_list::parse_cursor(&v, sort, descending).or_raise());
    let after_id = cursor.as_ref().map(|c| {
        Uuid::from_bytes(fluxbase_core::parse_uuid(&c.id).unwrap_or_else(|| raise(FbError::invalid("after: id is not a uuid"))))
    });
    let key = cursor.as_ref().and_then(|c| c.key.clone());
    // The key after which to continue, typed as the sort's key is.
    let (key_text, key_time) = if sort.is_timestamp() {
        let t = key.as_deref().map(|k| {
            TimestampWithTimeZone::from_str(k)
                .unwrap_or_else(|_| raise(FbError::invalid("after: the cursor's key is not a timestamp")))
        });
        (None, t)
    } else {
        (key, None)
    };
    let parts = user_list::Parts {
        search: terms.pattern.is_some(),
        phone: terms.phone.is_some(),
        id_prefix: terms.id_prefix.is_some(),
        confirmed,
        role: role.is_some(),
        after_null_key: cursor.as_ref().map(|c| c.key.is_none()),
    };
    // Constant SQL per case; every value is bound. The counts are taken for
    // the page's rows only (outside the inner LIMIT).
    let sql = format!(
        "SELECT {USER_COLUMNS}, {sessions},
                (SELECT count(*) FROM auth.impersonation_sessions i
                  WHERE i.target_user_id = u.id AND i.ended_at IS NULL AND i.expires_at > now()),
                pg_catalog.jsonb_build_object('sort', $8::text, 'desc', $9::bool, 'key', u.sort_key, 'id', u.id)
           FROM ({inner}) u {order}",
        sessions = app_sessions_sql(),
        inner = user_list::page_sql(sort, descending, parts),
        order = user_list::outer_order(descending),
    );
    let key_arg: DatumWithOid = if sort.is_timestamp() { key_time.into() } else { key_text.into() };
    let SearchTerms { pattern, phone, id_prefix } = terms;
    let rows: Vec<SearchRow> = db::select(
        &sql,
        &[
            page_size.into(), pattern.into(), phone.into(), id_prefix.into(), role.into(),
            key_arg, after_id.into(), sort.as_str().into(), descending.into(),
        ],
        |r| {
            let (id, email, phone, role, created, last, conf, econf, pconf, csent, invited, banned, anon, app, user) = map_user(r)?;
            Ok((
                id, email, phone, role, created, last, conf, econf, pconf, csent, invited, banned, anon, app, user,
                r.get::<i64>(16)?,
                r.get::<i64>(17)?.unwrap_or(0),
                JsonB(r.get::<JsonArg>(18)?.map(|j| j.into_value("cursor")).unwrap_or(Value::Null)),
            ))
        },
    );
    TableIterator::new(rows)
}

// `list_users` and `get_user` as 0.2.0 defined them (ten columns). Their C
// symbols (`list_users_wrapper`, `get_user_wrapper`, from these Rust names)
// are named by the archived 0.1.0 and 0.2.0 install scripts, so they stay in
// the library (docs/RELEASING.md), serving those definitions until
// `ALTER EXTENSION ... UPDATE` replaces them; 0.3.0 has no SQL function for them.
#[pg_extern(sql = false)]
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
    TableIterator::new(user_page(search, page_size, after, AS_0_2))
}

#[pg_extern(sql = false)]
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
    TableIterator::new(one_user(id, AS_0_2))
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
    crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::ChangeUserRole);
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
    crate::admin::stepup::require_recent_auth(fluxbase_core::stepup::Action::DeleteUser);
    let email = user_email(id);
    db::execute("DELETE FROM auth.users WHERE id = $1", &[id.into()]);
    audit::record(Event::new("app_user.delete", "app_user", id).details(json!({ "email": email })));
}

/// Supabase's raw token columns, kept always empty (see sql/app_users.sql).
const RAW_TOKEN_COLUMNS: [&str; 6] = [
    "confirmation_token", "recovery_token", "email_change_token_new",
    "email_change_token_current", "phone_change_token", "reauthentication_token",
];

#[pg_schema]
pub mod auth {
    use super::*;

    /// BEFORE INSERT OR UPDATE OF email, phone, <raw token columns> FOR EACH
    /// ROW on auth.users: what a plain `INSERT INTO auth.users (id, email,
    /// phone, ...)` writes (a seed script, a test helper, a Supabase tool) is
    /// stored as the API stores it — the email trimmed and lower-cased, the
    /// phone as E.164 digits, '' as "none" — or refused with 22023 and a
    /// message that says why; and no raw token is ever stored. On UPDATE only
    /// the values that changed are checked.
    #[pg_trigger]
    pub fn _users_normalize<'a>(tr: &'a PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, String> {
        let mut new = tr.new().ok_or("_users_normalize must be a BEFORE INSERT OR UPDATE row trigger")?.into_owned();
        let old = tr.old();
        let t = |x: pgrx::datum::TryFromDatumError| x.to_string();
        let changed = |col: &str, v: &Option<String>| -> Result<bool, String> {
            Ok(match &old {
                Some(o) => o.get_by_name::<String>(col).map_err(t)? != *v,
                None => true,
            })
        };
        for col in RAW_TOKEN_COLUMNS {
            let v = new.get_by_name::<String>(col).map_err(t)?;
            if v.as_deref().is_some_and(|s| !s.is_empty()) {
                raise(
                    FbError::invalid(format!("auth.users keeps no raw tokens: {col} must be empty"))
                        .with_detail("fluxbase_admin stores only SHA-256 digests of its one-time tokens")
                        .with_hint("dashboard.invite_user and dashboard.reset_user_password issue tokens"),
                );
            }
        }
        let email = new.get_by_name::<String>("email").map_err(t)?;
        if changed("email", &email)? {
            let norm = match email.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(s) => Some(normalize_email(Some(s)).or_raise()),
            };
            if norm != email {
                new.set_by_name("email", norm).map_err(t)?;
            }
        }
        let phone = new.get_by_name::<String>("phone").map_err(t)?;
        if changed("phone", &phone)? {
            let norm = match phone.as_deref() {
                None => None,
                Some(s) => normalize_phone(s).or_raise(),
            };
            if norm != phone {
                new.set_by_name("phone", norm).map_err(t)?;
            }
        }
        Ok(Some(new))
    }
}

extension_sql!(
    r#"
-- What a plain INSERT or UPDATE of auth.users writes is stored as the API
-- stores it (src/users/app_users.rs, auth._users_normalize).
CREATE TRIGGER fluxbase_normalize BEFORE INSERT OR UPDATE OF email, phone, confirmation_token, recovery_token,
    email_change_token_new, email_change_token_current, phone_change_token, reauthentication_token
    ON auth.users FOR EACH ROW EXECUTE FUNCTION auth._users_normalize();
"#,
    name = "app_users_normalize_trigger",
    requires = ["app_users_schema", auth::_users_normalize]
);
