//! The saved admin session: one token in a file only its owner can read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use crate::fail::Fail;

/// $FLUXBASE_SESSION_FILE, else ~/.config/fluxbase/session.
pub fn path() -> PathBuf {
    if let Some(p) = std::env::var_os("FLUXBASE_SESSION_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("fluxbase").join("session")
}

/// The saved token, if any. Refuses a file that others can read.
pub fn load() -> Result<Option<String>, Fail> {
    let p = path();
    let meta = match fs::metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Fail::failure(format!("cannot read the session file {}: {e}", p.display()))),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Fail::denied(format!(
            "the session file {} is readable by other users: run `chmod 600 {}` or `fluxbase logout`",
            p.display(),
            p.display()
        )));
    }
    let token = fs::read_to_string(&p).map_err(|e| Fail::failure(format!("cannot read the session file {}: {e}", p.display())))?;
    let token = token.trim().to_string();
    Ok(if token.is_empty() { None } else { Some(token) })
}

/// Save the token with mode 0600 (directory 0700), replacing any older one.
pub fn save(token: &str) -> Result<PathBuf, Fail> {
    let p = path();
    let err = |e: std::io::Error| Fail::failure(format!("cannot write the session file {}: {e}", p.display()));
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
        }
    }
    // Write a private temporary file, then rename: the token is never readable by others.
    let tmp = p.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(err)?;
    f.write_all(format!("{token}\n").as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(err)?;
    fs::rename(&tmp, &p).map_err(err)?;
    Ok(p)
}

pub fn remove() -> Result<bool, Fail> {
    let p = path();
    match fs::remove_file(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Fail::failure(format!("cannot remove the session file {}: {e}", p.display()))),
    }
}
