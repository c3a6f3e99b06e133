//! The jail as a directory file descriptor, and the only ways materialize
//! reaches inside it.
//!
//! Every lookup is `openat2` relative to the jail's fd with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`: a symlink, a
//! `..` or a mount point anywhere on the way is an error, never followed or
//! crossed. Objects are then created or replaced with `*at` calls on the
//! parent directory's fd and a single file name, which do not follow a
//! symlink in the last component either. Together this means nothing the
//! jail already contains can redirect a write outside it.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, FileStat, SFlag};

use crate::core::jail::beneath::Resolve;
use crate::core::manifest::pathenc::MPath;

/// Opens `rel` (a relative path, `""` for `dir` itself) beneath `dir` without
/// following any symlink or crossing any mount. `O_NOFOLLOW` is always added:
/// with `O_PATH` a final symlink is opened as itself.
pub fn open_beneath(dir: impl AsFd, rel: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = if rel.is_empty() {
        Path::new(".")
    } else {
        Path::new(OsStr::from_bytes(rel))
    };
    crate::core::jail::beneath::open(dir.as_fd(), rel, flags | OFlag::O_NOFOLLOW, Resolve::Strict)
}

/// What is at a path in the jail.
pub enum Lookup {
    Absent,
    /// Opened with `O_PATH`: a handle for `fstat`, `readlink`, nothing more.
    Present(OwnedFd, FileStat),
    /// Something is mounted there; materialize does not touch it.
    MountPoint,
}

/// Looks up one name in a jail directory without following it.
pub fn lookup(parent: &OwnedFd, name: &[u8]) -> nix::Result<Lookup> {
    match open_beneath(parent, name, OFlag::O_PATH) {
        Ok(fd) => {
            let st = fstat(&fd)?;
            Ok(Lookup::Present(fd, st))
        }
        Err(Errno::ENOENT) => Ok(Lookup::Absent),
        Err(Errno::EXDEV) => Ok(Lookup::MountPoint),
        Err(e) => Err(e),
    }
}

pub fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// "symlink", "directory", ... for messages.
pub fn kind_name(st: &FileStat) -> &'static str {
    match file_type(st) {
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFREG => "regular file",
        SFlag::S_IFLNK => "symlink",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFSOCK => "socket",
        _ => "file of unknown type",
    }
}

/// The jail root, held open for the whole run.
pub struct Jail {
    root: OwnedFd,
    path: PathBuf,
}

impl Jail {
    pub fn new(root: OwnedFd, path: PathBuf) -> Jail {
        Jail { root, path }
    }

    pub fn root(&self) -> &OwnedFd {
        &self.root
    }

    /// `JAIL/some/path`, for messages and advice.
    pub fn show(&self, p: &MPath) -> String {
        show(&self.path, p)
    }

    /// Opens a directory of the jail, by manifest path.
    pub fn open_dir(&self, p: &MPath, flags: OFlag) -> nix::Result<OwnedFd> {
        open_beneath(&self.root, p.relative(), flags | OFlag::O_DIRECTORY)
    }

    /// Says why the directory `p` cannot be opened: the first component of it
    /// that is a symlink, not a directory, a mount point, or absent.
    pub fn explain(&self, p: &MPath, err: Errno) -> String {
        let mut dir = match open_beneath(&self.root, b"", OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(e) => return format!("cannot open the jail: {}", e.desc()),
        };
        let mut at = MPath::root();
        for comp in p.components() {
            at = at.join(comp);
            match lookup(&dir, comp) {
                Ok(Lookup::Present(fd, st)) if file_type(&st) == SFlag::S_IFDIR => dir = fd,
                Ok(Lookup::Present(_, st)) if file_type(&st) == SFlag::S_IFLNK => {
                    let target = nix::fcntl::readlinkat(&dir, Path::new(OsStr::from_bytes(comp)))
                        .map(|t| crate::core::manifest::pathenc::encode(t.as_bytes()))
                        .unwrap_or_else(|_| "?".into());
                    return format!(
                        "{} is a symlink (-> {target}) in the jail, which is never followed",
                        self.show(&at)
                    );
                }
                Ok(Lookup::Present(_, st)) => {
                    return format!(
                        "{} is a {}, not a directory",
                        self.show(&at),
                        kind_name(&st)
                    )
                }
                Ok(Lookup::MountPoint) => {
                    return format!(
                        "{} is a mount point inside the jail, which is never crossed",
                        self.show(&at)
                    )
                }
                Ok(Lookup::Absent) => return format!("{} does not exist", self.show(&at)),
                Err(e) => return format!("{}: {}", self.show(&at), e.desc()),
            }
        }
        format!("{}: {}", self.show(p), err.desc())
    }
}

pub fn show(jail: &Path, p: &MPath) -> String {
    let j = jail.display().to_string();
    let j = j.trim_end_matches('/');
    if p.is_root() {
        format!("{j}/")
    } else {
        format!("{j}{}", p.encoded())
    }
}
