use super::*;

pub(super) fn users(ctx: &mut Ctx, cmd: UsersCmd) -> Result<(), Fail> {
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
