//! Which files a signature covers, and their SHA-256 digests.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::Reason;
use crate::hex::hex;

/// Where a bundle's signature lives, inside the bundle; it is the one file it does not cover.
pub const BUNDLE_SIGNATURE: &str = ".signature.dsse.json";

/// Directories nest at most this deep: a symlink loop must not hang a load.
const MAX_DEPTH: usize = 16;

/// Every file in a bundle directory (symlinks followed, as ConfigMap mounts need) by its
/// `/`-separated relative path, with its SHA-256. Only the signature itself, the `..`-prefixed
/// entries a ConfigMap mount adds and `.git` metadata are left out: any other file added to
/// a signed bundle, README or not, is a change the signer did not approve.
pub fn bundle_files(dir: &Path) -> Result<BTreeMap<String, String>, (Reason, String)> {
    let mut files = BTreeMap::new();
    walk(dir, "", 0, &mut files)?;
    Ok(files)
}

fn walk(dir: &Path, prefix: &str, depth: usize, files: &mut BTreeMap<String, String>) -> Result<(), (Reason, String)> {
    if depth > MAX_DEPTH {
        return Err((Reason::Unreadable, format!("{}: nests deeper than {MAX_DEPTH} levels", dir.display())));
    }
    let entries = std::fs::read_dir(dir).map_err(unreadable(dir))?;
    for entry in entries {
        let path = entry.map_err(unreadable(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Err((Reason::Unreadable, format!("{}: the file name is not UTF-8", path.display())));
        };
        if (depth == 0 && name == BUNDLE_SIGNATURE) || name.starts_with("..") || name == ".git" {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let metadata = std::fs::metadata(&path).map_err(unreadable(&path))?;
        if metadata.is_dir() {
            walk(&path, &format!("{relative}/"), depth + 1, files)?;
        } else if metadata.is_file() {
            files.insert(relative, sha256_file(&path).map_err(unreadable(&path))?);
        } else {
            // A FIFO or a device (a symlink to /dev/zero) would block or never end.
            return Err((Reason::Unreadable, format!("{}: not a regular file", path.display())));
        }
    }
    Ok(())
}

pub use crate::hex::sha256_hex;

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

pub fn unreadable(path: &Path) -> impl Fn(io::Error) -> (Reason, String) + '_ {
    move |e| (Reason::Unreadable, format!("{}: {e}", path.display()))
}
