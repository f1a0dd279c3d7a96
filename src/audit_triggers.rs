//! The audit triggers, written in Rust:
//!
//! * `_audit_chain` (BEFORE INSERT, per row, on audit_log): assigns the row's
//!   id and its place in the hash chain under a lock on the one-row chain head,
//!   so every route that inserts (the API, a DBA's INSERT) is chained.
//! * `_audit_guard` (BEFORE UPDATE/DELETE/TRUNCATE, per statement, on
//!   audit_log and audit_checkpoints): refuses them, also for the owner and
//!   superusers; only `purge_audit` may delete, through a backend-local flag.
//! * `_audit_row_change` (AFTER INSERT/UPDATE/DELETE, per statement, with
//!   transition tables): one audit row per statement holding every changed row,
//!   on the extension's own tables and on any table given to
//!   `dashboard.enable_audit`.
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
use fluxbase_core::FbError;
use pgrx::datum::{TimestampWithTimeZone, Uuid};
use pgrx::PgRelation;
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::json::JsonArg;
use crate::errors::{raise, OrRaise};
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

// ---------------------------------------------------------------------------
// Saved SPI plans for the statements of the audit path (they run for every
// audited statement; parsing and planning them each time would cost more than
// running them). Plans reading a table's transition tables depend on its row
// type, so any relcache invalidation of a table drops its plans.

thread_local! {
    static PLANS: std::cell::RefCell<std::collections::HashMap<String, pgrx::spi::OwnedPreparedStatement>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
    static STALE: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    static ALL_STALE: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_inval(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // Only note it here: freeing plans inside an invalidation callback is not safe.
    if relid == pg_sys::InvalidOid {
        ALL_STALE.with(|a| a.set(true));
    } else {
        STALE.with(|s| s.borrow_mut().push(relid.to_u32()));
    }
}

fn drop_stale_plans() {
    if !CALLBACK_REGISTERED.with(|c| c.replace(true)) {
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_inval), pg_sys::Datum::from(0)) };
    }
    let all = ALL_STALE.with(|a| a.replace(false));
    let stale: Vec<u32> = STALE.with(|s| std::mem::take(&mut *s.borrow_mut()));
    if !all && stale.is_empty() {
        return;
    }
    PLANS.with(|p| {
        p.borrow_mut().retain(|k, _| {
            let Some(rest) = k.strip_prefix("rows:") else { return true };
            let relid: u32 = rest.split(':').next().and_then(|x| x.parse().ok()).unwrap_or(0);
            !all && !stale.contains(&relid)
        })
    });
}

/// Run `f` with the saved plan for `key`, preparing (and saving) it first if
/// needed. The plan is taken out of the map while it runs, so a nested use
/// (the chain trigger under the row-change trigger) never sees it borrowed.
pub(crate) fn with_plan<'conn, R>(
    c: &mut pgrx::spi::SpiClient<'conn>,
    key: String,
    sql: &str,
    arg_types: &[pg_sys::Oid],
    f: impl FnOnce(&mut pgrx::spi::SpiClient<'conn>, &pgrx::spi::OwnedPreparedStatement) -> pgrx::spi::SpiResult<R>,
) -> pgrx::spi::SpiResult<R> {
    drop_stale_plans();
    let plan = match PLANS.with(|p| p.borrow_mut().remove(&key)) {
        Some(plan) => plan,
        None => {
            let types: Vec<pgrx::PgOid> = arg_types.iter().map(|o| pgrx::PgOid::from(*o)).collect();
            c.prepare_mut(sql, &types)?.keep()
        }
    };
    let result = f(c, &plan);
    PLANS.with(|p| p.borrow_mut().insert(key, plan));
    result
}

/// The primary key columns of a table, in key order.
fn primary_key_columns(c: &mut pgrx::spi::SpiClient<'_>, relid: pg_sys::Oid) -> pgrx::spi::SpiResult<Vec<String>> {
    with_plan(
        c,
        "pk_columns".into(),
        "SELECT coalesce(array_agg(a.attname::text ORDER BY k.ord), '{}')
           FROM pg_catalog.pg_index i
           CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1 AND i.indisprimary",
        &[pg_sys::OIDOID],
        |c, plan| Ok(c.select(plan, Some(1), &[relid.into()])?.first().get_one::<Vec<String>>()?.unwrap_or_default()),
    )
}

/// INSERT/DELETE: build the same details document as `row_change_details`
/// in SQL and append it to the audit log in the same statement. Returns None
/// when the statement touched no row.
#[allow(clippy::too_many_arguments)]
fn record_in_sql(
    relid: pg_sys::Oid,
    op: &str,
    action: &'static str,
    schema: &str,
    table: &str,
    old_name: &Option<String>,
    new_name: &Option<String>,
    tdata: *mut pg_sys::TriggerData,
) -> Option<()> {
    let (rows_table, side) = match op {
        "INSERT" => (new_name.as_ref()?, "new"),
        _ => (old_name.as_ref()?, "old"),
    };
    let actor = crate::actor::current();
    let target = format!("{schema}.{table}");
    let who = current_user_name();
    let imp = impersonation_session();
    let inserted = db::as_extension_owner(|| {
        Spi::connect_mut(|c| {
            let rc = unsafe { pg_sys::SPI_register_trigger_data(tdata) };
            if rc < 0 {
                raise(FbError::new(fluxbase_core::Code::WrongState, "could not read the trigger's transition tables"));
            }
            let pk = primary_key_columns(c, relid)?;
            let pk_expr = pk
                .iter()
                .map(|col| format!("{}, t.{}", quote_literal(col), quote_ident(col)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO dashboard_auth.audit_log
                     (actor_id, actor, action, target_type, target_id, details, impersonation_session_id)
                 SELECT $1, $2, $3, 'table', $4,
                        jsonb_build_object('table', $4, 'op', $5, 'pk_columns', to_jsonb($6::text[]), 'count', c.n,
                                           'current_user', $7,
                                           'rows', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                                        'pk', jsonb_build_object({pk_expr}), '{side}', to_jsonb(t))), '[]')
                                                      FROM (SELECT * FROM {rows_table} LIMIT {MAX_ROWS_PER_ENTRY}) t))
                        || CASE WHEN c.n > {MAX_ROWS_PER_ENTRY} THEN '{{\"truncated\": true}}'::jsonb ELSE '{{}}'::jsonb END,
                        $8
                   FROM (SELECT count(*) AS n FROM {rows_table}) c
                  WHERE c.n > 0"
            );
            let key = format!("rows:{}:fast:{op}:{}", relid.to_u32(), sql.len());
            with_plan(
                c,
                key,
                &sql,
                &[
                    pg_sys::UUIDOID,
                    pg_sys::TEXTOID,
                    pg_sys::TEXTOID,
                    pg_sys::TEXTOID,
                    pg_sys::TEXTOID,
                    pg_sys::TEXTARRAYOID,
                    pg_sys::TEXTOID,
                    pg_sys::UUIDOID,
                ],
                |c, plan| {
                    c.update(
                        plan,
                        None,
                        &[
                            actor.id().into(),
                            actor.label().into(),
                            action.into(),
                            target.clone().into(),
                            op.into(),
                            pk.clone().into(),
                            who.clone().into(),
                            imp.into(),
                        ],
                    )
                    .map(|t| t.len())
                },
            )
        })
        .or_raise()
    });
    (inserted > 0).then_some(())
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[pg_schema]
pub mod dashboard_auth {
    use super::*;

    /// BEFORE INSERT FOR EACH ROW on audit_log: place the row in the chain.
    #[pg_trigger]
    pub fn _audit_chain<'a>(tr: &'a PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, String> {
        let mut new = tr.new().ok_or("_audit_chain must be a BEFORE INSERT row trigger")?.into_owned();
        db::as_extension_owner(|| {
            // The lock that serializes appends; held to the end of the transaction,
            // so the next appender reads this row's hash once it is committed.
            let (last_id, last_hash) = Spi::connect_mut(|c| {
                with_plan(
                    c,
                    "chain_lock".into(),
                    crate::audit::CHAIN_LOCK_SQL,
                    &[],
                    |c, plan| c.update(plan, None, &[])?.first().get_two::<i64, Vec<u8>>(),
                )
            })
            .or_raise();
            let (Some(last_id), Some(prev)) = (last_id, last_hash) else {
                raise(FbError::new(fluxbase_core::Code::WrongState, "the audit chain head is missing"));
            };
            let id = last_id + 1;
            new.set_by_name("id", id).map_err(|e| e.to_string())?;
            new.set_by_name("prev_hash", prev.clone()).map_err(|e| e.to_string())?;
            let mut rec = chain_record!(&new)?;
            rec.ip = output_text_of_new(tr, "ip", pg_sys::inet_out);
            rec.details = output_text_of_new(tr, "details", pg_sys::jsonb_out).unwrap_or_default();
            let hash = chain::row_hash(&prev, &rec).to_vec();
            new.set_by_name("row_hash", hash.clone()).map_err(|e| e.to_string())?;
            Spi::connect_mut(|c| {
                with_plan(
                    c,
                    "chain_advance".into(),
                    "UPDATE dashboard_auth.audit_chain_head SET last_id = $1, last_hash = $2 WHERE singleton",
                    &[pg_sys::INT8OID, pg_sys::BYTEAOID],
                    |c, plan| c.update(plan, None, &[id.into(), hash.clone().into()]).map(|_| ()),
                )
            })
            .or_raise();
            Ok(Some(new))
        })
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
        let schema = tr.table_schema().map_err(|e| e.to_string())?;
        let table = tr.table_name().map_err(|e| e.to_string())?;
        let own_table = schema == "dashboard_auth";
        if own_table && in_api_context() {
            return Ok(None);
        }
        let (op, action) = match tr.op().map_err(|e| e.to_string())? {
            PgTriggerOperation::Insert => ("INSERT", "row.insert"),
            PgTriggerOperation::Update => ("UPDATE", "row.update"),
            PgTriggerOperation::Delete => ("DELETE", "row.delete"),
            PgTriggerOperation::Truncate => return Ok(None),
        };
        let old_name = tr.old_transition_table_name().map_err(|e| e.to_string())?.map(quote_ident);
        let new_name = tr.new_transition_table_name().map_err(|e| e.to_string())?.map(quote_ident);
        let relid = tr.relid().map_err(|e| e.to_string())?;
        let mut redact = tr.extra_args().map_err(|e| e.to_string())?;
        let tdata = tr.trigger_data() as *const pg_sys::TriggerData as *mut pg_sys::TriggerData;

        // Fast path for INSERT and DELETE on user tables (nothing to redact or
        // diff): the details document is built and inserted by one saved SQL
        // statement, without a JSON round trip through Rust.
        if !own_table && redact.is_empty() && op != "UPDATE" {
            if let Some(done) = record_in_sql(relid, op, action, &schema, &table, &old_name, &new_name, tdata) {
                let _ = done;
                return Ok(None);
            }
        }
        let agg = |name: &Option<String>| -> String {
            match name {
                Some(n) => format!(
                    "(SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb) FROM (SELECT * FROM {n} LIMIT {MAX_ROWS_PER_ENTRY}) t), (SELECT count(*) FROM {n})"
                ),
                None => "'[]'::jsonb, 0::bigint".to_string(),
            }
        };
        let query = format!(
            "SELECT {}, {}, \
               (SELECT coalesce(array_agg(a.attname::text ORDER BY k.ord), '{{}}') \
                  FROM pg_catalog.pg_index i \
                  CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = $1 AND i.indisprimary), \
               (SELECT coalesce(array_agg(a.attname::text), '{{}}') FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped)",
            agg(&old_name),
            agg(&new_name)
        );
        let key = format!("rows:{}:{op}:{}", relid.to_u32(), query.len());
        let (old_rows, old_count, new_rows, new_count, pk, columns) = Spi::connect_mut(|c| {
            let rc = unsafe { pg_sys::SPI_register_trigger_data(tdata) };
            if rc < 0 {
                raise(FbError::new(fluxbase_core::Code::WrongState, "could not read the trigger's transition tables"));
            }
            let t = with_plan(c, key, &query, &[pg_sys::OIDOID], |c, plan| {
                c.select(plan, Some(1), &[relid.into()]).map(|t| t.first())
            })?;
            Ok::<_, pgrx::spi::Error>((
                t.get::<JsonArg>(1)?,
                t.get::<i64>(2)?.unwrap_or(0),
                t.get::<JsonArg>(3)?,
                t.get::<i64>(4)?.unwrap_or(0),
                t.get::<Vec<String>>(5)?.unwrap_or_default(),
                t.get::<Vec<String>>(6)?.unwrap_or_default(),
            ))
        })
        .or_raise();
        let total = old_count.max(new_count);
        if total == 0 {
            return Ok(None);
        }
        if own_table {
            redact.extend(columns.into_iter().filter(|c| chain::is_secret_column(c)));
        }
        let as_vec = |j: Option<JsonArg>| match j.map(|j| j.into_value("the changed rows")) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let target = format!("{schema}.{table}");
        let mut details = chain::row_change_details(op, &target, &pk, &redact, &as_vec(old_rows), &as_vec(new_rows));
        details["count"] = json!(total);
        if total > MAX_ROWS_PER_ENTRY {
            details["truncated"] = json!(true);
        }
        details["current_user"] = json!(current_user_name());
        let mut ev = audit::Event::new(action, "table", target).details(details);
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
        let out = pgrx::direct_function_call::<&std::ffi::CStr>(out_fn, &[Some(datum)])?;
        Some(out.to_string_lossy().into_owned())
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
