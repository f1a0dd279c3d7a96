use super::*;

pub(super) fn admin(ctx: &mut Ctx, cmd: AdminCmd) -> Result<(), Fail> {
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
        AdminCmd::Passkeys { cmd } => match cmd {
            PasskeysCmd::List { admin } => {
                let admin_id = match admin {
                    Some(a) if a.contains('@') => Some(
                        ctx.scalar(
                            "dashboard_auth.list_admins",
                            "SELECT a.id::text FROM dashboard_auth.list_admins() a WHERE a.email = pg_catalog.lower($1)",
                            &[s(&a)],
                        )?
                        .ok_or_else(|| Fail::not_found(format!("no admin with email {a}")))?,
                    ),
                    other => other,
                };
                let rows = ctx.rows(
                    "dashboard_auth.list_passkeys",
                    "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.list_passkeys($1::text::uuid) t",
                    &[admin_id],
                )?;
                ctx.out.list_view(&rows, "passkeys", output::views::PASSKEYS);
            }
            PasskeysCmd::Remove { id } => {
                ctx.confirm(&format!("remove passkey {id}"))?;
                ctx.scalar("dashboard_auth.remove_passkey", "SELECT dashboard_auth.remove_passkey($1::text::uuid)::text", &[s(&id)])?;
                ctx.out.done(json!({ "removed": true, "id": id }), &format!("Removed passkey {id}."));
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
