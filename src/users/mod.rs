//! The application's end users (schema `auth`) as the dashboard manages them:
//! `auth.users` (`app_users`), viewing the database as one of them
//! (`impersonation`) and the claim helpers RLS policies call (`claims`).
//!
//! May call: `runtime`, `audit`, `admin` (step-up, settings).

pub mod app_users;
pub mod claims;
pub mod impersonation;
