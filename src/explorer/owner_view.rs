//! The admin's own view of a table (issue 30): what its owner sees.
//!
//! An admin signed in to the dashboard (a verified `use_session`, no
//! impersonation applied, `current_user` still the login) browses, counts,
//! exports and edits a table *as the table's owner*, inside PostgreSQL's
//! restricted security context, the way VACUUM and REFRESH MATERIALIZED VIEW
//! run index and view code: `SetUserIdAndSecContext(owner,
//! SECURITY_RESTRICTED_OPERATION | SECURITY_LOCAL_USERID_CHANGE)`, on top of
//! `confine::run_untrusted` (no API call, no role or claims change from the
//! owner's code). So
//!
//! * RLS does not filter the admin's view (the owner is exempt) unless the
//!   table is `FORCE ROW LEVEL SECURITY`, and no grant to the web login is
//!   needed;
//! * code the owner wrote (triggers, defaults, view functions, policies,
//!   domain checks) runs with exactly the owner's rights, no more;
//! * **no code ever runs as a superuser** through the dashboard: a table owned
//!   by a superuser is read and edited as `fluxbase_explorer`, a NOLOGIN role
//!   the extension creates (BYPASSRLS, member of `pg_read_all_data` and
//!   `pg_write_all_data`, nothing else; docs/SECURITY.md).
//!
//! Not for the extension's private schemas (`dashboard_auth`, `dashboard`,
//! `auth`: their secrets stay out of reach as before), PostgreSQL's own
//! (`pg_catalog`, `information_schema`, toast, temporary) nor another
//! session's temporary tables: those keep running with the caller's rights.
//! Inside an impersonation nothing changes either: the viewed user's rights
//! and RLS decide.
//!
//! The previous user and context come back on the way out; on an ERROR the
//! (sub)transaction's abort restores them (as for `run_untrusted`).

use std::cell::Cell;

use fluxbase_core::{Code, FbError};
use pgrx::pg_sys;
use pgrx::PgRelation;

use crate::runtime::actor::{self, Actor};
use crate::runtime::db::{switch_user, user_and_ctx};
use crate::runtime::errors::raise;

/// The role a superuser-owned table is read and edited as.
pub const ROLE: &str = "fluxbase_explorer";

/// Schemas whose tables are never read as their owner.
const PRIVATE: [&str; 6] = ["pg_catalog", "information_schema", "pg_toast", "dashboard_auth", "dashboard", "auth"];

/// The same list as SQL, for `dashboard.table_overview` (a constant of this crate).
pub const PRIVATE_SQL: &str = "(n.nspname IN ('pg_catalog', 'information_schema', 'pg_toast', 'dashboard_auth', 'dashboard', 'auth')
      OR n.nspname LIKE 'pg\\_temp\\_%' OR n.nspname LIKE 'pg\\_toast\\_temp\\_%')";

thread_local! {
    /// The caller behind the owner switch running now (see `as_caller`).
    static CALLER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

pub fn private_schema(nsp: &str) -> bool {
    PRIVATE.contains(&nsp) || nsp.starts_with("pg_temp_") || nsp.starts_with("pg_toast_temp_")
}

/// The admin's own view: a verified admin session, not impersonating, acting
/// as the login itself.
pub fn admin_view() -> bool {
    matches!(actor::current(), Actor::Admin(_))
        && crate::runtime::confine::applied_session().is_none()
        && unsafe { pg_sys::GetUserId() == pg_sys::GetSessionUserId() }
}

/// The dedicated role's oid; refused when it is missing or was made a superuser.
fn dedicated_role() -> pg_sys::Oid {
    let oid = unsafe { pg_sys::get_role_oid(c"fluxbase_explorer".as_ptr(), true) };
    if oid == pg_sys::InvalidOid {
        raise(
            FbError::new(Code::WrongState, "the role fluxbase_explorer is missing")
                .with_hint("run ALTER EXTENSION fluxbase_admin UPDATE as a superuser"),
        );
    }
    if unsafe { pg_sys::superuser_arg(oid) } {
        raise(FbError::new(
            Code::WrongState,
            "the role fluxbase_explorer is a superuser: the dashboard refuses to run anyone's code as one",
        ));
    }
    oid
}

/// The role `rel` is read and edited as in the admin's own view (its owner,
/// or fluxbase_explorer for a superuser's table), or None: the caller's rights.
pub fn run_as(rel: &PgRelation) -> Option<pg_sys::Oid> {
    if !admin_view() || private_schema(rel.namespace()) {
        return None;
    }
    let (owner, persistence) = unsafe { ((*rel.rd_rel).relowner, (*rel.rd_rel).relpersistence) };
    if persistence == pg_sys::RELPERSISTENCE_TEMP as std::ffi::c_char {
        return None;
    }
    if unsafe { pg_sys::superuser_arg(owner) } {
        Some(dedicated_role())
    } else {
        Some(owner)
    }
}

/// Sets CALLER back when dropped (also while an error unwinds: the next
/// statement must not believe an owner switch is still running).
struct RestoreCaller(Option<pg_sys::Oid>);

impl Drop for RestoreCaller {
    fn drop(&mut self) {
        CALLER.with(|c| c.set(self.0));
    }
}

/// Run `f` confined (`confine::run_untrusted`), as `as_user` when given.
pub fn run<R>(as_user: Option<pg_sys::Oid>, f: impl FnOnce() -> R) -> R {
    crate::runtime::confine::run_untrusted(|| match as_user {
        None => f(),
        Some(owner) => {
            let (caller, _) = user_and_ctx();
            let _caller = RestoreCaller(CALLER.with(|c| c.replace(Some(caller))));
            let restricted = (pg_sys::SECURITY_RESTRICTED_OPERATION | pg_sys::SECURITY_LOCAL_USERID_CHANGE) as i32;
            switch_user(owner, |ctx| ctx | restricted, f)
        }
    })
}

/// Whether an owner switch is running now.
pub fn as_owner_now() -> bool {
    CALLER.with(|c| c.get()).is_some()
}

/// Run `f` as the caller behind the owner switch (still restricted): for the
/// extension's own helpers the owner may not execute (`_check_values`).
pub fn as_caller<R>(f: impl FnOnce() -> R) -> R {
    match CALLER.with(|c| c.get()) {
        None => f(),
        Some(caller) => switch_user(caller, |ctx| ctx, f),
    }
}
