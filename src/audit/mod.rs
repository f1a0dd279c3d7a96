//! The audit trail: `record` (the one way every capability writes an entry,
//! and the audit log's SQL API), the triggers on audited tables and on the log
//! itself (`triggers`, `row_capture`), the chained append at commit (`append`,
//! `direct_table`) and the audit of refused calls (`refusals`).
//!
//! May call: `runtime`. No other capability: what audit needs from above (the
//! step-up check before purging or disabling it) comes through
//! `runtime::hooks`.

pub mod append;
/// Streaming and retention with proof: audit_entries, purge_audit_through, audit_checkpoint (issue 35).
pub mod ops;
pub mod direct_table;
pub mod record;
pub mod refusals;
pub mod row_capture;
pub mod row_json;
pub mod triggers;

pub use record::{api_scope, record, Event};
