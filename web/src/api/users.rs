//! App users: `dashboard.search_users`, `get_user`, `invite_user`,
//! `update_user_role`, `reset_user_password`, `delete_user` (extension
//! `src/users/app_users.rs`).

use serde::Deserialize;
use uuid::Uuid;

use super::{one, rows, Ts};
use crate::db::Tx;
use crate::error::WebError;

#[derive(Deserialize, Clone)]
pub struct AppUser {
    pub id: Uuid,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub role: String,
    pub created_at: Ts,
    pub last_sign_in_at: Ts,
    pub confirmed_at: Ts,
    pub email_confirmed_at: Ts,
    pub phone_confirmed_at: Ts,
    pub confirmation_sent_at: Ts,
    pub invited_at: Ts,
    pub banned_until: Ts,
    pub is_anonymous: bool,
    pub app_metadata: serde_json::Value,
    pub user_metadata: serde_json::Value,
}

impl AppUser {
    /// The sign-in provider(s) from app_metadata, as Supabase keeps them.
    pub fn provider(&self) -> String {
        self.app_metadata.get("provider").and_then(|p| p.as_str()).unwrap_or("").to_string()
    }
    /// The name the user gave (user_metadata `full_name`, `name` or
    /// `user_name`, as Supabase's providers fill them), one line, at most 80
    /// characters; empty when none. Rendered as text (escaped), whatever it holds.
    pub fn display_name(&self) -> String {
        ["full_name", "name", "user_name"]
            .iter()
            .find_map(|k| self.user_metadata.get(*k).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()))
            .map(|s| s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(80).collect())
            .unwrap_or_default()
    }
    /// The avatar's stand-in: up to two initials of the name (else of the
    /// email), upper-cased. (The avatar URL itself is not loaded: the
    /// dashboard's CSP allows images from itself only, and a third-party
    /// image would tell its host who looks at the user.)
    pub fn initials(&self) -> String {
        let name = self.display_name();
        let from: Vec<char> = if name.is_empty() {
            self.email.as_deref().unwrap_or("").chars().filter(|c| c.is_alphanumeric()).take(1).collect()
        } else {
            name.split_whitespace().filter_map(|w| w.chars().find(|c| c.is_alphanumeric())).take(2).collect()
        };
        let s: String = from.into_iter().flat_map(char::to_uppercase).collect();
        if s.is_empty() { "?".into() } else { s }
    }
    /// Whether user_metadata names an https avatar (shown as a link on the user's page).
    pub fn avatar_url(&self) -> Option<String> {
        ["avatar_url", "picture"]
            .iter()
            .find_map(|k| self.user_metadata.get(*k).and_then(|v| v.as_str()))
            .filter(|u| u.starts_with("https://") && u.len() <= 2048 && !u.chars().any(|c| c.is_whitespace() || c.is_control()))
            .map(str::to_string)
    }
    /// Every sign-in provider: app_metadata `providers` (Supabase keeps the
    /// list there), else `provider`; joined with ", ".
    pub fn providers(&self) -> String {
        match self.app_metadata.get("providers").and_then(|p| p.as_array()) {
            Some(list) if !list.is_empty() => {
                list.iter().filter_map(|p| p.as_str()).take(10).collect::<Vec<_>>().join(", ")
            }
            _ => self.provider(),
        }
    }
    pub fn app_metadata_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.app_metadata).unwrap_or_default()
    }
    pub fn user_metadata_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.user_metadata).unwrap_or_default()
    }
}

/// A row of `dashboard.search_users`: the user, their live sessions (None:
/// unknown, no `auth.sessions` table) and impersonations, and the cursor to
/// pass as `after` to continue after this row.
#[derive(Deserialize, Clone)]
pub struct ListedUser {
    #[serde(flatten)]
    pub user: AppUser,
    pub active_sessions: Option<i64>,
    pub active_impersonations: i64,
    pub cursor: serde_json::Value,
}

/// What the Users list shows: search, filters, sort, page.
pub struct UserFilter<'a> {
    pub search: Option<&'a str>,
    pub confirmed: Option<bool>,
    pub role: Option<&'a str>,
    pub sort: &'a str,
    pub descending: bool,
    pub page_size: i32,
    pub after: Option<serde_json::Value>,
}

pub async fn search(tx: &Tx<'_>, f: &UserFilter<'_>) -> Result<Vec<ListedUser>, WebError> {
    rows(
        tx,
        "SELECT pg_catalog.to_json(t) FROM dashboard.search_users($1, $2, $3, $4, $5, $6, $7) t",
        &[&f.search, &f.confirmed, &f.role, &f.sort, &f.descending, &f.page_size, &f.after],
    )
    .await
}

pub async fn get(tx: &Tx<'_>, id: Uuid) -> Result<AppUser, WebError> {
    rows(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.get_user($1) t", &[&id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| WebError::NotFound(format!("no app user with id {id}")))
}

#[derive(Deserialize)]
pub struct Invited {
    pub user_id: Uuid,
    pub invite_token: String,
}

pub async fn invite(tx: &Tx<'_>, email: &str, role: &str) -> Result<Invited, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.invite_user($1, $2) t", &[&email, &role]).await
}

pub async fn update_role(tx: &Tx<'_>, id: Uuid, role: &str) -> Result<(), WebError> {
    tx.execute("SELECT dashboard.update_user_role($1, $2)", &[&id, &role]).await?;
    Ok(())
}

pub async fn reset_password(tx: &Tx<'_>, id: Uuid) -> Result<String, WebError> {
    one(tx, "SELECT pg_catalog.to_json(t) FROM dashboard.reset_user_password($1) t", &[&id]).await
}

pub async fn delete(tx: &Tx<'_>, id: Uuid) -> Result<(), WebError> {
    tx.execute("SELECT dashboard.delete_user($1)", &[&id]).await?;
    Ok(())
}
