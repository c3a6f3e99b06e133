//! The one call materialize needs that nix does not wrap: the `FICLONE`
//! ioctl (reflink copy). All of this module's `unsafe` is here.

use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;

/// Makes `dst` share `src`'s data blocks (a reflink) on file systems that
/// support it (btrfs, xfs, bcachefs). Fails with `EOPNOTSUPP`, `EXDEV` or
/// `EINVAL` elsewhere; the caller then copies.
pub fn ficlone(dst: impl AsFd, src: impl AsFd) -> nix::Result<()> {
    // SAFETY: FICLONE takes the source descriptor as its integer argument and
    // reads or writes no memory of ours; both descriptors are borrowed, so
    // they stay open for the whole call.
    let r = unsafe {
        libc::ioctl(
            dst.as_fd().as_raw_fd(),
            libc::FICLONE,
            src.as_fd().as_raw_fd(),
        )
    };
    Errno::result(r).map(drop)
}
