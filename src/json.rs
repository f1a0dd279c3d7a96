//! A jsonb argument that cannot take a backend down.
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

use crate::errors::raise;

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
