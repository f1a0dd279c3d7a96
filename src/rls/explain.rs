//! "Why can't this user see or change this row?" (issue 32, item 1):
//! `dashboard.explain_access(tbl, key, as_user, command, new_row)`.
//!
//! For the principal (an app user by id or email, `anon`, `service_role`:
//! the role and claims *View as…* would use) and the row with that primary key,
//! it measures what PostgreSQL would decide and explains it:
//!
//! * privileges: USAGE on the schema, the table and column privileges the
//!   command by key needs (`fluxbase_core::rls::needed_privileges`);
//! * whether RLS applies: enabled, forced, BYPASSRLS, table owner;
//! * each policy of the table: whether its roles and command cover the
//!   principal, and its USING / WITH CHECK evaluated on the row (and on the new
//!   row for INSERT/UPDATE) — the expression PostgreSQL stored
//!   (`pg_get_expr`), evaluated over the row passed as a bound parameter of the
//!   table's row type, in a subquery aliased as the table.
//!
//! Who runs what (nobody's code gets dashboard power):
//! * the catalog reads run as the caller with search_path pinned;
//! * the row is fetched by key (values bound, operators schema-qualified) as
//!   the table's owner in a security-restricted operation that ignores FORCE
//!   ROW LEVEL SECURITY — what PostgreSQL itself does for foreign-key checks —
//!   so the row is found even when the principal can't see it;
//! * every policy expression runs as the principal, with the principal's
//!   claims, read-only, confined (`confine::run_untrusted`: restricted, no API),
//!   each in its own subtransaction: an expression that errors is reported in
//!   the policy's `error`, not raised; subqueries on other RLS tables see the
//!   principal's rows.
//!
//! The verdict itself is plain Rust: `fluxbase_core::rls::decide`.
//! SECURITY INVOKER (it switches users with SetUserIdAndSecContext, which
//! SECURITY DEFINER would not need, but it must read the caller's session
//! state); EXECUTE for fluxbase_dashboard; any admin, viewers included (it
//! only reads); audited.

use std::ffi::CString;

use fluxbase_core::claims::parse_uuid;
use fluxbase_core::email::normalize_email;
use fluxbase_core::error::require_text;
use fluxbase_core::explorer::{quote_ident, Params};
use fluxbase_core::rls::{self, Command, Eval, KeyColumn, Policy, RlsState};
use fluxbase_core::{Code, FbError};
use pgrx::datum::{DatumWithOid, JsonB, Uuid};
use pgrx::prelude::*;
use pgrx::PgRelation;
use serde_json::{json, Value};

use crate::runtime::actor;
use crate::audit::{self, Event};
use crate::runtime::db;
use crate::runtime::errors::{raise, OrRaise};
use crate::users::impersonation::pinned_path;
use crate::runtime::json::JsonArg;

fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

const TABLE_SQL: &str = "
SELECT pg_catalog.jsonb_build_object(
  'schema', n.nspname, 'name', c.relname, 'kind', c.relkind::pg_catalog.text,
  'nsp_oid', n.oid::pg_catalog.int8, 'owner', c.relowner::pg_catalog.int8, 'reltype', c.reltype::pg_catalog.int8,
  'rls', c.relrowsecurity, 'forced', c.relforcerowsecurity,
  'columns', COALESCE((SELECT pg_catalog.jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::pg_catalog.jsonb),
  'pk', COALESCE((
      SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'name', a.attname,
          'cast_type', CASE WHEN a.atttypid = 1042 THEN 'pg_catalog.bpchar'
                            ELSE pg_catalog.format_type(a.atttypid, NULL) END,
          'op_schema', CASE WHEN bt.typtype = 'b' AND bt.typcategory <> 'A' AND bt.oid >= 16384
                            THEN (SELECT bn.nspname FROM pg_catalog.pg_namespace bn WHERE bn.oid = bt.typnamespace)
                            ELSE 'pg_catalog' END) ORDER BY k.ord)
      FROM pg_catalog.pg_index i
      CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
      JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
      WHERE i.indrelid = c.oid AND i.indisprimary), '[]'::pg_catalog.jsonb))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1";

const POLICIES_SQL: &str = "
SELECT p.polname::pg_catalog.text, p.polcmd::pg_catalog.text, p.polpermissive,
       ARRAY(SELECT CASE WHEN r OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'public'
                         ELSE pg_catalog.pg_get_userbyid(r)::pg_catalog.text END
             FROM pg_catalog.unnest(p.polroles) AS r),
       (0::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (p.polroles)
        OR EXISTS (SELECT FROM pg_catalog.unnest(p.polroles) AS r
                   WHERE r OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND pg_catalog.pg_has_role($2, r, 'USAGE'))),
       pg_catalog.pg_get_expr(p.polqual, p.polrelid),
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_catalog.pg_policy p
WHERE p.polrelid = $1
ORDER BY p.polname";

struct TableInfo {
    oid: pg_sys::Oid,
    schema: String,
    name: String,
    nsp: pg_sys::Oid,
    owner: pg_sys::Oid,
    reltype: pg_sys::Oid,
    rls: bool,
    forced: bool,
    columns: Vec<String>,
    pk: Vec<KeyColumn>,
}

impl TableInfo {
    fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

fn oid_of(v: &Value, k: &str) -> pg_sys::Oid {
    pg_sys::Oid::from(v.get(k).and_then(Value::as_i64).unwrap_or(0) as u32)
}

fn load_table(oid: pg_sys::Oid) -> TableInfo {
    let v = pinned_path(|| db::one::<JsonB>(TABLE_SQL, &[oid.into()]))
        .map(|j| j.0)
        .unwrap_or_else(|| raise(FbError::not_found("no such table")));
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = s("kind");
    if kind != "r" && kind != "p" {
        raise(FbError::invalid(format!("{}.{} is not a table: only tables have row-level security", clean(&s("schema")), clean(&s("name")))));
    }
    let pk = v
        .get("pk")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| KeyColumn {
                    name: c["name"].as_str().unwrap_or_default().into(),
                    cast_type: c["cast_type"].as_str().unwrap_or_default().into(),
                    op_schema: c["op_schema"].as_str().unwrap_or("pg_catalog").into(),
                })
                .collect()
        })
        .unwrap_or_default();
    TableInfo {
        oid,
        schema: s("schema"),
        name: s("name"),
        nsp: oid_of(&v, "nsp_oid"),
        owner: oid_of(&v, "owner"),
        reltype: oid_of(&v, "reltype"),
        rls: v["rls"].as_bool().unwrap_or(false),
        forced: v["forced"].as_bool().unwrap_or(false),
        columns: v["columns"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        pk,
    }
}

/// The principal: its database role and the claims *View as…* would set.
pub(crate) struct Principal {
    pub role: String,
    pub claims: Value,
    pub sub: Option<String>,
    pub email: Option<String>,
}

/// Resolve `as_user` as start_impersonation does (id, email, anon,
/// service_role), with the claims load_live builds (no session id).
pub(crate) fn principal(as_user: &str) -> Principal {
    let iat = db::one::<i64>("SELECT extract(epoch FROM pg_catalog.now())::pg_catalog.int8", &[]).unwrap_or(0);
    let base = |role: &str, anon: bool| {
        json!({"role": role, "aud": role, "iat": iat, "exp": iat + 3600, "is_anonymous": anon})
    };
    match as_user {
        "anon" => return Principal { role: "anon".into(), claims: base("anon", true), sub: None, email: None },
        "service_role" => {
            return Principal { role: "service_role".into(), claims: base("service_role", false), sub: None, email: None }
        }
        _ => {}
    }
    const USER_SQL: &str = "SELECT u.id, u.role, u.email, u.raw_app_meta_data, u.raw_user_meta_data,
                                   pg_catalog.to_jsonb(u) OPERATOR(pg_catalog.->>) 'phone'
                            FROM auth.users u WHERE u.deleted_at IS NULL AND ";
    let read = |cond: &str, arg: DatumWithOid<'static>| {
        db::as_extension_owner(|| {
            db::select(&format!("{USER_SQL}{cond}"), &[arg], |r| {
                Ok((
                    r.get::<Uuid>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                    r.get::<JsonArg>(4)?.map(|j| j.into_value("raw_app_meta_data")),
                    r.get::<JsonArg>(5)?.map(|j| j.into_value("raw_user_meta_data")),
                    r.get::<String>(6)?,
                ))
            })
        })
    };
    let rows = if let Some(b) = parse_uuid(as_user) {
        read("u.id OPERATOR(pg_catalog.=) $1", Uuid::from_bytes(b).into())
    } else {
        let email = normalize_email(Some(as_user)).unwrap_or_else(|_| {
            raise(FbError::invalid(format!(
                "as_user '{}' is neither an app user's id or email, nor anon or service_role",
                clean(as_user)
            )))
        });
        read("u.email OPERATOR(pg_catalog.=) $1", email.into())
    };
    let Some((Some(id), Some(role), email, app_meta, user_meta, phone)) = rows.into_iter().next() else {
        raise(FbError::not_found(format!("no app user matches '{}'", clean(as_user))))
    };
    let sub = id.to_string();
    let mut claims = base(&role, false);
    claims["aud"] = json!("authenticated");
    claims["sub"] = json!(sub);
    claims["email"] = json!(email);
    claims["phone"] = json!(phone.unwrap_or_default());
    claims["app_metadata"] = app_meta.unwrap_or(json!({}));
    claims["user_metadata"] = user_meta.unwrap_or(json!({}));
    Principal { role, claims, sub: Some(sub), email }
}

fn set_guc(name: &str, value: &str) {
    let n = CString::new(name).expect("constant name");
    let v = CString::new(value).unwrap_or_else(|_| raise(FbError::invalid("setting values must not contain NUL")));
    unsafe {
        let context = if pg_sys::superuser() { pg_sys::GucContext::PGC_SUSET } else { pg_sys::GucContext::PGC_USERSET };
        pg_sys::set_config_option(
            n.as_ptr(),
            v.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

/// Run `f` as `user` in a security-restricted operation (plus `extra` context
/// bits); the previous user and context come back afterwards (an error's
/// abort restores them by itself).
fn run_as_user<R>(user: pg_sys::Oid, extra: u32, f: impl FnOnce() -> R) -> R {
    let flags = (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION | extra) as i32;
    db::switch_user(user, |ctx| ctx | flags, f)
}

/// Run `f` in a subtransaction; an ERROR in it is rolled back and returned as
/// its message.
fn in_subtransaction<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    unsafe {
        let mcxt = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(mcxt);
        let f = std::panic::AssertUnwindSafe(f);
        let restore = std::panic::AssertUnwindSafe(move || {
            pg_sys::MemoryContextSwitchTo(mcxt);
            pg_sys::CurrentResourceOwner = owner;
        });
        pgrx::PgTryBuilder::new(move || {
            let r = f();
            pg_sys::ReleaseCurrentSubTransaction();
            restore();
            Ok(r)
        })
        .catch_others(move |e| {
            pg_sys::MemoryContextSwitchTo(mcxt);
            let msg = match &e {
                pgrx::pg_sys::panic::CaughtError::PostgresError(r)
                | pgrx::pg_sys::panic::CaughtError::ErrorReport(r) => r.message().to_string(),
                pgrx::pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
            };
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(mcxt);
            pg_sys::CurrentResourceOwner = owner;
            Err(msg)
        })
        .execute()
    }
}

/// The row's text form as a datum of the table's row type.
fn row_datum(reltype: pg_sys::Oid, text: &str) -> pg_sys::Datum {
    let c = CString::new(text).unwrap_or_else(|_| raise(FbError::invalid("row text holds NUL")));
    unsafe {
        let mut input = pg_sys::Oid::INVALID;
        let mut ioparam = pg_sys::Oid::INVALID;
        pg_sys::getTypeInputInfo(reltype, &mut input, &mut ioparam);
        pg_sys::OidInputFunctionCall(input, c.as_ptr() as *mut _, ioparam, -1)
    }
}

/// One policy expression on one row, as the current (principal) user.
fn evaluate(alias: &str, expr: &str, reltype: pg_sys::Oid, row: pg_sys::Datum) -> Eval {
    let sql = format!("SELECT ({expr})::pg_catalog.bool FROM pg_catalog.unnest(ARRAY[$1]) AS {alias}");
    let r = in_subtransaction(|| {
        let arg = unsafe { DatumWithOid::new(row, reltype) };
        Spi::connect(|c| {
            let t = c.select(&sql, Some(1), &[arg])?;
            if t.is_empty() {
                Ok(None)
            } else {
                t.first().get_one::<bool>()
            }
        })
        .or_raise()
    });
    Some(r)
}

struct RawPolicy {
    name: String,
    cmd: char,
    permissive: bool,
    roles: Vec<String>,
    for_role: bool,
    using: Option<String>,
    check: Option<String>,
}

#[pg_extern(schema = "dashboard")]
fn explain_access(
    tbl: Option<PgRelation>,
    key: Option<JsonArg>,
    as_user: Option<&str>,
    command: default!(Option<&str>, "'select'"),
    new_row: default!(Option<JsonArg>, "NULL"),
) -> JsonB {
    let _actor = actor::reader();
    let rel = tbl.unwrap_or_else(|| raise(FbError::new(Code::NullValue, "tbl is required")));
    let as_user = require_text("as_user", as_user, 320).or_raise().trim().to_string();
    let cmd = Command::parse(command.unwrap_or("select")).or_raise();
    let key = key.map(|k| k.into_value("key"));
    let new_row = new_row.map(|n| n.into_value("new_row"));
    let oid = rel.oid();
    drop(rel);
    JsonB(explain(oid, key, &as_user, cmd, new_row, true))
}

/// explain_access's verdict for the table `oid` (the caller checked the
/// actor); `record`: audit it (explain_zero_rows audits its own call once).
pub(crate) fn explain(
    oid: pg_sys::Oid,
    key: Option<Value>,
    as_user: &str,
    cmd: Command,
    new_row: Option<Value>,
    record: bool,
) -> Value {
    let as_user = as_user.to_string();
    let t = load_table(oid);

    // What the command names: the key (not for INSERT) and the new values.
    let mut params = Params::default();
    let cond = if cmd.reads_row() {
        let key = key.as_ref().unwrap_or_else(|| raise(FbError::new(Code::NullValue, "key is required")));
        Some(rls::key_condition("_fb_row", &t.pk, key, &mut params).or_raise())
    } else {
        None
    };
    let new_cols: Vec<String> = match &new_row {
        None if cmd == Command::Insert => raise(FbError::new(Code::NullValue, "new_row is required for insert")),
        None => Vec::new(),
        Some(Value::Object(m)) if cmd.writes_row() => {
            for k in m.keys() {
                if !t.columns.contains(k) {
                    raise(FbError::new(Code::UndefinedColumn, format!("column \"{}\" does not exist", clean(k))));
                }
            }
            m.keys().cloned().collect()
        }
        Some(_) if cmd.writes_row() => raise(FbError::invalid("new_row must be a JSON object of column: value")),
        Some(_) => raise(FbError::invalid("new_row is only for insert and update")),
    };

    // The principal, and whether this login may act as it at all.
    let p = pinned_path(|| principal(&as_user));
    let (role_oid, bypass, owner, member) = pinned_path(|| {
        db::select(
            "SELECT r.oid, r.rolbypassrls OR r.rolsuper, pg_catalog.pg_has_role(r.oid, $2, 'USAGE'),
                    pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')
             FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1",
            &[p.role.as_str().into(), t.owner.into()],
            |r| {
                Ok((
                    r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::Oid::INVALID),
                    r.get::<bool>(2)?.unwrap_or(false),
                    r.get::<bool>(3)?.unwrap_or(false),
                    r.get::<bool>(4)?.unwrap_or(false),
                ))
            },
        )
        .into_iter()
        .next()
        .unwrap_or_else(|| raise(FbError::not_found(format!("role {} does not exist", clean(&p.role)))))
    });
    if !member {
        raise(
            FbError::denied(format!("the login role {} may not become {}", db::session_user_name(), clean(&p.role)))
                .with_hint("GRANT fluxbase_dashboard TO the login role (it is a member of fluxbase_impersonator)"),
        );
    }
    let state = RlsState { enabled: t.rls, forced: t.forced, bypassrls: bypass, owner };

    // Privileges: what the command needs, and the whole picture.
    let key_cols: Vec<String> = t.pk.iter().map(|c| c.name.clone()).collect();
    let (privilege, missing) = pinned_path(|| privileges(&t, t.oid, role_oid, cmd, &key_cols, &new_cols));

    // The policies, their expressions as PostgreSQL prints them.
    let raw: Vec<RawPolicy> = pinned_path(|| {
        db::select(POLICIES_SQL, &[t.oid.into(), role_oid.into()], |r| {
            Ok(RawPolicy {
                name: r.get::<String>(1)?.unwrap_or_default(),
                cmd: r.get::<String>(2)?.unwrap_or_default().chars().next().unwrap_or('*'),
                permissive: r.get::<bool>(3)?.unwrap_or(true),
                roles: r.get::<Vec<String>>(4)?.unwrap_or_default(),
                for_role: r.get::<bool>(5)?.unwrap_or(false),
                using: r.get::<String>(6)?,
                check: r.get::<String>(7)?,
            })
        })
    });

    // The row (and the new row), fetched as the table's owner.
    let rows = fetch_rows(&t, cmd, cond.as_deref(), &params, new_row.as_ref());
    let row_exists = rows.0.is_some();

    // Each expression, as the principal.
    let alias = quote_ident(&t.name);
    let claims_text = p.claims.to_string();
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    let was_read_only = unsafe { pg_sys::XactReadOnly };
    set_guc("request.jwt.claims", &claims_text);
    set_guc("request.jwt.claim.sub", p.sub.as_deref().unwrap_or(""));
    set_guc("request.jwt.claim.role", &p.role);
    set_guc("request.jwt.claim.email", p.email.as_deref().unwrap_or(""));
    unsafe { pg_sys::XactReadOnly = true };
    let policies: Vec<Policy> = crate::runtime::confine::run_untrusted(|| {
        run_as_user(role_oid, 0, || {
            raw.iter()
                .map(|rp| {
                    let covers_select = rp.cmd == '*' || rp.cmd == 'r';
                    let covers_cmd = rp.cmd == '*' || rp.cmd == cmd.polcmd();
                    let check_expr = rp.check.as_deref().or(rp.using.as_deref());
                    let using = match (&rp.using, rows.0) {
                        (Some(e), Some(d)) => evaluate(&alias, e, t.reltype, d),
                        _ => None,
                    };
                    let with_check = match (check_expr, rows.1) {
                        (Some(e), Some(d)) if covers_cmd && cmd.writes_row() => evaluate(&alias, e, t.reltype, d),
                        _ => None,
                    };
                    let using_new = match (&rp.using, rows.1) {
                        (Some(e), Some(d)) if covers_select && cmd == Command::Update => evaluate(&alias, e, t.reltype, d),
                        _ => None,
                    };
                    Policy {
                        name: rp.name.clone(),
                        cmd: rp.cmd,
                        permissive: rp.permissive,
                        roles: rp.roles.clone(),
                        for_role: rp.for_role,
                        has_using: rp.using.is_some(),
                        has_check: rp.check.is_some(),
                        using,
                        with_check,
                        using_new,
                    }
                })
                .collect()
        })
    });
    unsafe { pg_sys::AtEOXact_GUC(false, nest) };
    unsafe { pg_sys::XactReadOnly = was_read_only };

    let verdict = rls::decide(cmd, &state, &missing, row_exists, &policies);
    let policies_json: Vec<Value> = raw
        .iter()
        .zip(&policies)
        .map(|(rp, p)| {
            json!({
                "name": p.name,
                "command": rls::polcmd_name(p.cmd),
                "permissive": p.permissive,
                "roles": p.roles,
                "applies": p.applies(cmd),
                "using": rls::eval_json(&p.using),
                "with_check": if cmd == Command::Update && p.using_new.is_some() && p.with_check.is_none() {
                    rls::eval_json(&p.using_new)
                } else {
                    rls::eval_json(&p.with_check)
                },
                "using_expr": rp.using,
                "with_check_expr": rp.check,
                "error": p.first_error(),
            })
        })
        .collect();
    let out = json!({
        "table": format!("{}.{}", t.schema, t.name),
        "command": cmd.as_str(),
        "principal": {"as_user": as_user, "role": p.role, "claims": p.claims},
        "allowed": verdict.allowed,
        "outcome": verdict.outcome,
        "decided_by": verdict.decided_by,
        "row_exists": if cmd.reads_row() { json!(row_exists) } else { Value::Null },
        "privilege": privilege,
        "rls": state.label(),
        "bypass": state.bypassrls || (state.owner && !state.forced),
        "policies": policies_json,
    });
    if record {
        pinned_path(|| {
            audit::record(Event::new("rls.explain_access", "table", format!("{}.{}", t.schema, t.name)).details(json!({
                "as_user": as_user, "role": p.role, "command": cmd.as_str(), "key": key,
                "allowed": verdict.allowed, "outcome": verdict.outcome,
            })))
        });
    }
    out
}


/// `{schema_usage, table: {select, insert, update, delete}, columns: {col: {select, insert, update}}, needed: [...]}`
/// and the list of what the command needs but the principal lacks.
fn privileges(
    t: &TableInfo,
    rel: pg_sys::Oid,
    role: pg_sys::Oid,
    cmd: Command,
    key_cols: &[String],
    new_cols: &[String],
) -> (Value, Vec<String>) {
    let overview = db::one::<JsonB>(
        "SELECT pg_catalog.jsonb_build_object(
           'schema_usage', pg_catalog.has_schema_privilege($1, $3, 'USAGE'),
           'table', pg_catalog.jsonb_build_object(
              'select', pg_catalog.has_table_privilege($1, $2, 'SELECT'),
              'insert', pg_catalog.has_table_privilege($1, $2, 'INSERT'),
              'update', pg_catalog.has_table_privilege($1, $2, 'UPDATE'),
              'delete', pg_catalog.has_table_privilege($1, $2, 'DELETE')),
           'columns', COALESCE((SELECT pg_catalog.jsonb_object_agg(a.attname, pg_catalog.jsonb_build_object(
              'select', pg_catalog.has_column_privilege($1, $2, a.attnum, 'SELECT'),
              'insert', pg_catalog.has_column_privilege($1, $2, a.attnum, 'INSERT'),
              'update', pg_catalog.has_column_privilege($1, $2, a.attnum, 'UPDATE')))
              FROM pg_catalog.pg_attribute a WHERE a.attrelid = $2 AND a.attnum > 0 AND NOT a.attisdropped),
              '{}'::pg_catalog.jsonb))",
        &[role.into(), rel.into(), t.nsp.into()],
    )
    .map(|j| j.0)
    .unwrap_or(Value::Null);
    let mut missing = Vec::new();
    if overview["schema_usage"] != json!(true) {
        missing.push(format!("no privilege: USAGE on schema {}", t.schema));
    }
    for (privilege, col) in rls::needed_privileges(cmd, key_cols, new_cols) {
        let ok = match &col {
            Some(c) => overview["columns"][c.as_str()][privilege.to_ascii_lowercase()] == json!(true),
            None => overview["table"][privilege.to_ascii_lowercase()] == json!(true),
        };
        if !ok {
            missing.push(rls::missing_privilege(privilege, col.as_deref()));
        }
    }
    let mut v = overview;
    v["missing"] = json!(missing);
    (v, missing)
}

/// (the existing row, the new row) as datums of the row type, fetched and
/// built as the table's owner (restricted, FORCE ROW LEVEL SECURITY ignored).
fn fetch_rows(
    t: &TableInfo,
    cmd: Command,
    cond: Option<&str>,
    params: &Params,
    new_row: Option<&Value>,
) -> (Option<pg_sys::Datum>, Option<pg_sys::Datum>) {
    let mut args: Vec<DatumWithOid<'static>> = params.0.iter().map(|v| v.clone().into()).collect();
    let n = args.len() + 1;
    let new_text = new_row.map(|v| v.to_string());
    args.push(new_text.clone().into());
    let sql = match cond {
        Some(cond) => format!(
            "SELECT _fb_row::pg_catalog.text,
                    CASE WHEN ${n}::pg_catalog.jsonb IS NOT NULL
                         THEN pg_catalog.jsonb_populate_record(_fb_row, ${n}::pg_catalog.jsonb)::pg_catalog.text END
             FROM {} AS _fb_row WHERE {cond} LIMIT 1",
            t.qualified()
        ),
        None => format!(
            "SELECT NULL::pg_catalog.text,
                    pg_catalog.jsonb_populate_record(NULL::{}, ${n}::pg_catalog.jsonb)::pg_catalog.text",
            t.qualified()
        ),
    };
    let reltype = t.reltype;
    let update_without_changes = cmd == Command::Update && new_row.is_none();
    crate::runtime::confine::run_untrusted(|| {
        run_as_user(t.owner, pg_sys::SECURITY_NOFORCE_RLS, || {
            pinned_path(|| {
                let (old, new) = db::select(&sql, &args, |r| Ok((r.get::<String>(1)?, r.get::<String>(2)?)))
                    .into_iter()
                    .next()
                    .unwrap_or((None, None));
                let new = if update_without_changes { old.clone() } else { new };
                (old.map(|s| row_datum(reltype, &s)), new.map(|s| row_datum(reltype, &s)))
            })
        })
    })
}
