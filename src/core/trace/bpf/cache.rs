//! The cut BTF (`btf.rs`) kept on disk, so that a start-up on a kernel seen
//! before reads a few KB instead of reading and cutting the whole kernel
//! BTF (5.5 MB, most of the load's time).
//!
//! The cut depends only on the kernel's BTF and the program's own, so the
//! entry is keyed by both: the kernel's GNU build ID (`/sys/kernel/notes`:
//! the linker hashes the image, `.BTF` section included), the kernel BTF's
//! header and size, and the SHA-256 of the program's `.BTF`. A kernel
//! without a build ID gets no entry. The key is written at the head of the
//! entry and compared whole, so a name collision or a stale entry is a
//! miss, never a wrong cut.
//!
//! A wrong cut would relocate the program against wrong offsets, and a
//! recording would then name wrong paths. So an entry is read only from a
//! directory and a file owned by jailtrace's effective user and writable
//! by no one else, never through a symbolic link, and written whole under
//! a temporary name and renamed into place.

use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use sha2::{Digest as _, Sha256};

/// Bumped whenever `btf::cut` changes what it keeps, so that entries cut
/// by another version are misses.
const CUT_FORMAT: u32 = 1;
const MAGIC: &[u8; 16] = b"jailtrace btfcut";
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// No cut comes near this; a larger file is not an entry.
const MAX_ENTRY: u64 = 4 << 20;

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
    /// The key of this kernel for the program whose `.BTF` is `local`;
    /// none when the kernel has no build ID or its BTF cannot be read.
    pub fn of_this_kernel(local: &[u8]) -> Option<Key> {
        let notes = std::fs::read("/sys/kernel/notes").ok()?;
        let build_id = build_id(&notes)?;
        let mut f = std::fs::File::open(KERNEL_BTF).ok()?;
        let size = f.metadata().ok()?.len();
        let mut header = [0u8; 24];
        f.read_exact(&mut header).ok()?;
        Some(Key::new(build_id, &header, size, local))
    }

    fn new(build_id: &[u8], header: &[u8; 24], size: u64, local: &[u8]) -> Key {
        let mut k = Vec::with_capacity(128);
        k.extend_from_slice(MAGIC);
        k.extend_from_slice(&CUT_FORMAT.to_le_bytes());
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
        format!("btf-cut-{hex}")
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

/// The directory, opened without following a link, if it is ours alone.
fn open_dir(dir: &Path) -> Option<OwnedFd> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    ours_alone(&fd, rustix::fs::FileType::Directory).then_some(fd)
}

/// Owned by the effective user, of the kind expected, and writable by
/// neither group nor others.
fn ours_alone(fd: &OwnedFd, kind: rustix::fs::FileType) -> bool {
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    rustix::fs::FileType::from_raw_mode(st.st_mode) == kind
        && st.st_uid == rustix::process::geteuid().as_raw()
        && st.st_mode & 0o022 == 0
}

/// The cut kept for `key` in `dir`, if there is a sound one.
pub fn get(dir: &Path, key: &Key) -> Option<Vec<u8>> {
    let d = open_dir(dir)?;
    let fd = rustix::fs::openat(
        &d,
        key.file_name(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    if !ours_alone(&fd, rustix::fs::FileType::RegularFile) {
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

/// Keeps `cut` for `key` in `dir`, making `dir` (mode 0700) when it is
/// missing and its parent exists.
pub fn put(dir: &Path, key: &Key, cut: &[u8]) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", dir.display());
    match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(fail("cannot create", &e)),
    }
    let d = open_dir(dir).ok_or_else(|| {
        fail(
            "not kept",
            &"not a directory owned by this user alone (or not one at all)",
        )
    })?;
    let name = key.file_name();
    let tmp = format!(".{name}.{}.tmp", std::process::id());
    let fd = rustix::fs::openat(
        &d,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| fail(&tmp, &e))?;
    let mut f = std::fs::File::from(fd);
    let written = f
        .write_all(&key.0)
        .and_then(|()| f.write_all(cut))
        .map_err(|e| fail(&tmp, &e))
        .and_then(|()| rustix::fs::renameat(&d, &tmp, &d, &name).map_err(|e| fail(&name, &e)));
    if written.is_err() {
        let _ = rustix::fs::unlinkat(&d, &tmp, rustix::fs::AtFlags::empty());
    }
    written
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

    #[test]
    fn an_entry_is_read_back_only_under_its_own_key() {
        let (_t, d) = private_dir();
        assert_eq!(get(&d, &key(b"one")), None);
        put(&d, &key(b"one"), b"the cut").unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(get(&d, &key(b"one")).as_deref(), Some(&b"the cut"[..]));
        assert_eq!(get(&d, &key(b"two")), None);
        let other_program = Key::new(b"one", &[7; 24], 5_482_429, b"other btf");
        assert_eq!(get(&d, &other_program), None);
        let other_header = Key::new(b"one", &[8; 24], 5_482_429, b"local btf");
        assert_eq!(get(&d, &other_header), None);
        // Replaced whole, no temporary file left.
        put(&d, &key(b"one"), b"a new cut").unwrap();
        assert_eq!(get(&d, &key(b"one")).as_deref(), Some(&b"a new cut"[..]));
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }

    /// A name collision or a file of another version is a miss.
    #[test]
    fn an_entry_whose_head_differs_is_a_miss() {
        let (_t, d) = private_dir();
        put(&d, &key(b"one"), b"cut").unwrap();
        let f = d.join(key(b"one").file_name());
        let mut data = std::fs::read(&f).unwrap();
        data[MAGIC.len()] ^= 1; // CUT_FORMAT
        std::fs::write(&f, &data).unwrap();
        assert_eq!(get(&d, &key(b"one")), None);
        std::fs::write(&f, b"short").unwrap();
        assert_eq!(get(&d, &key(b"one")), None);
    }

    /// Entries anyone else could have written are not read, and nothing is
    /// written through a directory that is not ours alone.
    #[test]
    fn entries_others_could_write_are_not_read() {
        let (t, d) = private_dir();
        put(&d, &key(b"one"), b"cut").unwrap();
        let f = d.join(key(b"one").file_name());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert_eq!(get(&d, &key(b"one")), None, "group-writable entry");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o707)).unwrap();
        assert_eq!(get(&d, &key(b"one")), None, "world-writable directory");
        assert!(put(&d, &key(b"two"), b"cut").is_err());
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(get(&d, &key(b"one")).is_some());
        // A link to the directory, or to an entry, is not followed.
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert_eq!(get(&link, &key(b"one")), None);
        assert!(put(&link, &key(b"two"), b"cut").is_err());
        let real = d.join("real");
        std::fs::rename(&f, &real).unwrap();
        std::os::unix::fs::symlink(&real, &f).unwrap();
        assert_eq!(get(&d, &key(b"one")), None, "entry is a symlink");
        // Owned by someone else (needs root to arrange).
        std::fs::remove_file(&f).unwrap();
        std::fs::rename(&real, &f).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
            assert_eq!(get(&d, &key(b"one")), None, "entry owned by nobody");
        }
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
