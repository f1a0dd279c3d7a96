//! A jsonb argument that cannot take a backend down, and jsonb built from a
//! serde_json value without a round trip through text (at the end).
//!
//! pgrx's own `JsonB` turns a datum into serde_json by printing it and parsing
//! the text, and *panics* when serde_json refuses it — which it does for JSON
//! nested more than 128 levels deep, something Postgres accepts happily. A
//! caller could then turn any jsonb argument into an internal error (XX000).
//! `JsonArg` does the same conversion but keeps the failure, so the function
//! can answer with a clear 22023 instead.

use fluxbase_core::FbError;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::datum::JsonB;
use pgrx::direct_function_call;
use pgrx::prelude::*;
use pgrx::{pg_sys, FromDatum, IntoDatum};
use serde_json::Value;

use crate::runtime::errors::raise;

pub struct JsonArg(Result<Value, String>);

impl JsonArg {
    /// The JSON value, or a clear error naming the argument.
    pub fn into_value(self, what: &str) -> Value {
        match self.0 {
            Ok(v) => v,
            Err(why) => raise(
                FbError::invalid(format!("{what} cannot be used: {why}"))
                    .with_hint("JSON arguments may be nested at most 128 levels deep"),
            ),
        }
    }
}

/// The JSON value of an optional argument; SQL NULL becomes JSON null.
pub fn value_of(arg: Option<JsonArg>, what: &str) -> Value {
    arg.map(|a| a.into_value(what)).unwrap_or(Value::Null)
}

impl FromDatum for JsonArg {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        // jsonb_out returns a palloc'd C string (not a text varlena).
        let cstr = direct_function_call::<&core::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)])?;
        let text = cstr.to_string_lossy().into_owned();
        pg_sys::pfree(cstr.as_ptr() as *mut core::ffi::c_void);
        Some(JsonArg(serde_json::from_str(&text).map_err(|e| {
            if e.to_string().contains("recursion limit") {
                "it is nested too deeply".to_string()
            } else {
                format!("it is not valid JSON ({e})")
            }
        })))
    }
}

impl IntoDatum for JsonArg {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        self.0.ok().and_then(|v| JsonB(v).into_datum())
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for JsonArg {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum().unwrap_or_else(|| panic!("argument {index} must not be null")) }
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> pgrx::nullable::Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

impl_sql_translatable!(JsonArg, arg_only = "jsonb");

// ---------------------------------------------------------------------------
// Building a jsonb datum without printing and parsing text.

/// The jsonb datum for `v`, built with Postgres' own jsonb builder
/// (pushJsonbValue: keys sorted and de-duplicated as jsonb_in does) instead
/// of jsonb_in on its text: the audit append stores every entry's details
/// as jsonb, and parsing them again was a noticeable part of each append.
/// None for what the builder is not given here — a top-level scalar,
/// numbers that are not 64-bit integers, strings with NUL — which the caller
/// then parses as text.
///
/// # Safety
/// Calls into the server; the datum lives in the current memory context.
pub unsafe fn jsonb_datum(v: &Value) -> Option<pg_sys::Datum> {
    if !(v.is_object() || v.is_array()) {
        return None;
    }
    let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
    let root = push(&mut state, v, pg_sys::JsonbIteratorToken::WJB_ELEM)?;
    Some(pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(root)))
}

/// Push `v` as `token` (WJB_VALUE in an object, WJB_ELEM in an array);
/// for an object or array, the finished container.
unsafe fn push(state: &mut *mut pg_sys::JsonbParseState, v: &Value, token: pg_sys::JsonbIteratorToken::Type) -> Option<*mut pg_sys::JsonbValue> {
    use pg_sys::JsonbIteratorToken::*;
    let null = std::ptr::null_mut();
    Some(match v {
        Value::Object(m) => {
            pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, null);
            for (k, x) in m {
                let mut key = string(k)?;
                pg_sys::pushJsonbValue(state, WJB_KEY, &mut key);
                push(state, x, WJB_VALUE)?;
            }
            pg_sys::pushJsonbValue(state, WJB_END_OBJECT, null)
        }
        Value::Array(a) => {
            pg_sys::pushJsonbValue(state, WJB_BEGIN_ARRAY, null);
            for x in a {
                push(state, x, WJB_ELEM)?;
            }
            pg_sys::pushJsonbValue(state, WJB_END_ARRAY, null)
        }
        scalar => {
            // (the builder copies the JsonbValue; a string's bytes stay in
            // `v`, which outlives JsonbValueToJsonb)
            let mut s: pg_sys::JsonbValue = std::mem::zeroed();
            match scalar {
                Value::Null => s.type_ = pg_sys::jbvType::jbvNull,
                Value::Bool(b) => {
                    s.type_ = pg_sys::jbvType::jbvBool;
                    s.val.boolean = *b;
                }
                Value::Number(n) => {
                    s.type_ = pg_sys::jbvType::jbvNumeric;
                    s.val.numeric = pg_sys::int64_to_numeric(n.as_i64()?);
                }
                Value::String(text) => s = string(text)?,
                _ => unreachable!("containers are handled above"),
            }
            pg_sys::pushJsonbValue(state, token, &mut s)
        }
    })
}

fn string(text: &str) -> Option<pg_sys::JsonbValue> {
    if text.contains('\0') || text.len() > pg_sys::JENTRY_OFFLENMASK as usize {
        return None;
    }
    // SAFETY: a zeroed JsonbValue is a valid jbvNull, then made a string
    let mut s: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    s.type_ = pg_sys::jbvType::jbvString;
    s.val.string = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 { len: text.len() as i32, val: text.as_ptr() as *mut std::ffi::c_char };
    Some(s)
}
