//! Appending to the audit chain at commit.
//!
//! Audit entries are collected in backend memory while a transaction runs and
//! appended to dashboard_auth.audit_log — each with its id and its place in
//! the hash chain — just before the transaction commits
//! (XACT_EVENT_PRE_COMMIT). The chain lock (see `lock_chain`; it conflicts
//! with no reader) is taken there and held
//! until the commit is visible (XACT_EVENT_COMMIT, `release_chain_lock`):
//! concurrent writers queue for the append only, never for each other's
//! whole transactions (a DBA's open transaction no longer holds up every
//! login).
//!
//! Semantics stay those of an INSERT in the transaction: entries of an
//! aborted transaction or rolled-back savepoint are dropped, a failure to
//! append fails the COMMIT (nothing of the transaction is kept without its
//! audit entries), PREPARE TRANSACTION appends before preparing. What
//! changes: the entries are visible once the transaction commits, not before.
//! A transaction that queues more than SPILL_BYTES moves its queue to a
//! temporary file (a tuplestore, bounded memory) and goes on queueing; at
//! commit the file is read back and appended in chunks. No transaction ever
//! holds the chain lock before its commit: a huge transaction left open holds
//! up no login and no other audited commit (issue 17, item 4).
//!
//! Every route into audit_log comes here: the API and the row-change trigger
//! through `queue`, a DBA's direct INSERT through the table's BEFORE INSERT
//! trigger (which queues the row and skips it; see audit_triggers.rs).
//!
//! The append reads the chain head with the latest snapshot (under the lock,
//! so it is the true head), so REPEATABLE READ transactions append without
//! serialization failures. It writes audit_log and the head directly
//! (`direct_table::DirectTable`: constraints checked, every index maintained) rather than
//! through SQL statements, and does all it can before taking the lock
//! (`prepare`, `reserve_room`): the lock is what concurrent audited commits
//! queue for, so only the chain itself is done under it.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;

use fluxbase_core::chain::{self, ChainRecord};
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;

use crate::audit::direct_table::DirectTable;

/// What `queue` keeps of an entry besides the entry itself, to bound memory.
fn queued_size(r: &ChainRecord, details_value: &Option<serde_json::Value>) -> usize {
    // (a serde_json value takes a few times the room of its text)
    let value = if details_value.is_some() { 4 * r.details.len() } else { 0 };
    200 + r.details.len() + value + r.row_data.as_ref().map_or(0, Vec::len)
}

struct Queued {
    record: ChainRecord,
    /// Some: `record.details` is this value as jsonb_out writes it
    /// (chain::jsonb_text), and the jsonb is built from the value
    details_value: Option<serde_json::Value>,
    subxact: pg_sys::SubTransactionId,
}

thread_local! {
    static QUEUE: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
    static QUEUED_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Past this much queued, the queue moves to the transaction's spill file
/// (bounded memory for huge transactions); also the size of one chunk of the
/// append.
const SPILL_BYTES: usize = 16 << 20;

/// Entries of this transaction moved out of memory (see `spill`), in the
/// order they were queued, before those still in QUEUE.
struct Spill {
    store: *mut pg_sys::Tuplestorestate,
    /// entries written
    count: usize,
    /// (savepoint, entries written when it rolled back): the entries written
    /// before then, queued in that savepoint or one of its own, are dropped
    rolled_back: Vec<(pg_sys::SubTransactionId, usize)>,
}

thread_local! {
    static SPILL: RefCell<Option<Spill>> = const { RefCell::new(None) };
    /// (one bytea column) the spill file's rows
    static SPILL_DESC: Cell<pg_sys::TupleDesc> = const { Cell::new(std::ptr::null_mut()) };
}

fn spill_desc() -> pg_sys::TupleDesc {
    SPILL_DESC.with(|d| {
        if d.get().is_null() {
            unsafe {
                let desc = pgrx::PgMemoryContexts::TopMemoryContext.switch_to(|_| pg_sys::CreateTemplateTupleDesc(1));
                pg_sys::TupleDescInitEntry(desc, 1, c"entry".as_ptr(), pg_sys::BYTEAOID, -1, 0);
                d.set(desc);
            }
        }
        d.get()
    })
}

/// Move the queue to the spill file (created on first use, in the top
/// transaction's memory and resource owner: a savepoint that rolls back
/// does not close it; the end of the transaction does).
fn spill() {
    let entries = take_queue();
    let desc = spill_desc();
    SPILL.with(|s| {
        let mut s = s.borrow_mut();
        let spill = s.get_or_insert_with(|| unsafe {
            let owner = pg_sys::CurrentResourceOwner;
            pg_sys::CurrentResourceOwner = pg_sys::TopTransactionResourceOwner;
            let store = pgrx::PgMemoryContexts::TopTransactionContext
                .switch_to(|_| pg_sys::tuplestore_begin_heap(false, false, 1024));
            pg_sys::CurrentResourceOwner = owner;
            Spill { store, count: 0, rolled_back: Vec::new() }
        });
        for e in entries {
            let bytes = chain::spill_encode(e.subxact, &e.record);
            unsafe {
                let mut value = bytes.as_slice().into_datum().expect("bytes are never NULL");
                let mut null = false;
                pg_sys::tuplestore_putvalues(spill.store, desc, &mut value, &mut null);
                pg_sys::pfree(value.cast_mut_ptr());
            }
            spill.count += 1;
        }
    });
}

/// The spilled entries, in order, `SPILL_BYTES` worth at a time, then those
/// still in memory.
struct Entries {
    spill: Option<(Spill, *mut pg_sys::TupleTableSlot, usize)>,
    memory: Vec<Queued>,
}

impl Entries {
    fn take() -> Option<Entries> {
        let spill = SPILL.with(|s| s.borrow_mut().take());
        let memory = take_queue();
        if spill.is_none() && memory.is_empty() {
            return None;
        }
        let spill = spill.map(|s| unsafe {
            (s, pg_sys::MakeSingleTupleTableSlot(spill_desc(), &raw const pg_sys::TTSOpsMinimalTuple), 0)
        });
        Some(Entries { spill, memory })
    }

    fn next_chunk(&mut self) -> Vec<Queued> {
        let mut chunk = Vec::new();
        let mut size = 0;
        if let Some((spill, slot, at)) = &mut self.spill {
            while size < SPILL_BYTES {
                let bytes = unsafe {
                    // A tuple read back from the file is palloc'd in the
                    // current context and held by the slot until the next
                    // read frees it: read it into the transaction's context
                    // (the store's), not into the caller's chunk context,
                    // which is reset between chunks (freeing the tuple under
                    // the slot crashed the append of a third chunk).
                    let read = pgrx::PgMemoryContexts::TopTransactionContext
                        .switch_to(|_| pg_sys::tuplestore_gettupleslot(spill.store, true, false, *slot));
                    if !read {
                        break;
                    }
                    pg_sys::slot_getsomeattrs(*slot, 1);
                    <&[u8]>::from_datum(*(**slot).tts_values, *(**slot).tts_isnull).unwrap_or_default()
                };
                let Some((subxact, record)) = chain::spill_decode(bytes) else {
                    error!("fluxbase_admin: an audit entry in the transaction's spill file is damaged");
                };
                let index = *at;
                *at += 1;
                if spill.rolled_back.iter().any(|&(sub, upto)| index < upto && subxact >= sub) {
                    continue;
                }
                size += queued_size(&record, &None);
                chunk.push(Queued { record, details_value: None, subxact });
            }
            if chunk.is_empty() {
                let (spill, slot, _) = self.spill.take().expect("checked above");
                unsafe {
                    pg_sys::ExecDropSingleTupleTableSlot(slot);
                    pg_sys::tuplestore_end(spill.store);
                }
            } else {
                return chunk;
            }
        }
        std::mem::take(&mut self.memory)
    }
}

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
/// form the verifier reads back (jsonb_out, inet_out) before it is hashed;
/// `details_value`, when given, is the value whose jsonb_out text the details
/// are already.
pub fn queue(record: ChainRecord, details_value: Option<serde_json::Value>) {
    let size = queued_size(&record, &details_value);
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    QUEUE.with(|q| q.borrow_mut().push(Queued { record, details_value, subxact }));
    let total = QUEUED_BYTES.with(|b| {
        b.set(b.get() + size);
        b.get()
    });
    if total > SPILL_BYTES {
        spill();
    }
}

fn take_queue() -> Vec<Queued> {
    QUEUED_BYTES.with(|b| b.set(0));
    QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()))
}

/// Called by the extension's one transaction callback (`_PG_init`'s
/// `on_xact_event`).
pub fn on_xact_event(event: pg_sys::XactEvent::Type) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE => append_queued(),
        XACT_EVENT_COMMIT => {
            take_queue();
            forget_spill();
            release_chain_lock();
            if let Some((id, hash)) = PENDING_WITNESS.with(|w| w.borrow_mut().take()) {
                log_witness(id, &hash, "checkpoint");
            }
        }
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE => {
            take_queue();
            forget_spill();
            PENDING_WITNESS.with(|w| w.borrow_mut().take());
            WITNESS_AT_COMMIT.with(|w| w.set(false));
            // (released by the abort; a prepared transaction keeps it until
            // COMMIT PREPARED, which makes its head visible)
            CHAIN_LOCKED.with(|c| c.set(None));
        }
        _ => {}
    }
}

/// Called by the extension's one subtransaction callback (`_PG_init`'s
/// `on_subxact_event`): a rolled-back savepoint takes its entries (and those
/// of its own savepoints, which have larger ids) with it.
pub fn on_subxact_event(event: pg_sys::SubXactEvent::Type, my_subid: pg_sys::SubTransactionId) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        QUEUE.with(|q| q.borrow_mut().retain(|e| e.subxact < my_subid));
        SPILL.with(|s| {
            if let Some(s) = s.borrow_mut().as_mut() {
                s.rolled_back.push((my_subid, s.count));
            }
        });
    }
}

/// The spill file is gone with the transaction (its memory context and
/// resource owner): only the pointer is left to forget.
fn forget_spill() {
    SPILL.with(|s| s.borrow_mut().take());
}

/// The chain head goes to the server log each time the chain passes a
/// multiple of this many entries (a witness for `verify_audit_chain(id, hash)`,
/// out of the database superuser's reach once shipped off the host).
const WITNESS_EVERY: i64 = 1000;

thread_local! {
    /// A head to log once this transaction's commit is visible.
    static PENDING_WITNESS: RefCell<Option<(i64, Vec<u8>)>> = const { RefCell::new(None) };
    /// Log the head at this transaction's commit whatever its id (a purge).
    static WITNESS_AT_COMMIT: Cell<bool> = const { Cell::new(false) };
}

/// Have this transaction's append log the chain head at commit.
pub fn witness_at_commit() {
    WITNESS_AT_COMMIT.with(|w| w.set(true));
}

/// Write a witness (the chain head) to the server log.
pub fn log_witness(id: i64, hash: &[u8], why: &str) {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    // (LOG: the server log only, whatever client_min_messages says)
    pgrx::log!("fluxbase_admin audit witness ({why}): id={id} hash={hex}");
}

/// Take the chain lock, to the end of the transaction (or its commit, see
/// release_chain_lock). Returns the head table's oid. (Purges take no chain
/// lock since issue 35: record::lock_purges.)
///
/// The chain lock is an exclusive lock on the head table *as an object*
/// (pg_locks: locktype object, classid pg_class), not on the table itself:
/// an ExclusiveLock on a table is a "strong" relation lock, and taking one
/// visits the fast-path lock slots of every backend slot of the server
/// (max_connections and more) on every append. The table itself gets the
/// RowExclusiveLock its update needs, first: a transaction that altered the
/// head table then holds everyone up before the chain lock, not under it.
pub fn lock_chain() -> Oid {
    // (a standby can take no ExclusiveLock: 55000; say why instead)
    crate::runtime::db::refuse_on_standby("change the audit chain");
    let head = crate::runtime::db::dashboard_auth_table(c"audit_chain_head");
    unsafe {
        pg_sys::LockRelationOid(head, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        pg_sys::LockDatabaseObject(pg_sys::RelationRelationId, head, 0, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
    }
    CHAIN_LOCKED.with(|c| c.set(Some(head)));
    head
}

thread_local! {
    /// The chain head's oid while this transaction holds the chain lock.
    static CHAIN_LOCKED: Cell<Option<Oid>> = const { Cell::new(None) };
}

/// At XACT_EVENT_COMMIT the transaction is committed and visible to new
/// snapshots (ProcArrayEndTransaction has run), so the next appender already
/// reads our head: the chain lock, which every concurrent audited commit
/// queues for, is let go here rather than with the rest of the locks at the
/// very end of the commit's cleanup.
fn release_chain_lock() {
    let Some(head) = CHAIN_LOCKED.with(|c| c.take()) else {
        return;
    };
    unsafe {
        // (SET_LOCKTAG_OBJECT, as LockDatabaseObject builds it)
        let tag = pg_sys::LOCKTAG {
            locktag_field1: pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: pg_sys::RelationRelationId.to_u32(),
            locktag_field3: head.to_u32(),
            locktag_field4: 0,
            locktag_type: pg_sys::LockTagType::LOCKTAG_OBJECT as u8,
            locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
        };
        // (taken in a savepoint that rolled back, it is gone already)
        if crate::runtime::pgcompat::lock_held_by_me(&tag, pg_sys::ExclusiveLock as pg_sys::LOCKMODE) {
            pg_sys::UnlockDatabaseObject(pg_sys::RelationRelationId, head, 0, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
        }
    }
}

/// Append everything queued, in order.
pub fn append_queued() {
    let Some(entries) = Entries::take() else {
        return;
    };
    // (No change of user needed: the append writes the tables directly, with
    // no permission checks, no statement and no search_path lookups.)
    // Its own memory context: a big transaction's entries are formed here
    // and freed as soon as they are written. One per backend, emptied after
    // each use (and before, after an append that failed), rather than
    // created and deleted on every commit.
    let context = append_context();
    unsafe {
        pg_sys::MemoryContextReset(context);
        pgrx::PgMemoryContexts::For(context).switch_to(|_| append(entries));
        pg_sys::MemoryContextReset(context);
    }
}

thread_local! {
    static APPEND_CONTEXT: Cell<pg_sys::MemoryContext> = const { Cell::new(std::ptr::null_mut()) };
}

fn append_context() -> pg_sys::MemoryContext {
    APPEND_CONTEXT.with(|c| {
        if c.get().is_null() {
            c.set(unsafe {
                pg_sys::AllocSetContextCreateInternal(
                    pg_sys::TopMemoryContext,
                    c"fluxbase_admin audit append".as_ptr(),
                    pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                    pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                    pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
                )
            });
        }
        c.get()
    })
}

/// Make sure audit_log has a page with room for the entries before the chain
/// lock is taken: extending the table (writing a new page) is the slowest
/// step of an append, and done under the lock it holds up every other
/// audited commit. The insert then finds the page as the table's target.
unsafe fn reserve_room(log: &DirectTable, prepared: &[Prepared], chain_columns: &ChainColumns) {
    // (an id and two hashes of the sizes the real ones have)
    let placeholder_hash = [0u8; 32];
    let mut total = 0usize;
    for p in prepared {
        let mut values = p.values.clone();
        values.extend(chain_columns.values(0, &placeholder_hash, &placeholder_hash));
        // (the line pointer and alignment of each)
        total += log.tuple_len(&values).next_multiple_of(8) + 4;
    }
    log.reserve(total);
}

/// Where audit_log keeps an entry's place in the chain.
struct ChainColumns {
    id: usize,
    prev_hash: usize,
    row_hash: usize,
}

impl ChainColumns {
    fn of(log: &DirectTable) -> ChainColumns {
        match (log.column("id"), log.column("prev_hash"), log.column("row_hash")) {
            (Some(id), Some(prev_hash), Some(row_hash)) => ChainColumns { id, prev_hash, row_hash },
            _ => error!("fluxbase_admin: dashboard_auth.audit_log lacks its chain columns"),
        }
    }

    /// The (column, value) pairs of an entry's id and hashes.
    fn values(&self, id: i64, prev_hash: &[u8], row_hash: &[u8]) -> [(usize, Option<Datum>); 3] {
        [(self.id, Some(Datum::from(id))), (self.prev_hash, prev_hash.into_datum()), (self.row_hash, row_hash.into_datum())]
    }
}

/// The chain head: its tuple (copied, for the update) and values, read with
/// `snapshot` through its primary key (the one-row table may span many pages
/// of dead versions between vacuums).
unsafe fn read_head(head: &DirectTable, snapshot: pg_sys::Snapshot) -> Option<(pg_sys::HeapTuple, i64, Vec<u8>)> {
    let pk = crate::runtime::pgcompat::primary_key_index(head.rel);
    let scan = pg_sys::systable_beginscan(head.rel, pk, pk != pg_sys::InvalidOid, snapshot, 0, std::ptr::null_mut());
    let found = pg_sys::systable_getnext(scan);
    let result = if found.is_null() {
        None
    } else {
        let tuple = pg_sys::heap_copytuple(found);
        let value = |name: &str| {
            let i = head.column(name).unwrap_or_else(|| error!("fluxbase_admin: the audit chain head has no column {name}"));
            let mut null = false;
            let d = pg_sys::heap_getattr(tuple, (i + 1) as i32, head.desc(), &mut null);
            (!null).then_some(d)
        };
        let id = value("last_id").map(|d| d.value() as i64);
        let hash = value("last_hash").and_then(|d| Vec::<u8>::from_datum(d, false));
        match (id, hash) {
            (Some(i), Some(h)) => Some((tuple, i, h)),
            _ => error!("fluxbase_admin: the audit chain head is damaged"),
        }
    };
    pg_sys::systable_endscan(scan);
    result
}

/// An entry made ready before the chain lock is taken: everything but its
/// id and hashes (which depend on the head) is converted, compressed and
/// looked up here, so the lock — held from the append to the end of the
/// commit, and what concurrent audited writers queue for — covers only the
/// chain itself.
struct Prepared {
    /// with `details` and `ip` as the verifier reads them back (hashed so)
    rec: ChainRecord,
    /// (column index, value) of everything but id, prev_hash and row_hash
    values: Vec<(usize, Option<Datum>)>,
}

unsafe fn prepare(log: &DirectTable, entry: Queued) -> Prepared {
    let Queued { record: mut rec, mut details_value, .. } = entry;
    let row_data_column = log.column("row_data");
    if row_data_column.is_none() {
        // A database still at 0.1.0 (no row_data column): the rows go into
        // the details as JSON, as 0.1.0 kept them.
        if let Some(data) = rec.row_data.take() {
            let mut details: serde_json::Value = serde_json::from_str(&rec.details).unwrap_or_default();
            let table = rec.target_id.clone().unwrap_or_default();
            details["rows"] = crate::audit::row_capture::decode_rows(&data, &table).unwrap_or_default();
            rec.details = details.to_string();
            details_value = None;
        }
    }
    // The hash covers the values as stored and read back by the verifier:
    // jsonb_out of the jsonb, inet_out of the inet.
    let details = match details_value.as_ref().and_then(|v| crate::runtime::json::jsonb_datum(v)) {
        Some(built) => built,
        None => {
            let parsed = input(pg_sys::jsonb_in, &rec.details);
            if details_value.is_none() {
                rec.details = output(pg_sys::jsonb_out, parsed);
            }
            parsed
        }
    };
    let ip = rec.ip.as_deref().map(|ip| input(pg_sys::inet_in, ip));
    rec.ip = ip.map(|d| output(pg_sys::inet_out, d));
    let uuid = |u: Option<[u8; 16]>| u.and_then(|b| pgrx::datum::Uuid::from_bytes(b).into_datum());
    let row_data = match (row_data_column, &rec.row_data) {
        (Some(i), Some(data)) => Some(log.compressed(i, data)),
        _ => None,
    };
    let values = [
        ("occurred_at", Some(Datum::from(rec.occurred_at_us))),
        ("actor_id", uuid(rec.actor_id)),
        ("actor", rec.actor.as_str().into_datum()),
        ("action", rec.action.as_str().into_datum()),
        ("target_type", rec.target_type.as_deref().into_datum()),
        ("target_id", rec.target_id.as_deref().into_datum()),
        ("details", Some(details)),
        ("ip", ip),
        ("success", rec.success.into_datum()),
        ("db_user", rec.db_user.as_str().into_datum()),
        ("txid", rec.txid.into_datum()),
        ("impersonation_session_id", uuid(rec.impersonation_session_id)),
        ("row_data", row_data),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((log.column(name)?, value)))
    .collect();
    Prepared { rec, values }
}

unsafe fn append(mut entries: Entries) {
    // audit_log before the chain lock: a transaction that altered audit_log
    // (ALTER EXTENSION ... UPDATE) holds it exclusively until its own append,
    // so taking the chain lock first could deadlock with it.
    let log = DirectTable::open(crate::runtime::db::dashboard_auth_table(c"audit_log"), pg_sys::RowExclusiveLock);
    // (the first chunk, all of an ordinary transaction, is made ready before
    // the chain lock; a spilled transaction's further chunks under it)
    let prepared: Vec<Prepared> = entries.next_chunk().into_iter().map(|q| prepare(&log, q)).collect();
    let chain_columns = ChainColumns::of(&log);

    reserve_room(&log, &prepared, &chain_columns);

    let head_oid = lock_chain();
    // Our own earlier writes (an early append) must be visible to the
    // snapshot below, and under the lock the latest committed head is the
    // true one (a transaction snapshot, in REPEATABLE READ, could be older).
    pg_sys::CommandCounterIncrement();
    let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
    // At commit the statement's snapshot is gone; a CHECK constraint or index
    // expression evaluated on the way may need one.
    let pushed = !pg_sys::ActiveSnapshotSet();
    if pushed {
        pg_sys::PushActiveSnapshot(snapshot);
    }
    // (locked by lock_chain: a RowExclusiveLock, which stops no other
    // appender once the chain lock is let go at commit, see release_chain_lock)
    let head = DirectTable::open(head_oid, pg_sys::NoLock);
    let current = read_head(&head, snapshot);
    let (mut last_id, mut last_hash) = match &current {
        Some((_, id, hash)) => (*id, hash.clone()),
        None => (0, chain::GENESIS.to_vec()),
    };
    let mut prepared = prepared;
    // (a spilled transaction's later chunks are made ready in a context of
    // their own, emptied chunk by chunk: memory stays bounded)
    let mut chunk_context: pg_sys::MemoryContext = std::ptr::null_mut();
    while !prepared.is_empty() {
        for Prepared { mut rec, mut values } in prepared {
            let id = last_id + 1;
            rec.id = id;
            let hash = chain::row_hash(&last_hash, &rec).to_vec();
            values.extend(chain_columns.values(id, &last_hash, &hash));
            let tuple = log.form(&values);
            log.append(tuple);
            pg_sys::heap_freetuple(tuple);
            last_id = id;
            last_hash = hash;
        }
        if chunk_context.is_null() {
            chunk_context = pg_sys::AllocSetContextCreateInternal(
                pg_sys::CurrentMemoryContext,
                c"fluxbase_admin audit append chunk".as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            );
        }
        pg_sys::MemoryContextReset(chunk_context);
        prepared = pgrx::PgMemoryContexts::For(chunk_context)
            .switch_to(|_| entries.next_chunk().into_iter().map(|q| prepare(&log, q)).collect());
    }
    // (this append passed a multiple of WITNESS_EVERY)
    let previous = current.as_ref().map_or(0, |(_, id, _)| *id);
    if last_id / WITNESS_EVERY > previous / WITNESS_EVERY || WITNESS_AT_COMMIT.with(|w| w.replace(false)) {
        PENDING_WITNESS.with(|w| *w.borrow_mut() = Some((last_id, last_hash.clone())));
    }
    let tuple = head.form_named(&[
        ("singleton", true.into_datum()),
        ("last_id", last_id.into_datum()),
        ("last_hash", last_hash.into_datum()),
    ]);
    match current {
        Some((old, _, _)) => head.update(&raw mut (*old).t_self, tuple),
        None => head.insert(tuple),
    }
    log.close();
    head.close();
    if pushed {
        pg_sys::PopActiveSnapshot();
    }
    pg_sys::UnregisterSnapshot(snapshot);
    pg_sys::CommandCounterIncrement();
}

unsafe fn input(f: unsafe fn(pg_sys::FunctionCallInfo) -> Datum, text: &str) -> Datum {
    let c = std::ffi::CString::new(text.replace('\0', "")).unwrap_or_default();
    pgrx::direct_function_call_as_datum(f, &[Some(Datum::from(c.as_ptr()))]).expect("input functions do not return NULL")
}

pub(crate) unsafe fn output(f: unsafe fn(pg_sys::FunctionCallInfo) -> Datum, d: Datum) -> String {
    pgrx::direct_function_call::<&CStr>(f, &[Some(d)]).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default()
}
