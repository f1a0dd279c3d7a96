//! `fluxbase`: the command-line tool for the fluxbase_admin extension. It talks
//! to PostgreSQL like any client and calls the extension's SQL API
//! (dashboard_auth.*, dashboard.*); results are read generically as JSON rows
//! (`SELECT pg_catalog.to_json(t) FROM fn(...) t`) so the tool does not hard-code each
//! function's column list.

/// println! that ends quietly when stdout is closed early (`fluxbase ... | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod advisor;
mod audit;
mod cli;
mod conn;
mod fail;
mod output;
mod session;

use std::io::{BufRead, IsTerminal, Write};

use clap::{CommandFactory, Parser};
use postgres::{Client, NoTls};
use serde_json::{json, Value};

use cli::*;
use fail::Fail;
use output::Out;

fn main() {
    let args = Cli::parse();
    if let Err(f) = run(args) {
        let _ = std::io::stdout().flush();
        eprintln!("error: {}", f.msg);
        std::process::exit(f.code);
    }
}

fn run(args: Cli) -> Result<(), Fail> {
    let out = Out::new(args.output, args.no_headers, args.quiet);
    if let Command::Completions { shell } = args.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "fluxbase", &mut script);
        say!("{}", String::from_utf8_lossy(&script).trim_end());
        return Ok(());
    }
    if args.output == output::Format::Cef && !matches!(args.command, Command::Audit { cmd: Some(AuditCmd::Tail { .. }), .. }) {
        return Err(Fail::usage("-o cef is for `fluxbase audit tail` only"));
    }
    if let Command::Serve(a) = args.command {
        return serve(args.database_url.as_deref(), a);
    }
    let uses_session = !matches!(args.command, Command::Setup { .. } | Command::Login { .. } | Command::Logout) && !args.no_session;
    let session = if uses_session { session::load()? } else { None };
    let mut ctx = Ctx::connect(args.database_url.as_deref(), session, out, args.yes, args.password_stdin)?;
    match args.command {
        Command::Admin { cmd } => admin(&mut ctx, cmd),
        Command::Users { cmd } => users(&mut ctx, cmd),
        Command::Setup { email, name } => setup(&mut ctx, &email, name.as_deref(), args.password_stdin),
        Command::Login { email } => login(&mut ctx, &email, args.password_stdin),
        Command::Logout => logout(&mut ctx),
        Command::Reauth => {
            if ctx.session.is_none() {
                return Err(Fail::usage("no saved admin session to re-authenticate: run `fluxbase login` first"));
            }
            let until = ctx.reauthenticate()?;
            ctx.out.done(
                json!({ "reauthenticated": true, "until": until }),
                &format!("Re-authenticated; destructive commands are allowed until {until}."),
            );
            Ok(())
        }
        Command::Impersonate { user, reason, params, sql } => impersonate(&mut ctx, &user, &reason, params.as_deref(), &sql.join(" ")),
        Command::Tables { cmd } => tables(&mut ctx, cmd),
        Command::Metrics => {
            let v = ctx.json_scalar("dashboard.metrics", "SELECT dashboard.metrics()::text", &[])?;
            ctx.out.metrics(&v);
            Ok(())
        }
        Command::Audit { cmd: Some(AuditCmd::Verify { archive, .. }), .. } if !archive.is_empty() => {
            let v = audit::verify_with_archives(&mut ctx, &archive)?;
            let s = format!(
                "The audit chain is intact from entry {} through the archives ({}) and the live log.",
                v["archived_from"], v["archives"]
            );
            ctx.out.done(v, &s);
            Ok(())
        }
        Command::Audit { cmd: Some(AuditCmd::Verify { witness, .. }), .. } => audit_verify(&mut ctx, witness.as_deref()),
        Command::Audit { cmd: Some(AuditCmd::Tail { follow, since, cursor_file, syslog, batch, poll_ms }), .. } => {
            let style = if args.output == output::Format::Cef { audit::Style::Cef } else { audit::Style::Json };
            let opts = audit::TailOpts { follow, since, cursor_file, syslog, style, batch, poll: std::time::Duration::from_millis(poll_ms) };
            audit::tail(&mut ctx, args.database_url.as_deref(), opts)
        }
        Command::Audit { cmd: Some(AuditCmd::Archive { before, out: file, no_purge }), .. } => {
            let v = audit::archive(&mut ctx, &before, &file, !no_purge)?;
            let s = match v["archived"].as_u64() {
                Some(0) => format!("No audit entry is older than {before}: nothing archived."),
                _ => format!(
                    "Archived entries {}..{} to {} and purged {} from the live log.",
                    v["first_id"], v["last_id"], v["file"].as_str().unwrap_or_default(), v["purged"]
                ),
            };
            ctx.out.done(v, &s);
            Ok(())
        }
        Command::Audit { cmd: None, limit, action, target, actor } => {
            let rows = ctx.rows(
                "dashboard.audit_search",
                // audit_search shows a row-change entry's rows decoded; `--action row.*` is a prefix
                "SELECT pg_catalog.to_json(t)::text FROM (
                   SELECT id, occurred_at, actor, action, target_type, target_id, success, ip, details
                   FROM dashboard.audit_search(actor => $1::text, action => $2::text, target => $3::text,
                                               page_size => $4::text::int)) t",
                &[actor, action, target, Some(limit.to_string())],
            )?;
            ctx.out.list_view(&rows, "audit events", output::views::AUDIT);
            Ok(())
        }
        Command::Advisor => advisor::advisor(&mut ctx),
        Command::Completions { .. } | Command::Serve(_) => unreachable!(),
    }
}

/// `fluxbase audit verify [--witness FILE]`: the chain, and against a saved
/// head (a line `<id> <hash in hex>`), which is then moved on to the current head.
fn audit_verify(ctx: &mut Ctx, witness: Option<&std::path::Path>) -> Result<(), Fail> {
    let saved = match witness {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).map_err(|e| Fail::failure(format!("cannot read {}: {e}", path.display())))?;
            let mut parts = text.split_whitespace();
            match (parts.next().and_then(|i| i.parse::<i64>().ok()), parts.next(), parts.next()) {
                (Some(id), Some(hash), None) if id >= 0 && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Some((id, hash.to_string()))
                }
                _ => return Err(Fail::usage(format!("{} is not a witness file (a line `<id> <sha256 in hex>`)", path.display()))),
            }
        }
        _ => None,
    };
    let (id, hash) = (saved.as_ref().map(|(i, _)| i.to_string()), saved.as_ref().map(|(_, h)| h.clone()));
    let result = ctx.json_scalar(
        "dashboard_auth.verify_audit_chain",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.verify_audit_chain($1::text::bigint, pg_catalog.decode($2::text, 'hex')) t",
        &[id, hash],
    )?;
    let ok = result["ok"].as_bool() == Some(true);
    if !ok {
        let bad = &result["first_bad_id"];
        return Err(Fail::failure(match &saved {
            Some((wid, _)) if bad.as_i64() == Some(*wid) => format!(
                "the audit trail no longer reaches entry {wid} that the witness saw: entries were removed or replaced"
            ),
            _ => format!("the audit chain is broken at entry {bad}"),
        }));
    }
    let mut shown = json!({ "ok": true, "witness_checked": saved.as_ref().map(|(i, _)| i) });
    if let Some(path) = witness {
        let head = ctx.json_scalar(
            "dashboard_auth.audit_witness",
            "SELECT pg_catalog.json_build_object('id', id, 'hash', pg_catalog.encode(hash, 'hex'))::text FROM dashboard_auth.audit_witness()",
            &[],
        )?;
        let line = format!("{} {}\n", head["id"], head["hash"].as_str().unwrap_or_default());
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, line)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| Fail::failure(format!("cannot save the witness to {}: {e}", path.display())))?;
        shown["witness"] = head;
    }
    let sentence = match (&saved, witness) {
        (Some((wid, _)), Some(path)) => format!(
            "The audit chain is intact and still reaches entry {wid} of the witness; saved the head (entry {}) to {}.",
            shown["witness"]["id"],
            path.display()
        ),
        (None, Some(path)) => format!("The audit chain is intact; saved its head (entry {}) to {}.", shown["witness"]["id"], path.display()),
        _ => "The audit chain is intact.".to_string(),
    };
    ctx.out.done(shown, &sentence);
    Ok(())
}

/// Why a statement failed: the saved session must re-authenticate first (and
/// the statement may be retried after), or anything else.
enum Retry {
    Reauth(postgres::error::DbError),
    Fail(Fail),
}

/// `fluxbase serve`: the web dashboard (crate fluxbase_web), connecting as the CLI does.
fn serve(url: Option<&str>, a: ServeArgs) -> Result<(), Fail> {
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

/// Where a statement failed: while taking on the saved admin session, or in the command itself.
enum Stage {
    Session,
    Command,
}

struct Ctx {
    client: Client,
    user: String,
    session: Option<String>,
    out: Out,
    yes: bool,
    /// Secrets come from stdin (--password-stdin), not from a prompt.
    password_stdin: bool,
    /// Connected through a pooler that refused the `options` startup
    /// parameter: every transaction pins `search_path` itself.
    pooled: bool,
}

/// SQLSTATE of a step-up refusal: the saved session must re-authenticate.
const REAUTH_REQUIRED: &str = "FBR01";

type Param = Option<String>;

impl Ctx {
    fn connect(url: Option<&str>, session: Option<String>, out: Out, yes: bool, password_stdin: bool) -> Result<Ctx, Fail> {
        let cfg = conn::build_config(url, &|k| std::env::var(k).ok())?;
        // search_path pinned at connect time (`options`); a pooler that
        // refuses the parameter (pgbouncer) gets it per transaction instead.
        let (mut client, pooled) = match conn::pinned(&cfg).connect(NoTls) {
            Ok(c) => (c, false),
            Err(e) if conn::options_refused(&e) => (cfg.connect(NoTls).map_err(|e| conn::connect_error(&cfg, &e))?, true),
            Err(e) => return Err(conn::connect_error(&cfg, &e)),
        };
        let row = (|| {
            let mut tx = client.transaction()?;
            if pooled {
                tx.batch_execute(conn::PIN_TX)?;
            }
            let row = tx.query_one(
                "SELECT pg_catalog.current_database()::text, current_user::text,
                        EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'fluxbase_admin')",
                &[],
            )?;
            // (read, and the row with its statement dropped, before COMMIT:
            // behind a transaction pooler the statement is closed on the
            // server connection that prepared it)
            let got: (String, String, bool) = (row.get(0), row.get(1), row.get(2));
            drop(row);
            tx.commit()?;
            Ok::<_, postgres::Error>(got)
        })()
        .map_err(|e| Fail::failure(format!("lost the connection to PostgreSQL: {e}")))?;
        let (dbname, user, installed) = row;
        if !installed {
            return Err(Fail::connect(format!(
                "the fluxbase_admin extension is not installed in database {dbname}: run CREATE EXTENSION fluxbase_admin"
            )));
        }
        Ok(Ctx { client, user, session, out, yes, password_stdin, pooled })
    }

    /// Run one statement returning one text column, in a transaction that first
    /// takes on the saved admin session (if any). `label` names the SQL function
    /// called, for the "server lacks it" message.
    fn query(&mut self, label: &str, sql: &str, params: &[Param]) -> Result<Vec<Option<String>>, Fail> {
        self.query_with(label, sql, params, true)
    }

    /// As `query_with_once`; when the database asks the saved session for a
    /// fresh re-authentication (FBR01, a destructive command), get the password
    /// or a 2FA code, re-authenticate, and run the command once more.
    fn query_with(&mut self, label: &str, sql: &str, params: &[Param], with_session: bool) -> Result<Vec<Option<String>>, Fail> {
        match self.query_with_once(label, sql, params, with_session) {
            Err(Retry::Reauth(e)) => {
                if !self.password_stdin && !std::io::stdin().is_terminal() {
                    return Err(Fail::denied(format!(
                        "{}: run `fluxbase reauth` first, or pass --password-stdin with the password or a 2FA code on stdin",
                        e.message()
                    )));
                }
                self.reauthenticate()?;
                self.query_with_once(label, sql, params, with_session).map_err(|r| match r {
                    Retry::Reauth(e) => fail::from_db(&e, &self.user),
                    Retry::Fail(f) => f,
                })
            }
            Err(Retry::Fail(f)) => Err(f),
            Ok(rows) => Ok(rows),
        }
    }

    /// Re-enter the password or a 2FA code for the saved session
    /// (dashboard_auth.reauthenticate, in its own transaction); when the
    /// step-up window ends.
    fn reauthenticate(&mut self) -> Result<String, Fail> {
        if !self.password_stdin && std::io::stdin().is_terminal() {
            eprintln!("This needs a fresh re-authentication.");
        }
        let secret = read_secret("Password or two-factor code: ", self.password_stdin, false)?;
        let until = self
            .query_with_once(
                "dashboard_auth.reauthenticate",
                "SELECT pg_catalog.to_char(dashboard_auth.reauthenticate($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                &[Some(secret)],
                true,
            )
            .map_err(|r| match r {
                Retry::Reauth(e) => fail::from_db(&e, &self.user),
                Retry::Fail(f) => f,
            })?;
        match until.into_iter().next().flatten() {
            Some(t) => Ok(t),
            None => Err(Fail::denied(
                "re-authentication failed: wrong password or code (failures count toward the account's lockout)",
            )),
        }
    }

    fn query_with_once(&mut self, label: &str, sql: &str, params: &[Param], with_session: bool) -> Result<Vec<Option<String>>, Retry> {
        let token = if with_session { self.session.clone() } else { None };
        let pooled = self.pooled;
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
        let result = (|| {
            let mut tx = self.client.transaction().map_err(|e| (Stage::Command, e))?;
            if pooled {
                tx.batch_execute(conn::PIN_TX).map_err(|e| (Stage::Command, e))?;
            }
            if let Some(t) = &token {
                tx.query("SELECT dashboard_auth.use_session($1)", &[t]).map_err(|e| (Stage::Session, e))?;
            }
            let rows = tx.query(sql, &refs).map_err(|e| (Stage::Command, e))?;
            // The rows (and the statement they hold) go before COMMIT, so its
            // Close reaches the server connection that prepared it, also
            // behind a transaction pooler.
            let out: Vec<Option<String>> = rows.iter().map(|r| r.get::<_, Option<String>>(0)).collect();
            drop(rows);
            tx.commit().map_err(|e| (Stage::Command, e))?;
            Ok::<_, (Stage, postgres::Error)>(out)
        })();
        match result {
            Ok(rows) => Ok(rows),
            Err((Stage::Command, e)) if token.is_some() && e.as_db_error().is_some_and(|d| d.code().code() == REAUTH_REQUIRED) => {
                Err(Retry::Reauth(e.as_db_error().cloned().expect("checked")))
            }
            Err((stage, e)) => Err(Retry::Fail(self.explain(label, stage, &e))),
        }
    }

    fn explain(&mut self, label: &str, stage: Stage, e: &postgres::Error) -> Fail {
        let Some(db) = e.as_db_error() else {
            return Fail::failure(format!("lost the connection to PostgreSQL: {e}"));
        };
        let code = db.code().code();
        if matches!(stage, Stage::Session) {
            if code == "28000" {
                return Fail::denied(format!(
                    "your saved admin session ({}) is invalid or has expired: run `fluxbase login` again, or `fluxbase logout` to act as the database role {}",
                    session::path().display(),
                    self.user
                ));
            }
            if code == "42883" {
                return Fail::failure("this server's fluxbase_admin has no dashboard_auth.use_session (upgrade the extension)");
            }
        }
        if code == "42883" {
            if let Some((schema, name)) = label.split_once('.') {
                let pooled = self.pooled;
                let exists = (|| {
                    let mut tx = self.client.transaction()?;
                    if pooled {
                        tx.batch_execute(conn::PIN_TX)?;
                    }
                    let r = tx.query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
                                         WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND p.proname OPERATOR(pg_catalog.=) $2)",
                        &[&schema, &name],
                    )?;
                    let exists = r.get::<_, bool>(0);
                    drop(r);
                    tx.commit()?;
                    Ok::<_, postgres::Error>(exists)
                })()
                .unwrap_or(true);
                if !exists {
                    return Fail::failure(format!("this server's fluxbase_admin has no {label} (upgrade the extension)"));
                }
            }
        }
        fail::from_db(db, &self.user)
    }

    /// Rows of JSON text, parsed.
    fn rows(&mut self, label: &str, sql: &str, params: &[Param]) -> Result<Vec<Value>, Fail> {
        self.query(label, sql, params)?
            .into_iter()
            .map(|t| match t {
                None => Ok(Value::Null),
                Some(t) => serde_json::from_str(&t).map_err(|e| Fail::failure(format!("unreadable answer from {label}: {e}"))),
            })
            .collect()
    }

    /// The first column of the first row (None for SQL NULL or no row).
    fn scalar(&mut self, label: &str, sql: &str, params: &[Param]) -> Result<Option<String>, Fail> {
        Ok(self.query(label, sql, params)?.into_iter().next().flatten())
    }

    fn json_scalar(&mut self, label: &str, sql: &str, params: &[Param]) -> Result<Value, Fail> {
        match self.scalar(label, sql, params)? {
            None => Ok(Value::Null),
            Some(t) => serde_json::from_str(&t).map_err(|e| Fail::failure(format!("unreadable answer from {label}: {e}"))),
        }
    }

    /// Ask before destroying something: --yes skips; without a terminal we refuse.
    fn confirm(&self, what: &str) -> Result<(), Fail> {
        if self.yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Fail::usage(format!("refusing to {what} without confirmation: pass --yes (stdin is not a terminal)")));
        }
        eprint!("Really {what}? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| Fail::failure(format!("cannot read the answer: {e}")))?;
        if matches!(line.trim().to_lowercase().as_str(), "y" | "yes") {
            Ok(())
        } else {
            Err(Fail::failure("aborted: nothing was changed"))
        }
    }
}

fn s(v: &str) -> Param {
    Some(v.to_string())
}

fn first_or_not_found(rows: Vec<Value>, what: String) -> Result<Value, Fail> {
    rows.into_iter().find(|r| !r.is_null()).ok_or_else(|| Fail::not_found(what))
}

fn admin(ctx: &mut Ctx, cmd: AdminCmd) -> Result<(), Fail> {
    match cmd {
        AdminCmd::Users { cmd } => match cmd {
            AdminUsersCmd::List => {
                let rows = ctx.rows("dashboard_auth.list_admins", "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.list_admins() t", &[])?;
                ctx.out.list_view(&rows, "admin users", output::views::ADMINS);
            }
            AdminUsersCmd::Get { id } => {
                let rows = ctx.rows(
                    "dashboard_auth.get_admin",
                    "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.get_admin($1::text::uuid) t",
                    &[s(&id)],
                )?;
                let r = first_or_not_found(rows, format!("no admin with id {id}"))?;
                ctx.out.record(&r);
            }
            AdminUsersCmd::Invite { email, role } => {
                let token = match &role {
                    Some(r) => ctx.scalar("dashboard_auth.invite_admin", "SELECT dashboard_auth.invite_admin($1, $2)::text", &[s(&email), s(r)])?,
                    None => ctx.scalar("dashboard_auth.invite_admin", "SELECT dashboard_auth.invite_admin($1)::text", &[s(&email)])?,
                };
                let token = token.unwrap_or_default();
                let role_text = role.clone().unwrap_or_else(|| "the default role".into());
                ctx.out.done(
                    json!({ "email": email, "role": role, "token": token }),
                    &format!("Invited {email} as {role_text}.\nInvitation token (give it to them; it is not shown again):\n{token}"),
                );
            }
            AdminUsersCmd::Delete { id } => {
                ctx.confirm(&format!("delete admin user {id}"))?;
                ctx.scalar("dashboard_auth.delete_admin", "SELECT dashboard_auth.delete_admin($1::text::uuid)::text", &[s(&id)])?;
                ctx.out.done(json!({ "deleted": true, "id": id }), &format!("Deleted admin user {id}."));
            }
        },
        AdminCmd::Invitations { cmd } => match cmd {
            InvitationsCmd::List { include_accepted, include_expired } => {
                let rows = ctx.rows(
                    "dashboard_auth.list_invitations",
                    "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.list_invitations($1::text::bool, $2::text::bool) t",
                    &[s(&include_accepted.to_string()), s(&include_expired.to_string())],
                )?;
                ctx.out.list_view(&rows, "invitations", output::views::INVITATIONS);
            }
            InvitationsCmd::Revoke { token } => {
                ctx.confirm("revoke the invitation")?;
                let r = ctx.scalar("dashboard_auth.revoke_invitation", "SELECT dashboard_auth.revoke_invitation($1)::text", &[s(&token)])?;
                if r.as_deref() == Some("false") {
                    return Err(Fail::not_found("no pending invitation with that token"));
                }
                ctx.out.done(json!({ "revoked": true }), "Revoked the invitation.");
            }
        },
        AdminCmd::Sessions { cmd } => match cmd {
            SessionsCmd::List { user_id } => {
                let rows = ctx.rows(
                    "dashboard_auth.list_sessions",
                    "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.list_sessions($1::text::uuid) t",
                    &[user_id],
                )?;
                ctx.out.list_view(&rows, "active admin sessions", output::views::SESSIONS);
            }
            SessionsCmd::Revoke { session_id } => {
                ctx.confirm(&format!("revoke admin session {session_id}"))?;
                let r = ctx.scalar(
                    "dashboard_auth.revoke_session",
                    "SELECT dashboard_auth.revoke_session($1::text::uuid)::text",
                    &[s(&session_id)],
                )?;
                let ended = r.as_deref() != Some("false");
                let sentence = if ended {
                    format!("Revoked admin session {session_id}.")
                } else {
                    format!("Admin session {session_id} had already ended.")
                };
                ctx.out.done(json!({ "id": session_id, "revoked": ended }), &sentence);
            }
            SessionsCmd::RevokeAll { user_id } => {
                ctx.confirm(&format!("revoke every session of admin user {user_id}"))?;
                let n = ctx
                    .scalar(
                        "dashboard_auth.revoke_all_sessions",
                        "SELECT dashboard_auth.revoke_all_sessions($1::text::uuid)::text",
                        &[s(&user_id)],
                    )?
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or(0);
                ctx.out.done(json!({ "user_id": user_id, "revoked": n }), &format!("Revoked {n} session(s) of admin user {user_id}."));
            }
        },
        AdminCmd::PasswordReset { email } => {
            let token = ctx.scalar(
                "dashboard_auth.request_password_reset",
                "SELECT dashboard_auth.request_password_reset($1)::text",
                &[s(&email)],
            )?;
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                return Err(Fail::not_found(format!("no password reset was issued: no admin account has the email {email}")));
            };
            ctx.out.done(
                json!({ "email": email, "token": token }),
                &format!("Password reset token for {email} (give it to them; it is not shown again):\n{token}"),
            );
        }
    }
    Ok(())
}

fn users(ctx: &mut Ctx, cmd: UsersCmd) -> Result<(), Fail> {
    match cmd {
        UsersCmd::List { search, page_size, after } => {
            let rows = ctx.rows(
                "dashboard.list_users",
                "SELECT pg_catalog.to_json(t)::text FROM dashboard.list_users($1, $2::text::int, $3::text::uuid) t",
                &[search, s(&page_size.to_string()), after],
            )?;
            ctx.out.list_view(&rows, "users", output::views::APP_USERS);
        }
        UsersCmd::Get { id } => {
            let rows = ctx.rows("dashboard.get_user", "SELECT pg_catalog.to_json(t)::text FROM dashboard.get_user($1::text::uuid) t", &[s(&id)])?;
            let r = first_or_not_found(rows, format!("no user with id {id}"))?;
            ctx.out.record(&r);
        }
        UsersCmd::Invite { email, role } => {
            let rows = match &role {
                Some(r) => ctx.rows("dashboard.invite_user", "SELECT pg_catalog.to_json(t)::text FROM dashboard.invite_user($1, $2) t", &[s(&email), s(r)])?,
                None => ctx.rows("dashboard.invite_user", "SELECT pg_catalog.to_json(t)::text FROM dashboard.invite_user($1) t", &[s(&email)])?,
            };
            let r = rows.into_iter().next().unwrap_or(Value::Null);
            if ctx.out.for_scripts() || ctx.out.quiet {
                ctx.out.record(&r);
            } else {
                say!("Invited {email}.");
                ctx.out.record(&r);
            }
        }
        UsersCmd::Delete { id } => {
            ctx.confirm(&format!("delete user {id}"))?;
            let r = ctx.scalar("dashboard.delete_user", "SELECT dashboard.delete_user($1::text::uuid)::text", &[s(&id)])?;
            if r.as_deref() == Some("false") {
                return Err(Fail::not_found(format!("no user with id {id}")));
            }
            ctx.out.done(json!({ "deleted": true, "id": id }), &format!("Deleted user {id}."));
        }
    }
    Ok(())
}

/// A secret from stdin (one line) or from a prompt without echo; never from argv.
fn read_secret(prompt: &str, from_stdin: bool, confirm: bool) -> Result<String, Fail> {
    let secret = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| Fail::failure(format!("cannot read stdin: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Fail::usage("no terminal to ask for the password: pipe it in and pass --password-stdin"));
        }
        let first = rpassword::prompt_password(prompt).map_err(|e| Fail::failure(format!("cannot read the password: {e}")))?;
        if confirm {
            let again = rpassword::prompt_password("Repeat it: ").map_err(|e| Fail::failure(format!("cannot read the password: {e}")))?;
            if again != first {
                return Err(Fail::usage("the two passwords differ"));
            }
        }
        first
    };
    if secret.is_empty() {
        return Err(Fail::usage("the password is empty"));
    }
    Ok(secret)
}

fn setup(ctx: &mut Ctx, email: &str, name: Option<&str>, password_stdin: bool) -> Result<(), Fail> {
    let needs = ctx.scalar("dashboard_auth.needs_setup", "SELECT dashboard_auth.needs_setup()::text", &[])?;
    if needs.as_deref() == Some("false") {
        return Err(Fail::failure("setup has already been completed: an admin account exists (log in with `fluxbase login`)"));
    }
    let password = read_secret("Password for the first admin: ", password_stdin, true)?;
    let rows = ctx.rows(
        "dashboard_auth.setup_first_admin",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.setup_first_admin($1, $2, $3) t",
        &[s(email), Some(password), name.map(str::to_string)],
    )?;
    let r = rows.into_iter().next().ok_or_else(|| Fail::failure("setup_first_admin returned nothing"))?;
    let token = r.get("session_token").and_then(Value::as_str).unwrap_or_default().to_string();
    let user_id = r.get("user_id").cloned().unwrap_or(Value::Null);
    let path = session::save(&token)?;
    ctx.out.done(
        json!({ "user_id": user_id, "email": email, "session_file": path.display().to_string() }),
        &format!("Created the first admin {email} ({}); logged in, session saved to {}.", output::cell(&user_id), path.display()),
    );
    Ok(())
}

fn login(ctx: &mut Ctx, email: &str, password_stdin: bool) -> Result<(), Fail> {
    let password = read_secret("Password: ", password_stdin, false)?;
    let ua = format!("fluxbase-cli/{}", env!("CARGO_PKG_VERSION"));
    let rows = ctx.rows(
        "dashboard_auth.login",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.login($1, $2, NULL, $3) t",
        &[s(email), Some(password), Some(ua)],
    )?;
    let mut r = rows.into_iter().next().unwrap_or(Value::Null);
    let status = |r: &Value| r.get("status").and_then(Value::as_str).unwrap_or("").to_string();
    if status(&r) == "mfa_required" {
        let pending = r.get("session_token").and_then(Value::as_str).unwrap_or_default().to_string();
        let code = if password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| Fail::failure(format!("cannot read stdin: {e}")))?;
            line.trim().to_string()
        } else {
            rpassword::prompt_password("Two-factor code (or a backup code): ").map_err(|e| Fail::failure(format!("cannot read the code: {e}")))?
        };
        if code.is_empty() {
            return Err(Fail::usage("a two-factor code is required for this account (give it on the line after the password)"));
        }
        let rows = ctx.rows(
            "dashboard_auth.login_mfa",
            "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.login_mfa($1, $2) t",
            &[Some(pending), Some(code)],
        )?;
        r = rows.into_iter().next().unwrap_or(Value::Null);
    }
    match status(&r).as_str() {
        "ok" => {}
        "locked" => return Err(Fail::denied("login refused: the account is locked after too many failed attempts; try again later")),
        "mfa_required" => return Err(Fail::denied("login failed: the two-factor code was not accepted")),
        _ => return Err(Fail::denied("login failed: wrong email, password or code")),
    }
    let token = r.get("session_token").and_then(Value::as_str).unwrap_or_default().to_string();
    let expires = r.get("expires_at").cloned().unwrap_or(Value::Null);
    let path = session::save(&token)?;
    ctx.out.done(
        json!({ "status": "ok", "email": email, "expires_at": expires, "session_file": path.display().to_string() }),
        &format!("Logged in as {email}; session saved to {} (expires {}).", path.display(), output::cell(&expires)),
    );
    Ok(())
}

fn logout(ctx: &mut Ctx) -> Result<(), Fail> {
    let token = match session::load() {
        Ok(t) => t,
        Err(_) => std::fs::read_to_string(session::path()).ok().map(|t| t.trim().to_string()),
    };
    let Some(token) = token else {
        ctx.out.done(json!({ "logged_out": false }), "Not logged in.");
        return Ok(());
    };
    let r = ctx.query_with("dashboard_auth.logout", "SELECT dashboard_auth.logout($1)::text", &[Some(token)], false);
    session::remove()?;
    r?;
    ctx.out.done(
        json!({ "logged_out": true, "session_file": session::path().display().to_string() }),
        "Logged out; the session is ended and its file removed.",
    );
    Ok(())
}

fn impersonate(ctx: &mut Ctx, user: &str, reason: &str, params: Option<&str>, sql: &str) -> Result<(), Fail> {
    let params = params.unwrap_or("[]");
    if serde_json::from_str::<Value>(params).map(|v| !v.is_array()).unwrap_or(true) {
        return Err(Fail::usage("--params must be a JSON array, e.g. '[1, \"x\"]'"));
    }
    let id = ctx
        .scalar("dashboard.start_impersonation", "SELECT dashboard.start_impersonation($1, $2)::text", &[s(user), s(reason)])?
        .ok_or_else(|| Fail::failure("start_impersonation returned no session id"))?;
    if !ctx.out.json() && std::io::stderr().is_terminal() {
        eprintln!("impersonating {user} (impersonation session {id})");
    }
    // Run the statement, then always end the impersonation, even when the statement failed.
    let result = ctx.rows(
        "dashboard.query_as",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard.query_as($1::text::uuid, $2, $3::text::jsonb) t",
        &[s(&id), s(sql), s(params)],
    );
    let stopped = ctx.scalar("dashboard.stop_impersonation", "SELECT dashboard.stop_impersonation($1::text::uuid)::text", &[s(&id)]);
    let rows = result?;
    stopped?;
    ctx.out.list(&rows, "rows");
    Ok(())
}

/// `col:op:value` → {"column","op","value"}; `in` takes a comma-separated list;
/// is_null / not_null take no value. The value may itself contain ':'.
pub fn parse_filter(f: &str) -> Result<Value, String> {
    let mut parts = f.splitn(3, ':');
    let col = parts.next().unwrap_or("");
    let op = parts.next().ok_or_else(|| format!("bad filter {f:?}: expected column:op:value"))?;
    let value = parts.next();
    if col.is_empty() {
        return Err(format!("bad filter {f:?}: the column is empty"));
    }
    const OPS: [&str; 11] = ["eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "in", "is_null", "not_null"];
    if !OPS.contains(&op) {
        return Err(format!("bad filter {f:?}: unknown operator {op:?} (one of {})", OPS.join(", ")));
    }
    match (op, value) {
        ("is_null" | "not_null", None) => Ok(json!({ "column": col, "op": op })),
        ("is_null" | "not_null", Some(_)) => Err(format!("bad filter {f:?}: {op} takes no value")),
        (_, None) => Err(format!("bad filter {f:?}: {op} needs a value (column:{op}:value)")),
        ("in", Some(v)) => Ok(json!({ "column": col, "op": op, "value": v.split(',').collect::<Vec<_>>() })),
        (_, Some(v)) => Ok(json!({ "column": col, "op": op, "value": v })),
    }
}

/// `col` or `col:asc` / `col:desc` → {"column","dir"}.
pub fn parse_sort(s: &str) -> Result<Value, String> {
    let (col, dir) = match s.rsplit_once(':') {
        Some((c, d)) if d.eq_ignore_ascii_case("desc") || d.eq_ignore_ascii_case("asc") => (c, d.to_lowercase()),
        _ => (s, "asc".to_string()),
    };
    if col.is_empty() {
        return Err(format!("bad sort {s:?}: expected column[:desc]"));
    }
    Ok(json!({ "column": col, "dir": dir }))
}

/// The cursor printed by a previous page is JSON; anything else is taken as a JSON string.
pub fn parse_cursor(c: &str) -> Value {
    serde_json::from_str(c).unwrap_or_else(|_| Value::String(c.to_string()))
}

fn tables(ctx: &mut Ctx, cmd: TablesCmd) -> Result<(), Fail> {
    match cmd {
        TablesCmd::List { schema } => {
            let rows = ctx.rows("dashboard.list_tables", "SELECT pg_catalog.to_json(t)::text FROM dashboard.list_tables($1) t", &[schema])?;
            ctx.out.list_view(&rows, "tables", output::views::TABLES);
        }
        TablesCmd::Describe { table } => {
            let rows = ctx.rows(
                "dashboard.describe_table",
                "SELECT pg_catalog.to_json(t)::text FROM dashboard.describe_table($1::text::regclass) t",
                &[s(&table)],
            )?;
            ctx.out.list(&rows, "columns");
        }
        TablesCmd::Browse { table, filter, sort, search, page_size, after } => {
            let filters = filter.iter().map(|f| parse_filter(f)).collect::<Result<Vec<_>, _>>().map_err(Fail::usage)?;
            let sorts = sort.iter().map(|x| parse_sort(x)).collect::<Result<Vec<_>, _>>().map_err(Fail::usage)?;
            let after = after.as_deref().map(|c| parse_cursor(c).to_string());
            let v = ctx.json_scalar(
                "dashboard.browse",
                "SELECT dashboard.browse($1::text::regclass, $2::text::jsonb, $3::text::jsonb, $4, $5::text::int, $6::text::jsonb)::text",
                &[s(&table), Some(Value::Array(filters).to_string()), Some(Value::Array(sorts).to_string()), search, s(&page_size.to_string()), after],
            )?;
            if ctx.out.for_scripts() {
                ctx.out.record(&v);
            } else {
                let rows = v.get("rows").and_then(Value::as_array).cloned().unwrap_or_default();
                ctx.out.list(&rows, "rows");
                if ctx.out.quiet {
                    return Ok(());
                }
                if let Some(t) = v.get("estimated_total").filter(|t| !t.is_null()) {
                    say!("estimated total: {}", output::cell(t));
                }
                if let Some(c) = v.get("next_cursor").filter(|c| !c.is_null()) {
                    say!("next page: --after '{}'", c.to_string().replace('\'', "'\\''"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(parse_filter("age:gt:30").unwrap(), json!({"column":"age","op":"gt","value":"30"}));
        assert_eq!(parse_filter("url:eq:http://x:1").unwrap()["value"], "http://x:1");
        assert_eq!(parse_filter("id:in:1,2,3").unwrap()["value"], json!(["1", "2", "3"]));
        assert_eq!(parse_filter("email:is_null").unwrap(), json!({"column":"email","op":"is_null"}));
        assert!(parse_filter("email").is_err());
        assert!(parse_filter("email:regex:x").is_err());
        assert!(parse_filter("email:eq").is_err());
        assert!(parse_filter(":eq:x").is_err());
        assert!(parse_filter("a:is_null:x").is_err());
    }

    #[test]
    fn sorts_and_cursors() {
        assert_eq!(parse_sort("name").unwrap(), json!({"column":"name","dir":"asc"}));
        assert_eq!(parse_sort("created_at:DESC").unwrap(), json!({"column":"created_at","dir":"desc"}));
        assert_eq!(parse_sort("a:b").unwrap()["column"], "a:b");
        assert!(parse_sort(":desc").is_err());
        assert_eq!(parse_cursor("{\"id\": 5}"), json!({"id": 5}));
        assert_eq!(parse_cursor("abc"), json!("abc"));
    }
}
