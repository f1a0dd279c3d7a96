//! Writing the audit trail. Every capability records its actions through
//! `record`, which fills in the actor from the current identity.

use pgrx::datum::{JsonB, Uuid};
use serde_json::{json, Value};

use crate::runtime::json::JsonArg;
use crate::runtime::{actor, db};

pub struct Event {
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub details: Value,
    pub success: bool,
    pub ip: Option<String>,
    /// Set when the acting person is known but is not the current actor
    /// (a login attempt names the account it tried).
    pub actor_override: Option<(Option<Uuid>, String)>,
    pub impersonation_session_id: Option<Uuid>,
    /// A row-change entry's binary row image (row_capture.rs).
    pub row_data: Option<Vec<u8>>,
}

impl Event {
    pub fn new(action: &'static str, target_type: &'static str, target_id: impl ToString) -> Self {
        Event {
            action,
            target_type: Some(target_type),
            target_id: Some(target_id.to_string()),
            details: json!({}),
            success: true,
            ip: None,
            actor_override: None,
            impersonation_session_id: None,
            row_data: None,
        }
    }
    pub fn details(mut self, d: Value) -> Self {
        self.details = d;
        self
    }
    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    pub fn actor(mut self, id: Option<Uuid>, label: String) -> Self {
        self.actor_override = Some((id, label));
        self
    }
    pub fn row_data(mut self, data: Vec<u8>) -> Self {
        self.row_data = Some(data);
        self
    }
    pub fn impersonation(mut self, session: Uuid) -> Self {
        self.impersonation_session_id = Some(session);
        self
    }
}

/// Record an audit entry. It is queued in backend memory and appended to
/// dashboard_auth.audit_log, with its place in the hash chain, when the
/// transaction commits (see audit_append.rs); an abort drops it with
/// everything else the transaction did.
pub fn record(ev: Event) {
    // (the trail cannot grow on a hot standby: refuse what it would record)
    db::refuse_on_standby("record an audit entry");
    let (actor_id, actor_label) = ev.actor_override.clone().unwrap_or_else(|| {
        let a = actor::current();
        (a.id(), a.label())
    });
    // Written as jsonb_out writes it, when it can be: the append then builds
    // the jsonb from the value, with neither jsonb_in nor jsonb_out.
    let (details, details_value) = match fluxbase_core::chain::jsonb_text(&ev.details) {
        Some(text) => (text, Some(ev.details)),
        None => (ev.details.to_string(), None),
    };
    let record = fluxbase_core::chain::ChainRecord {
        id: 0, // given at the append
        occurred_at_us: crate::audit::append::now(),
        actor_id: actor_id.map(|u| *u),
        actor: actor_label,
        action: ev.action.to_string(),
        target_type: ev.target_type.map(str::to_string),
        target_id: ev.target_id,
        details,
        ip: ev.ip,
        success: ev.success,
        db_user: db::session_user_name(),
        txid: crate::audit::append::current_txid(),
        impersonation_session_id: ev.impersonation_session_id.map(|u| *u),
        row_data: ev.row_data,
    };
    crate::audit::append::queue(record, details_value);
}

// ---------------------------------------------------------------------------
// Audit-aware scopes, chain verification, retention, search.

use fluxbase_core::chain::{StoredRow, Verifier};
use fluxbase_core::error::check_len;
use fluxbase_core::audit_search as search;
use fluxbase_core::{Code, FbError};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::prelude::*;

use crate::audit::triggers::{chain_record, API_DEPTH, PURGING};
use crate::runtime::errors::{raise, OrRaise};

/// Run `f` as "the extension's API": row changes it makes to the extension's
/// own tables are not recorded again by the row-change trigger (the API
/// records its own, more meaningful event). SECURITY DEFINER API functions and
/// `db::as_extension_owner` are recognised without it; use this in API code
/// that writes the extension's tables as the caller.
pub fn api_scope<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            API_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    API_DEPTH.with(|d| d.set(d.get() + 1));
    let _leave = Leave;
    f()
}

fn stored_row(r: &pgrx::spi::SpiHeapTupleData) -> pgrx::spi::SpiResult<StoredRow> {
    let record = match chain_record!(r) {
        Ok(mut rec) => {
            rec.ip = r.get_by_name::<String, _>("ip_text")?;
            rec.details = r.get_by_name::<String, _>("details_text")?.unwrap_or_default();
            // (absent in a database still at 0.1.0)
            rec.row_data = r.get_by_name::<Vec<u8>, _>("row_data").ok().flatten();
            rec
        }
        Err(e) => raise(FbError::new(Code::WrongState, format!("cannot read an audit row: {e}"))),
    };
    Ok(StoredRow { record, prev_hash: r.get_by_name::<Vec<u8>, _>("prev_hash")?, row_hash: r.get_by_name::<Vec<u8>, _>("row_hash")? })
}

/// Walk the chain from the last purge checkpoint (or the start). All reads are
/// read-only SPI queries, so they share the calling statement's snapshot.
fn first_bad_id() -> Option<i64> {
    let cp = db::select(
        "SELECT last_purged_id, last_purged_hash FROM dashboard_auth.audit_checkpoints ORDER BY id DESC LIMIT 1",
        &[],
        |r| Ok((r.get::<i64>(1)?, r.get::<Vec<u8>>(2)?)),
    )
    .into_iter()
    .next()
    .and_then(|(a, b)| Some((a?, b?)));
    let start = cp.as_ref().map(|c| c.0).unwrap_or(0);
    // a row at or before the checkpoint was put back after the purge
    let early = db::select("SELECT min(id) FROM dashboard_auth.audit_log WHERE id <= $1", &[start.into()], |r| {
        r.get::<i64>(1)
    });
    if let Some(Some(id)) = early.into_iter().next() {
        return Some(id);
    }
    let mut verifier = Verifier::new(cp);
    let mut last_seen = start;
    loop {
        let batch = db::select(
            &format!("SELECT {ENTRY_COLUMNS} FROM dashboard_auth.audit_log WHERE id > $1 ORDER BY id LIMIT 1000"),
            &[last_seen.into()],
            stored_row,
        );
        if batch.is_empty() {
            break;
        }
        for row in &batch {
            if !verifier.check(row) {
                return Some(row.record.id);
            }
            last_seen = row.record.id;
        }
    }
    // The tail: the head names the last row appended (rows removed from the
    // end, or a forged last row, show here).
    let head = db::select("SELECT last_id, last_hash FROM dashboard_auth.audit_chain_head", &[], |r| {
        Ok((r.get::<i64>(1)?, r.get::<Vec<u8>>(2)?))
    });
    match head.into_iter().next() {
        Some((Some(id), Some(hash))) => {
            if id > last_seen {
                Some(last_seen + 1)
            } else if id < last_seen {
                Some(id + 1)
            } else if last_seen > start && hash != verifier.expected_prev {
                Some(last_seen)
            } else {
                None
            }
        }
        // No head row: nothing was ever appended (it is created by the first
        // append, so a restore does not clash with an install-time row) —
        // unless there are rows, in which case the head was removed.
        _ if last_seen == start => None,
        _ => Some(last_seen + 1),
    }
}

/// 0.2.0's verify_audit_chain(), kept for databases not yet updated
/// (docs/RELEASING.md): the same as verify_audit_chain() now.
#[pg_extern(schema = "dashboard_auth", security_definer, sql = false)]
#[search_path(pg_catalog, pg_temp)]
pub fn verify_audit_chain() -> TableIterator<'static, (name!(ok, bool), name!(first_bad_id, Option<i64>))> {
    verify_audit_chain_witnessed(None, None)
}

/// Check the audit log's hash chain: ok, or the first id that does not
/// follow. Given a witness (`audit_witness()` saved earlier, or the head the
/// server log shows), also that the chain still reaches that entry with that
/// hash: a trail cut back to before it (the newest entries deleted and the
/// head moved back) is reported, first_bad_id the witnessed id.
#[pg_extern(schema = "dashboard_auth", security_definer, name = "verify_audit_chain")]
#[search_path(pg_catalog, pg_temp)]
pub fn verify_audit_chain_witnessed(
    expect_id: default!(Option<i64>, "NULL"),
    expect_hash: default!(Option<Vec<u8>>, "NULL"),
) -> TableIterator<'static, (name!(ok, bool), name!(first_bad_id, Option<i64>))> {
    actor::reader();
    if expect_id.is_some_and(|id| id < 0) || (expect_hash.is_some() && expect_id.is_none()) {
        raise(FbError::invalid("a witness is an id (0 or more) and, optionally, its hash"));
    }
    if expect_hash.as_ref().is_some_and(|h| h.len() != 32) {
        raise(FbError::invalid("a witness hash is 32 bytes (sha256)"));
    }
    let bad = first_bad_id().or_else(|| expect_id.and_then(|id| witness_missing(id, expect_hash.as_deref())));
    TableIterator::once((bad.is_none(), bad))
}

/// The witnessed entry is gone or different (None: the chain reaches it).
/// Entries a purge removed are accounted for by its checkpoint.
fn witness_missing(id: i64, hash: Option<&[u8]>) -> Option<i64> {
    if id == 0 {
        return None;
    }
    let purged = db::select(
        "SELECT last_purged_id, last_purged_hash FROM dashboard_auth.audit_checkpoints ORDER BY id DESC LIMIT 1",
        &[],
        |r| Ok((r.get::<i64>(1)?.unwrap_or(0), r.get::<Vec<u8>>(2)?.unwrap_or_default())),
    );
    if let Some((upto, upto_hash)) = purged.into_iter().next() {
        if id < upto || (id == upto && hash.is_none_or(|h| h == upto_hash)) {
            return None;
        }
        if id == upto {
            return Some(id);
        }
    }
    let stored = db::select("SELECT row_hash FROM dashboard_auth.audit_log WHERE id = $1", &[id.into()], |r| {
        r.get::<Vec<u8>>(1)
    });
    match stored.into_iter().next() {
        Some(Some(stored)) if hash.is_none_or(|h| h == stored) => None,
        _ => Some(id),
    }
}

/// The chain head: the id and hash of the newest entry ((0, the genesis
/// hash) before the first). Kept somewhere the database's superuser cannot
/// reach, it lets `verify_audit_chain(id, hash)` find a trail cut back to
/// before it. Also written to the server log, as the append does every
/// WITNESS_EVERY entries.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn audit_witness() -> TableIterator<'static, (name!(id, i64), name!(hash, Vec<u8>))> {
    actor::reader();
    let head = db::select("SELECT last_id, last_hash FROM dashboard_auth.audit_chain_head", &[], |r| {
        Ok((r.get::<i64>(1)?.unwrap_or(0), r.get::<Vec<u8>>(2)?.unwrap_or_default()))
    });
    let (id, hash) = head.into_iter().next().unwrap_or((0, fluxbase_core::chain::GENESIS.to_vec()));
    crate::audit::append::log_witness(id, &hash, "on demand");
    TableIterator::once((id, hash))
}

/// Delete audit entries older than `older_than`, keeping the chain verifiable:
/// the id and hash of the last removed row go to audit_checkpoints. Audited.
/// Like purge_audit_through it takes no chain lock (issue 35): it removes a
/// prefix of committed entries, up to the committed chain head, so sign-ins
/// and other audited commits never wait for it (see `lock_purges`).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn purge_audit(older_than: Option<Interval>) -> i64 {
    let Some(older_than) = older_than else {
        raise(FbError::new(Code::NullValue, "older_than must not be null"));
    };
    actor::writer("purging the audit log");
    crate::runtime::hooks::require_recent_auth(fluxbase_core::stepup::Action::PurgeAudit);
    let who = actor::current().label();
    let positive = db::one::<bool>("SELECT $1::interval >= interval '0'", &[older_than.into()]).unwrap_or(false);
    if !positive {
        raise(FbError::invalid("older_than must not be negative"));
    }
    db::refuse_on_standby("purge the audit log");
    let purged = db::as_extension_owner(|| {
        let head = lock_purges();
        // (ids past the head are not there yet; at or before it they are
        // committed and final: appends only add ids after the head)
        let upto = db::one::<i64>(
            "SELECT max(id) FROM dashboard_auth.audit_log
              WHERE id <= $2 AND occurred_at < pg_catalog.clock_timestamp() - $1",
            &[older_than.into(), head.into()],
        );
        let Some(upto) = upto else { return (0i64, None) };
        let hash = db::one::<Vec<u8>>("SELECT row_hash FROM dashboard_auth.audit_log WHERE id = $1", &[upto.into()])
            .unwrap_or_else(|| raise(FbError::new(Code::WrongState, "the audit chain is damaged: verify it first")));
        (delete_through(upto, hash, &who), Some(upto))
    });
    // a checkpoint of the chain: its head goes to the server log at commit
    crate::audit::append::witness_at_commit();
    let older_text = db::one::<String>("SELECT $1::interval::text", &[older_than.into()]).unwrap_or_default();
    record(
        Event::new("audit.purge", "audit_log", purged.1.map(|i| i.to_string()).unwrap_or_default())
            .details(json!({"older_than": older_text, "purged_rows": purged.0, "last_purged_id": purged.1})),
    );
    purged.0
}

/// Make purges queue for each other, and for nothing else: a SHARE ROW
/// EXCLUSIVE lock on audit_checkpoints conflicts with itself, not with the
/// appends (the chain lock and a RowExclusiveLock on audit_log) nor with
/// readers. Returns the committed chain head's id (0 before the first
/// append), read after the lock: every entry up to it is committed (an
/// append's ids become visible together, in chain order, before the next
/// append may start) and no other purge removes any of them meanwhile.
/// Verification reads the rows and the checkpoint in one snapshot, so it sees
/// a purge whole or not at all; a purge that fails or a crash before its
/// commit leaves the log as it was.
pub(crate) fn lock_purges() -> i64 {
    db::execute("LOCK TABLE dashboard_auth.audit_checkpoints IN SHARE ROW EXCLUSIVE MODE", &[]);
    db::one::<i64>("SELECT last_id FROM dashboard_auth.audit_chain_head", &[]).unwrap_or(0)
}

/// Delete the entries up to `upto` (whose row hash is `hash`) and record the
/// checkpoint that keeps the rest verifiable; the row triggers let the
/// deletes through (PURGING) only for this. As the extension owner, under the
/// caller's step-up and lock: purge_audit and purge_audit_through (ops.rs).
pub(crate) fn delete_through(upto: i64, hash: Vec<u8>, who: &str) -> i64 {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            PURGING.with(|p| p.set(false));
        }
    }
    PURGING.with(|p| p.set(true));
    let _reset = Reset;
    let n = db::execute("DELETE FROM dashboard_auth.audit_log WHERE id <= $1", &[upto.into()]) as i64;
    db::execute(
        "INSERT INTO dashboard_auth.audit_checkpoints (last_purged_id, last_purged_hash, purged_rows, purged_by)
         VALUES ($1, $2, $3, $4)",
        &[upto.into(), hash.into(), n.into(), who.to_string().into()],
    );
    n
}

/// Search the audit log, newest first, keyset-paginated on id (pass the last
/// id of a page as `after` for the next). `action` ending in '*' is a prefix
/// ('row.*'); `target` matches target_id, target_type or 'type:id'; `actor`
/// is an admin's user id (matched against actor_id) or an actor label. A
/// target and a user id are searched through their indexes
/// (core/src/audit_search.rs says how).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(schema = "dashboard", security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn audit_search(
    actor: default!(Option<&str>, "NULL"),
    action: default!(Option<&str>, "NULL"),
    target: default!(Option<&str>, "NULL"),
    since: default!(Option<TimestampWithTimeZone>, "NULL"),
    until: default!(Option<TimestampWithTimeZone>, "NULL"),
    page_size: default!(Option<i32>, 50),
    after: default!(Option<i64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(id, Option<i64>),
        name!(occurred_at, Option<TimestampWithTimeZone>),
        name!(actor_id, Option<Uuid>),
        name!(actor, Option<String>),
        name!(action, Option<String>),
        name!(target_type, Option<String>),
        name!(target_id, Option<String>),
        name!(details, Option<JsonB>),
        name!(ip, Option<String>),
        name!(success, Option<bool>),
        name!(db_user, Option<String>),
        name!(txid, Option<i64>),
        name!(impersonation_session_id, Option<Uuid>),
    ),
> {
    actor::reader();
    for (what, v) in [("actor", actor), ("action", action), ("target", target)] {
        if let Some(v) = v {
            check_len(what, v, 1000).or_raise();
        }
    }
    let page_size = page_size.unwrap_or(50);
    if !(1..=1000).contains(&page_size) {
        raise(FbError::invalid("page_size must be between 1 and 1000"));
    }
    let actor_is_id = actor.is_some_and(search::actor_is_user_id);
    let args = [actor.into(), action.into(), target.into(), since.into(), until.into(), (page_size as i64).into(), after.into()];
    // A target is searched arm by arm through its index (core/src/audit_search.rs).
    let by_arms = target.and_then(|target| {
        let types = db::select(&search::target_types_sql(), &[], |r| r.get::<String>(1))
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        (types.len() <= search::MAX_TARGET_TYPES)
            .then(|| search::target_search_sql(ENTRY_COLUMNS, actor_is_id, &search::target_arms(target, &types)))
    });
    let rows = match by_arms {
        Some((sql, values)) => {
            let mut all_args = Vec::from(args);
            all_args.extend(values.iter().map(|v| v.as_str().into()));
            db::select(&sql, &all_args, read_entry)
        }
        None => db::select(&search::plain_search_sql(ENTRY_COLUMNS, actor_is_id), &args, read_entry),
    };
    let rows = rows.into_iter().map(|(row, details)| {
        let r = row.record;
        (
            Some(r.id),
            unsafe { TimestampWithTimeZone::from_datum(pgrx::pg_sys::Datum::from(r.occurred_at_us), false) },
            r.actor_id.map(Uuid::from_bytes),
            Some(r.actor),
            Some(r.action),
            r.target_type,
            r.target_id,
            Some(JsonB(details)),
            r.ip,
            Some(r.success),
            Some(r.db_user),
            Some(r.txid),
            r.impersonation_session_id.map(Uuid::from_bytes),
        )
    });
    TableIterator::new(rows.collect::<Vec<_>>())
}

/// What an entry query selects: every column, plus the text forms the chain
/// hashes (read_entry and the verifier need them).
const ENTRY_COLUMNS: &str =
    "*, pg_catalog.inet_out(ip)::text AS ip_text, pg_catalog.jsonb_out(details)::text AS details_text";

/// An audit row as stored, and its details as a reader sees them: for a
/// row-change entry, with the changed rows decoded from the binary row image
/// (after checking the entry's own hash, so a damaged image is reported, not
/// decoded).
fn read_entry(r: &pgrx::spi::SpiHeapTupleData) -> pgrx::spi::SpiResult<(StoredRow, Value)> {
    let row = stored_row(r)?;
    let mut details =
        r.get_by_name::<JsonArg, _>("details")?.map(|j| j.into_value("details")).unwrap_or_else(|| json!({}));
    if let Some(data) = &row.record.row_data {
        let intact = match (&row.prev_hash, &row.row_hash) {
            (Some(prev), Some(stored)) => fluxbase_core::chain::row_hash(prev, &row.record)[..] == stored[..],
            _ => false,
        };
        let table = row.record.target_id.clone().unwrap_or_default();
        let decoded = if intact {
            crate::audit::row_capture::decode_rows(data, &table)
        } else {
            Err("the entry fails its hash check (run dashboard_auth.verify_audit_chain())".to_string())
        };
        match decoded {
            Ok(rows) => details["rows"] = rows,
            Err(e) => {
                details["rows"] = Value::Null;
                details["rows_error"] = json!(e);
            }
        }
    }
    Ok((row, details))
}

/// One audit entry's details as a reader sees them (a row-change entry's
/// changed rows decoded), or NULL when there is no such entry.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn audit_details(id: Option<i64>) -> Option<JsonB> {
    actor::reader();
    let id = id?;
    db::select(
        &format!("SELECT {ENTRY_COLUMNS} FROM dashboard_auth.audit_log WHERE id = $1"),
        &[id.into()],
        read_entry,
    )
    .into_iter()
    .next()
    .map(|(_, details)| JsonB(details))
}

