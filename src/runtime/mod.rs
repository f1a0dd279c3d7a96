//! The layer under every capability: SPI helpers (`db`), errors and SQLSTATEs
//! (`errors`), jsonb (`json`), version differences (`pgcompat`), who is acting
//! (`actor`) and the confinement of code the dashboard did not write
//! (`confine`).
//!
//! May call: pgrx, fluxbase_core and its own modules, nothing else of this
//! crate. Where it must reach up (a refusal is audited, a destructive call
//! needs a recent re-authentication), it calls a hook in `hooks` that the
//! capability registers at load (`_PG_init`). scripts/check-layers.py enforces it.

pub mod actor;
pub mod confine;
pub mod db;
pub mod errors;
pub mod hooks;
pub mod json;
pub mod pgcompat;
