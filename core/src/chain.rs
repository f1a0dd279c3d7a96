//! The audit log's hash chain: a canonical, unambiguous serialization of one
//! audit row and `row_hash = sha256(prev_hash || canonical(row))`.
//!
//! The serialization is independent of any session setting (no timestamps or
//! numbers rendered through DateStyle/TimeZone/locale): integers are 8-byte
//! big-endian, times are microseconds since the PostgreSQL epoch, every text
//! field is length-prefixed with a NULL marker, so no two different rows can
//! serialize to the same bytes. The trigger that appends a row and the
//! verifier both build a `ChainRecord` the same way and call `row_hash`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the very first row (and of the first row after a purge
/// when no checkpoint exists).
pub const GENESIS: [u8; 32] = [0u8; 32];

const VERSION_TAG: &[u8] = b"fluxbase-audit-v1\0";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChainRecord {
    pub id: i64,
    /// microseconds since 2000-01-01 UTC (PostgreSQL's TimestampTz)
    pub occurred_at_us: i64,
    pub actor_id: Option<[u8; 16]>,
    pub actor: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `details` as `jsonb_out` writes it (see `jsonb_text`)
    pub details: String,
    pub ip: Option<String>,
    pub success: bool,
    pub db_user: String,
    pub txid: i64,
    pub impersonation_session_id: Option<[u8; 16]>,
    /// `row_data`: a row-change entry's binary row image (see row_image.rs).
    /// Hashed only when present, so entries written before the column
    /// existed keep their hashes.
    pub row_data: Option<Vec<u8>>,
}

fn put_bytes(out: &mut impl FnMut(&[u8]), v: Option<&[u8]>) {
    match v {
        None => out(&[0]),
        Some(b) => {
            out(&[1]);
            out(&(b.len() as u64).to_be_bytes());
            out(b);
        }
    }
}

impl ChainRecord {
    /// The bytes hashed for this row, whole (the tests pin `row_hash` to
    /// them; the append and the verifier hash them piece by piece).
    #[cfg(test)]
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.details.len() + self.row_data.as_ref().map_or(0, Vec::len));
        self.write_canonical(&mut |b| out.extend_from_slice(b));
        out
    }

    /// `canonical`, piece by piece (hashed as it goes: a row image can be
    /// many kB, and copying it only to hash it is waste on the commit path).
    fn write_canonical(&self, out: &mut impl FnMut(&[u8])) {
        out(VERSION_TAG);
        out(&self.id.to_be_bytes());
        out(&self.occurred_at_us.to_be_bytes());
        put_bytes(out, self.actor_id.as_ref().map(|b| &b[..]));
        put_bytes(out, Some(self.actor.as_bytes()));
        put_bytes(out, Some(self.action.as_bytes()));
        put_bytes(out, self.target_type.as_deref().map(str::as_bytes));
        put_bytes(out, self.target_id.as_deref().map(str::as_bytes));
        put_bytes(out, Some(self.details.as_bytes()));
        put_bytes(out, self.ip.as_deref().map(str::as_bytes));
        out(&[self.success as u8]);
        put_bytes(out, Some(self.db_user.as_bytes()));
        out(&self.txid.to_be_bytes());
        put_bytes(out, self.impersonation_session_id.as_ref().map(|b| &b[..]));
        if let Some(data) = &self.row_data {
            put_bytes(out, Some(data));
        }
    }
}

/// sha256(prev_hash || canonical(row))
pub fn row_hash(prev_hash: &[u8], rec: &ChainRecord) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    rec.write_canonical(&mut |b| h.update(b));
    h.finalize().into()
}

/// `v` as PostgreSQL's `jsonb_out` writes it, which is the text the
/// verifier reads back and hashes: object keys ordered by length, then
/// bytewise (jsonb's own order), `", "` and `": "` between items, strings
/// escaped as `escape_json` does. Writing it here saves the append a
/// `jsonb_out` call per entry. `None` for a value whose text only Postgres
/// can give reliably (a non-integer number, as `numeric_out` prints it) or
/// that jsonb refuses (a NUL character): those take the round trip.
pub fn jsonb_text(v: &Value) -> Option<String> {
    fn string(s: &str, out: &mut String) -> Option<()> {
        use std::fmt::Write;
        out.push('"');
        for c in s.chars() {
            match c {
                '\0' => return None,
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).ok()?,
                c => out.push(c),
            }
        }
        out.push('"');
        Some(())
    }
    fn value(v: &Value, out: &mut String) -> Option<()> {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
            Value::Number(_) => return None,
            Value::String(s) => string(s, out)?,
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    value(item, out)?;
                }
                out.push(']');
            }
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes())));
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    string(k, out)?;
                    out.push_str(": ");
                    value(&m[k], out)?;
                }
                out.push('}');
            }
        }
        Some(())
    }
    let mut out = String::with_capacity(128);
    value(v, &mut out)?;
    Some(out)
}

/// One stored row as the verifier reads it back.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub record: ChainRecord,
    pub prev_hash: Option<Vec<u8>>,
    pub row_hash: Option<Vec<u8>>,
}

/// Walks the chain in id order; `check` returns false at the first row that
/// does not follow from the one before it (edited, removed before it, or
/// inserted with a forged or stale hash).
pub struct Verifier {
    pub expected_prev: Vec<u8>,
    pub expected_id: i64,
}

impl Verifier {
    /// Start after a checkpoint (`last_id`, `last_hash`), or at the beginning.
    pub fn new(checkpoint: Option<(i64, Vec<u8>)>) -> Self {
        match checkpoint {
            Some((id, hash)) => Verifier { expected_prev: hash, expected_id: id + 1 },
            None => Verifier { expected_prev: GENESIS.to_vec(), expected_id: 1 },
        }
    }

    pub fn check(&mut self, row: &StoredRow) -> bool {
        if row.record.id != self.expected_id {
            return false;
        }
        let (Some(prev), Some(stored)) = (&row.prev_hash, &row.row_hash) else {
            return false;
        };
        if prev[..] != self.expected_prev[..] {
            return false;
        }
        let computed = row_hash(prev, &row.record);
        if computed[..] != stored[..] {
            return false;
        }
        self.expected_prev = stored.clone();
        self.expected_id += 1;
        true
    }
}

/// The audit details of one statement's row changes: for INSERT the new rows,
/// for DELETE the old rows, for UPDATE (rows paired in order) only the columns
/// that changed, beside the primary key. `pk` holds the primary key columns
/// (empty when the table has none).
/// Columns named in `redact` keep their key (so a change to them is on
/// record) but their values are replaced by "[redacted]".
pub fn row_change_details(
    op: &str,
    table: &str,
    pk: &[String],
    redact: &[String],
    old: &[Value],
    new: &[Value],
) -> Value {
    fn mask(v: &mut Value, redact: &[String]) {
        if let Value::Object(m) = v {
            for (k, val) in m.iter_mut() {
                if redact.iter().any(|r| r == k) {
                    *val = Value::String("[redacted]".into());
                }
            }
        }
    }
    fn pick(row: &Value, cols: &[String]) -> Value {
        let mut m = Map::new();
        if let Value::Object(o) = row {
            for c in cols {
                if let Some(v) = o.get(c) {
                    m.insert(c.clone(), v.clone());
                }
            }
        }
        Value::Object(m)
    }
    let mut rows = Vec::new();
    match op {
        "INSERT" => {
            for n in new {
                rows.push(serde_json::json!({"pk": pick(n, pk), "new": n}));
            }
        }
        "DELETE" => {
            for o in old {
                rows.push(serde_json::json!({"pk": pick(o, pk), "old": o}));
            }
        }
        _ => {
            for (o, n) in old.iter().zip(new.iter()) {
                let mut oc = Map::new();
                let mut nc = Map::new();
                if let (Value::Object(om), Value::Object(nm)) = (o, n) {
                    for (k, nv) in nm {
                        let ov = om.get(k).unwrap_or(&Value::Null);
                        if ov != nv {
                            oc.insert(k.clone(), ov.clone());
                            nc.insert(k.clone(), nv.clone());
                        }
                    }
                }
                let mut entry = serde_json::json!({"pk": pick(o, pk), "old": oc, "new": nc});
                let new_pk = pick(n, pk);
                if new_pk != entry["pk"] {
                    entry["new_pk"] = new_pk;
                }
                rows.push(entry);
            }
        }
    }
    for r in rows.iter_mut() {
        for key in ["old", "new", "pk", "new_pk"] {
            if let Some(v) = r.get_mut(key) {
                mask(v, redact);
            }
        }
    }
    serde_json::json!({
        "table": table,
        "op": op,
        "pk_columns": pk,
        "count": rows.len(),
        "rows": rows,
    })
}

/// Columns of the extension's own tables whose values never go into the
/// audit log (password hashes, token digests, 2FA secrets and codes).
pub fn is_secret_column(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    if n.ends_with("_enabled") || n.ends_with("_at") {
        return false;
    }
    ["password", "secret", "digest", "hash", "token", "totp", "backup_code", "otp"]
        .iter()
        .any(|w| n.contains(w))
}

/// A queued entry as bytes, for a transaction that queues more than fits in
/// memory (src/audit_append.rs spills them to a temporary file). `tag` is
/// kept alongside (the savepoint the entry was queued in). The id and the
/// hashes are not part of it: they are given at the append.
pub fn spill_encode(tag: u32, r: &ChainRecord) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
        match b {
            None => out.push(0),
            Some(b) => {
                out.push(1);
                out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let mut out = Vec::with_capacity(128 + r.details.len() + r.row_data.as_ref().map_or(0, Vec::len));
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&r.occurred_at_us.to_le_bytes());
    bytes(&mut out, r.actor_id.as_ref().map(|u| &u[..]));
    bytes(&mut out, Some(r.actor.as_bytes()));
    bytes(&mut out, Some(r.action.as_bytes()));
    bytes(&mut out, r.target_type.as_deref().map(str::as_bytes));
    bytes(&mut out, r.target_id.as_deref().map(str::as_bytes));
    bytes(&mut out, Some(r.details.as_bytes()));
    bytes(&mut out, r.ip.as_deref().map(str::as_bytes));
    out.push(r.success as u8);
    bytes(&mut out, Some(r.db_user.as_bytes()));
    out.extend_from_slice(&r.txid.to_le_bytes());
    bytes(&mut out, r.impersonation_session_id.as_ref().map(|u| &u[..]));
    bytes(&mut out, r.row_data.as_deref());
    out
}

/// The inverse of `spill_encode`: (tag, record), or None for bytes it did not write.
pub fn spill_decode(data: &[u8]) -> Option<(u32, ChainRecord)> {
    struct R<'a>(&'a [u8]);
    impl<'a> R<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Some(a)
        }
        fn u8(&mut self) -> Option<u8> {
            self.take(1).map(|b| b[0])
        }
        fn i64(&mut self) -> Option<i64> {
            self.take(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        }
        fn bytes(&mut self) -> Option<Option<Vec<u8>>> {
            match self.u8()? {
                0 => Some(None),
                1 => {
                    let n = usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()?;
                    Some(Some(self.take(n)?.to_vec()))
                }
                _ => None,
            }
        }
        fn text(&mut self) -> Option<Option<String>> {
            match self.bytes()? {
                None => Some(None),
                Some(b) => String::from_utf8(b).ok().map(Some),
            }
        }
        fn uuid(&mut self) -> Option<Option<[u8; 16]>> {
            match self.bytes()? {
                None => Some(None),
                Some(b) => b.try_into().ok().map(Some),
            }
        }
    }
    let mut r = R(data);
    let tag = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
    let occurred_at_us = r.i64()?;
    let actor_id = r.uuid()?;
    let actor = r.text()??;
    let action = r.text()??;
    let target_type = r.text()?;
    let target_id = r.text()?;
    let details = r.text()??;
    let ip = r.text()?;
    let success = r.u8()? != 0;
    let db_user = r.text()??;
    let txid = r.i64()?;
    let impersonation_session_id = r.uuid()?;
    let row_data = r.bytes()?;
    if !r.0.is_empty() {
        return None;
    }
    let rec = ChainRecord {
        id: 0,
        occurred_at_us,
        actor_id,
        actor,
        action,
        target_type,
        target_id,
        details,
        ip,
        success,
        db_user,
        txid,
        impersonation_session_id,
        row_data,
    };
    Some((tag, rec))
}

#[cfg(test)]
mod tests {
    #[test]
    fn spilled_entries_come_back_as_they_went() {
        let mut r = rec(0);
        r.actor_id = Some([7; 16]);
        r.target_type = Some("table".into());
        r.target_id = None;
        r.ip = Some("10.0.0.1".into());
        r.impersonation_session_id = None;
        r.row_data = Some(vec![0, 1, 2, 255]);
        let bytes = spill_encode(42, &r);
        assert_eq!(spill_decode(&bytes), Some((42, r.clone())));
        r.row_data = None;
        assert_eq!(spill_decode(&spill_encode(1, &r)), Some((1, r)));
        assert_eq!(spill_decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(spill_decode(&[bytes.clone(), vec![0]].concat()), None);
    }

    use super::*;
    use serde_json::json;

    fn rec(id: i64) -> ChainRecord {
        ChainRecord {
            id,
            occurred_at_us: 1_000_000 * id,
            actor: "db:postgres".into(),
            action: "test.action".into(),
            target_type: Some("t".into()),
            target_id: Some(id.to_string()),
            details: jsonb_text(&json!({"b": 1, "a": [1, {"z": 1, "y": 2}]})).unwrap(),
            success: true,
            db_user: "postgres".into(),
            txid: 42,
            ..Default::default()
        }
    }

    fn chain(n: i64) -> Vec<StoredRow> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|id| {
                let r = rec(id);
                let h = row_hash(&prev, &r);
                let row = StoredRow { record: r, prev_hash: Some(prev.clone()), row_hash: Some(h.to_vec()) };
                prev = h.to_vec();
                row
            })
            .collect()
    }

    fn first_bad(rows: &[StoredRow], cp: Option<(i64, Vec<u8>)>) -> Option<i64> {
        let mut v = Verifier::new(cp);
        rows.iter().find(|r| !v.check(r)).map(|r| r.record.id)
    }

    #[test]
    fn jsonb_text_is_what_jsonb_out_writes() {
        // The expected text is PostgreSQL 15's jsonb_out of the same value.
        let v = json!({"table": "a\"b\\c\nd\u{1}e\u{1f}\u{e9}\u{7f}/", "op": "UPDATE", "count": 100,
                       "pk_columns": ["id", "x y"], "current_user": "postgres", "b": {}, "a": [], "n": null,
                       "t": true, "neg": -5, "big": 18446744073709551615u64, "ab": {"zz": 1, "y": [1, [2]]}});
        assert_eq!(
            jsonb_text(&v).unwrap(),
            "{\"a\": [], \"b\": {}, \"n\": null, \"t\": true, \"ab\": {\"y\": [1, [2]], \"zz\": 1}, \"op\": \"UPDATE\", \
             \"big\": 18446744073709551615, \"neg\": -5, \"count\": 100, \"table\": \"a\\\"b\\\\c\\nd\\u0001e\\u001f\u{e9}\u{7f}/\", \
             \"pk_columns\": [\"id\", \"x y\"], \"current_user\": \"postgres\"}"
        );
        assert_eq!(jsonb_text(&json!({})).unwrap(), "{}");
        assert_eq!(jsonb_text(&json!("\u{8}\u{c}\r\t")).unwrap(), r#""\b\f\r\t""#);
        // left to Postgres: non-integer numbers (numeric_out) and NUL (refused by jsonb)
        assert_eq!(jsonb_text(&json!({"x": 1.5})), None);
        assert_eq!(jsonb_text(&json!(["a\u{0}b"])), None);
    }

    #[test]
    fn null_and_empty_differ() {
        let mut a = rec(1);
        let mut b = rec(1);
        a.target_id = None;
        b.target_id = Some(String::new());
        assert_ne!(a.canonical(), b.canonical());
        // moving bytes between adjacent fields changes the serialization
        a.target_id = Some("ab".into());
        a.target_type = Some("c".into());
        b.target_id = Some("b".into());
        b.target_type = Some("ca".into());
        assert_ne!(a.canonical(), b.canonical());
    }

    #[test]
    fn hash_depends_on_prev_and_every_field() {
        let mut r = rec(1);
        r.actor_id = Some([3; 16]);
        r.ip = Some("10.0.0.1".into());
        r.impersonation_session_id = Some([4; 16]);
        r.row_data = Some(vec![1, 2, 3]);
        let h = row_hash(&GENESIS, &r);
        assert_ne!(h, row_hash(&[1u8; 32], &r));
        assert_eq!(h, row_hash(&GENESIS, &r.clone()));
        // Every field, by name: a field added to ChainRecord fails to compile
        // here until it gets its own change below.
        let ChainRecord {
            id: _,
            occurred_at_us: _,
            actor_id: _,
            actor: _,
            action: _,
            target_type: _,
            target_id: _,
            details: _,
            ip: _,
            success: _,
            db_user: _,
            txid: _,
            impersonation_session_id: _,
            row_data: _,
        } = &r;
        type Change = (&'static str, fn(&mut ChainRecord));
        let changes: &[Change] = &[
            ("id", |r| r.id += 1),
            ("occurred_at_us", |r| r.occurred_at_us += 1),
            ("actor_id", |r| r.actor_id = Some([5; 16])),
            ("actor_id absent", |r| r.actor_id = None),
            ("actor", |r| r.actor.push('x')),
            ("action", |r| r.action.push('x')),
            ("target_type", |r| r.target_type = Some("u".into())),
            ("target_type absent", |r| r.target_type = None),
            ("target_id", |r| r.target_id = Some("2".into())),
            ("target_id absent", |r| r.target_id = None),
            ("details", |r| r.details = jsonb_text(&json!({"b": 2})).unwrap()),
            ("ip", |r| r.ip = Some("10.0.0.2".into())),
            ("ip absent", |r| r.ip = None),
            ("success", |r| r.success = !r.success),
            ("db_user", |r| r.db_user.push('x')),
            ("txid", |r| r.txid += 1),
            ("impersonation_session_id", |r| r.impersonation_session_id = Some([6; 16])),
            ("impersonation_session_id absent", |r| r.impersonation_session_id = None),
            ("row_data", |r| r.row_data = Some(vec![1, 2, 4])),
            ("row_data absent", |r| r.row_data = None),
        ];
        for (name, change) in changes {
            let mut m = r.clone();
            change(&mut m);
            assert_ne!(m, r, "{name}: the change changed nothing");
            assert_ne!(row_hash(&GENESIS, &m), h, "{name} is not in the hash");
        }
    }

    #[test]
    fn streamed_hash_is_the_hash_of_the_canonical_bytes() {
        // row_hash hashes piece by piece; what it hashes must stay exactly
        // prev_hash || canonical(row), or every stored chain stops verifying.
        for data in [None, Some(vec![7u8; 5000])] {
            let mut r = rec(3);
            r.row_data = data;
            let mut whole = GENESIS.to_vec();
            whole.extend_from_slice(&r.canonical());
            let expected: [u8; 32] = Sha256::digest(&whole).into();
            assert_eq!(row_hash(&GENESIS, &r), expected);
        }
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(first_bad(&chain(10), None), None);
    }

    #[test]
    fn edit_is_found_at_the_edited_row() {
        let mut c = chain(10);
        c[4].record.actor = "someone else".into();
        assert_eq!(first_bad(&c, None), Some(5));
    }

    #[test]
    fn removal_is_found_at_the_next_row() {
        let mut c = chain(10);
        c.remove(6); // id 7
        assert_eq!(first_bad(&c, None), Some(8));
    }

    #[test]
    fn insertion_with_recomputed_hash_is_found() {
        let mut c = chain(5);
        // forge a row 4 that hashes correctly over row 3 ...
        let mut forged = rec(4);
        forged.action = "forged".into();
        let prev = c[2].row_hash.clone().unwrap();
        let h = row_hash(&prev, &forged);
        c[3] = StoredRow { record: forged, prev_hash: Some(prev), row_hash: Some(h.to_vec()) };
        // ... then row 5 no longer follows
        assert_eq!(first_bad(&c, None), Some(5));
    }

    #[test]
    fn checkpoint_continues_the_chain() {
        let c = chain(10);
        let cp = (5, c[4].row_hash.clone().unwrap());
        assert_eq!(first_bad(&c[5..], Some(cp.clone())), None);
        assert_eq!(first_bad(&c[6..], Some(cp)), Some(7));
    }

    #[test]
    fn update_details_keep_only_changed_columns() {
        let pk = vec!["a".to_string(), "b".to_string()];
        let old = vec![json!({"a": 1, "b": 2, "x": "same", "y": 1})];
        let new = vec![json!({"a": 1, "b": 2, "x": "same", "y": 2})];
        let d = row_change_details("UPDATE", "public.t", &pk, &[], &old, &new);
        assert_eq!(d["rows"][0]["pk"], json!({"a": 1, "b": 2}));
        assert_eq!(d["rows"][0]["old"], json!({"y": 1}));
        assert_eq!(d["rows"][0]["new"], json!({"y": 2}));
        assert_eq!(d["count"], json!(1));
        let ins = row_change_details("INSERT", "public.t", &pk, &[], &[], &new);
        assert_eq!(ins["rows"][0]["new"]["x"], json!("same"));
        let red = row_change_details("UPDATE", "public.t", &pk, &["y".to_string()], &old, &new);
        assert_eq!(red["rows"][0]["old"], json!({"y": "[redacted]"}));
        assert_eq!(red["rows"][0]["new"], json!({"y": "[redacted]"}));
    }

    #[test]
    fn secret_columns() {
        assert!(is_secret_column("password_hash"));
        assert!(is_secret_column("token_digest"));
        assert!(is_secret_column("totp_secret"));
        assert!(!is_secret_column("totp_enabled"));
        assert!(!is_secret_column("email"));
        assert!(!is_secret_column("password_changed_at"));
    }
}
