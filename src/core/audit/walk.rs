//! Walking a jail without ever following a symlink: every directory is
//! opened with `openat(O_NOFOLLOW|O_DIRECTORY)` relative to its parent's
//! descriptor (and must be the directory its parent listed, by device and
//! inode) and every entry is examined with `fstatat(AT_SYMLINK_NOFOLLOW)`,
//! so a symlink (or a directory swapped for one meanwhile) never leads the
//! audit out of the jail. The walk is iterative and holds a bounded number
//! of descriptors, so no depth of nesting stops it.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::core::jail::host::{self, NotOpened};

/// How much of a small regular file is read to look for a private key.
pub const KEY_SCAN_LIMIT: u64 = 64 * 1024;
/// Files read whole for the account checks.
pub const ACCOUNT_FILES: [&[u8]; 5] = [
    b"/etc/passwd",
    b"/etc/shadow",
    b"/etc/gshadow",
    b"/etc/shadow-",
    b"/etc/gshadow-",
];
const ACCOUNT_LIMIT: u64 = 1024 * 1024;

/// What a walk saw of one object in the jail.
#[derive(Debug, Clone)]
pub struct Node {
    /// Path inside the jail, absolute (`/usr/bin/sh`).
    pub path: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
    pub size: u64,
    /// First bytes start with `\x7fELF`.
    pub elf: bool,
    /// First bytes start with `#!`.
    pub script: bool,
    /// Small file containing a PEM or OpenSSH private key header.
    pub private_key: bool,
    /// Whole content, for the account files ([`ACCOUNT_FILES`]) only.
    pub content: Option<Vec<u8>>,
    /// File capabilities (`security.capability`): privileges on exec, as
    /// setuid gives.
    pub caps: bool,
    /// Who a POSIX ACL (`system.posix_acl_access`) lets write it beyond
    /// the mode bits: named users and groups whose entry, under the mask,
    /// has write.
    pub acl_writers: Vec<AclWriter>,
}

/// A named ACL entry with write permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclWriter {
    User(u32),
    Group(u32),
}

/// The named writers of an ACL in the kernel's xattr form: a 4-byte
/// version (2), then 8-byte entries (tag, permissions, id).
pub fn acl_writers(xattr: &[u8]) -> Vec<AclWriter> {
    const USER: u16 = 0x02;
    const GROUP: u16 = 0x08;
    const MASK: u16 = 0x10;
    const WRITE: u16 = 0x02;
    if xattr.len() < 4 || u32::from_le_bytes([xattr[0], xattr[1], xattr[2], xattr[3]]) != 2 {
        return Vec::new();
    }
    let entries: Vec<(u16, u16, u32)> = xattr[4..]
        .chunks_exact(8)
        .map(|e| {
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            )
        })
        .collect();
    // Named entries count only through the mask.
    let mask = entries
        .iter()
        .find(|e| e.0 == MASK)
        .map_or(u16::MAX, |e| e.1);
    entries
        .iter()
        .filter(|e| e.1 & mask & WRITE != 0)
        .filter_map(|&(tag, _, id)| match tag {
            USER => Some(AclWriter::User(id)),
            GROUP => Some(AclWriter::Group(id)),
            _ => None,
        })
        .collect()
}

impl Node {
    pub fn file_type(&self) -> SFlag {
        SFlag::from_bits_truncate(self.mode & SFlag::S_IFMT.bits())
    }

    pub fn is(&self, t: SFlag) -> bool {
        self.file_type() == t
    }

    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }

    pub fn name(&self) -> &[u8] {
        match self.path.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.path[i + 1..],
            None => &self.path,
        }
    }

    pub fn parent(&self) -> &[u8] {
        match self.path.iter().rposition(|&b| b == b'/') {
            Some(0) | None => b"/",
            Some(i) => &self.path[..i],
        }
    }
}

fn node(path: Vec<u8>, st: &FileStat) -> Node {
    Node {
        path,
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        dev: st.st_dev,
        ino: st.st_ino,
        nlink: st.st_nlink,
        rdev: st.st_rdev,
        size: st.st_size as u64,
        elf: false,
        script: false,
        private_key: false,
        content: None,
        caps: false,
        acl_writers: Vec::new(),
    }
}

/// The ACL of `name` in `dir`, read through the directory's descriptor
/// (`/proc/self/fd/N/NAME`, without following a final symlink), so that no
/// path outside the walk's is resolved.
fn read_acl(dir: BorrowedFd<'_>, name: &[u8], n: &mut Node) {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    let path = std::ffi::OsStr::from_bytes(&path);
    const ACL: &str = "system.posix_acl_access";
    // Sized by the kernel: a long ACL must not hide a grant past a fixed
    // buffer (it is at most 64 KiB, the xattr limit).
    let Ok(size) = rustix::fs::lgetxattr_query(path, ACL) else {
        return;
    };
    let mut buf = vec![0u8; size];
    if let Ok(len) = rustix::fs::lgetxattr(path, ACL, &mut buf[..]) {
        n.acl_writers = acl_writers(&buf[..len.min(size)]);
    }
}

/// An object the walk could not examine: anything could hide in or behind
/// it, so the audit reports it (see `audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexamined {
    /// Path inside the jail, absolute.
    pub path: Vec<u8>,
    pub reason: String,
}

/// The result of a walk.
#[derive(Debug, Default)]
pub struct Walk {
    pub nodes: Vec<Node>,
    /// Objects that could not be examined.
    pub errors: Vec<Unexamined>,
}

impl Walk {
    fn error(&mut self, path: &[u8], reason: String) {
        let path = if path.is_empty() {
            b"/".to_vec()
        } else {
            path.to_vec()
        };
        self.errors.push(Unexamined { path, reason });
    }
}

/// At most this many directory descriptors are held at once, besides the
/// root's, however deep the jail: deeper directories are closed and
/// re-opened from the root, one component at a time, when the walk comes
/// back to them. A recursive walk holding one descriptor per level ran out
/// of descriptors (EMFILE) past ~1000 levels, and what lay below went
/// unexamined.
pub const MAX_OPEN_DIRS: usize = 64;

/// A directory on the walk's current path.
struct Frame {
    /// Jail path without a trailing slash (empty for the root).
    path: Vec<u8>,
    /// Name in the parent directory (empty for the root).
    name: Vec<u8>,
    /// (st_dev, st_ino), to check that a re-opened directory is this one.
    id: (u64, u64),
    fd: Option<OwnedFd>,
    /// Subdirectories still to enter, last first, with the (st_dev, st_ino)
    /// the listing saw.
    subdirs: Vec<(Vec<u8>, (u64, u64))>,
}

/// Opens the directory `name` in `dir` without following a symlink and
/// checks that it is the directory that was listed (`id`).
fn open_dir(dir: BorrowedFd<'_>, name: &[u8], id: (u64, u64)) -> Result<OwnedFd, String> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open: {}", e.desc()))?;
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| format!("cannot stat: {}", e.desc()))?;
    if (st.st_dev, st.st_ino) != id {
        return Err("replaced by another directory during the audit".into());
    }
    Ok(fd)
}

/// Walks the jail opened as `root`. Directories whose jail path is in
/// `skip` (pseudo filesystems mounted inside) are listed but not entered.
/// Iterative, depth first, with at most [`MAX_OPEN_DIRS`] + 1 directory
/// descriptors open.
pub fn walk(root: OwnedFd, skip: &HashSet<Vec<u8>>) -> nix::Result<Walk> {
    let st = nix::sys::stat::fstat(root.as_fd())?;
    let mut w = Walk::default();
    w.nodes.push(node(b"/".to_vec(), &st));
    if skip.contains(b"/".as_slice()) {
        return Ok(w);
    }
    let subdirs = list(&mut w, root.as_fd(), b"", skip);
    let mut stack = vec![Frame {
        path: Vec::new(),
        name: Vec::new(),
        id: (st.st_dev, st.st_ino),
        fd: Some(root),
        subdirs,
    }];
    // Frames [lo, len) hold open descriptors; the root (0) always does, and
    // the others between 1 and lo are closed.
    let mut lo = 1;
    while let Some(top) = stack.last_mut() {
        let Some((name, id)) = top.subdirs.pop() else {
            stack.pop();
            lo = lo.min(stack.len().max(1));
            continue;
        };
        let parent = stack.len() - 1;
        let path = join(&stack[parent].path, &name);
        if stack[parent].fd.is_none() {
            if let Err(failed) = reopen(&mut w, &mut stack) {
                // Everything below the directory that could not be re-opened
                // is out of reach.
                let why = "not examined: a directory above it could not be re-opened";
                w.error(&path, why.into());
                for f in stack.drain(failed..) {
                    for (sub, _) in f.subdirs {
                        w.error(&join(&f.path, &sub), why.into());
                    }
                }
                lo = lo.min(stack.len().max(1));
                continue;
            }
            lo = stack.len().saturating_sub(MAX_OPEN_DIRS).max(1);
        }
        let dir = stack[parent].fd.as_ref().expect("parent is open").as_fd();
        let fd = match open_dir(dir, &name, id) {
            Ok(fd) => fd,
            Err(reason) => {
                w.error(&path, reason);
                continue;
            }
        };
        let subdirs = list(&mut w, fd.as_fd(), &path, skip);
        stack.push(Frame {
            path,
            name,
            id,
            fd: Some(fd),
            subdirs,
        });
        if stack.len() - lo > MAX_OPEN_DIRS {
            stack[lo].fd = None;
            lo += 1;
        }
    }
    Ok(w)
}

/// Re-opens every frame below the root, from the root down, one component
/// at a time, keeping the descriptors of the last [`MAX_OPEN_DIRS`]. On
/// failure, records why and returns the index of the frame that could not
/// be opened.
fn reopen(w: &mut Walk, stack: &mut [Frame]) -> Result<(), usize> {
    let keep_from = stack.len().saturating_sub(MAX_OPEN_DIRS).max(1);
    let mut prev: Option<OwnedFd> = None;
    for i in 1..stack.len() {
        let opened = {
            let dir = match &prev {
                Some(fd) => fd.as_fd(),
                None => stack[0].fd.as_ref().expect("the root stays open").as_fd(),
            };
            open_dir(dir, &stack[i].name, stack[i].id)
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(reason) => {
                w.error(&stack[i].path, format!("cannot re-open: {reason}"));
                return Err(i);
            }
        };
        if i >= keep_from {
            let dup = fd.try_clone().map_err(|e| {
                w.error(&stack[i].path, format!("cannot re-open: {e}"));
                i
            })?;
            stack[i].fd = Some(dup);
        }
        prev = Some(fd);
    }
    Ok(())
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// Lists the directory `dir` (jail path `dir_path`, without a trailing
/// slash, empty for the root), examines every entry, and returns the
/// subdirectories to enter, last first.
fn list(
    w: &mut Walk,
    dir: BorrowedFd<'_>,
    dir_path: &[u8],
    skip: &HashSet<Vec<u8>>,
) -> Vec<(Vec<u8>, (u64, u64))> {
    let mut names = Vec::new();
    let listed = dir
        .try_clone_to_owned()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        .and_then(Dir::from_fd)
        .and_then(|mut d| {
            for e in d.iter() {
                let name = e?.file_name().to_bytes().to_vec();
                if name != b"." && name != b".." {
                    names.push(name);
                }
            }
            Ok(())
        });
    if let Err(e) = listed {
        w.error(dir_path, format!("cannot list: {}", e.desc()));
    }
    // By name, so that the walk's order does not depend on the filesystem.
    names.sort();
    let mut subdirs = Vec::new();
    for name in names {
        let path = join(dir_path, &name);
        let st = match nix::sys::stat::fstatat(dir, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) => {
                w.error(&path, format!("cannot stat: {}", e.desc()));
                continue;
            }
        };
        let mut n = node(path.clone(), &st);
        if !n.is(SFlag::S_IFLNK) {
            read_acl(dir, &name, &mut n);
        }
        match n.file_type() {
            SFlag::S_IFREG => {
                if let Err(reason) = sniff(dir, &name, &mut n) {
                    w.error(&path, reason);
                }
            }
            SFlag::S_IFDIR if !skip.contains(&path) => {
                subdirs.push((name, (st.st_dev, st.st_ino)));
            }
            _ => {}
        }
        w.nodes.push(n);
    }
    subdirs.reverse();
    subdirs
}

/// Reads the start of a regular file (and all of a small one) to tell
/// ELF, scripts and private keys apart. Opened as every untrusted file is
/// ([`host::open_untrusted`]): if the file was swapped for a symlink, a
/// FIFO, a device or another file after the listing, it is not read.
fn sniff(dir: BorrowedFd<'_>, name: &[u8], n: &mut Node) -> Result<(), String> {
    const REPLACED: &str = "replaced by another file during the audit";
    let listed = |_: BorrowedFd<'_>, st: &FileStat| {
        if (st.st_dev, st.st_ino) == (n.dev, n.ino) {
            Ok(())
        } else {
            Err(REPLACED.to_string())
        }
    };
    let (mut file, _) = host::open_untrusted(dir, name, listed).map_err(|e| match e {
        NotOpened::Look(e) | NotOpened::Open(e) => format!("cannot open: {}", e.desc()),
        NotOpened::Stat(e) => format!("cannot stat: {}", e.desc()),
        NotOpened::Symlink | NotOpened::SymlinkOnTheWay | NotOpened::NotRegular(_) => {
            REPLACED.to_string()
        }
        NotOpened::Refused(why) => why,
    })?;
    // Present at all is what counts (ERANGE too: a larger one than known).
    n.caps = rustix::fs::fgetxattr_query(&file, "security.capability").is_ok();
    let unreadable = |e: std::io::Error| format!("cannot read: {e}");
    let mut head = Vec::with_capacity(16);
    (&mut file)
        .take(16)
        .read_to_end(&mut head)
        .map_err(unreadable)?;
    let head = head.as_slice();
    n.elf = head.starts_with(b"\x7fELF");
    n.script = head.starts_with(b"#!");
    let wants_all = ACCOUNT_FILES.contains(&n.path.as_slice()) && n.size <= ACCOUNT_LIMIT;
    // Only files that look like PEM or are named like keys or certificates
    // are read further: reading every small file would make large jails
    // slow, and a key embedded in source code is not a key file.
    let pem_like = head.starts_with(b"-----BEGIN ") || head.starts_with(b"Bag Attributes");
    let key_name = key_file_name(n.name());
    let wants_key = !n.elf && n.size <= KEY_SCAN_LIMIT && (pem_like || key_name);
    if !wants_all && !wants_key {
        return Ok(());
    }
    let mut buf = head.to_vec();
    let limit = if wants_all {
        ACCOUNT_LIMIT
    } else {
        KEY_SCAN_LIMIT
    };
    (&mut file)
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(unreadable)?;
    if wants_key {
        n.private_key = pem_private_key().is_match(&buf);
    }
    if wants_all {
        n.content = Some(buf);
    }
    Ok(())
}

fn key_file_name(name: &[u8]) -> bool {
    [
        b".pem".as_slice(),
        b".key",
        b".crt",
        b".cer",
        b".p8",
        b".pk8",
    ]
    .iter()
    .any(|s| name.ends_with(s))
        || name.starts_with(b"id_")
        || name.starts_with(b"ssh_host_")
}

/// A PEM or OpenSSH private key block: the BEGIN line at the start of a
/// line, then (after optional encryption headers) a line of base64.
fn pem_private_key() -> &'static regex::bytes::Regex {
    static RE: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::bytes::Regex::new(
            r"(?m)^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n(?:[A-Za-z-]+:.*\r?\n)*\r?\n?[A-Za-z0-9+/=]{32,}\r?$",
        )
        .expect("valid regex")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_told_from_code_that_mentions_them() {
        let key = b"-----BEGIN RSA PRIVATE KEY-----\n\
            MIIEowIBAAKCAQEAvx9Jd0aZ2Mh0Y1q3GmJ2qm4f4l6Yh0n3vQ7bq0ZyL1gx0c2a\n\
            -----END RSA PRIVATE KEY-----\n";
        assert!(pem_private_key().is_match(key));
        let encrypted = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
            DEK-Info: AES-128-CBC,0123456789ABCDEF\n\n\
            MIIEowIBAAKCAQEAvx9Jd0aZ2Mh0Y1q3GmJ2qm4f4l6Yh0n3vQ7bq0ZyL1gx0c2a\n";
        assert!(pem_private_key().is_match(encrypted));
        let code = b"PEM = '-----BEGIN RSA PRIVATE KEY-----'\nif line.startswith(PEM):\n";
        assert!(!pem_private_key().is_match(code));
        let cert = b"-----BEGIN CERTIFICATE-----\nMIIEowIBAAKCAQEAvx9Jd0aZ2Mh0Y1q3GmJ2qm4f\n";
        assert!(!pem_private_key().is_match(cert));
        assert!(key_file_name(b"server.key") && key_file_name(b"id_rsa"));
        assert!(!key_file_name(b"keys.py"));
    }
}
