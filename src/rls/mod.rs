//! RLS debugging (issue 32): why a principal can or cannot see or change a
//! row (`dashboard.explain_access`, explain.rs, over the rules in
//! fluxbase_core::rls), and the security advisor (`dashboard.advisories`,
//! advisor.rs, catalog lints from sql/advisor_lints.sql plus parse-tree lints).
//!
//! May call: runtime, audit (audit::record), users (the impersonation's
//! pinned search path and claims). Nothing calls into it.

pub mod advisor;
pub mod explain;
