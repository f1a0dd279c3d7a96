//! The audit triggers, written in Rust:
//!
//! * `_audit_chain` (BEFORE INSERT, per row, on audit_log): routes every
//!   INSERT that is not the extension's own commit-time append (a DBA's) into
//!   that append (audit_append.rs), so whatever route a row takes, it is chained.
//! * `_audit_guard` (BEFORE UPDATE/DELETE/TRUNCATE, per statement, on
//!   audit_log and audit_checkpoints): refuses them, also for the owner and
//!   superusers; only the purges (`purge_audit`, `purge_audit_through`) may delete, through a backend-local flag.
//! * `_audit_row_change` (AFTER INSERT/UPDATE/DELETE, per statement, with
//!   transition tables): one audit row per statement holding every changed row
//!   as a binary row image (row_capture.rs), on the extension's own tables and
//!   on any table given to `dashboard.enable_audit`.
//!
//! Changes made by the extension's own API functions are not recorded a second
//! time by `_audit_row_change`: the API audits them itself. "Made by the API" is
//! decided from the calling context Postgres keeps, which SQL cannot forge: the
//! API functions are SECURITY DEFINER (or use `db::as_extension_owner`), so
//! while they run the current user is the extension's owner *and* the
//! security context carries SECURITY_LOCAL_USERID_CHANGE. A DBA's direct
//! `UPDATE dashboard_auth.users` has neither, so it is recorded, with
//! session_user and the admin acting in that transaction, if any. (Only the
//! owner could create another SECURITY DEFINER function owned by itself to
//! slip past this, and the owner can disable triggers anyway.) Code that runs
//! as the caller may also mark itself with `audit::api_scope`.

use std::cell::Cell;

use fluxbase_core::chain;
use fluxbase_core::row_image;
use fluxbase_core::FbError;
use pgrx::datum::{TimestampWithTimeZone, Uuid};
use pgrx::PgRelation;
use pgrx::prelude::*;
use serde_json::json;

use crate::runtime::errors::raise;
use crate::audit;
use crate::runtime::db;

thread_local! {
    /// Set only while a purge (purge_audit, purge_audit_through) deletes its prefix of the log.
    pub(crate) static PURGING: Cell<bool> = const { Cell::new(false) };
    /// >0 while audit-aware API code runs (see audit::api_scope).
    pub(crate) static API_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Most rows one statement's audit entry lists (the count is always exact).
const MAX_ROWS_PER_ENTRY: i64 = 10_000;

/// Build the chain record of an audit_log row, from a heap tuple (the
/// trigger) or an SPI row (the verifier): both have `get_by_name`.
macro_rules! chain_record {
    ($row:expr) => {{
        let r = $row;
        (|| -> Result<fluxbase_core::chain::ChainRecord, String> {
            fn e<E: std::fmt::Display>(x: E) -> String {
                x.to_string()
            }
            let id: Option<i64> = r.get_by_name("id").map_err(e)?;
            let occurred: Option<TimestampWithTimeZone> = r.get_by_name("occurred_at").map_err(e)?;
            let actor_id: Option<Uuid> = r.get_by_name("actor_id").map_err(e)?;
            let actor: Option<String> = r.get_by_name("actor").map_err(e)?;
            let action: Option<String> = r.get_by_name("action").map_err(e)?;
            let target_type: Option<String> = r.get_by_name("target_type").map_err(e)?;
            let target_id: Option<String> = r.get_by_name("target_id").map_err(e)?;
            let success: Option<bool> = r.get_by_name("success").map_err(e)?;
            let db_user: Option<String> = r.get_by_name("db_user").map_err(e)?;
            let txid: Option<i64> = r.get_by_name("txid").map_err(e)?;
            let imp: Option<Uuid> = r.get_by_name("impersonation_session_id").map_err(e)?;
            Ok(fluxbase_core::chain::ChainRecord {
                id: id.unwrap_or(0),
                occurred_at_us: occurred.map(|t| t.into_inner()).unwrap_or(0),
                actor_id: actor_id.map(|u| *u),
                actor: actor.unwrap_or_default(),
                action: action.unwrap_or_default(),
                target_type,
                target_id,
                details: String::new(), // filled by the caller: jsonb_out text of `details`
                ip: None, // filled by the caller: inet has no direct unboxing
                success: success.unwrap_or(false),
                db_user: db_user.unwrap_or_default(),
                txid: txid.unwrap_or(0),
                impersonation_session_id: imp.map(|u| *u),
                row_data: None, // filled by the caller: bytea unboxes differently per row kind
            })
        })()
    }};
}
pub(crate) use chain_record;

/// True while the extension's own API is making the change (see module doc).
pub fn in_api_context() -> bool {
    if API_DEPTH.with(|d| d.get()) > 0 {
        return true;
    }
    let (user, ctx) = unsafe {
        let mut user = pg_sys::Oid::INVALID;
        let mut ctx: i32 = 0;
        pg_sys::GetUserIdAndSecContext(&mut user, &mut ctx);
        (user, ctx)
    };
    ctx & (pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32) != 0 && user == db::extension_owner()
}


#[pg_schema]
pub mod dashboard_auth {
    use super::*;

    /// BEFORE INSERT FOR EACH ROW on audit_log. The extension's own append
    /// (audit_append.rs, at commit) writes the table directly and fires no
    /// trigger. Any INSERT (a DBA's) is queued like an API entry and skipped
    /// here: it is appended at commit with its own id and place in the chain,
    /// whatever id or hashes it gave.
    #[pg_trigger]
    pub fn _audit_chain<'a>(tr: &'a PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, String> {
        let new = tr.new().ok_or("_audit_chain must be a BEFORE INSERT row trigger")?.into_owned();
        let mut rec = chain_record!(&new)?;
        rec.ip = output_text_of_new(tr, "ip", pg_sys::inet_out);
        rec.details = output_text_of_new(tr, "details", pg_sys::jsonb_out).unwrap_or_else(|| "{}".into());
        // (absent in a database still at 0.1.0)
        rec.row_data = new.get_by_name::<&[u8]>("row_data").ok().flatten().map(<[u8]>::to_vec);
        if rec.occurred_at_us == 0 {
            rec.occurred_at_us = crate::audit::append::now();
        }
        // (jsonb_out's text, but a DBA's row takes the round trip like any other)
        crate::audit::append::queue(rec, None);
        Ok(None)
    }

    /// BEFORE UPDATE/DELETE/TRUNCATE FOR EACH STATEMENT: the log is append-only.
    #[pg_trigger]
    pub fn _audit_guard<'a>(tr: &'a PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, String> {
        let op = tr.op().map_err(|e| e.to_string())?;
        if matches!(op, PgTriggerOperation::Delete) && PURGING.with(|p| p.get()) {
            return Ok(None);
        }
        let table = tr.table_name().unwrap_or_default();
        let verb = match op {
            PgTriggerOperation::Update => "UPDATE",
            PgTriggerOperation::Delete => "DELETE",
            PgTriggerOperation::Truncate => "TRUNCATE",
            PgTriggerOperation::Insert => "INSERT",
        };
        // (a guard of the table, not an API call: not a refusal to audit)
        crate::audit::refusals::unrecorded(|| {
            raise(
                FbError::denied(format!("dashboard_auth.{table} is append-only: {verb} is refused"))
                    .with_hint("use dashboard_auth.purge_audit(older_than) to remove old entries"),
            )
        })
    }

    /// AFTER INSERT/UPDATE/DELETE FOR EACH STATEMENT, with transition tables:
    /// one audit_log row (action row.insert/row.update/row.delete) per statement.
    /// Trigger arguments name extra columns whose values are redacted.
    #[pg_trigger]
    pub fn _audit_row_change<'a>(tr: &'a PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, String> {
        if unsafe { pg_sys::creating_extension } {
            return Ok(None);
        }
        let td = tr.trigger_data();
        // trigger arguments name extra columns to redact (none: no
        // allocation); on the extension's own tables the secret columns always are
        let redact = tr.extra_args().map_err(|e| e.to_string())?;
        // SAFETY: td is this trigger's TriggerData.
        let table = unsafe {
            crate::audit::row_capture::audited_table(td, &|schema, col| {
                (is_extension_schema(schema) && chain::is_secret_column(col)) || redact.iter().any(|r| r == col)
            })
        };
        if table.own_table && in_api_context() {
            return Ok(None);
        }
        let (op, action) = match tr.op().map_err(|e| e.to_string())? {
            PgTriggerOperation::Insert => (row_image::Op::Insert, "row.insert"),
            PgTriggerOperation::Update => (row_image::Op::Update, "row.update"),
            PgTriggerOperation::Delete => (row_image::Op::Delete, "row.delete"),
            PgTriggerOperation::Truncate => {
                record_truncate(tr, &table.target);
                return Ok(None);
            }
        };
        // SAFETY: a statement-level AFTER trigger created by enable_audit (or
        // sql/audit_triggers.sql) with the transition tables its operation needs.
        let captured = unsafe { crate::audit::row_capture::capture(td, &table, op, MAX_ROWS_PER_ENTRY) };
        if captured.count == 0 {
            return Ok(None);
        }
        let mut details = json!({
            "table": table.target,
            "op": op.sql(),
            "pk_columns": table.pk_columns,
            "count": captured.count,
            "current_user": current_user_name(),
        });
        if captured.count > MAX_ROWS_PER_ENTRY {
            details["truncated"] = json!(true);
        }
        let mut ev = audit::Event::new(action, "table", table.target.clone()).details(details).row_data(captured.data);
        if let Some(s) = impersonation_session() {
            ev = ev.impersonation(s);
        }
        audit::record(ev);
        Ok(None)
    }
}

/// The extension's own schemas: their secret columns (password hashes, token
/// digests, 2FA secrets) are never recorded, whoever enables the audit.
fn is_extension_schema(schema: &str) -> bool {
    matches!(schema, "dashboard_auth" | "auth")
}

/// BEFORE TRUNCATE: `row.truncate` with the number of rows the TRUNCATE
/// removes. A partitioned table holds no rows itself: its partitions (which
/// a TRUNCATE of it truncates too, each firing its own trigger) record theirs.
fn record_truncate(tr: &PgTrigger<'_>, target: &str) {
    let rel = tr.trigger_data().tg_relation;
    if unsafe { (*(*rel).rd_rel).relkind } == pg_sys::RELKIND_PARTITIONED_TABLE as std::ffi::c_char {
        return;
    }
    // Counted by a plain scan of the table (row_json::count_rows), as
    // nobody: no query is planned on the table, so none of its owner's code
    // (index expressions, predicates) runs, least of all as the extension's
    // owner (issue 28); TRUNCATE needs no SELECT right, and row security does
    // not hide rows from the count.
    // SAFETY: the trigger's relation, open and locked by the TRUNCATE.
    let count = unsafe { crate::audit::row_json::count_rows(rel) };
    let details = json!({"table": target, "op": "TRUNCATE", "count": count, "current_user": current_user_name()});
    let mut ev = audit::Event::new("row.truncate", "table", target).details(details);
    if let Some(s) = impersonation_session() {
        ev = ev.impersonation(s);
    }
    audit::record(ev);
}

/// A column of the row being inserted, as its type's output function writes
/// it (the verifier calls the same function in SQL). Used for inet (no direct
/// unboxing in pgrx) and jsonb (hashing jsonb_out's text, which is canonical
/// for a jsonb value, saves a JSON parse on every append).
fn output_text_of_new(
    tr: &PgTrigger<'_>,
    column: &str,
    out_fn: unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum,
) -> Option<String> {
    let td = tr.trigger_data();
    unsafe {
        let tupdesc = (*td.tg_relation).rd_att;
        let attrs = crate::runtime::pgcompat::tupdesc_attrs(tupdesc);
        let attno = attrs.iter().position(|a| !a.attisdropped && pgrx::name_data_to_str(&a.attname) == column)? + 1;
        let datum = pgrx::heap_getattr_raw(td.tg_trigtuple, std::num::NonZeroUsize::new(attno)?, tupdesc)?;
        Some(crate::audit::append::output(out_fn, datum))
    }
}

fn current_user_name() -> String {
    user_name(unsafe { pg_sys::GetUserId() })
}

fn user_name(role: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, true);
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    }
}

/// The impersonation session this backend applied itself (apply_impersonation,
/// or query_as while it runs): never taken from `request.jwt.claims`, which
/// any SQL can set (issue 17, item 7).
pub fn impersonation_session() -> Option<Uuid> {
    crate::runtime::confine::applied_session()
}

// ---------------------------------------------------------------------------
// enable_audit / disable_audit / audited_tables

/// (name, timing and event, transition tables) of the audit triggers.
const TRIGGERS: [(&str, &str, &str); 4] = [
    ("fluxbase_audit_ins", "AFTER INSERT", "REFERENCING NEW TABLE AS fb_new"),
    ("fluxbase_audit_upd", "AFTER UPDATE", "REFERENCING OLD TABLE AS fb_old NEW TABLE AS fb_new"),
    ("fluxbase_audit_del", "AFTER DELETE", "REFERENCING OLD TABLE AS fb_old"),
    ("fluxbase_audit_trn", "BEFORE TRUNCATE", ""),
];

/// SQL: the audit trigger `t` (a pg_trigger row named like one of ours) is
/// enabled, calls our function and fires for its statement (tgtype: 4
/// INSERT, 16 UPDATE, 8 DELETE, 2|32 BEFORE TRUNCATE).
const WORKING_TRIGGER: &str = "t.tgenabled <> 'D'
    AND t.tgfoid = 'dashboard_auth._audit_row_change()'::pg_catalog.regprocedure
    AND t.tgtype = CASE t.tgname WHEN 'fluxbase_audit_ins' THEN 4 WHEN 'fluxbase_audit_upd' THEN 16
                                 WHEN 'fluxbase_audit_del' THEN 8 ELSE 34 END";

thread_local! {
    /// Set while the extension itself creates or drops audit triggers
    /// (enable_audit, disable_audit, a partition joining an audited table):
    /// the DDL watch (`_audit_ddl`) then has nothing to report.
    static OWN_DDL: Cell<bool> = const { Cell::new(false) };
}

fn own_ddl<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            OWN_DDL.with(|o| o.set(self.0));
        }
    }
    let _reset = Reset(OWN_DDL.with(|o| o.replace(true)));
    db::as_extension_owner(f)
}

fn checked_table(tbl: Option<PgRelation>, what: &str) -> (pg_sys::Oid, String) {
    let Some(rel) = tbl else {
        raise(FbError::new(fluxbase_core::Code::NullValue, format!("{what}: the table must not be null")));
    };
    let oid = rel.oid();
    let row = db::select(
        "SELECT c.relkind::text, n.nspname::text, c.oid::regclass::text,
                pg_catalog.has_table_privilege(c.oid, 'TRIGGER')
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = $1",
        &[oid.into()],
        |r| Ok((r.get::<String>(1)?, r.get::<String>(2)?, r.get::<String>(3)?, r.get::<bool>(4)?)),
    );
    let Some((Some(kind), Some(schema), Some(name), Some(may))) = row.into_iter().next() else {
        raise(FbError::not_found(format!("{what}: no such table")));
    };
    if kind != "r" && kind != "p" {
        raise(FbError::invalid(format!("{what}: {name} is not a table")));
    }
    if matches!(schema.as_str(), "pg_catalog" | "information_schema" | "pg_toast" | "dashboard_auth")
        || schema.starts_with("pg_temp")
    {
        raise(FbError::invalid(format!("{what}: {name} is a system or extension table")));
    }
    if !may {
        raise(FbError::denied(format!("{what}: permission denied on {name} (TRIGGER privilege needed)")));
    }
    (oid, name)
}

/// The table and, when it is partitioned, every partition below it (as
/// regclass text, which quotes what needs quoting).
fn partition_tree(oid: pg_sys::Oid) -> Vec<(pg_sys::Oid, String)> {
    db::select(
        "SELECT t.oid, t.oid::regclass::text FROM (
             SELECT $1::oid AS oid, 0 AS level
             UNION SELECT relid, level FROM pg_catalog.pg_partition_tree($1::regclass)) t
          JOIN pg_catalog.pg_class c ON c.oid = t.oid AND c.relkind IN ('r', 'p')
          GROUP BY t.oid ORDER BY min(t.level), t.oid",
        &[oid.into()],
        |r| Ok((r.get::<pg_sys::Oid>(1)?.unwrap_or_default(), r.get::<String>(2)?.unwrap_or_default())),
    )
}

/// Drop those of our triggers the table has (no NOTICE for missing ones).
fn drop_audit_triggers(oid: pg_sys::Oid, name: &str) -> bool {
    let existing = db::select(
        "SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1
            AND tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del', 'fluxbase_audit_trn')",
        &[oid.into()],
        |r| r.get::<String>(1),
    );
    let had = !existing.is_empty();
    for trg in existing.into_iter().flatten() {
        // trg is one of our constant names
        db::execute(&format!("DROP TRIGGER {trg} ON {name}"), &[]);
    }
    had
}

/// (Re)create our triggers on one table; `args` are the trigger arguments
/// (the redacted columns), each already a quoted literal.
fn create_audit_triggers(oid: pg_sys::Oid, name: &str, args: &str) {
    drop_audit_triggers(oid, name);
    for (trg, event, referencing) in TRIGGERS {
        db::execute(
            &format!(
                "CREATE TRIGGER {trg} {event} ON {name} {referencing} \
                 FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_row_change({args})"
            ),
            &[],
        );
    }
}

/// The redacted column names, checked (each a column of the table, no
/// NULL, no duplicates), and as the quoted literals of the trigger arguments.
fn redact_columns(oid: pg_sys::Oid, name: &str, redact: Option<Vec<Option<String>>>) -> (Vec<String>, String) {
    let mut names: Vec<String> = Vec::new();
    for c in redact.unwrap_or_default() {
        let Some(c) = c else {
            raise(FbError::invalid("enable_audit: redact must not contain NULL"));
        };
        let exists = db::one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2
                               AND attnum > 0 AND NOT attisdropped)",
            &[oid.into(), c.as_str().into()],
        )
        .unwrap_or(false);
        if !exists {
            raise(FbError::invalid(format!("enable_audit: {name} has no column {c:?} to redact")));
        }
        if !names.contains(&c) {
            names.push(c);
        }
    }
    let args = quoted_args(&names);
    (names, args)
}

/// Column names as the trigger arguments' text: quoted literals, comma-separated.
fn quoted_args(names: &[String]) -> String {
    db::one::<String>(
        "SELECT pg_catalog.string_agg(pg_catalog.quote_literal(c), ', ' ORDER BY o)
           FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY u(c, o)",
        &[names.to_vec().into()],
    )
    .unwrap_or_default()
}

fn enable(tbl: Option<PgRelation>, redact: Option<Vec<Option<String>>>) -> bool {
    crate::runtime::actor::writer("enabling audit on a table");
    let (oid, name) = checked_table(tbl, "enable_audit");
    let (redacted, args) = redact_columns(oid, &name, redact);
    let tree = partition_tree(oid);
    own_ddl(|| {
        for (member, member_name) in &tree {
            create_audit_triggers(*member, member_name, &args);
        }
    });
    let mut details = json!({"relid": oid.to_u32()});
    if !redacted.is_empty() {
        details["redact"] = json!(redacted);
    }
    if tree.len() > 1 {
        details["partitions"] = json!(tree.iter().skip(1).map(|(_, n)| n).collect::<Vec<_>>());
    }
    audit::record(audit::Event::new("audit.enable", "table", &name).details(details));
    true
}

#[pg_schema]
pub mod dashboard {
    use super::*;

    /// 0.2.0's enable_audit(regclass), kept for databases not yet updated
    /// (docs/RELEASING.md): the same as enable_audit(tbl) now.
    #[pg_extern(sql = false)]
    pub fn enable_audit(tbl: Option<PgRelation>) -> bool {
        enable(tbl, None)
    }

    /// Put the audit triggers on a user table (and every partition of a
    /// partitioned one; partitions created or attached later get them from
    /// the DDL watch). Columns named in `redact` are recorded as changed or
    /// not, never their values.
    #[pg_extern(name = "enable_audit")]
    #[search_path(pg_catalog, pg_temp)]
    pub fn enable_audit_redacting(tbl: Option<PgRelation>, redact: default!(Option<Vec<Option<String>>>, "NULL")) -> bool {
        enable(tbl, redact)
    }

    /// Remove them again (from every partition too); false when the table
    /// was not audited.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn disable_audit(tbl: Option<PgRelation>) -> bool {
        crate::runtime::actor::writer("disabling audit on a table");
        crate::runtime::hooks::require_recent_auth(fluxbase_core::stepup::Action::DisableAudit);
        let (oid, name) = checked_table(tbl, "disable_audit");
        let tree = partition_tree(oid);
        let had = own_ddl(|| tree.iter().fold(false, |had, (member, n)| drop_audit_triggers(*member, n) || had));
        if had {
            audit::record(audit::Event::new("audit.disable", "table", &name).details(json!({"relid": oid.to_u32()})));
        }
        had
    }

    /// The user tables with working audit triggers on them: a trigger that
    /// was disabled or replaced does not count (the table shows as not
    /// audited for that operation until enable_audit puts it back).
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn audited_tables() -> TableIterator<'static, (name!(table_name, String), name!(operations, Vec<String>))> {
        crate::runtime::actor::reader();
        let rows = db::select(
            &"SELECT t.tgrelid::regclass::text,
                    array_agg(CASE t.tgname WHEN 'fluxbase_audit_ins' THEN 'INSERT'
                                            WHEN 'fluxbase_audit_upd' THEN 'UPDATE'
                                            WHEN 'fluxbase_audit_del' THEN 'DELETE' ELSE 'TRUNCATE' END
                              ORDER BY CASE t.tgname WHEN 'fluxbase_audit_ins' THEN 1
                                                     WHEN 'fluxbase_audit_upd' THEN 2
                                                     WHEN 'fluxbase_audit_del' THEN 3 ELSE 4 END)
               FROM pg_catalog.pg_trigger t
               JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE t.tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del', 'fluxbase_audit_trn')
                AND (WORKING_TRIGGER)
                AND n.nspname <> 'dashboard_auth'
              GROUP BY t.tgrelid
              ORDER BY 1"
                .replace("WORKING_TRIGGER", WORKING_TRIGGER)[..],
            &[],
            |r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<Vec<String>>(2)?.unwrap_or_default())),
        );
        TableIterator::new(rows)
    }
}

// ---------------------------------------------------------------------------
// The DDL watch: event triggers (sql/audit_triggers.sql) call this after
// every ALTER TABLE, CREATE TABLE, CREATE TRIGGER and DROP TRIGGER.

/// What a trigger's tgargs hold: its arguments, NUL-terminated one after another.
fn trigger_args(tgargs: &[u8]) -> Vec<String> {
    tgargs.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// A table the DDL touched: partitions of an audited table that lack the
/// audit triggers get them (with the same redacted columns); audit triggers
/// found disabled or replaced are recorded as `audit.bypass`.
fn watch_table(relid: pg_sys::Oid, add_partitions: bool, record: bool) {
    for (member, name) in partition_tree(relid) {
        // the nearest audited ancestor, when the member has no trigger of its own
        let inherit = db::select(
            "SELECT a.relid::regclass::text, t.tgargs FROM pg_catalog.pg_partition_ancestors($1::regclass) WITH ORDINALITY a(relid, o)
               JOIN pg_catalog.pg_trigger t ON t.tgrelid = a.relid AND t.tgname = 'fluxbase_audit_ins'
              WHERE a.relid <> $1::regclass
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger m WHERE m.tgrelid = $1
                                   AND m.tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del', 'fluxbase_audit_trn'))
              ORDER BY a.o LIMIT 1",
            &[member.into()],
            |r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<Vec<u8>>(2)?.unwrap_or_default())),
        );
        if let Some((parent, tgargs)) = inherit.into_iter().next().filter(|_| add_partitions) {
            let redact = trigger_args(&tgargs);
            let args = quoted_args(&redact);
            own_ddl(|| create_audit_triggers(member, &name, &args));
            audit::record(
                audit::Event::new("audit.enable", "table", &name)
                    .details(json!({"relid": member.to_u32(), "partition_of": parent, "redact": redact})),
            );
            continue;
        }
        if !record {
            continue;
        }
        let broken = db::select(
            &"SELECT t.tgname::text, CASE WHEN t.tgenabled = 'D' THEN 'disabled' ELSE 'replaced' END
               FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid = $1
                AND t.tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del', 'fluxbase_audit_trn')
                AND NOT (WORKING_TRIGGER)
              ORDER BY 1"
                .replace("WORKING_TRIGGER", WORKING_TRIGGER)[..],
            &[member.into()],
            |r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<String>(2)?.unwrap_or_default())),
        );
        for (trigger, change) in broken {
            record_bypass(&name, &trigger, &change);
        }
    }
}

fn record_bypass(table: &str, trigger: &str, change: &str) {
    audit::record(
        audit::Event::new("audit.bypass", "table", table)
            .details(json!({"trigger": trigger, "change": change}))
            .failed(),
    );
}

/// Called by the event triggers fluxbase_audit_ddl (ddl_command_end) and
/// fluxbase_audit_drop (sql_drop); see sql/audit_triggers.sql.
#[pg_extern(schema = "dashboard_auth")]
#[search_path(pg_catalog, pg_temp)]
pub fn _audit_ddl(event: &str) {
    if unsafe { pg_sys::creating_extension } || OWN_DDL.with(|o| o.get()) {
        return;
    }
    // A rewrite of an audited table's rows by DDL (ALTER COLUMN ... TYPE ...
    // USING, issue 28) is a change of its rows: recorded, whoever makes it.
    if event == "table_rewrite" {
        record_rewrite();
        return;
    }
    // A superuser can do anything, disabling triggers included (and a
    // data-only restore, `pg_dump --disable-triggers`, does just that before
    // the audit log itself is restored): bypasses are recorded for everyone else.
    let record = !unsafe { pg_sys::superuser_arg(pg_sys::GetSessionUserId()) };
    if event == "sql_drop" {
        if !record {
            return;
        }
        // Our triggers dropped by name (DROP TRIGGER), or with their table
        // (DROP TABLE, DROP SCHEMA ... CASCADE, DROP OWNED: issue 28).
        let dropped = db::select(
            "SELECT pg_catalog.format('%I.%I', d.address_names[1], d.address_names[2]),
                    pg_catalog.string_agg(d.address_names[3], ',' ORDER BY d.address_names[3]),
                    pg_catalog.bool_and(d.original)
               FROM pg_catalog.pg_event_trigger_dropped_objects() d
              WHERE d.object_type = 'trigger'
                AND d.address_names[3] IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del', 'fluxbase_audit_trn')
              GROUP BY 1 ORDER BY 1",
            &[],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<bool>(3)?.unwrap_or(true),
                ))
            },
        );
        for (table, triggers, original) in dropped {
            if original {
                for trigger in triggers.split(',') {
                    record_bypass(&table, trigger, "dropped");
                }
            } else {
                audit::record(
                    audit::Event::new("audit.bypass", "table", &table)
                        .details(json!({"change": "table dropped", "triggers": triggers.split(',').collect::<Vec<_>>()}))
                        .failed(),
                );
            }
        }
        return;
    }
    if record {
        record_renames();
    }
    // (table, the command was on the table itself): partitions created or
    // attached get the triggers; a CREATE TRIGGER does not add them (a
    // schema restore creates each partition's triggers itself, after the
    // parent's)
    let tables = db::select(
        "SELECT CASE WHEN c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN c.objid
                     ELSE (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = c.objid) END,
                pg_catalog.bool_or(c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass)
           FROM pg_catalog.pg_event_trigger_ddl_commands() c
          WHERE c.classid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_trigger'::pg_catalog.regclass)
            AND c.object_type IN ('table', 'trigger')
          GROUP BY 1",
        &[],
        |r| Ok((r.get::<pg_sys::Oid>(1)?, r.get::<bool>(2)?.unwrap_or(false))),
    );
    for (relid, on_table) in tables {
        let Some(relid) = relid else { continue };
        let exists = db::one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = $1 AND relkind IN ('r', 'p'))",
            &[relid.into()],
        );
        if exists == Some(true) {
            watch_table(relid, on_table, record);
        }
    }
}

/// `row.rewrite`: the table being rewritten (table_rewrite event) is audited;
/// its rows are counted before the rewrite (row_json::count_rows, no user
/// code), and the statement is kept, since its USING expression is what
/// changed them.
fn record_rewrite() {
    let Some((relid, reason)) = db::select(
        "SELECT pg_catalog.pg_event_trigger_table_rewrite_oid(), pg_catalog.pg_event_trigger_table_rewrite_reason()",
        &[],
        |r| Ok((r.get::<pg_sys::Oid>(1)?, r.get::<i32>(2)?)),
    )
    .into_iter()
    .next()
    .and_then(|(o, r)| Some((o?, r.unwrap_or(0)))) else {
        return;
    };
    let audited = db::one::<String>(
        "SELECT n.nspname::text || '.' || c.relname::text
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = $1 AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid
                AND t.tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del', 'fluxbase_audit_trn'))",
        &[relid.into()],
    );
    let Some(target) = audited else { return };
    // (locked ACCESS EXCLUSIVE by the ALTER; a plain scan, no user code)
    let rel = unsafe { PgRelation::with_lock(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) };
    let count = unsafe { crate::audit::row_json::count_rows(rel.as_ptr()) };
    drop(rel);
    let statement: String = unsafe {
        let q = pg_sys::debug_query_string;
        if q.is_null() { String::new() } else { std::ffi::CStr::from_ptr(q).to_string_lossy().chars().take(2000).collect() }
    };
    let details = json!({
        "table": target, "op": "ALTER TABLE", "count": count, "reason": reason,
        // (this runs in the SECURITY DEFINER event trigger: the role the
        // statement ran as is the outer one)
        "statement": statement, "current_user": user_name(unsafe { pg_sys::GetOuterUserId() }),
    });
    let mut ev = audit::Event::new("row.rewrite", "table", &target).details(details);
    if let Some(s) = impersonation_session() {
        ev = ev.impersonation(s);
    }
    audit::record(ev);
}

/// `audit.bypass` for an audited table renamed or moved to another schema
/// (ALTER TABLE ... RENAME TO / SET SCHEMA, issue 28): its name, which its
/// entries are found by, now points elsewhere (a swap puts another table in
/// its place). Read from the collected commands' parse trees: the catalog
/// alone does not tell a rename from any other ALTER TABLE.
fn record_renames() {
    let commands = db::select(
        "SELECT c.objid, c.command FROM pg_catalog.pg_event_trigger_ddl_commands() c
          WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.object_type = 'table'
            AND c.command_tag = 'ALTER TABLE'",
        &[],
        |r| Ok((r.get::<pg_sys::Oid>(1)?, r.get::<DdlCommand>(2)?.map(|c| c.0))),
    );
    for (relid, command) in commands {
        let (Some(relid), Some(command)) = (relid, command) else { continue };
        // SAFETY: a pg_ddl_command is a pointer to the CollectedCommand the
        // event trigger state keeps while the event trigger runs.
        let renamed = unsafe {
            let cmd = command.cast_mut_ptr::<pg_sys::CollectedCommand>();
            if cmd.is_null() || (*cmd).type_ != pg_sys::CollectedCommandType::SCT_Simple || (*cmd).parsetree.is_null() {
                None
            } else {
                let tree = (*cmd).parsetree;
                if (*tree).type_ == pg_sys::NodeTag::T_RenameStmt {
                    let st = tree.cast::<pg_sys::RenameStmt>();
                    ((*st).renameType == pg_sys::ObjectType::OBJECT_TABLE).then(|| ("renamed", range_var_name((*st).relation)))
                } else if (*tree).type_ == pg_sys::NodeTag::T_AlterObjectSchemaStmt {
                    let st = tree.cast::<pg_sys::AlterObjectSchemaStmt>();
                    ((*st).objectType == pg_sys::ObjectType::OBJECT_TABLE).then(|| ("moved", range_var_name((*st).relation)))
                } else {
                    None
                }
            }
        };
        let Some((change, from)) = renamed else { continue };
        let now = db::one::<String>(
            "SELECT n.nspname::text || '.' || c.relname::text
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = $1 AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid
                    AND t.tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del', 'fluxbase_audit_trn'))",
            &[relid.into()],
        );
        let Some(now) = now else { continue };
        // the old name: as written, qualified with the schema when it was not
        let schema_of_now = now.split_once('.').map(|(s, _)| s.to_string()).unwrap_or_default();
        let from = match from {
            (Some(schema), rel) => format!("{schema}.{rel}"),
            (None, rel) if change == "renamed" => format!("{schema_of_now}.{rel}"),
            (None, rel) => rel,
        };
        audit::record(
            audit::Event::new("audit.bypass", "table", &from)
                .details(json!({"change": change, "from": from, "to": now, "relid": relid.to_u32()}))
                .failed(),
        );
    }
}

/// A `pg_ddl_command` as it comes from SPI: the raw pointer datum (the type
/// has no SQL-level form to convert through).
struct DdlCommand(pg_sys::Datum);

impl FromDatum for DdlCommand {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        (!is_null).then_some(DdlCommand(datum))
    }
}

impl IntoDatum for DdlCommand {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::PG_DDL_COMMANDOID
    }
}

/// (schema as written, if any; relation name) of a RangeVar.
unsafe fn range_var_name(rv: *mut pg_sys::RangeVar) -> (Option<String>, String) {
    if rv.is_null() {
        return (None, String::new());
    }
    let text = |p: *mut std::ffi::c_char| (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
    (text((*rv).schemaname), text((*rv).relname).unwrap_or_default())
}

extension_sql_file!(
    "../../sql/audit_triggers.sql",
    name = "audit_triggers_install",
    requires = [
        "audit_schema",
        "sessions_schema",
        "settings_schema",
        dashboard_auth::_audit_chain,
        dashboard_auth::_audit_guard,
        dashboard_auth::_audit_row_change,
        _audit_ddl
    ]
);
