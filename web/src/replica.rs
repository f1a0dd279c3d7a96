//! The read replica (`fluxbase serve --read-replica-url`): which requests it
//! serves, and what the server remembers about it.
//!
//! - `route_reads` (a layer of `routes::app`) marks each request: a GET or
//!   HEAD is `Replica` unless it is in `PRIMARY_GETS`, any other method is
//!   `Write`. GETs never write (the style rule), so the mark needs no help
//!   from the handlers; `db::Db::with_session_as` reads it. Requests without
//!   a session (setup, login, logout, health) and the Analytics sampler use
//!   `without_session`: always the primary. So do impersonated requests
//!   (`apply_impersonation` records an audit entry: a write, refused on a
//!   standby with 25006) and the live-update LISTEN connection (`live`).
//! - The session is validated on the primary for every request the replica
//!   serves (`validate_session`, the hot path, one index lookup; it also keeps
//!   the idle timer going, which a standby cannot do): a revoked or expired
//!   session is refused at once. What a page shows may lag by the replica's
//!   replay lag; the answer a POST renders comes from the primary, and after a
//!   POST the same session's reads wait for the replica to have replayed that
//!   write (its WAL position, remembered here for `OWN_WRITES_FOR`) or go to the
//!   primary: an admin sees their own changes.
//! - When the replica cannot take a request (unreachable, refusing the
//!   connection, not in a state to answer) the request is served by the
//!   primary and a line is logged; after such a failure the replica is left
//!   alone for `RETRY_AFTER`. A replica that fails in the middle of a request
//!   fails that request (see `db::Db::on_replica`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use deadpool_postgres::Pool;
use futures_util::Stream;
use sha2::{Digest, Sha256};

use crate::App;

/// Where a request's session transactions go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Route {
    /// A read-only request: the replica when there is one.
    Replica,
    /// A read-only request that the primary must answer (`PRIMARY_GETS`).
    Primary,
    /// A request that may write (POST, ...): the primary; its writes'
    /// position is remembered for the session's next reads.
    Write,
}

tokio::task_local! {
    static ROUTE: Route;
}

/// The current request's route; outside a request (background tasks, tests
/// calling `Db` directly): `Write`, i.e. the primary.
pub fn current() -> Route {
    ROUTE.try_with(|r| *r).unwrap_or(Route::Write)
}

/// Run `f` as if on a request with route `r` (for tests and callers outside
/// the router).
pub async fn scope<F: std::future::Future>(r: Route, f: F) -> F::Output {
    ROUTE.scope(r, f).await
}

/// GET pages that stay on the primary (prefixes of the path; `*` in the
/// middle matches one path segment):
const PRIMARY_GETS: &[&str] = &[
    // Analytics describes the server the dashboard writes to: its
    // connections, statements, cache and storage (and this process's pool).
    "/admin/analytics",
    // The 2FA enrolment page calls totp_setup, which stores a new secret.
    "/admin/account/2fa/required",
    // Live updates: the event stream belongs with the primary's LISTEN
    // connection (a standby has no NOTIFY).
    "/admin/tables/*/*/events",
];

fn primary_get(path: &str) -> bool {
    PRIMARY_GETS.iter().any(|p| {
        let want: Vec<&str> = p.split('/').collect();
        let got: Vec<&str> = path.split('/').collect();
        got.len() >= want.len() && want.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
    })
}

/// The route of a request by its method and path.
pub fn route_of(method: &Method, path: &str) -> Route {
    if method != Method::GET && method != Method::HEAD {
        Route::Write
    } else if primary_get(path) {
        Route::Primary
    } else {
        Route::Replica
    }
}

/// The layer: mark the request (see the module comment). A streamed body
/// (CSV export) is polled after the handler returned, outside its scope:
/// the mark goes with it.
pub async fn route_reads(State(app): State<App>, req: Request, next: Next) -> Response {
    if app.db.replica.is_none() {
        return next.run(req).await;
    }
    let route = route_of(req.method(), req.uri().path());
    let resp = ROUTE.scope(route, next.run(req)).await;
    if route != Route::Replica {
        return resp;
    }
    resp.map(|body| Body::from_stream(Scoped { route, inner: body.into_data_stream() }))
}

struct Scoped<S> {
    route: Route,
    inner: S,
}

impl<S: Stream + Unpin> Stream for Scoped<S> {
    type Item = S::Item;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<S::Item>> {
        let route = self.route;
        ROUTE.sync_scope(route, || std::pin::Pin::new(&mut self.inner).poll_next(cx))
    }
}

/// How long the replica is left alone after a connection failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a session's own last write is waited for on the replica.
pub const OWN_WRITES_FOR: Duration = Duration::from_secs(600);

/// The replica's pool and what the server remembers about it.
pub struct Replica {
    pub pool: Pool,
    down_until: Mutex<Option<Instant>>,
    /// SHA-256 of a session token → the primary's WAL position after that
    /// session's last write, and when.
    writes: Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Replica {
    pub fn new(pg: tokio_postgres::Config, size: usize) -> anyhow::Result<Replica> {
        Ok(Replica { pool: crate::db::pool(pg, size)?, down_until: Mutex::new(None), writes: Mutex::new(HashMap::new()) })
    }

    /// Whether to try the replica now (not within `RETRY_AFTER` of a failure).
    pub fn up(&self) -> bool {
        let mut d = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        match *d {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                *d = None;
                eprintln!("fluxbase serve: read replica: trying it again");
                true
            }
            None => true,
        }
    }

    /// The replica could not be reached: leave it alone for a while.
    pub fn failed(&self, why: &str) {
        let mut d = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if d.is_none() {
            eprintln!(
                "fluxbase serve: read replica: {why}; reads go to the primary for the next {} s",
                RETRY_AFTER.as_secs()
            );
        }
        *d = Some(Instant::now() + RETRY_AFTER);
        self.pool.retain(|_, _| false); // its connections are not to be reused
    }

    /// The replica failed a request it had started (a recovery conflict, a
    /// lost connection, ...): logged; after a lost connection the next
    /// requests go to the primary for a while.
    pub fn refused(&self, detail: &str) {
        eprintln!("fluxbase serve: read replica: a request failed there: {detail}");
        if detail.starts_with("database connection") || detail.contains("connection closed") || detail.contains("error communicating") {
            self.failed("the connection failed");
        }
    }

    /// Remember that `token`'s session wrote up to `lsn` on the primary.
    pub fn wrote(&self, token: &str, lsn: String) {
        let mut w = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        w.retain(|_, (_, at)| now.duration_since(*at) < OWN_WRITES_FOR);
        w.insert(key(token), (lsn, now));
    }

    /// The WAL position the replica must have replayed before serving
    /// `token`'s session (its own last write), if it wrote recently.
    pub fn own_write(&self, token: &str) -> Option<String> {
        let w = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        w.get(&key(token)).filter(|(_, at)| at.elapsed() < OWN_WRITES_FOR).map(|(l, _)| l.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gets_read_on_the_replica_except_the_primary_pages() {
        assert_eq!(route_of(&Method::GET, "/admin/tables/public/t/grid"), Route::Replica);
        assert_eq!(route_of(&Method::GET, "/admin/tables/public/t/export"), Route::Replica);
        assert_eq!(route_of(&Method::HEAD, "/admin/users"), Route::Replica);
        assert_eq!(route_of(&Method::GET, "/admin/audit/verify"), Route::Replica);
        assert_eq!(route_of(&Method::GET, "/admin/analytics"), Route::Primary);
        assert_eq!(route_of(&Method::GET, "/admin/account/2fa/required"), Route::Primary);
        assert_eq!(route_of(&Method::GET, "/admin/tables/public/t/events"), Route::Primary);
        assert_eq!(route_of(&Method::GET, "/admin/tables/events"), Route::Replica);
        assert_eq!(route_of(&Method::POST, "/admin/tables/public/t/cell"), Route::Write);
        assert_eq!(route_of(&Method::POST, "/admin/logout"), Route::Write);
        assert_eq!(route_of(&Method::DELETE, "/admin/users"), Route::Write);
    }

    #[test]
    fn own_writes_are_remembered_per_session() {
        let r = Replica::new(tokio_postgres::Config::new(), 1).unwrap();
        assert_eq!(r.own_write("fbs_a"), None);
        r.wrote("fbs_a", "0/16B3748".into());
        assert_eq!(r.own_write("fbs_a").as_deref(), Some("0/16B3748"));
        assert_eq!(r.own_write("fbs_b"), None);
    }
}
