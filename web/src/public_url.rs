//! The dashboard's public origin (`--public-url`): the links the server hands
//! out (invitations) are built from it, never from a request's Host header
//! (issue 28 item 5). A leaf: `serve` sets it, routes read it.

use anyhow::bail;

pub(crate) static PUBLIC_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The dashboard's public origin (`--public-url`, else the listen address's
/// URL; `http://localhost` outside `serve`): links the server hands out
/// are built from it, never from a request's Host header (issue 28 item 5).
pub fn public_url() -> &'static str {
    PUBLIC_URL.get().map(String::as_str).unwrap_or("http://localhost")
}

/// `--public-url`: an http(s) URL without query or fragment; no trailing `/`.
pub fn check(u: &str) -> anyhow::Result<String> {
    let u = u.trim().trim_end_matches('/');
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && r.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#' && b != b'\\') => {
            Ok(u.to_string())
        }
        _ => bail!("--public-url must be an http:// or https:// URL without query or fragment (got {u:?})"),
    }
}
