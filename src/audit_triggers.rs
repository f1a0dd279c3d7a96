//! The audit triggers, written in Rust:
//!
//! * `_audit_chain` (BEFORE INSERT, per row, on audit_log): routes every
//!   INSERT that is not the extension's own commit-time append (a DBA's) into
//!   that append (audit_append.rs), so whatever route a row takes, it is chained.
//! * `_audit_guard` (BEFORE UPDATE/DELETE/TRUNCATE, per statement, on
//!   audit_log and audit_checkpoints): refuses them, also for the owner and
//!   superusers; only `purge_audit` may delete, through a backend-local flag.
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
use serde_json::{json, Value};

use crate::errors::raise;
use crate::{audit, db};

thread_local! {
    /// Set only while purge_audit deletes its prefix of the log.
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
            rec.occurred_at_us = crate::audit_append::now();
        }
        // (jsonb_out's text, but a DBA's row takes the round trip like any other)
        crate::audit_append::queue(rec, None);
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
        raise(
            FbError::denied(format!("dashboard_auth.{table} is append-only: {verb} is refused"))
                .with_hint("use dashboard_auth.purge_audit(older_than) to remove old entries"),
        )
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
            crate::row_capture::audited_table(td, &|schema, col| {
                (schema == "dashboard_auth" && chain::is_secret_column(col)) || redact.iter().any(|r| r == col)
            })
        };
        if table.own_table && in_api_context() {
            return Ok(None);
        }
        let (op, action) = match tr.op().map_err(|e| e.to_string())? {
            PgTriggerOperation::Insert => (row_image::Op::Insert, "row.insert"),
            PgTriggerOperation::Update => (row_image::Op::Update, "row.update"),
            PgTriggerOperation::Delete => (row_image::Op::Delete, "row.delete"),
            PgTriggerOperation::Truncate => return Ok(None),
        };
        // SAFETY: a statement-level AFTER trigger created by enable_audit (or
        // sql/audit_triggers.sql) with the transition tables its operation needs.
        let captured = unsafe { crate::row_capture::capture(td, &table, op, MAX_ROWS_PER_ENTRY) };
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
        let natts = (*tupdesc).natts as usize;
        let attrs = (*tupdesc).attrs.as_slice(natts);
        let attno = attrs.iter().position(|a| !a.attisdropped && pgrx::name_data_to_str(&a.attname) == column)? + 1;
        let datum = pgrx::heap_getattr_raw(td.tg_trigtuple, std::num::NonZeroUsize::new(attno)?, tupdesc)?;
        Some(crate::audit_append::output(out_fn, datum))
    }
}

fn current_user_name() -> String {
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetUserId(), true);
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    }
}

/// The impersonation session behind `request.jwt.claims`, when there is one
/// and it is well formed (it is only ever informational here).
pub fn impersonation_session() -> Option<Uuid> {
    let raw = unsafe {
        let p = pg_sys::GetConfigOption(c"request.jwt.claims".as_ptr(), true, false);
        if p.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    };
    let v: Value = serde_json::from_str(&raw).ok()?;
    let s = v.get("session_id")?.as_str()?;
    fluxbase_core::parse_uuid(s).map(Uuid::from_bytes)
}

// ---------------------------------------------------------------------------
// enable_audit / disable_audit / audited_tables

const TRIGGERS: [(&str, &str, &str); 3] = [
    ("fluxbase_audit_ins", "INSERT", "REFERENCING NEW TABLE AS fb_new"),
    ("fluxbase_audit_upd", "UPDATE", "REFERENCING OLD TABLE AS fb_old NEW TABLE AS fb_new"),
    ("fluxbase_audit_del", "DELETE", "REFERENCING OLD TABLE AS fb_old"),
];

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

/// Drop those of our triggers the table has (no NOTICE for missing ones).
fn drop_audit_triggers(oid: pg_sys::Oid, name: &str) {
    let existing = db::select(
        "SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1
            AND tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del')",
        &[oid.into()],
        |r| r.get::<String>(1),
    );
    for trg in existing.into_iter().flatten() {
        // trg is one of our three constant names
        db::execute(&format!("DROP TRIGGER {trg} ON {name}"), &[]);
    }
}

#[pg_schema]
pub mod dashboard {
    use super::*;

    /// Put the row-change audit trigger on a user table.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn enable_audit(tbl: Option<PgRelation>) -> bool {
        crate::actor::writer("enabling audit on a table");
        let (oid, name) = checked_table(tbl, "enable_audit");
        db::as_extension_owner(|| {
            drop_audit_triggers(oid, &name);
            for (trg, event, referencing) in TRIGGERS {
                db::execute(
                    &format!(
                        "CREATE TRIGGER {trg} AFTER {event} ON {name} {referencing} \
                         FOR EACH STATEMENT EXECUTE FUNCTION dashboard_auth._audit_row_change()"
                    ),
                    &[],
                );
            }
        });
        audit::record(audit::Event::new("audit.enable", "table", &name).details(json!({"relid": oid.to_u32()})));
        true
    }

    /// Remove it again; false when the table was not audited.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn disable_audit(tbl: Option<PgRelation>) -> bool {
        crate::actor::writer("disabling audit on a table");
        crate::stepup::require_recent_auth(fluxbase_core::stepup::Action::DisableAudit);
        let (oid, name) = checked_table(tbl, "disable_audit");
        let had = db::one::<i64>(
            "SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname LIKE 'fluxbase\\_audit\\_%'",
            &[oid.into()],
        )
        .unwrap_or(0)
            > 0;
        db::as_extension_owner(|| drop_audit_triggers(oid, &name));
        if had {
            audit::record(audit::Event::new("audit.disable", "table", &name).details(json!({"relid": oid.to_u32()})));
        }
        had
    }

    /// The user tables with the audit trigger on them.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn audited_tables() -> TableIterator<'static, (name!(table_name, String), name!(operations, Vec<String>))> {
        crate::actor::reader();
        let rows = db::select(
            "SELECT t.tgrelid::regclass::text,
                    array_agg(CASE t.tgname WHEN 'fluxbase_audit_ins' THEN 'INSERT'
                                            WHEN 'fluxbase_audit_upd' THEN 'UPDATE' ELSE 'DELETE' END
                              ORDER BY CASE t.tgname WHEN 'fluxbase_audit_ins' THEN 1
                                                     WHEN 'fluxbase_audit_upd' THEN 2 ELSE 3 END)
               FROM pg_catalog.pg_trigger t
               JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE t.tgname IN ('fluxbase_audit_ins', 'fluxbase_audit_upd', 'fluxbase_audit_del')
                AND n.nspname <> 'dashboard_auth'
              GROUP BY t.tgrelid
              ORDER BY 1",
            &[],
            |r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<Vec<String>>(2)?.unwrap_or_default())),
        );
        TableIterator::new(rows)
    }
}

extension_sql_file!(
    "../sql/audit_triggers.sql",
    name = "audit_triggers_install",
    requires = [
        "audit_schema",
        "sessions_schema",
        "settings_schema",
        dashboard_auth::_audit_chain,
        dashboard_auth::_audit_guard,
        dashboard_auth::_audit_row_change
    ]
);
