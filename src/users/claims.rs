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
//!
//! Since 0.3.0 `auth.uid()`, `auth.role()`, `auth.email()` are hand-written V1
//! functions (`uid_fast` & co., below) that return a Datum cached per
//! generation: a row costs about what a constant does (issue 22). The 0.2.0
//! `#[pg_extern]` entries stay for the archived install scripts.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fluxbase_core::claims::Claims;
use fluxbase_core::FbError;
use fluxbase_core::Code;
use pgrx::datum::{JsonB, Uuid};
use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::runtime::errors::raise;

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

/// Refuses any change of `request.jwt.*` while confined (src/runtime/confine.rs):
/// code run by a browsed or impersonated statement cannot forge claims.
/// (Restores at rollback and function exit do not call check hooks.)
#[pg_guard]
unsafe extern "C-unwind" fn claims_check(
    _newval: *mut *mut c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    if crate::runtime::confine::claims_locked() {
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

/// The user id of the current request (`sub` claim, else the legacy GUC), or
/// None; raises 22P02 when the claim is not a UUID.
fn uid_value() -> Option<Uuid> {
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

fn role_value() -> Option<String> {
    with_claims(|c| c.role.clone()).or_else(|| guc_string(c"request.jwt.claim.role"))
}

fn email_value() -> Option<String> {
    with_claims(|c| c.email.clone()).or_else(|| guc_string(c"request.jwt.claim.email"))
}

// The 0.1.0/0.2.0 entry points (`uid_wrapper`, `role_wrapper`, `email_wrapper`):
// archived install scripts create auth.uid() & co. with these symbols, so they
// stay (docs/RELEASING.md); 0.3.0 points the SQL functions at the `*_fast`
// entries below instead (sql = false: no SQL of their own).

/// The user id (`sub` claim) of the current request, or NULL.
#[pg_extern(schema = "auth", stable, parallel_safe, sql = false)]
fn uid() -> Option<Uuid> {
    uid_value()
}

/// The `role` claim of the current request, or NULL.
#[pg_extern(schema = "auth", stable, parallel_safe, sql = false)]
fn role() -> Option<String> {
    role_value()
}

/// The `email` claim of the current request, or NULL.
#[pg_extern(schema = "auth", stable, parallel_safe, sql = false)]
fn email() -> Option<String> {
    email_value()
}

// ---------------------------------------------------------------------------
// The per-row path (issue 22): hand-written V1 functions returning a cached
// Datum.
//
// What pgrx's generic `#[pg_extern]` wrapper costs per call, for a function
// whose answer changes only when `request.jwt.claims` does: the thread-local
// cache's RefCell, cloning the claim out of it, and boxing the result (a
// palloc of 16 bytes for a uuid, of a varlena for text) -- every row. Here a
// row costs two loads and a compare: the value of each helper is kept, as a
// ready Datum, together with the generation of `request.jwt.claims` it was
// computed at; while the generation is unchanged, the Datum is returned as is.
//
// The Datum points into memory of our own (TopMemoryContext), not the
// caller's: a by-reference result only has to stay valid as long as the
// caller's per-tuple memory, and ours lives longer. When the claims change,
// the new value gets new memory and the old one is kept until the end of the
// transaction (a Datum handed out earlier in the same statement may still be
// referenced, e.g. `auth.uid() = (SELECT ... set_config(...) ... auth.uid())`),
// never overwritten in place.
//
// Only a value taken from the claims JSON is cached: the legacy
// `request.jwt.claim.*` GUCs and the case where another library owns
// `request.jwt.claims` (no assign hook of ours, so no generation) go through
// the slow path on every call, as before. So does an invalid `sub`, which
// raises 22P02 on every call.
//
// LEAKPROOF: not declared. For a zero-argument function it would be honest
// (it reveals nothing about arguments; its one error, 22P02 on a `sub` that is
// not a UUID, depends on the session's own setting, never on a row), but it
// buys nothing: Postgres treats a non-leakproof function as leaky only when
// its arguments contain a column reference (contain_leaked_vars), so a user
// qual `user_id = auth.uid()` is already pushed below RLS/security-barrier
// quals (uuid_eq is leakproof); tests/test_claims.py pins that with an
// index scan under a leaky policy. LEAKPROOF would also make every later
// CREATE OR REPLACE of these functions superuser-only.
// ---------------------------------------------------------------------------

/// A helper's cached result: valid while `generation` equals GENERATION
/// (which starts at 1, so the initial 0 never is). `datum` is a pointer into
/// TopMemoryContext.
#[derive(Clone, Copy)]
struct Hot {
    generation: u64,
    datum: usize,
}

const UID: usize = 0;
const ROLE: usize = 1;
const EMAIL: usize = 2;

/// Backends are single-threaded; only the entries below and the slow path
/// they call touch these (never reentrantly: nothing in between runs SQL).
static mut HOT: [Hot; 3] = [Hot { generation: 0, datum: 0 }; 3];
/// Memory of values replaced during the current transaction, freed at its end.
static mut RETIRED: Vec<usize> = Vec::new();

/// The hot path: the cached Datum when still valid. Two loads and a compare;
/// nothing here can panic or raise.
#[inline(always)]
unsafe fn cached(slot: usize) -> Option<pg_sys::Datum> {
    let h = unsafe { *std::ptr::addr_of!(HOT).cast::<Hot>().add(slot) };
    if h.generation == GENERATION.load(Ordering::Relaxed) {
        Some(pg_sys::Datum::from(h.datum))
    } else {
        None
    }
}

/// Keep `bytes` (a complete Datum image) as `slot`'s value for `generation`
/// and return it as a Datum. When this library does not own the GUC there is
/// no generation: the caller's memory context gets a copy instead.
unsafe fn publish(slot: usize, generation: u64, bytes: &[u8]) -> pg_sys::Datum {
    unsafe {
        if !OWN_GUC.load(Ordering::Relaxed) {
            let p = pg_sys::palloc(bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len());
            return pg_sys::Datum::from(p);
        }
        let p = pg_sys::MemoryContextAlloc(pg_sys::TopMemoryContext, bytes.len());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len());
        let h = &mut *std::ptr::addr_of_mut!(HOT).cast::<Hot>().add(slot);
        if h.datum != 0 {
            (*std::ptr::addr_of_mut!(RETIRED)).push(h.datum);
        }
        *h = Hot { generation, datum: p as usize };
        pg_sys::Datum::from(p)
    }
}

/// Free the values replaced during the transaction that ends (called by the
/// extension's one transaction callback, `_PG_init`'s `on_xact_event`).
pub fn on_xact_event(event: pg_sys::XactEvent::Type) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE) {
        for p in unsafe { (*std::ptr::addr_of_mut!(RETIRED)).drain(..) } {
            unsafe { pg_sys::pfree(p as *mut std::ffi::c_void) };
        }
    }
}

/// A text Datum image: 4-byte varlena header + the bytes.
fn text_image(s: &str) -> Vec<u8> {
    let len = pg_sys::VARHDRSZ + s.len();
    let mut v = vec![0u8; len];
    let header: u32 = if cfg!(target_endian = "little") { (len as u32) << 2 } else { len as u32 & 0x3FFF_FFFF };
    v[..4].copy_from_slice(&header.to_ne_bytes());
    v[4..].copy_from_slice(s.as_bytes());
    v
}

unsafe fn set_null(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { (*fcinfo).isnull = true };
    pg_sys::Datum::from(0usize)
}

/// The slow path of auth.uid(): recompute, cache when the value comes from the
/// claims JSON, raise 22P02 on a `sub` that is not a UUID.
#[inline(never)]
unsafe fn uid_slow(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let generation = GENERATION.load(Ordering::Relaxed);
    match with_claims(|c| c.sub.clone()) {
        Some(sub) => {
            let bytes = *sub_to_uuid(&sub).as_bytes();
            unsafe { publish(UID, generation, &bytes) }
        }
        None => match uid_value() {
            Some(u) => u.into_datum().unwrap_or(pg_sys::Datum::from(0usize)),
            None => unsafe { set_null(fcinfo) },
        },
    }
}

/// The slow path of auth.role() / auth.email().
#[inline(never)]
unsafe fn text_slow(
    fcinfo: pg_sys::FunctionCallInfo,
    slot: usize,
    claim: fn(&Claims) -> Option<String>,
    legacy: &CStr,
) -> pg_sys::Datum {
    let generation = GENERATION.load(Ordering::Relaxed);
    if let Some(v) = with_claims(claim) {
        return unsafe { publish(slot, generation, &text_image(&v)) };
    }
    match guc_string(legacy) {
        Some(v) => v.into_datum().unwrap_or(pg_sys::Datum::from(0usize)),
        None => unsafe { set_null(fcinfo) },
    }
}

#[inline(never)]
unsafe fn role_slow(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { text_slow(fcinfo, ROLE, |c| c.role.clone(), c"request.jwt.claim.role") }
}

#[inline(never)]
unsafe fn email_slow(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { text_slow(fcinfo, EMAIL, |c| c.email.clone(), c"request.jwt.claim.email") }
}

/// A V1 function `$name` with its `pg_finfo_$name` record: the cached Datum of
/// `$slot` while valid (nothing on that path can panic or raise), else
/// `$slow(fcinfo)`.
macro_rules! fast_entry {
    ($(#[$doc:meta])* $name:ident, $finfo:ident, $slot:expr, $slow:path) => {
        #[no_mangle]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1_API: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1_API
        }

        $(#[$doc])*
        #[no_mangle]
        #[pg_guard]
        pub unsafe extern "C-unwind" fn $name(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            match unsafe { cached($slot) } {
                Some(d) => d,
                None => unsafe { $slow(fcinfo) },
            }
        }
    };
}

fast_entry!(
    /// auth.uid() since 0.3.0: the user id (`sub` claim) of the current request, or NULL.
    uid_fast, pg_finfo_uid_fast, UID, uid_slow
);
fast_entry!(
    /// auth.role() since 0.3.0: the `role` claim of the current request, or NULL.
    role_fast, pg_finfo_role_fast, ROLE, role_slow
);
fast_entry!(
    /// auth.email() since 0.3.0: the `email` claim of the current request, or NULL.
    email_fast, pg_finfo_email_fast, EMAIL, email_slow
);

// The SQL of the fast entries (the same in sql/fluxbase_admin--0.2.0--0.3.0.sql).
extension_sql!(
    r#"
CREATE FUNCTION auth."uid"() RETURNS uuid STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'uid_fast';
CREATE FUNCTION auth."role"() RETURNS text STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'role_fast';
CREATE FUNCTION auth."email"() RETURNS text STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'email_fast';
"#,
    name = "claims_fast_functions",
    requires = ["accounts_schema"]
);

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

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn claims(doc: &str) {
        Spi::run_with_args("SELECT set_config('request.jwt.claims', $1, true)", &[doc.into()]).unwrap();
    }

    #[pg_test]
    fn fast_entries_follow_the_claims() {
        claims(r#"{"sub":"00000000-0000-4000-8000-000000000001","role":"r1","email":"a@x.io"}"#);
        for _ in 0..2 {
            // the second round is served from the cache
            let row = Spi::get_two::<String, String>("SELECT auth.uid()::text, auth.role() || '/' || auth.email()").unwrap();
            assert_eq!(row, (Some("00000000-0000-4000-8000-000000000001".into()), Some("r1/a@x.io".into())));
        }
        claims(r#"{"sub":"00000000-0000-4000-8000-000000000002"}"#);
        let row = Spi::get_two::<String, String>("SELECT auth.uid()::text, auth.role()").unwrap();
        assert_eq!(row, (Some("00000000-0000-4000-8000-000000000002".into()), None));
        claims("");
        assert_eq!(Spi::get_one::<pgrx::datum::Uuid>("SELECT auth.uid()").unwrap(), None);
        let src = Spi::get_one::<String>("SELECT string_agg(prosrc, ',' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'auth'::regnamespace AND proname IN ('uid', 'role', 'email')").unwrap();
        assert_eq!(src.as_deref(), Some("email_fast,role_fast,uid_fast"));
    }

    #[pg_test(error = "the sub claim is not a UUID: 'x'")]
    fn fast_uid_refuses_a_sub_that_is_not_a_uuid() {
        claims(r#"{"sub":"x"}"#);
        Spi::get_one::<pgrx::datum::Uuid>("SELECT auth.uid()").unwrap();
    }
}
