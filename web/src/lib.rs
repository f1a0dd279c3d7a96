//! `fluxbase_web`: the Fluxbase admin dashboard, served by `fluxbase serve`.
//!
//! The server keeps no users, roles or secrets of its own: every request that
//! carries a session runs in one transaction opened with
//! `dashboard_auth.use_session(token)` (see `db`), and calls only the
//! extension's SQL API (see `api`), so the database decides and audits
//! everything. Layout and patterns: `shared/WEB_STYLE.md`.
//!
//! - `routes`: one module per section, each with `router()`; the top bar's
//!   navigation list and the `Url` enum live in `routes/mod.rs`.
//! - `render`: the shell (top bar) and full page vs htmx fragment.
//! - `error`: SQLSTATE → pages; `csrf`, `cookies`, `headers`: web security.
//! - `replica`: which requests a read replica serves (`--read-replica-url`).

pub mod api;
pub mod assets;
pub mod cookies;
pub mod csrf;
pub mod csv_safe;
pub mod db;
pub mod error;
pub mod form;
pub mod headers;
pub mod limits;
pub mod qr;
pub mod replica;
pub mod metrics;
pub mod prom;
pub mod public_url;
pub mod live;
pub mod render;
pub mod routes;
pub mod serve;
pub mod session;
pub mod urls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use routes::app;
pub use serve::{serve, ServeOpts};
pub use tokio_postgres::Config as PgConfig;

/// Largest request body accepted (forms only; 64 KiB is far above any form
/// of ours). A larger body gets the 400 page.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the server is configured with, apart from where it listens.
pub struct Config {
    /// Where the database is (the login must be a member of fluxbase_dashboard).
    pub pg: tokio_postgres::Config,
    /// Trust `X-Forwarded-Proto` (a TLS-terminating proxy in front of us).
    pub behind_proxy: bool,
    /// Served over TLS by ourselves.
    pub tls: bool,
    /// Connections in the pool.
    pub pool_size: usize,
}

/// The shared state of the server, cheap to clone.
#[derive(Clone)]
pub struct App(pub Arc<Inner>);

pub struct Inner {
    pub db: db::Db,
    /// Key of the per-session CSRF tokens (HMAC of the session token), random
    /// per process: a restart makes open forms stale, never forgeable.
    pub csrf_key: [u8; 32],
    /// Once an admin exists it stays so (the last admin can't be deleted):
    /// the first-run check stops asking the database.
    setup_done: AtomicBool,
    pub behind_proxy: bool,
    pub tls: bool,
    /// The last hour of Analytics figures (`metrics`).
    pub samples: metrics::Samples,
    /// The one LISTEN connection's fan-out (`live`).
    pub live: live::Live,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    /// Build the state: a connection pool (connections open lazily).
    pub fn new(cfg: Config) -> anyhow::Result<App> {
        App::with_replica(cfg, None)
    }

    /// The state with a read replica (`replica`): read-only requests run
    /// there, through a pool of the same size.
    pub fn with_replica(cfg: Config, replica: Option<tokio_postgres::Config>) -> anyhow::Result<App> {
        let mut db = db::Db::new(cfg.pg.clone(), cfg.pool_size)?;
        db.replica = replica.map(|pg| replica::Replica::new(pg, cfg.pool_size)).transpose()?;
        let mut csrf_key = [0u8; 32];
        getrandom::fill(&mut csrf_key).map_err(|e| anyhow::anyhow!("no OS random source: {e}"))?;
        Ok(App(Arc::new(Inner {
            live: live::Live::new(db::pinned(&cfg.pg)),
            db,
            csrf_key,
            setup_done: AtomicBool::new(false),
            behind_proxy: cfg.behind_proxy,
            tls: cfg.tls,
            samples: metrics::Samples::default(),
        })))
    }

    /// True while no admin account exists (asks the database until one does).
    pub async fn needs_setup(&self) -> Result<bool, error::WebError> {
        if self.setup_done.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let needs = self.db.without_session(async |tx| api::accounts::needs_setup(tx).await).await?;
        if !needs {
            self.setup_done.store(true, Ordering::Relaxed);
        }
        Ok(needs)
    }
}
