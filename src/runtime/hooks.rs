//! Where the runtime layer needs a capability above it, turned around: the
//! capability registers a function here when the library is loaded
//! (`_PG_init`), and the runtime calls it. So `runtime` imports no capability.

use std::sync::OnceLock;

static REFUSED: OnceLock<fn(&str)> = OnceLock::new();

/// Set by `audit::refusals::init`: called by `errors::raise` just before a
/// 42501 is raised (the refusal is audited).
pub fn on_refused(f: fn(&str)) {
    let _ = REFUSED.set(f);
}

/// A refusal is about to be raised. Never fails.
pub fn refused(reason: &str) {
    if let Some(f) = REFUSED.get() {
        f(reason);
    }
}
