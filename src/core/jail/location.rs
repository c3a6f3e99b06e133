//! Where a jail lives. Whoever can write a directory above the jail can
//! rename the jail away and put a tree of their own in its place, between
//! `materialize` and `run`, or under a running daemon's next exec. jailkit
//! refuses such a location for the same reason.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An ancestor of the jail that someone besides root and the jail's owner
/// could write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableAncestor {
    pub dir: PathBuf,
    pub why: String,
}

/// The ancestors of `jail` (canonical: symlinks on the way are resolved)
/// that group, others, or an owner other than root and `owner` can write.
/// The sticky bit does not help: it stops others from renaming what they do
/// not own, but they can still take a name the jail's owner removes or has
/// not made yet.
pub fn writable_ancestors(jail: &Path, owner: u32) -> Vec<WritableAncestor> {
    let Ok(canon) = std::fs::canonicalize(jail) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dir in canon.ancestors().skip(1) {
        let Ok(md) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = md.mode() & 0o7777;
        let mut who = Vec::new();
        if mode & 0o020 != 0 {
            who.push(format!("group {}", md.gid()));
        }
        if mode & 0o002 != 0 {
            who.push("everyone".to_string());
        }
        if md.uid() != 0 && md.uid() != owner {
            who.push(format!("its owner, uid {}", md.uid()));
        }
        if !who.is_empty() {
            let sticky = if mode & 0o1000 != 0 { ", sticky" } else { "" };
            out.push(WritableAncestor {
                dir: dir.to_path_buf(),
                why: format!(
                    "{} (mode {mode:04o}{sticky}) can be written by {}, who can replace the jail beneath it",
                    dir.display(),
                    who.join(" and ")
                ),
            });
        }
    }
    out
}

/// True when `dir` is the host's root directory: the same (device, inode)
/// as `/`. Comparing paths is not enough: a bind mount of `/` elsewhere, or
/// a path that canonicalizes differently, names the same directory.
pub fn is_host_root(dir: std::os::fd::BorrowedFd<'_>) -> nix::Result<bool> {
    let d = nix::sys::stat::fstat(dir)?;
    let r = nix::sys::stat::stat("/")?;
    Ok((d.st_dev, d.st_ino) == (r.st_dev, r.st_ino))
}
