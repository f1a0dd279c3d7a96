//! Refused API calls are audited (issue 17, item 10; ASVS V7: log
//! authorization failures). A refusal (SQLSTATE 42501 raised by the API)
//! aborts its transaction, and every audit entry queued in it with it; so
//! the refusal is handed to a dynamic background worker (no
//! shared_preload_libraries needed: the worker loads this library) through a
//! dynamic shared memory segment, and the worker appends it in a transaction
//! of its own through the normal commit-time append (chained like every other
//! entry). The refusing backend never waits for the worker.
//!
//! Rate-limited, so a flood cannot fill the disk: each backend hands over at
//! most PER_BACKEND refusals a minute, and the worker drops one when the log
//! holds GLOBAL refusals of the last minute already; what is dropped is
//! counted in the next entry that is recorded (`suppressed`).

use std::cell::Cell;

use fluxbase_core::chain::{self, ChainRecord};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::json;

use crate::runtime::{actor, db};

/// Refusals one backend hands over per minute.
const PER_BACKEND: u32 = 10;
/// Refusals the log takes per minute, from all backends together.
const GLOBAL: i64 = 100;

thread_local! {
    /// (start of the current minute in µs, refusals handed over in it)
    static WINDOW: Cell<(i64, u32)> = const { Cell::new((0, 0)) };
    /// refusals not handed over since the last one that was
    static SUPPRESSED: Cell<u32> = const { Cell::new(0) };
    /// set while a refusal that is not an API call's is raised
    static UNRECORDED: Cell<bool> = const { Cell::new(false) };
}

/// Raise without recording (a refusal that is not an API call's, such as
/// the audit log's own append-only guard).
pub fn unrecorded<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            UNRECORDED.with(|u| u.set(self.0));
        }
    }
    let _reset = Reset(UNRECORDED.with(|u| u.replace(true)));
    f()
}

/// At load (`_PG_init`): `errors::raise` calls `note` through this hook.
pub fn init() {
    crate::runtime::hooks::on_refused(note);
}

/// Called just before a 42501 is raised: hand the refusal to a worker.
/// Never fails (a refusal that cannot be handed over is counted as suppressed).
pub fn note(reason: &str) {
    unsafe {
        if UNRECORDED.with(|u| u.get())
            // (IsBackgroundWorker is gone in PostgreSQL 18; the backend type is on both)
            || pg_sys::MyBackendType == pg_sys::BackendType::B_BG_WORKER
            || pg_sys::ParallelWorkerNumber >= 0
            || pg_sys::MyDatabaseId == pg_sys::InvalidOid
            || !pg_sys::IsTransactionState()
            || pg_sys::creating_extension
        {
            return;
        }
    }
    let now = crate::audit::append::now();
    let allowed = WINDOW.with(|w| {
        let (start, n) = w.get();
        if now - start >= 60_000_000 {
            w.set((now, 1));
            true
        } else if n < PER_BACKEND {
            w.set((start, n + 1));
            true
        } else {
            false
        }
    });
    if !allowed || !hand_over(reason, now) {
        SUPPRESSED.with(|s| s.set(s.get().saturating_add(1)));
    }
}

fn hand_over(reason: &str, now: i64) -> bool {
    let actor = actor::current();
    let suppressed = SUPPRESSED.with(|s| s.get());
    let mut details = json!({"reason": reason, "sqlstate": "42501"});
    if suppressed > 0 {
        details["suppressed"] = json!(suppressed);
    }
    let rec = ChainRecord {
        occurred_at_us: now,
        actor_id: actor.id().map(|u| *u),
        actor: actor.label(),
        action: "api.refused".into(),
        target_type: Some("api".into()),
        target_id: None,
        details: details.to_string(),
        success: false,
        db_user: db::session_user_name(),
        ..Default::default()
    };
    let bytes = chain::spill_encode(0, &rec);
    unsafe {
        let seg = pg_sys::dsm_create(4 + bytes.len(), pg_sys::DSM_CREATE_NULL_IF_MAXSEGMENTS as i32);
        if seg.is_null() {
            return false;
        }
        let at = pg_sys::dsm_segment_address(seg).cast::<u8>();
        std::ptr::copy_nonoverlapping((bytes.len() as u32).to_le_bytes().as_ptr(), at, 4);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.add(4), bytes.len());
        let handle = pg_sys::dsm_segment_handle(seg);
        // (kept when we detach, until the worker has read it)
        pg_sys::dsm_pin_segment(seg);
        let started = BackgroundWorkerBuilder::new("fluxbase_admin refusal audit")
            .set_type("fluxbase_admin refusal audit")
            .set_library("fluxbase_admin")
            .set_function("fluxbase_refusal_worker")
            .set_argument(Some(pg_sys::Datum::from(handle as usize)))
            .set_extra(&pg_sys::MyDatabaseId.to_u32().to_string())
            .enable_spi_access()
            .set_restart_time(None)
            .load_dynamic()
            .is_ok();
        if !started {
            pg_sys::dsm_unpin_segment(handle);
        }
        pg_sys::dsm_detach(seg);
        if started {
            SUPPRESSED.with(|s| s.set(0));
        }
        started
    }
}

/// The worker: read the refusal, append it (rate permitting), exit.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn fluxbase_refusal_worker(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let handle = arg.value() as pg_sys::dsm_handle;
    let Ok(dboid) = BackgroundWorker::get_extra().parse::<u32>() else { return };
    let record = unsafe {
        let seg = pg_sys::dsm_attach(handle);
        if seg.is_null() {
            return;
        }
        let at = pg_sys::dsm_segment_address(seg).cast::<u8>();
        let mut len = [0u8; 4];
        std::ptr::copy_nonoverlapping(at, len.as_mut_ptr(), 4);
        let bytes = std::slice::from_raw_parts(at.add(4), u32::from_le_bytes(len) as usize).to_vec();
        pg_sys::dsm_unpin_segment(handle);
        pg_sys::dsm_detach(seg);
        chain::spill_decode(&bytes)
    };
    let Some((_, mut rec)) = record else { return };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(dboid)), None);
    BackgroundWorker::transaction(move || {
        let recent = db::one::<i64>(
            "SELECT pg_catalog.count(*) FROM dashboard_auth.audit_log
              WHERE action = 'api.refused' AND occurred_at > pg_catalog.clock_timestamp() - interval '1 minute'",
            &[],
        )
        .unwrap_or(0);
        if recent < GLOBAL {
            rec.txid = crate::audit::append::current_txid();
            crate::audit::append::queue(rec, None);
        }
    });
}
