//! Admin passwords: argon2id with at least OWASP's minimum (m = 19 MiB, t = 2,
//! p = 1), a policy that says *why* a password is refused, and a constant-ish
//! time path for unknown accounts so "no such email" and "wrong password" cost
//! the same.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

use crate::error::{Code, FbError, FbResult};

/// The parameters new hashes are made with. A stored hash made with anything
/// else is re-hashed at the next successful login.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Longest password we accept. argon2 takes any length, but a megabyte-long
/// "password" is an attack on our CPU, not a credential.
pub const MAX_PASSWORD_CHARS: usize = 1024;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("static argon2 params are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash_password(password: &str) -> FbResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| FbError::new(Code::Refused, format!("could not hash password: {e}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// True when the stored hash was made with other parameters than ours.
    pub needs_rehash: bool,
}

/// Check a password against a stored PHC string. A malformed stored hash never
/// matches (and is reported as needing a rehash, which only happens on success).
pub fn verify_password(stored: &str, password: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        // Spend the same time as a real check, so a broken row is not a timing oracle.
        dummy_verify(password);
        return Verified { ok: false, needs_rehash: true };
    };
    // Verify with the parameters recorded in the hash itself (argon2 reads them).
    let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
    let needs_rehash = parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed)
            .map(|p| p.m_cost() != MEMORY_KIB || p.t_cost() != ITERATIONS || p.p_cost() != PARALLELISM)
            .unwrap_or(true);
    Verified { ok, needs_rehash }
}

/// Burn the time of one verification, for logins of unknown accounts.
pub fn dummy_verify(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash_password("fluxbase-dummy-password-for-timing").expect("hashing works"));
    if let Ok(parsed) = PasswordHash::new(stored) {
        let _ = hasher().verify_password(password.as_bytes(), &parsed);
    }
}

/// The few passwords every cracker tries first. Checked after lower-casing and
/// stripping digits and symbols, so "Password123!" is caught too.
const COMMON: &[&str] = &[
    "password", "passw", "passwd", "qwerty", "qwertyuiop", "asdfgh", "asdfghjkl", "zxcvbnm", "letmein", "welcome",
    "admin", "administrator", "iloveyou", "monkey", "dragon", "football", "baseball", "sunshine", "princess",
    "master", "login", "abc", "abcdef", "secret", "changeme", "trustno", "superman", "fluxbase", "supabase",
    "postgres", "postgresql", "root", "default", "test", "testing", "qazwsx", "starwars", "whatever",
];

/// Who the password belongs to: it must not simply repeat their name or email.
#[derive(Default)]
pub struct Owner<'a> {
    pub email: Option<&'a str>,
    pub full_name: Option<&'a str>,
}

/// Refuse weak passwords with a message that says why.
pub fn check_policy(password: Option<&str>, min_length: usize, owner: &Owner) -> FbResult<()> {
    let password = password.ok_or_else(|| FbError::new(Code::NullValue, "password is required"))?;
    let weak = |why: String| FbError::new(Code::InvalidParameter, format!("password is too weak: {why}"));
    let n = password.chars().count();
    if n > MAX_PASSWORD_CHARS {
        return Err(FbError::invalid(format!("password is too long (at most {MAX_PASSWORD_CHARS} characters)")));
    }
    if password.contains('\0') {
        return Err(FbError::invalid("password must not contain NUL characters"));
    }
    if n < min_length {
        return Err(weak(format!("it has {n} characters, at least {min_length} are required")));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err(weak("it repeats too few different characters (use at least 5 different ones)".into()));
    }
    if is_sequence(password) {
        return Err(weak("it is a simple sequence of characters".into()));
    }
    let core: String = password.to_lowercase().chars().filter(|c| c.is_alphabetic()).collect();
    if COMMON.iter().any(|w| core == *w) {
        return Err(weak("it is one of the most commonly used passwords (or a variation of one)".into()));
    }
    let lower = password.to_lowercase();
    if let Some(email) = owner.email {
        let local = email.split('@').next().unwrap_or("").to_lowercase();
        if local.chars().count() >= 4 && lower.contains(&local) {
            return Err(weak("it contains your email address".into()));
        }
    }
    if let Some(name) = owner.full_name {
        for part in name.split_whitespace() {
            let part = part.to_lowercase();
            if part.chars().count() >= 4 && lower.contains(&part) {
                return Err(weak("it contains your name".into()));
            }
        }
    }
    Ok(())
}

/// "abcdefghijkl", "123456789012", "987654321098": each step the same +1/-1.
fn is_sequence(p: &str) -> bool {
    let cs: Vec<u32> = p.chars().map(|c| c as u32).collect();
    if cs.len() < 3 {
        return false;
    }
    let up = cs.windows(2).all(|w| w[1] == w[0] + 1 || (w[0] == '9' as u32 && w[1] == '0' as u32));
    let down = cs.windows(2).all(|w| w[0] == w[1] + 1 || (w[0] == '0' as u32 && w[1] == '9' as u32));
    up || down
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify_roundtrip() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let v = verify_password(&h, "correct horse battery staple");
        assert_eq!(v, Verified { ok: true, needs_rehash: false });
        assert!(!verify_password(&h, "correct horse battery stapl").ok);
    }

    #[test]
    fn weaker_hash_is_flagged_for_rehash() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 1, 1, None).unwrap());
        let salt = SaltString::generate(&mut OsRng);
        let h = weak.hash_password(b"some long passphrase", &salt).unwrap().to_string();
        assert_eq!(verify_password(&h, "some long passphrase"), Verified { ok: true, needs_rehash: true });
    }

    #[test]
    fn garbage_hash_never_matches() {
        assert!(!verify_password("not a hash", "anything").ok);
        assert!(!verify_password("", "").ok);
    }

    #[test]
    fn policy_says_why() {
        let o = Owner { email: Some("adalove@example.com"), full_name: Some("Ada Lovelace") };
        let msg = |p: &str| check_policy(Some(p), 12, &o).unwrap_err().message;
        assert!(msg("short").contains("at least 12"));
        assert!(msg("aaaaaaaaaaaaaaaa").contains("too few different"));
        assert!(msg("abcdefghijklmnop").contains("sequence"));
        assert!(msg("Password12345!!").contains("commonly used"));
        assert!(msg("my-lovelace-secret-9").contains("your name"));
        assert!(msg("xx-AdaLove-9876").contains("email"));
        assert!(check_policy(Some(&"x1".repeat(600)), 12, &o).unwrap_err().message.contains("too long"));
        assert_eq!(check_policy(None, 12, &o).unwrap_err().code, Code::NullValue);
        check_policy(Some("Tr0ub4dor&3-horse-staple"), 12, &o).unwrap();
    }
}
