//! The connection pool and the ONE place that opens transactions. A request
//! with a session runs `f` inside `BEGIN; SELECT dashboard_auth.use_session($1);
//! ...; COMMIT` (as the CLI's `query_with`): every check and audit entry is the
//! database's, under the admin's name. SQLSTATE 28000 from use_session means
//! the session expired or was revoked (`WebError::Expired`).

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::error::WebError;

/// Who a request acts as: the admin, and the impersonation it runs under.
pub struct Viewer {
    pub me: Uuid,
    pub imp: Option<crate::api::impersonation::Live>,
}

/// A transaction of a pooled connection; what every `api::*` function takes.
pub type Tx<'a> = deadpool_postgres::Transaction<'a>;

pub struct Db {
    pub pool: Pool,
}

impl Db {
    pub fn new(pg: tokio_postgres::Config, size: usize) -> anyhow::Result<Db> {
        let mgr = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr).max_size(size.max(1)).build()?;
        Ok(Db { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, WebError> {
        self.pool.get().await.map_err(|e| WebError::internal(format!("database connection: {e}")))
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
    pub async fn with_session_as<P, T>(
        &self,
        token: &str,
        imp: Option<Uuid>,
        pre: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<P, WebError>,
        f: impl AsyncFnOnce(&Tx<'_>, &Viewer) -> Result<T, WebError>,
    ) -> Result<(Viewer, P, T), WebError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx.prepare_cached("SELECT dashboard_auth.use_session($1)").await?;
        let me: Uuid = match tx.query_one(&stmt, &[&token]).await {
            Ok(row) => row.get(0),
            Err(e) if e.code().map(|c| c.code()) == Some("28000") => return Err(WebError::Expired),
            Err(e) => return Err(e.into()),
        };
        let imp = match imp {
            Some(id) => crate::api::impersonation::live(&tx, me, id).await?,
            None => None,
        };
        let viewer = Viewer { me, imp };
        let p = pre(&tx, &viewer).await?;
        if let Some(live) = &viewer.imp {
            crate::api::impersonation::apply(&tx, live.id).await?;
        }
        let out = f(&tx, &viewer).await?;
        tx.commit().await?;
        Ok((viewer, p, out))
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
                tx.batch_execute("RELEASE SAVEPOINT fluxbase_timed; SET LOCAL statement_timeout TO DEFAULT").await?;
                Ok(Some(out))
            }
            Err(WebError::Internal(m)) if m.starts_with("database 57014:") => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT fluxbase_timed; RELEASE SAVEPOINT fluxbase_timed").await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Run `f` in a transaction with no admin session (setup, login, health).
    pub async fn without_session<T>(&self, f: impl AsyncFnOnce(&Tx<'_>) -> Result<T, WebError>) -> Result<T, WebError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let out = f(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Startup check: is the login a superuser? (Browsing tables as a
    /// superuser would run their owners' triggers and functions with
    /// superuser rights.)
    pub async fn login_is_superuser(&self) -> Result<bool, WebError> {
        let client = self.client().await?;
        let row = client.query_one("SELECT current_setting('is_superuser') = 'on'", &[]).await?;
        Ok(row.get(0))
    }
}
