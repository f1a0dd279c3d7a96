//! Writing rows of a table the way the executor's INSERT and UPDATE do —
//! defaults, generated columns, constraints, every index (expression and
//! partial ones included) — without planning and running a statement.
//!
//! Used by the audit append (audit_append.rs), which runs on every audited
//! transaction's commit path: there, three SPI statements (plan
//! revalidation, executor start and end, a trigger call per row) cost more
//! than the rows they wrote. No triggers fire (audit_log's own trigger exists
//! to route other writers to the append).

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;

/// One table opened for writing: its relation, executor state and indexes.
pub struct DirectTable {
    pub rel: pg_sys::Relation,
    natts: usize,
    estate: *mut pg_sys::EState,
    rri: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
}

impl DirectTable {
    /// `lockmode` NoLock: the caller holds a stronger lock already.
    pub unsafe fn open(oid: Oid, lockmode: u32) -> DirectTable {
        let rel = pg_sys::table_open(oid, lockmode as pg_sys::LOCKMODE);
        if (*(*rel).rd_rel).relkind != pg_sys::RELKIND_RELATION as std::ffi::c_char {
            error!("fluxbase_admin: {} must be a plain table", relation_name(rel));
        }
        let estate = pg_sys::CreateExecutorState();
        (*estate).es_output_cid = pg_sys::GetCurrentCommandId(true);
        let rri = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
        (*rri).type_ = pg_sys::NodeTag::T_ResultRelInfo;
        // range table index 0: no range table (constraint errors then show no row values)
        pg_sys::InitResultRelInfo(rri, rel, 0, std::ptr::null_mut(), 0);
        // No triggers (see the module comment).
        (*rri).ri_TrigDesc = std::ptr::null_mut();
        pg_sys::ExecOpenIndices(rri, false);
        let slot = pg_sys::ExecInitExtraTupleSlot(estate, (*rel).rd_att, &raw const pg_sys::TTSOpsHeapTuple);
        let natts = (*(*rel).rd_att).natts as usize;
        DirectTable { rel, natts, estate, rri, slot }
    }

    fn attrs(&self) -> &[pg_sys::FormData_pg_attribute] {
        unsafe { crate::runtime::pgcompat::tupdesc_attrs(self.desc()) }
    }

    pub fn desc(&self) -> pg_sys::TupleDesc {
        unsafe { (*self.rel).rd_att }
    }

    /// Attribute index (0-based) of a live column, if the table has it.
    pub fn column(&self, name: &str) -> Option<usize> {
        // (compared as bytes: no copy of the names, on every audited commit)
        self.attrs().iter().position(|a| {
            !a.attisdropped && unsafe { std::ffi::CStr::from_ptr(a.attname.data.as_ptr()) }.to_bytes() == name.as_bytes()
        })
    }

    /// A tuple of this table from (column index, value) pairs. A column not
    /// given gets its default (as an INSERT would: a DBA may have added
    /// columns to the table), NULL without one; generated columns are
    /// computed by the insert.
    pub unsafe fn form(&self, values: &[(usize, Option<Datum>)]) -> pg_sys::HeapTuple {
        let (mut datums, mut nulls, given) = self.columns_of(values);
        for (i, att) in self.attrs().iter().enumerate() {
            if given[i] || att.attisdropped || att.attgenerated != 0 {
                continue;
            }
            let expr = pg_sys::build_column_default(self.rel, (i + 1) as i32);
            if expr.is_null() {
                continue;
            }
            let state = pg_sys::ExecPrepareExpr(pg_sys::expression_planner(expr.cast()), self.estate);
            let mut econtext = (*self.estate).es_per_tuple_exprcontext;
            if econtext.is_null() {
                econtext = pg_sys::MakePerTupleExprContext(self.estate);
            }
            datums[i] = pg_sys::ExecEvalExprSwitchContext(state, econtext, &mut nulls[i]);
        }
        pg_sys::heap_form_tuple(self.desc(), datums.as_mut_ptr(), nulls.as_mut_ptr())
    }

    /// Datums, nulls and "given" flags by attribute, from (column, value) pairs.
    fn columns_of(&self, values: &[(usize, Option<Datum>)]) -> (Vec<Datum>, Vec<bool>, Vec<bool>) {
        let mut datums = vec![Datum::from(0usize); self.natts];
        let mut nulls = vec![true; self.natts];
        let mut given = vec![false; self.natts];
        for &(i, v) in values {
            given[i] = true;
            if let Some(v) = v {
                datums[i] = v;
                nulls[i] = false;
            }
        }
        (datums, nulls, given)
    }

    /// The length of the tuple `form(values)` would make (t_len), without
    /// forming it — heap_form_tuple's own arithmetic — and with the columns
    /// not given left NULL (evaluating a default such as nextval() has effects).
    pub unsafe fn tuple_len(&self, values: &[(usize, Option<Datum>)]) -> usize {
        let (mut datums, mut nulls, _) = self.columns_of(values);
        let mut header = std::mem::offset_of!(pg_sys::HeapTupleHeaderData, t_bits);
        if nulls.iter().any(|n| *n) {
            header += self.natts.div_ceil(8);
        }
        header.next_multiple_of(pg_sys::MAXIMUM_ALIGNOF as usize)
            + pg_sys::heap_compute_data_size(self.desc(), datums.as_mut_ptr(), nulls.as_mut_ptr())
    }

    /// The same from (column name, value) pairs (names the table lacks are skipped).
    pub unsafe fn form_named(&self, values: &[(&str, Option<Datum>)]) -> pg_sys::HeapTuple {
        let values: Vec<(usize, Option<Datum>)> = values.iter().filter_map(|(name, v)| Some((self.column(name)?, *v))).collect();
        self.form(&values)
    }

    /// A bytea value for column `i`, compressed already the way the column
    /// would compress it (its storage and compression method) when that
    /// saves space: otherwise the toaster compresses it inside the insert
    /// (which for the audit append runs under the chain lock).
    pub unsafe fn compressed(&self, i: usize, bytes: &[u8]) -> Datum {
        let value = bytes.into_datum().expect("a byte slice is never NULL");
        let att = &self.attrs()[i];
        let compressible = matches!(att.attstorage as u8, b'm' | b'x');
        if !compressible || bytes.len() < COMPRESS_FROM_BYTES {
            return value;
        }
        let compressed = toast_compress_datum(value, att.attcompression);
        if compressed.is_null() {
            value
        } else {
            compressed
        }
    }

    /// Insert as the executor does for a plain INSERT: generated columns,
    /// constraints, the row, its index entries (logical replication's apply
    /// uses the same function). Triggers were switched off in `open`.
    pub unsafe fn insert(&self, tuple: pg_sys::HeapTuple) {
        pg_sys::ExecStoreHeapTuple(tuple, self.slot, false);
        pg_sys::ExecSimpleRelationInsert(self.rri, self.estate, self.slot);
        self.done_with_row();
    }

    /// `insert`, for an append-only table (audit_log): into the table's
    /// last page, or a new one, never into room the free space map offers
    /// in an older page (TABLE_INSERT_SKIP_FSM). A VACUUM records the room
    /// every page of the log has left; entries put there landed each on
    /// another old page, and the first write to a page after a checkpoint
    /// WAL-logs the whole page: a single-row audited transaction wrote
    /// ~4.5 kB of full-page image (and widened the BRIN ranges of old
    /// pages to the present). Otherwise what ExecSimpleRelationInsert does
    /// for a table without triggers (issue 36).
    pub unsafe fn append(&self, tuple: pg_sys::HeapTuple) {
        let constr = (*self.desc()).constr;
        if !constr.is_null() && (*constr).has_generated_stored {
            // (a stored generated column a DBA added: the executor's own path computes it)
            return self.insert(tuple);
        }
        pg_sys::ExecStoreHeapTuple(tuple, self.slot, false);
        if !constr.is_null() {
            pg_sys::ExecConstraints(self.rri, self.slot, self.estate);
        }
        if (*(*self.rel).rd_rel).relispartition {
            pg_sys::ExecPartitionCheck(self.rri, self.slot, self.estate, true);
        }
        pg_sys::table_tuple_insert(
            self.rel,
            self.slot,
            pg_sys::GetCurrentCommandId(true),
            pg_sys::TABLE_INSERT_SKIP_FSM as std::ffi::c_int,
            std::ptr::null_mut(),
        );
        if (*self.rri).ri_NumIndices > 0 {
            insert_index_tuples(self.rri, self.slot, self.estate, false, false);
        }
        self.done_with_row();
    }

    pub unsafe fn update(&self, old: pg_sys::ItemPointer, tuple: pg_sys::HeapTuple) {
        pg_sys::ExecStoreHeapTuple(tuple, self.slot, false);
        if !(*self.desc()).constr.is_null() {
            pg_sys::ExecConstraints(self.rri, self.slot, self.estate);
        }
        let indexes = heap_update(self.rel, old, tuple);
        // A HOT update keeps the old index entries; otherwise the new version needs its own.
        if indexes != IndexUpdate::None && (*self.rri).ri_NumIndices > 0 {
            // (stored again: the slot takes the new version's location from the tuple)
            pg_sys::ExecStoreHeapTuple(tuple, self.slot, false);
            insert_index_tuples(self.rri, self.slot, self.estate, true, indexes == IndexUpdate::SummarizingOnly);
        }
        self.done_with_row();
    }

    unsafe fn done_with_row(&self) {
        pg_sys::ExecClearTuple(self.slot);
        let econtext = (*self.estate).es_per_tuple_exprcontext;
        if !econtext.is_null() {
            pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
        }
    }

    /// Make sure the table has a page with `len` bytes free, extending it if
    /// none has, without writing anything: the next insert finds that page as
    /// the table's target. (Its last page or a new one, as `append` writes.) (More than about a page: nothing; such rows go
    /// through the toaster or over several pages anyway.)
    pub unsafe fn reserve(&self, len: usize) {
        if len == 0 || len > RESERVE_AT_MOST_BYTES {
            return;
        }
        let mut vmbuffer: pg_sys::Buffer = pg_sys::InvalidBuffer as pg_sys::Buffer;
        let buffer = relation_get_buffer_for_tuple(self.rel, len, &mut vmbuffer);
        pg_sys::UnlockReleaseBuffer(buffer);
        if vmbuffer != pg_sys::InvalidBuffer as pg_sys::Buffer {
            pg_sys::ReleaseBuffer(vmbuffer);
        }
    }

    pub unsafe fn close(self) {
        pg_sys::ExecCloseIndices(self.rri);
        pg_sys::ExecResetTupleTable((*self.estate).es_tupleTable, false);
        pg_sys::FreeExecutorState(self.estate);
        pg_sys::table_close(self.rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
}

/// (MaxHeapTupleSize is 8160 bytes on 8 kB pages.)
const RESERVE_AT_MOST_BYTES: usize = 7900;

/// Which index entries an updated row version needs (PostgreSQL 16's
/// TU_UpdateIndexes: a HOT update may still need the summarizing, BRIN-like,
/// indexes updated).
#[derive(PartialEq, Eq)]
enum IndexUpdate {
    None,
    All,
    SummarizingOnly,
}

/// simple_heap_update. PostgreSQL 15 tells a HOT update by the new tuple's
/// HEAP_ONLY_TUPLE bit (no summarizing indexes then); 16 and later return
/// which index entries are needed through a fourth argument.
#[cfg(feature = "pg15")]
unsafe fn heap_update(rel: pg_sys::Relation, old: pg_sys::ItemPointer, tuple: pg_sys::HeapTuple) -> IndexUpdate {
    pg_sys::simple_heap_update(rel, old, tuple);
    if (*(*tuple).t_data).t_infomask2 as u32 & pg_sys::HEAP_ONLY_TUPLE == 0 {
        IndexUpdate::All
    } else {
        IndexUpdate::None
    }
}

#[cfg(feature = "pg18")]
unsafe fn heap_update(rel: pg_sys::Relation, old: pg_sys::ItemPointer, tuple: pg_sys::HeapTuple) -> IndexUpdate {
    let mut which: pg_sys::TU_UpdateIndexes::Type = pg_sys::TU_UpdateIndexes::TU_None;
    pg_sys::simple_heap_update(rel, old, tuple, &mut which);
    match which {
        pg_sys::TU_UpdateIndexes::TU_None => IndexUpdate::None,
        pg_sys::TU_UpdateIndexes::TU_Summarizing => IndexUpdate::SummarizingOnly,
        _ => IndexUpdate::All,
    }
}

/// ExecInsertIndexTuples for an inserted or updated row (no arbiter
/// indexes, no speculative insert). PostgreSQL 16 added `onlySummarizing`.
#[cfg(feature = "pg15")]
unsafe fn insert_index_tuples(
    rri: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    estate: *mut pg_sys::EState,
    update: bool,
    _only_summarizing: bool,
) {
    pg_sys::ExecInsertIndexTuples(rri, slot, estate, update, false, std::ptr::null_mut(), std::ptr::null_mut());
}

#[cfg(feature = "pg18")]
unsafe fn insert_index_tuples(
    rri: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    estate: *mut pg_sys::EState,
    update: bool,
    only_summarizing: bool,
) {
    pg_sys::ExecInsertIndexTuples(rri, slot, estate, update, false, std::ptr::null_mut(), std::ptr::null_mut(), only_summarizing);
}

/// access/hio.h (not in pgrx's bindings): a pinned, exclusively locked page
/// of `rel` with `len` bytes free, extending the table if none has; it
/// becomes the table's target page for the next insert. Declared here by
/// hand, so per major version: PostgreSQL 16 added `num_pages` (pages to
/// extend by at once; 1 is 15's behaviour).
unsafe fn relation_get_buffer_for_tuple(rel: pg_sys::Relation, len: usize, vmbuffer: *mut pg_sys::Buffer) -> pg_sys::Buffer {
    unsafe extern "C-unwind" {
        fn RelationGetBufferForTuple(
            relation: pg_sys::Relation,
            len: usize,
            other_buffer: pg_sys::Buffer,
            options: std::ffi::c_int,
            bistate: *mut std::ffi::c_void,
            vmbuffer: *mut pg_sys::Buffer,
            vmbuffer_other: *mut pg_sys::Buffer,
            #[cfg(feature = "pg18")] num_pages: std::ffi::c_int,
        ) -> pg_sys::Buffer;
    }
    pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
        RelationGetBufferForTuple(
            rel,
            len,
            pg_sys::InvalidBuffer as pg_sys::Buffer,
            pg_sys::HEAP_INSERT_SKIP_FSM as std::ffi::c_int,
            std::ptr::null_mut(),
            vmbuffer,
            std::ptr::null_mut(),
            #[cfg(feature = "pg18")]
            1,
        )
    })
}

/// Below this a row image is stored as it is (as the toaster would leave it
/// in a row this small).
const COMPRESS_FROM_BYTES: usize = 1024;

/// access/toast_internals.h (not in pgrx's bindings): the compressed form of
/// a plain varlena, or NULL when compressing would not save space.
unsafe fn toast_compress_datum(value: Datum, cmethod: std::ffi::c_char) -> Datum {
    unsafe extern "C-unwind" {
        fn toast_compress_datum(value: Datum, cmethod: std::ffi::c_char) -> Datum;
    }
    // (it can raise an ERROR: across Rust frames only through pgrx's guard)
    pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| toast_compress_datum(value, cmethod))
}

unsafe fn relation_name(rel: pg_sys::Relation) -> String {
    pgrx::name_data_to_str(&(*(*rel).rd_rel).relname).to_string()
}

