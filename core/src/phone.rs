//! Phone numbers of app users, stored as Supabase (GoTrue) stores them: the
//! E.164 digits without the leading `+` (`15551234567`). Spaces, dashes, dots,
//! parentheses and one leading `+` are dropped; what remains must be 5 to 15
//! digits. An empty value means "no phone" (NULL), as seed scripts write it.

use crate::error::{FbError, FbResult};

pub const MAX_PHONE_DIGITS: usize = 15;

/// `Ok(None)` for an empty value, `Ok(Some(digits))`, or a 22023 error.
pub fn normalize_phone(raw: &str) -> FbResult<Option<String>> {
    if raw.len() > 64 {
        return Err(FbError::invalid("phone is too long"));
    }
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let digits: String = t.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    if !(5..=MAX_PHONE_DIGITS).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let shown: String = raw.chars().map(|c| if c.is_control() { '?' } else { c }).take(40).collect();
        return Err(FbError::invalid(format!("'{shown}' is not a valid phone number"))
            .with_hint("give an E.164 number, 5 to 15 digits with an optional leading +, e.g. +15551234567"));
    }
    Ok(Some(digits))
}

/// The digits of a search string when it can only be (part of) a phone
/// number: digits with the separators `normalize_phone` drops, at least 3.
pub fn phone_search_digits(s: &str) -> Option<String> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if !t.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')) {
        return None;
    }
    let d: String = t.chars().filter(char::is_ascii_digit).collect();
    (d.len() >= 3).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_e164_digits() {
        assert_eq!(normalize_phone("+1 (555) 123-4567").unwrap().as_deref(), Some("15551234567"));
        assert_eq!(normalize_phone("44.20.7946.0958").unwrap().as_deref(), Some("442079460958"));
        assert_eq!(normalize_phone("  ").unwrap(), None);
        assert_eq!(normalize_phone("").unwrap(), None);
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in ["abc", "+", "1234", "1234567890123456", "++15551234567", "555-CALL-NOW", "1'; drop table x; --",
                    "１２３４５６７"] {
            let e = normalize_phone(bad).unwrap_err();
            assert_eq!(e.code, crate::Code::InvalidParameter, "{bad:?}");
        }
        assert!(normalize_phone(&"1".repeat(100)).unwrap_err().message.contains("too long"));
    }

    #[test]
    fn search_digits_only_for_phone_shaped_strings() {
        assert_eq!(phone_search_digits("+1 555").as_deref(), Some("1555"));
        assert_eq!(phone_search_digits("555-01").as_deref(), Some("55501"));
        assert_eq!(phone_search_digits("12"), None);
        assert_eq!(phone_search_digits("ann"), None);
        assert_eq!(phone_search_digits("a1b2c3"), None);
    }
}
