use super::*;

pub(super) fn login(ctx: &mut Ctx, email: &str, password_stdin: bool) -> Result<(), Fail> {
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

pub(super) fn logout(ctx: &mut Ctx) -> Result<(), Fail> {
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
