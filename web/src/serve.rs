//! `fluxbase serve`: check the configuration, then serve until Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::{assets, routes, App, Config};

pub struct ServeOpts {
    pub listen: SocketAddr,
    pub pg: tokio_postgres::Config,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub behind_proxy: bool,
    pub allow_superuser: bool,
    pub pool_size: usize,
    /// A read replica (hot standby) for read-only requests (`replica`).
    pub replica: Option<tokio_postgres::Config>,
    /// Where Prometheus metrics are served (`prom`); None: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The request log (`prom`): text (no per-request line) or JSON lines.
    pub log_format: crate::prom::LogFormat,
    /// Behind a transaction-pooling pooler (`db::pooler`); also chosen when
    /// the server refuses the `options` startup parameter.
    pub pooler: bool,
    /// The Tables section's statement timeout (`limits`).
    pub statement_timeout: std::time::Duration,
    /// The longest wait for a pooled connection (`limits`).
    pub pool_wait: std::time::Duration,
    /// Where admins reach the dashboard (`--public-url`), for the links it
    /// hands out (invitations); by default the listen address's URL.
    pub public_url: Option<String>,
}


/// Refusals that need no database: plain HTTP beyond loopback, half a TLS pair.
pub fn check_opts(o: &ServeOpts) -> anyhow::Result<bool> {
    let tls = match (&o.tls_cert, &o.tls_key) {
        (Some(_), Some(_)) => true,
        (None, None) => false,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    if !tls && !o.behind_proxy && !o.listen.ip().is_loopback() {
        bail!(
            "refusing to serve the dashboard over plain HTTP on {} (not a loopback address): give --tls-cert and --tls-key, \
             or --behind-proxy when a TLS-terminating proxy forwards to this address",
            o.listen
        );
    }
    Ok(tls)
}

pub async fn serve(o: ServeOpts) -> anyhow::Result<()> {
    let tls = check_opts(&o)?;
    crate::prom::set_log_format(o.log_format);
    let public = o.public_url.as_deref().map(crate::public_url::check).transpose()?;
    let _ = assets::links(); // a missing asset stops startup here
    crate::db::set_pooler(o.pooler);
    crate::limits::set_statement_timeout(o.statement_timeout);
    crate::limits::set_pool_wait(o.pool_wait);
    let config = || Config { pg: o.pg.clone(), behind_proxy: o.behind_proxy, tls, pool_size: o.pool_size };
    let mut app = App::with_replica(config(), o.replica.clone())?;
    let su = match app.db.login_is_superuser().await {
        // pgbouncer refuses the `options` startup parameter that pins
        // search_path: a transaction pooler, so pooler mode (search_path set
        // in every transaction, no statement kept prepared).
        Err(crate::error::WebError::Internal(m)) if !o.pooler && m.contains("unsupported startup parameter") => {
            println!("the database refused the options startup parameter (a transaction pooler?): pooler mode (--pooler)");
            crate::db::set_pooler(true);
            app = App::with_replica(config(), o.replica.clone())?;
            app.db.login_is_superuser().await
        }
        r => r,
    }
    .map_err(|e| anyhow::anyhow!("cannot use the database: {e:?}"))?;
    if su && !o.allow_superuser {
        bail!(
            "refusing to serve as a superuser login: browsing tables would run their owners' triggers and functions with superuser rights. \
             Create a dedicated login role and connect as it, e.g.\n  CREATE ROLE fluxbase_web LOGIN PASSWORD '...';\n  GRANT fluxbase_dashboard TO fluxbase_web;\n\
             (or pass --allow-superuser to accept the risk)"
        );
    }
    if let Some(rep) = &app.db.replica {
        // A replica that is down at startup is not fatal (reads fall back to
        // the primary); say so at once.
        match rep.pool.get().await {
            Ok(c) => match c.query_one("SELECT pg_catalog.pg_is_in_recovery()", &[]).await {
                Ok(row) if row.get::<_, bool>(0) => println!("read replica: connected (a hot standby)"),
                Ok(_) => println!("read replica: connected, but it is not in recovery (not a standby); reads run there READ ONLY"),
                Err(e) => rep.failed(&format!("{e}")),
            },
            Err(e) => rep.failed(&format!("cannot connect: {e}")),
        }
    }
    crate::metrics::spawn_sampler(app.clone());
    if let Some(addr) = o.metrics_listen {
        let stop = app.live.closed();
        crate::metrics::serve_metrics(app.clone(), addr, stop).await?;
        println!("Prometheus metrics: http://{addr}/metrics");
    }
    app.needs_setup()
        .await
        .map_err(|e| anyhow::anyhow!("the database has no usable fluxbase_admin extension for this login: {e:?}"))?;
    let app_for_shutdown = app.clone();
    let stopping = async move {
        shutdown_signal().await;
        app_for_shutdown.live.close(); // open event streams end
    };
    let router = routes::app(app).into_make_service_with_connect_info::<SocketAddr>();
    let scheme = if tls { "https" } else { "http" };
    let host = if o.listen.ip().is_loopback() || o.listen.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        o.listen.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}/admin", o.listen.port());
    let _ = crate::public_url::PUBLIC_URL.set(public.unwrap_or_else(|| format!("{scheme}://{host}:{}", o.listen.port())));
    if tls {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(o.tls_cert.unwrap(), o.tls_key.unwrap())
            .await
            .context("reading --tls-cert/--tls-key")?;
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        tokio::spawn(async move {
            stopping.await;
            h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        });
        let server = axum_server::bind_rustls(o.listen, cfg).handle(handle.clone());
        let listening = tokio::spawn(async move { handle.listening().await });
        let run = tokio::spawn(server.serve(router));
        if listening.await.ok().flatten().is_some() {
            println!("Fluxbase dashboard: {url}");
        }
        run.await?.context("serving")?;
    } else {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind(o.listen)
            .await
            .with_context(|| format!("cannot listen on {}", o.listen))?
            // Small answers go out at once, not after the peer's delayed ACK.
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        println!("Fluxbase dashboard: {url}");
        axum::serve(listener, router).with_graceful_shutdown(stopping).await.context("serving")?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
