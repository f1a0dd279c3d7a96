//! Rendering stored values as JSON without running anybody's code (issue 28,
//! item 2).
//!
//! The audit reader is SECURITY DEFINER (it runs as the extension's owner, a
//! superuser). PostgreSQL's `row_to_json` / `to_json` call a user-defined
//! `CAST (usertype AS json)` for a column whose type has one, so a table owner
//! who defined such a cast on an enum of its own ran its function as superuser
//! the moment anyone opened the Audit page. Here each value is rendered the way
//! `row_to_json` renders it (numbers, booleans, json, ISO dates and
//! timestamps, arrays, nested rows) but **no cast is ever looked up**: every
//! other value is its type's output function's text. Output functions of the
//! built-in types are PostgreSQL's own; a type whose output function is not
//! built in (an extension's C type: only a superuser can create a base type)
//! is written as the type's owner inside the restricted security context
//! (`as_owner_confined`), never as the reader's superuser.

use pgrx::pg_sys::{self, Datum, Oid};
use serde_json::Value;

/// Nested rows and arrays deeper than this are written as text.
const MAX_DEPTH: u32 = 32;

/// `value` (of type `typid`, not NULL) as JSON, as `row_to_json` writes it
/// except that no cast to json is ever called.
///
/// # Safety
/// `value` must be a valid datum of `typid`.
pub unsafe fn value_json(typid: Oid, value: Datum) -> Value {
    value_json_at(typid, value, 0)
}

unsafe fn value_json_at(typid: Oid, value: Datum, depth: u32) -> Value {
    let base = pg_sys::getBaseType(typid);
    match base {
        pg_sys::BOOLOID => return Value::Bool(value.value() != 0),
        pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID | pg_sys::FLOAT4OID | pg_sys::FLOAT8OID
        | pg_sys::NUMERICOID => {
            let text = output_text(base, value);
            // NaN and the infinities are not JSON numbers: strings, as row_to_json writes them
            return match serde_json::from_str::<serde_json::Number>(&text) {
                Ok(n) => Value::Number(n),
                Err(_) => Value::String(text),
            };
        }
        pg_sys::DATEOID | pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID => {
            let p = pg_sys::JsonEncodeDateTime(std::ptr::null_mut(), value, base, std::ptr::null());
            let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
            pg_sys::pfree(p.cast());
            return Value::String(s);
        }
        pg_sys::JSONOID | pg_sys::JSONBOID => {
            let text = output_text(base, value);
            return serde_json::from_str(&text).unwrap_or(Value::String(text));
        }
        _ => {}
    }
    if depth < MAX_DEPTH {
        if pg_sys::get_element_type(base) != pg_sys::InvalidOid {
            return array_json(value, depth);
        }
        if pg_sys::type_is_rowtype(base) {
            return row_json(value, depth);
        }
    }
    Value::String(output_text(typid, value))
}

/// An array as nested JSON arrays, one level per dimension.
unsafe fn array_json(value: Datum, depth: u32) -> Value {
    let arr = pg_sys::pg_detoast_datum(value.cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let ndim = (*arr).ndim as usize;
    let elem = (*arr).elemtype;
    if ndim == 0 {
        return Value::Array(Vec::new());
    }
    let dims_at = (arr as *const u8).add(std::mem::size_of::<pg_sys::ArrayType>()) as *const i32;
    let dims: Vec<usize> = (0..ndim).map(|i| (*dims_at.add(i)).max(0) as usize).collect();
    let mut len: i16 = 0;
    let mut byval = false;
    let mut align: std::ffi::c_char = 0;
    pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
    let mut elems: *mut Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n: i32 = 0;
    pg_sys::deconstruct_array(arr, elem, len as i32, byval, align, &mut elems, &mut nulls, &mut n);
    let items: Vec<Value> = (0..n.max(0) as usize)
        .map(|i| if *nulls.add(i) { Value::Null } else { value_json_at(elem, *elems.add(i), depth + 1) })
        .collect();
    let mut items = items.into_iter();
    nest(&dims, &mut items)
}

fn nest(dims: &[usize], items: &mut impl Iterator<Item = Value>) -> Value {
    match dims {
        [] => items.next().unwrap_or(Value::Null),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(rest, items)).collect()),
    }
}

/// A row value (a composite, a domain over one) as an object of its live attributes.
unsafe fn row_json(value: Datum, depth: u32) -> Value {
    let header = pg_sys::pg_detoast_datum(value.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
    let typeid = (*header).t_choice.t_datum.datum_typeid;
    let typmod = (*header).t_choice.t_datum.datum_typmod;
    let desc = pg_sys::lookup_rowtype_tupdesc_copy(typeid, typmod);
    let natts = (*desc).natts as usize;
    let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
    tuple.t_len = pgrx::varsize_any(header.cast()) as u32;
    tuple.t_data = header;
    let mut values = vec![Datum::from(0usize); natts];
    let mut nulls = vec![true; natts];
    pg_sys::heap_deform_tuple(&mut tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
    let mut object = serde_json::Map::new();
    for (i, a) in crate::runtime::pgcompat::tupdesc_attrs(desc).iter().enumerate() {
        if a.attisdropped {
            continue;
        }
        let v = if nulls[i] { Value::Null } else { value_json_at(a.atttypid, values[i], depth + 1) };
        object.insert(pgrx::name_data_to_str(&a.attname).to_string(), v);
    }
    pg_sys::FreeTupleDesc(desc);
    Value::Object(object)
}

/// The text of `value` as its type's output function writes it: a built-in
/// output function is called directly, any other as the type's owner,
/// confined.
///
/// # Safety
/// `value` must be a valid datum of `typid`.
pub unsafe fn output_text(typid: Oid, value: Datum) -> String {
    let mut out = pg_sys::InvalidOid;
    let mut varlena = false;
    pg_sys::getTypeOutputInfo(typid, &mut out, &mut varlena);
    let call = || {
        let p = pg_sys::OidOutputFunctionCall(out, value);
        let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
        pg_sys::pfree(p.cast());
        s
    };
    if out.to_u32() < pg_sys::FirstNormalObjectId {
        call()
    } else {
        as_owner_confined(type_owner(typid), call)
    }
}

/// The owner of a type (of its base type, for a domain).
unsafe fn type_owner(typid: Oid) -> Oid {
    let base = pg_sys::getBaseType(typid);
    let tup = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::TYPEOID as i32, Datum::from(base));
    if tup.is_null() {
        crate::runtime::errors::raise(fluxbase_core::FbError::not_found(format!("type {} is gone", base.to_u32())));
    }
    let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_type>(tup);
    let owner = (*form).typowner;
    pg_sys::ReleaseSysCache(tup);
    owner
}

/// Run `f` as `owner` in the restricted security context, with search_path
/// pinned to `pg_catalog, pg_temp` and every dashboard API call refused
/// (confine::run_untrusted): how the extension runs code that belongs to a
/// user object, as PostgreSQL itself does for index builds and VACUUM.
pub fn as_owner_confined<R>(owner: Oid, f: impl FnOnce() -> R) -> R {
    crate::runtime::db::as_role(
        owner,
        pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        || crate::runtime::confine::run_untrusted(f),
    )
}

/// The number of rows of `rel` visible to the transaction, counted by a
/// plain table scan: no query is planned (planning const-folds a table
/// owner's index expressions and predicates), no row security applies, and no
/// function of anyone's is called. The TRUNCATE recording counts with it.
///
/// # Safety
/// `rel` must be an open, locked plain table.
pub unsafe fn count_rows(rel: pg_sys::Relation) -> i64 {
    let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetTransactionSnapshot());
    let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
    let scan = pg_sys::table_beginscan(rel, snapshot, 0, std::ptr::null_mut());
    let mut n = 0i64;
    while pg_sys::table_scan_getnextslot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
        n += 1;
        if n % 4096 == 0 {
            pg_sys::check_for_interrupts!();
        }
    }
    pg_sys::table_endscan(scan);
    pg_sys::ExecDropSingleTupleTableSlot(slot);
    pg_sys::UnregisterSnapshot(snapshot);
    n
}
