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

mod admin;
mod ctx;
mod impersonate;
mod login;
mod serve;
mod setup;
mod tables;
mod users;

use std::io::{BufRead, IsTerminal, Write};

use clap::{CommandFactory, Parser};
use postgres::{Client, NoTls};
use serde_json::{json, Value};

use cli::*;
use fail::Fail;
use output::Out;

use admin::*;
use audit::*;
use ctx::*;
use impersonate::*;
use login::*;
use serve::*;
use setup::*;
use tables::*;
use users::*;

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
