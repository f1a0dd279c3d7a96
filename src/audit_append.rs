//! Appending to the audit chain at commit.
//!
//! Audit entries are collected in backend memory while a transaction runs and
//! appended to dashboard_auth.audit_log — each with its id and its place in
//! the hash chain — just before the transaction commits
//! (XACT_EVENT_PRE_COMMIT). The chain lock (an EXCLUSIVE lock on
//! audit_chain_head, which conflicts with no reader) is taken there, so it is
//! held from that append to the end of the commit: concurrent writers queue
//! for the append only, never for each other's whole transactions (a
//! DBA's open transaction no longer holds up every login).
//!
//! Semantics stay those of an INSERT in the transaction: entries of an
//! aborted transaction or rolled-back savepoint are dropped, a failure to
//! append fails the COMMIT (nothing of the transaction is kept without its
//! audit entries), PREPARE TRANSACTION appends before preparing. What
//! changes: the entries are visible once the transaction commits, not before.
//! A transaction that queues more than EARLY_APPEND_BYTES appends what it has
//! at once (outside savepoints) and from then on holds the chain lock to its
//! end, as before.
//!
//! Every route into audit_log comes here: the API and the row-change trigger
//! through `queue`, a DBA's direct INSERT through the table's BEFORE INSERT
//! trigger (which queues the row and skips it; see audit_triggers.rs).
//!
//! The append reads the chain head with the latest snapshot (under the lock,
//! so it is the true head) and writes with it, so REPEATABLE READ
//! transactions append without serialization failures.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;

use fluxbase_core::chain::{self, ChainRecord};
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;

use crate::db;

/// What `queue` keeps of an entry besides the entry itself, to bound memory.
fn queued_size(r: &ChainRecord) -> usize {
    200 + r.details.len() + r.row_data.as_ref().map_or(0, Vec::len)
}

struct Queued {
    record: ChainRecord,
    subxact: pg_sys::SubTransactionId,
}

thread_local! {
    static QUEUE: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
    static QUEUED_BYTES: Cell<usize> = const { Cell::new(0) };
    /// Set while `append` inserts: the audit_log insert trigger lets these through.
    pub(crate) static APPENDING: Cell<bool> = const { Cell::new(false) };
}

/// Past this much queued, append at once (bounded memory for huge transactions).
const EARLY_APPEND_BYTES: usize = 16 << 20;

/// The fields every entry gets from the moment it is recorded.
pub fn now() -> i64 {
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// txid_current(): the top transaction's full id (assigned if it had none).
pub fn current_txid() -> i64 {
    unsafe { pg_sys::GetTopFullTransactionId().value as i64 }
}

/// Queue an entry for the append at commit. Its `id` is given there, and its
/// `details` (any JSON text) and `ip` (any inet text) are put there into the
/// form the verifier reads back (jsonb_out, inet_out) before it is hashed.
pub fn queue(record: ChainRecord) {
    let size = queued_size(&record);
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    QUEUE.with(|q| q.borrow_mut().push(Queued { record, subxact }));
    let total = QUEUED_BYTES.with(|b| {
        b.set(b.get() + size);
        b.get()
    });
    // Only at the top level: appended inside a savepoint, the entries queued
    // before it would be rolled back with it if it were.
    if total > EARLY_APPEND_BYTES && unsafe { pg_sys::GetCurrentTransactionNestLevel() } == 1 {
        append_queued();
    }
}

fn take_queue() -> Vec<Queued> {
    QUEUED_BYTES.with(|b| b.set(0));
    QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()))
}

/// Registered in `_PG_init`.
#[pg_guard]
pub unsafe extern "C-unwind" fn on_xact_event(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE => append_queued(),
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_COMMIT | XACT_EVENT_PREPARE => {
            take_queue();
        }
        _ => {}
    }
}

/// Registered in `_PG_init`: a rolled-back savepoint takes its entries (and
/// those of its own savepoints, which have larger ids) with it.
#[pg_guard]
pub unsafe extern "C-unwind" fn on_subxact_event(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        QUEUE.with(|q| q.borrow_mut().retain(|e| e.subxact < my_subid));
    }
}

/// Take the chain lock, to the end of the transaction (purge_audit takes it
/// too, so no append interleaves with a purge).
pub fn lock_chain() {
    unsafe {
        pg_sys::LockRelationOid(relation(c"audit_chain_head"), pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
    }
}

fn relation(name: &CStr) -> Oid {
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"dashboard_auth".as_ptr(), false);
        let oid = pg_sys::get_relname_relid(name.as_ptr(), nsp);
        if oid == pg_sys::InvalidOid {
            error!("fluxbase_admin: table dashboard_auth.{} is missing", name.to_string_lossy());
        }
        oid
    }
}

/// Append everything queued, in order.
pub fn append_queued() {
    let entries = take_queue();
    if entries.is_empty() {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            APPENDING.with(|a| a.set(false));
        }
    }
    APPENDING.with(|a| a.set(true));
    let _reset = Reset;
    // At commit the statement's snapshot is gone; the lookups on the way
    // (the extension's owner, plan revalidation) need one.
    let pushed = unsafe {
        if pg_sys::ActiveSnapshotSet() {
            false
        } else {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            true
        }
    };
    db::as_extension_owner(|| unsafe { append(entries.into_iter().map(|q| q.record)) });
    if pushed {
        unsafe { pg_sys::PopActiveSnapshot() };
    }
}

const HEAD_SQL: &CStr = c"SELECT last_id, last_hash FROM dashboard_auth.audit_chain_head";
const INSERT_SQL: &CStr = c"INSERT INTO dashboard_auth.audit_log
     (id, occurred_at, actor_id, actor, action, target_type, target_id, details, ip, success,
      db_user, txid, impersonation_session_id, row_data, prev_hash, row_hash)
     OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
/// The same for a database still at 0.1.0 (no row_data column): between
/// installing this library and `ALTER EXTENSION fluxbase_admin UPDATE`, the
/// library serves the old schema, and auditing must keep working.
const INSERT_SQL_0_1: &CStr = c"INSERT INTO dashboard_auth.audit_log
     (id, occurred_at, actor_id, actor, action, target_type, target_id, details, ip, success,
      db_user, txid, impersonation_session_id, prev_hash, row_hash)
     OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
const ADVANCE_SQL: &CStr = c"UPDATE dashboard_auth.audit_chain_head SET last_id = $1, last_hash = $2 WHERE singleton";
const START_SQL: &CStr = c"INSERT INTO dashboard_auth.audit_chain_head (last_id, last_hash) VALUES ($1, $2)";

thread_local! {
    // Saved SPI plans (revalidated by the plan cache when the tables change).
    static PLANS: RefCell<Vec<(&'static CStr, pg_sys::SPIPlanPtr)>> = const { RefCell::new(Vec::new()) };
}

unsafe fn plan(sql: &'static CStr, types: &[Oid]) -> pg_sys::SPIPlanPtr {
    if let Some(p) = PLANS.with(|p| p.borrow().iter().find(|(s, _)| *s == sql).map(|(_, p)| *p)) {
        return p;
    }
    let mut types = types.to_vec();
    let p = pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_mut_ptr());
    if p.is_null() || pg_sys::SPI_keepplan(p) != 0 {
        error!("fluxbase_admin: could not prepare the audit append");
    }
    PLANS.with(|v| v.borrow_mut().push((sql, p)));
    p
}

/// Run a saved plan under `snapshot`; returns SPI's result code.
unsafe fn run(plan: pg_sys::SPIPlanPtr, args: &[Option<Datum>], snapshot: pg_sys::Snapshot, read_only: bool) -> i32 {
    let mut values: Vec<Datum> = args.iter().map(|a| a.unwrap_or(Datum::from(0usize))).collect();
    let nulls: Vec<std::ffi::c_char> = args.iter().map(|a| if a.is_some() { b' ' } else { b'n' } as std::ffi::c_char).collect();
    let rc = pg_sys::SPI_execute_snapshot(
        plan,
        values.as_mut_ptr(),
        nulls.as_ptr(),
        snapshot,
        std::ptr::null_mut(),
        read_only,
        true,
        0,
    );
    if rc < 0 {
        error!("fluxbase_admin: the audit append failed (SPI code {rc})");
    }
    rc
}

unsafe fn append(records: impl Iterator<Item = ChainRecord>) {
    lock_chain();
    // Under the lock the latest committed head is the true one (a transaction
    // snapshot, in REPEATABLE READ, could be older).
    let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
    if pg_sys::SPI_connect() < 0 {
        error!("fluxbase_admin: SPI_connect failed");
    }
    run(plan(HEAD_SQL, &[]), &[], snapshot, true);
    let head = if pg_sys::SPI_processed > 0 {
        let t = *(*pg_sys::SPI_tuptable).vals;
        let desc = (*pg_sys::SPI_tuptable).tupdesc;
        let mut null = false;
        let id = pg_sys::SPI_getbinval(t, desc, 1, &mut null);
        let id = if null { None } else { Some(id.value() as i64) };
        let hash = pg_sys::SPI_getbinval(t, desc, 2, &mut null);
        let hash = if null { None } else { Vec::<u8>::from_datum(hash, false) };
        match (id, hash) {
            (Some(i), Some(h)) => Some((i, h)),
            _ => error!("fluxbase_admin: the audit chain head is damaged"),
        }
    } else {
        None
    };
    let had_head = head.is_some();
    let (mut last_id, mut last_hash) = head.unwrap_or((0, chain::GENESIS.to_vec()));

    let has_row_data = pg_sys::get_attnum(relation(c"audit_log"), c"row_data".as_ptr()) > 0;
    let mut types = vec![
        pg_sys::INT8OID,
        pg_sys::TIMESTAMPTZOID,
        pg_sys::UUIDOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::JSONBOID,
        pg_sys::INETOID,
        pg_sys::BOOLOID,
        pg_sys::TEXTOID,
        pg_sys::INT8OID,
        pg_sys::UUIDOID,
        pg_sys::BYTEAOID,
        pg_sys::BYTEAOID,
    ];
    if has_row_data {
        types.push(pg_sys::BYTEAOID);
    }
    let insert = plan(if has_row_data { INSERT_SQL } else { INSERT_SQL_0_1 }, &types);
    for mut rec in records {
        let id = last_id + 1;
        rec.id = id;
        if !has_row_data {
            // the 0.1.0 form: the rows as JSON in the details
            if let Some(data) = rec.row_data.take() {
                let mut details: serde_json::Value = serde_json::from_str(&rec.details).unwrap_or_default();
                let table = rec.target_id.clone().unwrap_or_default();
                details["rows"] = crate::row_capture::decode_rows(&data, &table).unwrap_or_default();
                rec.details = details.to_string();
            }
        }
        // The hash covers the values as stored and read back by the verifier:
        // jsonb_out of the jsonb, inet_out of the inet.
        let details = input(pg_sys::jsonb_in, &rec.details);
        rec.details = output(pg_sys::jsonb_out, details);
        let ip = rec.ip.as_deref().map(|ip| input(pg_sys::inet_in, ip));
        rec.ip = ip.map(|d| output(pg_sys::inet_out, d));
        let hash = chain::row_hash(&last_hash, &rec).to_vec();
        let uuid = |u: Option<[u8; 16]>| u.and_then(|b| pgrx::datum::Uuid::from_bytes(b).into_datum());
        let mut args = vec![
            id.into_datum(),
            Some(Datum::from(rec.occurred_at_us)),
            uuid(rec.actor_id),
            rec.actor.into_datum(),
            rec.action.into_datum(),
            rec.target_type.into_datum(),
            rec.target_id.into_datum(),
            Some(details),
            ip,
            rec.success.into_datum(),
            rec.db_user.into_datum(),
            rec.txid.into_datum(),
            uuid(rec.impersonation_session_id),
        ];
        if has_row_data {
            args.push(rec.row_data.into_datum());
        }
        args.push(last_hash.clone().into_datum());
        args.push(hash.clone().into_datum());
        run(insert, &args, snapshot, false);
        last_id = id;
        last_hash = hash;
    }
    let (sql, types) = if had_head { (ADVANCE_SQL, [pg_sys::INT8OID, pg_sys::BYTEAOID]) } else { (START_SQL, [pg_sys::INT8OID, pg_sys::BYTEAOID]) };
    run(plan(sql, &types), &[last_id.into_datum(), last_hash.into_datum()], snapshot, false);
    pg_sys::SPI_finish();
    pg_sys::UnregisterSnapshot(snapshot);
}

unsafe fn input(f: unsafe fn(pg_sys::FunctionCallInfo) -> Datum, text: &str) -> Datum {
    let c = std::ffi::CString::new(text.replace('\0', "")).unwrap_or_default();
    pgrx::direct_function_call_as_datum(f, &[Some(Datum::from(c.as_ptr()))]).expect("input functions do not return NULL")
}

unsafe fn output(f: unsafe fn(pg_sys::FunctionCallInfo) -> Datum, d: Datum) -> String {
    pgrx::direct_function_call::<&CStr>(f, &[Some(d)]).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default()
}
