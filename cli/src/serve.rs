use super::*;

/// `fluxbase serve`: the web dashboard (crate fluxbase_web), connecting as the CLI does.
pub(super) fn serve(url: Option<&str>, a: ServeArgs) -> Result<(), Fail> {
    let cfg = conn::build_config(url, &|k| std::env::var(k).ok())?;
    let pg = web_config(&cfg);
    // The replica: what its URL leaves out is the primary's (user, database,
    // password), so `postgresql://replica-host:5433` is enough.
    let replica = match a.read_replica_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => {
            let primary = |k: &str| match k {
                "PGUSER" => cfg.get_user().map(str::to_string),
                "PGDATABASE" => cfg.get_dbname().map(str::to_string),
                "PGPASSWORD" => cfg.get_password().map(|p| String::from_utf8_lossy(p).into_owned()),
                _ => std::env::var(k).ok(),
            };
            let mut r = web_config(&conn::build_config(Some(u), &primary).map_err(|f| Fail::new(f.code, format!("--read-replica-url: {}", f.msg)))?);
            r.application_name("fluxbase serve (replica)");
            // A replica that does not answer must not hold a page up for long.
            if r.get_connect_timeout().is_none() {
                r.connect_timeout(std::time::Duration::from_secs(3));
            }
            Some(r)
        }
    };
    let opts = fluxbase_web::ServeOpts {
        listen: a.listen,
        pg,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        behind_proxy: a.behind_proxy,
        allow_superuser: a.allow_superuser,
        pool_size: a.pool_size,
        replica,
        pooler: a.pooler,
        statement_timeout: std::time::Duration::from_secs_f64(a.statement_timeout),
        pool_wait: std::time::Duration::from_secs_f64(a.pool_wait),
        public_url: a.public_url,
        metrics_listen: a.metrics_listen,
        log_format: match a.log_format {
            crate::cli::LogFormat::Text => fluxbase_web::prom::LogFormat::Text,
            crate::cli::LogFormat::Json => fluxbase_web::prom::LogFormat::Json,
        },
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| Fail::failure(format!("cannot start: {e}")))?;
    rt.block_on(fluxbase_web::serve(opts)).map_err(|e| Fail::failure(format!("{e:#}")))
}

/// The CLI's connection settings, for tokio-postgres.
fn web_config(cfg: &postgres::Config) -> fluxbase_web::PgConfig {
    let mut pg = fluxbase_web::PgConfig::new();
    for h in cfg.get_hosts() {
        match h {
            postgres::config::Host::Tcp(t) => pg.host(t),
            postgres::config::Host::Unix(p) => pg.host_path(p),
        };
    }
    for p in cfg.get_ports() {
        pg.port(*p);
    }
    if let Some(u) = cfg.get_user() {
        pg.user(u);
    }
    if let Some(d) = cfg.get_dbname() {
        pg.dbname(d);
    }
    if let Some(p) = cfg.get_password() {
        pg.password(p);
    }
    if let Some(o) = cfg.get_options() {
        pg.options(o);
    }
    if let Some(t) = cfg.get_connect_timeout() {
        pg.connect_timeout(*t);
    }
    pg.application_name("fluxbase serve");
    pg
}
