//! Email addresses are identities here (admins log in with them), so they are
//! normalised once — trimmed and lower-cased — and checked for a plausible shape.
//! We do not try to implement RFC 5322; we refuse what is clearly not an address.

use crate::error::{Code, FbError, FbResult};

pub const MAX_EMAIL_LEN: usize = 254;

pub fn normalize_email(raw: Option<&str>) -> FbResult<String> {
    let raw = raw.ok_or_else(|| FbError::new(Code::NullValue, "email is required"))?;
    if raw.len() > 4 * MAX_EMAIL_LEN {
        return Err(FbError::invalid("email is too long"));
    }
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(FbError::invalid("email is required"));
    }
    if email.chars().count() > MAX_EMAIL_LEN {
        return Err(FbError::invalid(format!("email is too long (at most {MAX_EMAIL_LEN} characters)")));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FbError::invalid(format!("'{}' is not a valid email address: it contains spaces or control characters", printable(&email))));
    }
    let bad = || FbError::invalid(format!("'{}' is not a valid email address", printable(&email)));
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return Err(bad());
    }
    if domain.len() < 3 || !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad());
    }
    if email.chars().any(|c| matches!(c, '"' | '\'' | '\\' | ';' | '<' | '>' | '(' | ')' | ',' | '[' | ']')) {
        return Err(bad());
    }
    Ok(email)
}

/// For error messages: never echo control characters back.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(normalize_email(Some("  Ada@Example.COM ")).unwrap(), "ada@example.com");
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["", "   ", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@@example.com",
                    "x'; drop table users; --@example.com", "ada@.com", "ada@example..com"] {
            assert!(normalize_email(Some(bad)).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(normalize_email(None).unwrap_err().code, Code::NullValue);
        let long = format!("{}@example.com", "a".repeat(1_000_000));
        assert!(normalize_email(Some(&long)).unwrap_err().message.contains("too long"));
    }
}
