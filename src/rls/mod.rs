//! RLS debugging (issue 32): why a principal can or cannot see or change a
//! row (`dashboard.explain_access`, explain.rs, over the rules in
//! fluxbase_core::rls), and the security advisor (`dashboard.advisories`,
//! advisor.rs, catalog lints from sql/advisor_lints.sql plus parse-tree lints),
//! and why an UPDATE/DELETE as a user changed 0 rows (`dashboard.explain_zero_rows`,
//! zero_rows.rs: the admin's own view's matches, each key explained).
//!
//! May call: runtime, audit (audit::record), users (the impersonation's
//! pinned search path and claims, the SQL console's checks), explorer (the
//! admin's own view, zero_rows.rs). Nothing calls into it.

pub mod advisor;
pub mod explain;
pub mod zero_rows;
