//! The static files (htmx, app.js, app.css), embedded in the binary. Each is
//! hashed (SHA-384) once: the pages link them with `integrity=` and a `?v=`
//! cache buster, and they are served with a year's max-age.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rust_embed::Embed;
use sha2::{Digest, Sha384};

use crate::urls::Url;

#[derive(Embed)]
#[folder = "assets/"]
struct Files;

/// One asset's URL (with `?v=`) and its `integrity` value.
pub struct Link {
    pub href: String,
    pub integrity: String,
}

/// The assets every page links.
pub struct Links {
    pub css: Link,
    pub htmx: Link,
    pub js: Link,
    pub icon: Link,
}

struct Asset {
    bytes: Vec<u8>,
    mime: &'static str,
}

static FILES: LazyLock<HashMap<String, Asset>> = LazyLock::new(|| {
    Files::iter()
        .filter_map(|name| {
            let f = Files::get(&name)?;
            let mime = match name.rsplit('.').next() {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                _ => "application/octet-stream",
            };
            Some((name.to_string(), Asset { bytes: f.data.into_owned(), mime }))
        })
        .collect()
});

fn link(name: &str) -> Link {
    // A missing asset is a build error of ours: stop at startup, not later.
    let a = FILES.get(name).unwrap_or_else(|| panic!("asset {name} is not embedded"));
    let digest = Sha384::digest(&a.bytes);
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    Link {
        href: format!("{}/{name}?v={}", Url::Assets.path(), hex::encode(&digest[..6])),
        integrity: format!("sha384-{b64}"),
    }
}

static LINKS: LazyLock<Links> =
    LazyLock::new(|| Links { css: link("app.css"), htmx: link("htmx.min.js"), js: link("app.js"), icon: link("favicon.svg") });

/// The links (hashing every asset on first use; `serve` calls it at startup).
pub fn links() -> &'static Links {
    &LINKS
}

pub async fn get(Path(name): Path<String>) -> Response {
    match FILES.get(&name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(a.mime)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
            ],
            a.bytes.clone(),
        )
            .into_response(),
        None => crate::error::WebError::NotFound("No such file.".into()).into_response(),
    }
}
