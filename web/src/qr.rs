//! QR codes as SVG drawn by the page's template (`account/index_partial.html`):
//! the code's dark modules become one path's data (digits and letters only),
//! so the page carries no style attribute and no HTML built by hand.

use qrcode::{Color, QrCode};

/// Margin around the code, in modules (the standard's quiet zone).
const QUIET: usize = 4;

pub struct Qr {
    /// Width and height in modules, quiet zone included.
    pub size: usize,
    /// SVG path data of the dark modules.
    pub path: String,
    pub label: String,
}

impl Qr {
    pub fn new(text: &str, label: &str) -> Option<Qr> {
        let code = QrCode::new(text.as_bytes()).ok()?;
        let w = code.width();
        let mut path = String::new();
        for (i, c) in code.to_colors().iter().enumerate() {
            if *c == Color::Dark {
                let (x, y) = (i % w + QUIET, i / w + QUIET);
                path.push_str(&format!("M{x} {y}h1v1h-1z"));
            }
        }
        Some(Qr { size: w + 2 * QUIET, path, label: label.to_string() })
    }
}
