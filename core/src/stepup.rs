//! Step-up re-authentication (issue 20, ASVS 4.3.3): which actions need the
//! admin to have re-entered their password or a 2FA code recently, and the
//! window arithmetic. The extension records the time of the last
//! `dashboard_auth.reauthenticate` on the session row and asks
//! [`check_window`] before each step-up action; callers without an admin
//! identity (`db:<role>`) are never asked.

use crate::error::{Code, FbError, FbResult};

/// The setting holding the window's length.
pub const WINDOW_SETTING: &str = "session.reauth_window";

/// The message every refusal carries (SQLSTATE FBR01).
pub const REQUIRED_MESSAGE: &str = "re-authentication required";

/// Setting key prefixes whose changes are step-up actions: they loosen or
/// tighten how admins prove who they are.
pub const SECURITY_SETTING_PREFIXES: &[&str] = &["session.", "lockout.", "mfa.", "password.", "webauthn.", "auth."];

/// The destructive actions that need a recent re-authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    DeleteAdmin,
    DeleteUser,
    ChangeAdminRole,
    ChangeUserRole,
    /// `revoke_all_sessions` of another admin (one's own is not destructive).
    RevokeOthersSessions,
    TotpDisable,
    /// `set_setting` of a key in [`SECURITY_SETTING_PREFIXES`].
    ChangeSecuritySetting,
    PurgeAudit,
    DisableAudit,
    /// `unlock_admin`: lifting a login lockout lets guessing at that
    /// account's password start again.
    UnlockAdmin,
    /// `create_admin` with role `dashboard_admin` (issue 28): a stolen
    /// session must not mint a permanent admin.
    CreateAdmin,
    /// `invite_admin` with role `dashboard_admin` (issue 28).
    InviteAdmin,
    /// `revoke_session` of another admin's session (one's own stays free).
    RevokeOthersSession,
    /// `remove_passkey` (issue 33): one's own or another admin's.
    RemovePasskey,
}

impl Action {
    /// How the action is named in the refusal.
    pub fn describe(self) -> &'static str {
        match self {
            Action::DeleteAdmin => "deleting an admin",
            Action::DeleteUser => "deleting a user",
            Action::ChangeAdminRole => "changing an admin's role",
            Action::ChangeUserRole => "changing a user's role",
            Action::RevokeOthersSessions => "revoking all sessions of another admin",
            Action::TotpDisable => "disabling two-factor authentication",
            Action::ChangeSecuritySetting => "changing a security setting",
            Action::PurgeAudit => "purging the audit trail",
            Action::DisableAudit => "disabling auditing of a table",
            Action::UnlockAdmin => "lifting an admin's login lockout",
            Action::CreateAdmin => "creating an admin with role dashboard_admin",
            Action::InviteAdmin => "inviting an admin with role dashboard_admin",
            Action::RevokeOthersSession => "revoking another admin's session",
            Action::RemovePasskey => "removing a passkey",
        }
    }
}

/// Whether changing this setting is a step-up action.
pub fn is_security_setting(key: &str) -> bool {
    SECURITY_SETTING_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Whether a re-authentication at `reauth_at` (seconds since the epoch, None
/// when the session never re-authenticated) still covers an action at `now`,
/// for a window of `window_secs`. The window is half-open: `[reauth_at,
/// reauth_at + window)`. A re-authentication recorded in the future (a clock
/// moved back, a row edited by hand) covers nothing.
pub fn within_window(reauth_at: Option<f64>, now: f64, window_secs: f64) -> bool {
    match reauth_at {
        Some(at) if at.is_finite() && now.is_finite() && window_secs.is_finite() => {
            at <= now && now - at < window_secs
        }
        _ => false,
    }
}

/// The refusal for `action`: SQLSTATE FBR01, with a hint naming the remedy.
pub fn required(action: Action, window_secs: f64) -> FbError {
    FbError::new(Code::ReauthRequired, REQUIRED_MESSAGE)
        .with_detail(format!(
            "{} needs the password or a 2FA code re-entered within the last {}",
            action.describe(),
            human_window(window_secs)
        ))
        .with_hint("call dashboard_auth.reauthenticate(password or code) in this session, then retry")
}

/// Check `action` against the session's last re-authentication.
pub fn check_window(action: Action, reauth_at: Option<f64>, now: f64, window_secs: f64) -> FbResult<()> {
    if within_window(reauth_at, now, window_secs) {
        Ok(())
    } else {
        Err(required(action, window_secs))
    }
}

/// What `reauthenticate` is given: a 6-digit TOTP code, something shaped like
/// a backup code (which may also be a password), or anything else (a password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    TotpCode,
    BackupCodeOrPassword,
    Password,
}

pub fn classify_secret(secret: &str) -> SecretKind {
    match crate::totp::classify(secret) {
        // A 6-digit string is never a password: password.min_length is at least 8.
        crate::totp::Presented::Totp(_) => SecretKind::TotpCode,
        crate::totp::Presented::Backup(_) => SecretKind::BackupCodeOrPassword,
        crate::totp::Presented::Malformed => SecretKind::Password,
    }
}

fn human_window(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        s if s % 3600 == 0 => format!("{} hour(s)", s / 3600),
        s if s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open_and_needs_a_reauth() {
        assert!(!within_window(None, 1000.0, 300.0));
        assert!(within_window(Some(1000.0), 1000.0, 300.0));
        assert!(within_window(Some(1000.0), 1299.9, 300.0));
        assert!(!within_window(Some(1000.0), 1300.0, 300.0));
        assert!(!within_window(Some(1000.0), 5000.0, 300.0));
        // in the future: covers nothing
        assert!(!within_window(Some(1001.0), 1000.0, 300.0));
        assert!(!within_window(Some(f64::NAN), 1000.0, 300.0));
        assert!(!within_window(Some(1000.0), 1000.0, f64::NAN));
    }

    #[test]
    fn refusal_is_fbr01_with_hint() {
        let e = check_window(Action::DeleteAdmin, None, 10.0, 300.0).unwrap_err();
        assert_eq!(e.code.sqlstate(), "FBR01");
        assert_eq!(e.message, "re-authentication required");
        assert!(e.hint.unwrap().contains("dashboard_auth.reauthenticate"));
        assert!(e.detail.unwrap().contains("deleting an admin") );
        check_window(Action::PurgeAudit, Some(9.0), 10.0, 300.0).unwrap();
        assert!(required(Action::TotpDisable, 90.0).detail.unwrap().contains("90 second(s)"));
        assert!(required(Action::TotpDisable, 3600.0).detail.unwrap().contains("1 hour(s)"));
    }

    #[test]
    fn security_settings() {
        for k in ["session.idle_timeout", "session.reauth_window", "lockout.max_attempts", "mfa.required", "password.min_length"] {
            assert!(is_security_setting(k), "{k}");
        }
        assert!(!is_security_setting("impersonation.max_duration"));
        assert!(!is_security_setting("sessionx"));
        // every security-relevant key the settings know is covered
        for s in crate::settings::SETTINGS {
            if !s.key.starts_with("impersonation.") {
                assert!(is_security_setting(s.key), "{}", s.key);
            }
        }
    }

    #[test]
    fn secrets_are_told_apart() {
        assert_eq!(classify_secret("123456"), SecretKind::TotpCode);
        assert_eq!(classify_secret("123 456"), SecretKind::TotpCode);
        assert_eq!(classify_secret("correct-horse-battery-staple"), SecretKind::Password);
        assert_eq!(classify_secret("'; DROP TABLE x; --"), SecretKind::Password);
        let code = crate::totp::generate_backup_codes().remove(0);
        assert_eq!(classify_secret(&code), SecretKind::BackupCodeOrPassword);
    }
}
