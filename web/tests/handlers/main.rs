//! Handler tests: `app(state).oneshot(req)` against the real cluster that
//! scripts/test.sh starts (PGHOST/PGPORT exported). Each test gets a fresh
//! database with the extension, and the server connects as `fb_web`, a
//! non-superuser member of fluxbase_dashboard, as in production.

mod common;

mod account;
mod passkeys;
mod advisor;
mod auth;
mod sections;
mod replica;
mod security;
mod tables;
mod tables_ui;
mod tables_export;
