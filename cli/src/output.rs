//! Rendering: aligned plain-text tables for people (no colour, no escape codes),
//! JSON for scripts.

use comfy_table::{ContentLineStyle, LineStyle, Table, TableStyle};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// psql-like: a header, a dashed line, then the rows; columns separated by '|'.
const STYLE: TableStyle = TableStyle::new()
    .header_lines(ContentLineStyle::none().junction('|'))
    .header_separator(LineStyle::none().fill('-').junction('+'))
    .content_lines(ContentLineStyle::none().junction('|'));

/// `2026-11-24T13:31:18.076542+00:00` (how to_json writes a timestamptz) →
/// `2026-11-24 13:31:18+00:00` for people; anything else unchanged.
pub fn pretty_time(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 25 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && digits(5..7) && digits(8..10) && digits(11..13) && digits(14..16) && digits(17..19)) {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let rb = rest.as_bytes();
    if rb.len() == 6 && (rb[0] == b'+' || rb[0] == b'-') && rb[3] == b':' {
        Some(format!("{} {}{}", &s[..10], &s[11..19], rest))
    } else {
        None
    }
}

/// A JSON value as one table cell.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => pretty_time(s).unwrap_or_else(|| s.clone()),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// The table's text without the padding comfy-table leaves at line ends.
fn render(t: &Table) -> String {
    t.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_style(STYLE);
    t
}

/// Rows (JSON objects) as a table; the columns are the keys of the rows, in order.
pub fn table_of(rows: &[Value]) -> String {
    let mut cols: Vec<String> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    if cols.is_empty() {
        // rows of scalars
        let mut t = new_table();
        t.set_header(vec!["value"]);
        for r in rows {
            t.add_row(vec![cell(r)]);
        }
        return render(&t);
    }
    let mut t = new_table();
    t.set_header(cols.clone());
    for r in rows {
        let row: Vec<String> = cols.iter().map(|c| r.get(c).map(cell).unwrap_or_default()).collect();
        t.add_row(row);
    }
    render(&t)
}

/// One object as a two-column key/value table.
pub fn record_of(m: &Map<String, Value>) -> String {
    let mut t = new_table();
    t.set_header(vec!["field", "value"]);
    for (k, v) in m {
        t.add_row(vec![k.clone(), cell(v)]);
    }
    render(&t)
}

pub struct Out {
    pub format: Format,
}

impl Out {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// A list of rows.
    pub fn list(&self, rows: &[Value], what: &str) {
        if self.json() {
            say!("{}", serde_json::to_string_pretty(&Value::Array(rows.to_vec())).unwrap());
        } else if rows.is_empty() {
            say!("(no {what})");
        } else {
            say!("{}", table_of(rows));
            say!("({} {})", rows.len(), if rows.len() == 1 { "row" } else { "rows" });
        }
    }

    /// One record.
    pub fn record(&self, v: &Value) {
        if self.json() {
            say!("{}", serde_json::to_string_pretty(v).unwrap());
            return;
        }
        match v {
            Value::Object(m) => say!("{}", record_of(m)),
            Value::Array(a) => self.list(a, "rows"),
            other => say!("{}", cell(other)),
        }
    }

    /// A result object for scripts, or a sentence for people.
    pub fn done(&self, v: Value, sentence: &str) {
        if self.json() {
            say!("{}", serde_json::to_string_pretty(&v).unwrap());
        } else {
            say!("{sentence}");
        }
    }

    /// A nested JSON document (metrics): each top-level key as its own section.
    pub fn sections(&self, v: &Value) {
        if self.json() {
            say!("{}", serde_json::to_string_pretty(v).unwrap());
            return;
        }
        let Value::Object(m) = v else {
            say!("{}", cell(v));
            return;
        };
        let mut first = true;
        for (k, val) in m {
            if !first {
                say!();
            }
            first = false;
            say!("{k}");
            match val {
                Value::Array(a) if a.is_empty() => say!("(none)"),
                Value::Array(a) => say!("{}", table_of(a)),
                Value::Object(o) => say!("{}", record_of(o)),
                other => say!("{}", cell(other)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_keeps_column_order_and_aligns() {
        let rows = vec![json!({"zeta": "a", "alpha": 1, "n": null}), json!({"zeta": "longer", "alpha": 22, "n": {"x": 1}})];
        let t = table_of(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].find("zeta").unwrap() < lines[0].find("alpha").unwrap());
        assert!(lines[1].starts_with('-') || lines[1].trim_start().starts_with('-'));
        assert!(lines[3].contains("{\"x\":1}"));
        // aligned: every separator at the same offset
        let pos: Vec<usize> = lines.iter().filter(|l| l.contains('|')).map(|l| l.find('|').unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] == w[1]), "{t}");
        assert!(!t.contains('\u{1b}'), "no escape codes");
    }

    #[test]
    fn cells() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!([1, 2])), "[1,2]");
        assert_eq!(cell(&json!("2026-11-24T13:31:18.076542+00:00")), "2026-11-24 13:31:18+00:00");
        assert_eq!(cell(&json!("2026-11-24T13:31:18-05:30")), "2026-11-24 13:31:18-05:30");
        assert_eq!(cell(&json!("2026-11-24T13:31:18.5Z-not")), "2026-11-24T13:31:18.5Z-not");
        assert_eq!(cell(&json!("hello")), "hello");
    }
}
