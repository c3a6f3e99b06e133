//! Looking inside the jail without leaving it, and what a user may read
//! on the host.

use super::internal;
use crate::core::manifest::{Entry, Kind};
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Read-only lookups inside the jail that never leave it: every path is
/// resolved with the jail as root (`RESOLVE_IN_ROOT`), so a symlink in the
/// jail pointing at a host FIFO or device cannot make root open it.
pub(super) struct JailView {
    root: std::os::fd::OwnedFd,
}

impl JailView {
    pub(super) fn open(jail: &Path) -> anyhow::Result<JailView> {
        let root = nix::fcntl::open(
            jail,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| {
            internal(format!(
                "{}: cannot open the jail: {}",
                jail.display(),
                e.desc()
            ))
        })?;
        Ok(JailView { root })
    }

    pub(super) fn openat(
        &self,
        path: &[u8],
        flags: nix::fcntl::OFlag,
    ) -> Option<std::os::fd::OwnedFd> {
        use nix::fcntl::OFlag;
        let rel = std::ffi::OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(path));
        let rel = if rel.is_empty() {
            std::ffi::OsStr::new(".")
        } else {
            rel
        };
        // openat2 refuses O_PATH with flags it would ignore.
        let extra = if flags.contains(OFlag::O_PATH) {
            OFlag::empty()
        } else {
            OFlag::O_NOCTTY | OFlag::O_NONBLOCK
        };
        use std::os::fd::AsFd;
        crate::core::jail::beneath::open(
            self.root.as_fd(),
            rel,
            flags | extra,
            crate::core::jail::beneath::Resolve::InRoot,
        )
        .ok()
    }

    /// Whether the jail lacks the host object of `e`, or holds a regular
    /// file of another size in its place (made empty by an `O_CREAT` open
    /// of the failed run, say): materialize would put it right.
    pub(super) fn lacks(&self, e: &Entry) -> bool {
        use crate::core::manifest::Class;
        use nix::fcntl::OFlag;
        if e.kind == Kind::Missing || !matches!(e.class, Class::Regular | Class::Dev) {
            return false;
        }
        let Some(fd) = self.openat(e.path.as_bytes(), OFlag::O_PATH | OFlag::O_NOFOLLOW) else {
            return true;
        };
        if e.kind != Kind::File {
            return false;
        }
        let (Ok(jail), Ok(host)) = (
            nix::sys::stat::fstat(&fd),
            std::fs::symlink_metadata(e.path.as_path()),
        ) else {
            return false;
        };
        use std::os::unix::fs::MetadataExt;
        jail.st_size as u64 != host.size()
    }

    /// Why the jail's copy of a file the program found has lost what the
    /// host gave it, if it has: gone, empty where the recording saw bytes,
    /// or other bytes than the recorded sha256. A file the jailed program
    /// only changed is left alone.
    pub(super) fn lost_content(&self, e: &Entry) -> Option<&'static str> {
        use crate::core::manifest::Class;
        use nix::fcntl::OFlag;
        if e.created || e.kind != Kind::File || e.class != Class::Regular {
            return None;
        }
        let Some(fd) = self.openat(e.path.as_bytes(), OFlag::O_PATH | OFlag::O_NOFOLLOW) else {
            return Some("missing in the jail");
        };
        let st = nix::sys::stat::fstat(&fd).ok()?;
        // The recorded size, or the host's for a file the program only
        // wrote (no size is recorded for it).
        let had_bytes = e.size.map_or_else(
            || {
                std::fs::symlink_metadata(e.path.as_path())
                    .is_ok_and(|m| m.is_file() && m.len() > 0)
            },
            |s| s > 0,
        );
        if st.st_size == 0 && had_bytes {
            return Some("empty in the jail, not on the host");
        }
        let h = e.sha256.as_deref()?;
        let f = self.regular_file(e.path.as_bytes())?;
        let jail = crate::core::manifest::sha256_hex(f).ok()?;
        (!jail.eq_ignore_ascii_case(h)).then_some("other bytes than the recorded sha256")
    }

    pub(super) fn exists(&self, path: &[u8], follow: bool) -> bool {
        use nix::fcntl::OFlag;
        let flags = if follow {
            OFlag::O_PATH
        } else {
            OFlag::O_PATH | OFlag::O_NOFOLLOW
        };
        self.openat(path, flags).is_some()
    }

    /// A regular file of the jail, opened for reading.
    pub(super) fn regular_file(&self, path: &[u8]) -> Option<std::fs::File> {
        let f = std::fs::File::from(self.openat(path, nix::fcntl::OFlag::O_RDONLY)?);
        f.metadata().ok()?.is_file().then_some(f)
    }

    pub(super) fn names(&self, dir: &[u8]) -> Option<BTreeSet<Vec<u8>>> {
        use nix::fcntl::OFlag;
        let fd = self.openat(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let d = nix::dir::Dir::from_fd(fd).ok()?;
        Some(
            d.into_iter()
                .flatten()
                .map(|e| e.file_name().to_bytes().to_vec())
                .filter(|n| n != b"." && n != b"..")
                .collect(),
        )
    }
}

/// Whether `uid` (with `gid` and `groups`) may read `path` on the host,
/// judged from the mode bits of the path and the search bits of its
/// ancestors. `--fix` copies nothing the jail's user could not read
/// anyway: no /etc/shadow, no private keys, nothing under /root.
pub(super) fn readable_by(path: &Path, uid: u32, gid: u32, groups: &[u32]) -> bool {
    use std::os::unix::fs::MetadataExt;
    if uid == 0 {
        return true;
    }
    let mut gids = groups.to_vec();
    gids.push(gid);
    let allowed = |md: &std::fs::Metadata, bit: u32| {
        crate::core::perm::bits_for(md.mode(), (md.uid(), md.gid()), uid, &gids) & bit != 0
    };
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    for anc in real.ancestors().skip(1) {
        match std::fs::metadata(anc) {
            Ok(md) if allowed(&md, crate::core::perm::SEARCH) => {}
            _ => return false,
        }
    }
    match std::fs::metadata(&real) {
        Ok(md) if md.is_dir() => {
            allowed(&md, crate::core::perm::READ) || allowed(&md, crate::core::perm::SEARCH)
        }
        Ok(md) => allowed(&md, crate::core::perm::READ),
        Err(_) => false,
    }
}
