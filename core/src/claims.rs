//! The Supabase / PostgREST claim conventions, in plain Rust.
//!
//! PostgREST puts the verified JWT's claims into the GUC `request.jwt.claims`
//! as JSON (older versions: one GUC per claim, `request.jwt.claim.sub`, ...).
//! An empty string means "unset" (a GUC once set can only be set back to '').
//! `auth.uid()` and friends read them per row, so the extension parses the JSON
//! once per change of the setting and keeps the result ([`Claims`]).

use serde_json::Value;

/// The parts of a claims document that the helpers return.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The whole document (None when the setting is unset or not a JSON object).
    pub json: Option<Value>,
    /// `sub` as UUID bytes; Err(text) when present but not a UUID.
    pub sub: Option<Result<[u8; 16], String>>,
    pub role: Option<String>,
    pub email: Option<String>,
}

impl Claims {
    pub const EMPTY: Claims = Claims { json: None, sub: None, role: None, email: None };

    /// Parse the text of `request.jwt.claims`. '' and non-objects count as unset.
    pub fn parse(raw: &str) -> Claims {
        if raw.trim().is_empty() {
            return Claims::EMPTY;
        }
        let json: Value = match serde_json::from_str(raw) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Claims::EMPTY,
        };
        let text = |k: &str| match json.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let sub = text("sub").map(|s| parse_uuid(&s).ok_or(s));
        let role = text("role");
        let email = text("email");
        Claims { json: Some(json), sub, role, email }
    }
}

pub use crate::parse_uuid;

pub fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supabase_claims() {
        let c = Claims::parse(r#"{"sub":"0B8a4c2e-1111-4222-8333-444455556666","role":"authenticated","email":"a@b.co","aud":"authenticated"}"#);
        assert_eq!(c.sub.clone().unwrap().unwrap()[0], 0x0b);
        assert_eq!(format_uuid(&c.sub.unwrap().unwrap()), "0b8a4c2e-1111-4222-8333-444455556666");
        assert_eq!(c.role.as_deref(), Some("authenticated"));
        assert_eq!(c.email.as_deref(), Some("a@b.co"));
        assert!(c.json.is_some());
    }

    #[test]
    fn empty_and_garbage_are_unset() {
        assert_eq!(Claims::parse(""), Claims::EMPTY);
        assert_eq!(Claims::parse("  "), Claims::EMPTY);
        assert_eq!(Claims::parse("not json"), Claims::EMPTY);
        assert_eq!(Claims::parse("[1,2]"), Claims::EMPTY);
        let c = Claims::parse(r#"{"role":"anon","sub":""}"#);
        assert_eq!(c.sub, None);
        assert_eq!(c.role.as_deref(), Some("anon"));
    }

    #[test]
    fn bad_sub_is_reported() {
        let c = Claims::parse(r#"{"sub":"x'; drop table t"}"#);
        assert!(matches!(c.sub, Some(Err(_))));
    }

    #[test]
    fn uuid_forms() {
        assert!(parse_uuid("0b8a4c2e111142228333444455556666").is_some());
        assert!(parse_uuid("{0b8a4c2e-1111-4222-8333-444455556666}").is_some());
        assert!(parse_uuid("0b8a4c2e-1111-4222-8333-44445555666").is_none());
        assert!(parse_uuid("0b8a4c2e-1111-4222-8333-44445555666g").is_none());
        assert!(parse_uuid("0b8a4c2e1-111-4222-8333-444455556666").is_none());
    }
}
