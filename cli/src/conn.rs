//! Where to connect: a libpq-style URL (or key=value string) from
//! --database-url / DATABASE_URL, with the PG* environment variables filling
//! what the URL leaves out (as libpq does), and errors a person understands.

use std::time::Duration;

use postgres::config::Host;
use postgres::Config;

use crate::fail::Fail;

/// Debian's default socket directory, what libpq uses when nothing says otherwise.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Build the connection configuration. `env` looks up an environment variable
/// (a parameter so unit tests don't depend on the process environment).
pub fn build_config(url: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Fail> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut cfg = match url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => {
            // tokio-postgres treats anything that is not a URL as key=value pairs;
            // a URL with another scheme would give a confusing message.
            if u.contains("://") && !(u.starts_with("postgresql://") || u.starts_with("postgres://")) {
                return Err(Fail::usage(format!(
                    "invalid database URL: it must start with postgresql:// or postgres:// (got {}://...)",
                    u.split("://").next().unwrap_or("")
                )));
            }
            u.parse::<Config>().map_err(|e| Fail::usage(format!("invalid database URL: {e}")))?
        }
        None => Config::new(),
    };
    if cfg.get_hosts().is_empty() {
        let host = env("PGHOST").unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_string());
        for h in host.split(',') {
            if h.starts_with('/') {
                cfg.host_path(h);
            } else {
                cfg.host(h);
            }
        }
    }
    if cfg.get_ports().is_empty() {
        if let Some(p) = env("PGPORT") {
            let port = p.parse::<u16>().map_err(|_| Fail::usage(format!("invalid PGPORT {p:?}: expected a port number")))?;
            cfg.port(port);
        }
    }
    if cfg.get_user().is_none() {
        let user = env("PGUSER").or_else(|| env("USER")).or_else(|| env("LOGNAME")).unwrap_or_else(|| "postgres".into());
        cfg.user(&user);
    }
    if cfg.get_dbname().is_none() {
        let db = env("PGDATABASE").unwrap_or_else(|| cfg.get_user().unwrap_or("postgres").to_string());
        cfg.dbname(&db);
    }
    if cfg.get_password().is_none() {
        if let Some(pw) = env("PGPASSWORD") {
            cfg.password(pw);
        }
    }
    if cfg.get_connect_timeout().is_none() {
        let secs = env("PGCONNECT_TIMEOUT").and_then(|s| s.parse::<u64>().ok()).unwrap_or(10);
        cfg.connect_timeout(Duration::from_secs(secs.max(1)));
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("fluxbase");
    }
    Ok(cfg)
}

/// The `options` startup parameter that pins `search_path` for the whole
/// connection: only the system catalog (and the session's temporary schema,
/// last), so no function, operator or type a database user created in
/// `public` or in a schema named after the login can stand in for a built-in
/// one (issue 28). Every name the CLI writes is schema-qualified as well.
pub const PIN_OPTION: &str = "-c search_path=pg_catalog,pg_temp";

/// The same for one transaction, where the connection cannot carry it
/// (a transaction pooler such as pgbouncer refuses `options`).
pub const PIN_TX: &str = "SET LOCAL search_path TO pg_catalog, pg_temp";

/// `cfg` with `PIN_OPTION` after the caller's own options (so it wins).
pub fn pinned(cfg: &Config) -> Config {
    let mut cfg = cfg.clone();
    let opts = match cfg.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} {PIN_OPTION}"),
        _ => PIN_OPTION.to_string(),
    };
    cfg.options(&opts);
    cfg
}

/// The server refused the `options` startup parameter: pgbouncer's
/// "unsupported startup parameter: options".
pub fn options_refused(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| d.message().contains("unsupported startup parameter"))
        || e.to_string().contains("unsupported startup parameter")
}

/// "host:port" or "socket /dir/.s.PGSQL.port", for messages (never the password).
pub fn describe_target(cfg: &Config) -> String {
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => format!("{h}:{port}"),
        Some(Host::Unix(p)) => format!("{}/.s.PGSQL.{port}", p.display()),
        None => format!("localhost:{port}"),
    }
}

/// Turn a failed connection attempt into one line.
pub fn connect_error(cfg: &Config, e: &postgres::Error) -> Fail {
    let target = describe_target(cfg);
    let reason = if let Some(db) = e.as_db_error() {
        db.message().to_string()
    } else {
        let mut reason = None;
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                reason = Some(match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused (is the server running?)".to_string(),
                    std::io::ErrorKind::NotFound => "connection refused (no server socket there: is the server running?)".to_string(),
                    std::io::ErrorKind::TimedOut => "timed out".to_string(),
                    std::io::ErrorKind::PermissionDenied => "permission denied on the socket".to_string(),
                    _ => io.to_string(),
                });
                break;
            }
            src = s.source();
        }
        reason.unwrap_or_else(|| {
            let s = e.to_string();
            if s.contains("timed out") { "timed out".to_string() } else { s }
        })
    };
    Fail::connect(format!("cannot connect to PostgreSQL at {target}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn cfg(url: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, Fail> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        build_config(url, &move |k| map.get(k).cloned())
    }

    #[test]
    fn socket_url_with_query_host_and_port() {
        let c = cfg(Some("postgresql://fb_web@/mydb?host=/tmp/sock&port=54470"), &[]).unwrap();
        assert_eq!(c.get_user(), Some("fb_web"));
        assert_eq!(c.get_dbname(), Some("mydb"));
        assert_eq!(c.get_ports(), &[54470]);
        assert!(matches!(&c.get_hosts()[0], Host::Unix(p) if p == &PathBuf::from("/tmp/sock")));
        assert_eq!(describe_target(&c), "/tmp/sock/.s.PGSQL.54470");
    }

    #[test]
    fn tcp_url_with_password() {
        let c = cfg(Some("postgres://u:s3cret@db.example.com:6543/app"), &[]).unwrap();
        assert_eq!(c.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(describe_target(&c), "db.example.com:6543");
        assert!(!describe_target(&c).contains("s3cret"));
    }

    #[test]
    fn url_wins_over_env_and_env_fills_gaps() {
        let c = cfg(Some("postgresql:///app"), &[("PGHOST", "/run/pg"), ("PGPORT", "5555"), ("PGUSER", "alice"), ("PGDATABASE", "other")]).unwrap();
        assert_eq!(c.get_dbname(), Some("app"));
        assert_eq!(c.get_user(), Some("alice"));
        assert_eq!(c.get_ports(), &[5555]);
        assert_eq!(describe_target(&c), "/run/pg/.s.PGSQL.5555");
    }

    #[test]
    fn env_only() {
        let c = cfg(None, &[("PGHOST", "localhost"), ("PGUSER", "bob"), ("PGPASSWORD", "pw")]).unwrap();
        assert_eq!(c.get_user(), Some("bob"));
        assert_eq!(c.get_dbname(), Some("bob"), "dbname defaults to the user, as libpq");
        assert_eq!(describe_target(&c), "localhost:5432");
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
    }

    #[test]
    fn defaults_to_debian_socket() {
        let c = cfg(None, &[("USER", "carol")]).unwrap();
        assert_eq!(describe_target(&c), "/var/run/postgresql/.s.PGSQL.5432");
        assert_eq!(c.get_user(), Some("carol"));
    }

    #[test]
    fn key_value_form() {
        let c = cfg(Some("host=/tmp/x port=1234 dbname=d user=u"), &[]).unwrap();
        assert_eq!(describe_target(&c), "/tmp/x/.s.PGSQL.1234");
        assert_eq!(c.get_dbname(), Some("d"));
    }

    #[test]
    fn pinned_appends_search_path_after_the_callers_options() {
        let c = pinned(&cfg(Some("postgresql:///app"), &[]).unwrap());
        assert_eq!(c.get_options(), Some(PIN_OPTION));
        let c = pinned(&cfg(Some("postgresql:///app?options=-c%20work_mem%3D8MB"), &[]).unwrap());
        assert_eq!(c.get_options(), Some("-c work_mem=8MB -c search_path=pg_catalog,pg_temp"));
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        for bad in ["http://example.com/db", "postgresql://u@h:notaport/db", "host=/tmp port=abc"] {
            let e = cfg(Some(bad), &[]).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(e.code, crate::fail::EXIT_USAGE, "{bad}");
            assert!(e.msg.starts_with("invalid database URL"), "{}", e.msg);
        }
        let e = cfg(None, &[("PGPORT", "x")]).err().unwrap();
        assert!(e.msg.contains("PGPORT"));
    }
}
