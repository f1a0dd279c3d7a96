//! The plain-Rust heart of fluxbase_admin. Nothing here touches Postgres, so every
//! rule (password policy, token format, settings validation, TOTP, SQL building)
//! is unit-tested with `cargo test -p fluxbase_core`; the extension's
//! `#[pg_extern]` functions are thin wrappers that call into this crate.

pub mod chain;
pub mod email;
pub mod error;
pub mod explorer;
pub mod heap_tuple;
pub mod password;
pub mod phone;
pub mod settings;
pub mod token;
pub mod totp;
pub mod claims;
pub mod sqlguard;
pub mod row_image;
pub mod session;
pub mod stepup;
pub mod audit_search;
pub mod user_list;
pub mod rls;
pub mod passkey;
pub mod zero_rows;

pub use error::{Code, FbError, FbResult};

/// Parse a UUID in its usual text forms (hyphens optional, braces allowed, any
/// case), as Postgres' uuid input does.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    uuid::Uuid::try_parse(s).ok().map(|u| u.into_bytes())
}

/// Whether `s` is a UUID in the one form ids are shown in (8-4-4-4-12 hex
/// digits, any case): what tells an id from a token or a label.
pub fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}
