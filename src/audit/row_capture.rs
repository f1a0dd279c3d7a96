//! The changed rows of one audited statement: captured from the trigger's
//! transition tables as a binary row image (fluxbase_core::row_image) while
//! the statement runs, and turned into JSON only when the entry is read.
//!
//! Capture reads the transition tuplestores directly, finds each column's
//! stored bytes in the tuple in Rust (fluxbase_core::heap_tuple), copies them
//! (expanded if TOASTed, so the image never points into a TOAST table) and
//! never stores the value of a redacted column — only whether an UPDATE
//! changed it. Decoding rebuilds each row as a record of the captured column
//! types and renders it as `row_to_json` would (row_json.rs), except that no
//! cast to json anyone defined is ever called (issue 28); a column whose type
//! has since been dropped or changed shows as "[undecodable]".

use std::borrow::Cow;
use std::ffi::CStr;

use fluxbase_core::chain;
use fluxbase_core::heap_tuple::{self, AttLayout, Stored};
use fluxbase_core::row_image::{self, Cell, Column, Op, Writer};
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use serde_json::Value;

pub struct Captured {
    pub data: Vec<u8>,
    /// every changed row, also those beyond `max_rows`
    pub count: i64,
}

/// What capturing an audited table's rows needs to know of it, worked out
/// on the first statement a backend audits through one trigger and kept
/// until Postgres says the table changed (relcache invalidation: ALTER
/// TABLE, CREATE or DROP TRIGGER, DROP TABLE ...) or a schema was renamed:
/// looking all of it up again on every statement was a measurable part of
/// auditing a small one.
pub struct AuditedTable {
    relid: pg_sys::Oid,
    /// "schema.table", as entries name their target
    pub target: String,
    /// in dashboard_auth: one of the extension's own tables
    pub own_table: bool,
    /// primary key column names, in key order
    pub pk_columns: Vec<String>,
    /// how every attribute, dropped ones too, lies in the table's tuples
    layout: Vec<AttLayout>,
    /// (index into the tuple's attributes, column), live columns only
    columns: Vec<(usize, Column)>,
    /// see `missing_values`
    missing: Vec<Option<Vec<u8>>>,
}

thread_local! {
    /// By trigger oid (its arguments name the redacted columns).
    static AUDITED_TABLES: std::cell::RefCell<std::collections::HashMap<u32, std::rc::Rc<AuditedTable>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The trigger's table, from the cache or looked up. `redact` decides for
/// each column name (given the table's schema) whether its values are kept.
///
/// # Safety
/// `td` must be a trigger's TriggerData.
pub unsafe fn audited_table(td: &pg_sys::TriggerData, redact: &dyn Fn(&str, &str) -> bool) -> std::rc::Rc<AuditedTable> {
    let trigger = (*td.tg_trigger).tgoid.to_u32();
    if let Some(t) = AUDITED_TABLES.with(|c| c.borrow().get(&trigger).cloned()) {
        return t;
    }
    // (Looking up takes locks, which may deliver invalidations: no borrow of
    // the cache is held meanwhile.)
    let table = std::rc::Rc::new(look_up(td.tg_relation, redact));
    AUDITED_TABLES.with(|c| c.borrow_mut().insert(trigger, table.clone()));
    table
}

/// Forget what is kept of `relid` (InvalidOid: of every table); see
/// `lib.rs`'s invalidation callbacks.
pub fn forget_table(relid: pg_sys::Oid) {
    AUDITED_TABLES.with(|c| {
        let mut c = c.borrow_mut();
        if relid == pg_sys::InvalidOid {
            c.clear();
        } else {
            c.retain(|_, t| t.relid != relid);
        }
    });
}

unsafe fn look_up(rel: pg_sys::Relation, redact: &dyn Fn(&str, &str) -> bool) -> AuditedTable {
    let relid = (*rel).rd_id;
    let schema = {
        let p = pg_sys::get_namespace_name((*(*rel).rd_rel).relnamespace);
        if p.is_null() {
            error!("fluxbase_admin: the audited table's schema is gone");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    };
    let target = format!("{schema}.{}", pgrx::name_data_to_str(&(*(*rel).rd_rel).relname));
    let desc = (*rel).rd_att;
    let attrs = crate::runtime::pgcompat::tupdesc_attrs(desc);
    let pk_attnums = primary_key_attnums(rel);
    let layout: Vec<AttLayout> = attrs.iter().map(|a| AttLayout { attlen: a.attlen, align: a.attalign as u8 }).collect();
    let columns: Vec<(usize, Column)> = attrs
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.attisdropped)
        .map(|(i, a)| {
            let name = pgrx::name_data_to_str(&a.attname).to_string();
            (
                i,
                Column {
                    attnum: a.attnum,
                    typid: a.atttypid.to_u32(),
                    typmod: a.atttypmod,
                    attlen: a.attlen,
                    byval: a.attbyval,
                    align: a.attalign as u8,
                    pk: pk_attnums.contains(&a.attnum),
                    redacted: redact(&schema, &name),
                    name,
                },
            )
        })
        .collect();
    let missing = missing_values(desc, &columns);
    let mut pk_columns: Vec<(usize, String)> = columns
        .iter()
        .filter(|(_, c)| c.pk)
        .map(|(_, c)| (pk_attnums.iter().position(|k| *k == c.attnum).unwrap_or(0), c.name.clone()))
        .collect();
    pk_columns.sort();
    AuditedTable {
        relid,
        own_table: schema == "dashboard_auth",
        target,
        pk_columns: pk_columns.into_iter().map(|(_, n)| n).collect(),
        layout,
        columns,
        missing,
    }
}

/// Capture the statement's rows (at most `max_rows` of them) from the
/// trigger's transition tables.
///
/// # Safety
/// `td` must be the TriggerData of an AFTER ... FOR EACH STATEMENT trigger
/// with the transition tables `op` needs, on `table`.
pub unsafe fn capture(td: &pg_sys::TriggerData, table: &AuditedTable, op: Op, max_rows: i64) -> Captured {
    let desc = (*td.tg_relation).rd_att;
    let AuditedTable { layout, columns, missing, .. } = table;
    let mut w = Writer::new(op, columns.iter().map(|(_, c)| c));
    let (first, second) = match op {
        Op::Insert => (td.tg_newtable, std::ptr::null_mut()),
        Op::Delete => (td.tg_oldtable, std::ptr::null_mut()),
        Op::Update => (td.tg_oldtable, td.tg_newtable),
    };
    if first.is_null() || (op == Op::Update && second.is_null()) {
        error!("fluxbase_admin: the audit trigger needs its transition tables (REFERENCING ...)");
    }
    let count = pg_sys::tuplestore_tuple_count(first);
    // (room for a typical statement's image at once, not grown step by step)
    w.reserve((count.min(max_rows) as usize * op.sides() * columns.len() * 8).min(1 << 20));
    let mut a = Scan::start(first, desc);
    let mut b = (!second.is_null()).then(|| Scan::start(second, desc));
    let (mut old_at, mut new_at) = (Vec::new(), Vec::new());
    let mut n = 0;
    let mut changed: Vec<bool> = Vec::with_capacity(columns.len());
    while n < max_rows {
        let Some(old_or_only) = a.next(layout, &mut old_at) else { break };
        match &mut b {
            None => {
                for (i, c) in columns {
                    match (old_or_only.is_null(*i, missing), c.redacted) {
                        (true, _) => w.null(),
                        (false, true) => w.redacted(false),
                        (false, false) => put(&mut w, old_or_only.value(*i, missing)),
                    }
                }
            }
            Some(b) => {
                let Some(new) = b.next(layout, &mut new_at) else {
                    error!("fluxbase_admin: the UPDATE's old and new transition tables differ in length");
                };
                // Compared once per column: the old image keeps the key and
                // the changed columns, the new image only the changed ones.
                // (A value is read, and a TOASTed one fetched, only where it
                // is kept.)
                changed.clear();
                changed.extend(columns.iter().map(|(i, _)| !old_or_only.same_value(&new, *i, missing)));
                for ((i, c), &changed) in columns.iter().zip(&changed) {
                    if c.redacted {
                        w.redacted(changed);
                    } else if !changed && !c.pk {
                        w.unchanged();
                    } else {
                        put(&mut w, old_or_only.value(*i, missing));
                    }
                }
                for ((i, c), &changed) in columns.iter().zip(&changed) {
                    if c.redacted {
                        w.redacted(changed);
                    } else if !changed {
                        w.same();
                    } else {
                        put(&mut w, new.value(*i, missing));
                    }
                }
            }
        }
        n += 1;
    }
    a.finish();
    if let Some(b) = b {
        b.finish();
    }
    Captured { data: w.finish(), count }
}

/// Attribute numbers of the primary key, in key order (empty without one).
unsafe fn primary_key_attnums(rel: pg_sys::Relation) -> Vec<i16> {
    let pk = crate::runtime::pgcompat::primary_key_index(rel);
    if pk == pg_sys::InvalidOid {
        return Vec::new();
    }
    let index = pg_sys::index_open(pk, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    let form = &*(*index).rd_index;
    let keys = form.indkey.values.as_slice(form.indnkeyatts as usize).to_vec();
    pg_sys::index_close(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    keys
}

/// One value into the image: its bytes, or NULL.
fn put(w: &mut Writer, value: Option<Cow<'_, [u8]>>) {
    match value {
        Some(bytes) => w.value(&bytes),
        None => w.null(),
    }
}

/// By attribute index: the value a row stored before its column was added
/// (ALTER TABLE ... ADD COLUMN ... DEFAULT) has in that column, as image
/// bytes; None where that is NULL.
unsafe fn missing_values(desc: pg_sys::TupleDesc, columns: &[(usize, Column)]) -> Vec<Option<Vec<u8>>> {
    let attrs = crate::runtime::pgcompat::tupdesc_attrs(desc);
    let mut missing = vec![None; attrs.len()];
    for (i, c) in columns {
        if attrs[*i].atthasmissing {
            let mut null = false;
            let d = pg_sys::getmissingattr(desc, (*i + 1) as i32, &mut null);
            if !null {
                missing[*i] = Some(datum_bytes(c, d));
            }
        }
    }
    missing
}

/// The bytes of one datum of column `c`, as the image stores them.
unsafe fn datum_bytes(c: &Column, d: Datum) -> Vec<u8> {
    if c.byval {
        (d.value() as u64).to_le_bytes()[..c.attlen as usize].to_vec()
    } else if c.attlen > 0 {
        std::slice::from_raw_parts(d.cast_mut_ptr::<u8>(), c.attlen as usize).to_vec()
    } else if c.attlen == -1 {
        expanded(d.cast_mut_ptr())
    } else {
        CStr::from_ptr(d.cast_mut_ptr()).to_bytes_with_nul().to_vec()
    }
}

/// A varlena's bytes uncompressed and fetched from the TOAST table if it
/// lives there: the image must not point into the TOAST table, whose row
/// may be gone when the entry is read.
unsafe fn expanded(p: *mut pg_sys::varlena) -> Vec<u8> {
    let flat = pg_sys::pg_detoast_datum_packed(p);
    let bytes = std::slice::from_raw_parts(flat as *const u8, pgrx::varsize_any(flat)).to_vec();
    if flat != p {
        pg_sys::pfree(flat.cast());
    }
    bytes
}

/// One captured tuple: its data area and where each attribute lies in it.
struct Tuple<'a> {
    data: &'a [u8],
    at: &'a [Stored],
}

impl Tuple<'_> {
    /// Attribute `i`'s bytes as the image stores them (None: NULL): those
    /// the table stores (for a by-value type, the datum's low bytes are just
    /// those), expanded where compressed or TOASTed.
    #[inline]
    unsafe fn value<'s>(&'s self, i: usize, missing: &'s [Option<Vec<u8>>]) -> Option<Cow<'s, [u8]>> {
        match self.at[i] {
            Stored::Null => None,
            Stored::Missing => missing[i].as_deref().map(Cow::Borrowed),
            Stored::Inline { start, end } => Some(Cow::Borrowed(&self.data[start..end])),
            Stored::Toasted { start, .. } => Some(Cow::Owned(expanded(self.data.as_ptr().add(start) as *mut _))),
        }
    }

    /// Attribute `i` is NULL (without reading its value).
    #[inline]
    fn is_null(&self, i: usize, missing: &[Option<Vec<u8>>]) -> bool {
        match self.at[i] {
            Stored::Null => true,
            Stored::Missing => missing[i].is_none(),
            Stored::Inline { .. } | Stored::Toasted { .. } => false,
        }
    }

    /// Attribute `i` holds the same value here and in `other`: the same
    /// stored bytes (an UPDATE that left a TOASTed value alone keeps its
    /// TOAST pointer, and that is not fetched), or the same bytes expanded.
    #[inline]
    unsafe fn same_value(&self, other: &Tuple, i: usize, missing: &[Option<Vec<u8>>]) -> bool {
        let (mine, theirs) = (self.stored(i), other.stored(i));
        match (self.at[i], other.at[i]) {
            (Stored::Inline { .. }, Stored::Inline { .. }) | (Stored::Null, Stored::Null) => mine == theirs,
            _ if mine.is_some() && mine == theirs => true,
            _ => self.value(i, missing) == other.value(i, missing),
        }
    }

    /// Attribute `i`'s bytes as the tuple stores them, compressed or a TOAST
    /// pointer as they may be (None: NULL or missing).
    #[inline]
    fn stored(&self, i: usize) -> Option<&[u8]> {
        match self.at[i] {
            Stored::Inline { start, end } | Stored::Toasted { start, end } => Some(&self.data[start..end]),
            Stored::Null | Stored::Missing => None,
        }
    }
}

/// (MINIMAL_TUPLE_OFFSET, access/htup_details.h: a minimal tuple is a heap
/// tuple header without its first bytes, and its t_hoff still counts them.)
const MINIMAL_TUPLE_OFFSET: usize =
    (std::mem::offset_of!(pg_sys::HeapTupleHeaderData, t_infomask2) - std::mem::size_of::<u32>()) / 8 * 8;
const _: () = assert!(
    std::mem::offset_of!(pg_sys::MinimalTupleData, t_infomask2) + MINIMAL_TUPLE_OFFSET
        == std::mem::offset_of!(pg_sys::HeapTupleHeaderData, t_infomask2)
);

/// A read of one transition tuplestore through a read pointer of our own,
/// so other readers of the same store (other triggers) are not disturbed.
struct Scan {
    store: *mut pg_sys::Tuplestorestate,
    slot: *mut pg_sys::TupleTableSlot,
}

impl Scan {
    unsafe fn start(store: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc) -> Scan {
        let ptr = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, ptr);
        pg_sys::tuplestore_rescan(store);
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &raw const pg_sys::TTSOpsMinimalTuple);
        Scan { store, slot }
    }

    /// The next tuple, its attributes located (heap_tuple::deform) in
    /// `at`; valid until the next call. The tuple is read where the store
    /// keeps it, not deformed into the slot.
    /// (Our read pointer stays selected: nothing else reads these stores
    /// while the trigger runs, and the old and new rows are two stores.)
    unsafe fn next<'a>(&'a mut self, layout: &[AttLayout], at: &'a mut Vec<Stored>) -> Option<Tuple<'a>> {
        if !pg_sys::tuplestore_gettupleslot(self.store, true, false, self.slot) {
            return None;
        }
        let mt = (*self.slot.cast::<pg_sys::MinimalTupleTableSlot>()).mintuple;
        let len = (*mt).t_len as usize;
        let natts = ((*mt).t_infomask2 as u32 & pg_sys::HEAP_NATTS_MASK) as usize;
        let bits_at = std::mem::offset_of!(pg_sys::MinimalTupleData, t_bits);
        let data_at = ((*mt).t_hoff as usize).saturating_sub(MINIMAL_TUPLE_OFFSET);
        if data_at < bits_at || data_at > len {
            error!("fluxbase_admin: a transition table tuple has a damaged header");
        }
        let whole = std::slice::from_raw_parts(mt as *const u8, len);
        let nulls = ((*mt).t_infomask as u32 & pg_sys::HEAP_HASNULL != 0).then(|| &whole[bits_at..data_at]);
        let data = &whole[data_at..];
        if let Err(e) = heap_tuple::deform(layout, natts, nulls, data, at) {
            error!("fluxbase_admin: a transition table tuple could not be read: {e}");
        }
        Some(Tuple { data, at })
    }

    unsafe fn finish(self) {
        pg_sys::ExecDropSingleTupleTableSlot(self.slot);
        pg_sys::tuplestore_select_read_pointer(self.store, 0);
    }
}

// ---------------------------------------------------------------------------
// Decoding

/// The entry's rows as the audit details show them: `[{pk, old|new, ...}]`
/// (for an UPDATE only the changed columns beside the key), built by
/// chain::row_change_details from the decoded rows.
pub fn decode_rows(data: &[u8], table: &str) -> Result<Value, String> {
    let image = row_image::parse(data)?;
    let ncols = image.columns.len();
    let usable: Vec<bool> = image.columns.iter().map(|c| unsafe { type_still_fits(c) }).collect();
    let mut old = Vec::new();
    let mut new = Vec::new();
    for row in &image.rows {
        match image.op {
            Op::Insert => new.push(unsafe { side_to_json(&image.columns, &usable, &row[..ncols], Side::Only)? }),
            Op::Delete => old.push(unsafe { side_to_json(&image.columns, &usable, &row[..ncols], Side::Only)? }),
            Op::Update => {
                old.push(unsafe { side_to_json(&image.columns, &usable, &row[..ncols], Side::Old)? });
                new.push(unsafe { side_to_json(&image.columns, &usable, &row[ncols..], Side::New)? });
            }
        }
    }
    let pk: Vec<String> = image.columns.iter().filter(|c| c.pk).map(|c| c.name.clone()).collect();
    let redact: Vec<String> = image.columns.iter().filter(|c| c.redacted).map(|c| c.name.clone()).collect();
    let mut doc = chain::row_change_details(image.op.sql(), table, &pk, &redact, &old, &new);
    Ok(doc["rows"].take())
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Only,
    Old,
    New,
}

/// The column's type still exists with the layout the bytes were stored in.
unsafe fn type_still_fits(c: &Column) -> bool {
    let typid = pg_sys::Oid::from(c.typid);
    let tup = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::TYPEOID as i32, Datum::from(typid));
    if tup.is_null() {
        return false;
    }
    pg_sys::ReleaseSysCache(tup);
    let mut len: i16 = 0;
    let mut byval = false;
    pg_sys::get_typlenbyval(typid, &mut len, &mut byval);
    len == c.attlen && byval == c.byval
}

/// A value's bytes still make a value of its type as the type is now: a row
/// value (a composite, a domain over one) or an array is checked part by
/// part against the type's current shape, which a table owner may have
/// changed (ALTER TYPE ... ALTER ATTRIBUTE ... TYPE, DROP ATTRIBUTE) after
/// the column was dropped; output functions would otherwise read the old
/// bytes with the new layout (XX000, or worse).
unsafe fn value_fits(typid: pg_sys::Oid, bytes: &[u8], depth: u32) -> bool {
    if depth > 32 {
        return false;
    }
    let base = pg_sys::getBaseType(typid);
    if pg_sys::get_typtype(base) == pg_sys::TYPTYPE_COMPOSITE as std::ffi::c_char {
        let Ok(datum) = heap_tuple::composite_datum(bytes) else { return false };
        if datum.typeid != base.to_u32() {
            return false;
        }
        let desc = pg_sys::lookup_rowtype_tupdesc_copy(base, -1);
        let attrs = crate::runtime::pgcompat::tupdesc_attrs(desc);
        let layout: Vec<AttLayout> = attrs.iter().map(|a| AttLayout { attlen: a.attlen, align: a.attalign as u8 }).collect();
        let fits = match heap_tuple::check_composite(&datum, &layout) {
            Ok(values) => attrs.iter().zip(values).all(|(a, v)| match v {
                Some(v) if a.attisdropped => !v.is_empty(),
                Some(v) => plain_fits(a.atttypid, a.attlen, v) && value_fits(a.atttypid, v, depth + 1),
                None => true,
            }),
            Err(_) => false,
        };
        pg_sys::FreeTupleDesc(desc);
        return fits;
    }
    let elem = pg_sys::get_element_type(base);
    if elem != pg_sys::InvalidOid {
        let mut len: i16 = 0;
        let mut byval = false;
        let mut align: std::ffi::c_char = 0;
        pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
        let Ok((elemtype, items)) = heap_tuple::array_elements(bytes, AttLayout { attlen: len, align: align as u8 }) else {
            return false;
        };
        return elemtype == elem.to_u32()
            && items.into_iter().flatten().all(|v| plain_fits(elem, len, v) && value_fits(elem, v, depth + 1));
    }
    true
}

/// A non-row value's bytes have the length its type has now, and text is
/// valid in the database encoding (its output function does not check).
unsafe fn plain_fits(typid: pg_sys::Oid, attlen: i16, v: &[u8]) -> bool {
    if (attlen > 0 && v.len() != attlen as usize) || (attlen == -1 && !heap_tuple::plain_varlena(v)) {
        return false;
    }
    let mut category: std::ffi::c_char = 0;
    let mut preferred = false;
    pg_sys::get_type_category_preferred(pg_sys::getBaseType(typid), &mut category, &mut preferred);
    if category as u8 == b'S' && attlen == -1 {
        let header = if v.first().is_some_and(|b| b & 0x01 == 0x01) { 1 } else { 4 };
        let text = v.get(header..).unwrap_or_default();
        return pg_sys::pg_verifymbstr(text.as_ptr().cast(), text.len() as i32, true);
    }
    true
}

unsafe fn side_to_json(
    columns: &[Column],
    usable: &[bool],
    cells: &[Cell<'_>],
    side: Side,
) -> Result<Value, String> {
    let n = columns.len();
    let mut values = vec![Datum::from(0usize); n];
    let mut nulls = vec![true; n];
    // (per value: a type's shape may fit one row's value and not another's)
    let mut fits = usable.to_vec();
    for (i, (c, cell)) in columns.iter().zip(cells).enumerate() {
        if let (Cell::Bytes(b), true) = (cell, usable[i]) {
            if c.attlen == -1 && !value_fits(pg_sys::Oid::from(c.typid), b, 0) {
                fits[i] = false;
                continue;
            }
            values[i] = datum_from_bytes(c, b);
            nulls[i] = false;
        }
    }
    let usable = &fits[..];
    // Each value as row_to_json writes it, but with no cast to json called
    // (a type owner's cast would run as the reader's superuser: issue 28).
    let mut m = serde_json::Map::new();
    for (i, c) in columns.iter().enumerate() {
        let v = if nulls[i] { Value::Null } else { crate::audit::row_json::value_json(pg_sys::Oid::from(c.typid), values[i]) };
        m.insert(c.name.clone(), v);
    }
    let mut v = Value::Object(m);
    if let Value::Object(m) = &mut v {
        for (i, (c, cell)) in columns.iter().zip(cells).enumerate() {
            let shown = match cell {
                // not kept: absent from both sides, so not shown as a change
                Cell::Unchanged => {
                    m.remove(&c.name);
                    continue;
                }
                // differing stand-ins make the UPDATE diff keep a changed
                // secret; row_change_details then masks both as "[redacted]"
                Cell::Redacted { changed: true } if side == Side::Old => "[redacted:old]",
                Cell::Redacted { .. } => "[redacted]",
                Cell::Bytes(_) if !usable[i] => "[undecodable]",
                _ => continue,
            };
            m.insert(c.name.clone(), Value::String(shown.into()));
        }
    }
    Ok(v)
}

/// The datum for a value's stored bytes (by-reference values are copied into
/// palloc'd, suitably aligned memory). `row_image::parse` has already checked
/// the lengths: fixed-length values have exactly attlen bytes, varlenas an
/// uncompressed, inline header that matches their length, cstrings one NUL.
unsafe fn datum_from_bytes(c: &Column, b: &[u8]) -> Datum {
    if c.byval {
        let mut v = [0u8; 8];
        v[..b.len()].copy_from_slice(b);
        Datum::from(u64::from_le_bytes(v) as usize)
    } else {
        let p = pg_sys::palloc(b.len().max(1)) as *mut u8;
        std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len());
        Datum::from(p)
    }
}
