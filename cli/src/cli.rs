//! The command line, declared with clap's derive API.

use clap::{Parser, Subcommand};

use crate::output::Format;

#[derive(Parser, Debug)]
#[command(
    name = "fluxbase",
    version,
    about = "Administer a Fluxbase (fluxbase_admin) database from the command line",
    after_help = "Connection: --database-url or DATABASE_URL (postgresql://user@host:port/db, or \
                  postgresql://user@/db?host=/socket/dir&port=N); otherwise PGHOST, PGPORT, PGUSER, \
                  PGDATABASE, PGPASSWORD as for psql.\n\
                  After `fluxbase login` every command acts as that admin.\n\
                  Exit codes: 0 ok, 1 failed, 2 usage, 3 cannot connect / extension missing, \
                  4 not found, 5 permission denied / not authenticated."
)]
pub struct Cli {
    /// PostgreSQL connection URL (libpq style)
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Output format: table (the columns people scan, fitted to the terminal),
    /// wide (every column, nothing shortened), json or yaml (for scripts)
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Print tables without their header line
    #[arg(long, global = true)]
    pub no_headers: bool,

    /// Print only ids, one per line (e.g. `fluxbase users list -q | xargs -n1 fluxbase users get`)
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Don't ask for confirmation before deleting or revoking
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// Ignore the saved admin session (act as the database role)
    #[arg(long, global = true)]
    pub no_session: bool,

    /// Read secrets from stdin, one per line, instead of prompting: the password
    /// for setup/login (then a 2FA code), or the password or a 2FA code when a
    /// destructive command needs a fresh re-authentication
    #[arg(long, global = true)]
    pub password_stdin: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Dashboard admin accounts, invitations, sessions, password resets
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// Application end users (auth.users)
    Users {
        #[command(subcommand)]
        cmd: UsersCmd,
    },
    /// Create the first admin account (first run only) and log in
    Setup {
        #[arg(long)]
        email: String,
        /// Full name
        #[arg(long)]
        name: Option<String>,
    },
    /// Log in as an admin; the session is saved for the next commands
    Login {
        #[arg(long)]
        email: String,
    },
    /// End the saved admin session and remove its file
    Logout,
    /// Re-enter the password or a 2FA code for the saved session, so that
    /// destructive commands (delete, role change, revoke-all, security settings)
    /// are allowed for the next few minutes (setting session.reauth_window)
    Reauth,
    /// Run one SQL statement as an app user, so RLS decides what it sees
    ///
    /// Example: fluxbase impersonate alice@example.com --reason "ticket 42" -- "SELECT * FROM todos"
    Impersonate {
        /// App user id or email, `anon` or `service_role`
        user: String,
        /// Why (recorded in the audit trail)
        #[arg(long)]
        reason: String,
        /// Bind parameters for $1, $2, ... as a JSON array
        #[arg(long, value_name = "JSON")]
        params: Option<String>,
        /// The statement (after --)
        #[arg(last = true, required = true, num_args = 1.., value_name = "SQL")]
        sql: Vec<String>,
    },
    /// Table explorer
    Tables {
        #[command(subcommand)]
        cmd: TablesCmd,
    },
    /// Sessions, connections, query stats and storage in one report
    Metrics,
    /// Recent audit events, newest first; `audit verify` checks the trail
    Audit {
        #[command(subcommand)]
        cmd: Option<AuditCmd>,
        /// How many (at most 1000, the largest page dashboard.audit_search returns)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Only events with this action (e.g. login.failure; `row.*` for a prefix)
        #[arg(long)]
        action: Option<String>,
        /// Only events about this target: an id, a type, or type:id (e.g. public.orders, table, admin:<uuid>)
        #[arg(long)]
        target: Option<String>,
        /// Only events by this actor: an admin's user id, or a label (an email, db:<role>)
        #[arg(long)]
        actor: Option<String>,
    },
    /// Security advisor: findings about RLS, grants, functions and indexes
    /// (dashboard.advisories()); exits 1 when an error-level finding exists, for CI
    Advisor,
    /// Serve the web dashboard (http://localhost:8080/admin by default)
    Serve(ServeArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the audit trail's hash chain (exit 1 when it is broken)
    ///
    /// With --witness FILE: also check that the trail still reaches the chain
    /// head saved in FILE by an earlier run (a trail cut back to before it is
    /// reported), then save the current head there. Keep FILE where the
    /// database's superuser cannot change it.
    Verify {
        #[arg(long, value_name = "FILE")]
        witness: Option<std::path::PathBuf>,
        /// Archives written by `audit archive`: verify them, their join to the
        /// live log and the live log, end to end (names the first break)
        #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "witness")]
        archive: Vec<std::path::PathBuf>,
    },
    /// Print (or send to syslog) every entry once, in chain order, checking
    /// each entry's hash and that it follows the one before
    ///
    /// -o json (one object per line; the default) or -o cef (ArcSight CEF).
    /// With --cursor-file F the position of the last entry delivered is kept
    /// in F (`<id> <hash>`), and a restart resumes after it, checking that
    /// the next entry still follows it (a rewritten history stops the tail).
    Tail {
        /// Keep waiting for new entries (reconnects when the database or a
        /// TCP syslog receiver restarts); Ctrl-C or SIGTERM stops it
        #[arg(long, short = 'f')]
        follow: bool,
        /// Start with entry ID (default: the oldest entry of the live log)
        #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
        since: Option<i64>,
        /// Resume after, and record, the last entry delivered (wins over --since once it exists)
        #[arg(long, value_name = "FILE")]
        cursor_file: Option<std::path::PathBuf>,
        /// Send RFC 5424 messages to a syslog receiver: udp://HOST:PORT or tcp://HOST:PORT
        /// (octet-counted frames; TCP for entries over a datagram)
        #[arg(long, value_name = "URL")]
        syslog: Option<String>,
        /// Entries read per query
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10000))]
        batch: u32,
        /// How often --follow looks for new entries, in milliseconds
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60000))]
        poll_ms: u64,
    },
    /// Write the entries older than --before to FILE (with the chain hashes
    /// that bind them to the rest), then purge them from the live log
    /// (dashboard_auth.purge_audit_through: a fresh re-authentication, audited)
    Archive {
        /// Age of the oldest entry kept: 90d, 12h, 2w, or a PostgreSQL interval
        #[arg(long, value_name = "AGE")]
        before: String,
        /// The archive file (JSON lines; written whole, then checked, then purged)
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        /// Write the archive only; purge nothing
        #[arg(long)]
        no_purge: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Admin accounts
    Users {
        #[command(subcommand)]
        cmd: AdminUsersCmd,
    },
    /// Admin invitations
    Invitations {
        #[command(subcommand)]
        cmd: InvitationsCmd,
    },
    /// Admin sessions
    Sessions {
        #[command(subcommand)]
        cmd: SessionsCmd,
    },
    /// Issue a password reset token for an admin
    PasswordReset {
        #[arg(long)]
        email: String,
    },
    /// Admins' passkeys (issue 33)
    Passkeys {
        #[command(subcommand)]
        cmd: PasskeysCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum PasskeysCmd {
    /// List passkeys: your own (with a saved session), one admin's (id or email), or everyone's
    List { admin: Option<String> },
    /// Remove a passkey (needs a fresh re-authentication; another admin's needs dashboard_admin)
    Remove { id: String },
}

#[derive(Subcommand, Debug)]
pub enum AdminUsersCmd {
    /// List admin accounts
    List,
    /// Invite a new admin (prints the invitation token)
    Invite {
        #[arg(long)]
        email: String,
        /// dashboard_admin or dashboard_viewer
        #[arg(long)]
        role: Option<String>,
    },
    /// Show one admin
    Get { id: String },
    /// Delete an admin
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum InvitationsCmd {
    /// List invitations (pending only unless asked)
    List {
        #[arg(long)]
        include_accepted: bool,
        #[arg(long)]
        include_expired: bool,
    },
    /// Revoke a pending invitation
    Revoke { token: String },
}

#[derive(Subcommand, Debug)]
pub enum SessionsCmd {
    /// List live admin sessions
    List {
        /// Only this admin's sessions
        #[arg(long)]
        user_id: Option<String>,
    },
    /// Revoke one session
    Revoke { session_id: String },
    /// Revoke every session of one admin
    RevokeAll { user_id: String },
}

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// List app users
    List {
        /// Match email or phone (substring) or id (prefix)
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
        /// Continue after this user id (keyset pagination)
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one app user
    Get { id: String },
    /// Invite an app user (prints the user id and invite token)
    Invite {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: Option<String>,
    },
    /// Delete an app user
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum TablesCmd {
    /// List tables
    List {
        /// Only this schema
        #[arg(long)]
        schema: Option<String>,
    },
    /// Columns of a table
    Describe {
        /// [SCHEMA.]TABLE (without a schema: public)
        table: String,
    },
    /// Rows of a table, a page at a time
    Browse {
        /// [SCHEMA.]TABLE (without a schema: public)
        table: String,
        /// column:op:value (ops: eq neq lt lte gt gte like ilike in is_null not_null); repeatable
        #[arg(long, value_name = "COL:OP:VALUE")]
        filter: Vec<String>,
        /// column or column:desc; repeatable
        #[arg(long, value_name = "COL[:desc]")]
        sort: Vec<String>,
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
        /// The next_cursor printed by the previous page
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fluxbase").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seed_commands_parse() {
        for args in [
            vec!["admin", "users", "list"],
            vec!["admin", "users", "invite", "--email", "a@example.com"],
            vec!["admin", "users", "invite", "--email", "a@example.com", "--role", "dashboard_admin"],
            vec!["admin", "users", "get", "x"],
            vec!["admin", "users", "delete", "x"],
            vec!["admin", "invitations", "list"],
            vec!["admin", "invitations", "list", "--include-accepted", "--include-expired"],
            vec!["admin", "invitations", "revoke", "tok"],
            vec!["admin", "sessions", "list"],
            vec!["admin", "sessions", "revoke", "id"],
            vec!["admin", "sessions", "revoke-all", "uid"],
            vec!["admin", "password-reset", "--email", "a@example.com"],
            vec!["users", "list"],
            vec!["users", "list", "--search", "john"],
            vec!["users", "get", "id"],
            vec!["users", "invite", "--email", "u@example.com"],
            vec!["users", "delete", "id"],
            vec!["setup", "--email", "a@example.com", "--name", "A", "--password-stdin"],
            vec!["login", "--email", "a@example.com"],
            vec!["logout"],
            vec!["tables", "list"],
            vec!["tables", "describe", "public.t"],
            vec!["tables", "browse", "t", "--filter", "a:eq:1", "--filter", "b:is_null", "--sort", "a:desc", "--page-size", "10"],
            vec!["metrics"],
            vec!["audit", "--limit", "5", "--action", "login.failure"],
            vec!["audit", "--target", "public.orders", "--actor", "db:postgres", "--limit", "1000"],
            vec!["completions", "bash"],
        ] {
            parse(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn global_flags_anywhere() {
        let c = parse(&["admin", "users", "delete", "x", "--yes", "-o", "json", "--database-url", "postgresql:///d"]).unwrap();
        assert!(c.yes);
        assert_eq!(c.output, Format::Json);
        assert_eq!(c.database_url.as_deref(), Some("postgresql:///d"));
        let c = parse(&["--output", "json", "-y", "users", "list"]).unwrap();
        assert!(c.yes && c.output == Format::Json);
        let c = parse(&["users", "list", "-q", "--no-headers", "-o", "wide"]).unwrap();
        assert!(c.quiet && c.no_headers && c.output == Format::Wide);
        assert_eq!(parse(&["-o", "yaml", "metrics"]).unwrap().output, Format::Yaml);
    }

    #[test]
    fn impersonate_takes_sql_after_double_dash() {
        let c = parse(&["impersonate", "alice@example.com", "--reason", "ticket 1", "--", "SELECT * FROM t WHERE a = '--x'"]).unwrap();
        match c.command {
            Command::Impersonate { user, reason, sql, .. } => {
                assert_eq!(user, "alice@example.com");
                assert_eq!(reason, "ticket 1");
                assert_eq!(sql.join(" "), "SELECT * FROM t WHERE a = '--x'");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["impersonate", "alice", "--", "SELECT 1"]).is_err(), "--reason is required");
        assert!(parse(&["impersonate", "alice", "--reason", "r"]).is_err(), "SQL is required");
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(parse(&["admin", "users", "invite"]).is_err(), "--email required");
        assert!(parse(&["admin", "users", "get"]).is_err());
        assert!(parse(&["users", "list", "--page-size", "0"]).is_err());
        assert!(parse(&["audit", "--limit", "-1"]).is_err());
        assert!(parse(&["audit", "verify"]).is_ok());
        assert!(parse(&["audit", "verify", "--witness", "/tmp/w"]).is_ok());
        assert!(parse(&["audit", "verify", "--witness"]).is_err());
        assert!(parse(&["audit", "--limit", "1001"]).is_err(), "more than audit_search returns");
        assert!(parse(&["-o", "xml", "metrics"]).is_err());
        assert!(parse(&["setup", "--email", "a@b.c", "--password", "x"]).is_err(), "no password flag exists");
        assert!(parse(&["completions", "cmd"]).is_err());
        assert!(parse(&["admin", "sessions", "revoke_all", "u"]).is_err());
    }
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; plain HTTP only on loopback unless --behind-proxy
    #[arg(long, env = "FLUXBASE_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// TLS certificate chain (PEM); serve HTTPS with --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// A TLS-terminating proxy forwards to us: allow any listen address, trust X-Forwarded-Proto
    #[arg(long)]
    pub behind_proxy: bool,
    /// Run even when the database login is a superuser (not recommended)
    #[arg(long)]
    pub allow_superuser: bool,
    /// Database connections in the pool
    #[arg(long, default_value_t = 16)]
    pub pool_size: usize,
    /// A read replica (hot standby of the same database) for the read-only pages;
    /// what the URL leaves out comes from --database-url's settings
    #[arg(long, env = "FLUXBASE_READ_REPLICA_URL", hide_env_values = true, value_name = "URL")]
    pub read_replica_url: Option<String>,
    /// The database URL is a transaction-pooling pooler (pgbouncer pool_mode=transaction,
    /// Supavisor): no statement stays prepared across transactions, search_path is set in
    /// each transaction (chosen automatically when the pooler refuses the options parameter)
    #[arg(long, env = "FLUXBASE_POOLER")]
    pub pooler: bool,
    /// Statement timeout of the Tables section (explorer, exports, SQL console), in seconds
    #[arg(long, env = "FLUXBASE_STATEMENT_TIMEOUT", default_value_t = 15.0, value_name = "SECONDS",
          value_parser = positive_seconds)]
    pub statement_timeout: f64,
    /// Longest wait for a free database connection before the 503 page, in seconds
    #[arg(long, env = "FLUXBASE_POOL_WAIT", default_value_t = 5.0, value_name = "SECONDS",
          value_parser = positive_seconds)]
    pub pool_wait: f64,
    /// Where admins reach the dashboard (e.g. https://admin.example.com), for the links it
    /// hands out (invitations); by default the listen address's URL
    #[arg(long, env = "FLUXBASE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics, a separate
    /// listener without authentication: bind it to loopback or a private
    /// network (counts only: no emails, tokens or paths)
    #[arg(long, env = "FLUXBASE_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Request log on stderr: text (errors only) or json (one object per
    /// request: request id, route template, status, duration, admin id)
    #[arg(long, env = "FLUXBASE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A number of seconds above 0 and at most a day.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds between 0 and 86400")),
    }
}

/// `fluxbase serve --log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}
