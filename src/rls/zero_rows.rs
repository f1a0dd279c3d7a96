//! "My UPDATE / DELETE as this user changed 0 rows: why?" (issue 32, item 2):
//! `dashboard.explain_zero_rows(as_user, sql, params, max_keys)`.
//!
//! It answers which rows the admin's own view would have matched (a bounded
//! count and the first keys) and, for each of those keys, explain_access's
//! verdict for the principal: which of the user's policies (or privileges)
//! excluded the row.
//!
//! How the statement is read (nobody's text is pasted into SQL, nobody's code
//! runs with more rights than it has):
//! * the SQL console's own checks first (`sqlguard::classify`, then
//!   `check_with_parser`): one statement, of the kinds query_as runs;
//! * PostgreSQL's parser: only a single-table UPDATE or DELETE is explained
//!   (no WITH, no UPDATE ... FROM, no DELETE ... USING); its WHERE is analysed
//!   as the WHERE of a `SELECT FROM <the same table>`, as the principal's role
//!   (names resolved as when the statement ran as it: its schema USAGE, the
//!   caller's search path; parameters typed text, as query_as binds them).
//!   SET and RETURNING are never evaluated;
//! * the analysed WHERE may hold only plain expression nodes (no subquery, no
//!   CURRENT OF, no domain or subscript code outside pg_catalog) and call only
//!   built-in pg_catalog functions and operators that are not VOLATILE and
//!   not `fluxbase_core::zero_rows::refused_builtin` (table_to_xml & co.):
//!   anything else gets `{"explained": false, "why": ...}`, not an error, and
//!   nothing of it runs;
//! * PostgreSQL deparses that WHERE (`deparse_expression`, search path pinned
//!   to pg_catalog, pg_temp, the same when it runs), and the two searches
//!   (`fluxbase_core::zero_rows`: the first keys, a count up to 1000) run in
//!   the admin's own view exactly as browse does (`owner_view`: the table's
//!   owner, or fluxbase_explorer for a superuser's table, in the restricted
//!   security context; confined; the caller's own rights outside the admin's
//!   view), read-only, in a subtransaction under a timeout of their own
//!   (SEARCH_TIMEOUT_MS): an error or the timeout is the answer's `why`;
//! * each key then gets `explain::explain` (the principal's policies, as the
//!   principal, confined, read-only).
//!
//! SECURITY INVOKER like explain_access; any admin, viewers included (it only
//! reads); audited once per call (`rls.explain_zero_rows`).

use std::ffi::{c_int, c_void, CStr, CString};

use fluxbase_core::error::require_text;
use fluxbase_core::rls::Command;
use fluxbase_core::sqlguard;
use fluxbase_core::zero_rows::{self as zr, Target};
use fluxbase_core::FbError;
use pgrx::datum::{DatumWithOid, JsonB};
use pgrx::pg_sys::NodeTag;
use pgrx::prelude::*;
use pgrx::{PgList, PgRelation};
use serde_json::{json, Value};

use crate::audit::{self, Event};
use crate::runtime::actor;
use crate::runtime::db;
use crate::runtime::errors::{raise, OrRaise};
use crate::runtime::json::JsonArg;
use crate::users::impersonation::pinned_path;

fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// What the parser made of the statement.
enum Read {
    /// Not explained: the statement's command (when known) and why.
    No(Option<Command>, String),
    Yes(Analysed),
}

struct Analysed {
    cmd: Command,
    relid: pg_sys::Oid,
    only: bool,
    /// The analysed WHERE (None: every row).
    qual: Option<*mut pg_sys::Node>,
}

#[pg_extern(schema = "dashboard")]
fn explain_zero_rows(
    as_user: Option<&str>,
    sql: Option<&str>,
    params: default!(Option<JsonArg>, "'[]'"),
    max_keys: default!(Option<i32>, 3),
) -> JsonB {
    let _actor = actor::reader();
    let as_user = require_text("as_user", as_user, 320).or_raise().trim().to_string();
    let sql = require_text("sql", sql, 100_000).or_raise();
    let max_keys = zr::check_max_keys(max_keys).or_raise();
    // The console's own checks, as query_as makes them (its tokenizer reads
    // strings by the standard rules: see query_as).
    if !unsafe { pg_sys::standard_conforming_strings } {
        raise(FbError::denied("explain_zero_rows refuses to run with standard_conforming_strings off")
            .with_hint("SET standard_conforming_strings = on"));
    }
    let stmt = sqlguard::classify(sql).or_raise();
    let params = crate::users::impersonation::params_as_text(params);
    crate::users::impersonation::check_with_parser(&stmt.sql);
    // The principal exists and this login may act as it (explain refuses
    // otherwise too, but only once a row was found).
    let role = pinned_path(|| principal_role(&as_user));
    // The names resolve as they did when the statement ran as the principal
    // (its schema USAGE, the caller's search path); analysis runs no one's
    // code, and the switch is restricted all the same.
    let read = db::switch_user(
        role,
        |ctx| ctx | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32,
        || unsafe { read_statement(&stmt.sql, params.len()) },
    );

    let answer = match read {
        Read::No(cmd, why) => json!({
            "explained": false, "command": cmd.map(Command::as_str), "as_user": as_user, "why": why,
        }),
        Read::Yes(a) => explained(&a, &as_user, &params, max_keys),
    };
    pinned_path(|| {
        audit::record(
            Event::new("rls.explain_zero_rows", "table", answer["table"].as_str().unwrap_or("")).details(json!({
                "as_user": as_user, "sql": stmt.sql, "params": params, "command": answer["command"],
                "explained": answer["explained"], "why": answer["why"], "matched": answer["matched"],
                "keys": answer["keys"], "allowed": answer["allowed"],
            })),
        )
    });
    JsonB(answer)
}

/// The searches in the admin's own view, then the verdict of each key.
fn explained(a: &Analysed, as_user: &str, params: &[Option<String>], max_keys: usize) -> Value {
    let rel = unsafe { PgRelation::with_lock(a.relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) };
    let (schema, name) = (rel.namespace().to_string(), rel.name().to_string());
    let table = format!("{schema}.{name}");
    let not = |why: String| json!({"explained": false, "command": a.cmd.as_str(), "table": table, "as_user": as_user, "why": why});
    let pk = primary_key(a.relid);
    let target = Target { schema: &schema, name: &name, only: a.only, alias: &name };
    let runs_as = crate::explorer::owner_view::run_as(&rel);
    let searched_as = role_name(runs_as.unwrap_or_else(|| unsafe { pg_sys::GetUserId() }));
    let outcome = pinned_path(|| {
        // PostgreSQL prints the checked WHERE; the same search path reads it back.
        let qual = a.qual.map(|q| unsafe { deparse(q, &name, a.relid) });
        let keys_sql = zr::keys_sql(&target, &pk, qual.as_deref(), max_keys);
        let count_sql = zr::count_sql(&target, qual.as_deref());
        let args: Vec<DatumWithOid<'static>> = params.iter().map(|p| p.clone().into()).collect();
        let found = search(|| {
            crate::explorer::owner_view::run(runs_as, || {
                let keys: Vec<Value> = match &keys_sql {
                    Ok(q) => db::select(q, &args, |r| Ok(r.get::<JsonB>(1)?.map(|j| j.0).unwrap_or(Value::Null))),
                    Err(_) => Vec::new(),
                };
                let count = db::one::<i64>(&count_sql, &args).unwrap_or(0);
                (keys, count)
            })
        });
        (qual, keys_sql.err(), found)
    });
    let (qual, no_pk, found) = outcome;
    let (keys, count) = match found {
        Ok(f) => f,
        Err(why) => return not(why),
    };
    let verdicts: Vec<Value> = keys
        .iter()
        .map(|k| json!({"key": k, "verdict": super::explain::explain(a.relid, Some(k.clone()), as_user, a.cmd, None, false)}))
        .collect();
    let allowed = verdicts.iter().filter(|v| v["verdict"]["allowed"] == json!(true)).count();
    let mut out = json!({
        "explained": true,
        "command": a.cmd.as_str(),
        "table": table,
        "as_user": as_user,
        "searched_as": searched_as,
        "where": qual,
        "matched": count.min(zr::COUNT_CAP + 1),
        "matched_label": zr::count_label(count),
        "keys": keys,
        "verdicts": verdicts,
        "allowed": allowed,
        // A key the principal may change: the statement changes rows as it.
        "needed": allowed == 0,
    });
    if let Some(e) = no_pk {
        out["why"] = json!(e.message);
    }
    drop(rel);
    out
}

/// The principal's role, refused (42501) when the login may not become it.
fn principal_role(as_user: &str) -> pg_sys::Oid {
    let p = super::explain::principal(as_user);
    let (oid, member) = db::select(
        "SELECT r.oid, pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')
         FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1",
        &[p.role.as_str().into()],
        |r| Ok((r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::Oid::INVALID), r.get::<bool>(2)?.unwrap_or(false))),
    )
    .into_iter()
    .next()
    .unwrap_or_else(|| raise(FbError::not_found(format!("role {} does not exist", clean(&p.role)))));
    if !member {
        raise(
            FbError::denied(format!("the login role {} may not become {}", db::session_user_name(), clean(&p.role)))
                .with_hint("GRANT fluxbase_dashboard TO the login role (it is a member of fluxbase_impersonator)"),
        );
    }
    oid
}

fn role_name(oid: pg_sys::Oid) -> String {
    let p = unsafe { pg_sys::GetUserNameFromId(oid, true) };
    if p.is_null() {
        format!("oid:{}", oid.to_u32())
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn primary_key(relid: pg_sys::Oid) -> Vec<String> {
    pinned_path(|| {
        db::one::<Vec<String>>(
            "SELECT COALESCE(pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.ord), '{}')
             FROM pg_catalog.pg_index i
             CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = $1 AND i.indisprimary",
            &[relid.into()],
        )
        .unwrap_or_default()
    })
}

// ------------------------------------------------------------ the parse

/// Parse `sql` (already one UPDATE/DELETE/SELECT/INSERT: the console's checks
/// passed) and analyse an UPDATE's or DELETE's WHERE on its table.
unsafe fn read_statement(sql: &str, nparams: usize) -> Read {
    let c = CString::new(sql).unwrap_or_else(|_| raise(FbError::invalid("sql must not contain NUL")));
    unsafe {
        let list = PgList::<pg_sys::RawStmt>::from_pg(pg_sys::raw_parser(c.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT));
        let Some(raw) = list.get_ptr(0) else { return Read::No(None, "the statement is empty".into()) };
        let stmt = (*raw).stmt;
        let (cmd, relation, qual, with, other) = match (*stmt).type_ {
            NodeTag::T_UpdateStmt => {
                let u = stmt as *mut pg_sys::UpdateStmt;
                (Command::Update, (*u).relation, (*u).whereClause, (*u).withClause, (*u).fromClause)
            }
            NodeTag::T_DeleteStmt => {
                let d = stmt as *mut pg_sys::DeleteStmt;
                (Command::Delete, (*d).relation, (*d).whereClause, (*d).withClause, (*d).usingClause)
            }
            t => {
                let cmd = if t == NodeTag::T_InsertStmt { Command::Insert } else { Command::Select };
                return Read::No(Some(cmd), format!("only an UPDATE or DELETE is explained, not {}", cmd.as_str().to_uppercase()));
            }
        };
        let word = if cmd == Command::Update { "UPDATE" } else { "DELETE" };
        if !with.is_null() {
            return Read::No(Some(cmd), format!("{word} with a WITH clause is not explained: write it on its table alone"));
        }
        if !other.is_null() {
            let clause = if cmd == Command::Update { "FROM" } else { "USING" };
            return Read::No(Some(cmd), format!("{word} ... {clause} other tables is not explained: only a WHERE on the table itself"));
        }
        // (PostgreSQL analyses CURRENT OF only with a target table: a
        // SELECT's analysis must never see it. The grammar puts it nowhere
        // but as the whole WHERE.)
        if !qual.is_null() && (*qual).type_ == NodeTag::T_CurrentOfExpr {
            return Read::No(Some(cmd), "WHERE CURRENT OF names a cursor's row, not rows a WHERE matches".into());
        }
        // The same table and WHERE, as a SELECT: what the statement would
        // have matched, analysed by PostgreSQL (AccessShareLock only).
        let sel = pg_sys::palloc0(std::mem::size_of::<pg_sys::SelectStmt>()) as *mut pg_sys::SelectStmt;
        (*sel).type_ = NodeTag::T_SelectStmt;
        (*sel).fromClause = pg_sys::lappend(std::ptr::null_mut(), relation as *mut c_void);
        (*sel).whereClause = qual;
        let rs = pg_sys::palloc0(std::mem::size_of::<pg_sys::RawStmt>()) as *mut pg_sys::RawStmt;
        (*rs).type_ = NodeTag::T_RawStmt;
        (*rs).stmt = sel as *mut pg_sys::Node;
        (*rs).stmt_location = (*raw).stmt_location;
        (*rs).stmt_len = (*raw).stmt_len;
        let types = vec![pg_sys::TEXTOID; nparams];
        let q = pg_sys::parse_analyze_fixedparams(rs, c.as_ptr(), types.as_ptr(), nparams as c_int, std::ptr::null_mut());
        let rtable = PgList::<pg_sys::RangeTblEntry>::from_pg((*q).rtable);
        let rte = match rtable.get_ptr(0) {
            Some(r) if rtable.len() == 1 && (*r).rtekind == pg_sys::RTEKind::RTE_RELATION => r,
            _ => return Read::No(Some(cmd), format!("{word} of anything but one table is not explained")),
        };
        let kind = (*rte).relkind as u8;
        if kind != pg_sys::RELKIND_RELATION && kind != pg_sys::RELKIND_PARTITIONED_TABLE {
            return Read::No(Some(cmd), format!("{word} of a view or foreign table is not explained: only tables have row-level security"));
        }
        if (*q).hasSubLinks {
            return Read::No(Some(cmd), "a WHERE with a subquery is not explained: it could read other tables with the owner's rights".into());
        }
        let quals = if (*q).jointree.is_null() { std::ptr::null_mut() } else { (*(*q).jointree).quals };
        if !quals.is_null() {
            let mut check = Check { refused: None };
            if walk(quals, &mut check as *mut Check as *mut c_void) {
                let why = check.refused.unwrap_or_else(|| "the WHERE holds something that is not explained".into());
                return Read::No(Some(cmd), format!("the WHERE is not explained: {why}"));
            }
        }
        Read::Yes(Analysed { cmd, relid: (*rte).relid, only: !(*rte).inh, qual: (!quals.is_null()).then_some(quals) })
    }
}

struct Check {
    refused: Option<String>,
}

fn func_label(funcid: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::get_func_name(funcid);
        let nsp = pg_sys::get_namespace_name(pg_sys::get_func_namespace(funcid));
        let s = |p: *mut std::ffi::c_char| if p.is_null() { "?".to_string() } else { CStr::from_ptr(p).to_string_lossy().into_owned() };
        clean(&format!("{}.{}", s(nsp), s(name)))
    }
}

/// check_functions_in_node's callback: true (stop) for a function the WHERE
/// may not call.
#[pg_guard]
unsafe extern "C-unwind" fn refuse_function(funcid: pg_sys::Oid, ctx: *mut c_void) -> bool {
    let check = unsafe { &mut *(ctx as *mut Check) };
    let why = unsafe {
        if funcid.to_u32() >= pg_sys::FirstNormalObjectId
            || pg_sys::get_func_namespace(funcid) != pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE)
        {
            Some(format!("it calls {}, which is not a built-in function of pg_catalog", func_label(funcid)))
        } else if pg_sys::func_volatile(funcid) as u8 == pg_sys::PROVOLATILE_VOLATILE {
            Some(format!("it calls {}, which is volatile", func_label(funcid)))
        } else {
            let name = func_label(funcid);
            zr::refused_builtin(name.rsplit('.').next().unwrap_or(&name))
                .then(|| format!("it calls {name}, which reads tables by name"))
        }
    };
    match why {
        Some(w) => {
            check.refused = Some(w);
            true
        }
        None => false,
    }
}

/// expression_tree_walker's callback: true (stop) at the first node the
/// WHERE may not hold.
#[pg_guard]
unsafe extern "C-unwind" fn walker(node: *mut pg_sys::Node, ctx: *mut c_void) -> bool {
    if node.is_null() {
        return false;
    }
    let check = unsafe { &mut *(ctx as *mut Check) };
    let refuse = |check: &mut Check, why: String| {
        check.refused = Some(why);
        true
    };
    unsafe {
        match (*node).type_ {
            // Plain expression nodes; the ones that call functions are checked
            // function by function.
            NodeTag::T_Const | NodeTag::T_BoolExpr | NodeTag::T_RelabelType | NodeTag::T_NullTest
            | NodeTag::T_BooleanTest | NodeTag::T_CaseExpr | NodeTag::T_CaseWhen | NodeTag::T_CaseTestExpr
            | NodeTag::T_ArrayExpr | NodeTag::T_RowExpr | NodeTag::T_CoalesceExpr | NodeTag::T_MinMaxExpr
            | NodeTag::T_SQLValueFunction | NodeTag::T_FieldSelect | NodeTag::T_CollateExpr
            | NodeTag::T_ConvertRowtypeExpr | NodeTag::T_List => {}
            NodeTag::T_FuncExpr | NodeTag::T_OpExpr | NodeTag::T_DistinctExpr | NodeTag::T_NullIfExpr
            | NodeTag::T_ScalarArrayOpExpr | NodeTag::T_CoerceViaIO | NodeTag::T_ArrayCoerceExpr
            | NodeTag::T_RowCompareExpr => {
                if pg_sys::check_functions_in_node(node, Some(refuse_function), ctx) {
                    return true;
                }
            }
            NodeTag::T_Var => {
                if (*(node as *mut pg_sys::Var)).varlevelsup != 0 {
                    return refuse(check, "it refers to an outer query".into());
                }
            }
            NodeTag::T_Param => {
                if (*(node as *mut pg_sys::Param)).paramkind != pg_sys::ParamKind::PARAM_EXTERN {
                    return refuse(check, "it holds a parameter that is not one of the statement's".into());
                }
            }
            NodeTag::T_CoerceToDomain => {
                // A domain's CHECK constraints may call anyone's functions.
                if (*(node as *mut pg_sys::CoerceToDomain)).resulttype.to_u32() >= pg_sys::FirstNormalObjectId {
                    return refuse(check, "it casts to a domain that is not built in (its CHECK constraints would run)".into());
                }
            }
            NodeTag::T_SubscriptingRef => {
                let container = (*(node as *mut pg_sys::SubscriptingRef)).refcontainertype;
                if pg_sys::get_typsubscript(container, std::ptr::null_mut()).to_u32() >= pg_sys::FirstNormalObjectId {
                    return refuse(check, "it subscripts a type whose subscripting is not built in".into());
                }
            }
            NodeTag::T_SubLink => return refuse(check, "it holds a subquery".into()),
            NodeTag::T_CurrentOfExpr => return refuse(check, "WHERE CURRENT OF names a cursor, not rows".into()),
            other => return refuse(check, format!("it holds an expression of a kind that is not explained ({other:?})")),
        }
        pg_sys::expression_tree_walker(node, Some(walker), ctx)
    }
}

unsafe fn walk(node: *mut pg_sys::Node, check: *mut c_void) -> bool {
    unsafe { walker(node, check) }
}

/// The analysed WHERE as PostgreSQL prints it, with the table as `alias`.
unsafe fn deparse(qual: *mut pg_sys::Node, alias: &str, relid: pg_sys::Oid) -> String {
    let a = CString::new(alias).unwrap_or_else(|_| raise(FbError::invalid("table name holds NUL")));
    unsafe {
        let ctx = pg_sys::deparse_context_for(a.as_ptr(), relid);
        let s = pg_sys::deparse_expression(qual, ctx, false, true);
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

// ------------------------------------------------------------ the search

/// PostgreSQL's statement timer (utils/timeout.h; no pgrx binding). The
/// enum's value is the same on 15 and 18.
mod timer {
    use std::ffi::c_int;
    pub const STATEMENT_TIMEOUT: c_int = 3;
    unsafe extern "C-unwind" {
        pub fn enable_timeout_at(id: c_int, fin_time: i64);
        pub fn disable_timeout(id: c_int, keep_indicator: bool);
        pub fn get_timeout_active(id: c_int) -> bool;
        pub fn get_timeout_finish_time(id: c_int) -> i64;
        pub fn get_timeout_indicator(id: c_int, reset_indicator: bool) -> bool;
    }
}

/// Run `f` read-only in a subtransaction under a statement timeout of its own
/// (SEARCH_TIMEOUT_MS, or the caller's own when that ends first, which then
/// cancels the caller's statement as it would have). An ERROR in `f` is
/// rolled back and becomes the answer's `why`; a cancel that is not this
/// timer's (the caller's own timeout, pg_cancel_backend) is raised again.
fn search<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    use timer::*;
    unsafe {
        let outer = get_timeout_active(STATEMENT_TIMEOUT).then(|| get_timeout_finish_time(STATEMENT_TIMEOUT));
        let ours = pg_sys::GetCurrentTimestamp() + i64::from(zr::SEARCH_TIMEOUT_MS) * 1000;
        let armed = outer.is_none_or(|o| ours < o);
        let restore = move || {
            if armed {
                match outer {
                    Some(o) => enable_timeout_at(STATEMENT_TIMEOUT, o),
                    None => disable_timeout(STATEMENT_TIMEOUT, false),
                }
            }
        };
        let mcxt = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(mcxt);
        let f = std::panic::AssertUnwindSafe(f);
        let r = pgrx::PgTryBuilder::new(move || {
            let was_read_only = pg_sys::XactReadOnly;
            pg_sys::XactReadOnly = true;
            if armed {
                enable_timeout_at(STATEMENT_TIMEOUT, ours);
            }
            let r = f();
            if armed {
                // A cancel the timer asked for just now is taken here, in
                // the subtransaction, as this search's timeout.
                disable_timeout(STATEMENT_TIMEOUT, true);
                pgrx::check_for_interrupts!();
                get_timeout_indicator(STATEMENT_TIMEOUT, true);
            }
            pg_sys::XactReadOnly = was_read_only;
            pg_sys::ReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(mcxt);
            pg_sys::CurrentResourceOwner = owner;
            Ok(r)
        })
        .catch_others(move |e| {
            pg_sys::MemoryContextSwitchTo(mcxt);
            let (code, msg) = match &e {
                pgrx::pg_sys::panic::CaughtError::PostgresError(r)
                | pgrx::pg_sys::panic::CaughtError::ErrorReport(r) => (r.sql_error_code(), r.message().to_string()),
                pgrx::pg_sys::panic::CaughtError::RustPanic { ereport, .. } => (ereport.sql_error_code(), ereport.message().to_string()),
            };
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(mcxt);
            pg_sys::CurrentResourceOwner = owner;
            // (the abort put XactReadOnly, the user and the settings back)
            let timed_out = armed
                && code == PgSqlErrorCode::ERRCODE_QUERY_CANCELED
                && pg_sys::GetCurrentTimestamp() >= ours;
            if armed {
                disable_timeout(STATEMENT_TIMEOUT, false);
            }
            if code == PgSqlErrorCode::ERRCODE_QUERY_CANCELED && !timed_out {
                restore();
                e.rethrow()
            }
            Err(if timed_out {
                format!("the search in your own view took longer than {} ms", zr::SEARCH_TIMEOUT_MS)
            } else {
                format!("the search in your own view failed: {msg}")
            })
        })
        .execute();
        restore();
        r
    }
}
