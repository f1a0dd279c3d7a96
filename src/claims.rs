//! `auth.uid()`, `auth.role()`, `auth.email()`, `auth.jwt()`: the Supabase /
//! PostgREST claim helpers, cheap enough to call once per row in an RLS policy.
//!
//! They read the GUC `request.jwt.claims` (JSON) with `GetConfigOption` (no
//! SPI, no query), falling back to the legacy one-GUC-per-claim
//! `request.jwt.claim.sub` / `.role` / `.email`; '' counts as unset. The parsed
//! claims are cached per backend and parsed once per change of the setting.
//!
//! The lookup itself (a binary search over every GUC name) would dominate the
//! per-row cost, so `_PG_init` defines `request.jwt.claims` as a real string
//! GUC of this library (taking over PostgREST's placeholder, value included)
//! with an assign hook that bumps a generation counter: the hot path compares
//! one integer and returns the cached value. The only visible
//! difference: `current_setting('request.jwt.claims')` without `missing_ok`
//! answers '' instead of an error while unset. When another library already
//! defined it, the helpers fall back to GetConfigOption.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fluxbase_core::claims::Claims;
use fluxbase_core::FbError;
use fluxbase_core::Code;
use pgrx::datum::{JsonB, Uuid};
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::errors::raise;

/// The current value of a GUC, or None when it does not exist or is ''.
/// Callback gets the bytes without copying.
fn with_guc<R>(name: &CStr, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    let p = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if p.is_null() {
        return f(None);
    }
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        f(None)
    } else {
        f(Some(bytes))
    }
}

fn guc_string(name: &CStr) -> Option<String> {
    with_guc(name, |b| b.map(|b| String::from_utf8_lossy(b).into_owned()))
}

/// The slot Postgres keeps our `request.jwt.claims` value in (when OWN_GUC).
static mut CLAIMS_VAR: *mut c_char = std::ptr::null_mut();
static OWN_GUC: AtomicBool = AtomicBool::new(false);
/// Bumped by Postgres (assign hook) on every change of our `request.jwt.claims`:
/// SET, set_config, RESET, and the restores at function exit, rollback and
/// subtransaction abort. The cache is valid while the generation is unchanged,
/// so a row costs no string work at all.
static GENERATION: AtomicU64 = AtomicU64::new(1);

#[pg_guard]
unsafe extern "C-unwind" fn claims_assigned(_newval: *const c_char, _extra: *mut std::ffi::c_void) {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Refuses any change of `request.jwt.*` while confined (src/confine.rs):
/// code run by a browsed or impersonated statement cannot forge claims.
/// (Restores at rollback and function exit do not call check hooks.)
#[pg_guard]
unsafe extern "C-unwind" fn claims_check(
    _newval: *mut *mut c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    if crate::confine::claims_locked() {
        unsafe {
            pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as i32);
            pg_sys::GUC_check_errmsg_string =
                pg_sys::pstrdup(c"request.jwt.* cannot be changed by a browsed or impersonated statement".as_ptr());
        }
        return false;
    }
    true
}

static mut LEGACY_VARS: [*mut c_char; 3] = [std::ptr::null_mut(); 3];

/// Called once from `_PG_init`: define `request.jwt.claims` unless another
/// library already did (a placeholder left by an earlier SET is fine: Postgres
/// moves its value over). The legacy per-claim settings are defined too, so
/// that their changes pass the same check.
pub fn init() {
    let legacy = [c"request.jwt.claim.sub", c"request.jwt.claim.role", c"request.jwt.claim.email"];
    for (i, name) in legacy.iter().enumerate() {
        unsafe {
            let flags = pg_sys::GetConfigOptionFlags(name.as_ptr(), true);
            if flags != 0 && (flags as u32 & pg_sys::GUC_CUSTOM_PLACEHOLDER) == 0 {
                continue;
            }
            pg_sys::DefineCustomStringVariable(
                name.as_ptr(),
                c"A claim of the current request (legacy PostgREST setting)".as_ptr(),
                std::ptr::null(),
                std::ptr::addr_of_mut!(LEGACY_VARS[i]),
                c"".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                (pg_sys::GUC_NO_SHOW_ALL | pg_sys::GUC_NOT_IN_SAMPLE) as i32,
                Some(claims_check),
                None,
                None,
            );
        }
    }
    unsafe {
        let flags = pg_sys::GetConfigOptionFlags(c"request.jwt.claims".as_ptr(), true);
        if flags != 0 && (flags as u32 & pg_sys::GUC_CUSTOM_PLACEHOLDER) == 0 {
            return;
        }
        pg_sys::DefineCustomStringVariable(
            c"request.jwt.claims".as_ptr(),
            c"The claims of the current request's JWT, as JSON (PostgREST convention; read by auth.uid() & co.)".as_ptr(),
            std::ptr::null(),
            std::ptr::addr_of_mut!(CLAIMS_VAR),
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            (pg_sys::GUC_NO_SHOW_ALL | pg_sys::GUC_NOT_IN_SAMPLE) as i32,
            Some(claims_check),
            Some(claims_assigned),
            None,
        );
        OWN_GUC.store(true, Ordering::Relaxed);
    }
}

/// The raw text of `request.jwt.claims`, None when unset or ''.
fn with_raw_claims<R>(f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    if OWN_GUC.load(Ordering::Relaxed) {
        let p = unsafe { *std::ptr::addr_of!(CLAIMS_VAR) };
        if p.is_null() {
            return f(None);
        }
        let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
        return f(if bytes.is_empty() { None } else { Some(bytes) });
    }
    with_guc(c"request.jwt.claims", f)
}

struct Cache {
    /// The generation the claims were read at (0: keyed by `raw` instead).
    generation: u64,
    raw: Vec<u8>,
    claims: Claims,
}

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// Run `f` on the parsed `request.jwt.claims` (EMPTY when unset).
fn with_claims<R>(f: impl FnOnce(&Claims) -> R) -> R {
    if OWN_GUC.load(Ordering::Relaxed) {
        let generation = GENERATION.load(Ordering::Relaxed);
        return CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().map(|k| k.generation) != Some(generation) {
                let claims = with_raw_claims(|raw| raw.map(|r| Claims::parse(&String::from_utf8_lossy(r))));
                *c = Some(Cache { generation, raw: Vec::new(), claims: claims.unwrap_or(Claims::EMPTY) });
            }
            f(&c.as_ref().expect("filled above").claims)
        });
    }
    with_raw_claims(|raw| {
        let Some(raw) = raw else { return f(&Claims::EMPTY) };
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let fresh = match c.as_ref() {
                Some(cached) => cached.generation != 0 || cached.raw.as_slice() != raw,
                None => true,
            };
            if fresh {
                let text = String::from_utf8_lossy(raw);
                *c = Some(Cache { generation: 0, raw: raw.to_vec(), claims: Claims::parse(&text) });
            }
            f(&c.as_ref().expect("filled above").claims)
        })
    })
}

fn sub_to_uuid(sub: &Result<[u8; 16], String>) -> Uuid {
    match sub {
        Ok(b) => Uuid::from_bytes(*b),
        Err(text) => raise(FbError::new(
            Code::InvalidTextRepresentation,
            format!(
                "the sub claim is not a UUID: '{}'",
                text.chars().filter(|c| !c.is_control()).take(60).collect::<String>()
            ),
        )),
    }
}

/// The user id (`sub` claim) of the current request, or NULL.
#[pg_extern(schema = "auth", stable, parallel_safe)]
fn uid() -> Option<Uuid> {
    if let Some(u) = with_claims(|c| c.sub.as_ref().map(sub_to_uuid)) {
        return Some(u);
    }
    with_guc(c"request.jwt.claim.sub", |b| {
        b.map(|b| {
            let text = String::from_utf8_lossy(b);
            sub_to_uuid(&fluxbase_core::claims::parse_uuid(&text).ok_or_else(|| text.into_owned()))
        })
    })
}

/// The `role` claim of the current request, or NULL.
#[pg_extern(schema = "auth", stable, parallel_safe)]
fn role() -> Option<String> {
    with_claims(|c| c.role.clone()).or_else(|| guc_string(c"request.jwt.claim.role"))
}

/// The `email` claim of the current request, or NULL.
#[pg_extern(schema = "auth", stable, parallel_safe)]
fn email() -> Option<String> {
    with_claims(|c| c.email.clone()).or_else(|| guc_string(c"request.jwt.claim.email"))
}

/// All claims of the current request as jsonb, or NULL. Built from the legacy
/// per-claim settings when only those are set.
#[pg_extern(schema = "auth", stable, parallel_safe)]
fn jwt() -> Option<JsonB> {
    if let Some(j) = with_claims(|c| c.json.clone()) {
        return Some(JsonB(j));
    }
    let mut m = serde_json::Map::new();
    for (k, g) in [("sub", c"request.jwt.claim.sub"), ("role", c"request.jwt.claim.role"), ("email", c"request.jwt.claim.email")] {
        if let Some(v) = guc_string(g) {
            m.insert(k.to_string(), Value::String(v));
        }
    }
    if m.is_empty() {
        None
    } else {
        Some(JsonB(json!(m)))
    }
}
