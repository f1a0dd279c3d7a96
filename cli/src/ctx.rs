use super::*;

/// Why a statement failed: the saved session must re-authenticate first (and
/// the statement may be retried after), or anything else.
enum Retry {
    Reauth(postgres::error::DbError),
    Fail(Fail),
}

/// Where a statement failed: while taking on the saved admin session, or in the command itself.
enum Stage {
    Session,
    Command,
}

pub(super) struct Ctx {
    pub(super) client: Client,
    user: String,
    pub(super) session: Option<String>,
    pub(super) out: Out,
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
    pub(super) fn connect(url: Option<&str>, session: Option<String>, out: Out, yes: bool, password_stdin: bool) -> Result<Ctx, Fail> {
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
    pub(super) fn query_with(&mut self, label: &str, sql: &str, params: &[Param], with_session: bool) -> Result<Vec<Option<String>>, Fail> {
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
    pub(super) fn reauthenticate(&mut self) -> Result<String, Fail> {
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
    pub(super) fn rows(&mut self, label: &str, sql: &str, params: &[Param]) -> Result<Vec<Value>, Fail> {
        self.query(label, sql, params)?
            .into_iter()
            .map(|t| match t {
                None => Ok(Value::Null),
                Some(t) => serde_json::from_str(&t).map_err(|e| Fail::failure(format!("unreadable answer from {label}: {e}"))),
            })
            .collect()
    }

    /// The first column of the first row (None for SQL NULL or no row).
    pub(super) fn scalar(&mut self, label: &str, sql: &str, params: &[Param]) -> Result<Option<String>, Fail> {
        Ok(self.query(label, sql, params)?.into_iter().next().flatten())
    }

    pub(super) fn json_scalar(&mut self, label: &str, sql: &str, params: &[Param]) -> Result<Value, Fail> {
        match self.scalar(label, sql, params)? {
            None => Ok(Value::Null),
            Some(t) => serde_json::from_str(&t).map_err(|e| Fail::failure(format!("unreadable answer from {label}: {e}"))),
        }
    }

    /// Ask before destroying something: --yes skips; without a terminal we refuse.
    pub(super) fn confirm(&self, what: &str) -> Result<(), Fail> {
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

pub(super) fn s(v: &str) -> Param {
    Some(v.to_string())
}

pub(super) fn first_or_not_found(rows: Vec<Value>, what: String) -> Result<Value, Fail> {
    rows.into_iter().find(|r| !r.is_null()).ok_or_else(|| Fail::not_found(what))
}

/// A secret from stdin (one line) or from a prompt without echo; never from argv.
pub(super) fn read_secret(prompt: &str, from_stdin: bool, confirm: bool) -> Result<String, Fail> {
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
