//! Small helpers over pgrx's SPI so the capability modules read as "what", not
//! "how". Every query is a constant string with `$n` parameters: values are
//! always bound, never pasted into SQL.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{SpiHeapTupleData, SpiResult};

use crate::runtime::errors::OrRaise;

// ------------------------------------------------------------ hot standby
//
// pgrx's read-write SPI (`Spi::connect_mut` / `SpiClient::update`) first asks
// Postgres for the transaction's id, assigning one: on a hot standby that is
// an internal error (XX000 "cannot assign TransactionIds during recovery").
// So on a standby the helpers below run what only reads (a plain SELECT)
// read-only, and refuse anything else up front with 25006 and a message that
// says why; `refuse_on_standby` does the same for code that writes otherwise
// (the audit trail, direct SPI). On a primary nothing changes.

/// Whether this server is a hot standby (in recovery: read-only).
pub fn on_standby() -> bool {
    // SAFETY: reads shared memory state, any time.
    unsafe { pg_sys::RecoveryInProgress() }
}

/// Refuse (25006 read_only_sql_transaction) on a hot standby: `what` would write.
pub fn refuse_on_standby(what: &str) {
    if on_standby() {
        pgrx::pg_sys::panic::ErrorReport::new(
            pgrx::PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("cannot {what}: this server is a read-only standby (hot standby, in recovery)"),
            "fluxbase_admin",
        )
        .set_hint("make this call on the primary server; a standby serves reads only")
        .report(PgLogLevel::ERROR);
    }
}

/// Whether `sql` only reads: a SELECT (or VALUES/TABLE) without a row-locking clause.
/// (The helpers' statements are constant strings written in this crate.)
fn only_reads(sql: &str) -> bool {
    let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    let upper = sql.to_ascii_uppercase();
    ["SELECT", "VALUES", "TABLE"].iter().any(|k| first.eq_ignore_ascii_case(k))
        && !["FOR UPDATE", "FOR NO KEY UPDATE", "FOR SHARE", "FOR KEY SHARE"].iter().any(|k| upper.contains(k))
}

/// On a standby: Some(read-only run of `sql`) when it only reads, else the 25006 refusal.
fn on_standby_read<R>(sql: &str, run: impl FnOnce() -> R) -> Option<R> {
    if !on_standby() {
        return None;
    }
    if !only_reads(sql) {
        refuse_on_standby("write");
    }
    Some(run())
}

/// Run a read-only query and map every row.
pub fn select<T>(
    sql: &str,
    args: &[DatumWithOid],
    mut f: impl FnMut(&SpiHeapTupleData) -> SpiResult<T>,
) -> Vec<T> {
    Spi::connect(|c| c.select(sql, None, args)?.map(|row| f(&row)).collect::<SpiResult<Vec<T>>>()).or_raise()
}

/// Run a statement that may write (INSERT/UPDATE/DELETE ... RETURNING) and map every returned row.
pub fn update<T>(
    sql: &str,
    args: &[DatumWithOid],
    mut f: impl FnMut(&SpiHeapTupleData) -> SpiResult<T>,
) -> Vec<T> {
    refuse_on_standby("write");
    Spi::connect_mut(|c| c.update(sql, None, args)?.map(|row| f(&row)).collect::<SpiResult<Vec<T>>>()).or_raise()
}

/// Run a statement that may write and return how many rows it touched.
pub fn execute(sql: &str, args: &[DatumWithOid]) -> usize {
    if let Some(n) = on_standby_read(sql, || Spi::connect(|c| c.select(sql, None, args).map(|t| t.len())).or_raise()) {
        return n;
    }
    Spi::connect_mut(|c| c.update(sql, None, args).map(|t| t.len())).or_raise()
}

/// The first column of the first row, or None when there is no row or it is NULL.
pub fn one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    let read = |c: &pgrx::spi::SpiClient<'_>| -> SpiResult<Option<T>> {
        let t = c.select(sql, Some(1), args)?;
        if t.is_empty() {
            Ok(None)
        } else {
            t.first().get_one::<T>()
        }
    };
    if let Some(v) = on_standby_read(sql, || Spi::connect(|c| read(&c)).or_raise()) {
        return v;
    }
    Spi::connect_mut(|c| {
        let t = c.update(sql, Some(1), args)?;
        if t.is_empty() {
            Ok(None)
        } else {
            t.first().get_one::<T>()
        }
    })
    .or_raise()
}

/// `session_user`, the login role behind the connection (not changed by SET ROLE
/// or SECURITY DEFINER), without a query.
pub fn session_user_name() -> String {
    unsafe {
        let oid = pg_sys::GetSessionUserId();
        let name = pg_sys::GetUserNameFromId(oid, true);
        if name.is_null() {
            format!("oid:{}", oid.to_u32())
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    }
}

/// Run `f` with the privileges of the extension's owner, the way a SECURITY
/// DEFINER function would, but for just this piece of work. Used by SECURITY
/// INVOKER functions (table explorer, impersonation, audit triggers) that must
/// act as the caller — so RLS and grants apply — yet write the audit log, which
/// no caller may write directly.
///
/// Like SECURITY DEFINER with `SET search_path`, it also pins `search_path` to
/// `pg_catalog, pg_temp` for the duration: otherwise a caller could put a schema
/// of their own first and have the owner run their `now()` or `=`.
///
/// The previous user and search_path come back on the way out. When `f` raises
/// an error, Postgres' (sub)transaction abort restores both itself.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    as_role(extension_owner(), pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32, f)
}

/// The current user and security context (`GetUserIdAndSecContext`).
pub fn user_and_ctx() -> (pg_sys::Oid, i32) {
    let mut user = pg_sys::Oid::INVALID;
    let mut ctx: i32 = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut ctx) };
    (user, ctx)
}

/// Run `f` as `role` with the security context `ctx(current context)`; the
/// previous user and context come back on the way out. While an ERROR unwinds
/// nothing is touched: the (sub)transaction abort restores the user itself.
/// The one place the extension switches users (`as_role`, the explorer's owner
/// view, explain_access).
pub fn switch_user<R>(role: pg_sys::Oid, ctx: impl FnOnce(i32) -> i32, f: impl FnOnce() -> R) -> R {
    struct Restore {
        user: pg_sys::Oid,
        ctx: i32,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.ctx) };
            }
        }
    }
    let (user, now) = user_and_ctx();
    let _restore = Restore { user, ctx: now };
    unsafe { pg_sys::SetUserIdAndSecContext(role, ctx(now)) };
    f()
}

/// Run `f` as `role`, with `extra` added to the security context (e.g.
/// SECURITY_RESTRICTED_OPERATION) and `search_path` pinned to `pg_catalog,
/// pg_temp` in a GUC nest level of its own. The previous user, context and
/// settings come back on the way out; when `f` raises an error, Postgres'
/// (sub)transaction abort restores them itself.
pub fn as_role<R>(role: pg_sys::Oid, extra: i32, f: impl FnOnce() -> R) -> R {
    struct PopGuc(i32);
    impl Drop for PopGuc {
        fn drop(&mut self) {
            // (while an ERROR unwinds, the abort resets the GUC nest level;
            // doing it here could run GUC code in a state Postgres does not expect)
            if !std::thread::panicking() {
                unsafe { pg_sys::AtEOXact_GUC(true, self.0) };
            }
        }
    }
    switch_user(role, |ctx| ctx | extra, || {
        let _pop = PopGuc(unsafe { pg_sys::NewGUCNestLevel() });
        unsafe {
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                c"pg_catalog, pg_temp".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        f()
    })
}

/// The owner of the extension's tables (whoever ran CREATE EXTENSION).
pub fn extension_owner() -> pg_sys::Oid {
    thread_local! {
        static OWNER: std::cell::Cell<Option<pg_sys::Oid>> = const { std::cell::Cell::new(None) };
    }
    if let Some(o) = OWNER.with(|c| c.get()) {
        return o;
    }
    let oid = one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'fluxbase_admin'",
        &[],
    )
    .unwrap_or_else(|| unsafe { pg_sys::GetUserId() });
    OWNER.with(|c| c.set(Some(oid)));
    oid
}

thread_local! {
    /// dashboard_auth_table's answers, until the table or its schema changes.
    static TABLE_OIDS: std::cell::RefCell<Vec<(&'static std::ffi::CStr, pg_sys::Oid)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The oid of one of the extension's tables in `dashboard_auth`, looked up
/// without a query (an ERROR if it is missing). Kept for the next call
/// (every audited commit asks) until `forget_table`.
pub fn dashboard_auth_table(name: &'static std::ffi::CStr) -> pg_sys::Oid {
    if let Some(oid) = TABLE_OIDS.with(|t| t.borrow().iter().find(|(n, _)| *n == name).map(|(_, oid)| *oid)) {
        return oid;
    }
    let oid = unsafe {
        let nsp = pg_sys::get_namespace_oid(c"dashboard_auth".as_ptr(), true);
        if nsp == pg_sys::InvalidOid {
            error!("fluxbase_admin: schema dashboard_auth is missing");
        }
        let oid = pg_sys::get_relname_relid(name.as_ptr(), nsp);
        if oid == pg_sys::InvalidOid {
            error!("fluxbase_admin: table dashboard_auth.{} is missing", name.to_string_lossy());
        }
        oid
    };
    TABLE_OIDS.with(|t| t.borrow_mut().push((name, oid)));
    oid
}

/// Forget the oid of `relid` (InvalidOid: of every table): it was dropped or
/// renamed, or its schema was (see lib.rs's invalidation callbacks).
pub fn forget_table(relid: pg_sys::Oid) {
    TABLE_OIDS.with(|t| t.borrow_mut().retain(|(_, oid)| relid != pg_sys::InvalidOid && *oid != relid));
}
