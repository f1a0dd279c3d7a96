//! The liveness rule of an admin session, as `validate_session` applies it on
//! every dashboard request (through `dashboard_auth._session_live`, src/sessions.rs).
//!
//! The rule, in the order it is checked (the order of the SQL contract in
//! src/fastpath.rs's doc comment):
//! 1. a revoked session (any `revoked_at`) is dead;
//! 2. past its absolute expiry (`expires_at <= now`) it is dead;
//! 3. idle for its idle timeout (`last_seen_at + idle_timeout <= now`) it is dead;
//! 4. otherwise it is live, and `last_seen_at` is refreshed when it is older than
//!    `now - least(60 seconds, idle_timeout / 10)` ("stale"), so the hot path
//!    writes at most about once a minute per session.
//!
//! Times are Postgres timestamps (microseconds since 2000-01-01). Interval
//! arithmetic (`last_seen_at + idle_timeout` is calendar and time-zone aware)
//! is Postgres' own: the caller passes it as closures, evaluated only when the
//! rule gets that far, as the SQL `AND` chain would.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Revoked,
    Expired,
    Idle,
    /// Live; `refresh`: `last_seen_at` is stale and should be set to now.
    Live { refresh: bool },
}

impl Liveness {
    pub fn is_live(self) -> bool {
        matches!(self, Liveness::Live { .. })
    }
}

/// Apply the rule. `idle_end` is `last_seen_at + idle_timeout`; `stale_before`
/// is `now - least(60 seconds, idle_timeout / 10)`.
pub fn liveness(
    now: i64,
    revoked: bool,
    expires_at: i64,
    last_seen_at: i64,
    idle_end: impl FnOnce() -> i64,
    stale_before: impl FnOnce() -> i64,
) -> Liveness {
    if revoked {
        return Liveness::Revoked;
    }
    if expires_at <= now {
        return Liveness::Expired;
    }
    if idle_end() <= now {
        return Liveness::Idle;
    }
    Liveness::Live { refresh: last_seen_at < stale_before() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000; // one second
    const NOW: i64 = 800_000_000 * S;

    fn check(revoked: bool, expires_in: i64, seen_ago: i64, idle: i64) -> Liveness {
        let last_seen = NOW - seen_ago;
        liveness(NOW, revoked, NOW + expires_in, last_seen, || last_seen + idle, || NOW - (60 * S).min(idle / 10))
    }

    #[test]
    fn revoked_beats_everything() {
        assert_eq!(check(true, 3600 * S, 0, 1800 * S), Liveness::Revoked);
    }

    #[test]
    fn absolute_expiry_is_exclusive_at_now() {
        assert_eq!(check(false, 0, 0, 1800 * S), Liveness::Expired);
        assert_eq!(check(false, -S, 0, 1800 * S), Liveness::Expired);
        assert!(check(false, 1, 0, 1800 * S).is_live());
    }

    #[test]
    fn idle_expiry_is_exclusive_at_now() {
        assert_eq!(check(false, 3600 * S, 1800 * S, 1800 * S), Liveness::Idle);
        assert_eq!(check(false, 3600 * S, 1801 * S, 1800 * S), Liveness::Idle);
        assert!(check(false, 3600 * S, 1799 * S, 1800 * S).is_live());
    }

    #[test]
    fn refresh_only_when_stale() {
        // long idle timeout: stale after 60 s
        assert_eq!(check(false, 3600 * S, 59 * S, 1800 * S), Liveness::Live { refresh: false });
        assert_eq!(check(false, 3600 * S, 60 * S, 1800 * S), Liveness::Live { refresh: false });
        assert_eq!(check(false, 3600 * S, 61 * S, 1800 * S), Liveness::Live { refresh: true });
        // short idle timeout (5 minutes): stale after a tenth of it, 30 s
        assert_eq!(check(false, 3600 * S, 29 * S, 300 * S), Liveness::Live { refresh: false });
        assert_eq!(check(false, 3600 * S, 31 * S, 300 * S), Liveness::Live { refresh: true });
    }

    #[test]
    fn interval_arithmetic_runs_only_when_needed() {
        let boom = || -> i64 { panic!("must not be evaluated") };
        assert_eq!(liveness(NOW, true, NOW + S, NOW, boom, boom), Liveness::Revoked);
        assert_eq!(liveness(NOW, false, NOW, NOW, boom, boom), Liveness::Expired);
        assert_eq!(liveness(NOW, false, NOW + S, NOW, || NOW, boom), Liveness::Idle);
    }
}
