//! The dashboard cannot be starved (issue 28 item 4). Each request is put in
//! a class by its path (`classify`, a middleware):
//!
//! - `Priority`: sign-in (setup, login, its 2FA step), sign-out, health and
//!   the step-up dialog. They take their connection from a small pool of
//!   their own (`Db::reserved`), which nothing else uses: however busy the
//!   pages are, an admin can still sign in, out, re-authenticate, and a
//!   monitor sees the server alive.
//! - `Timed`: the Tables section (explorer, exports, the SQL console): its
//!   statements run under `statement_timeout` (`--statement-timeout`, default
//!   15 s; the page that ran out says so), and at most `timed_share` of the
//!   main pool's connections serve it at once, so slow views leave the other
//!   sections their connections.
//! - `Normal`: everything else.
//!
//! A request waits at most `--pool-wait` (default 5 s) for a connection (or a
//! Tables slot), then gets the 503 page: never a hang.
//!
//! None of this holds authority: it only bounds what a request may use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::Stream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Normal,
    Timed,
    Priority,
}

tokio::task_local! {
    static CLASS: Class;
}

static STATEMENT_TIMEOUT_MS: AtomicU64 = AtomicU64::new(15_000);
static POOL_WAIT_MS: AtomicU64 = AtomicU64::new(5_000);

/// The statement timeout of the Tables section (explorer, export, SQL console).
pub fn statement_timeout() -> Duration {
    Duration::from_millis(STATEMENT_TIMEOUT_MS.load(Ordering::Relaxed))
}

pub fn set_statement_timeout(d: Duration) {
    STATEMENT_TIMEOUT_MS.store(d.as_millis().clamp(1, u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// How long a request waits for a pooled connection before the 503 page.
pub fn pool_wait() -> Duration {
    Duration::from_millis(POOL_WAIT_MS.load(Ordering::Relaxed))
}

pub fn set_pool_wait(d: Duration) {
    POOL_WAIT_MS.store(d.as_millis().clamp(1, u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// Connections of the reserved pool for `Priority` requests.
pub fn reserved_size(pool_size: usize) -> usize {
    (pool_size / 8).clamp(2, 4)
}

/// Connections of the main pool the Tables section may hold at once: three
/// quarters, at least one, and always at least one left for the rest.
pub fn timed_share(pool_size: usize) -> usize {
    if pool_size <= 1 {
        return 1;
    }
    (pool_size * 3 / 4).clamp(1, pool_size - 1)
}

/// The current request's class (outside a request: `Normal`).
pub fn current() -> Class {
    CLASS.try_with(|c| *c).unwrap_or(Class::Normal)
}

/// Run `f` in class `c` (a task spawned by a request, tests).
pub async fn scope<F: std::future::Future>(c: Class, f: F) -> F::Output {
    CLASS.scope(c, f).await
}

/// The class of a request to `path`.
pub fn class_of(path: &str) -> Class {
    const PRIORITY: &[&str] = &["/admin/healthz", "/admin/login", "/admin/login/2fa", "/admin/logout", "/admin/reauth", "/admin/setup",
        // passkeys (issue 33): the sign-in and step-up ceremonies
        "/admin/login/passkey/begin", "/admin/login/passkey/finish", "/admin/login/2fa/passkey/begin",
        "/admin/login/2fa/passkey/finish", "/admin/reauth/passkey/begin", "/admin/reauth/passkey/finish",
    ];
    if PRIORITY.contains(&path) {
        Class::Priority
    } else if path == "/admin/tables" || path.starts_with("/admin/tables/") {
        Class::Timed
    } else {
        Class::Normal
    }
}

/// The middleware: the request, and its body (an export streams), in its class.
pub async fn classify(req: Request, next: Next) -> Response {
    let class = class_of(req.uri().path());
    let resp = CLASS.scope(class, next.run(req)).await;
    if class == Class::Normal {
        return resp;
    }
    resp.map(|body| Body::from_stream(Scoped { class, inner: body.into_data_stream() }))
}

struct Scoped<S> {
    class: Class,
    inner: S,
}

impl<S: Stream + Unpin> Stream for Scoped<S> {
    type Item = S::Item;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<S::Item>> {
        let class = self.class;
        CLASS.sync_scope(class, || std::pin::Pin::new(&mut self.inner).poll_next(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        for p in ["/admin/login", "/admin/logout", "/admin/healthz", "/admin/reauth", "/admin/login/2fa", "/admin/setup"] {
            assert_eq!(class_of(p), Class::Priority, "{p}");
        }
        for p in ["/admin/tables", "/admin/tables/sql", "/admin/tables/public/t/export", "/admin/tables/public/t"] {
            assert_eq!(class_of(p), Class::Timed, "{p}");
        }
        for p in ["/admin", "/admin/users", "/admin/tablesx", "/admin/login/other", "/admin/audit"] {
            assert_eq!(class_of(p), Class::Normal, "{p}");
        }
    }

    #[test]
    fn shares() {
        assert_eq!(timed_share(16), 12);
        assert_eq!(timed_share(2), 1);
        assert_eq!(timed_share(1), 1);
        assert_eq!(reserved_size(16), 2);
        assert_eq!(reserved_size(64), 4);
    }
}
