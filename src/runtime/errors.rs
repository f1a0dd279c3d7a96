//! Turning `FbError` (plain Rust, from fluxbase_core) into a Postgres ERROR with
//! the right SQLSTATE, message, detail and hint.

use fluxbase_core::{Code, FbError};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as E;

fn pg_code(code: Code) -> E {
    match code {
        Code::InvalidParameter => E::ERRCODE_INVALID_PARAMETER_VALUE,
        Code::NullValue => E::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        Code::InsufficientPrivilege => E::ERRCODE_INSUFFICIENT_PRIVILEGE,
        Code::InvalidPassword => E::ERRCODE_INVALID_PASSWORD,
        Code::InvalidAuthorization => E::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        Code::NotFound => E::ERRCODE_NO_DATA_FOUND,
        Code::AlreadyExists => E::ERRCODE_UNIQUE_VIOLATION,
        Code::WrongState => E::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        Code::Refused => E::ERRCODE_RAISE_EXCEPTION,
        Code::SyntaxError => E::ERRCODE_SYNTAX_ERROR,
        Code::UndefinedColumn => E::ERRCODE_UNDEFINED_COLUMN,
        Code::InvalidTextRepresentation => E::ERRCODE_INVALID_TEXT_REPRESENTATION,
        // Raised with this carrier code, which custom_sqlstate turns into FBR01.
        Code::ReauthRequired => custom_sqlstate::CARRIER,
        Code::LimitExceeded => E::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
    }
}

/// Raise `e` as a Postgres ERROR. The current transaction is aborted, so
/// nothing the failed call wrote survives.
pub fn raise(e: FbError) -> ! {
    // A refused call is audited although this transaction's entries are not
    // (issue 17, item 10: see audit/refusals.rs, which registers the hook).
    if e.code == Code::InsufficientPrivilege {
        crate::runtime::hooks::refused(&e.message);
    }
    if e.code == Code::ReauthRequired {
        custom_sqlstate::arm(e.code.sqlstate());
    } else {
        custom_sqlstate::disarm();
    }
    let mut report = ErrorReport::new(pg_code(e.code), e.message, "fluxbase_admin");
    if let Some(d) = e.detail {
        report = report.set_detail(d);
    }
    if let Some(h) = e.hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// A required argument: SQL NULL is refused with 22004 naming it.
pub fn required<T>(what: &str, value: Option<T>) -> T {
    value.unwrap_or_else(|| raise(FbError::new(Code::NullValue, format!("{what} is required"))))
}

pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, FbError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e))
    }
}

impl<T> OrRaise<T> for Result<T, pgrx::spi::SpiError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| {
            ErrorReport::new(E::ERRCODE_INTERNAL_ERROR, format!("fluxbase_admin: SPI failure: {e}"), "fluxbase_admin")
                .report(PgLogLevel::ERROR);
            unreachable!()
        })
    }
}

/// SQLSTATEs of our own class ("FB…", e.g. FBR01), which pgrx's
/// `PgSqlErrorCode` (an enum of Postgres' codes) cannot hold.
///
/// How: the error is raised as usual (a Rust panic carrying an `ErrorReport`
/// with the carrier code, turned into a Postgres ERROR by pgrx at the function
/// boundary), and `arm` first puts a context callback on Postgres'
/// `error_context_stack`. Postgres' `errfinish` calls every context callback
/// of the error being raised, before the error leaves for the client or for an
/// enclosing PL/pgSQL handler; ours sets the error's code with `errcode()` —
/// the ordinary way to set it — when the code is still the carrier, then
/// disarms. So the client, `EXCEPTION WHEN SQLSTATE 'FBR01'` in PL/pgSQL and
/// the server log all see FBR01. Postgres resets `error_context_stack` where
/// the error is caught, which unlinks the callback again.
///
/// The callback node is static (never dangles) and is linked at most once.
pub mod custom_sqlstate {
    use std::cell::Cell;
    use std::ffi::{c_int, c_void};

    use pgrx::pg_sys;
    use pgrx::prelude::*;
    use pgrx::PgSqlErrorCode;

    /// The code pgrx raises first; 28000 (invalid authorization) is also what a
    /// client would see if the callback were ever bypassed.
    pub const CARRIER: PgSqlErrorCode = PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;

    // Postgres' own error API (elog.c); pgrx leaves errcode out of its bindings.
    // Neither raises: they only read or set a field of the error being built.
    extern "C-unwind" {
        fn errcode(sqlerrcode: c_int) -> c_int;
        fn geterrcode() -> c_int;
    }

    thread_local! {
        static ARMED: Cell<c_int> = const { Cell::new(0) };
    }

    static mut NODE: pg_sys::ErrorContextCallback = pg_sys::ErrorContextCallback {
        previous: std::ptr::null_mut(),
        callback: Some(set_code),
        arg: std::ptr::null_mut(),
    };

    /// Postgres' MAKE_SQLSTATE: five characters, six bits each.
    pub fn make_sqlstate(code: &str) -> c_int {
        let b = code.as_bytes();
        assert!(b.len() == 5, "a SQLSTATE has five characters");
        b.iter().enumerate().fold(0, |acc, (i, ch)| acc | ((((*ch as c_int) - ('0' as c_int)) & 0x3F) << (6 * i)))
    }

    /// Make the next ERROR raised with the carrier code come out as `sqlstate`.
    pub fn arm(sqlstate: &str) {
        ARMED.with(|a| a.set(make_sqlstate(sqlstate)));
        // SAFETY: single-threaded backend; NODE is static. It is linked only
        // when not already in the chain (a cycle would loop errfinish forever).
        unsafe {
            let node = std::ptr::addr_of_mut!(NODE);
            let mut p = pg_sys::error_context_stack;
            while !p.is_null() {
                if p == node {
                    return;
                }
                p = (*p).previous;
            }
            (*node).previous = pg_sys::error_context_stack;
            pg_sys::error_context_stack = node;
        }
    }

    /// Make sure no earlier `arm` (whose error never reached Postgres) can
    /// change the code of an error raised now.
    pub fn disarm() {
        ARMED.with(|a| a.set(0));
    }

    #[pg_guard]
    unsafe extern "C-unwind" fn set_code(_arg: *mut c_void) {
        // (only an error with the carrier code disarms: a NOTICE on the way does not)
        if geterrcode() == CARRIER as c_int {
            let wanted = ARMED.with(|a| a.replace(0));
            if wanted != 0 {
                errcode(wanted);
            }
        }
    }
}
