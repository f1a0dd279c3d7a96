//! Where each attribute's stored bytes lie in a heap tuple's data area, found
//! in Rust the way PostgreSQL's `slot_deform_heap_tuple` finds them.
//!
//! Why: the row-change audit trigger copies every captured column's stored
//! bytes into a row image (row_image.rs). Going through a tuple slot first
//! (`slot_getallattrs`, then a datum per column, then the bytes behind it)
//! cost more than the copy itself; walking the tuple here costs a few
//! nanoseconds per column and needs no call into the server.
//!
//! The rules (PostgreSQL's on-disk tuple format, access/htup_details.h and
//! access/tupmacs.h): attributes follow each other in attribute order, NULLs
//! (bit clear in the null bitmap) take no space, each value starts at the
//! next multiple of its type's alignment — except a varlena whose first byte
//! is not zero, which is a 1-byte-header value stored unaligned — and is
//! `attlen` bytes long, or as long as its varlena header says (-1), or up to
//! and including a NUL (-2). A tuple may hold fewer attributes than its table
//! has columns (columns added later with a default): the rest are `Missing`.
//!
//! Every offset is checked against the data area, so a damaged tuple gives
//! an error, never a read out of bounds.

/// How a column's values are laid out (pg_attribute's attlen and attalign).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttLayout {
    /// > 0: fixed length; -1: varlena; -2: NUL-terminated cstring
    pub attlen: i16,
    /// b'c', b's', b'i' or b'd' (1, 2, 4, 8 bytes)
    pub align: u8,
}

/// One attribute of one tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Null,
    /// beyond the tuple's own attributes: the column's "missing" default
    Missing,
    /// the value's bytes, `data[start..end]`, exactly as a datum points to
    /// them (a whole varlena, header included, uncompressed and inline)
    Inline { start: usize, end: usize },
    /// a varlena that is compressed or a TOAST pointer, `data[start..end]`:
    /// it must be expanded before its bytes mean the value
    Toasted { start: usize, end: usize },
}

/// The attributes of one tuple, into `out` (cleared first): one per entry of
/// `layout`. `natts` is the number of attributes the tuple holds
/// (t_infomask2 & HEAP_NATTS_MASK), `nulls` its null bitmap if it has one
/// (HEAP_HASNULL), `data` its data area (from t_hoff to the end).
pub fn deform(layout: &[AttLayout], natts: usize, nulls: Option<&[u8]>, data: &[u8], out: &mut Vec<Stored>) -> Result<(), String> {
    out.clear();
    let mut off = 0usize;
    for (i, att) in layout.iter().enumerate() {
        if i >= natts {
            out.push(Stored::Missing);
            continue;
        }
        if let Some(bits) = nulls {
            let byte = *bits.get(i / 8).ok_or("tuple's null bitmap is too short")?;
            if byte & (1 << (i % 8)) == 0 {
                out.push(Stored::Null);
                continue;
            }
        }
        let stored = match att.attlen {
            len if len > 0 => {
                let start = align(off, att.align)?;
                Stored::Inline { start, end: within(data, start, len as usize)? }
            }
            -1 => {
                // a pad byte is always zero, a varlena's first byte never is
                let first = *data.get(off).ok_or("tuple truncated")?;
                let start = if first != 0 { off } else { align(off, att.align)? };
                let (len, toasted) = varlena_size(&data[start.min(data.len())..])?;
                let end = within(data, start, len)?;
                if toasted {
                    Stored::Toasted { start, end }
                } else {
                    Stored::Inline { start, end }
                }
            }
            -2 => {
                let start = align(off, att.align)?;
                let nul = data.get(start..).and_then(|rest| rest.iter().position(|b| *b == 0)).ok_or("tuple's cstring is not terminated")?;
                Stored::Inline { start, end: start + nul + 1 }
            }
            other => return Err(format!("unknown attribute length {other}")),
        };
        if let Stored::Inline { end, .. } | Stored::Toasted { end, .. } = stored {
            off = end;
        }
        out.push(stored);
    }
    Ok(())
}

fn align(off: usize, align: u8) -> Result<usize, String> {
    let to = match align {
        b'c' => 1,
        b's' => 2,
        b'i' => 4,
        b'd' => 8,
        other => return Err(format!("unknown alignment {other}")),
    };
    Ok(off.next_multiple_of(to))
}

/// `start + len`, if the data area holds that much.
fn within(data: &[u8], start: usize, len: usize) -> Result<usize, String> {
    start.checked_add(len).filter(|end| *end <= data.len()).ok_or_else(|| "tuple truncated".to_string())
}

/// A varlena's whole size (VARSIZE_ANY) and whether it is compressed or a
/// TOAST pointer, from its first bytes (little-endian header layouts, as on
/// every platform the extension builds for).
fn varlena_size(v: &[u8]) -> Result<(usize, bool), String> {
    let first = *v.first().ok_or("tuple truncated")?;
    if first == 0x01 {
        // VARATT_IS_1B_E: a TOAST pointer; its tag gives the size
        let tag = *v.get(1).ok_or("tuple truncated")?;
        let pointer = match tag {
            // VARTAG_INDIRECT and VARTAG_EXPANDED_RO/RW: a pointer
            1 | 2 | 3 => std::mem::size_of::<usize>(),
            // VARTAG_ONDISK: varatt_external
            18 => 16,
            other => return Err(format!("unknown TOAST pointer tag {other}")),
        };
        Ok((2 + pointer, true))
    } else if first & 0x01 == 0x01 {
        // VARATT_IS_1B: a short header holding the whole length
        Ok(((first >> 1) as usize, false))
    } else {
        let header: [u8; 4] = v.get(..4).ok_or("tuple truncated")?.try_into().unwrap();
        let word = u32::from_le_bytes(header);
        // VARATT_IS_4B_C: compressed in line
        Ok(((word >> 2) as usize, first & 0x03 == 0x02))
    }
}

/// What a composite (row) datum's bytes say about themselves: a whole,
/// inline varlena holding a tuple header (HeapTupleHeaderData) and data.
pub struct CompositeDatum<'a> {
    pub typeid: u32,
    pub typmod: i32,
    pub natts: usize,
    pub nulls: Option<&'a [u8]>,
    pub data: &'a [u8],
}

/// The varlena payload (after the header) of an uncompressed inline value,
/// with a 1- or 4-byte header.
fn varlena_payload(v: &[u8]) -> Result<&[u8], String> {
    let (len, toasted) = varlena_size(v)?;
    if toasted || len > v.len() {
        return Err("not an inline varlena".into());
    }
    let header = if v[0] & 0x01 == 0x01 { 1 } else { 4 };
    v.get(header..len).ok_or_else(|| "varlena too short".to_string())
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    Ok(u16::from_le_bytes(b.get(at..at + 2).ok_or("truncated")?.try_into().unwrap()))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    Ok(u32::from_le_bytes(b.get(at..at + 4).ok_or("truncated")?.try_into().unwrap()))
}

/// A varlena value that is whole and plain: its header (1 or 4 bytes, not
/// a TOAST pointer, not compressed) gives exactly its length, at least the
/// header's own.
pub fn plain_varlena(v: &[u8]) -> bool {
    match varlena_size(v) {
        Ok((len, false)) => len == v.len() && len >= if v[0] & 0x01 == 0x01 { 1 } else { 4 },
        _ => false,
    }
}

/// Read a composite datum's header (offsets of htup_details.h, counted
/// from after the 4-byte length word: typmod 0, typeid 4, ctid 8,
/// infomask2 14, infomask 16, hoff 18, bits 19).
pub fn composite_datum(v: &[u8]) -> Result<CompositeDatum<'_>, String> {
    let body = varlena_payload(v)?;
    let typmod = u32_at(body, 0)? as i32;
    let typeid = u32_at(body, 4)?;
    let infomask2 = u16_at(body, 14)?;
    let infomask = u16_at(body, 16)?;
    let hoff = *body.get(18).ok_or("truncated")? as usize;
    // (t_hoff counts the 4-byte length word)
    let data_at = hoff.checked_sub(4).ok_or("bad t_hoff")?;
    if data_at < 19 || data_at > body.len() {
        return Err("bad t_hoff".into());
    }
    let natts = (infomask2 & 0x07FF) as usize;
    let nulls = (infomask & 0x0001 != 0).then(|| &body[19..data_at]);
    if nulls.is_some_and(|n| n.len() < natts.div_ceil(8)) {
        return Err("null bitmap too short".into());
    }
    Ok(CompositeDatum { typeid, typmod, natts, nulls, data: &body[data_at..] })
}

/// Check that a composite datum's data area is laid out exactly as `layout`
/// (the type's attributes now) says: every attribute within bounds, the last
/// one ending where the data ends, no compressed or TOAST-pointer value
/// (a row datum holds its values flat). Returns each attribute's bytes.
pub fn check_composite<'a>(c: &CompositeDatum<'a>, layout: &[AttLayout]) -> Result<Vec<Option<&'a [u8]>>, String> {
    if c.natts > layout.len() {
        return Err("more attributes than the type has".into());
    }
    let mut at = Vec::new();
    deform(layout, c.natts, c.nulls, c.data, &mut at)?;
    let mut end = 0;
    let mut values = Vec::with_capacity(at.len());
    for s in at {
        match s {
            Stored::Inline { start, end: e } => {
                end = e;
                values.push(Some(&c.data[start..e]));
            }
            Stored::Toasted { .. } => return Err("a compressed value inside a row value".into()),
            Stored::Null | Stored::Missing => values.push(None),
        }
    }
    if end != c.data.len() {
        return Err("the row value does not end where its last attribute does".into());
    }
    Ok(values)
}

/// An array datum's element type and its elements' bytes (None: NULL),
/// for elements laid out as `elem` (arrays.h: ndim, dataoffset, elemtype,
/// dims, lbounds, null bitmap, data from MAXALIGN'd offset).
pub fn array_elements<'a>(v: &'a [u8], elem: AttLayout) -> Result<(u32, Vec<Option<&'a [u8]>>), String> {
    let body = varlena_payload(v)?;
    // (offsets counted from the start of the varlena with a 4-byte header)
    let whole_at = |off: usize| off.checked_sub(4).ok_or_else(|| "bad array offset".to_string());
    let ndim = u32_at(body, 0)? as usize;
    let dataoffset = u32_at(body, 4)? as usize;
    let elemtype = u32_at(body, 8)?;
    if ndim > 6 {
        return Err("too many dimensions".into());
    }
    let mut nitems: usize = if ndim == 0 { 0 } else { 1 };
    for d in 0..ndim {
        nitems = nitems.checked_mul(u32_at(body, 12 + 4 * d)? as usize).ok_or("too many items")?;
    }
    let bitmap_at = 12 + 8 * ndim;
    let (nulls, data_at) = if dataoffset != 0 {
        let bits = body.get(bitmap_at..bitmap_at + nitems.div_ceil(8)).ok_or("truncated")?;
        (Some(bits), whole_at(dataoffset)?)
    } else {
        (None, whole_at((16 + 8 * ndim).next_multiple_of(8))?)
    };
    let data = body.get(data_at..).ok_or("truncated")?;
    let mut out = Vec::with_capacity(nitems.min(1 << 16));
    let mut off = 0;
    for i in 0..nitems {
        if nulls.is_some_and(|b| b[i / 8] & (1 << (i % 8)) == 0) {
            out.push(None);
            continue;
        }
        let start = align(off, elem.align)?;
        let len = match elem.attlen {
            n if n > 0 => n as usize,
            -1 => {
                let (len, toasted) = varlena_size(data.get(start..).ok_or("truncated")?)?;
                if toasted {
                    return Err("a compressed array element".into());
                }
                len
            }
            _ => data.get(start..).and_then(|r| r.iter().position(|b| *b == 0)).ok_or("truncated")? + 1,
        };
        let end = within(data, start, len)?;
        out.push(Some(&data[start..end]));
        off = end;
    }
    if off.next_multiple_of(8) < data.len() {
        return Err("the array has bytes past its last element".into());
    }
    Ok((elemtype, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INT4: AttLayout = AttLayout { attlen: 4, align: b'i' };
    const INT8: AttLayout = AttLayout { attlen: 8, align: b'd' };
    const BOOL: AttLayout = AttLayout { attlen: 1, align: b'c' };
    const TEXT: AttLayout = AttLayout { attlen: -1, align: b'i' };
    const NAME: AttLayout = AttLayout { attlen: 64, align: b'c' };
    const CSTRING: AttLayout = AttLayout { attlen: -2, align: b'c' };

    fn run(layout: &[AttLayout], natts: usize, nulls: Option<&[u8]>, data: &[u8]) -> Result<Vec<Stored>, String> {
        let mut out = Vec::new();
        deform(layout, natts, nulls, data, &mut out).map(|_| out)
    }

    fn inline(start: usize, end: usize) -> Stored {
        Stored::Inline { start, end }
    }

    #[test]
    fn fixed_length_values_are_aligned() {
        // bool at 0, int8 at 8 (7 pad bytes), int4 at 16
        let mut data = vec![1u8, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(&42i64.to_le_bytes());
        data.extend_from_slice(&7i32.to_le_bytes());
        assert_eq!(run(&[BOOL, INT8, INT4], 3, None, &data).unwrap(), vec![inline(0, 1), inline(8, 16), inline(16, 20)]);
    }

    #[test]
    fn short_varlenas_are_not_aligned_and_long_ones_are() {
        // bool, then a 1-byte-header text "a" right after it (header 0x05: 2 bytes),
        // then a 4-byte-header text aligned to 4 after a pad byte
        let mut data = vec![1u8, 0x05, b'a', 0];
        let long = vec![b'x'; 200];
        data.extend_from_slice(&(((4 + long.len()) as u32) << 2).to_le_bytes());
        data.extend_from_slice(&long);
        let got = run(&[BOOL, TEXT, TEXT], 3, None, &data).unwrap();
        assert_eq!(got, vec![inline(0, 1), inline(1, 3), inline(4, 208)]);
        // a 4-byte header whose first byte is zero (a length that is a multiple of 64)
        let mut data = (256u32 << 2).to_le_bytes().to_vec();
        data.extend_from_slice(&[b'y'; 252]);
        assert_eq!(data[0], 0);
        assert_eq!(run(&[TEXT], 1, None, &data).unwrap(), vec![inline(0, 256)]);
    }

    #[test]
    fn nulls_take_no_space() {
        // int4 NULL, int8, NULL text, bool: bitmap 0b1010
        let mut data = 5i64.to_le_bytes().to_vec();
        data.push(1);
        let got = run(&[INT4, INT8, TEXT, BOOL], 4, Some(&[0b1010]), &data).unwrap();
        assert_eq!(got, vec![Stored::Null, inline(0, 8), Stored::Null, inline(8, 9)]);
    }

    #[test]
    fn attributes_beyond_the_tuple_are_missing() {
        let data = 3i32.to_le_bytes();
        assert_eq!(run(&[INT4, TEXT, INT8], 1, None, &data).unwrap(), vec![inline(0, 4), Stored::Missing, Stored::Missing]);
    }

    #[test]
    fn compressed_and_external_varlenas_are_marked() {
        // a compressed 4-byte-header value (low bits 10) of 12 bytes
        let mut data = ((12u32 << 2) | 0x02).to_le_bytes().to_vec();
        data.extend_from_slice(&[9; 8]);
        // an on-disk TOAST pointer: 0x01, tag 18, 16 bytes of varatt_external
        data.extend_from_slice(&[0x01, 18]);
        data.extend_from_slice(&[0; 16]);
        let got = run(&[TEXT, TEXT], 2, None, &data).unwrap();
        assert_eq!(got, vec![Stored::Toasted { start: 0, end: 12 }, Stored::Toasted { start: 12, end: 30 }]);
    }

    #[test]
    fn fixed_by_reference_and_cstring_values() {
        let mut data = vec![b'n'; 64];
        data.extend_from_slice(b"abc\0");
        assert_eq!(run(&[NAME, CSTRING], 2, None, &data).unwrap(), vec![inline(0, 64), inline(64, 68)]);
    }

    #[test]
    fn damaged_tuples_give_errors_not_reads_out_of_bounds() {
        assert!(run(&[INT8], 1, None, &[0; 7]).is_err());
        // a varlena header claiming more than there is
        assert!(run(&[TEXT], 1, None, &(400u32 << 2).to_le_bytes()).is_err());
        assert!(run(&[TEXT], 1, None, &[0x7f, 1]).is_err());
        assert!(run(&[CSTRING], 1, None, b"abc").is_err());
        assert!(run(&[TEXT], 1, None, &[0x01, 99]).is_err());
        assert!(run(&[INT4, INT4], 2, Some(&[]), &[0; 8]).is_err());
        assert!(run(&[INT4], 1, None, &[]).is_err());
    }
}
