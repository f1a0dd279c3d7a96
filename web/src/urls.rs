//! Every URL of the dashboard (`Url`) and the top bar (`NAV`): a leaf module
//! that the router, the page chrome (render), the error pages, the headers
//! and the assets all import, so none of them imports `routes`.

/// Every path of the dashboard (section developers: add yours, in order).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Url {
    Home,
    Healthz,
    Assets,
    Setup,
    Login,
    Login2fa,
    Logout,
    Account,
    AccountPassword,
    Account2faSetup,
    Account2faEnable,
    Account2faDisable,
    AccountBackupCodes,
    AccountSessionRevoke,
    AccountSessionsRevokeOthers,
    Enrol,
    Users,
    Admins,
    Settings,
    Analytics,
    Audit,
    Reauth,
    Tables,
    Advisor,
    // Passkeys (issue 33)
    AccountPasskeyBegin,
    AccountPasskeyFinish,
    AccountPasskeyRename,
    AccountPasskeyRemove,
    LoginPasskeyBegin,
    LoginPasskeyFinish,
    Login2faPasskeyBegin,
    Login2faPasskeyFinish,
    ReauthPasskeyBegin,
    ReauthPasskeyFinish,
}

impl Url {
    pub const fn path(self) -> &'static str {
        match self {
            Url::Home => "/admin",
            Url::Healthz => "/admin/healthz",
            Url::Assets => "/admin/assets",
            Url::Setup => "/admin/setup",
            Url::Login => "/admin/login",
            Url::Login2fa => "/admin/login/2fa",
            Url::Logout => "/admin/logout",
            Url::Account => "/admin/account",
            Url::AccountPassword => "/admin/account/password",
            Url::Account2faSetup => "/admin/account/2fa/setup",
            Url::Account2faEnable => "/admin/account/2fa/enable",
            Url::Account2faDisable => "/admin/account/2fa/disable",
            Url::AccountBackupCodes => "/admin/account/2fa/backup-codes",
            Url::AccountSessionRevoke => "/admin/account/sessions/revoke",
            Url::AccountSessionsRevokeOthers => "/admin/account/sessions/revoke-others",
            Url::Enrol => "/admin/account/2fa/required",
            Url::Users => "/admin/users",
            Url::Admins => "/admin/admins",
            Url::Settings => "/admin/settings",
            Url::Analytics => "/admin/analytics",
            Url::Audit => "/admin/audit",
            Url::Reauth => "/admin/reauth",
            Url::Tables => "/admin/tables",
            Url::Advisor => "/admin/advisor",
            Url::AccountPasskeyBegin => "/admin/account/passkeys/begin",
            Url::AccountPasskeyFinish => "/admin/account/passkeys/finish",
            Url::AccountPasskeyRename => "/admin/account/passkeys/rename",
            Url::AccountPasskeyRemove => "/admin/account/passkeys/remove",
            Url::LoginPasskeyBegin => "/admin/login/passkey/begin",
            Url::LoginPasskeyFinish => "/admin/login/passkey/finish",
            Url::Login2faPasskeyBegin => "/admin/login/2fa/passkey/begin",
            Url::Login2faPasskeyFinish => "/admin/login/2fa/passkey/finish",
            Url::ReauthPasskeyBegin => "/admin/reauth/passkey/begin",
            Url::ReauthPasskeyFinish => "/admin/reauth/passkey/finish",
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

/// An entry of the top bar.
pub struct NavEntry {
    pub label: &'static str,
    pub url: Url,
}

/// The top bar's sections, in display order. A section adds its line here
/// once its page exists (Tables: issue 19; Users, Settings, Analytics,
/// Admins, Audit: issue 20).
pub const NAV: &[NavEntry] = &[
    // Tables
    NavEntry { label: "Tables", url: Url::Tables },

    // Users
    NavEntry { label: "Users", url: Url::Users },
    // Settings
    NavEntry { label: "Settings", url: Url::Settings },
    // Analytics
    NavEntry { label: "Analytics", url: Url::Analytics },
    // Admins
    NavEntry { label: "Admins", url: Url::Admins },
    // Audit
    NavEntry { label: "Audit", url: Url::Audit },
    // Advisor (issue 32)
    NavEntry { label: "Advisor", url: Url::Advisor },
];
