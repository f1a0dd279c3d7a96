use super::*;

pub(super) fn impersonate(ctx: &mut Ctx, user: &str, reason: &str, params: Option<&str>, sql: &str) -> Result<(), Fail> {
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
