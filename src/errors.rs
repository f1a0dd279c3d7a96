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
    }
}

/// Raise `e` as a Postgres ERROR. The current transaction is aborted, so
/// nothing the failed call wrote survives.
pub fn raise(e: FbError) -> ! {
    // A refused call is audited although this transaction's entries are not
    // (issue 17, item 10: see refusals.rs).
    if e.code == Code::InsufficientPrivilege {
        crate::refusals::note(&e.message);
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
