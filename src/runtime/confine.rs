//! Confinement: code the dashboard did not write never runs with the
//! dashboard's power (issue 17).
//!
//! Browsing a view, editing a table, `query_as` and a transaction under
//! `apply_impersonation` run code owned by others: view and operator
//! functions, RLS policies, triggers, constraint triggers, domain checks,
//! defaults. Such code runs as the caller (or the impersonated role), which is
//! inherent to showing the caller what the database shows them; but it must
//! not reach the API with the admin's verified identity, switch the role back
//! to the login (which may become service_role), or forge `request.jwt.*`.
//!
//! The mechanism is PostgreSQL's own for running untrusted code (VACUUM, CREATE
//! INDEX, REFRESH MATERIALIZED VIEW): `SetUserIdAndSecContext(user, ctx |
//! SECURITY_RESTRICTED_OPERATION)`. Inside it `SET ROLE`, `RESET ROLE`, `SET
//! SESSION AUTHORIZATION` and `set_config('role', ..)` fail (42501) and no
//! temporary table can be created. On top of it a re-entry guard in backend
//! memory, which nobody can write from SQL:
//!
//! * `run_untrusted(f)`: `f` runs restricted; every API function refuses.
//!   Nothing queued by `f` runs later unconfined: PostgreSQL refuses to queue
//!   a deferred trigger event or open a WITH HOLD cursor in a restricted
//!   operation (so the explorer cannot edit a table whose constraint triggers
//!   are INITIALLY DEFERRED unless the caller first makes them IMMEDIATE).
//! * `apply_impersonation` makes the transaction sticky right away, until it
//!   ends (COMMIT does not restore the security context, so the PRE_COMMIT
//!   callback here does; abort restores it by itself).
//!
//! How API functions refuse — design choice. Option (a), a check at the entry
//! of every API function, misses any function someone adds later and cannot
//! tell a call made by the client from one made by a trigger. Option (b),
//! chosen: PostgreSQL's `needs_fmgr_hook`/`fmgr_hook`. `needs_fmgr_hook`
//! answers true only while confined (untrusted or sticky) and only for
//! functions of the schemas `dashboard` and `dashboard_auth` whose name does
//! not start with `_` (those are the extension's internal trigger functions
//! and helpers, which the explorer's own statements and the audit triggers
//! must keep running); outside confinement it costs one thread-local read per
//! function lookup. `fmgr_hook` then refuses at the call (42501) unless the
//! call is allowed:
//! * never inside `run_untrusted`;
//! * when sticky: only while an allowed API call is already running (the
//!   extension's own nested calls, e.g. use_session's validate_session), or
//!   as the top-level statement of the client — the statement the client
//!   sent, (ExecutorRun with a client destination), and it must be a plain
//!   API call (`SELECT f(..)` / `SELECT * FROM f(..)` / `SELECT to_json(t)
//!   FROM f(..) t`, the last with pg_catalog's to_json or to_jsonb, maybe
//!   cast `::text`, as the web dashboard calls; arguments only constants,
//!   parameters and built-in casts), so no user code runs in it outside the
//!   API function, which confines its own untrusted work.
//! SQL-language API functions are not inlined while the hook wants them
//! (PostgreSQL checks FmgrHookIsNeeded before inlining), so they refuse too.
//! `actor::reader/writer/session_admin` also call `refuse_if_untrusted()`,
//! a second line for an FmgrInfo looked up before confinement began.
//!
//! `request.jwt.claims` is this library's GUC: its check hook refuses a change
//! while confined (`claims_locked`); the legacy per-claim settings are defined
//! here with the same check.
//!
//! The hooks themselves are C (`src/runtime/confine_hooks.c`, compiled by build.rs
//! with the `cc` crate against the server's headers), issue 29. A hook wraps
//! PostgreSQL code that raises the application's errors (ExecutorRun runs
//! every statement; a previous library's hook may raise). Chosen: a C
//! trampoline doing `before(); PG_TRY() { previous-or-standard } PG_FINALLY()
//! { after(); } PG_END_TRY()`, which re-throws the original ErrorData
//! untouched (PG_RE_THROW), with the Rust parts (`fluxbase_confine_*`) before
//! or after it and never between the error and its handler. Why not Rust:
//! pgrx 0.18 calls every `pg_sys` function through its FFI guard
//! (`pg_guard_ffi_boundary`), which copies only code, message, detail, hint
//! and location out of the ErrorData into a panic and raises that copy again
//! at the hook's boundary (a custom SQLSTATE such as FBR01 or PT403 became
//! XX000; schema/table/column/constraint/datatype names, context, internal
//! query and position were lost); its `PgTryBuilder` catches that same panic,
//! so its rethrow is the same copy. Calling another library's hook through a
//! raw pointer from Rust skips the guard but longjmps across Rust frames.
//! Since the restore on the way out is done in PG_FINALLY, nothing here
//! relies on destructors running during a longjmp.
//!
//! Attribution (item 7): `applied_session()` is the impersonation session this
//! backend applied itself (apply_impersonation, or query_as while it runs),
//! never what `request.jwt.claims` says.

use std::cell::Cell;

use pgrx::datum::Uuid;
use pgrx::pg_sys;
use pgrx::prelude::*;

use fluxbase_core::FbError;

pub const REFUSAL: &str = "the dashboard API cannot be called from code run by a browsed or impersonated statement";

thread_local! {
    /// Nesting of run_untrusted.
    static UNTRUSTED: Cell<u32> = const { Cell::new(0) };
    /// The rest of the transaction is confined.
    static STICKY: Cell<bool> = const { Cell::new(false) };
    /// The security context to put back at commit.
    static STICKY_CTX: Cell<i32> = const { Cell::new(0) };
    /// The subtransaction that made it sticky (its abort undoes it).
    static STICKY_SUBID: Cell<u32> = const { Cell::new(0) };
    /// Allowed API calls running (fmgr_hook START .. END/ABORT).
    static API_ACTIVE: Cell<u32> = const { Cell::new(0) };
    /// The client's top-level statement is running and is a plain API call.
    static TOP_API: Cell<bool> = const { Cell::new(false) };
    /// The impersonation applied by apply_impersonation, and its subtransaction.
    static APPLIED: Cell<Option<([u8; 16], u32)>> = const { Cell::new(None) };
    /// The impersonation of the query_as call running now.
    static QUERY_AS: Cell<Option<[u8; 16]>> = const { Cell::new(None) };
}

fn user_and_ctx() -> (pg_sys::Oid, i32) {
    let mut user = pg_sys::Oid::INVALID;
    let mut ctx: i32 = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut ctx) };
    (user, ctx)
}

const RESTRICTED: i32 = pg_sys::SECURITY_RESTRICTED_OPERATION as i32;

fn refuse() -> ! {
    crate::runtime::errors::raise(FbError::denied(REFUSAL))
}

/// Run untrusted work (a statement of the caller's, a browse of someone's
/// view, an edit firing someone's triggers) confined, see the module comment.
pub fn run_untrusted<R>(f: impl FnOnce() -> R) -> R {
    struct Guard {
        user: pg_sys::Oid,
        ctx: i32,
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            UNTRUSTED.with(|c| c.set(c.get().saturating_sub(1)));
            if !std::thread::panicking() {
                // On an ERROR the (sub)transaction's abort restores the context.
                unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.ctx) };
            }
        }
    }
    let (user, ctx) = user_and_ctx();
    UNTRUSTED.with(|c| c.set(c.get() + 1));
    let guard = Guard { user, ctx };
    unsafe { pg_sys::SetUserIdAndSecContext(user, ctx | RESTRICTED) };
    let r = f();
    drop(guard);
    r
}

/// Confine the rest of the transaction (restricted context, API calls only as
/// the client's plain top-level calls).
pub fn make_sticky() {
    let (user, ctx) = user_and_ctx();
    if !STICKY.with(|s| s.replace(true)) {
        STICKY_CTX.with(|c| c.set(ctx & !RESTRICTED));
        STICKY_SUBID.with(|s| s.set(unsafe { pg_sys::GetCurrentSubTransactionId() }));
    }
    unsafe { pg_sys::SetUserIdAndSecContext(user, ctx | RESTRICTED) };
}

/// Run the extension's own role change (apply_impersonation, query_as) with the
/// restriction lifted; the restriction (if any) comes back with the new user.
/// Never inside run_untrusted.
pub fn trusted_role_change<R>(f: impl FnOnce() -> R) -> R {
    refuse_if_untrusted();
    let (user, ctx) = user_and_ctx();
    unsafe { pg_sys::SetUserIdAndSecContext(user, ctx & !RESTRICTED) };
    let r = f();
    let (now, _) = user_and_ctx();
    unsafe { pg_sys::SetUserIdAndSecContext(now, ctx) };
    r
}

pub fn untrusted() -> bool {
    UNTRUSTED.with(|c| c.get()) > 0
}

/// 42501 while untrusted code runs.
pub fn refuse_if_untrusted() {
    if untrusted() {
        refuse();
    }
}

/// Whether `request.jwt.*` must not change now.
pub fn claims_locked() -> bool {
    untrusted() || (STICKY.with(|s| s.get()) && API_ACTIVE.with(|a| a.get()) == 0)
}

/// The impersonation session this backend applied itself, if any.
pub fn applied_session() -> Option<Uuid> {
    QUERY_AS
        .with(|q| q.get())
        .or_else(|| APPLIED.with(|a| a.get()).map(|(id, _)| id))
        .map(Uuid::from_bytes)
}

pub fn set_applied(id: Uuid) {
    APPLIED.with(|a| a.set(Some((*id.as_bytes(), unsafe { pg_sys::GetCurrentSubTransactionId() }))));
}

/// Run `f` (query_as's statement) attributed to impersonation `id`.
pub fn with_query_as<R>(id: Uuid, f: impl FnOnce() -> R) -> R {
    struct Guard(Option<[u8; 16]>);
    impl Drop for Guard {
        fn drop(&mut self) {
            QUERY_AS.with(|q| q.set(self.0));
        }
    }
    let _g = Guard(QUERY_AS.with(|q| q.replace(Some(*id.as_bytes()))));
    f()
}

fn reset() {
    UNTRUSTED.with(|c| c.set(0));
    STICKY.with(|s| s.set(false));
    API_ACTIVE.with(|a| a.set(0));
    TOP_API.with(|t| t.set(false));
    APPLIED.with(|a| a.set(None));
    QUERY_AS.with(|q| q.set(None));
}

// ------------------------------------------------------------ which functions

fn namespace(name: &std::ffi::CStr) -> pg_sys::Oid {
    unsafe { pg_sys::get_namespace_oid(name.as_ptr(), true) }
}

thread_local! {
    /// The OIDs of `dashboard` and `dashboard_auth`, looked up once: the
    /// fmgr hook asks for every SECURITY DEFINER call of anyone's code, and two
    /// lookups by name cost more than the rest of the hook (callgrind, bench/
    /// overhead_instructions.sh). Forgotten whenever a schema changes
    /// (`forget_api_schemas`, from the NAMESPACEOID syscache callback), so a
    /// dropped and re-created extension is seen.
    static API_SCHEMAS: Cell<Option<(pg_sys::Oid, pg_sys::Oid)>> = const { Cell::new(None) };
}

/// A schema was created, altered or dropped: look the API schemas up again.
pub fn forget_api_schemas() {
    API_SCHEMAS.with(|c| c.set(None));
}

fn api_schemas() -> (pg_sys::Oid, pg_sys::Oid) {
    if let Some(s) = API_SCHEMAS.with(|c| c.get()) {
        return s;
    }
    let s = (namespace(c"dashboard"), namespace(c"dashboard_auth"));
    API_SCHEMAS.with(|c| c.set(Some(s)));
    s
}

/// A function of the extension's API schemas (any name).
fn in_api_schema(fn_oid: pg_sys::Oid) -> bool {
    let nsp = unsafe { pg_sys::get_func_namespace(fn_oid) };
    if nsp == pg_sys::InvalidOid {
        return false;
    }
    let (dashboard, dashboard_auth) = api_schemas();
    nsp == dashboard || nsp == dashboard_auth
}

/// An API function: in the API schemas, not an internal `_` helper.
fn is_api_function(fn_oid: pg_sys::Oid) -> bool {
    if !in_api_schema(fn_oid) {
        return false;
    }
    let name = unsafe { pg_sys::get_func_name(fn_oid) };
    !name.is_null() && unsafe { *name } != b'_' as std::ffi::c_char
}

fn confined() -> bool {
    untrusted() || STICKY.with(|s| s.get())
}

fn call_refused() -> bool {
    if untrusted() {
        return true;
    }
    STICKY.with(|s| s.get()) && API_ACTIVE.with(|a| a.get()) == 0 && !TOP_API.with(|t| t.get())
}

/// needs_fmgr_hook's own part (the C trampoline in src/runtime/confine_hooks.c asks
/// the previous hook first). Outside confinement: two thread-local reads.
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn fluxbase_confine_needs_fmgr(fn_oid: pg_sys::Oid) -> bool {
    confined() && is_api_function(fn_oid)
}

/// fmgr_hook's own part (after the previous hook, src/runtime/confine_hooks.c): counts
/// the allowed API calls running, refuses (42501) a call that is not allowed.
/// Called for FHET_ABORT from PostgreSQL's PG_CATCH, where it only counts.
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn fluxbase_confine_fmgr(
    event: pg_sys::FmgrHookEventType::Type,
    flinfo: *mut pg_sys::FmgrInfo,
    private: *mut pg_sys::Datum,
) {
    // *private (one per looked-up function): 0 unknown, 1 ours, 2 not ours.
    let mine = unsafe {
        if (*private).value() == 0 {
            *private = pg_sys::Datum::from(if is_api_function((*flinfo).fn_oid) { 1usize } else { 2 });
        }
        (*private).value() == 1
    };
    if !mine {
        return;
    }
    match event {
        pg_sys::FmgrHookEventType::FHET_START => {
            if call_refused() {
                refuse();
            }
            API_ACTIVE.with(|a| a.set(a.get() + 1));
        }
        _ => API_ACTIVE.with(|a| a.set(a.get().saturating_sub(1))),
    }
}

// ------------------------------------------------------------ the client's statement

fn is_client_dest(dest: *mut pg_sys::DestReceiver) -> bool {
    use pg_sys::CommandDest as D;
    if dest.is_null() {
        return false;
    }
    let d = unsafe { (*dest).mydest };
    d == D::DestRemote || d == D::DestRemoteExecute || d == D::DestRemoteSimple
}

unsafe fn tag(n: *mut pg_sys::Node) -> pg_sys::NodeTag {
    unsafe { (*n).type_ }
}

/// An argument the client wrote: a constant, a parameter, a built-in cast of one.
unsafe fn plain_arg(n: *mut pg_sys::Node) -> bool {
    use pg_sys::NodeTag::*;
    if n.is_null() {
        return false;
    }
    let builtin = |oid: pg_sys::Oid| oid.to_u32() < pg_sys::FirstNormalObjectId;
    unsafe {
        match tag(n) {
            T_Const | T_Param => true,
            T_RelabelType => plain_arg((*(n as *mut pg_sys::RelabelType)).arg as _),
            T_CoerceViaIO => {
                let c = n as *mut pg_sys::CoerceViaIO;
                builtin((*c).resulttype) && plain_arg((*c).arg as _)
            }
            T_FuncExpr => {
                let f = n as *mut pg_sys::FuncExpr;
                builtin((*f).funcid)
                    && (*f).funcformat != pg_sys::CoercionForm::COERCE_EXPLICIT_CALL
                    && pgrx::PgList::<pg_sys::Node>::from_pg((*f).args).iter_ptr().all(|a| plain_arg(a))
            }
            _ => false,
        }
    }
}

unsafe fn api_call(n: *mut pg_sys::Node) -> bool {
    unsafe {
        if n.is_null() || tag(n) != pg_sys::NodeTag::T_FuncExpr {
            return false;
        }
        let f = n as *mut pg_sys::FuncExpr;
        in_api_schema((*f).funcid) && pgrx::PgList::<pg_sys::Node>::from_pg((*f).args).iter_ptr().all(|a| plain_arg(a))
    }
}

unsafe fn tlist_all(tl: *mut pg_sys::List, ok: impl Fn(*mut pg_sys::Node) -> bool) -> bool {
    unsafe { pgrx::PgList::<pg_sys::TargetEntry>::from_pg(tl).iter_ptr().all(|te| ok((*te).expr as _)) }
}

/// What the client's `SELECT .. FROM f(..) t` may take from the scan of the
/// API function(s): a column or the whole row (`t`) as is, or pg_catalog's
/// `to_json(t)` / `to_jsonb(t)` of one (however the client spelled the name:
/// the plan holds the function's oid, so a `to_json` of some other schema is
/// refused), optionally cast to text (an I/O coercion, or none for json). The
/// value is the API's own result: its column types are the extension's or
/// built-in, and only their owners can give them a cast to json.
unsafe fn scan_output(n: *mut pg_sys::Node, scanrelid: pg_sys::Index) -> bool {
    use pg_sys::NodeTag::*;
    unsafe {
        let var_of_scan = |n: *mut pg_sys::Node| {
            !n.is_null() && tag(n) == T_Var && {
                let v = n as *mut pg_sys::Var;
                (*v).varlevelsup == 0 && (*v).varno as pg_sys::Index == scanrelid
            }
        };
        let json_of_scan = |n: *mut pg_sys::Node| {
            if n.is_null() || tag(n) != T_FuncExpr {
                return false;
            }
            let f = n as *mut pg_sys::FuncExpr;
            let args = pgrx::PgList::<pg_sys::Node>::from_pg((*f).args);
            ((*f).funcid == pg_sys::Oid::from(pg_sys::F_TO_JSON) || (*f).funcid == pg_sys::Oid::from(pg_sys::F_TO_JSONB))
                && !(*f).funcretset
                && args.len() == 1
                && args.get_ptr(0).is_some_and(var_of_scan)
        };
        if n.is_null() {
            return false;
        }
        match tag(n) {
            T_Var => var_of_scan(n),
            T_FuncExpr => json_of_scan(n),
            T_CoerceViaIO => {
                let c = n as *mut pg_sys::CoerceViaIO;
                (*c).resulttype == pg_sys::TEXTOID && json_of_scan((*c).arg as _)
            }
            T_RelabelType => {
                let r = n as *mut pg_sys::RelabelType;
                (*r).resulttype == pg_sys::TEXTOID && json_of_scan((*r).arg as _)
            }
            _ => false,
        }
    }
}

unsafe fn bare(p: *mut pg_sys::Plan) -> bool {
    unsafe { (*p).qual.is_null() && (*p).initPlan.is_null() && (*p).righttree.is_null() }
}

/// `SELECT f(..), ..` / `SELECT * FROM f(..)` / `SELECT to_json(t) FROM f(..) t`
/// (see `scan_output`) with f an API function and only plain arguments:
/// nothing but the API function (and pg_catalog's to_json of its result) runs.
/// Read from the plan, not the text: no qual (WHERE), sort, join, subplan,
/// CTE or set operation shows up as a plan node this accepts.
unsafe fn is_api_statement(ps: *mut pg_sys::PlannedStmt) -> bool {
    use pg_sys::NodeTag::*;
    unsafe {
        if ps.is_null()
            || (*ps).commandType != pg_sys::CmdType::CMD_SELECT
            || !(*ps).utilityStmt.is_null()
            || (*ps).hasModifyingCTE
            || !(*ps).subplans.is_null()
        {
            return false;
        }
        let plan = (*ps).planTree;
        if plan.is_null() || !bare(plan) {
            return false;
        }
        let is_result = |p: *mut pg_sys::Plan| {
            !p.is_null()
                && tag(p as _) == T_Result
                && bare(p)
                && (*p).lefttree.is_null()
                && (*(p as *mut pg_sys::Result)).resconstantqual.is_null()
        };
        match tag(plan as _) {
            T_Result => is_result(plan) && tlist_all((*plan).targetlist, |e| api_call(e)),
            T_ProjectSet => is_result((*plan).lefttree) && tlist_all((*plan).targetlist, |e| api_call(e)),
            T_FunctionScan => {
                let fs = plan as *mut pg_sys::FunctionScan;
                (*plan).lefttree.is_null()
                    && tlist_all((*plan).targetlist, |e| scan_output(e, (*fs).scan.scanrelid))
                    && pgrx::PgList::<pg_sys::RangeTblFunction>::from_pg((*fs).functions)
                        .iter_ptr()
                        .all(|rtf| api_call((*rtf).funcexpr))
            }
            _ => false,
        }
    }
}

/// ExecutorRun, before the statement runs (src/runtime/confine_hooks.c): record
/// whether `qd` is the client's statement and a plain API call; returns what
/// to put back afterwards. Decided for the client's own statement; any
/// statement nested in it (SPI from a function, a trigger's query) is not the
/// client's.
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn fluxbase_confine_statement_begin(qd: *mut pg_sys::QueryDesc) -> bool {
    let api = unsafe { is_client_dest((*qd).dest) && is_api_statement((*qd).plannedstmt) };
    TOP_API.with(|t| t.replace(api))
}

/// ExecutorRun, after the statement (normally or on its ERROR, from
/// PG_FINALLY: the error is re-thrown untouched afterwards). On an ERROR the
/// (sub)transaction's abort then clears TOP_API (on_subxact_event).
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn fluxbase_confine_statement_end(previous: bool) {
    TOP_API.with(|t| t.set(previous));
}

extern "C-unwind" {
    /// src/runtime/confine_hooks.c: chains ExecutorRun_hook, needs_fmgr_hook and fmgr_hook.
    fn fluxbase_confine_install_hooks();
}

// ------------------------------------------------------------ transaction ends

/// Called by the extension's one transaction callback (`_PG_init`'s `on_xact_event`).
pub fn on_xact_event(event: pg_sys::XactEvent::Type) {
    use pg_sys::XactEvent::*;
    if event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE || event == XACT_EVENT_PARALLEL_PRE_COMMIT {
        // CommitTransaction does not restore the security context (deferred
        // triggers have fired by now, still confined).
        if STICKY.with(|s| s.get()) {
            let (user, _) = user_and_ctx();
            unsafe { pg_sys::SetUserIdAndSecContext(user, STICKY_CTX.with(|c| c.get())) };
        }
        reset();
    } else if event == XACT_EVENT_COMMIT
        || event == XACT_EVENT_ABORT
        || event == XACT_EVENT_PARALLEL_COMMIT
        || event == XACT_EVENT_PARALLEL_ABORT
        || event == XACT_EVENT_PREPARE
    {
        reset();
    }
}

/// Called by the extension's one subtransaction callback (`_PG_init`'s `on_subxact_event`).
pub fn on_subxact_event(event: pg_sys::SubXactEvent::Type, my_subid: pg_sys::SubTransactionId, parent_subid: pg_sys::SubTransactionId) {
    use pg_sys::SubXactEvent::*;
    if event == SUBXACT_EVENT_ABORT_SUB {
        // The abort restores the security context of the subtransaction's start.
        if STICKY.with(|s| s.get()) && STICKY_SUBID.with(|s| s.get()) == my_subid {
            STICKY.with(|s| s.set(false));
        }
        if matches!(APPLIED.with(|a| a.get()), Some((_, s)) if s == my_subid) {
            APPLIED.with(|a| a.set(None));
        }
        TOP_API.with(|t| t.set(false));
    } else if event == SUBXACT_EVENT_COMMIT_SUB {
        if STICKY_SUBID.with(|s| s.get()) == my_subid {
            STICKY_SUBID.with(|s| s.set(parent_subid));
        }
        if let Some((id, s)) = APPLIED.with(|a| a.get()) {
            if s == my_subid {
                APPLIED.with(|a| a.set(Some((id, parent_subid))));
            }
        }
    }
}

/// Called once from `_PG_init`.
pub fn init() {
    unsafe {
        fluxbase_confine_install_hooks();
    }
}
