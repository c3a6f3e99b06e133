//! The one way jailtrace opens a path inside a jail: `openat2` relative to
//! a directory descriptor, with a named resolution rule and one retry rule.
//! `materialize`, `run` and `verify` all go through [`open`].
//!
//! Allocation-free: `run`'s child calls it between fork and exec.

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

/// How a path inside the jail is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Beneath the directory, through no symlink, `..` above it, magic link
    /// or mount point: for everything `materialize` writes. Nothing the
    /// jail holds can redirect the lookup, and a mount inside the jail is
    /// reported (EXDEV), never written through.
    Strict,
    /// Beneath the directory, through no symlink, but across mounts: for
    /// `run`'s proc and sysfs mount points, which must be exactly where
    /// they claim to be, and may already have something mounted above.
    NoSymlinks,
    /// As the jailed program sees the path: symlinks are followed with the
    /// directory as the root, so neither an absolute target nor `..` leads
    /// out of it; magic links (`/proc/PID/root`) are refused. For what
    /// `verify` reads and the syslog socket's mount point.
    InRoot,
}

impl Resolve {
    fn flags(self) -> ResolveFlag {
        match self {
            Resolve::Strict => {
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV
            }
            Resolve::NoSymlinks => ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
            Resolve::InRoot => ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        }
    }
}

/// How often an EAGAIN is retried. With `RESOLVE_BENEATH` or
/// `RESOLVE_IN_ROOT` the kernel returns EAGAIN for a lookup with `..` when
/// any rename or mount happened anywhere on the system meanwhile, since it
/// cannot then prove the result stayed inside: a busy host must not make a
/// jail unusable.
const RETRIES: u32 = 64;

/// Opens `path` relative to `dir` by `rule`, with `O_CLOEXEC` added.
pub fn open<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd<'_>,
    path: &P,
    flags: OFlag,
    rule: Resolve,
) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(rule.flags());
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dir, path, how) {
            Err(Errno::EAGAIN | Errno::EINTR) if tries < RETRIES => tries += 1,
            r => return r,
        }
    }
}
