//! The cut BTF (`btf.rs`) kept on disk, so that a start-up on a kernel seen
//! before reads a few KB instead of reading and cutting the whole kernel
//! BTF (5.5 MB, most of the load's time).
//!
//! The cut depends only on the kernel's BTF, the program's own and the
//! code that cuts, so the entry is keyed by all three: the kernel's GNU
//! build ID (`/sys/kernel/notes`: the linker hashes the image, `.BTF`
//! section included), the kernel BTF's header and size, and the SHA-256 of
//! the program's `.BTF` and of `btf.rs` itself. A kernel without a build
//! ID gets no entry. The key is written at the head of the entry and
//! compared whole, so a name collision or a stale entry is a miss, never a
//! wrong cut.
//!
//! A wrong cut would relocate the program against wrong offsets, and a
//! recording would then name wrong paths. So the directory is opened one
//! component at a time from `/`, never through a link, and trusted only
//! when nobody else could have put something there: every ancestor owned
//! by root or jailtrace's effective user and writable by no one else (or
//! sticky, like `/tmp`, where others cannot move what is not theirs), the
//! directory and the entry jailtrace's user's alone, and not on FUSE,
//! whose owners are what its daemon says. An entry is written as an
//! unnamed file and linked in whole; writing one removes the others, so
//! the cache holds one kernel's cut.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

/// The code that cuts: an entry cut by other code is a miss.
const CUTTER: &str = include_str!("btf.rs");
const MAGIC: &[u8; 16] = b"jailtrace btfcut";
const PREFIX: &str = "btf-cut-";
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// No cut comes near this; a larger file is not an entry.
const MAX_ENTRY: u64 = 4 << 20;
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// Where entries are kept: `JAILTRACE_CACHE_DIR` (empty: keep none), or
/// `/var/cache/jailtrace`.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("JAILTRACE_CACHE_DIR") {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(d.into()),
        None => Some("/var/cache/jailtrace".into()),
    }
}

/// What an entry must match: the bytes at its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// The key of this kernel for the program whose `.BTF` is `local`, or
    /// why there is none.
    pub fn of_this_kernel(local: &[u8]) -> Result<Key, &'static str> {
        let notes =
            std::fs::read("/sys/kernel/notes").map_err(|_| "the kernel's notes cannot be read")?;
        let build_id = build_id(&notes).ok_or("the kernel has no build ID")?;
        let btf = || -> std::io::Result<(u64, [u8; 24])> {
            let mut f = std::fs::File::open(KERNEL_BTF)?;
            let mut header = [0u8; 24];
            f.read_exact(&mut header)?;
            Ok((f.metadata()?.len(), header))
        };
        let (size, header) = btf().map_err(|_| "the kernel's BTF cannot be read")?;
        Ok(Key::new(build_id, &header, size, local))
    }

    fn new(build_id: &[u8], header: &[u8; 24], size: u64, local: &[u8]) -> Key {
        let mut k = Vec::with_capacity(160);
        k.extend_from_slice(MAGIC);
        k.extend_from_slice(&Sha256::digest(CUTTER));
        k.extend_from_slice(&(build_id.len() as u32).to_le_bytes());
        k.extend_from_slice(build_id);
        k.extend_from_slice(header);
        k.extend_from_slice(&size.to_le_bytes());
        k.extend_from_slice(&Sha256::digest(local));
        Key(k)
    }

    /// The entry's file name: a digest of the whole key.
    fn file_name(&self) -> String {
        let d = Sha256::digest(&self.0);
        let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}")
    }
}

/// The GNU build ID among the ELF notes of `/sys/kernel/notes`.
fn build_id(notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(notes.get(at..at + 4)?.try_into().ok()?))
    };
    let pad = |n: usize| n.div_ceil(4) * 4;
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (namesz, descsz, kind) = (word(at)? as usize, word(at + 4)? as usize, word(at + 8)?);
        let name = notes.get(at + 12..at + 12 + namesz)?;
        let desc_at = at + 12 + pad(namesz);
        let desc = notes.get(desc_at..desc_at + descsz)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && !desc.is_empty() {
            return Some(desc);
        }
        at = desc_at + pad(descsz);
    }
    None
}

/// `dir`, opened (`O_PATH`) one component at a time from `/` without
/// following a link, if it is trusted (see the module's comment); `create`
/// makes a missing last component, mode 0700, beneath a trusted parent.
fn open_trusted(dir: &Path, create: bool) -> Result<OwnedFd, &'static str> {
    const UNTRUSTED: &str = "not a directory that only root and this user could have written";
    let path = dir.as_os_str().as_bytes();
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if !path.starts_with(b"/") || parts.contains(&&b".."[..]) {
        return Err("not an absolute path without `..`");
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let euid = rustix::process::geteuid().as_raw();
    let mut fd = rustix::fs::open("/", flags, Mode::empty()).map_err(|_| "/ cannot be opened")?;
    for (i, part) in parts.iter().enumerate() {
        let st = rustix::fs::fstat(&fd).map_err(|_| UNTRUSTED)?;
        let sticky = st.st_mode & 0o1000 != 0;
        if !(st.st_uid == 0 || st.st_uid == euid) || (st.st_mode & 0o022 != 0 && !sticky) {
            return Err(UNTRUSTED);
        }
        fd = match rustix::fs::openat(&fd, *part, flags, Mode::empty()) {
            Err(Errno::NOENT) if create && i + 1 == parts.len() => {
                match rustix::fs::mkdirat(&fd, *part, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(_) => return Err("cannot be created"),
                }
                rustix::fs::openat(&fd, *part, flags, Mode::empty()).map_err(|_| UNTRUSTED)?
            }
            Err(Errno::NOENT) => return Err("missing"),
            other => other.map_err(|_| UNTRUSTED)?,
        };
    }
    let on_fuse = rustix::fs::fstatfs(&fd).is_ok_and(|s| s.f_type == FUSE_SUPER_MAGIC);
    if on_fuse || !ours_alone(&fd, FileType::Directory) {
        return Err(UNTRUSTED);
    }
    Ok(fd)
}

/// Owned by the effective user, of the kind expected, and writable by
/// neither group nor others.
fn ours_alone(fd: impl AsFd, kind: FileType) -> bool {
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    FileType::from_raw_mode(st.st_mode) == kind
        && st.st_uid == rustix::process::geteuid().as_raw()
        && st.st_mode & 0o022 == 0
}

/// The cut kept for `key` in `dir`, if there is a sound one.
pub fn get(dir: &Path, key: &Key) -> Option<Vec<u8>> {
    let d = open_trusted(dir, false).ok()?;
    let fd = rustix::fs::openat(
        &d,
        key.file_name(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    if !ours_alone(&fd, FileType::RegularFile) {
        return None;
    }
    let mut data = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_ENTRY + 1)
        .read_to_end(&mut data)
        .ok()?;
    if data.len() as u64 > MAX_ENTRY {
        return None;
    }
    data.strip_prefix(key.0.as_slice()).map(<[u8]>::to_vec)
}

/// Keeps `cut` for `key` in `dir` (made when missing), in place of every
/// other entry there.
pub fn put(dir: &Path, key: &Key, cut: &[u8]) -> Result<(), String> {
    let fail = |what: &str| format!("{}: {what}", dir.display());
    let d = open_trusted(dir, true).map_err(fail)?;
    // Unnamed until whole: a jailtrace killed while writing leaves nothing.
    let fd = rustix::fs::openat(
        &d,
        ".",
        OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| fail(&format!("cannot write: {e}")))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(&key.0)
        .and_then(|()| f.write_all(cut))
        .map_err(|e| fail(&format!("cannot write: {e}")))?;
    let name = key.file_name();
    let link = || -> rustix::io::Result<()> {
        match rustix::fs::linkat(&f, "", &d, &name, AtFlags::EMPTY_PATH) {
            // Without CAP_DAC_READ_SEARCH, through /proc.
            Err(Errno::NOENT | Errno::PERM) => {
                let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc.as_str(),
                    &d,
                    &name,
                    AtFlags::SYMLINK_FOLLOW,
                )
            }
            r => r,
        }
    };
    match link() {
        // An entry of this name that could not be read (see `get`).
        Err(Errno::EXIST) => {
            let _ = rustix::fs::unlinkat(&d, &name, AtFlags::empty());
            link().map_err(|e| fail(&format!("cannot link {name}: {e}")))?;
        }
        other => other.map_err(|e| fail(&format!("cannot link {name}: {e}")))?,
    }
    prune(&d, &name).map_err(|e| fail(&format!("cannot list: {e}")))
}

/// Removes the entries other than `keep` (other kernels', other
/// programs').
fn prune(d: &OwnedFd, keep: &str) -> rustix::io::Result<()> {
    let listing = rustix::fs::openat(
        d,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for entry in rustix::fs::Dir::read_from(&listing)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.starts_with(PREFIX.as_bytes()) && name != keep.as_bytes() {
            let _ = rustix::fs::unlinkat(d, entry.file_name(), AtFlags::empty());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn key(build: &[u8]) -> Key {
        Key::new(build, &[7; 24], 5_482_429, b"local btf")
    }

    fn private_dir() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("cache");
        (t, d)
    }

    fn mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_entry_is_read_back_only_under_its_own_key() {
        let (_t, d) = private_dir();
        assert_eq!(get(&d, &key(b"one")), None);
        put(&d, &key(b"one"), b"the cut").unwrap();
        let m = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(m & 0o777, 0o700);
        assert_eq!(get(&d, &key(b"one")).as_deref(), Some(&b"the cut"[..]));
        assert_eq!(get(&d, &key(b"two")), None);
        let other_program = Key::new(b"one", &[7; 24], 5_482_429, b"other btf");
        assert_eq!(get(&d, &other_program), None);
        let other_header = Key::new(b"one", &[8; 24], 5_482_429, b"local btf");
        assert_eq!(get(&d, &other_header), None);
        // Written unnamed and linked whole: nothing else is left.
        assert_eq!(names(&d), [key(b"one").file_name()]);
        // Another kernel's entry replaces it; other files stay.
        std::fs::write(d.join("notes"), b"mine").unwrap();
        put(&d, &key(b"two"), b"a new cut").unwrap();
        assert_eq!(get(&d, &key(b"two")).as_deref(), Some(&b"a new cut"[..]));
        assert_eq!(get(&d, &key(b"one")), None);
        assert_eq!(names(&d), [key(b"two").file_name(), "notes".into()]);
    }

    /// A name collision or an entry of other cutting code is a miss, and
    /// is replaced.
    #[test]
    fn an_entry_whose_head_differs_is_a_miss() {
        let (_t, d) = private_dir();
        put(&d, &key(b"one"), b"cut").unwrap();
        let f = d.join(key(b"one").file_name());
        let mut data = std::fs::read(&f).unwrap();
        data[MAGIC.len()] ^= 1; // the hash of btf.rs
        std::fs::write(&f, &data).unwrap();
        assert_eq!(get(&d, &key(b"one")), None);
        std::fs::write(&f, b"short").unwrap();
        assert_eq!(get(&d, &key(b"one")), None);
        put(&d, &key(b"one"), b"cut").unwrap();
        assert_eq!(get(&d, &key(b"one")).as_deref(), Some(&b"cut"[..]));
    }

    /// Entries anyone else could have written are not read, and nothing is
    /// written where they could have.
    #[test]
    fn entries_others_could_write_are_not_read() {
        let (t, d) = private_dir();
        put(&d, &key(b"one"), b"cut").unwrap();
        let f = d.join(key(b"one").file_name());
        mode(&f, 0o620);
        assert_eq!(get(&d, &key(b"one")), None, "group-writable entry");
        mode(&f, 0o600);
        mode(&d, 0o707);
        assert_eq!(get(&d, &key(b"one")), None, "world-writable directory");
        assert!(put(&d, &key(b"two"), b"cut").is_err());
        mode(&d, 0o700);
        assert!(get(&d, &key(b"one")).is_some());
        // An ancestor others can write (and not sticky): they could have
        // swapped the directory.
        mode(t.path(), 0o777);
        assert_eq!(get(&d, &key(b"one")), None, "world-writable ancestor");
        assert!(put(&d, &key(b"two"), b"cut").is_err());
        mode(t.path(), 0o1777);
        assert!(
            get(&d, &key(b"one")).is_some(),
            "a sticky ancestor, like /tmp"
        );
        mode(t.path(), 0o700);
        // Owned by someone else (needs root to arrange).
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
            assert_eq!(get(&d, &key(b"one")), None, "entry owned by nobody");
            std::os::unix::fs::chown(&f, Some(0), None).unwrap();
            std::os::unix::fs::chown(t.path(), Some(65534), None).unwrap();
            assert_eq!(get(&d, &key(b"one")), None, "ancestor owned by nobody");
            std::os::unix::fs::chown(t.path(), Some(0), None).unwrap();
        }
        assert!(get(&d, &key(b"one")).is_some());
        assert_eq!(get(&d.join(".."), &key(b"one")), None);
        assert_eq!(get(Path::new("cache"), &key(b"one")), None);
    }

    /// No link is followed: not the directory, not an ancestor, not an
    /// entry, not with a trailing slash.
    #[test]
    fn no_link_is_followed() {
        let (t, d) = private_dir();
        put(&d, &key(b"one"), b"cut").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert_eq!(get(&link, &key(b"one")), None);
        assert_eq!(get(&t.path().join("link/"), &key(b"one")), None);
        assert!(put(&link, &key(b"two"), b"cut").is_err());
        let up = t.path().join("up");
        std::os::unix::fs::symlink(t.path(), &up).unwrap();
        assert_eq!(get(&up.join("cache"), &key(b"one")), None);
        assert!(put(&up.join("new"), &key(b"two"), b"cut").is_err());
        assert!(!t.path().join("new").exists(), "made through a link");
        let f = d.join(key(b"one").file_name());
        let real = d.join("real");
        std::fs::rename(&f, &real).unwrap();
        std::os::unix::fs::symlink(&real, &f).unwrap();
        assert_eq!(get(&d, &key(b"one")), None, "entry is a symlink");
    }

    #[test]
    fn the_build_id_is_found_among_the_notes() {
        // Two notes as /sys/kernel/notes has them: a Xen one, then GNU's.
        let mut notes = Vec::new();
        for (name, kind, desc) in [
            (&b"Xen\0"[..], 18u32, &[1u8, 2, 3][..]),
            (&b"GNU\0"[..], 3, &[0xfa, 0x36, 0x77, 0x6b, 0x59][..]),
        ] {
            notes.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
            notes.extend_from_slice(&kind.to_ne_bytes());
            notes.extend_from_slice(name);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().div_ceil(4) * 4, 0);
        }
        assert_eq!(build_id(&notes), Some(&[0xfa, 0x36, 0x77, 0x6b, 0x59][..]));
        assert_eq!(build_id(&notes[..20]), None);
        assert_eq!(build_id(b""), None);
    }
}
