use super::*;

pub(super) fn setup(ctx: &mut Ctx, email: &str, name: Option<&str>, password_stdin: bool) -> Result<(), Fail> {
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
