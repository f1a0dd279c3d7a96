//! Where the runtime layer needs a capability above it, turned around: the
//! capability registers a function here when the library is loaded
//! (`_PG_init`), and the runtime calls it. So `runtime` imports no capability.

use std::sync::OnceLock;

use fluxbase_core::stepup::Action;

static REFUSED: OnceLock<fn(&str)> = OnceLock::new();
static REQUIRE_RECENT_AUTH: OnceLock<fn(Action)> = OnceLock::new();

/// Set by `audit::refusals::init`: called by `errors::raise` just before a
/// 42501 is raised (the refusal is audited).
pub fn on_refused(f: fn(&str)) {
    let _ = REFUSED.set(f);
}

/// Set by `admin::stepup::init`: the step-up check of a destructive call
/// made by a layer under admin (the audit log's purge and disable).
pub fn on_require_recent_auth(f: fn(Action)) {
    let _ = REQUIRE_RECENT_AUTH.set(f);
}

/// A refusal is about to be raised. Never fails.
pub fn refused(reason: &str) {
    if let Some(f) = REFUSED.get() {
        f(reason);
    }
}

/// `admin::stepup::require_recent_auth(action)`: raises unless the acting
/// admin re-authenticated recently enough. Fails closed: with no check
/// registered, the call is refused.
pub fn require_recent_auth(action: Action) {
    match REQUIRE_RECENT_AUTH.get() {
        Some(f) => f(action),
        None => crate::runtime::errors::raise(fluxbase_core::FbError::new(
            fluxbase_core::Code::WrongState,
            "fluxbase_admin: the step-up check is not registered",
        )),
    }
}
