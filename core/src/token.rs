//! Bearer tokens (sessions, pending-MFA logins, invitations, password resets,
//! backup codes). 256 bits from the OS random source, shown to the caller once,
//! stored only as a SHA-256 digest. A prefix names the kind so a leaked token is
//! recognisable by secret scanners and can't be used as the wrong kind.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    MfaPending,
    Invitation,
    PasswordReset,
    AppUserInvite,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "fbs_",
            TokenKind::MfaPending => "fbm_",
            TokenKind::Invitation => "fbi_",
            TokenKind::PasswordReset => "fbr_",
            TokenKind::AppUserInvite => "fbu_",
        }
    }
}

/// 32 random bytes, base64url without padding: 43 characters after the prefix.
pub const TOKEN_BODY_LEN: usize = 43;

pub struct NewToken {
    pub token: String,
    pub digest: [u8; 32],
}

pub fn generate(kind: TokenKind) -> NewToken {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let digest = sha256(token.as_bytes());
    NewToken { token, digest }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The digest to look a presented token up by, or None when it cannot be a
/// token of this kind (wrong prefix, wrong length, odd characters) — in which
/// case no lookup is needed at all.
pub fn digest_if_well_formed(kind: TokenKind, presented: &str) -> Option<[u8; 32]> {
    let body = presented.strip_prefix(kind.prefix())?;
    if body.len() != TOKEN_BODY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    Some(sha256(presented.as_bytes()))
}

/// Random bytes for other secrets (TOTP seeds).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_unique_and_digested() {
        let a = generate(TokenKind::Session);
        let b = generate(TokenKind::Session);
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with("fbs_"));
        assert_eq!(a.token.len(), 4 + TOKEN_BODY_LEN);
        assert_eq!(digest_if_well_formed(TokenKind::Session, &a.token), Some(a.digest));
    }

    #[test]
    fn wrong_kind_or_shape_is_rejected_without_lookup() {
        let a = generate(TokenKind::Session);
        assert_eq!(digest_if_well_formed(TokenKind::Invitation, &a.token), None);
        assert_eq!(digest_if_well_formed(TokenKind::Session, "fbs_short"), None);
        assert_eq!(digest_if_well_formed(TokenKind::Session, &format!("{}'", &a.token[..a.token.len() - 1])), None);
        assert_eq!(digest_if_well_formed(TokenKind::Session, ""), None);
        // a huge argument with the right prefix and alphabet: refused on its length
        assert_eq!(digest_if_well_formed(TokenKind::Session, &format!("fbs_{}", "A".repeat(1_000_000))), None);
        assert_eq!(digest_if_well_formed(TokenKind::Session, &format!("{}A", a.token)), None);
    }
}
