//! Rendering. For people (`-o table`, the default): a few scannable columns per
//! list, times relative or local, long values shortened with `…` so that a row
//! fits the terminal (never when stdout is not a terminal); `get` as a vertical
//! key/value view. `-o wide`: every column, nothing shortened. `-o json` /
//! `-o yaml` for scripts. `--no-headers`, and `-q` (ids only, one a line).
//! No colour or escape codes.

use std::io::IsTerminal;

use serde_json::{Map, Value};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// a few columns that fit the terminal
    Table,
    /// every column, nothing shortened
    Wide,
    Json,
    Yaml,
    /// ArcSight CEF lines (`audit tail` only)
    Cef,
}

// ------------------------------------------------------------------ columns

/// How a column's values are shown in the default table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// an id: kept whole unless nothing else fits
    Id,
    /// text (or JSON): shortened first
    Text,
    /// a timestamp: relative when recent, else local; `none` when null
    Time { none: &'static str },
    /// a boolean as two words
    Flag { yes: &'static str, no: &'static str },
    /// a byte count, human-readable
    Bytes,
}

#[derive(Clone, Copy, Debug)]
pub struct Col {
    pub header: &'static str,
    pub key: &'static str,
    pub kind: Kind,
}

const fn col(header: &'static str, key: &'static str, kind: Kind) -> Col {
    Col { header, key, kind }
}

const ID: Kind = Kind::Id;
const TEXT: Kind = Kind::Text;
const TIME: Kind = Kind::Time { none: "" };
const NEVER: Kind = Kind::Time { none: "never" };
const YES_NO: Kind = Kind::Flag { yes: "yes", no: "no" };

/// The columns a person scans, per list command (`-o wide` shows every column).
pub mod views {
    use super::*;

    pub const APP_USERS: &[Col] = &[
        col("ID", "id", ID),
        col("EMAIL", "email", TEXT),
        col("PHONE", "phone", TEXT),
        col("ROLE", "role", TEXT),
        col("CONFIRMED", "confirmed_at", Kind::Time { none: "no" }),
        col("LAST SIGN-IN", "last_sign_in_at", NEVER),
    ];
    pub const ADMINS: &[Col] = &[
        col("ID", "id", ID),
        col("EMAIL", "email", TEXT),
        col("NAME", "full_name", TEXT),
        col("ROLE", "role", TEXT),
        col("2FA", "totp_enabled", Kind::Flag { yes: "on", no: "off" }),
        col("LAST LOGIN", "last_login_at", NEVER),
    ];
    pub const SESSIONS: &[Col] = &[
        col("ID", "id", ID),
        col("EMAIL", "email", TEXT),
        col("IP", "ip", TEXT),
        col("LAST SEEN", "last_seen_at", TIME),
        col("EXPIRES", "expires_at", TIME),
        col("CURRENT", "is_current", Kind::Flag { yes: "*", no: "" }),
    ];
    pub const PASSKEYS: &[Col] = &[
        col("ID", "id", ID),
        col("EMAIL", "email", TEXT),
        col("NAME", "name", TEXT),
        col("CREATED", "created_at", TIME),
        col("LAST USED", "last_used_at", NEVER),
    ];
    pub const INVITATIONS: &[Col] = &[
        col("ID", "id", ID),
        col("EMAIL", "email", TEXT),
        col("ROLE", "role", TEXT),
        col("STATUS", "status", TEXT),
        col("INVITED BY", "invited_by_label", TEXT),
        col("EXPIRES", "expires_at", TIME),
    ];
    pub const TABLES: &[Col] = &[
        col("SCHEMA", "schema", TEXT),
        col("NAME", "name", TEXT),
        col("KIND", "kind", TEXT),
        col("ROWS", "row_estimate", TEXT),
        col("SIZE", "total_bytes", Kind::Bytes),
        col("RLS", "rls_enabled", Kind::Flag { yes: "on", no: "off" }),
        col("COMMENT", "comment", TEXT),
    ];
    pub const AUDIT: &[Col] = &[
        col("ID", "id", ID),
        col("WHEN", "occurred_at", TIME),
        col("ACTOR", "actor", TEXT),
        col("ACTION", "action", TEXT),
        col("TARGET", "target_id", TEXT),
        col("OK", "success", YES_NO),
    ];
}

// ------------------------------------------------------------------ values

/// `2026-11-24T13:31:18.076542+00:00` (how to_json writes a timestamptz) →
/// seconds since the epoch; None for anything else.
pub fn parse_time(s: &str) -> Option<i64> {
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
    if !(rb.len() == 6 && (rb[0] == b'+' || rb[0] == b'-') && rb[3] == b':' && rest[1..3].bytes().chain(rest[4..6].bytes()).all(|c| c.is_ascii_digit())) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap_or(0);
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    let offset = rest[1..3].parse::<i64>().unwrap_or(0) * 3600 + rest[4..6].parse::<i64>().unwrap_or(0) * 60;
    let offset = if rb[0] == b'-' { -offset } else { offset };
    Some(days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19) - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

extern "C" {
    /// POSIX; reads TZ (the libc crate does not declare it)
    fn tzset();
}

/// The local zone's offset from UTC at `epoch`, in seconds (TZ, /etc/localtime).
fn local_offset(epoch: i64) -> i64 {
    // SAFETY: localtime_r writes only into `tm`; tzset reads TZ.
    unsafe {
        let t: libc::time_t = epoch as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        tzset();
        if libc::localtime_r(&t, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff as i64
        }
    }
}

/// `epoch` in the local zone: `2026-12-01 22:16` (with `:ss` when `seconds`).
pub fn local_time(epoch: i64, seconds: bool) -> String {
    let t = epoch + local_offset(epoch);
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    if seconds {
        format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", s / 3600, s / 60 % 60)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// "3 min ago", "in 2 h", within 30 days of `now`; else the local date and time.
pub fn relative_time(epoch: i64, now: i64) -> String {
    let d = now - epoch;
    let a = d.abs();
    let span = match a {
        0..=59 => format!("{a} s"),
        60..=3599 => format!("{} min", a / 60),
        3600..=86399 => format!("{} h", a / 3600),
        86400..=2_592_000 => format!("{} d", a / 86400),
        _ => return local_time(epoch, false),
    };
    if a < 5 {
        "just now".into()
    } else if d > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

/// A JSON value as one cell, whole (wide views, scripts' table text).
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => match parse_time(s) {
            Some(t) => local_time(t, true),
            None => s.clone(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A value as the default table shows it in a column of `kind`.
fn styled(v: Option<&Value>, kind: Kind, now: i64) -> String {
    let v = v.unwrap_or(&Value::Null);
    match (kind, v) {
        (Kind::Time { none }, Value::Null) => none.to_string(),
        (Kind::Time { .. }, Value::String(s)) => parse_time(s).map(|t| relative_time(t, now)).unwrap_or_else(|| s.clone()),
        (Kind::Flag { yes, no }, Value::Bool(b)) => (if *b { yes } else { no }).to_string(),
        (Kind::Bytes, Value::Number(n)) => n.as_f64().map(human_bytes).unwrap_or_else(|| n.to_string()),
        (_, Value::String(s)) if parse_time(s).is_some() => relative_time(parse_time(s).unwrap_or(0), now),
        // one line per cell
        (_, Value::String(s)) => s.replace(['\n', '\r', '\t'], " "),
        _ => cell(v),
    }
}

/// Characters of an id the default table shows on a terminal.
pub const SHORT_ID: usize = 8;

/// An id cell's first `SHORT_ID` characters when `short` (other kinds as they are).
fn short_id(s: String, kind: Kind, short: bool) -> String {
    if short && kind == Kind::Id && s.chars().count() > SHORT_ID {
        s.chars().take(SHORT_ID).collect()
    } else {
        s
    }
}

/// The columns of generic rows: every key, in order of first appearance.
fn keys_of(rows: &[Value]) -> Vec<String> {
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
    cols
}

/// What identifies a row for `-q`: its `id`, else `schema.name`, else its first value.
pub fn id_of(r: &Value) -> String {
    match r {
        Value::Object(m) => match (m.get("id"), m.get("schema"), m.get("name")) {
            (Some(id), _, _) => cell_raw(id),
            (None, Some(s), Some(n)) => format!("{}.{}", cell_raw(s), cell_raw(n)),
            _ => m.values().next().map(cell_raw).unwrap_or_default(),
        },
        other => cell_raw(other),
    }
}

fn cell_raw(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ------------------------------------------------------------------ fitting

fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `w` columns, ending in `…` when cut.
pub fn shorten(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

const GAP: usize = 2;

/// Column widths that make the rows fit `max` columns. Text columns give way
/// first (down to 16, or their header), then ids (to 8 + `…`), then text again
/// (down to its header, at least 4), then everything (down to 3). None: no
/// limit (not a terminal), natural widths.
fn fit(natural: &[usize], kinds: &[Kind], headers: &[usize], max: Option<usize>) -> Vec<usize> {
    let mut w = natural.to_vec();
    let Some(max) = max else { return w };
    let total = |w: &[usize]| w.iter().sum::<usize>() + GAP * w.len().saturating_sub(1);
    let text = |i: usize| matches!(kinds[i], Kind::Text);
    let rounds: [&dyn Fn(usize) -> Option<usize>; 4] = [
        &|i| text(i).then(|| headers[i].max(16)),
        &|i| matches!(kinds[i], Kind::Id).then_some(9),
        &|i| text(i).then(|| headers[i].max(4)),
        &|_| Some(3),
    ];
    for floor in rounds {
        while total(&w) > max {
            // the widest column of this round still above its floor
            let pick = (0..w.len())
                .filter(|&i| floor(i).is_some_and(|f| w[i] > f))
                .max_by_key(|&i| (w[i], std::cmp::Reverse(i)));
            let Some(i) = pick else { break };
            w[i] -= 1;
        }
    }
    w
}

/// Rows as an aligned table: header (unless `headers` is false), then one
/// line per row; columns two spaces apart; lines never longer than `max`.
fn render(headers: &[String], cells: &[Vec<String>], kinds: &[Kind], show_headers: bool, max: Option<usize>) -> String {
    let n = headers.len();
    let mut natural: Vec<usize> = headers.iter().map(|h| if show_headers { width(h) } else { 0 }).collect();
    for r in cells {
        for (i, c) in r.iter().enumerate() {
            natural[i] = natural[i].max(width(c));
        }
    }
    let hw: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    let w = fit(&natural, kinds, &hw, max);
    let line = |vals: &[String]| {
        let mut s = String::new();
        for i in 0..n {
            let v = shorten(&vals[i], w[i]);
            s.push_str(&v);
            if i + 1 < n {
                s.push_str(&" ".repeat(w[i] - width(&v) + GAP));
            }
        }
        let s = s.trim_end().to_string();
        // (a terminal narrower than the columns' floors)
        match max {
            Some(m) if width(&s) > m => shorten(&s, m),
            _ => s,
        }
    };
    let mut out = Vec::with_capacity(cells.len() + 1);
    if show_headers {
        out.push(line(headers));
    }
    out.extend(cells.iter().map(|r| line(r)));
    out.join("\n")
}

// ------------------------------------------------------------------ yaml

/// A string YAML reads back as the same string without quotes.
fn yaml_plain(s: &str) -> bool {
    let first = s.chars().next();
    first.is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '/' | '+'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null" | "nan" | "inf"
        )
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // JSON's double-quoted strings are YAML double-quoted scalars
        Value::String(s) if yaml_plain(s) => s.clone(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => unreachable!("containers are written as blocks"),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

fn yaml_key(k: &str) -> String {
    if yaml_plain(k) { k.to_string() } else { Value::String(k.to_string()).to_string() }
}

/// Block-style YAML of a JSON value (what `-o yaml` prints).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    yaml_into(v, 0, &mut out);
    if out.is_empty() {
        out = yaml_scalar(v);
    }
    out.trim_end().to_string()
}

fn yaml_into(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                if is_block(val) {
                    out.push_str(&format!("{pad}{}:\n", yaml_key(k)));
                    // sequences under a key sit at the key's indent, as most emitters write them
                    yaml_into(val, if val.is_array() { indent } else { indent + 2 }, out);
                } else {
                    out.push_str(&format!("{pad}{}: {}\n", yaml_key(k), yaml_scalar(val)));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) {
                    let mut inner = String::new();
                    yaml_into(item, indent + 2, &mut inner);
                    // the first line of the item follows its "- "
                    out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                } else {
                    out.push_str(&format!("{pad}- {}\n", yaml_scalar(item)));
                }
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------------ output

pub struct Out {
    pub format: Format,
    pub no_headers: bool,
    pub quiet: bool,
    /// the terminal's width when stdout is a terminal; None: never shorten
    pub width: Option<usize>,
}

/// Columns of the terminal on stdout (None when stdout is not a terminal).
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills a winsize.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0;
    if ok {
        return Some(ws.ws_col as usize);
    }
    Some(std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|&c: &usize| c > 0).unwrap_or(80))
}

impl Out {
    pub fn new(format: Format, no_headers: bool, quiet: bool) -> Out {
        Out { format, no_headers, quiet, width: terminal_width() }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// json or yaml: whole values for scripts, no sentences.
    pub fn for_scripts(&self) -> bool {
        matches!(self.format, Format::Json | Format::Yaml)
    }

    /// For scripts (json, yaml): the value itself.
    fn machine(&self, v: &Value) -> bool {
        match self.format {
            Format::Json => say!("{}", serde_json::to_string_pretty(v).unwrap()),
            Format::Yaml => say!("{}", to_yaml(v)),
            _ => return false,
        }
        true
    }

    /// A list of rows, as a generic table (every column).
    pub fn list(&self, rows: &[Value], what: &str) {
        self.list_view(rows, what, &[]);
    }

    /// A list of rows; `view` names the default table's columns (empty: every column).
    pub fn list_view(&self, rows: &[Value], what: &str, view: &[Col]) {
        if self.quiet {
            for r in rows {
                say!("{}", id_of(r));
            }
            return;
        }
        if self.machine(&Value::Array(rows.to_vec())) {
            return;
        }
        if rows.is_empty() {
            if !self.no_headers {
                say!("(no {what})");
            }
            return;
        }
        let text = if self.format == Format::Wide || view.is_empty() {
            let keys = keys_of(rows);
            if keys.is_empty() {
                // rows of scalars
                let cells: Vec<Vec<String>> = rows.iter().map(|r| vec![cell(r)]).collect();
                render(&["VALUE".into()], &cells, &[Kind::Text], !self.no_headers, self.limit())
            } else {
                let headers: Vec<String> = keys.iter().map(|k| k.to_uppercase()).collect();
                let wide = self.format == Format::Wide;
                let now = now();
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| keys.iter().map(|k| if wide { cell(r.get(k).unwrap_or(&Value::Null)) } else { styled(r.get(k), Kind::Text, now) }).collect())
                    .collect();
                let kinds: Vec<Kind> = keys.iter().map(|k| if k == "id" || k.ends_with("_id") { Kind::Id } else { Kind::Text }).collect();
                render(&headers, &cells, &kinds, !self.no_headers, self.limit())
            }
        } else {
            let now = now();
            let headers: Vec<String> = view.iter().map(|c| c.header.to_string()).collect();
            // On a terminal an id shows its first 8 characters, as git and
            // docker do, before any email or name is cut (`-o wide`, `-q`,
            // json/yaml and piped output keep it whole).
            let short = self.limit().is_some();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| view.iter().map(|c| short_id(styled(r.get(c.key), c.kind, now), c.kind, short)).collect())
                .collect();
            let kinds: Vec<Kind> = view.iter().map(|c| c.kind).collect();
            render(&headers, &cells, &kinds, !self.no_headers, self.limit())
        };
        say!("{text}");
    }

    /// Where the default table stops: the terminal's width (never for -o wide).
    fn limit(&self) -> Option<usize> {
        if self.format == Format::Wide { None } else { self.width }
    }

    /// One record: a vertical key/value view for people.
    pub fn record(&self, v: &Value) {
        if self.quiet {
            say!("{}", id_of(v));
            return;
        }
        if self.machine(v) {
            return;
        }
        match v {
            Value::Object(m) => say!("{}", self.vertical(m)),
            Value::Array(a) => self.list(a, "rows"),
            other => say!("{}", cell(other)),
        }
    }

    /// `key: value` lines, the values aligned; times local (and relative in the
    /// default view), JSON documents indented below their key when long.
    fn vertical(&self, m: &Map<String, Value>) -> String {
        let kw = m.keys().map(|k| width(k)).max().unwrap_or(0) + 1;
        let now = now();
        let mut lines = Vec::new();
        for (k, v) in m {
            let label = format!("{k}:");
            let value = match v {
                Value::String(s) => match parse_time(s) {
                    Some(t) if self.format == Format::Wide => local_time(t, true),
                    Some(t) => format!("{} ({})", local_time(t, true), relative_time(t, now)),
                    None => s.clone(),
                },
                Value::Object(_) | Value::Array(_) => {
                    let flat = v.to_string();
                    if self.width.is_none_or(|w| kw + 1 + width(&flat) <= w) {
                        flat
                    } else {
                        let pretty = serde_json::to_string_pretty(v).unwrap_or(flat);
                        let body: Vec<String> = pretty.lines().map(|l| format!("  {l}")).collect();
                        lines.push(label);
                        lines.extend(body);
                        continue;
                    }
                }
                other => cell(other),
            };
            if self.no_headers {
                lines.push(value);
            } else {
                lines.push(format!("{label:<kw$} {value}").trim_end().to_string());
            }
        }
        lines.join("\n")
    }

    /// A result object for scripts, or a sentence for people.
    pub fn done(&self, v: Value, sentence: &str) {
        if !self.machine(&v) {
            say!("{sentence}");
        }
    }

    /// `dashboard.metrics()`: a short summary for people; everything with -o json/yaml/wide.
    pub fn metrics(&self, v: &Value) {
        if self.machine(v) {
            return;
        }
        if self.format == Format::Wide {
            return self.sections(v);
        }
        say!("{}", metrics_summary(v, self.width));
    }

    /// A nested JSON document: each top-level key as its own section.
    pub fn sections(&self, v: &Value) {
        if self.machine(v) {
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
            say!("{}", k.to_uppercase());
            match val {
                Value::Array(a) if a.is_empty() => say!("(none)"),
                Value::Array(a) => self.list(a, "rows"),
                Value::Object(o) => say!("{}", self.vertical(o)),
                other => say!("{}", cell(other)),
            }
        }
    }
}

fn num(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Sessions, connections against max_connections, database size, and the
/// three statements that took the most time.
pub fn metrics_summary(v: &Value, width: Option<usize>) -> String {
    let arr = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::new();
    let sessions = arr("active_sessions");
    let count = |kind: &str| sessions.iter().filter(|s| s.get("kind").and_then(Value::as_str) == Some(kind)).count();
    let other = sessions.len() - count("admin_session") - count("impersonation");
    let mut s = format!("Sessions:     {} admin, {} impersonation", count("admin_session"), count("impersonation"));
    if other > 0 {
        s.push_str(&format!(", {other} other"));
    }
    out.push(s);

    let conns = arr("connections");
    let total = conns.first().map(|c| num(c, "total_connections")).unwrap_or(0.0);
    let max = conns.first().map(|c| num(c, "max_connections")).unwrap_or(0.0);
    let waiting: f64 = conns.iter().map(|c| num(c, "waiting")).sum();
    let longest = conns.iter().filter_map(|c| c.get("longest_running_seconds").and_then(Value::as_f64)).fold(0.0, f64::max);
    let by_state: Vec<String> = conns
        .iter()
        .map(|c| format!("{} {}", num(c, "connections"), c.get("state").and_then(Value::as_str).unwrap_or("?")))
        .collect();
    let pct = if max > 0.0 { total * 100.0 / max } else { 0.0 };
    out.push(format!("Connections:  {total} of {max} ({pct:.0}%): {}", if by_state.is_empty() { "none".into() } else { by_state.join(", ") }));
    if waiting > 0.0 || longest >= 1.0 {
        out.push(format!("              {waiting} waiting, longest running {longest:.1} s"));
    }

    let storage = arr("storage");
    if let Some(db) = storage.iter().find(|s| s.get("kind").and_then(Value::as_str) == Some("database")) {
        out.push(format!("Database:     {} {}", db.get("name").and_then(Value::as_str).unwrap_or("?"), human_bytes(num(db, "total_bytes"))));
    }

    let mut queries = arr("queries");
    queries.sort_by(|a, b| num(b, "total_exec_ms").total_cmp(&num(a, "total_exec_ms")));
    if queries.is_empty() {
        out.push("Top statements: none (is pg_stat_statements installed?)".into());
    } else {
        out.push("Top statements by total time:".into());
        for (i, q) in queries.iter().take(3).enumerate() {
            let text = q.get("query").and_then(Value::as_str).unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
            let head = format!("  {}. {:>10.1} ms {:>8} calls  ", i + 1, num(q, "total_exec_ms"), num(q, "calls"));
            let room = width.map(|w| w.saturating_sub(UnicodeWidthStr::width(head.as_str())));
            out.push(format!("{head}{}", match room { Some(r) => shorten(&text, r), None => text }));
        }
    }
    let fitted: Vec<String> = out.iter().map(|l| match width { Some(w) => shorten(l, w), None => l.clone() }).collect();
    fitted.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(parse_time("1970-01-01T01:00:00.5+01:00"), Some(0));
        assert_eq!(parse_time("2026-11-24T13:31:18-05:30"), Some(1795527078 + 5 * 3600 + 1800));
        assert_eq!(parse_time("2026-11-24T13:31:18.5Z-not"), None);
        assert_eq!(parse_time("hello"), None);
        let t = 1_800_000_000;
        assert_eq!(relative_time(t - 180, t), "3 min ago");
        assert_eq!(relative_time(t + 7200, t), "in 2 h");
        assert_eq!(relative_time(t - 2, t), "just now");
        assert_eq!(relative_time(t - 3 * 86400, t), "3 d ago");
        assert_eq!(civil_from_days(days_from_civil(2026, 12, 1)), (2026, 12, 1));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }

    #[test]
    fn shortening_counts_columns() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(width(&shorten("日本語日本語", 5)), 5);
    }

    #[test]
    fn tables_fit_and_ids_give_way_last() {
        let rows = vec![json!({"id": "3f1c9a52-8a8e-4a3c-9b1e-0d6c2b7a1f01", "email": "a-rather-long-address@example.com",
                               "meta": {"k": "v".repeat(80)}})];
        let view = [col("ID", "id", ID), col("EMAIL", "email", TEXT), col("META", "meta", TEXT)];
        let out = Out { format: Format::Table, no_headers: false, quiet: false, width: Some(80) };
        let cells: Vec<Vec<String>> = rows.iter().map(|r| view.iter().map(|c| styled(r.get(c.key), c.kind, 0)).collect()).collect();
        let t = render(&["ID".into(), "EMAIL".into(), "META".into()], &cells, &[ID, TEXT, TEXT], true, out.width);
        assert!(t.lines().all(|l| width(l) <= 80), "{t}");
        assert!(t.contains("3f1c9a52-8a8e-4a3c-9b1e-0d6c2b7a1f01") && t.contains('…'), "{t}");
        let narrow = render(&["ID".into(), "EMAIL".into(), "META".into()], &cells, &[ID, TEXT, TEXT], true, Some(40));
        assert!(narrow.lines().all(|l| width(l) <= 40), "{narrow}");
        let whole = render(&["ID".into(), "EMAIL".into(), "META".into()], &cells, &[ID, TEXT, TEXT], false, None);
        assert_eq!(whole.lines().count(), 1);
        assert!(!whole.contains('…') && whole.contains(&"v".repeat(80)));
    }

    #[test]
    fn ids_show_8_characters_on_a_terminal_only() {
        let id = "3f1c9a52-8a8e-4a3c-9b1e-0d6c2b7a1f01".to_string();
        assert_eq!(short_id(id.clone(), ID, true), "3f1c9a52");
        assert_eq!(short_id(id.clone(), ID, false), id);
        assert_eq!(short_id(id.clone(), TEXT, true), id);
        assert_eq!(short_id("42".into(), ID, true), "42");
    }

    #[test]
    fn yaml_reads_back_as_written() {
        let v = json!([{"id": "3f1c", "n": 1, "ok": true, "none": null, "t": "2026-11-24T13:31:18+00:00",
                        "yes": "yes", "list": ["a", {"b": [1, 2]}], "empty": {}, "e2": [], "s": "a: b # c\n",
                        "email": "a@example.com"}]);
        let y = to_yaml(&v);
        assert!(y.starts_with("- id: \"3f1c\"") || y.starts_with("- id: 3f1c"), "{y}");
        assert!(y.contains("  t: \"2026-11-24T13:31:18+00:00\""), "{y}");
        assert!(y.contains("  email: a@example.com"), "{y}");
        assert!(y.contains("  yes: \"yes\"") || y.contains("  \"yes\": \"yes\""), "{y}");
        assert_eq!(to_yaml(&json!([])), "[]");
        assert_eq!(to_yaml(&json!("x")), "x");
    }

    #[test]
    fn ids_for_quiet() {
        assert_eq!(id_of(&json!({"email": "x", "id": "u1"})), "u1");
        assert_eq!(id_of(&json!({"schema": "public", "name": "t"})), "public.t");
        assert_eq!(id_of(&json!({"id": 7})), "7");
    }

    #[test]
    fn cells() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!([1, 2])), "[1,2]");
        assert_eq!(cell(&json!("2026-11-24T13:31:18.5Z-not")), "2026-11-24T13:31:18.5Z-not");
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 kB");
        assert_eq!(human_bytes(50.0 * 1024.0 * 1024.0), "50 MB");
    }
}
