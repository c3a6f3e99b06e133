//! One host object made into a manifest entry: its metadata read without
//! following it, its class (regular, /dev, /proc, /sys), its digest.

use std::path::Path;

use super::{exe, Options};
use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Access, Class, Entry, Kind, Mode, Op};

/// What `lstat` said of a host path, and a symlink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u64,
    /// The file system it is on (a tree walk stays on one).
    pub dev: u64,
    pub ino: u64,
    /// Its names: one with others can change through them (see `watch`).
    pub nlink: u64,
    pub target: Option<Vec<u8>>,
}

impl Meta {
    /// Whether `other` says the same of the object as far as resolution
    /// and its entry go (not its inode or its count of names, which /proc
    /// changes as processes come and go).
    pub fn same_as(&self, other: &Meta) -> bool {
        (
            self.kind, self.mode, self.uid, self.gid, self.size, self.rdev, self.dev,
        ) == (
            other.kind, other.mode, other.uid, other.gid, other.size, other.rdev, other.dev,
        ) && self.target == other.target
    }
}

/// `lstat` on the host, as resolution needs it.
pub(super) fn lstat_host(path: &[u8]) -> Option<Meta> {
    lstat_at(rustix::fs::CWD, path)
}

/// `lstat` of `name` in the directory open as `dir` (an absolute `name`:
/// of that path): what [`lstat_host`] says of the joined path, without the
/// kernel's walking the directory's path once more (most of an `lstat`'s
/// time in a deep tree).
pub(super) fn lstat_at(dir: std::os::fd::BorrowedFd<'_>, name: &[u8]) -> Option<Meta> {
    use rustix::fs::{AtFlags, FileType};
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    let kind = kind_of(FileType::from_raw_mode(st.st_mode));
    let target = target_of(dir, name, kind);
    Some(Meta {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        rdev: st.st_rdev,
        dev: st.st_dev,
        ino: st.st_ino,
        nlink: st.st_nlink,
        target,
    })
}

/// [`lstat_at`] through `statx`, which also says whether the object is a
/// mount's root (`Err` when the kernel does not say).
pub(super) fn look_at(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &[u8],
) -> Result<Option<(Meta, bool)>, ()> {
    use rustix::fs::{AtFlags, FileType, StatxAttributes, StatxFlags};
    // As `fstatat` does by itself: an automount point is not mounted by
    // being looked at.
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT | AtFlags::STATX_SYNC_AS_STAT;
    let Ok(st) = rustix::fs::statx(dir, name, flags, StatxFlags::BASIC_STATS) else {
        return Ok(None);
    };
    if !st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
        return Err(());
    }
    let mode = u32::from(st.stx_mode);
    let kind = kind_of(FileType::from_raw_mode(mode));
    let target = target_of(dir, name, kind);
    let meta = Meta {
        kind,
        mode: mode & 0o7777,
        uid: st.stx_uid,
        gid: st.stx_gid,
        size: st.stx_size,
        rdev: libc::makedev(st.stx_rdev_major, st.stx_rdev_minor),
        dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        nlink: u64::from(st.stx_nlink),
        target,
    };
    Ok(Some((
        meta,
        st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT),
    )))
}

/// A symlink's target (`None` for anything else, or one gone since).
fn target_of(dir: std::os::fd::BorrowedFd<'_>, name: &[u8], kind: Kind) -> Option<Vec<u8>> {
    (kind == Kind::Symlink)
        .then(|| rustix::fs::readlinkat(dir, name, Vec::new()).ok())
        .flatten()
        .map(std::ffi::CString::into_bytes)
}

fn kind_of(t: rustix::fs::FileType) -> Kind {
    use rustix::fs::FileType;
    match t {
        FileType::Symlink => Kind::Symlink,
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        FileType::CharacterDevice => Kind::Chardev,
        FileType::BlockDevice => Kind::Blockdev,
        FileType::Socket => Kind::Socket,
        _ => Kind::Fifo,
    }
}

pub(super) fn is_proc(p: &[u8]) -> bool {
    p == b"/proc" || p.starts_with(b"/proc/")
}

/// `found`: whether the object was there when the program first touched
/// the path (true for paths it never named itself, like ancestors).
pub(super) fn make_entry(
    path: MPath,
    meta: Option<Meta>,
    mut accesses: Vec<Access>,
    found: bool,
    opts: &Options,
) -> Entry {
    accesses.sort();
    let kind = meta.as_ref().map_or(Kind::Missing, |m| m.kind);
    let class = classify(&path, kind);
    // A device is a gate to the kernel, never something a program makes
    // data in: writing /dev/null does not make it an output.
    let device = matches!(kind, Kind::Chardev | Kind::Blockdev);
    let ok = |pred: fn(Op) -> bool| accesses.iter().any(|a| pred(a.op) && a.result.is_ok());
    let output = !device && ok(Op::is_output);
    let mut e = Entry::new(path, kind, class);
    e.output = output;
    e.created = !device && !found && ok(Op::creates);
    if class == Class::Proc {
        // The tracer's own /proc is not the tracee's: keep only the kind,
        // and never claim a symlink target we cannot know.
        e.created = false;
        if e.kind == Kind::Missing && accesses.iter().any(|a| a.result.is_ok()) {
            e.kind = Kind::File;
        }
        e.accesses = accesses;
        return e;
    }
    if let Some(m) = meta {
        e.mode = Some(Mode(m.mode));
        e.uid = Some(m.uid);
        e.gid = Some(m.gid);
        match m.kind {
            Kind::File if class == Class::Regular && !output => {
                e.size = Some(m.size);
                if opts.hash {
                    e.sha256 = sha256_file(e.path.as_path());
                }
            }
            Kind::Symlink => e.target = m.target.map(crate::core::manifest::pathenc::Bytes),
            Kind::Chardev | Kind::Blockdev => {
                e.major = Some(libc::major(m.rdev));
                e.minor = Some(libc::minor(m.rdev));
            }
            _ => {}
        }
        if m.kind == Kind::Symlink && e.target.is_none() {
            e.kind = Kind::Missing;
            e.mode = None;
            e.uid = None;
            e.gid = None;
        }
    }
    e.accesses = accesses;
    e
}

/// Decides how `materialize` treats a path.
pub fn classify(path: &MPath, kind: Kind) -> Class {
    let first = path.components().next();
    match first {
        Some(b"proc") => Class::Proc,
        Some(b"sys") => Class::Sys,
        Some(b"dev") => Class::Dev,
        _ if matches!(kind, Kind::Chardev | Kind::Blockdev) => Class::Dev,
        _ => Class::Regular,
    }
}

pub(super) fn sha256_file(path: &Path) -> Option<String> {
    crate::core::manifest::sha256_hex(exe::open_regular(path)?).ok()
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    /// Looked at relative to its directory, an object gives what `lstat`
    /// of its whole path gives: a directory, a file, a symlink with its
    /// target, a device, a socket, and nothing.
    #[test]
    fn lstat_at_is_lstat_of_the_joined_path() {
        let tmp = std::env::temp_dir().join(format!("jailtrace-lstat-at-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("file"), b"twelve bytes").unwrap();
        std::os::unix::fs::symlink("../some/where", tmp.join("link")).unwrap();
        std::fs::create_dir(tmp.join("dir")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(tmp.join("sock")).unwrap();
        let cases: [(&Path, &str); 7] = [
            (&tmp, "file"),
            (&tmp, "link"),
            (&tmp, "dir"),
            (&tmp, "sock"),
            (&tmp, "absent"),
            (Path::new("/dev"), "null"),
            (Path::new("/"), "etc"),
        ];
        for (dir, name) in cases {
            let fd = std::fs::File::open(dir).unwrap();
            let at = lstat_at(std::os::fd::AsFd::as_fd(&fd), name.as_bytes());
            let full = lstat_host(dir.join(name).as_os_str().as_bytes());
            let (looked, _) = look_at(std::os::fd::AsFd::as_fd(&fd), name.as_bytes())
                .expect("statx says which objects are mount roots")
                .unzip();
            assert_eq!(looked, at, "statx: {}", dir.join(name).display());
            assert_eq!(
                format!("{at:?}"),
                format!("{full:?}"),
                "{}",
                dir.join(name).display()
            );
        }
        // statx says which objects are a mount's root.
        let root = |dir: &Path, name: &str| {
            let fd = std::fs::File::open(dir).unwrap();
            look_at(std::os::fd::AsFd::as_fd(&fd), name.as_bytes())
                .unwrap()
                .unwrap()
                .1
        };
        assert!(root(Path::new("/"), "proc"));
        assert!(!root(&tmp, "dir"));
        let link = lstat_host(tmp.join("link").as_os_str().as_bytes()).unwrap();
        assert_eq!(link.target.as_deref(), Some(&b"../some/where"[..]));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
