//! One error type for the CLI: a message for stderr and an exit code.

use std::fmt;

pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CONNECT: i32 = 3;
pub const EXIT_NOT_FOUND: i32 = 4;
pub const EXIT_DENIED: i32 = 5;

#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub msg: String,
}

impl Fail {
    pub fn new(code: i32, msg: impl Into<String>) -> Fail {
        Fail { code, msg: msg.into() }
    }
    pub fn failure(msg: impl Into<String>) -> Fail {
        Fail::new(EXIT_FAILURE, msg)
    }
    pub fn usage(msg: impl Into<String>) -> Fail {
        Fail::new(EXIT_USAGE, msg)
    }
    pub fn connect(msg: impl Into<String>) -> Fail {
        Fail::new(EXIT_CONNECT, msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Fail {
        Fail::new(EXIT_NOT_FOUND, msg)
    }
    pub fn denied(msg: impl Into<String>) -> Fail {
        Fail::new(EXIT_DENIED, msg)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Fail {}

/// Words for a server error: the server's message, its detail/hint when they
/// help, and an exit code by SQLSTATE class.
pub fn from_db(e: &postgres::error::DbError, role: &str) -> Fail {
    let code = e.code().code();
    let mut msg = e.message().to_string();
    if let Some(d) = e.detail() {
        if !d.contains("backtrace") && d.len() < 300 {
            msg.push_str(&format!(" ({d})"));
        }
    }
    match code {
        "42501" => {
            if msg.starts_with("permission denied for function") || msg.starts_with("permission denied for schema") {
                msg.push_str(&format!(
                    ": the database role {role} must be a member of fluxbase_dashboard (GRANT fluxbase_dashboard TO {role})"
                ));
            } else if !msg.to_lowercase().contains("permission denied") {
                msg = format!("permission denied: {msg}");
            }
            Fail::denied(msg)
        }
        "28000" | "28P01" => Fail::denied(msg),
        // a destructive command without a fresh re-authentication of the admin session
        "FBR01" => Fail::denied(format!("{msg}: run `fluxbase reauth` (or pass --password-stdin) and retry")),
        "P0002" | "42P01" | "02000" => Fail::not_found(msg),
        _ => {
            if let Some(h) = e.hint() {
                if h.len() < 200 {
                    msg.push_str(&format!("; hint: {h}"));
                }
            }
            Fail::failure(msg)
        }
    }
}
