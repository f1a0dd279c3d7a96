//! The dashboard's own admins (schema `dashboard_auth`): accounts, sessions
//! and their token probe (`fastpath`), two-factor, invitations, password
//! resets, step-up re-authentication and the typed settings.
//!
//! May call: `runtime`, `audit`. (Named `admin`, not `auth`: `auth` is the
//! app users' SQL schema, declared in lib.rs.)

pub mod accounts;
pub mod fastpath;
pub mod invitations;
pub mod mfa;
pub mod passkeys;
pub mod password_resets;
pub mod sessions;
pub mod settings;
pub mod stepup;
