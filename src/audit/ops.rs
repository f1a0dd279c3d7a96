//! Shipping and retiring the audit trail (issue 35): `audit_entries` reads
//! the chain in order with everything its hashes cover, for `fluxbase audit
//! tail` (a SIEM feed) and `fluxbase audit archive`; `purge_audit_through`
//! removes exactly the prefix an archive holds.
//!
//! The purge takes no chain lock: the rows it deletes (ids up to a committed
//! chain head) are final, appends only add ids after the head, and verification
//! reads the rows and the checkpoint in one snapshot. So a purge of millions of
//! entries holds up no sign-in or other audited action (each appends at commit
//! under the chain lock); purges queue for each other on audit_checkpoints
//! (`record::lock_purges`). `purge_audit(interval)` does the same (issue 35).

use pgrx::datum::{JsonB, TimestampWithTimeZone, Uuid};
use pgrx::prelude::*;
use serde_json::json;

use crate::audit::{record, Event};
use crate::runtime::errors::raise;
use crate::runtime::{actor, db};
use fluxbase_core::{Code, FbError};

/// Most entries one call returns.
const MAX_ROWS: i32 = 10_000;

/// Audit entries after `after_id`, in chain order (id ascending), at most
/// `max_rows` (1..10000): every column the row hash covers, in the form it is
/// hashed (`details_text` as jsonb_out writes it, `ip` as inet_out writes it,
/// `occurred_at_us` microseconds since 2000-01-01 UTC), the decoded changed rows
/// of a row-change entry (`rows`, NULL otherwise), and `prev_hash`/`row_hash`.
/// `row_hash = sha256(prev_hash || canonical(entry))` (core/src/chain.rs) lets a
/// reader check each entry and that each follows the one before.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn audit_entries(
    after_id: Option<i64>,
    max_rows: default!(Option<i32>, 1000),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(occurred_at, Option<TimestampWithTimeZone>),
        name!(occurred_at_us, i64),
        name!(actor_id, Option<Uuid>),
        name!(actor, String),
        name!(action, String),
        name!(target_type, Option<String>),
        name!(target_id, Option<String>),
        name!(details_text, String),
        name!(ip, Option<String>),
        name!(success, bool),
        name!(db_user, String),
        name!(txid, i64),
        name!(impersonation_session_id, Option<Uuid>),
        name!(row_data, Option<Vec<u8>>),
        name!(rows, Option<JsonB>),
        name!(prev_hash, Option<Vec<u8>>),
        name!(row_hash, Option<Vec<u8>>),
    ),
> {
    actor::reader();
    let after = after_id.unwrap_or(0);
    if after < 0 {
        raise(FbError::invalid("after_id must be 0 or more"));
    }
    let n = max_rows.unwrap_or(1000);
    if !(1..=MAX_ROWS).contains(&n) {
        raise(FbError::invalid(format!("max_rows must be between 1 and {MAX_ROWS}")));
    }
    let rows = db::select(
        "SELECT id, occurred_at, actor_id, actor, action, target_type, target_id,
                pg_catalog.jsonb_out(details)::text AS details_text, pg_catalog.inet_out(ip)::text AS ip_text,
                success, db_user, txid, impersonation_session_id, row_data, prev_hash, row_hash
           FROM dashboard_auth.audit_log WHERE id > $1 ORDER BY id LIMIT $2",
        &[after.into(), (n as i64).into()],
        |r| {
            let occurred = r.get::<TimestampWithTimeZone>(2)?;
            let row_data = r.get::<Vec<u8>>(14)?;
            let target_id = r.get::<String>(7)?;
            let prev = r.get::<Vec<u8>>(15)?;
            let stored = r.get::<Vec<u8>>(16)?;
            Ok((
                r.get::<i64>(1)?.unwrap_or(0),
                occurred,
                occurred.map(|t| t.into_inner()).unwrap_or(0),
                r.get::<Uuid>(3)?,
                r.get::<String>(4)?.unwrap_or_default(),
                r.get::<String>(5)?.unwrap_or_default(),
                r.get::<String>(6)?,
                target_id,
                r.get::<String>(8)?.unwrap_or_default(),
                r.get::<String>(9)?,
                r.get::<bool>(10)?.unwrap_or(false),
                r.get::<String>(11)?.unwrap_or_default(),
                r.get::<i64>(12)?.unwrap_or(0),
                r.get::<Uuid>(13)?,
                row_data,
                prev,
                stored,
            ))
        },
    );
    let out = rows.into_iter().map(
        |(id, at, at_us, actor_id, actor, action, tt, tid, details, ip, success, db_user, txid, imp, data, prev, stored)| {
            // The changed rows, decoded as audit_search shows them (only from
            // an image its own hash vouches for; a reader checks that too).
            let decoded = data.as_ref().map(|d| {
                let rec = fluxbase_core::chain::ChainRecord {
                    id,
                    occurred_at_us: at_us,
                    actor_id: actor_id.map(|u| *u),
                    actor: actor.clone(),
                    action: action.clone(),
                    target_type: tt.clone(),
                    target_id: tid.clone(),
                    details: details.clone(),
                    ip: ip.clone(),
                    success,
                    db_user: db_user.clone(),
                    txid,
                    impersonation_session_id: imp.map(|u| *u),
                    row_data: Some(d.clone()),
                };
                let intact = match (&prev, &stored) {
                    (Some(p), Some(s)) => fluxbase_core::chain::row_hash(p, &rec)[..] == s[..],
                    _ => false,
                };
                let table = tid.clone().unwrap_or_default();
                match intact.then(|| crate::audit::row_capture::decode_rows(d, &table)) {
                    Some(Ok(v)) => JsonB(v),
                    Some(Err(e)) => JsonB(json!({"rows_error": e})),
                    None => JsonB(json!({"rows_error": "the entry fails its hash check"})),
                }
            });
            (id, at, at_us, actor_id, actor, action, tt, tid, details, ip, success, db_user, txid, imp, data, decoded, prev, stored)
        },
    );
    TableIterator::new(out.collect::<Vec<_>>())
}

/// Delete the audit entries with ids up to `last_id` (an archive's last entry:
/// `fluxbase audit archive`), recording a checkpoint (that entry's id and hash)
/// so `verify_audit_chain()` still verifies the rest. Returns the number of
/// entries removed (0 when none is left up to `last_id`). Needs a recent
/// re-authentication (step-up) like purge_audit, and is audited
/// (`audit.purge`). Takes no chain lock (see the module comment).
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn purge_audit_through(last_id: Option<i64>) -> i64 {
    let Some(last_id) = last_id else {
        raise(FbError::new(Code::NullValue, "last_id must not be null"));
    };
    if last_id < 1 {
        raise(FbError::invalid("last_id must be 1 or more"));
    }
    actor::writer("purging the audit log");
    crate::runtime::hooks::require_recent_auth(fluxbase_core::stepup::Action::PurgeAudit);
    db::refuse_on_standby("purge the audit log");
    let who = actor::current().label();
    let purged = db::as_extension_owner(|| {
        // Purges queue for each other, not for appends or readers.
        let head = crate::audit::record::lock_purges();
        if last_id > head {
            raise(FbError::invalid(format!("last_id {last_id} is past the newest audit entry ({head})")));
        }
        let hash = db::one::<Vec<u8>>("SELECT row_hash FROM dashboard_auth.audit_log WHERE id = $1", &[last_id.into()]);
        let Some(hash) = hash else {
            // already purged (a checkpoint at or past it): nothing to do
            let done = db::one::<i64>("SELECT max(last_purged_id) FROM dashboard_auth.audit_checkpoints", &[])
                .is_some_and(|upto| upto >= last_id);
            if done {
                return 0i64;
            }
            raise(FbError::new(Code::WrongState, "the audit chain is damaged: verify it first"));
        };
        crate::audit::record::delete_through(last_id, hash, &who)
    });
    crate::audit::append::witness_at_commit();
    record(
        Event::new("audit.purge", "audit_log", last_id.to_string())
            .details(json!({"through_id": last_id, "purged_rows": purged, "last_purged_id": last_id})),
    );
    purged
}

/// The newest purge checkpoint: where the live chain continues (id 0 and the
/// genesis hash when nothing was ever purged). `fluxbase audit verify
/// --archive` joins archives to the live log with it.
#[pg_extern(schema = "dashboard_auth", security_definer)]
#[search_path(pg_catalog, pg_temp)]
pub fn audit_checkpoint() -> TableIterator<'static, (name!(last_purged_id, i64), name!(last_purged_hash, Vec<u8>))> {
    actor::reader();
    let cp = db::as_extension_owner(|| {
        db::select(
            "SELECT last_purged_id, last_purged_hash FROM dashboard_auth.audit_checkpoints ORDER BY id DESC LIMIT 1",
            &[],
            |r| Ok((r.get::<i64>(1)?.unwrap_or(0), r.get::<Vec<u8>>(2)?.unwrap_or_default())),
        )
    });
    TableIterator::once(cp.into_iter().next().unwrap_or((0, fluxbase_core::chain::GENESIS.to_vec())))
}
