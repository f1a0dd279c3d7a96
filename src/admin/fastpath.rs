//! The session-token check (`sessions::lookup`, behind `use_session`,
//! `login_mfa` and `_validate_session_native`) done as two direct index probes
//! instead of an SPI query.
//!
//! Why: this was validate_session's hot path in 0.1.0 (direct probes rather
//! than SPI took it from ~0.5 to ~0.65 of the bare primary-key lookup of the
//! digest). validate_session itself is now an inlined SQL function
//! (sql/validate_session.sql, 0.89 of that lookup), which shares this module's
//! `liveness` (the rule of fluxbase_core::session with Postgres' interval
//! arithmetic) through `dashboard_auth._session_live`. The probes stay for the
//! Rust callers, which need the scope and the session id, and read email and
//! role from `users` itself (not the copies on the session row).
//!
//! What it replaces, and must stay equivalent to (this is the whole contract):
//!
//! ```sql
//! SELECT s.id, s.user_id, u.email, u.role, s.scope,
//!        least(s.expires_at, s.last_seen_at + s.idle_timeout),
//!        s.last_seen_at < now() - least(interval '60 seconds', s.idle_timeout / 10)   -- "stale"
//! FROM dashboard_auth.sessions s
//! JOIN dashboard_auth.users u ON u.id = s.user_id
//! WHERE s.token_digest = $1
//!   AND s.revoked_at IS NULL
//!   AND s.expires_at > now()
//!   AND s.last_seen_at + s.idle_timeout > now()
//! ```
//!
//! How it stays equivalent:
//! - Rows: the unique btree index on sessions(token_digest), then the one on
//!   users(id), each probed with `systable_beginscan` under the snapshot SPI
//!   would have used (see [`Snapshot`]); tables and indexes are found by name
//!   and by their definition, columns by name and type, never by position.
//! - Time: `now()` is the transaction start (GetCurrentTransactionStartTimestamp);
//!   `timestamptz + interval`, `timestamptz - interval` and `interval / 10`
//!   are Postgres' own functions (months and days are calendar and time-zone
//!   aware), `least()` over intervals uses interval_cmp as the SQL does, and
//!   timestamptz comparisons are plain integer comparisons, as in Postgres.
//! - Checks happen in the order of the WHERE clause (so the same rows can
//!   raise "timestamp out of range" as before).
//! - A NULL in a NOT NULL column (cannot happen; no panic if it did) counts as
//!   an invalid session.
//! - Locks: AccessShareLock on both tables and the indexes used, held to the
//!   end of the transaction, as the query would.
//! - No permission checks, like the SECURITY DEFINER function around it, whose
//!   EXECUTE is granted to fluxbase_dashboard only.
//!
//! tests/test_sessions.py compares the result with the SQL above in the same
//! transaction for the edge cases (boundaries, months/days intervals, time
//! zones, deleted users, scopes, revocation, role changes, same-statement logins).

use std::cell::RefCell;
use std::ffi::CStr;

use pgrx::datum::{TimestampWithTimeZone, Uuid};
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;
use pgrx::{direct_function_call, direct_function_call_as_datum};
use fluxbase_core::session::{self, Liveness};

/// What the query above returned: the session, and whether `last_seen_at` is
/// stale enough to be refreshed.
pub struct Found {
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub scope: String,
    pub expires_at: TimestampWithTimeZone,
    pub stale: bool,
}

/// Look up a token digest. `None` when the query above would return no row.
pub fn validate(digest: &[u8]) -> Option<Found> {
    // SAFETY: every pointer used comes from Postgres for relations opened (and
    // locked) here and is used only while they are open; tuples are read only
    // while their scan is open, and every value kept is copied into Rust.
    unsafe {
        let snapshot = Snapshot::take();
        let found = probe(digest, snapshot.get());
        snapshot.release();
        found
    }
}

unsafe fn probe(digest: &[u8], snapshot: pg_sys::Snapshot) -> Option<Found> {
    let now: i64 = pg_sys::GetCurrentTransactionStartTimestamp();
    // --- the session, by token_digest ---------------------------------------
    let sessions = open_table(c"sessions");
    let [c_digest, c_id, c_user, c_scope, c_seen, c_expires, c_idle, c_revoked] = columns(
        sessions,
        [
            (c"token_digest", pg_sys::BYTEAOID),
            (c"id", pg_sys::UUIDOID),
            (c"user_id", pg_sys::UUIDOID),
            (c"scope", pg_sys::TEXTOID),
            (c"last_seen_at", pg_sys::TIMESTAMPTZOID),
            (c"expires_at", pg_sys::TIMESTAMPTZOID),
            (c"idle_timeout", pg_sys::INTERVALOID),
            (c"revoked_at", pg_sys::TIMESTAMPTZOID),
        ],
    );
    let key = digest.to_vec().into_datum().expect("bytea datum");
    let session = with_unique_row(sessions, c_digest, pg_sys::F_BYTEAEQ, key, snapshot, |row| {
        let expires_at = row.timestamptz(c_expires)?;
        let last_seen = row.timestamptz(c_seen)?;
        let idle = row.datum(c_idle)?; // by reference: valid while the scan is open
        let stale = match liveness(now, !row.is_null(c_revoked), expires_at, last_seen, idle) {
            Liveness::Live { refresh } => refresh,
            _ => return None,
        };
        // least(expires_at, last_seen_at + idle_timeout): equal values are equal
        let idle_end = timestamptz_pl_interval(last_seen, idle);
        let reported = if expires_at > idle_end { idle_end } else { expires_at };
        Some((
            row.uuid(c_id)?,
            row.uuid(c_user)?,
            row.text(c_scope)?,
            reported,
            stale,
        ))
    });
    table_close(sessions);
    let (id, user_id, scope, expires_at, stale) = session?;

    // --- its admin, by id (the JOIN) ------------------------------------------
    let users = open_table(c"users");
    let [u_id, u_email, u_role] =
        columns(users, [(c"id", pg_sys::UUIDOID), (c"email", pg_sys::TEXTOID), (c"role", pg_sys::TEXTOID)]);
    let user_key = Datum::from(user_id.as_ptr()); // uuid is by reference: 16 bytes
    let user = with_unique_row(users, u_id, pg_sys::F_UUID_EQ, user_key, snapshot, |row| {
        Some((row.text(u_email)?, row.text(u_role)?))
    });
    table_close(users);
    let (email, role) = user?;

    Some(Found {
        id,
        user_id,
        email,
        role,
        scope,
        expires_at: TimestampWithTimeZone::from_datum(Datum::from(expires_at), false)?,
        stale,
    })
}

/// The snapshot the SPI query would have run under. pgrx runs a prepared
/// SELECT read-only while the transaction has written nothing (no xid), and
/// then SPI uses the caller's active snapshot as is. Once the transaction has
/// written, it ran read-write: a fresh snapshot (in READ COMMITTED) after a
/// CommandCounterIncrement, so even this statement's own earlier writes (a
/// login in the same statement) are seen. Both cases are mirrored here, in
/// SPI's own order of calls.
struct Snapshot {
    pushed: bool,
}

impl Snapshot {
    unsafe fn take() -> Self {
        let wrote = pg_sys::GetCurrentTransactionIdIfAny() != pg_sys::InvalidTransactionId;
        if wrote || !pg_sys::ActiveSnapshotSet() {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            if wrote {
                pg_sys::CommandCounterIncrement();
                pg_sys::UpdateActiveSnapshotCommandId();
            }
            Snapshot { pushed: true }
        } else {
            Snapshot { pushed: false }
        }
    }

    unsafe fn get(&self) -> pg_sys::Snapshot {
        pg_sys::GetActiveSnapshot()
    }

    /// Pop what `take` pushed. (On an ERROR in between, abort processing
    /// unwinds the active-snapshot stack itself.)
    unsafe fn release(self) {
        if self.pushed {
            pg_sys::PopActiveSnapshot();
        }
    }
}

unsafe fn open_table(name: &'static CStr) -> pg_sys::Relation {
    pg_sys::table_open(crate::runtime::db::dashboard_auth_table(name), pg_sys::AccessShareLock as pg_sys::LOCKMODE)
}

/// Close, keeping the lock to the end of the transaction as a query does.
unsafe fn table_close(rel: pg_sys::Relation) {
    pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
}

/// Attribute numbers (1-based) of the named columns, checked to have the
/// expected types: read from the relation's current descriptor on each call,
/// so they can never be stale.
unsafe fn columns<const N: usize>(rel: pg_sys::Relation, want: [(&CStr, Oid); N]) -> [i16; N] {
    let desc = (*rel).rd_att;
    let attrs = crate::runtime::pgcompat::tupdesc_attrs(desc);
    want.map(|(name, typ)| {
        let found = attrs
            .iter()
            .position(|a| !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()) == name && a.atttypid == typ);
        match found {
            Some(i) => (i + 1) as i16,
            None => error!("fluxbase_admin: column {} is missing or has an unexpected type", name.to_string_lossy()),
        }
    })
}

thread_local! {
    // (table oid, key column) -> the oid of its single-column unique btree index.
    // Keyed by the table's oid (so a re-created extension misses), and checked
    // against the table's current index list and the index's definition on
    // every use (so a dropped or re-created index cannot be used stale).
    static UNIQUE_INDEX: RefCell<Vec<(Oid, i16, Oid)>> = const { RefCell::new(Vec::new()) };
}

/// Probe `rel` through the unique index on its column `attno` for the row
/// whose value equals `key` (compared with `eq_proc`), and hand the visible
/// row, if any, to `read`. The row is only valid inside `read`.
unsafe fn with_unique_row<T>(
    rel: pg_sys::Relation,
    attno: i16,
    eq_proc: u32,
    key: Datum,
    snapshot: pg_sys::Snapshot,
    read: impl FnOnce(&Row) -> Option<T>,
) -> Option<T> {
    let index = unique_index(rel, attno);
    let mut scankey = pg_sys::ScanKeyData::default();
    // systable_beginscan takes the heap column number and maps it to the index's.
    pg_sys::ScanKeyInit(&mut scankey, attno, pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber, eq_proc.into(), key);
    let scan = pg_sys::systable_beginscan(rel, index, true, snapshot, 1, &mut scankey);
    let tuple = pg_sys::systable_getnext(scan);
    let result = if tuple.is_null() {
        None
    } else {
        let desc = (*rel).rd_att;
        let natts = (*desc).natts as usize;
        let mut values = vec![Datum::from(0usize); natts];
        let mut nulls = vec![true; natts];
        pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        read(&Row { values, nulls })
    };
    pg_sys::systable_endscan(scan);
    result
}

/// The oid of the valid, unique, non-partial, single-column btree index on
/// `rel`'s column `attno` (there is exactly one: the UNIQUE / PRIMARY KEY
/// constraint). The index is locked (AccessShareLock, to the end of the
/// transaction) like the planner does.
unsafe fn unique_index(rel: pg_sys::Relation, attno: i16) -> Oid {
    let table = (*rel).rd_id;
    let list = pg_sys::RelationGetIndexList(rel);
    let indexes: Vec<Oid> = if list.is_null() {
        Vec::new()
    } else {
        std::slice::from_raw_parts((*list).elements, (*list).length as usize).iter().map(|c| c.oid_value).collect()
    };
    let cached = UNIQUE_INDEX.with(|c| c.borrow().iter().find(|e| e.0 == table && e.1 == attno).map(|e| e.2));
    let candidates = cached.filter(|oid| indexes.contains(oid)).into_iter().chain(indexes.iter().copied());
    for oid in candidates {
        let index = pg_sys::index_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let fits = is_unique_btree_on(index, rel, attno);
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        if fits {
            if cached != Some(oid) {
                UNIQUE_INDEX.with(|c| {
                    let mut c = c.borrow_mut();
                    c.retain(|e| !(e.0 == table && e.1 == attno));
                    c.push((table, attno, oid));
                });
            }
            return oid;
        }
    }
    error!("fluxbase_admin: no unique index on column {attno} of relation {table:?}")
}

unsafe fn is_unique_btree_on(index: pg_sys::Relation, rel: pg_sys::Relation, attno: i16) -> bool {
    let form = (*index).rd_index;
    if form.is_null() || (*(*index).rd_rel).relam != pg_sys::BTREE_AM_OID {
        return false;
    }
    let form = &*form;
    let keys = form.indkey.values.as_slice(form.indkey.dim1 as usize);
    let desc = (*rel).rd_att;
    let column_type = (!desc.is_null()).then(|| crate::runtime::pgcompat::tupdesc_attrs(desc)[attno as usize - 1].atttypid);
    form.indrelid == (*rel).rd_id
        && form.indisunique
        && form.indisvalid
        && form.indnkeyatts == 1
        && keys.first() == Some(&attno)
        && Some(*(*index).rd_opcintype) == column_type // the column type's own btree opclass
        && pg_sys::RelationGetIndexPredicate(index).is_null() // not a partial index
}

/// A deformed heap row: values by attribute number, copied out on request.
struct Row {
    values: Vec<Datum>,
    nulls: Vec<bool>,
}

impl Row {
    fn is_null(&self, attno: i16) -> bool {
        self.nulls[attno as usize - 1]
    }

    fn datum(&self, attno: i16) -> Option<Datum> {
        (!self.is_null(attno)).then(|| self.values[attno as usize - 1])
    }

    fn timestamptz(&self, attno: i16) -> Option<i64> {
        self.datum(attno).map(|d| d.value() as i64) // by value on 64-bit builds
    }

    unsafe fn uuid(&self, attno: i16) -> Option<Uuid> {
        Uuid::from_datum(self.datum(attno)?, false) // copies the 16 bytes
    }

    unsafe fn text(&self, attno: i16) -> Option<String> {
        String::from_datum(self.datum(attno)?, false) // detoasts and copies
    }
}

/// The session rule (fluxbase_core::session) with Postgres' own interval
/// arithmetic: `timestamptz + interval` and `interval / 10` are calendar and
/// time-zone aware, `least()` over intervals uses interval_cmp as the SQL does.
/// `idle` is an interval datum (by reference). Used by the probe here and by
/// `dashboard_auth._session_live` (src/admin/sessions.rs).
///
/// # Safety
/// `idle` must point to a valid `Interval`.
pub unsafe fn liveness(now: i64, revoked: bool, expires_at: i64, last_seen: i64, idle: Datum) -> Liveness {
    session::liveness(
        now,
        revoked,
        expires_at,
        last_seen,
        || timestamptz_pl_interval(last_seen, idle),
        || {
            // now() - least(interval '60 seconds', idle_timeout / 10)
            let tenth = direct_function_call_as_datum(pg_sys::interval_div, &[Some(idle), 10.0f64.into_datum()])
                .expect("interval / 10 is never NULL");
            let sixty = pg_sys::Interval { time: 60 * 1_000_000, day: 0, month: 0 };
            let sixty = Datum::from(&sixty as *const pg_sys::Interval);
            // least() keeps the first argument unless the second is smaller
            let cmp = direct_function_call::<i32>(pg_sys::interval_cmp, &[Some(sixty), Some(tenth)])
                .expect("interval_cmp is never NULL");
            let step = if cmp > 0 { tenth } else { sixty };
            direct_function_call_as_datum(pg_sys::timestamptz_mi_interval, &[Some(Datum::from(now)), Some(step)])
                .expect("timestamptz - interval is never NULL")
                .value() as i64
        },
    )
}

unsafe fn timestamptz_pl_interval(ts: i64, interval: Datum) -> i64 {
    direct_function_call_as_datum(pg_sys::timestamptz_pl_interval, &[Some(Datum::from(ts)), Some(interval)])
        .expect("timestamptz + interval is never NULL")
        .value() as i64
}
