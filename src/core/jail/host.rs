//! Reading the host files a jail gets, the same way for every output of a
//! plan (`materialize`'s copies, the OCI layer): never through a last
//! symlink, never blocking on a FIFO that now sits there, only regular
//! files on a real file system, checked against a recorded sha256, and
//! account databases rewritten within a bound. The open itself,
//! [`open_untrusted`], is also how `check` reads a jail's files.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};

use super::accounts::Rewrite;
use super::fs::{file_type, kind_name};
use crate::core::manifest::pathenc::MPath;

/// Account databases are read whole: a bound, since a host file can be
/// anything.
const ACCOUNTS_MAX: u64 = 64 << 20;

/// Why a host file cannot be read.
#[derive(Debug)]
pub enum Unreadable {
    /// Nothing is at the path now.
    Gone,
    /// Anything else, said in a line.
    Other(String),
}

/// An errno with its name, and a hint where one helps.
pub fn errno_msg(what: &str, e: Errno) -> String {
    let hint = match e {
        Errno::EPERM => " (needs root)",
        Errno::EROFS => " (read-only file system)",
        _ => "",
    };
    format!("{what}: {} ({e:?}){hint}", e.desc())
}

/// An I/O error's errno name, or its text.
pub fn errno_of(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{} ({:?})", Errno::from_raw(n).desc(), Errno::from_raw(n)),
        None => e.to_string(),
    }
}

/// Opens host files, remembering per device whether it is a kernel pseudo
/// file system.
#[derive(Debug, Default)]
pub struct HostFiles {
    pseudo_fs: HashMap<u64, bool>,
}

/// Why [`open_untrusted`] opened nothing.
#[derive(Debug)]
pub enum NotOpened {
    /// Looking at the path (`O_PATH`) failed: `ENOENT` when nothing is there.
    Look(Errno),
    Stat(Errno),
    /// A symlink is there.
    Symlink,
    /// A directory on the way is a symlink.
    SymlinkOnTheWay,
    /// Something else than a regular file is there: what, for messages.
    NotRegular(&'static str),
    /// The caller's check refused it, with the reason.
    Refused(String),
    /// Opening it for reading failed.
    Open(Errno),
}

/// Opens the regular file `name` (relative to `dir`, or absolute) for
/// reading when nothing about it can be trusted: it is looked at without
/// following any symlink on the way (`RESOLVE_NO_SYMLINKS`: a recorded
/// path is a real path, so a directory of it that is a symlink now was
/// swapped in, by whoever writes there, to lead elsewhere), nor a final
/// one, and without opening it (`O_PATH`: opening a
/// device node can have effects, `/dev/watchdog` arms the watchdog),
/// `check`ed by the caller, required to be a regular file, and only then
/// opened for reading through the same inode, never blocking (a FIFO put
/// there meanwhile) and never becoming a controlling terminal. The one
/// such open: the host files a jail gets, and the audit's reads of a jail.
pub fn open_untrusted(
    dir: BorrowedFd<'_>,
    name: &[u8],
    check: impl FnOnce(BorrowedFd<'_>, &FileStat) -> Result<(), String>,
) -> Result<(File, FileStat), NotOpened> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let how = nix::fcntl::OpenHow::new()
        .flags(flags)
        .resolve(nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS);
    let at = match nix::fcntl::openat2(dir, name, how) {
        // A final symlink comes back as itself (O_PATH | O_NOFOLLOW); an
        // earlier one is refused.
        Err(Errno::ELOOP) => return Err(NotOpened::SymlinkOnTheWay),
        // Before Linux 5.6, or a seccomp profile that refuses openat2 (older
        // container runtimes): only a final symlink is never followed then.
        Err(Errno::ENOSYS | Errno::EPERM) => {
            nix::fcntl::openat(dir, name, flags, Mode::empty()).map_err(NotOpened::Look)?
        }
        r => r.map_err(NotOpened::Look)?,
    };
    let st = fstat(at.as_fd()).map_err(NotOpened::Stat)?;
    match file_type(&st) {
        SFlag::S_IFREG => {}
        SFlag::S_IFLNK => return Err(NotOpened::Symlink),
        _ => return Err(NotOpened::NotRegular(kind_name(&st))),
    }
    check(at.as_fd(), &st).map_err(NotOpened::Refused)?;
    let file = reopen(at.as_fd()).map_err(NotOpened::Open)?;
    Ok((file, st))
}

/// The inode an `O_PATH` descriptor holds, opened for reading through its
/// `/proc/self/fd` link (the only way to reopen one): exactly that inode,
/// whatever now sits at its path, without blocking or taking a terminal.
pub fn reopen(at: BorrowedFd<'_>) -> Result<File, Errno> {
    let fd_link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&at));
    nix::fcntl::open(
        fd_link.as_str(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
}

impl HostFiles {
    /// The host file at `p` ([`open_untrusted`]), which must also be on a
    /// real file system.
    pub fn open(&mut self, p: &MPath) -> Result<(File, FileStat), Unreadable> {
        let pseudo_fs = &mut self.pseudo_fs;
        let on_real_fs = |at: BorrowedFd<'_>, st: &FileStat| {
            let pseudo = *pseudo_fs.entry(st.st_dev).or_insert_with(|| {
                use nix::sys::statfs::*;
                let pseudo = [
                    PROC_SUPER_MAGIC,
                    SYSFS_MAGIC,
                    DEBUGFS_MAGIC,
                    SECURITYFS_MAGIC,
                    TRACEFS_MAGIC,
                    CGROUP2_SUPER_MAGIC,
                    BPF_FS_MAGIC,
                ];
                fstatfs(at).is_ok_and(|fs| pseudo.contains(&fs.filesystem_type()))
            });
            if pseudo {
                return Err(
                    "not copied: the host file is on a kernel pseudo file system \
                     (proc, sys, ...); its content is not data and is never copied"
                        .into(),
                );
            }
            Ok(())
        };
        let other = Unreadable::Other;
        open_untrusted(AT_FDCWD, p.as_bytes(), on_real_fs).map_err(|e| match e {
            NotOpened::Look(Errno::ENOENT) => Unreadable::Gone,
            NotOpened::Look(e) | NotOpened::Open(e) => {
                other(errno_msg("cannot open the host file", e))
            }
            NotOpened::Stat(e) => other(errno_msg("cannot stat the host file", e)),
            NotOpened::Symlink => {
                other("not copied: it is a symlink on the host now (record again)".into())
            }
            NotOpened::SymlinkOnTheWay => other(
                "not copied: a directory on its path is a symlink on the host now, which is \
                 never followed (record again)"
                    .into(),
            ),
            NotOpened::NotRegular(what) => other(format!(
                "not copied: the host file is a {what} now (record again)"
            )),
            NotOpened::Refused(why) => other(why),
        })
    }
}

/// The jail's text of an account database (at most [`ACCOUNTS_MAX`] of it).
pub fn rewritten(src: &File, r: &Rewrite) -> Result<Vec<u8>, String> {
    let mut host = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(src, ACCOUNTS_MAX + 1), &mut host)
        .map_err(|e| format!("cannot read the host file: {}", errno_of(&e)))?;
    if host.len() as u64 > ACCOUNTS_MAX {
        // Cut short, it would lose accounts without a word.
        return Err(format!(
            "not copied: the host file is larger than {} MiB, too large for an account database",
            ACCOUNTS_MAX >> 20
        ));
    }
    Ok(r.apply(&host))
}

/// The hex SHA-256 of the whole file, read by position so that the file
/// offset (which a plain copy reads from) stays where it is.
pub fn sha256_of(f: &File) -> io::Result<String> {
    struct At<'a>(&'a File, u64);
    impl io::Read for At<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read_at(buf, self.1)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    crate::core::manifest::sha256_hex(At(f, 0))
}

/// Fails unless the host file still has the recorded content.
pub fn check_sha256(src: &File, want: &str) -> Result<(), String> {
    let got = sha256_of(src).map_err(|e| format!("cannot read the host file: {}", errno_of(&e)))?;
    if !got.eq_ignore_ascii_case(want) {
        return Err(format!(
            "not copied: the host file's sha256 is {got}, not the recorded {want} \
             (it changed since the recording; record again)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_database_over_the_bound_is_refused_not_cut() {
        let r = Rewrite::for_path(b"/etc/shadow", false, None).unwrap();
        let mut f = tempfile::tempfile().unwrap();
        io::Write::write_all(&mut f, b"root:$6$x:1::::::\n").unwrap();
        // Read from the file's offset, which a fresh open has at 0.
        let start = |f: &mut File| io::Seek::rewind(f).unwrap();
        start(&mut f);
        assert_eq!(rewritten(&f, &r).unwrap(), b"root:!:1::::::\n");
        // Sparse: no disk is written.
        f.set_len(ACCOUNTS_MAX + 1).unwrap();
        start(&mut f);
        let err = rewritten(&f, &r).unwrap_err();
        assert!(err.contains("larger than 64 MiB"), "{err}");
    }
}
