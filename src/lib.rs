//! fluxbase_admin: the back end of a Supabase-style admin dashboard, inside
//! PostgreSQL. One module per capability; each `#[pg_extern]` is a thin wrapper
//! over the plain-Rust rules in the `fluxbase_core` crate and a few SPI queries.
//!
//! SQL layout (run in this order by CREATE EXTENSION):
//!   sql/bootstrap.sql  roles and schemas
//!   sql/<capability>.sql  tables, views, indexes
//!   (the #[pg_extern] functions)
//!   sql/grants.sql  privileges, default settings

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

// Layers (docs/ARCHITECTURE.md; scripts/check-layers.py keeps them acyclic):
// runtime under everything; audit on runtime; admin and users above audit;
// explorer and monitoring on top.
pub mod runtime;
pub mod audit;
pub mod admin;
pub mod users;
pub mod explorer;
pub mod monitoring;
pub mod rls;

extension_sql_file!("../sql/bootstrap.sql", bootstrap);

// Declares the schemas to pgrx so `#[pg_extern(schema = "...")]` can name them;
// sql/bootstrap.sql (run first) is what creates them.
#[pg_schema]
pub mod auth {}
#[pg_schema]
pub mod dashboard_auth {}
#[pg_schema]
pub mod dashboard {}
extension_sql_file!("../sql/accounts.sql", name = "accounts_schema");
extension_sql_file!("../sql/sessions.sql", name = "sessions_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/settings.sql", name = "settings_schema", requires = ["sessions_schema"]);
extension_sql_file!("../sql/audit.sql", name = "audit_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/settings_view.sql", name = "settings_view", requires = ["settings_schema", admin::settings::setting_definitions]);
extension_sql_file!("../sql/mfa.sql", name = "mfa_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/passkeys.sql", name = "passkeys_schema", requires = ["sessions_schema"]);
extension_sql_file!("../sql/invitations.sql", name = "invitations_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/password_resets.sql", name = "password_resets_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/app_users.sql", name = "app_users_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/explorer.sql", name = "explorer_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/monitoring.sql", name = "monitoring_schema", requires = ["accounts_schema"]);
extension_sql_file!("../sql/validate_session.sql", name = "validate_session_sql", requires = ["sessions_schema", admin::sessions::token_digest, admin::sessions::session_live]);
extension_sql_file!("../sql/grants.sql", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    unsafe {
        // One callback for every transaction end (and one for subtransactions),
        // which calls each capability's own: the cost a transaction pays for the
        // library being loaded is one guarded call per event, not one per
        // capability (bench/overhead_instructions.sh).
        pg_sys::RegisterXactCallback(Some(on_xact_event), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact_event), std::ptr::null_mut());
        // What the audit trigger and the append keep of tables between
        // statements is dropped when Postgres says a table (or schema) changed.
        pg_sys::CacheRegisterRelcacheCallback(Some(table_changed), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            Some(schema_changed),
            pg_sys::Datum::from(0),
        );
    }
    // Refusals raised by the runtime layer are audited (through runtime::hooks).
    audit::refusals::init();
    // ...and the audit log's purge and disable ask for a recent re-authentication.
    admin::stepup::init();
    users::claims::init();
    runtime::confine::init();
}

/// Every transaction event, to each capability in this order: confinement
/// (restores a sticky security context before deferred work), the claims
/// (frees replaced values), the audit trail (appends the queued entries at
/// PRE_COMMIT: it still needs the admin), then the admin identity (forgotten
/// at the end). An ERROR raised by one (the append at PRE_COMMIT) aborts the
/// transaction, whose ABORT event then reaches all of them.
#[pg_guard]
unsafe extern "C-unwind" fn on_xact_event(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    runtime::confine::on_xact_event(event);
    users::claims::on_xact_event(event);
    audit::append::on_xact_event(event);
    runtime::actor::on_xact_event(event);
}

/// Every subtransaction event: confinement, then the audit trail's queue.
#[pg_guard]
unsafe extern "C-unwind" fn on_subxact_event(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    runtime::confine::on_subxact_event(event, my_subid, parent_subid);
    audit::append::on_subxact_event(event, my_subid);
}

/// Relcache invalidation: `relid` was altered, dropped or renamed, or every
/// table may have been (InvalidOid).
#[pg_guard]
unsafe extern "C-unwind" fn table_changed(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    audit::row_capture::forget_table(relid);
    runtime::db::forget_table(relid);
}

/// Syscache invalidation on pg_namespace: a schema was renamed or dropped,
/// which invalidates no table's relcache entry.
#[pg_guard]
unsafe extern "C-unwind" fn schema_changed(_arg: pg_sys::Datum, _cache: std::ffi::c_int, _hash: u32) {
    audit::row_capture::forget_table(pg_sys::InvalidOid);
    runtime::db::forget_table(pg_sys::InvalidOid);
    runtime::confine::forget_api_schemas();
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn default_settings_are_installed() {
        let n = Spi::get_one::<i64>("SELECT count(*) FROM dashboard_auth.settings").unwrap();
        assert_eq!(n, Some(fluxbase_core::settings::SETTINGS.len() as i64));
    }

    #[pg_test]
    fn setup_then_validate_roundtrip() {
        assert_eq!(Spi::get_one::<bool>("SELECT dashboard_auth.needs_setup()").unwrap(), Some(true));
        let token = Spi::get_one::<String>(
            "SELECT session_token FROM dashboard_auth.setup_first_admin('root@example.com', 'a-long-enough-passphrase', 'Root')",
        )
        .unwrap()
        .unwrap();
        assert!(token.starts_with("fbs_"));
        // Read-write SPI (a new snapshot): validate_session is STABLE, and a
        // read-only SPI query would run under this test's snapshot, from
        // before the setup above.
        let email = crate::runtime::db::one::<String>(
            "SELECT email FROM dashboard_auth.validate_session($1)",
            &[token.as_str().into()],
        );
        assert_eq!(email.as_deref(), Some("root@example.com"));
    }

    #[pg_test]
    fn as_extension_owner_pins_search_path_and_restores_user() {
        Spi::run("CREATE ROLE fb_pgtest_caller").unwrap();
        Spi::run("SET search_path = public, pg_catalog").unwrap();
        Spi::run("SET ROLE fb_pgtest_caller").unwrap();
        let (path, user) = crate::runtime::db::as_extension_owner(|| {
            (
                Spi::get_one::<String>("SELECT current_setting('search_path')").unwrap(),
                Spi::get_one::<String>("SELECT current_user::text").unwrap(),
            )
        });
        assert_eq!(path.as_deref(), Some("pg_catalog, pg_temp"));
        assert_ne!(user.as_deref(), Some("fb_pgtest_caller"));
        assert_eq!(Spi::get_one::<String>("SELECT current_user::text").unwrap().as_deref(), Some("fb_pgtest_caller"));
        assert_eq!(
            Spi::get_one::<String>("SELECT current_setting('search_path')").unwrap().as_deref(),
            Some("public, pg_catalog")
        );
        Spi::run("RESET ROLE").unwrap();
    }

    #[pg_test]
    fn direct_table_measures_tuples_as_heap_form_tuple_forms_them() {
        use pgrx::pg_sys::{self, Datum};
        // (a dropped column, NULLs or none, short and long varlenas, alignment;
        // no defaults, so what is not given is NULL in both)
        Spi::run("CREATE TABLE public.measured (a int, gone int, b text, c bigint, d bytea, e smallint)").unwrap();
        Spi::run("ALTER TABLE public.measured DROP COLUMN gone").unwrap();
        let oid = Spi::get_one::<pg_sys::Oid>("SELECT 'public.measured'::regclass::oid").unwrap().unwrap();
        unsafe {
            let t = crate::audit::direct_table::DirectTable::open(oid, pg_sys::RowExclusiveLock);
            let long = vec![7u8; 300];
            let cases: Vec<Vec<(usize, Option<Datum>)>> = vec![
                vec![],
                vec![(0, Some(Datum::from(1i32)))],
                vec![(0, Some(Datum::from(1i32))), (2, "x".into_datum()), (3, Some(Datum::from(5i64))),
                     (4, long.as_slice().into_datum()), (5, Some(Datum::from(2i16)))],
                vec![(2, "a longer text value".into_datum()), (5, Some(Datum::from(2i16)))],
            ];
            for values in cases {
                let tuple = t.form(&values);
                assert_eq!(t.tuple_len(&values), (*tuple).t_len as usize);
                pg_sys::heap_freetuple(tuple);
            }
            t.close();
        }
    }

    #[pg_test(error = "setup has already been completed: an admin account exists")]
    fn second_setup_is_refused() {
        Spi::run("SELECT dashboard_auth.setup_first_admin('a@example.com', 'a-long-enough-passphrase', 'A')").unwrap();
        Spi::run("SELECT dashboard_auth.setup_first_admin('b@example.com', 'a-long-enough-passphrase', 'B')").unwrap();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
