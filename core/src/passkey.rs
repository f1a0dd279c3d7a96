//! Passkeys (WebAuthn) for admins (issue 33): the plain rules around
//! webauthn-rs (kanidm's, RustCrypto backend, no OpenSSL). The extension keeps
//! the state (src/admin/passkeys.rs); this module builds the relying party
//! from the settings, starts and finishes the ceremonies, and names why an
//! assertion or a registration was refused.
//!
//! The ceremony state between *begin* and *finish* (`PasskeyRegistration`,
//! `DiscoverableAuthentication`) is serialised (webauthn-rs feature
//! `danger-allow-state-serialisation`) into a challenge row of the database,
//! readable by the extension owner only, used once and only before its expiry.
//! Every authentication uses the discoverable (usernameless) state; when the
//! admin is known (a second factor, a step-up, a sign-in naming its email) the
//! options list that admin's credentials in `allowCredentials`, and the
//! extension checks that the credential used is theirs.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use webauthn_rs::prelude::*;

use crate::error::{Code, FbError, FbResult};

/// How long a ceremony may take between begin and finish.
pub const CHALLENGE_LIFETIME: &str = "5 minutes";
/// Most passkey sign-in ceremonies (`passkey_login_begin`, which anyone may
/// call while `auth.passwordless` is on) open at once: each writes a challenge
/// row that lives CHALLENGE_LIFETIME, so without a bound an anonymous caller
/// could grow the table at will. Past it, a begin is refused (53400) until
/// ceremonies finish or expire; password sign-in is not affected.
pub const MAX_OPEN_SIGNIN_CEREMONIES: i64 = 10_000;
/// Longest passkey name.
pub const MAX_NAME_CHARS: usize = 100;
/// Most origins `webauthn.origins` may list.
pub const MAX_ORIGINS: usize = 10;
/// The transports a credential may report (WebAuthn's AuthenticatorTransport).
pub const TRANSPORTS: &[&str] = &["usb", "nfc", "ble", "internal", "hybrid", "smart-card"];

/// Is `id` acceptable as `webauthn.rp_id`: a lowercase DNS name (no scheme,
/// port or path; not an IP address, which WebAuthn does not allow).
pub fn check_rp_id(id: &str) -> FbResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 253
        && id.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && !id.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(FbError::invalid(format!("webauthn.rp_id must be a lowercase domain name such as \"admin.example.com\", not {}", short(id))))
    }
}

/// Is `o` acceptable in `webauthn.origins`: scheme, host and optional port,
/// https (http only for localhost), nothing else.
pub fn check_origin(o: &str) -> FbResult<Url> {
    let bad = || FbError::invalid(format!("each of webauthn.origins must be an origin such as \"https://admin.example.com\", not {}", short(o)));
    let url = Url::parse(o).map_err(|_| bad())?;
    let local = url.host_str() == Some("localhost");
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
    if !scheme_ok || url.domain().is_none() || url.path() != "/" || url.query().is_some() || url.fragment().is_some()
        || !url.username().is_empty() || url.password().is_some() || !o.trim_end_matches('/').eq_ignore_ascii_case(&url.origin().ascii_serialization())
    {
        return Err(bad());
    }
    Ok(url)
}

fn short(s: &str) -> String {
    let t: String = s.chars().take(60).collect();
    format!("{:?}", t)
}

/// Why a ceremony was refused: a stable word for the audit log and tests.
pub fn reason(e: &WebauthnError) -> &'static str {
    match e {
        WebauthnError::InvalidRPOrigin => "wrong_origin",
        WebauthnError::InvalidRPIDHash => "wrong_rp_id",
        WebauthnError::MismatchedChallenge => "challenge_mismatch",
        WebauthnError::InvalidClientDataType => "wrong_ceremony_type",
        WebauthnError::UserNotVerified => "user_not_verified",
        WebauthnError::UserNotPresent => "user_not_present",
        WebauthnError::CredentialPossibleCompromise => "counter_regression",
        WebauthnError::AuthenticationFailure => "bad_signature",
        WebauthnError::CredentialNotFound => "unknown_credential",
        WebauthnError::CredentialAlteredAlgFromRequest | WebauthnError::COSEKeyInvalidAlgorithm => "algorithm_not_allowed",
        _ => "invalid_response",
    }
}

/// The relying party: `webauthn.rp_id` and `webauthn.origins`.
pub struct RelyingParty(Webauthn);

/// A begun ceremony: the options for `navigator.credentials.*` (JSON, binary
/// fields base64url), the state to keep, and the digest of its challenge.
pub struct Begun {
    pub options: Value,
    pub state: Value,
    pub challenge_digest: [u8; 32],
}

/// A registered passkey, ready to store.
pub struct Registered {
    pub credential_id: Vec<u8>,
    pub passkey: Value,
    pub counter: u32,
}

/// A verified assertion: the credential's new state (counter, flags).
pub struct Asserted {
    pub passkey: Value,
    pub counter: u32,
    pub user_verified: bool,
}

fn not_configured(what: &str) -> FbError {
    FbError::new(Code::WrongState, format!("passkeys are not configured: {what} is not set"))
        .with_hint("an admin sets webauthn.rp_id (the dashboard's domain) and webauthn.origins (its URL) with dashboard_auth.set_setting")
}

fn state_err<E: std::fmt::Display>(e: E) -> FbError {
    FbError::new(Code::WrongState, format!("the stored passkey ceremony cannot be read: {e}"))
}

/// The challenge's digest (over its bytes) as the options carry it.
fn digest_of_challenge(b64: &str) -> Option<[u8; 32]> {
    let bytes = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok().or_else(|| URL_SAFE.decode(b64).ok())?;
    if bytes.is_empty() {
        return None;
    }
    Some(crate::token::sha256(&bytes))
}

/// The digest of the challenge a response answers (read from its
/// clientDataJSON, not yet verified: it only finds the ceremony's row).
pub fn challenge_digest_of(response: &Value) -> FbResult<[u8; 32]> {
    let bad = |why: &str| FbError::invalid(format!("the passkey response is malformed: {why}"));
    let cdj = response
        .pointer("/response/clientDataJSON")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("response.clientDataJSON is missing"))?;
    let raw = URL_SAFE_NO_PAD.decode(cdj.trim_end_matches('=')).map_err(|_| bad("clientDataJSON is not base64url"))?;
    let client: Value = serde_json::from_slice(&raw).map_err(|_| bad("clientDataJSON is not JSON"))?;
    let chal = client.get("challenge").and_then(Value::as_str).ok_or_else(|| bad("clientDataJSON has no challenge"))?;
    digest_of_challenge(chal).ok_or_else(|| bad("the challenge is not base64url"))
}

/// A credential id from base64url (the `rawId` of a response).
pub fn credential_id_of(response: &Value) -> FbResult<Vec<u8>> {
    let raw = response.get("rawId").or_else(|| response.get("id")).and_then(Value::as_str)
        .ok_or_else(|| FbError::invalid("the passkey response is malformed: rawId is missing"))?;
    URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .map_err(|_| FbError::invalid("the passkey response is malformed: rawId is not base64url"))
}

/// The transports a registration response reports, known ones only.
pub fn transports_of(credential: &Value) -> Vec<String> {
    credential
        .pointer("/response/transports")
        .and_then(Value::as_array)
        .map(|a| {
            let mut t: Vec<String> = a.iter().filter_map(Value::as_str).filter(|s| TRANSPORTS.contains(s)).map(str::to_string).collect();
            t.sort();
            t.dedup();
            t
        })
        .unwrap_or_default()
}

fn counter_of(passkey: &Value) -> u32 {
    passkey.pointer("/cred/counter").and_then(Value::as_u64).unwrap_or(0) as u32
}

impl RelyingParty {
    /// The relying party from the settings; refused (55000) while unset.
    pub fn new(rp_id: &str, origins: &[String]) -> FbResult<Self> {
        if rp_id.is_empty() {
            return Err(not_configured("webauthn.rp_id"));
        }
        check_rp_id(rp_id)?;
        let urls = origins.iter().map(|o| check_origin(o)).collect::<FbResult<Vec<Url>>>()?;
        let Some(first) = urls.first() else { return Err(not_configured("webauthn.origins")) };
        let mut b = WebauthnBuilder::new(rp_id, first).map_err(|_| {
            FbError::new(Code::WrongState, format!("passkeys are misconfigured: {first} is not on the domain {rp_id}"))
                .with_hint("every origin of webauthn.origins must be webauthn.rp_id or one of its subdomains")
        })?;
        for u in &urls[1..] {
            let on_domain = u.domain().map(|d| d == rp_id || d.ends_with(&format!(".{rp_id}"))).unwrap_or(false);
            if !on_domain {
                return Err(FbError::new(Code::WrongState, format!("passkeys are misconfigured: {u} is not on the domain {rp_id}")));
            }
            b = b.append_allowed_origin(u);
        }
        let w = b.rp_name("Fluxbase").build().map_err(|e| FbError::new(Code::WrongState, format!("passkeys are misconfigured: {e}")))?;
        Ok(RelyingParty(w))
    }

    /// Start registering a passkey for the admin `user_id` (the WebAuthn user
    /// handle), excluding the credentials they have already.
    pub fn register_begin(&self, user_id: [u8; 16], email: &str, display: &str, exclude: Vec<Vec<u8>>) -> FbResult<Begun> {
        let exclude: Vec<CredentialID> = exclude.into_iter().map(CredentialID::from).collect();
        let (ccr, reg) = self
            .0
            .start_passkey_registration(Uuid::from_bytes(user_id), email, display, (!exclude.is_empty()).then_some(exclude))
            .map_err(|e| FbError::new(Code::WrongState, format!("cannot start the passkey registration: {e}")))?;
        let options = serde_json::to_value(&ccr).map_err(state_err)?;
        let digest = options.pointer("/publicKey/challenge").and_then(Value::as_str).and_then(digest_of_challenge)
            .ok_or_else(|| state_err("no challenge"))?;
        Ok(Begun { options, state: serde_json::to_value(&reg).map_err(state_err)?, challenge_digest: digest })
    }

    /// Finish a registration: Err(reason) when the browser's answer is refused.
    pub fn register_finish(&self, credential: &Value, state: &Value) -> FbResult<Result<Registered, &'static str>> {
        let reg: PasskeyRegistration = serde_json::from_value(state.clone()).map_err(state_err)?;
        let rpkc: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|e| FbError::invalid(format!("the passkey credential is malformed: {e}")))?;
        Ok(match self.0.finish_passkey_registration(&rpkc, &reg) {
            Ok(pk) => {
                let passkey = serde_json::to_value(&pk).map_err(state_err)?;
                Ok(Registered { credential_id: pk.cred_id().to_vec(), counter: counter_of(&passkey), passkey })
            }
            Err(e) => Err(reason(&e)),
        })
    }

    /// Start an authentication. `allow`: credential ids and transports of the
    /// admin expected (empty: any discoverable credential of this site).
    /// `conditional`: the options ask for the browser's autofill UI.
    pub fn auth_begin(&self, allow: &[(Vec<u8>, Vec<String>)], conditional: bool) -> FbResult<Begun> {
        let (rcr, st) = self
            .0
            .start_discoverable_authentication()
            .map_err(|e| FbError::new(Code::WrongState, format!("cannot start the passkey authentication: {e}")))?;
        let mut options = serde_json::to_value(&rcr).map_err(state_err)?;
        if let Some(o) = options.as_object_mut() {
            if !conditional {
                o.remove("mediation");
            }
        }
        if !allow.is_empty() {
            let list: Vec<Value> = allow
                .iter()
                .map(|(id, t)| {
                    let mut c = json!({ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(id) });
                    if !t.is_empty() {
                        c["transports"] = json!(t);
                    }
                    c
                })
                .collect();
            if let Some(pk) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
                pk.insert("allowCredentials".into(), Value::Array(list));
            }
        }
        let digest = options.pointer("/publicKey/challenge").and_then(Value::as_str).and_then(digest_of_challenge)
            .ok_or_else(|| state_err("no challenge"))?;
        Ok(Begun { options, state: serde_json::to_value(&st).map_err(state_err)?, challenge_digest: digest })
    }

    /// Verify an assertion against the stored credential (its current counter)
    /// and the ceremony state: Err(reason) when refused. User verification is
    /// required (webauthn-rs asks for it in every passkey ceremony).
    pub fn auth_finish(&self, assertion: &Value, state: &Value, passkey: &Value) -> FbResult<Result<Asserted, &'static str>> {
        let st: DiscoverableAuthentication = serde_json::from_value(state.clone()).map_err(state_err)?;
        let mut pk: Passkey = serde_json::from_value(passkey.clone()).map_err(state_err)?;
        let pkc: PublicKeyCredential = serde_json::from_value(assertion.clone())
            .map_err(|e| FbError::invalid(format!("the passkey assertion is malformed: {e}")))?;
        if pkc.get_credential_id() != pk.cred_id().as_slice() {
            return Ok(Err("unknown_credential"));
        }
        let res = match self.0.finish_discoverable_authentication_v2(&pkc, st, &pk) {
            Ok(r) => r,
            Err(e) => return Ok(Err(reason(&e))),
        };
        pk.update_credential(&res);
        let passkey = serde_json::to_value(&pk).map_err(state_err)?;
        Ok(Ok(Asserted { counter: res.counter(), user_verified: res.user_verified(), passkey }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_id_and_origins() {
        check_rp_id("admin.example.com").unwrap();
        check_rp_id("localhost").unwrap();
        for bad in ["", "Admin.example.com", "https://x.com", "x.com:443", "127.0.0.1", "a..b", "-a.com", "x.com/'--"] {
            assert!(check_rp_id(bad).is_err(), "{bad}");
        }
        check_origin("https://admin.example.com").unwrap();
        check_origin("http://localhost:8080").unwrap();
        for bad in ["http://admin.example.com", "https://admin.example.com/path", "https://u:p@x.com", "javascript:alert(1)", "https://127.0.0.1", "x"] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relying_party_needs_both_settings_on_one_domain() {
        assert_eq!(RelyingParty::new("", &["https://a.com".into()]).err().unwrap().code, Code::WrongState);
        assert_eq!(RelyingParty::new("a.com", &[]).err().unwrap().code, Code::WrongState);
        assert!(RelyingParty::new("a.com", &["https://evil.com".into()]).is_err());
        let rp = RelyingParty::new("a.com", &["https://admin.a.com".into(), "http://localhost:1".into()]);
        assert!(rp.is_err(), "localhost is not on a.com");
        let rp = RelyingParty::new("a.com", &["https://admin.a.com".into()]).unwrap();
        let b = rp.register_begin([7; 16], "a@a.com", "A", vec![]).unwrap();
        assert_eq!(b.options.pointer("/publicKey/rp/id").and_then(Value::as_str), Some("a.com"));
        let a = rp.auth_begin(&[(vec![1, 2, 3], vec!["internal".into()])], false).unwrap();
        assert_eq!(a.options.pointer("/publicKey/allowCredentials/0/id").and_then(Value::as_str), Some("AQID"));
        assert!(a.options.get("mediation").is_none());
        assert_ne!(a.challenge_digest, b.challenge_digest);
    }

    #[test]
    fn challenge_is_read_from_client_data() {
        let cd = URL_SAFE_NO_PAD.encode(br#"{"type":"webauthn.get","challenge":"AQID","origin":"https://a.com"}"#);
        let d = challenge_digest_of(&json!({ "response": { "clientDataJSON": cd } })).unwrap();
        assert_eq!(d, crate::token::sha256(&[1, 2, 3]));
        assert!(challenge_digest_of(&json!({ "response": { "clientDataJSON": "%%%" } })).is_err());
        assert!(challenge_digest_of(&json!({})).is_err());
        assert_eq!(transports_of(&json!({ "response": { "transports": ["usb", "x'--", "internal", "usb"] } })), vec!["internal", "usb"]);
    }
}
