//! Two-factor authentication for admins: RFC 6238 TOTP (SHA1, 6 digits, 30 s
//! steps, ±1 step of clock drift), single-use backup codes, and the sealing of
//! TOTP secrets at rest.
//!
//! Replay: `verify` returns the time step a code matched, and refuses steps at
//! or before the last accepted one, so a code is accepted once.
//!
//! Sealing: the TOTP secret must be recoverable (the server recomputes codes),
//! so it cannot be a one-way digest like tokens. It is stored encrypted with a
//! key that is not in the database (see src/mfa.rs: a file in the server's
//! data directory), so a dump or a copy of the tables alone does not reveal
//! it. The cipher is XChaCha20-Poly1305 (RustCrypto's chacha20poly1305) with
//! a random nonce; the owner (the admin's id) is the associated data, so a
//! sealed secret cannot be moved to another admin's row.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use totp_rs::{Algorithm, TOTP};

use crate::error::{Code, FbError, FbResult};
use crate::token::{random_bytes, sha256};

pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// Steps of drift accepted on either side of the current one.
pub const SKEW: u64 = 1;
/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
pub const ISSUER: &str = "Fluxbase";

pub const BACKUP_CODE_COUNT: usize = 10;
/// 12 characters of a 31-letter alphabet: about 59 bits per code.
const BACKUP_CODE_CHARS: usize = 12;
/// No 0/o, 1/l/i: codes are typed by people reading them off paper.
const BACKUP_ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";

fn totp(secret: &[u8], digits: usize) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, digits, SKEW as u8, STEP_SECS, secret.to_vec(), Some(ISSUER.into()), String::new())
}

pub fn generate_secret() -> Vec<u8> {
    random_bytes::<SECRET_BYTES>().to_vec()
}

/// The code for unix time `time` with `digits` digits (6 for us; 8 for the RFC vectors).
pub fn code_at(secret: &[u8], digits: usize, time: u64) -> String {
    totp(secret, digits).generate(time)
}

pub fn secret_base32(secret: &[u8]) -> String {
    totp(secret, DIGITS).get_secret_base32()
}

/// The `otpauth://totp/...` URI authenticator apps scan (as a QR code).
pub fn otpauth_uri(secret: &[u8], account: &str) -> String {
    let mut t = totp(secret, DIGITS);
    t.account_name = account.to_string();
    t.get_url()
}

/// What a presented second-factor code looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// Six digits: a TOTP code.
    Totp(String),
    /// A backup code, normalised (lower case, no separators).
    Backup(String),
    /// Neither: can't match anything.
    Malformed,
}

/// Classify a code as typed by a person: spaces and dashes are ignored, case too.
pub fn classify(raw: &str) -> Presented {
    if raw.len() > 64 {
        return Presented::Malformed;
    }
    let cleaned: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_lowercase();
    if cleaned.len() == DIGITS && cleaned.bytes().all(|b| b.is_ascii_digit()) {
        return Presented::Totp(cleaned);
    }
    if cleaned.len() == BACKUP_CODE_CHARS && cleaned.bytes().all(|b| BACKUP_ALPHABET.contains(&b)) {
        return Presented::Backup(cleaned);
    }
    Presented::Malformed
}

/// Check a 6-digit code against the steps around `now` (±SKEW). Returns the
/// matched step when it is later than `last_step` (the last accepted one), so
/// a code can't be replayed. Compares in constant time.
pub fn verify(secret: &[u8], code: &str, now: u64, last_step: Option<i64>) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, DIGITS);
    let current = now / STEP_SECS;
    let mut found = None;
    for step in current.saturating_sub(SKEW)..=current + SKEW {
        let expected = t.generate(step * STEP_SECS);
        let same = constant_eq(expected.as_bytes(), code.as_bytes());
        let fresh = last_step.map_or(true, |last| (step as i64) > last);
        if same && fresh && found.is_none() {
            found = Some(step as i64);
        }
    }
    found
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Ten fresh backup codes, formatted `xxxx-xxxx-xxxx` for people.
pub fn generate_backup_codes() -> Vec<String> {
    (0..BACKUP_CODE_COUNT)
        .map(|_| {
            // Rejection sampling: bytes >= 248 would bias the first letters.
            let mut chars = Vec::with_capacity(BACKUP_CODE_CHARS);
            while chars.len() < BACKUP_CODE_CHARS {
                for b in random_bytes::<32>() {
                    if b < 248 && chars.len() < BACKUP_CODE_CHARS {
                        chars.push(BACKUP_ALPHABET[(b % 31) as usize] as char);
                    }
                }
            }
            chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
        })
        .collect()
}

/// The stored digest of a backup code: SHA-256 over the owner and the
/// normalised code, so equal codes of two admins don't share a digest.
pub fn backup_code_digest(owner: &str, code: &str) -> [u8; 32] {
    let normalised = match classify(code) {
        Presented::Backup(c) => c,
        _ => code.to_string(),
    };
    sha256(format!("fluxbase-backup-code:{owner}:{normalised}").as_bytes())
}

const SEAL_VERSION: u8 = 2;
const NONCE_BYTES: usize = 24;

fn cipher(master_key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(master_key.into())
}

/// Encrypt and authenticate a secret for `owner` (XChaCha20-Poly1305, random
/// 192-bit nonce, the owner bound in as associated data so a sealed secret
/// copied onto another admin's row does not open).
pub fn seal(master_key: &[u8; 32], owner: &str, secret: &[u8]) -> Vec<u8> {
    let nonce = random_bytes::<NONCE_BYTES>();
    let ct = cipher(master_key)
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret, aad: owner.as_bytes() })
        .expect("encrypting a short secret cannot fail");
    let mut out = vec![SEAL_VERSION];
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Decrypt a sealed secret, refusing anything altered, sealed for another
/// owner, or sealed with another key.
pub fn open(master_key: &[u8; 32], owner: &str, sealed: &[u8]) -> FbResult<Vec<u8>> {
    let bad = || {
        FbError::new(Code::WrongState, "the stored 2FA secret cannot be decrypted")
            .with_hint("the key file may have changed; disable and set up 2FA again, or use a backup code")
    };
    if sealed.len() < 1 + NONCE_BYTES + 16 || sealed[0] != SEAL_VERSION {
        return Err(bad());
    }
    let (nonce, ct) = sealed[1..].split_at(NONCE_BYTES);
    cipher(master_key)
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: owner.as_bytes() })
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SEED: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: &[(u64, &str)] = &[
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ];

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        for (t, expected) in RFC_VECTORS {
            assert_eq!(code_at(RFC_SEED, 8, *t), *expected, "T={t}");
            // Our 6-digit codes are the last six digits.
            assert_eq!(code_at(RFC_SEED, 6, *t), expected[2..], "T={t}");
            assert_eq!(verify(RFC_SEED, &expected[2..], *t, None), Some((*t / 30) as i64), "T={t}");
        }
    }

    #[test]
    fn drift_of_one_step_is_accepted_two_is_not() {
        let now = 1_700_000_000u64;
        let step = (now / 30) as i64;
        for (offset, ok) in [(-60i64, false), (-30, true), (0, true), (30, true), (60, false)] {
            let code = code_at(RFC_SEED, 6, (now as i64 + offset) as u64);
            assert_eq!(verify(RFC_SEED, &code, now, None).is_some(), ok, "offset {offset}");
            if ok {
                assert_eq!(verify(RFC_SEED, &code, now, None), Some(step + offset / 30));
            }
        }
    }

    #[test]
    fn replay_is_refused() {
        let now = 1_700_000_000u64;
        let code = code_at(RFC_SEED, 6, now);
        let step = verify(RFC_SEED, &code, now, None).unwrap();
        assert_eq!(verify(RFC_SEED, &code, now, Some(step)), None);
        assert_eq!(verify(RFC_SEED, &code, now + 30, Some(step)), None);
        // An older step than the last accepted is refused too.
        let prev = code_at(RFC_SEED, 6, now - 30);
        assert_eq!(verify(RFC_SEED, &prev, now, Some(step)), None);
        let next = code_at(RFC_SEED, 6, now + 30);
        assert_eq!(verify(RFC_SEED, &next, now + 30, Some(step)), Some(step + 1));
    }

    #[test]
    fn malformed_codes_never_match() {
        for c in ["", "12345", "1234567", "abcdef", "' OR 1=1 --", "１２３４５６"] {
            assert_eq!(verify(RFC_SEED, c, 59, None), None, "{c:?}");
        }
        assert_eq!(classify(" 123 456 "), Presented::Totp("123456".into()));
        assert_eq!(classify("'; DROP TABLE x; --"), Presented::Malformed);
        assert_eq!(classify(&"1".repeat(100)), Presented::Malformed);
    }

    #[test]
    fn backup_codes_are_distinct_and_classified() {
        let codes = generate_backup_codes();
        assert_eq!(codes.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 14, "{c}");
            assert!(matches!(classify(c), Presented::Backup(_)), "{c}");
            assert!(matches!(classify(&c.to_uppercase().replace('-', " ")), Presented::Backup(_)));
            assert_eq!(backup_code_digest("u1", c), backup_code_digest("u1", &c.to_uppercase()));
            assert_ne!(backup_code_digest("u1", c), backup_code_digest("u2", c));
        }
        let mut d = codes.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 10);
    }

    #[test]
    fn otpauth_uri_has_the_secret_and_issuer() {
        let uri = otpauth_uri(RFC_SEED, "ada@example.com");
        assert!(uri.starts_with("otpauth://totp/Fluxbase:ada%40example.com?"), "{uri}");
        assert!(uri.contains(&format!("secret={}", secret_base32(RFC_SEED))), "{uri}");
        assert!(uri.contains("issuer=Fluxbase"), "{uri}");
        assert_eq!(secret_base32(RFC_SEED), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn seal_roundtrip_and_tamper_detection() {
        let key = [7u8; 32];
        let secret = generate_secret();
        let sealed = seal(&key, "owner-a", &secret);
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert_eq!(open(&key, "owner-a", &sealed).unwrap(), secret);
        assert!(open(&key, "owner-b", &sealed).is_err());
        assert!(open(&[8u8; 32], "owner-a", &sealed).is_err());
        let mut t = sealed.clone();
        t[20] ^= 1;
        assert!(open(&key, "owner-a", &t).is_err());
        assert!(open(&key, "owner-a", &[]).is_err());
        assert_ne!(seal(&key, "owner-a", &secret), sealed, "fresh nonce each time");
    }
}
