//! The few PostgreSQL internals whose shape differs between the majors this
//! crate builds for (15 and 18, one cargo feature each). Each helper keeps the
//! PostgreSQL 15 behaviour on every version; callers use these instead of the
//! raw fields and functions so that the version-specific code lives here
//! (plus `direct_table.rs`'s heap-update and RelationGetBufferForTuple, whose
//! arguments changed too).

use pgrx::pg_sys;

/// The attributes of a tuple descriptor, 0-based.
///
/// PostgreSQL 15 keeps them in `TupleDescData.attrs`; 18 replaced that field
/// by `compact_attrs` (one `CompactAttribute` per column) with the full
/// `FormData_pg_attribute` array placed right after it, as its
/// `TupleDescAttr()` reads it (and as pgrx's own tupdesc.rs does).
#[cfg(feature = "pg15")]
pub unsafe fn tupdesc_attrs<'a>(desc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    (*desc).attrs.as_slice((*desc).natts as usize)
}

#[cfg(feature = "pg18")]
pub unsafe fn tupdesc_attrs<'a>(desc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    let natts = (*desc).natts as usize;
    let first = (*desc).compact_attrs.as_ptr().add(natts).cast::<pg_sys::FormData_pg_attribute>();
    std::slice::from_raw_parts(first, natts)
}

/// The relation's primary key index, InvalidOid without one. PostgreSQL 18
/// added `deferrable_ok`; false gives 15's answer (a deferrable primary key
/// is not returned: 15's relcache never recorded one).
pub unsafe fn primary_key_index(rel: pg_sys::Relation) -> pg_sys::Oid {
    #[cfg(feature = "pg15")]
    return pg_sys::RelationGetPrimaryKeyIndex(rel);
    #[cfg(feature = "pg18")]
    return pg_sys::RelationGetPrimaryKeyIndex(rel, false);
}

/// Whether this backend holds `tag` in exactly `mode`. PostgreSQL 18 added
/// `orstronger`; false is 15's behaviour.
pub unsafe fn lock_held_by_me(tag: &pg_sys::LOCKTAG, mode: pg_sys::LOCKMODE) -> bool {
    #[cfg(feature = "pg15")]
    return pg_sys::LockHeldByMe(tag, mode);
    #[cfg(feature = "pg18")]
    return pg_sys::LockHeldByMe(tag, mode, false);
}

/// Whether a raw INSERT/UPDATE/DELETE statement has a RETURNING clause.
/// PostgreSQL 15 has a `returningList` (NIL without RETURNING); 18 a
/// `returningClause` (NULL without one; it also carries `WITH (OLD AS ..)`).
/// Any other node: false.
pub unsafe fn has_returning(stmt: *mut pg_sys::Node) -> bool {
    #[cfg(feature = "pg15")]
    let present = match (*stmt).type_ {
        pg_sys::NodeTag::T_InsertStmt => !(*(stmt as *mut pg_sys::InsertStmt)).returningList.is_null(),
        pg_sys::NodeTag::T_UpdateStmt => !(*(stmt as *mut pg_sys::UpdateStmt)).returningList.is_null(),
        pg_sys::NodeTag::T_DeleteStmt => !(*(stmt as *mut pg_sys::DeleteStmt)).returningList.is_null(),
        _ => false,
    };
    #[cfg(feature = "pg18")]
    let present = match (*stmt).type_ {
        pg_sys::NodeTag::T_InsertStmt => !(*(stmt as *mut pg_sys::InsertStmt)).returningClause.is_null(),
        pg_sys::NodeTag::T_UpdateStmt => !(*(stmt as *mut pg_sys::UpdateStmt)).returningClause.is_null(),
        pg_sys::NodeTag::T_DeleteStmt => !(*(stmt as *mut pg_sys::DeleteStmt)).returningClause.is_null(),
        _ => false,
    };
    present
}

#[cfg(all(feature = "pg15", feature = "pg18"))]
compile_error!("build for one PostgreSQL major: --no-default-features --features pg18 (pg15 is the default)");
