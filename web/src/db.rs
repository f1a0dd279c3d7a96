//! The connection pool and the ONE place that opens transactions. A request
//! with a session runs `f` inside `BEGIN; SELECT dashboard_auth.use_session($1);
//! ...; COMMIT` (as the CLI's `query_with`): every check and audit entry is the
//! database's, under the admin's name. SQLSTATE 28000 from use_session means
//! the session expired or was revoked (`WebError::Expired`).
//!
//! With a read replica (`fluxbase serve --read-replica-url`), a request that
//! `replica::route_reads` marked read-only runs its session transaction on
//! the replica, READ ONLY; everything else, and every fallback, on the
//! primary. See `replica` for the rules and why.

use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::error::WebError;
use crate::replica::{Replica, Route};

/// Who a request acts as: the admin, and the impersonation it runs under.
pub struct Viewer {
    pub me: Uuid,
    pub imp: Option<crate::api::impersonation::Live>,
}

/// A transaction of a pooled connection; what every `api::*` function takes.
pub type Tx<'a> = deadpool_postgres::Transaction<'a>;

pub struct Db {
    /// The primary: every write, and every read not sent to the replica.
    pub pool: Pool,
    /// A few connections to the primary that only sign-in, sign-out, health
    /// and the step-up dialog use (`limits`).
    pub reserved: Pool,
    /// Slots of `pool` the Tables section may hold at once (`limits::timed_share`).
    pub timed: std::sync::Arc<tokio::sync::Semaphore>,
    /// The read replica, when configured (`replica`).
    pub replica: Option<crate::replica::Replica>,
}

/// The `search_path` of every connection and transaction of the server:
/// only the system catalog (and the session's own temporary schema, last),
/// so that no function, operator or type a database user created in
/// `public` or in a schema named after the login can stand in for a
/// built-in one (issue 28). Every name the server writes is schema-qualified
/// as well.
pub const SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Behind a transaction-pooling pooler (`fluxbase serve --pooler`): no
/// statement kept prepared across transactions (each is prepared and closed
/// inside its transaction), and `search_path` pinned by `SET LOCAL` in every
/// transaction instead of the `options` startup parameter (which pgbouncer
/// refuses, and which would pin one server connection only). Set once at
/// startup.
static POOLER: AtomicBool = AtomicBool::new(false);

pub fn set_pooler(on: bool) {
    POOLER.store(on, Ordering::Relaxed);
}

pub fn pooler() -> bool {
    POOLER.load(Ordering::Relaxed)
}

/// `pg` with `search_path` pinned at connect time: the `options` startup
/// parameter `-c search_path=pg_catalog,pg_temp`, after any options of the
/// caller's (so it wins). In pooler mode `pg` unchanged (see `begin`).
pub fn pinned(pg: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut pg = pg.clone();
    if !pooler() {
        let pin = "-c search_path=pg_catalog,pg_temp";
        let opts = match pg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} {pin}"),
            _ => pin.to_string(),
        };
        pg.options(&opts);
    }
    pg
}

/// Begin a transaction on `client`; in pooler mode pin `search_path` for it.
pub async fn begin(client: &mut deadpool_postgres::Object) -> Result<Tx<'_>, WebError> {
    let tx = client.transaction().await?;
    pin_tx(&tx).await?;
    Ok(tx)
}

/// In pooler mode: `SET LOCAL search_path` in `tx` (a no-op otherwise: the
/// connection's own setting holds).
pub async fn pin_tx(tx: &Tx<'_>) -> Result<(), WebError> {
    if pooler() {
        tx.batch_execute("SET LOCAL search_path TO pg_catalog, pg_temp").await?;
    }
    Ok(())
}

pub(crate) fn pool(pg: tokio_postgres::Config, size: usize) -> anyhow::Result<Pool> {
    let pg = pinned(&pg);
    let mgr = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    // (the runtime lets a wait for a connection be bounded: `get`)
    Ok(Pool::builder(mgr).max_size(size.max(1)).runtime(deadpool_postgres::Runtime::Tokio1).build()?)
}

/// A connection of `pool`, waiting at most `limits::pool_wait()` for one:
/// `WebError::Unavailable` (the 503 page) when none came free in time.
pub(crate) async fn get(pool: &Pool) -> Result<deadpool_postgres::Object, WebError> {
    let wait = crate::limits::pool_wait();
    let t = deadpool_postgres::Timeouts { wait: Some(wait), ..Default::default() };
    pool.timeout_get(&t).await.map_err(|e| match e {
        deadpool_postgres::PoolError::Timeout(_) => WebError::Unavailable(format!(
            "every database connection of the dashboard is in use (waited {} s)",
            wait.as_secs_f32()
        )),
        // (the database's own message: "db error" alone says nothing)
        deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
            Some(db) => WebError::internal(format!("database connection: {}: {}", db.code().code(), db.message())),
            None => WebError::internal(format!("database connection: {e}")),
        },
        e => WebError::internal(format!("database connection: {e}")),
    })
}

/// A pooled connection, with the Tables slot it holds (if any).
pub struct Conn {
    pub obj: deadpool_postgres::Object,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::ops::Deref for Conn {
    type Target = deadpool_postgres::Object;
    fn deref(&self) -> &Self::Target {
        &self.obj
    }
}

impl Db {
    pub fn new(pg: tokio_postgres::Config, size: usize) -> anyhow::Result<Db> {
        let size = size.max(1);
        Ok(Db {
            reserved: pool(pg.clone(), crate::limits::reserved_size(size))?,
            pool: pool(pg, size)?,
            timed: std::sync::Arc::new(tokio::sync::Semaphore::new(crate::limits::timed_share(size))),
            replica: None,
        })
    }

    /// A connection for the current request's class (`limits`): `Priority`
    /// from the reserved pool; `Timed` once it holds one of the Tables
    /// section's slots; every wait bounded (503).
    async fn client(&self) -> Result<Conn, WebError> {
        use crate::limits::Class;
        match crate::limits::current() {
            Class::Priority => Ok(Conn { obj: get(&self.reserved).await?, _slot: None }),
            Class::Timed => {
                let wait = crate::limits::pool_wait();
                let slot = match tokio::time::timeout(wait, self.timed.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => {
                        return Err(WebError::Unavailable(format!(
                            "every database connection the Tables section may use is busy (waited {} s)",
                            wait.as_secs_f32()
                        )))
                    }
                };
                Ok(Conn { obj: get(&self.pool).await?, _slot: Some(slot) })
            }
            Class::Normal => Ok(Conn { obj: get(&self.pool).await?, _slot: None }),
        }
    }

    /// Run `f` as the admin of `token`; `f` gets the admin's id.
    pub async fn with_session<T>(
        &self,
        token: &str,
        f: impl AsyncFnOnce(&Tx<'_>, Uuid) -> Result<T, WebError>,
    ) -> Result<T, WebError> {
        let (_, _, out) = self.with_session_as(token, None, async |_, _| Ok(()), async |tx, v| f(tx, v.me).await).await?;
        Ok(out)
    }

    /// The Tables section's transaction: `use_session(token)`; when `imp`
    /// names a live impersonation of this admin, `pre` runs as the admin (the
    /// page's chrome: the dashboard API is out of reach once the role is
    /// switched), then `dashboard.apply_impersonation(imp)`, then `f` as the
    /// impersonated user, so RLS decides everything `f` sees and changes; all
    /// in the one transaction. An ended or expired `imp` is dropped
    /// (`Viewer::imp` is None: the caller clears its cookie) and `f` runs as
    /// the admin.
    ///
    /// On a read-only request with a replica configured and no impersonation
    /// (`apply_impersonation` records an audit entry: a write), the
    /// transaction runs on the replica, READ ONLY (`on_replica`); when the
    /// replica cannot take it, on the primary.
    pub async fn with_session_as<P, T, Pre, F>(
        &self,
        token: &str,
        imp: Option<Uuid>,
        pre: Pre,
        f: F,
    ) -> Result<(Viewer, P, T), WebError>
    where
        Pre: AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<P, WebError>,
        F: AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<T, WebError>,
    {
        let route = crate::replica::current();
        let (pre, f) = match (&self.replica, route, imp) {
            (Some(rep), Route::Replica, None) => match self.on_replica(rep, token, pre, f).await {
                Tried::Done(out) => return out,
                Tried::Back(pre, f) => {
                    crate::prom::replica_fallback();
                    (pre, f)
                }
            },
            _ => (pre, f),
        };
        let mut client = self.client().await?;
        let tx = begin(&mut client.obj).await?;
        let out = session_tx(&tx, token, imp, pre, f).await?;
        tx.commit().await?;
        if let (Some(rep), Route::Write) = (&self.replica, route) {
            // Read-your-writes: this session's next reads wait for the
            // replica to have replayed this far (or go to the primary).
            // The insert position is at or past the commit record just written.
            if let Ok(row) = client.query_typed("SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text", &[]).await {
                if let Some(row) = row.first() {
                    rep.wrote(token, row.get(0));
                }
            }
        }
        Ok(out)
    }

    /// A read-only request's session transaction on the replica, READ ONLY.
    /// `pre` and `f` come back (`Tried::Back`), not yet run, when the primary
    /// must answer instead: the replica is down or marked down (logged); the
    /// primary does not know the session as live (it answers with authority:
    /// revoked, expired); the replica does not know it yet (a login it has
    /// not replayed) or has not replayed this session's own last write. Once
    /// `f` has started on the replica its answer is final (a closure runs
    /// once): a replica failing in the middle of a request (a recovery
    /// conflict, a crash) costs that request a 500 page; the next goes to
    /// the primary.
    async fn on_replica<P, T, Pre, F>(&self, rep: &Replica, token: &str, pre: Pre, f: F) -> Tried<Result<(Viewer, P, T), WebError>, Pre, F>
    where
        Pre: AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<P, WebError>,
        F: AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<T, WebError>,
    {
        if !rep.up() {
            return Tried::Back(pre, f);
        }
        // The session is checked on the primary first (validate_session, the
        // hot path; it also keeps the idle timer going, which a standby
        // cannot): a revocation or expiry holds at once, not after the
        // replica's lag. Only the data a page shows can lag.
        let live = async {
            let client = self.client().await.ok()?;
            // An unnamed statement: one round trip, and nothing kept prepared
            // (a transaction pooler may hand the next statement to another
            // server connection).
            let rows = client.query_typed("SELECT 1 FROM dashboard_auth.validate_session($1)", &[(&token, Type::TEXT)]).await.ok()?;
            Some(!rows.is_empty())
        };
        if live.await != Some(true) {
            return Tried::Back(pre, f);
        }
        let mut client = match rep.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                rep.failed(&format!("cannot connect: {e}"));
                return Tried::Back(pre, f);
            }
        };
        let tx = match client.build_transaction().read_only(true).start().await {
            Ok(tx) => tx,
            Err(e) => {
                rep.failed(&format!("cannot begin a transaction: {e}"));
                return Tried::Back(pre, f);
            }
        };
        if let Err(e) = pin_tx(&tx).await {
            rep.failed(&format!("cannot pin search_path: {e:?}"));
            return Tried::Back(pre, f);
        }
        // The session's own last write, and use_session, in one round trip.
        let lsn = rep.own_write(token).unwrap_or_else(|| "0/0".into());
        let (check, timeout) = session_sql(
            "SELECT dashboard_auth.use_session($1),
                    coalesce(pg_catalog.pg_last_wal_replay_lsn() OPERATOR(pg_catalog.>=) $2::pg_catalog.text::pg_catalog.pg_lsn, true)",
        );
        let mut params: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> = vec![(&token, Type::TEXT), (&lsn, Type::TEXT)];
        if let Some(ms) = &timeout {
            params.push((ms, Type::TEXT));
        }
        let checked = tx.query_typed(&check, &params).await;
        let me: Uuid = match checked {
            Ok(rows) => match rows.first() {
                Some(row) if row.get::<_, bool>(1) => row.get(0),
                // Behind this session's own write: the primary has it.
                _ => return Tried::Back(pre, f),
            },
            // Not known there (yet): a login the replica has not replayed.
            // The primary said the session is live; it decides.
            Err(e) if e.code().map(|c| c.code()) == Some("28000") => return Tried::Back(pre, f),
            Err(e) => {
                rep.failed(&format!("{e}"));
                return Tried::Back(pre, f);
            }
        };
        let out = async {
            let out = as_viewer(&tx, me, None, pre, f).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        Tried::Done(out.inspect_err(|e| {
            if let WebError::Internal(detail) | WebError::Cancelled(detail) = e {
                rep.refused(detail);
            }
        }))
    }

    /// Run `f` inside `tx` under a statement timeout: in a savepoint, after
    /// `SET LOCAL statement_timeout`. Ok(None) when the timeout cancelled a
    /// statement of `f` (SQLSTATE 57014): the savepoint is rolled back (which
    /// also ends the setting) and the transaction goes on. The setting holds
    /// no authority: it only shortens what the caller may run anyway, and a
    /// plain SET is allowed under `apply_impersonation`'s confinement.
    pub async fn with_timeout<T>(
        tx: &Tx<'_>,
        timeout: std::time::Duration,
        f: impl AsyncFnOnce(&Tx<'_>) -> Result<T, WebError>,
    ) -> Result<Option<T>, WebError> {
        // (a number this function formats: nothing of the caller's)
        tx.batch_execute(&format!("SAVEPOINT fluxbase_timed; SET LOCAL statement_timeout = {}", timeout.as_millis().max(1)))
            .await?;
        match f(tx).await {
            Ok(out) => {
                // back to the request's own timeout (`limits`), or none
                tx.batch_execute(&format!("RELEASE SAVEPOINT fluxbase_timed; SET LOCAL statement_timeout TO {}", request_timeout_setting()))
                    .await?;
                Ok(Some(out))
            }
            Err(WebError::Cancelled(_)) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT fluxbase_timed; RELEASE SAVEPOINT fluxbase_timed").await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Run `f` in a transaction with no admin session (setup, login, health),
    /// always on the primary.
    pub async fn without_session<T>(&self, f: impl AsyncFnOnce(&Tx<'_>) -> Result<T, WebError>) -> Result<T, WebError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client.obj).await?;
        let out = f(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Does the session of `token` still hold (`validate_session` on the
    /// primary: one unnamed statement)? None when the database cannot say.
    pub async fn session_live(&self, token: &str) -> Option<bool> {
        let client = self.client().await.ok()?;
        let rows = client.query_typed("SELECT 1 FROM dashboard_auth.validate_session($1)", &[(&token, Type::TEXT)]).await.ok()?;
        Some(!rows.is_empty())
    }

    /// Startup check: is the login a superuser? (Browsing tables as a
    /// superuser would run their owners' triggers and functions with
    /// superuser rights.)
    pub async fn login_is_superuser(&self) -> Result<bool, WebError> {
        let client = self.client().await?;
        let rows = client.query_typed("SELECT pg_catalog.current_setting('is_superuser')::pg_catalog.bool", &[]).await?;
        rows.first().map(|r| r.get(0)).ok_or_else(|| WebError::internal("no answer"))
    }
}

/// What `Db::on_replica` did: answered, or handed the closures back unrun.
enum Tried<R, A, B> {
    Done(R),
    Back(A, B),
}

/// The body of a session transaction on the primary: `use_session`, then
/// `as_viewer`. The caller begins and commits `tx`.
async fn session_tx<P, T>(
    tx: &Tx<'_>,
    token: &str,
    imp: Option<Uuid>,
    pre: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<P, WebError>,
    f: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<T, WebError>,
) -> Result<(Viewer, P, T), WebError> {
    // An unnamed statement (one round trip, nothing kept prepared); in the
    // Tables section it also sets the statement timeout for the rest of the
    // transaction (`limits`).
    let (sql, timeout) = session_sql("SELECT dashboard_auth.use_session($1)");
    let mut params: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> = vec![(&token, Type::TEXT)];
    if let Some(ms) = &timeout {
        params.push((ms, Type::TEXT));
    }
    let me: Uuid = match tx.query_typed(&sql, &params).await {
        Ok(rows) => match rows.first() {
            Some(row) => row.get(0),
            None => return Err(WebError::internal("use_session answered no row")),
        },
        Err(e) if e.code().map(|c| c.code()) == Some("28000") => return Err(WebError::Expired),
        Err(e) => return Err(e.into()),
    };
    as_viewer(tx, me, imp, pre, f).await
}

/// `sql` (whose last parameter is `$1`, or `$2` on the replica), and in a
/// `Timed` request also `set_config('statement_timeout', $n, true)` with the
/// value to bind (milliseconds, text): one round trip for both.
fn session_sql(sql: &str) -> (String, Option<String>) {
    if crate::limits::current() != crate::limits::Class::Timed {
        return (sql.to_string(), None);
    }
    let n = if sql.contains("$2") { 3 } else { 2 };
    let ms = crate::limits::statement_timeout().as_millis().to_string();
    (format!("{sql}, pg_catalog.set_config('statement_timeout', ${n}, true)"), Some(ms))
}

/// The statement timeout a `Timed` request's transaction runs under, as SET
/// takes it; `DEFAULT` otherwise.
pub fn request_timeout_setting() -> String {
    if crate::limits::current() == crate::limits::Class::Timed {
        crate::limits::statement_timeout().as_millis().to_string()
    } else {
        "DEFAULT".to_string()
    }
}

/// The rest of a session transaction once `use_session` named the admin `me`
/// (on the primary by `session_tx`, on the replica by `Db::on_replica`): the
/// impersonation (if any), `pre`, `f` under it.
async fn as_viewer<P, T>(
    tx: &Tx<'_>,
    me: Uuid,
    imp: Option<Uuid>,
    pre: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<P, WebError>,
    f: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<T, WebError>,
) -> Result<(Viewer, P, T), WebError> {
    let imp = match imp {
        Some(id) => crate::api::impersonation::live(tx, me, id).await?,
        None => None,
    };
    let viewer = Viewer { me, imp };
    crate::prom::saw_admin(me); // (the request log's admin id)
    let p = pre(tx, &viewer).await?;
    if let Some(live) = &viewer.imp {
        crate::api::impersonation::apply(tx, live.id).await?;
    }
    let out = f(tx, &viewer).await?;
    Ok((viewer, p, out))
}
