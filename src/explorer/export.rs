//! `dashboard.export_rows` and `dashboard.count_rows` (issue 19).
//!
//! Both run as browse does: the reader gate (`actor::reader`), then confined
//! (`confine::run_untrusted`), the table loaded and checked by `load` (the
//! session gate, the caller's SELECT right), the statement planned by
//! `fluxbase_core::explorer::export` (browse's filters, search and keyset
//! order) and run with the caller's rights, so RLS and an applied
//! impersonation decide which rows there are.
//!
//! `export_rows` writes its chunk as COPY does: the statement is read through
//! a cursor, a batch of rows at a time; each value goes through its type's
//! output function (looked up once per call), CSV fields are quoted by COPY's
//! rules (`export::csv_field`), into one byte buffer; per-value memory lives
//! in a context reset after every batch.

use std::ffi::CStr;

use fluxbase_core::explorer::export::{self as ex, Format, EXPORT_CHUNK_BYTES};
use fluxbase_core::explorer::make_cursor;
use fluxbase_core::FbError;
use pgrx::datum::JsonB;
use pgrx::prelude::*;
use pgrx::{PgMemoryContexts, PgRelation};

use super::{args, kept_plan, reading_view, text_types, view_args};
use crate::runtime::errors::{raise, OrRaise};
use crate::runtime::json::JsonArg;

/// Rows fetched from the cursor at a time.
const BATCH: i64 = 1000;

/// One output function per result column.
struct Outputs(Vec<pg_sys::FmgrInfo>);

impl Outputs {
    /// Look the result columns' output functions up (in the current context,
    /// SPI's for this call: their caches live as long as it does).
    unsafe fn new(tupdesc: pg_sys::TupleDesc) -> Outputs {
        let natts = unsafe { (*tupdesc).natts };
        let mut fl = Vec::with_capacity(natts as usize);
        for i in 1..=natts {
            let typid = unsafe { pg_sys::SPI_gettypeid(tupdesc, i) };
            let (mut func, mut varlena) = (pg_sys::Oid::INVALID, false);
            unsafe { pg_sys::getTypeOutputInfo(typid, &mut func, &mut varlena) };
            let mut f: pg_sys::FmgrInfo = unsafe { std::mem::zeroed() };
            unsafe { pg_sys::fmgr_info(func, &mut f) };
            fl.push(f);
        }
        Outputs(fl)
    }

    /// The text of value `d` of column `i` (0-based), as its type prints it;
    /// `f` gets its bytes (palloc'd in the current context).
    unsafe fn with_text<R>(&mut self, i: usize, d: pg_sys::Datum, f: impl FnOnce(&[u8]) -> R) -> R {
        let s = unsafe { pg_sys::OutputFunctionCall(&mut self.0[i], d) };
        let r = f(unsafe { CStr::from_ptr(s) }.to_bytes());
        unsafe { pg_sys::pfree(s.cast()) };
        r
    }
}

/// Switch to `cx` until dropped.
struct InContext(pg_sys::MemoryContext);

impl InContext {
    unsafe fn enter(cx: pg_sys::MemoryContext) -> InContext {
        let prev = unsafe { pg_sys::CurrentMemoryContext };
        unsafe { pg_sys::CurrentMemoryContext = cx };
        InContext(prev)
    }
}

impl Drop for InContext {
    fn drop(&mut self) {
        unsafe { pg_sys::CurrentMemoryContext = self.0 };
    }
}

/// What one call produced.
struct Chunk {
    data: Vec<u8>,
    rows: i32,
    /// The keys of the last row written, when more rows follow.
    next: Option<Vec<Option<String>>>,
}

fn run_export(plan: &ex::ExportPlan) -> Chunk {
    let stmt = kept_plan(&plan.sql, &text_types(plan.params.0.len()));
    let single = plan.data_columns == 1 && plan.format == Format::Csv;
    Spi::connect(|c| {
        let mut cur = c.open_cursor(&*stmt, &args(&plan.params));
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut rows: i32 = 0;
        let mut outputs: Option<Outputs> = None;
        let mut values: Vec<pg_sys::Datum> = Vec::new();
        let mut nulls: Vec<bool> = Vec::new();
        let scratch = PgMemoryContexts::new("fluxbase export rows");
        loop {
            let got = cur.fetch(BATCH).or_raise();
            let n = got.len();
            drop(got);
            let table = unsafe { pg_sys::SPI_tuptable };
            if n == 0 || table.is_null() {
                return Chunk { data: out, rows, next: None };
            }
            let tupdesc = unsafe { (*table).tupdesc };
            let outs = outputs.get_or_insert_with(|| unsafe { Outputs::new(tupdesc) });
            let natts = outs.0.len();
            values.resize(natts, pg_sys::Datum::from(0));
            nulls.resize(natts, false);
            let mut stop: Option<(usize, Vec<Option<String>>)> = None;
            {
                let _in = unsafe { InContext::enter(scratch.value()) };
                for i in 0..n {
                    let tup = unsafe { *(*table).vals.add(i) };
                    unsafe { pg_sys::heap_deform_tuple(tup, tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr()) };
                    match plan.format {
                        Format::Csv => {
                            for col in 0..plan.data_columns {
                                if col > 0 {
                                    out.push(b',');
                                }
                                if !nulls[col] {
                                    unsafe { outs.with_text(col, values[col], |t| ex::csv_field(&mut out, t, single)) };
                                }
                            }
                            out.push(b'\n');
                        }
                        Format::Json => {
                            if rows > 0 {
                                out.extend_from_slice(b",\n");
                            }
                            unsafe { outs.with_text(0, values[0], |t| out.extend_from_slice(t)) };
                        }
                    }
                    rows += 1;
                    if rows >= plan.max_rows || out.len() >= EXPORT_CHUNK_BYTES {
                        let keys = (plan.data_columns..natts)
                            .map(|k| {
                                (!nulls[k]).then(|| unsafe {
                                    outs.with_text(k, values[k], |t| String::from_utf8_lossy(t).into_owned())
                                })
                            })
                            .collect();
                        stop = Some((i, keys));
                        break;
                    }
                }
            }
            unsafe {
                pg_sys::MemoryContextReset(scratch.value());
                pg_sys::SPI_freetuptable(table);
            }
            if let Some((i, keys)) = stop {
                // More rows follow when this batch has one, or the cursor does.
                let more = i + 1 < n || {
                    let got = cur.fetch(1).or_raise();
                    let more = !got.is_empty();
                    drop(got);
                    more
                };
                return Chunk { data: out, rows, next: more.then_some(keys) };
            }
        }
    })
}

/// One chunk of the view's rows: `data` (CSV as COPY writes it, or JSON
/// objects joined by ",\n"), how many rows it holds, and the cursor to pass as
/// `after` for the next chunk (NULL after the last). See docs/TABLES_EXPORT.md.
#[pg_extern(schema = "dashboard", stable)]
#[allow(clippy::too_many_arguments)]
fn export_rows(
    tbl: Option<PgRelation>,
    filters: default!(Option<JsonArg>, "'[]'"),
    sort: default!(Option<JsonArg>, "'[]'"),
    search: default!(Option<&str>, "NULL"),
    format: default!(Option<&str>, "'csv'"),
    after: default!(Option<JsonArg>, "NULL"),
    max_rows: default!(Option<i32>, 10000),
) -> TableIterator<'static, (name!(data, String), name!(row_count, i32), name!(next_cursor, Option<JsonB>))> {
    let [filters, sort, after] = view_args([(filters, "filters"), (sort, "sort"), (after, "after")]);
    reading_view(tbl, |t| {
        let plan = ex::plan_export(t, filters.as_ref(), sort.as_ref(), search, format, after.as_ref(), max_rows).or_raise();
        let chunk = run_export(&plan);
        let data = String::from_utf8(chunk.data)
            .unwrap_or_else(|_| raise(FbError::invalid("the export needs a UTF8 database (its text is not UTF-8)")));
        let next = chunk.next.map(|k| JsonB(make_cursor(&plan.keys, k)));
        TableIterator::once((data, chunk.rows, next))
    })
}

/// The exact number of rows of the view (filters and search) the caller may
/// see. Run it under a statement timeout on big tables (the web does).
#[pg_extern(schema = "dashboard", stable)]
fn count_rows(
    tbl: Option<PgRelation>,
    filters: default!(Option<JsonArg>, "'[]'"),
    search: default!(Option<&str>, "NULL"),
) -> i64 {
    let [filters] = view_args([(filters, "filters")]);
    reading_view(tbl, |t| {
        let (sql, params) = ex::plan_count(t, filters.as_ref(), search).or_raise();
        let stmt = kept_plan(&sql, &text_types(params.0.len()));
        Spi::connect(|c| c.select(&*stmt, Some(1), &args(&params))?.first().get::<i64>(1))
            .or_raise()
            .unwrap_or(0)
    })
}
