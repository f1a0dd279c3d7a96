//! The cookies, their names and flags in one place: `__Host-` prefix,
//! HttpOnly, Secure, SameSite=Strict, Path=/, no Domain (the prefix forbids
//! it). Browsers accept Secure cookies on http://localhost; elsewhere the
//! dashboard needs HTTPS (its own TLS or a proxy).

use axum::http::{header, HeaderMap, HeaderValue};

/// The admin session token.
pub const SESSION: &str = "__Host-fluxbase_session";
/// The pending token between the password step and the 2FA step.
pub const MFA: &str = "__Host-fluxbase_mfa";
/// The admin's live impersonation (its id; the database checks that it is
/// this admin's and still running on every use: `db::with_session_as`).
pub const IMPERSONATION: &str = "__Host-fluxbase_imp";
/// The 2FA step's cookie lives 5 minutes (the database's pending token may
/// expire sooner: its answer decides).
pub const MFA_MAX_AGE: u32 = 300;

/// A Set-Cookie value; `max_age` None makes a browser-session cookie.
pub fn set(name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; HttpOnly; Secure; SameSite=Strict; Path=/{age}"))
        .unwrap_or_else(|_| clear(name))
}

/// A Set-Cookie value that deletes the cookie (same Path and flags).
pub fn clear(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request, if any (non-empty).
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}
