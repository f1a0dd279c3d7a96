//! One error type for every capability. Each variant of `Code` maps to one
//! SQLSTATE, so a client can tell "wrong password" from "not allowed" from
//! "bad argument" without parsing messages.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 22023 invalid_parameter_value: the caller passed something malformed.
    InvalidParameter,
    /// 22004 null_value_not_allowed.
    NullValue,
    /// 42501 insufficient_privilege: the caller may not do this.
    InsufficientPrivilege,
    /// 28P01 invalid_password.
    InvalidPassword,
    /// 28000 invalid_authorization_specification: bad/expired token or session.
    InvalidAuthorization,
    /// P0002 no_data_found: the thing named does not exist.
    NotFound,
    /// 23505 unique_violation: it exists already.
    AlreadyExists,
    /// 55000 object_not_in_prerequisite_state: not now (e.g. setup already done).
    WrongState,
    /// P0001 raise_exception: a business rule refused the call.
    Refused,
    /// 42601 syntax_error: a statement we were asked to run is not acceptable.
    SyntaxError,
    /// 42703 undefined_column.
    UndefinedColumn,
    /// 22P02 invalid_text_representation: a value does not fit its column's type.
    InvalidTextRepresentation,
    /// FBR01 (a class of our own, "FB"): a step-up action without a recent
    /// re-authentication (see `stepup`).
    ReauthRequired,
    /// 53400 configuration_limit_exceeded: a bound the extension keeps is
    /// reached (e.g. too many passkey sign-ins in progress).
    LimitExceeded,
}

impl Code {
    pub fn sqlstate(self) -> &'static str {
        match self {
            Code::InvalidParameter => "22023",
            Code::NullValue => "22004",
            Code::InsufficientPrivilege => "42501",
            Code::InvalidPassword => "28P01",
            Code::InvalidAuthorization => "28000",
            Code::NotFound => "P0002",
            Code::AlreadyExists => "23505",
            Code::WrongState => "55000",
            Code::Refused => "P0001",
            Code::SyntaxError => "42601",
            Code::UndefinedColumn => "42703",
            Code::InvalidTextRepresentation => "22P02",
            Code::ReauthRequired => "FBR01",
            Code::LimitExceeded => "53400",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FbError {
    pub code: Code,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

pub type FbResult<T> = Result<T, FbError>;

impl FbError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        FbError { code, message: message.into(), detail: None, hint: None }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidParameter, message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(Code::InsufficientPrivilege, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Code::Refused, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for FbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for FbError {}

/// Refuse absurdly long text arguments before doing any work with them.
pub fn check_len(what: &str, value: &str, max_chars: usize) -> FbResult<()> {
    if value.chars().count() > max_chars {
        return Err(FbError::invalid(format!("{what} is too long (at most {max_chars} characters)")));
    }
    Ok(())
}

/// Refuse empty or whitespace-only text where a value is required.
pub fn require_text<'a>(what: &str, value: Option<&'a str>, max_chars: usize) -> FbResult<&'a str> {
    let v = value.ok_or_else(|| FbError::new(Code::NullValue, format!("{what} is required")))?;
    if v.trim().is_empty() {
        return Err(FbError::invalid(format!("{what} must not be empty")));
    }
    check_len(what, v, max_chars)?;
    if v.contains('\0') {
        return Err(FbError::invalid(format!("{what} must not contain NUL characters")));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_text_refuses_null_empty_and_long() {
        assert_eq!(require_text("reason", None, 10).unwrap_err().code, Code::NullValue);
        assert_eq!(require_text("reason", Some("  "), 10).unwrap_err().code, Code::InvalidParameter);
        assert!(require_text("reason", Some("12345678901"), 10).unwrap_err().message.contains("too long"));
        assert_eq!(require_text("reason", Some("ok"), 10).unwrap(), "ok");
    }

    #[test]
    fn codes_are_sqlstates() {
        assert_eq!(Code::InsufficientPrivilege.sqlstate(), "42501");
        assert_eq!(Code::InvalidPassword.sqlstate(), "28P01");
    }
}
