//! Impersonation: an admin views and edits the database as a chosen app user
//! (or as `anon` / `service_role`) so that RLS policies see that user, with
//! every step on record in `auth.impersonation_sessions` and the audit log.
//!
//! SET ROLE vs SECURITY DEFINER. Postgres refuses to change `role` inside a
//! SECURITY DEFINER function (and inside `db::as_extension_owner`, which uses
//! the same security context). So `apply_impersonation` and `query_as` are
//! SECURITY INVOKER, with no SET clause of their own: they read and write the
//! extension's tables only inside `db::as_extension_owner`, and switch `role`
//! outside it with `set_config_option` — exactly what `SELECT set_config('role',
//! .., true)` does. SET ROLE requires the *login* role (session_user) to be a
//! member of the target role: sql/grants.sql makes `fluxbase_dashboard` a
//! member of the NOINHERIT group `fluxbase_impersonator`, which is a member of
//! anon, authenticated and service_role. A dashboard login can therefore become
//! those roles (as PostgREST's authenticator can) but does not inherit their
//! table privileges. Such a login can also `SET ROLE service_role` by hand:
//! that is acceptable because a fluxbase_dashboard member is already trusted
//! with the whole admin API; untrusted SQL text goes through `query_as`, which
//! refuses SET / set_config and checks the role afterwards.
//!
//! query_as saves the caller's settings (NewGUCNestLevel), sets role and claims
//! for the one statement, and then rolls back *every* setting changed at that
//! level (AtEOXact_GUC(false, level)), so a function that sneaks in a
//! set_config cannot leave anything behind. The statement itself runs confined
//! (src/runtime/confine.rs: a security-restricted operation), so nothing it reaches can
//! change role or claims or call the API; apply_impersonation confines the rest
//! of its transaction the same way. On error, the transaction's (or
//! savepoint's) abort restores the settings and the security context.

use std::ffi::CString;

use fluxbase_core::claims::parse_uuid;
use fluxbase_core::email::normalize_email;
use fluxbase_core::error::require_text;
use fluxbase_core::sqlguard::{self, Kind};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{JsonB, Uuid};
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::runtime::json::JsonArg;
use crate::runtime::actor::{self, Actor, AdminRole};
use crate::audit::{self, Event};
use crate::runtime::db;
use crate::runtime::errors::{raise, required, OrRaise};

fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Viewers impersonate read-only; admins and database roles read-write.
fn is_read_only(actor: &Actor) -> bool {
    matches!(actor, Actor::Admin(a) if a.role == AdminRole::Viewer)
}

#[pg_extern(schema = "dashboard", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn start_impersonation(target: Option<&str>, reason: Option<&str>) -> Uuid {
    let target = require_text("target", target, 320).or_raise().trim();
    let reason = require_text("reason", reason, 1000).or_raise().trim();
    let actor = actor::reader();
    let read_only = is_read_only(&actor);
    let (typ, user_id, role): (&str, Option<Uuid>, String) = match target {
        "anon" => ("anon", None, "anon".into()),
        "service_role" => ("service_role", None, "service_role".into()),
        t => {
            let found = if let Some(b) = parse_uuid(t) {
                db::select(
                    "SELECT id, role FROM auth.users WHERE id = $1 AND deleted_at IS NULL",
                    &[Uuid::from_bytes(b).into()],
                    |r| Ok((r.get::<Uuid>(1)?, r.get::<String>(2)?)),
                )
            } else {
                let email = normalize_email(Some(t)).unwrap_or_else(|_| {
                    raise(FbError::invalid(format!(
                        "target '{}' is neither an app user's id or email, nor anon or service_role",
                        clean(t)
                    )))
                });
                db::select(
                    "SELECT id, role FROM auth.users WHERE email = $1 AND deleted_at IS NULL",
                    &[email.into()],
                    |r| Ok((r.get::<Uuid>(1)?, r.get::<String>(2)?)),
                )
            };
            match found.into_iter().next() {
                Some((Some(id), Some(role))) => ("user", Some(id), role),
                _ => raise(FbError::not_found(format!("no app user matches '{}'", clean(t)))),
            }
        }
    };
    let max_duration = crate::admin::settings::sql_value("impersonation.max_duration", "interval");
    let id = db::one::<Uuid>(
        &format!(
            "INSERT INTO auth.impersonation_sessions
                 (admin_user_id, actor, target_user_id, target_role, impersonation_type, read_only, reason, expires_at, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now() + {max_duration}, pg_catalog.inet_client_addr())
             RETURNING id"
        ),
        &[
            actor.id().into(),
            actor.label().into(),
            user_id.into(),
            role.as_str().into(),
            typ.into(),
            read_only.into(),
            reason.into(),
        ],
    )
    .expect("INSERT RETURNING gives a row");
    audit::record(
        Event::new("impersonation.start", "impersonation", id)
            .impersonation(id)
            .details(json!({
                "target": target, "target_user_id": user_id.map(|u| u.to_string()), "target_role": role,
                "impersonation_type": typ, "reason": reason, "read_only": read_only,
            })),
    );
    id
}

/// A live impersonation session, checked to belong to the current actor.
struct Live {
    role: String,
    read_only: bool,
    claims: Value,
    sub: Option<String>,
    email: Option<String>,
}

fn load_live(id: Uuid, actor: &Actor) -> Live {
    let row = db::as_extension_owner(|| {
        db::select(
            "SELECT s.actor, s.target_user_id, s.target_role, s.impersonation_type, s.read_only,
                    s.ended_at IS NOT NULL, s.expires_at <= now(),
                    extract(epoch FROM s.expires_at)::bigint, extract(epoch FROM now())::bigint,
                    u.id IS NOT NULL, u.email, u.raw_app_meta_data, u.raw_user_meta_data,
                    pg_catalog.to_jsonb(u) ->> 'phone'
             FROM auth.impersonation_sessions s
             LEFT JOIN auth.users u ON u.id = s.target_user_id AND u.deleted_at IS NULL
             WHERE s.id = $1",
            &[id.into()],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<Uuid>(2)?,
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<String>(4)?.unwrap_or_default(),
                    r.get::<bool>(5)?.unwrap_or(true),
                    r.get::<bool>(6)?.unwrap_or(true),
                    r.get::<bool>(7)?.unwrap_or(true),
                    r.get::<i64>(8)?.unwrap_or(0),
                    r.get::<i64>(9)?.unwrap_or(0),
                    r.get::<bool>(10)?.unwrap_or(false),
                    r.get::<String>(11)?,
                    r.get::<JsonArg>(12)?.map(|j| j.into_value("raw_app_meta_data")),
                    r.get::<JsonArg>(13)?.map(|j| j.into_value("raw_user_meta_data")),
                    // (by name from the row: 0.2.0's table, served by this
                    // library until ALTER EXTENSION UPDATE, has no phone)
                    r.get::<String>(14)?,
                ))
            },
        )
    });
    let Some((owner, user_id, role, typ, read_only, ended, expired, exp, iat, user_alive, email, app_meta, user_meta, phone)) =
        row.into_iter().next()
    else {
        raise(FbError::not_found(format!("no impersonation session {id}")))
    };
    if owner != actor.label() {
        raise(FbError::denied("this impersonation session belongs to someone else"));
    }
    if ended {
        raise(FbError::new(Code::WrongState, "this impersonation session has ended")
            .with_hint("start a new one with dashboard.start_impersonation(target, reason)"));
    }
    if expired {
        raise(FbError::new(Code::WrongState, "this impersonation session has expired (impersonation.max_duration)")
            .with_hint("start a new one with dashboard.start_impersonation(target, reason)"));
    }
    if typ == "user" && !user_alive {
        raise(FbError::new(Code::WrongState, "the impersonated app user no longer exists"));
    }
    let sub = user_id.map(|u| u.to_string());
    let mut claims = json!({
        "role": role,
        "aud": if typ == "user" { "authenticated".to_string() } else { role.clone() },
        "iat": iat,
        "exp": exp,
        "session_id": id.to_string(),
        "is_anonymous": typ == "anon",
        "impersonated_by": owner,
    });
    if typ == "user" {
        claims["sub"] = json!(sub);
        claims["email"] = json!(email);
        // as in Supabase's JWTs: "" when the user has no phone
        claims["phone"] = json!(phone.unwrap_or_default());
        claims["app_metadata"] = app_meta.unwrap_or(json!({}));
        claims["user_metadata"] = user_meta.unwrap_or(json!({}));
    }
    Live { role, read_only, claims, sub, email }
}

/// Run `f` with `search_path = pg_catalog, pg_temp`, restored afterwards.
/// apply_impersonation and query_as are SECURITY INVOKER (they must be, to
/// change role), so they can't pin search_path in their definition; yet parts
/// of them run as the extension owner, where a function or operator planted in
/// a schema of the caller's search_path must never be picked up.
pub fn pinned_path<R>(f: impl FnOnce() -> R) -> R {
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    set_guc("search_path", "pg_catalog, pg_temp", pg_sys::GucAction::GUC_ACTION_SAVE);
    let r = f();
    // On error the transaction's (or savepoint's) abort restores it instead.
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    r
}

/// Refuse early, with a hint, when the login role may not become `role`.
fn check_can_become(role: &str) {
    let ok = db::one::<bool>(
        "SELECT pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
        &[role.into()],
    )
    .unwrap_or(false);
    if !ok {
        raise(
            FbError::denied(format!(
                "the login role {} may not become {}",
                db::session_user_name(),
                clean(role)
            ))
            .with_hint("GRANT fluxbase_dashboard TO the login role (it is a member of fluxbase_impersonator)"),
        );
    }
}

fn set_guc(name: &str, value: &str, action: pg_sys::GucAction::Type) {
    let n = CString::new(name).expect("constant name");
    let v = CString::new(value).unwrap_or_else(|_| raise(FbError::invalid("setting values must not contain NUL")));
    unsafe {
        let context = if pg_sys::superuser() { pg_sys::GucContext::PGC_SUSET } else { pg_sys::GucContext::PGC_USERSET };
        pg_sys::set_config_option(
            n.as_ptr(),
            v.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

/// Claims (JSON and the legacy per-claim settings), read-only mode, then role.
fn become_target(live: &Live, claims_text: &str, read_only: bool, action: pg_sys::GucAction::Type) {
    set_guc("request.jwt.claims", claims_text, action);
    set_guc("request.jwt.claim.sub", live.sub.as_deref().unwrap_or(""), action);
    set_guc("request.jwt.claim.role", &live.role, action);
    set_guc("request.jwt.claim.email", live.email.as_deref().unwrap_or(""), action);
    if read_only {
        if action == pg_sys::GucAction::GUC_ACTION_SAVE {
            // PostgreSQL 16 and later refuse to save transaction_read_only for
            // a function's duration ("cannot be set locally in functions"), so
            // on every version the variable behind it is set instead: query_as
            // puts the old value back after the statement, and a (sub)transaction
            // abort restores it by itself. Only ever switched on here; once the
            // transaction has a snapshot Postgres refuses to switch it off.
            unsafe { pg_sys::XactReadOnly = true };
        } else {
            set_guc("transaction_read_only", "on", action);
        }
    }
    // Last: from here on this backend acts as the target role.
    set_guc("role", &live.role, action);
}

/// For the rest of the current transaction: become the impersonated user.
/// SECURITY INVOKER on purpose (see the module comment).
#[pg_extern(schema = "dashboard")]
fn apply_impersonation(session_id: Option<Uuid>) {
    let id = required("session_id", session_id);
    let actor = actor::reader();
    let live = pinned_path(|| {
        let live = load_live(id, &actor);
        check_can_become(&live.role);
        audit::record(
            Event::new("impersonation.apply", "impersonation", id)
                .impersonation(id)
                .details(json!({ "target_role": live.role, "sub": live.sub, "read_only": live.read_only })),
        );
        live
    });
    let claims_text = live.claims.to_string();
    crate::runtime::confine::trusted_role_change(|| {
        become_target(&live, &claims_text, live.read_only, pg_sys::GucAction::GUC_ACTION_LOCAL)
    });
    // Until the transaction ends: restricted (no role or claims change back),
    // the API only as the client's own top-level calls (src/runtime/confine.rs).
    crate::runtime::confine::set_applied(id);
    crate::runtime::confine::make_sticky();
}

#[pg_extern(schema = "dashboard", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn stop_impersonation(session_id: Option<Uuid>) {
    let id = required("session_id", session_id);
    let actor = actor::reader();
    let row = db::update(
        "SELECT actor, ended_at IS NOT NULL FROM auth.impersonation_sessions WHERE id = $1 FOR UPDATE",
        &[id.into()],
        |r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<bool>(2)?.unwrap_or(true))),
    );
    let Some((owner, ended)) = row.into_iter().next() else {
        raise(FbError::not_found(format!("no impersonation session {id}")))
    };
    // Its owner may stop it; so may anyone with write power (ending someone
    // else's impersonation only ever takes power away).
    if owner != actor.label() {
        actor::writer("stopping another admin's impersonation");
    }
    if ended {
        raise(FbError::new(Code::WrongState, "this impersonation session has already ended"));
    }
    db::execute(
        "UPDATE auth.impersonation_sessions SET ended_at = least(now(), expires_at) WHERE id = $1",
        &[id.into()],
    );
    audit::record(Event::new("impersonation.stop", "impersonation", id).impersonation(id).details(json!({ "owner": owner })));
}

/// Postgres' own parser must agree: one statement, of an allowed kind, writes
/// with RETURNING, no SELECT INTO.
pub(crate) fn check_with_parser(sql: &str) {
    let c = CString::new(sql).unwrap_or_else(|_| raise(FbError::invalid("sql must not contain NUL")));
    let refuse = |m: &str| -> ! { raise(FbError::denied(format!("query_as: {m}"))) };
    unsafe {
        let list = pg_sys::raw_parser(c.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        let list = pgrx::PgList::<pg_sys::RawStmt>::from_pg(list);
        if list.len() != 1 {
            raise(FbError::new(Code::SyntaxError, "query_as takes exactly one statement"));
        }
        let raw = list.get_ptr(0).expect("one statement");
        let stmt = (*raw).stmt;
        if stmt.is_null() {
            refuse("empty statement");
        }
        match (*stmt).type_ {
            pg_sys::NodeTag::T_SelectStmt => {
                if !(*(stmt as *mut pg_sys::SelectStmt)).intoClause.is_null() {
                    refuse("SELECT ... INTO is not allowed");
                }
            }
            pg_sys::NodeTag::T_InsertStmt => {
                if !crate::runtime::pgcompat::has_returning(stmt) {
                    refuse("INSERT needs RETURNING");
                }
            }
            pg_sys::NodeTag::T_UpdateStmt => {
                if !crate::runtime::pgcompat::has_returning(stmt) {
                    refuse("UPDATE needs RETURNING");
                }
            }
            pg_sys::NodeTag::T_DeleteStmt => {
                if !crate::runtime::pgcompat::has_returning(stmt) {
                    refuse("DELETE needs RETURNING");
                }
            }
            _ => refuse("only one SELECT, INSERT, UPDATE or DELETE is allowed"),
        }
        // The functions the server's parser sees called, by the names it read
        // (whatever quoting, escapes or string rules the text used): the same
        // list the tokenizer checks, now on the real parse (issue 17, item 3).
        let printed = pg_sys::nodeToString(stmt as *const std::ffi::c_void);
        let tree = std::ffi::CStr::from_ptr(printed).to_string_lossy();
        if let Some(f) = sqlguard::called_functions(&tree).into_iter().find(|f| sqlguard::forbidden_call(f)) {
            refuse(&format!("calling {} is not allowed", clean(&f)));
        }
    }
}

pub(crate) fn params_as_text(params: Option<JsonArg>) -> Vec<Option<String>> {
    let v = params.map(|j| j.into_value("params")).unwrap_or(Value::Array(vec![]));
    let Value::Array(items) = v else {
        raise(FbError::invalid("params must be a JSON array, e.g. '[\"a\", 1]'"))
    };
    if items.len() > 100 {
        raise(FbError::invalid("at most 100 params"));
    }
    items
        .into_iter()
        .map(|p| match p {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
        .collect()
}

fn current_claims_text() -> Option<String> {
    let p = unsafe { pg_sys::GetConfigOption(c"request.jwt.claims".as_ptr(), true, false) };
    if p.is_null() {
        None
    } else {
        Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// The rows of the last SPI result, each as `row_to_json` makes it (a JSON
/// object per row, keys the column names).
unsafe fn result_rows_as_json() -> Vec<Value> {
    // pg_catalog.row_to_json(record): a built-in function's oid never changes.
    const ROW_TO_JSON: u32 = 3155;
    unsafe {
        let tt = pg_sys::SPI_tuptable;
        if tt.is_null() {
            return Vec::new();
        }
        let desc = pg_sys::BlessTupleDesc((*tt).tupdesc);
        let n = (*tt).numvals as usize;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let tuple = *(*tt).vals.add(i);
            let datum = pg_sys::heap_copy_tuple_as_datum(tuple, desc);
            let json = pg_sys::OidFunctionCall1Coll(pg_sys::Oid::from(ROW_TO_JSON), pg_sys::InvalidOid, datum);
            let text = pg_sys::text_to_cstring(json.cast_mut_ptr());
            let s = std::ffi::CStr::from_ptr(text).to_string_lossy();
            out.push(serde_json::from_str(&s).unwrap_or(Value::Null));
        }
        out
    }
}

/// Run one SELECT / INSERT / UPDATE / DELETE as the impersonated user; params
/// are bound as text ($1::int etc. to cast). Rows come back as jsonb.
#[pg_extern(schema = "dashboard")]
fn query_as(
    session_id: Option<Uuid>,
    sql: Option<&str>,
    params: default!(Option<JsonArg>, "'[]'"),
) -> SetOfIterator<'static, JsonB> {
    let id = required("session_id", session_id);
    let sql = require_text("sql", sql, 100_000).or_raise();
    // The tokenizer below (and any reader of the text) follows the standard
    // string rules; with backslash escapes in plain strings it would see
    // different string boundaries than the server (issue 17, item 3).
    if !unsafe { pg_sys::standard_conforming_strings } {
        raise(FbError::denied("query_as refuses to run with standard_conforming_strings off")
            .with_hint("SET standard_conforming_strings = on"));
    }
    let stmt = sqlguard::classify(sql).or_raise();
    let params = params_as_text(params);
    let actor = actor::reader();
    let live = pinned_path(|| load_live(id, &actor));
    if stmt.kind == Kind::Write {
        if live.read_only {
            raise(FbError::denied("this impersonation is read-only (dashboard_viewer): writes are refused"));
        }
        actor::writer("writing as an impersonated user");
    }
    check_with_parser(&stmt.sql);
    pinned_path(|| check_can_become(&live.role));
    let claims_text = live.claims.to_string();
    let target_oid = {
        let c = CString::new(live.role.as_str()).expect("role name");
        unsafe { pg_sys::get_role_oid(c.as_ptr(), false) }
    };
    let args: Vec<pgrx::datum::DatumWithOid> = params.iter().map(|p| p.clone().into()).collect();

    // (read-write SPI assigns a transaction id: impossible on a hot standby)
    crate::runtime::db::refuse_on_standby("run a statement as an impersonated user");
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    let was_read_only = unsafe { pg_sys::XactReadOnly };
    // Reads run in read-only mode too: a volatile function can't write through them.
    crate::runtime::confine::trusted_role_change(|| {
        become_target(&live, &claims_text, live.read_only || stmt.kind == Kind::Read, pg_sys::GucAction::GUC_ACTION_SAVE)
    });
    // The statement runs as it was written (no wrapping CTE, so a
    // data-modifying WITH works), confined; its rows become JSON afterwards.
    let rows: Vec<Value> = crate::runtime::confine::with_query_as(id, || {
        crate::runtime::confine::run_untrusted(|| {
            Spi::connect_mut(|c| {
                c.update(stmt.sql.as_str(), None, &args)?;
                Ok::<_, pgrx::spi::SpiError>(unsafe { result_rows_as_json() })
            })
        })
    })
    .or_raise();
    let role_kept = unsafe { pg_sys::GetUserId() } == target_oid;
    let claims_kept = current_claims_text().as_deref() == Some(claims_text.as_str());
    // Put back every setting changed since `nest`: role, claims, read-only
    // mode, and anything a function in the statement may have set.
    unsafe { pg_sys::AtEOXact_GUC(false, nest) };
    unsafe { pg_sys::XactReadOnly = was_read_only };
    if !role_kept || !claims_kept {
        raise(FbError::denied("query_as: the statement tried to change the role or the claims; refused"));
    }
    if stmt.kind == Kind::Write {
        let shown: Vec<&Value> = rows.iter().take(100).collect();
        pinned_path(|| audit::record(
            Event::new("impersonation.query", "impersonation", id)
                .impersonation(id)
                .details(json!({
                    "sql": stmt.sql, "params": params, "target_role": live.role, "sub": live.sub,
                    "row_count": rows.len(), "rows": shown,
                })),
        ));
    }
    SetOfIterator::new(rows.into_iter().map(JsonB))
}
