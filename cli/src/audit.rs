//! `fluxbase audit tail | archive | verify --archive` (issue 35): the audit
//! trail shipped to a SIEM and retired with proof.
//!
//! All three read the chain through `dashboard_auth.audit_entries(after, n)`
//! (entries in id order with everything their hashes cover) and check every
//! entry as they go with the extension's own rules (`fluxbase_core::chain`):
//! `row_hash = sha256(prev_hash || canonical(entry))`, ids gapless, each
//! `prev_hash` the `row_hash` before it. A rewritten history stops them.
//!
//! - tail: the cursor is the chain position `id hash` of the last entry
//!   delivered, rewritten after each chunk of messages (up to `CHUNK` bytes,
//!   or the end of a page of entries) is handed to the kernel in full; on
//!   resume the next entry's `prev_hash` must equal the saved hash. Output:
//!   JSON or CEF lines on stdout, or RFC 5424 syslog over UDP or TCP
//!   (octet-counting framing, RFC 6587).
//! - archive: the entries up to a cut-off, with their hashes and the hash they
//!   follow, to a JSON-lines file; then `dashboard_auth.purge_audit_through`.
//! - verify --archive: archives, then the purge checkpoint, then the live log
//!   (`verify_audit_chain`), end to end; names the first break.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fluxbase_core::chain::{row_hash, ChainRecord, GENESIS};
use serde_json::{json, Map, Value};

use crate::fail::Fail;
use crate::{conn, Ctx};

// ------------------------------------------------------------------ entries

/// One entry as `audit_entries` returns it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub rec: ChainRecord,
    pub occurred_at: String,
    pub prev_hash: Vec<u8>,
    pub row_hash: Vec<u8>,
    /// A row-change entry's changed rows, decoded by the server.
    pub rows: Option<Value>,
}

pub fn to_hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("\\x").unwrap_or(s);
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn uuid_bytes(v: &Value) -> Result<Option<[u8; 16]>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            let b = from_hex(&hex).filter(|b| b.len() == 16).ok_or_else(|| format!("not a uuid: {s}"))?;
            Ok(Some(b.try_into().expect("16 bytes")))
        }
        _ => Err("not a uuid".into()),
    }
}

fn uuid_text(b: &Option<[u8; 16]>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => {
            let h = to_hex(b);
            json!(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
        }
    }
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn bytes(v: &Value, what: &str) -> Result<Option<Vec<u8>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => from_hex(s).map(Some).ok_or_else(|| format!("{what} is not hex")),
        _ => Err(format!("{what} is not hex")),
    }
}

impl Entry {
    /// From `audit_entries`'s row (to_json) or an archive line: the same keys.
    pub fn from_json(v: &Value) -> Result<Entry, String> {
        let id = v["id"].as_i64().ok_or("an entry without an id")?;
        let e = |what: &str| format!("entry {id}: {what}");
        Ok(Entry {
            rec: ChainRecord {
                id,
                occurred_at_us: v["occurred_at_us"].as_i64().ok_or_else(|| e("no occurred_at_us"))?,
                actor_id: uuid_bytes(&v["actor_id"]).map_err(|m| e(&m))?,
                actor: opt_str(&v["actor"]).unwrap_or_default(),
                action: opt_str(&v["action"]).unwrap_or_default(),
                target_type: opt_str(&v["target_type"]),
                target_id: opt_str(&v["target_id"]),
                details: opt_str(&v["details_text"]).ok_or_else(|| e("no details_text"))?,
                ip: opt_str(&v["ip"]),
                success: v["success"].as_bool().unwrap_or(false),
                db_user: opt_str(&v["db_user"]).unwrap_or_default(),
                txid: v["txid"].as_i64().unwrap_or(0),
                impersonation_session_id: uuid_bytes(&v["impersonation_session_id"]).map_err(|m| e(&m))?,
                row_data: bytes(&v["row_data"], "row_data").map_err(|m| e(&m))?,
            },
            occurred_at: opt_str(&v["occurred_at"]).unwrap_or_default(),
            prev_hash: bytes(&v["prev_hash"], "prev_hash").map_err(|m| e(&m))?.unwrap_or_default(),
            row_hash: bytes(&v["row_hash"], "row_hash").map_err(|m| e(&m))?.unwrap_or_default(),
            rows: match &v["rows"] {
                Value::Null => None,
                r => Some(r.clone()),
            },
        })
    }

    /// Everything the hash covers, as an archive keeps it (`from_json` reads it back).
    pub fn archive_json(&self) -> Value {
        let r = &self.rec;
        json!({
            "id": r.id, "occurred_at": self.occurred_at, "occurred_at_us": r.occurred_at_us,
            "actor_id": uuid_text(&r.actor_id), "actor": r.actor, "action": r.action,
            "target_type": r.target_type, "target_id": r.target_id, "details_text": r.details,
            "ip": r.ip, "success": r.success, "db_user": r.db_user, "txid": r.txid,
            "impersonation_session_id": uuid_text(&r.impersonation_session_id),
            "row_data": r.row_data.as_deref().map(to_hex),
            "prev_hash": to_hex(&self.prev_hash), "row_hash": to_hex(&self.row_hash),
        })
    }

    /// The entry as a SIEM reads it: details as JSON (with the changed rows).
    pub fn event_json(&self) -> Value {
        let r = &self.rec;
        let mut details: Value = serde_json::from_str(&r.details).unwrap_or(Value::String(r.details.clone()));
        if let (Some(rows), Value::Object(m)) = (&self.rows, &mut details) {
            match rows.get("rows_error") {
                Some(err) => m.insert("rows_error".into(), err.clone()),
                None => m.insert("rows".into(), rows.clone()),
            };
        }
        json!({
            "id": r.id, "occurred_at": self.occurred_at, "actor_id": uuid_text(&r.actor_id), "actor": r.actor,
            "action": r.action, "target_type": r.target_type, "target_id": r.target_id, "details": details,
            "ip": r.ip, "success": r.success, "db_user": r.db_user, "txid": r.txid,
            "impersonation_session_id": uuid_text(&r.impersonation_session_id),
            "prev_hash": to_hex(&self.prev_hash), "row_hash": to_hex(&self.row_hash),
        })
    }
}

/// Checks that entries follow each other: ids gapless from `next_id`, each
/// `prev_hash` the hash before, each `row_hash` its content's.
pub struct Chain {
    pub next_id: i64,
    /// None: the first entry's prev_hash is taken as it is (nothing before it to check).
    pub prev: Option<Vec<u8>>,
}

impl Chain {
    pub fn check(&mut self, e: &Entry) -> Result<(), String> {
        let id = e.rec.id;
        if id != self.next_id {
            return Err(format!("entry {} is missing (the next entry is {id})", self.next_id));
        }
        if let Some(prev) = &self.prev {
            if prev[..] != e.prev_hash[..] {
                return Err(format!("entry {id} does not follow entry {} (its prev_hash differs): history was rewritten", id - 1));
            }
        }
        if row_hash(&e.prev_hash, &e.rec)[..] != e.row_hash[..] {
            return Err(format!("entry {id} does not match its hash: it was changed"));
        }
        self.next_id = id + 1;
        self.prev = Some(e.row_hash.clone());
        Ok(())
    }
}

const ENTRIES_SQL: &str =
    "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.audit_entries($1::text::bigint, $2::text::int) t";

fn fetch(ctx: &mut Ctx, after: i64, n: u32) -> Result<Vec<Entry>, Fail> {
    let rows = ctx.rows("dashboard_auth.audit_entries", ENTRIES_SQL, &[Some(after.to_string()), Some(n.to_string())])?;
    rows.iter().map(|v| Entry::from_json(v).map_err(|m| Fail::failure(format!("unreadable audit entry: {m}")))).collect()
}

/// The newest purge checkpoint: (last purged id, its hash); (0, genesis) if none.
fn checkpoint(ctx: &mut Ctx) -> Result<(i64, Vec<u8>), Fail> {
    let v = ctx.json_scalar(
        "dashboard_auth.audit_checkpoint",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.audit_checkpoint() t",
        &[],
    )?;
    let id = v["last_purged_id"].as_i64().unwrap_or(0);
    let hash = v["last_purged_hash"].as_str().and_then(from_hex).unwrap_or_else(|| GENESIS.to_vec());
    Ok((id, hash))
}

// ------------------------------------------------------------------ output

/// How `tail` writes each entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Json,
    Cef,
}

fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('=', "\\=").replace('\n', "\\n").replace('\r', "\\r")
}

/// ArcSight Common Event Format: `CEF:0|vendor|product|version|signature|name|severity|extensions`.
pub fn cef_line(e: &Entry) -> String {
    let r = &e.rec;
    // PostgreSQL's epoch (2000-01-01) in Unix milliseconds
    let rt = r.occurred_at_us.div_euclid(1000) + 946_684_800_000;
    let sev = if r.success { 3 } else { 6 };
    let event = e.event_json();
    let mut ext = vec![
        format!("rt={rt}"),
        format!("externalId={}", r.id),
        format!("act={}", cef_value(&r.action)),
        format!("suser={}", cef_value(&r.actor)),
        format!("outcome={}", if r.success { "success" } else { "failure" }),
    ];
    if let Some(ip) = &r.ip {
        ext.push(format!("src={}", cef_value(ip.split('/').next().unwrap_or(ip))));
    }
    if let Some(uid) = event["actor_id"].as_str() {
        ext.push(format!("suid={uid}"));
    }
    let target = match (&r.target_type, &r.target_id) {
        (Some(t), Some(i)) => Some(format!("{t}:{i}")),
        (Some(t), None) => Some(t.clone()),
        (None, Some(i)) => Some(i.clone()),
        _ => None,
    };
    if let Some(t) = target {
        ext.push(format!("cs1Label=target cs1={}", cef_value(&t)));
    }
    ext.push(format!("cs2Label=row_hash cs2={}", to_hex(&e.row_hash)));
    ext.push(format!("cs3Label=db_user cs3={}", cef_value(&r.db_user)));
    ext.push(format!("msg={}", cef_value(&event["details"].to_string())));
    format!(
        "CEF:0|Fluxbase|fluxbase_admin|{}|{}|{}|{sev}|{}",
        env!("CARGO_PKG_VERSION"),
        cef_header(&r.action),
        cef_header(&r.action),
        ext.join(" ")
    )
}

pub fn message(e: &Entry, style: Style) -> String {
    match style {
        Style::Json => e.event_json().to_string(),
        Style::Cef => cef_line(e),
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(0);
    let name: String = String::from_utf8_lossy(&buf[..end]).chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    if ok && !name.is_empty() {
        name
    } else {
        "-".into()
    }
}

/// One RFC 5424 message: facility 13 (log audit), severity info (notice
/// for a failed action), the entry's time, `fluxbase` / pid / `audit`, the
/// entry's chain position as structured data, then the message.
pub fn rfc5424(e: &Entry, host: &str, pid: u32, msg: &str) -> String {
    let pri = 13 * 8 + if e.rec.success { 6 } else { 5 };
    let ts = if e.occurred_at.is_empty() { "-" } else { e.occurred_at.as_str() };
    format!(
        "<{pri}>1 {ts} {host} fluxbase {pid} audit [fluxbase@32473 id=\"{}\" hash=\"{}\"] {msg}",
        e.rec.id,
        to_hex(&e.row_hash)
    )
}

/// Where `tail` delivers: stdout (a line per entry), UDP (a datagram per
/// message) or TCP (RFC 6587 octet-counted frames). Stdout is written through
/// its file descriptor, unbuffered: what a write() took is out of the process.
enum Sink {
    Stdout(std::fs::File),
    Udp(UdpSocket),
    Tcp { addr: String, stream: Option<TcpStream> },
}

/// Messages framed for the sink, not yet handed to the kernel in full, each
/// with the chain position its delivery moves the cursor to.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// (where the frame ends in `buf`, entry id, its row_hash)
    frames: Vec<(usize, i64, Vec<u8>)>,
}

/// A chunk is handed to the kernel (and the cursor moved past it) once it
/// holds this many bytes, and at the end of each page of entries: one or two
/// system calls per chunk instead of per entry. It bounds what a tailer
/// killed with SIGKILL between the write and the cursor's rewrite sends again.
const CHUNK: usize = 32 * 1024;

impl Pending {
    fn len(&self) -> usize {
        self.buf.len()
    }

    fn start(&self, frame: usize) -> usize {
        if frame == 0 { 0 } else { self.frames[frame - 1].0 }
    }
}

impl Sink {
    fn open(syslog: Option<&str>) -> Result<Sink, Fail> {
        let Some(url) = syslog else {
            use std::os::fd::AsFd;
            let fd = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| Fail::failure(format!("stdout: {e}")))?;
            return Ok(Sink::Stdout(std::fs::File::from(fd)));
        };
        if let Some(addr) = url.strip_prefix("udp://") {
            let sock = UdpSocket::bind("0.0.0.0:0")
                .and_then(|s| s.connect(addr).map(|_| s))
                .map_err(|e| Fail::failure(format!("--syslog {url}: {e}")))?;
            Ok(Sink::Udp(sock))
        } else if let Some(addr) = url.strip_prefix("tcp://") {
            let mut s = Sink::Tcp { addr: addr.to_string(), stream: None };
            s.connect()?;
            Ok(s)
        } else {
            Err(Fail::usage(format!("--syslog {url}: give udp://HOST:PORT or tcp://HOST:PORT")))
        }
    }

    fn connect(&mut self) -> Result<(), Fail> {
        if let Sink::Tcp { addr, stream } = self {
            let s = TcpStream::connect(addr.as_str()).map_err(|e| Fail::failure(format!("--syslog tcp://{addr}: {e}")))?;
            let _ = s.set_nodelay(true);
            *stream = Some(s);
        }
        Ok(())
    }

    fn syslog(&self) -> bool {
        !matches!(self, Sink::Stdout(_))
    }

    /// Frame one entry's message into `p`: a line (stdout), a datagram (UDP),
    /// or `LEN SP MSG` (TCP).
    fn frame(&self, p: &mut Pending, e: &Entry, msg: &str) {
        match self {
            Sink::Stdout(_) => {
                p.buf.extend_from_slice(msg.as_bytes());
                p.buf.push(b'\n');
            }
            Sink::Udp(_) => p.buf.extend_from_slice(msg.as_bytes()),
            Sink::Tcp { .. } => {
                let _ = write!(p.buf, "{} ", msg.len());
                p.buf.extend_from_slice(msg.as_bytes());
            }
        }
        p.frames.push((p.buf.len(), e.rec.id, e.row_hash.clone()));
    }

    /// Hand one write's worth of `buf[from..]` to the kernel (UDP: the one
    /// datagram `from..to`); how many bytes it took.
    fn write(&mut self, buf: &[u8], from: usize, to: usize) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(f) => f.write(&buf[from..]),
            Sink::Udp(sock) => sock.send(&buf[from..to]).map(|_| to - from),
            Sink::Tcp { stream, .. } => stream.as_mut().ok_or_else(|| std::io::Error::other("not connected"))?.write(&buf[from..]),
        }
    }

    /// Hand every pending frame to the kernel, then move the cursor past the
    /// last one. The cursor only ever names an entry whose frame, and every
    /// frame before it, a write() took whole. On an error (follow mode): the
    /// frames out in full count as delivered (the cursor moves past them), the
    /// receiver is reconnected (TCP) and the rest sent again from the first
    /// frame not out in full.
    fn deliver(&mut self, p: &mut Pending, cursor: &Cursor, follow: bool) -> Result<(), Fail> {
        let (mut sent, mut done, mut tries) = (0usize, 0usize, 0u32);
        while done < p.frames.len() {
            let to = p.frames[done].0;
            match self.write(&p.buf, sent, to) {
                Ok(0) => return Err(Fail::failure(format!("cannot deliver entry {}: the receiver takes nothing", p.frames[done].1))),
                Ok(n) => {
                    sent += n;
                    while done < p.frames.len() && p.frames[done].0 <= sent {
                        done += 1;
                    }
                    tries = 0;
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    if done > 0 {
                        let (_, id, hash) = &p.frames[done - 1];
                        cursor.save(*id, hash).map_err(|err| Fail::failure(format!("cannot save the cursor: {err}")))?;
                    }
                    tries += 1;
                    if !follow || tries > 50 || matches!(self, Sink::Stdout(_)) {
                        return Err(Fail::failure(format!("cannot deliver entry {}: {err}", p.frames[done].1)));
                    }
                    // A receiver that went away: reconnect (TCP) and send the
                    // frame it may have got in part again, whole.
                    std::thread::sleep(Duration::from_millis(200));
                    let _ = self.connect();
                    sent = p.start(done);
                }
            }
        }
        if let Some((_, id, hash)) = p.frames.last() {
            cursor.save(*id, hash).map_err(|err| Fail::failure(format!("cannot save the cursor: {err}")))?;
        }
        p.buf.clear();
        p.frames.clear();
        Ok(())
    }
}

// ------------------------------------------------------------------ tail

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The cursor file: one line `<id> <row_hash hex>`, the last entry delivered,
/// rewritten in place after each chunk is out (fixed width, one write).
struct Cursor {
    file: Option<std::fs::File>,
}

impl Cursor {
    fn read(path: &Path) -> Result<Option<(i64, Vec<u8>)>, Fail> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Fail::failure(format!("cannot read {}: {e}", path.display()))),
        };
        let mut parts = text.split_whitespace();
        match (parts.next().and_then(|i| i.parse::<i64>().ok()), parts.next().and_then(from_hex), parts.next()) {
            (Some(id), Some(h), None) if id >= 0 && h.len() == 32 => Ok(Some((id, h))),
            _ => Err(Fail::usage(format!("{} is not a cursor file (a line `<id> <sha256 in hex>`)", path.display()))),
        }
    }

    fn open(path: Option<&Path>) -> Result<Cursor, Fail> {
        let file = path
            .map(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(p)
                    .map_err(|e| Fail::failure(format!("cannot write {}: {e}", p.display())))
            })
            .transpose()?;
        Ok(Cursor { file })
    }

    fn save(&self, id: i64, hash: &[u8]) -> std::io::Result<()> {
        if let Some(f) = &self.file {
            let line = format!("{id:020} {}\n", to_hex(hash));
            f.write_all_at(line.as_bytes(), 0)?;
        }
        Ok(())
    }
}

pub struct TailOpts {
    pub follow: bool,
    pub since: Option<i64>,
    pub cursor_file: Option<PathBuf>,
    pub syslog: Option<String>,
    pub style: Style,
    pub batch: u32,
    pub poll: Duration,
}

/// Reconnect after the database went away (follow mode): retry until it answers.
fn reconnect(ctx: &mut Ctx, url: Option<&str>) -> Result<(), Fail> {
    let cfg = conn::build_config(url, &|k| std::env::var(k).ok())?;
    let mut wait = Duration::from_millis(100);
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        match cfg.connect(postgres::NoTls) {
            Ok(c) => {
                ctx.client = c;
                eprintln!("fluxbase audit tail: reconnected to the database");
                return Ok(());
            }
            Err(_) => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

pub fn tail(ctx: &mut Ctx, url: Option<&str>, o: TailOpts) -> Result<(), Fail> {
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let saved = match &o.cursor_file {
        Some(p) => Cursor::read(p)?,
        None => None,
    };
    // Where to start, and the hash the first entry must follow (None: unchecked).
    let (mut after, first_prev) = match (saved, o.since) {
        (Some((id, hash)), _) => (id, Some(hash)),
        (None, Some(since)) if since <= 1 => (0, Some(GENESIS.to_vec())),
        (None, Some(since)) => (since - 1, None),
        (None, None) => {
            let (id, hash) = checkpoint(ctx)?;
            (id, Some(hash))
        }
    };
    let (cp_id, _) = checkpoint(ctx)?;
    if cp_id > after {
        return Err(Fail::failure(format!(
            "entries {}..{cp_id} were purged from the live log before being delivered: ship them from their archive (`fluxbase audit archive`)",
            after + 1
        )));
    }
    let mut chain = Chain { next_id: after + 1, prev: first_prev };
    let cursor = Cursor::open(o.cursor_file.as_deref())?;
    let mut sink = Sink::open(o.syslog.as_deref())?;
    let (host, pid) = (hostname(), std::process::id());
    let mut pending = Pending::default();
    while !STOP.load(Ordering::SeqCst) {
        let batch = match fetch(ctx, after, o.batch) {
            Ok(b) => b,
            Err(f) if o.follow && (ctx.client.is_closed() || ctx.client.simple_query("SELECT 1").is_err()) => {
                eprintln!("fluxbase audit tail: {}; reconnecting", f.msg);
                reconnect(ctx, url)?;
                continue;
            }
            Err(f) => return Err(f),
        };
        let got = batch.len();
        for e in &batch {
            if let Err(m) = chain.check(e) {
                // (the entries before the break are good: they go out first)
                sink.deliver(&mut pending, &cursor, o.follow)?;
                return Err(Fail::failure(format!("the audit chain is broken: {m}")));
            }
            let msg = message(e, o.style);
            let msg = if sink.syslog() { rfc5424(e, &host, pid, &msg) } else { msg };
            sink.frame(&mut pending, e, &msg);
            after = e.rec.id;
            if pending.len() >= CHUNK {
                sink.deliver(&mut pending, &cursor, o.follow)?;
                if STOP.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
        sink.deliver(&mut pending, &cursor, o.follow)?;
        if got < o.batch as usize {
            if !o.follow {
                break;
            }
            // (sleep in small steps so a signal stops us promptly)
            let mut slept = Duration::ZERO;
            while slept < o.poll && !STOP.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                slept += Duration::from_millis(50);
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ archive

/// `--before 90d`: days, hours, minutes or weeks as a PostgreSQL interval
/// (anything else is passed on as an interval: `3 months`).
pub fn interval_text(s: &str) -> String {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let unit = match unit {
        "d" => "days",
        "h" => "hours",
        "m" => "minutes",
        "w" => "weeks",
        "s" => "seconds",
        _ => return s.to_string(),
    };
    if num.is_empty() {
        return s.to_string();
    }
    format!("{num} {unit}")
}

const ARCHIVE_FORMAT: &str = "fluxbase-audit-archive-v1";

pub fn archive(ctx: &mut Ctx, before: &str, out: &Path, purge: bool) -> Result<Value, Fail> {
    // The last entry older than the cut-off (ids follow commit order, so an
    // entry just before it may be a little newer: it goes too, with its place
    // in the chain).
    let upto = ctx.json_scalar(
        "dashboard.audit_search",
        "SELECT pg_catalog.to_json(a.id)::text FROM dashboard.audit_search(
             until => pg_catalog.now() - $1::text::interval, page_size => 1) a",
        &[Some(interval_text(before))],
    )?;
    let (cp_id, cp_hash) = checkpoint(ctx)?;
    let Some(upto) = upto.as_i64().filter(|u| *u > cp_id) else {
        return Ok(json!({"archived": 0, "purged": 0, "file": Value::Null}));
    };
    let tmp = out.with_extension("partial");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&tmp).map_err(|e| Fail::failure(format!("cannot write {}: {e}", tmp.display())))?,
    );
    let mut chain = Chain { next_id: cp_id + 1, prev: Some(cp_hash.clone()) };
    let mut entries = Vec::new();
    let mut after = cp_id;
    while after < upto {
        let n = (upto - after).min(5000) as u32;
        let batch = fetch(ctx, after, n)?;
        if batch.is_empty() {
            break;
        }
        for e in batch {
            chain.check(&e).map_err(|m| Fail::failure(format!("the audit chain is broken: {m}; nothing archived")))?;
            after = e.rec.id;
            entries.push(e.archive_json());
        }
    }
    if after != upto {
        return Err(Fail::failure(format!("entry {} is missing from the live log; nothing archived", after + 1)));
    }
    let last_hash = chain.prev.clone().unwrap_or_default();
    let header = json!({
        "format": ARCHIVE_FORMAT, "first_id": cp_id + 1, "last_id": upto, "entries": entries.len(),
        "prev_hash": to_hex(&cp_hash), "last_hash": to_hex(&last_hash),
    });
    let io = |e: std::io::Error| Fail::failure(format!("cannot write {}: {e}", tmp.display()));
    writeln!(f, "{header}").map_err(io)?;
    for e in &entries {
        writeln!(f, "{e}").map_err(io)?;
    }
    let file = f.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, out).map_err(|e| Fail::failure(format!("cannot write {}: {e}", out.display())))?;
    // The archive is safe on disk: read it back and check it before purging.
    verify_archives(&[out.to_path_buf()])?;
    let purged = if purge {
        ctx.json_scalar(
            "dashboard_auth.purge_audit_through",
            "SELECT pg_catalog.to_json(dashboard_auth.purge_audit_through($1::text::bigint))::text",
            &[Some(upto.to_string())],
        )?
        .as_i64()
        .unwrap_or(0)
    } else {
        0
    };
    Ok(json!({"archived": entries.len(), "first_id": cp_id + 1, "last_id": upto, "last_hash": to_hex(&last_hash),
              "purged": purged, "file": out.display().to_string()}))
}

/// One archive read back: its header and entries, each checked.
struct Archive {
    path: PathBuf,
    first_id: i64,
    last_id: i64,
    prev_hash: Vec<u8>,
    last_hash: Vec<u8>,
}

fn read_archive(path: &Path) -> Result<Archive, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Map<String, Value> = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .filter(|h: &Map<String, Value>| h.get("format").and_then(Value::as_str) == Some(ARCHIVE_FORMAT))
        .ok_or_else(|| format!("{} is not a fluxbase audit archive", path.display()))?;
    let num = |k: &str| header.get(k).and_then(Value::as_i64).ok_or_else(|| format!("{}: header has no {k}", path.display()));
    let hash = |k: &str| {
        header.get(k).and_then(Value::as_str).and_then(from_hex).filter(|h| h.len() == 32)
            .ok_or_else(|| format!("{}: header has no {k}", path.display()))
    };
    let a = Archive { path: path.to_path_buf(), first_id: num("first_id")?, last_id: num("last_id")?, prev_hash: hash("prev_hash")?, last_hash: hash("last_hash")? };
    let mut chain = Chain { next_id: a.first_id, prev: Some(a.prev_hash.clone()) };
    for (n, line) in lines.enumerate() {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{}: line {}: {e}", path.display(), n + 2))?;
        let e = Entry::from_json(&v).map_err(|m| format!("{}: {m}", path.display()))?;
        chain.check(&e).map_err(|m| format!("{}: {m}", path.display()))?;
    }
    if chain.next_id != a.last_id + 1 {
        return Err(format!("{}: entry {} is missing (the archive says it ends at {})", path.display(), chain.next_id, a.last_id));
    }
    if chain.prev.as_deref() != Some(&a.last_hash[..]) {
        return Err(format!("{}: its last entry's hash differs from its header's", path.display()));
    }
    Ok(a)
}

/// Check archives (each whole, then joined in id order); returns them in order.
fn verify_archives(paths: &[PathBuf]) -> Result<Vec<Archive>, Fail> {
    let mut all = paths.iter().map(|p| read_archive(p)).collect::<Result<Vec<_>, _>>().map_err(Fail::failure)?;
    all.sort_by_key(|a| a.first_id);
    for w in all.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.first_id != a.last_id + 1 {
            return Err(Fail::failure(format!(
                "the chain breaks at entry {}: {} ends at {} and {} starts at {}",
                (a.last_id + 1).min(b.first_id), a.path.display(), a.last_id, b.path.display(), b.first_id
            )));
        }
        if b.prev_hash != a.last_hash {
            return Err(Fail::failure(format!(
                "the chain breaks at entry {}: {} does not follow {} (history was rewritten)",
                b.first_id, b.path.display(), a.path.display()
            )));
        }
    }
    Ok(all)
}

/// `audit verify --archive FILE...`: the archives, their join to the live log
/// (the purge checkpoint), and the live log.
pub fn verify_with_archives(ctx: &mut Ctx, paths: &[PathBuf]) -> Result<Value, Fail> {
    let archives = verify_archives(paths)?;
    let first = archives.first().expect("clap requires one");
    let last = archives.last().expect("clap requires one");
    if first.first_id != 1 {
        return Err(Fail::failure(format!(
            "the chain breaks at entry 1: entries 1..{} are in none of the archives ({} starts at {})",
            first.first_id - 1,
            first.path.display(),
            first.first_id
        )));
    }
    if first.prev_hash != GENESIS {
        return Err(Fail::failure(format!("the chain breaks at entry 1: {} does not start from the genesis hash", first.path.display())));
    }
    let (cp_id, cp_hash) = checkpoint(ctx)?;
    if cp_id > last.last_id {
        return Err(Fail::failure(format!(
            "the chain breaks at entry {}: entries {}..{cp_id} were purged but are in none of the archives",
            last.last_id + 1,
            last.last_id + 1
        )));
    }
    if cp_id == last.last_id && cp_hash != last.last_hash {
        return Err(Fail::failure(format!(
            "the chain breaks at entry {cp_id}: the live log's purge checkpoint differs from {}",
            last.path.display()
        )));
    }
    // The live log continues where the last archive ends (it may still hold
    // entries an archive has too: the next live one after it must follow).
    if cp_id < last.last_id {
        if let Some(next) = fetch(ctx, last.last_id, 1)?.into_iter().next() {
            if next.rec.id != last.last_id + 1 || next.prev_hash != last.last_hash {
                return Err(Fail::failure(format!(
                    "the chain breaks at entry {}: the live log does not continue {}",
                    last.last_id + 1,
                    last.path.display()
                )));
            }
        }
    }
    let live = ctx.json_scalar(
        "dashboard_auth.verify_audit_chain",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.verify_audit_chain() t",
        &[],
    )?;
    if live["ok"].as_bool() != Some(true) {
        return Err(Fail::failure(format!("the chain breaks at entry {} (in the live log)", live["first_bad_id"])));
    }
    Ok(json!({"ok": true, "archives": archives.len(), "archived_from": first.first_id, "archived_to": last.last_id,
              "live_from": cp_id + 1}))
}

// ---- `fluxbase audit verify [--witness FILE]` (the live chain against a saved head)

/// `fluxbase audit verify [--witness FILE]`: the chain, and against a saved
/// head (a line `<id> <hash in hex>`), which is then moved on to the current head.
pub(super) fn audit_verify(ctx: &mut Ctx, witness: Option<&std::path::Path>) -> Result<(), Fail> {
    let saved = match witness {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).map_err(|e| Fail::failure(format!("cannot read {}: {e}", path.display())))?;
            let mut parts = text.split_whitespace();
            match (parts.next().and_then(|i| i.parse::<i64>().ok()), parts.next(), parts.next()) {
                (Some(id), Some(hash), None) if id >= 0 && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Some((id, hash.to_string()))
                }
                _ => return Err(Fail::usage(format!("{} is not a witness file (a line `<id> <sha256 in hex>`)", path.display()))),
            }
        }
        _ => None,
    };
    let (id, hash) = (saved.as_ref().map(|(i, _)| i.to_string()), saved.as_ref().map(|(_, h)| h.clone()));
    let result = ctx.json_scalar(
        "dashboard_auth.verify_audit_chain",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard_auth.verify_audit_chain($1::text::bigint, pg_catalog.decode($2::text, 'hex')) t",
        &[id, hash],
    )?;
    let ok = result["ok"].as_bool() == Some(true);
    if !ok {
        let bad = &result["first_bad_id"];
        return Err(Fail::failure(match &saved {
            Some((wid, _)) if bad.as_i64() == Some(*wid) => format!(
                "the audit trail no longer reaches entry {wid} that the witness saw: entries were removed or replaced"
            ),
            _ => format!("the audit chain is broken at entry {bad}"),
        }));
    }
    let mut shown = json!({ "ok": true, "witness_checked": saved.as_ref().map(|(i, _)| i) });
    if let Some(path) = witness {
        let head = ctx.json_scalar(
            "dashboard_auth.audit_witness",
            "SELECT pg_catalog.json_build_object('id', id, 'hash', pg_catalog.encode(hash, 'hex'))::text FROM dashboard_auth.audit_witness()",
            &[],
        )?;
        let line = format!("{} {}\n", head["id"], head["hash"].as_str().unwrap_or_default());
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, line)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| Fail::failure(format!("cannot save the witness to {}: {e}", path.display())))?;
        shown["witness"] = head;
    }
    let sentence = match (&saved, witness) {
        (Some((wid, _)), Some(path)) => format!(
            "The audit chain is intact and still reaches entry {wid} of the witness; saved the head (entry {}) to {}.",
            shown["witness"]["id"],
            path.display()
        ),
        (None, Some(path)) => format!("The audit chain is intact; saved its head (entry {}) to {}.", shown["witness"]["id"], path.display()),
        _ => "The audit chain is intact.".to_string(),
    };
    ctx.out.done(shown, &sentence);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, prev: &[u8]) -> Entry {
        let rec = ChainRecord {
            id,
            occurred_at_us: 1_000_000 * id,
            actor: "root@example.com".into(),
            action: "admin.login".into(),
            details: "{\"a\": 1}".into(),
            success: id % 2 == 0,
            db_user: "fb_web".into(),
            actor_id: Some([7u8; 16]),
            ip: Some("10.0.0.1".into()),
            target_type: Some("admin".into()),
            target_id: Some("x|y=z".into()),
            ..Default::default()
        };
        let h = row_hash(prev, &rec).to_vec();
        Entry { rec, occurred_at: "2026-01-01T00:00:00+00:00".into(), prev_hash: prev.to_vec(), row_hash: h, rows: None }
    }

    #[test]
    fn archive_lines_read_back_and_chain() {
        let a = entry(1, &GENESIS);
        let b = entry(2, &a.row_hash);
        let mut chain = Chain { next_id: 1, prev: Some(GENESIS.to_vec()) };
        for e in [&a, &b] {
            let back = Entry::from_json(&e.archive_json()).unwrap();
            assert_eq!(back.rec, e.rec);
            chain.check(&back).unwrap();
        }
        // a gap, a rewritten entry, a changed prev
        assert!(Chain { next_id: 1, prev: Some(GENESIS.to_vec()) }.check(&b).unwrap_err().contains("entry 1 is missing"));
        let mut forged = b.clone();
        forged.rec.actor = "someone@else".into();
        assert!(Chain { next_id: 2, prev: Some(a.row_hash.clone()) }.check(&forged).unwrap_err().contains("changed"));
        assert!(Chain { next_id: 2, prev: Some(vec![1; 32]) }.check(&b).unwrap_err().contains("rewritten"));
    }

    #[test]
    fn syslog_and_cef_framing() {
        let e = entry(2, &GENESIS);
        let m = rfc5424(&e, "host", 42, "hello");
        assert!(m.starts_with("<110>1 2026-01-01T00:00:00+00:00 host fluxbase 42 audit [fluxbase@32473 id=\"2\" hash=\""), "{m}");
        assert!(m.ends_with("\"] hello"));
        let failed = entry(3, &GENESIS);
        assert!(rfc5424(&failed, "h", 1, "x").starts_with("<109>1 "));
        let c = cef_line(&e);
        assert!(c.starts_with("CEF:0|Fluxbase|fluxbase_admin|"), "{c}");
        assert!(c.contains("|admin.login|admin.login|3|"));
        assert!(c.contains("cs1=admin:x|y\\=z"), "{c}");
        assert!(c.contains("externalId=2") && c.contains("suser=root@example.com") && c.contains("src=10.0.0.1"));
        assert!(c.contains("msg={\"a\":1}"), "{c}");
    }

    #[test]
    fn command_line() {
        use crate::cli::{AuditCmd, Cli, Command};
        use clap::Parser;
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("fluxbase").chain(args.iter().copied()));
        let c = parse(&["-o", "cef", "audit", "tail", "-f", "--cursor-file", "/tmp/c", "--syslog", "tcp://h:1"]).unwrap();
        assert!(matches!(c.command, Command::Audit { cmd: Some(AuditCmd::Tail { follow: true, .. }), .. }));
        assert!(parse(&["audit", "tail", "--since", "0"]).is_err(), "ids start at 1");
        assert!(parse(&["audit", "tail", "--batch", "10001"]).is_err());
        assert!(parse(&["audit", "archive", "--before", "90d"]).is_err(), "--out is required");
        assert!(parse(&["audit", "archive", "--before", "90d", "--out", "/tmp/a"]).is_ok());
        assert!(parse(&["audit", "verify", "--archive", "a", "b"]).is_ok());
        assert!(parse(&["audit", "verify", "--archive"]).is_err());
        assert!(parse(&["audit", "verify", "--archive", "a", "--witness", "w"]).is_err());
    }

    #[test]
    fn intervals_and_hex() {
        assert_eq!(interval_text("90d"), "90 days");
        assert_eq!(interval_text("12h"), "12 hours");
        assert_eq!(interval_text("3 months"), "3 months");
        assert_eq!(from_hex("\\x0aff"), Some(vec![10, 255]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(to_hex(&[0, 171]), "00ab");
    }
}
