//! How the ptrace engine names what a stopped tracee's call uses: its
//! memory, its working directory and descriptors read from /proc (cached
//! per task, and per thread group for directory descriptors), made into
//! host paths as the tracee sees them; and the [`operand::Source`] the
//! shared operand interpreter reads through.

use std::borrow::Cow;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::{mem, Tracer};
use crate::core::trace::decode;
use crate::core::trace::log::{self, rewrite_proc, unrooted};
use crate::core::trace::operand;

/// One stopped tracee, as the operand interpreter reads it.
pub(super) struct Tracee<'t, 'a> {
    pub t: &'t mut Tracer<'a>,
    pub pid: Pid,
}

impl operand::Source<'static> for Tracee<'_, '_> {
    fn path(&mut self, addr: u64, _dirfd: i32, _ops: decode::Ops) -> Option<Cow<'static, [u8]>> {
        mem::read_cstr(self.pid, addr).map(Cow::Owned)
    }

    fn u64_at(&mut self, addr: u64) -> Option<u64> {
        mem::read_u64(self.pid, addr)
    }

    fn bytes(&mut self, addr: u64, len: u64) -> Option<Cow<'static, [u8]>> {
        let mut buf = vec![0u8; usize::try_from(len).ok()?];
        mem::read_exact(self.pid, addr, &mut buf)?;
        Some(Cow::Owned(buf))
    }

    fn read_into(&mut self, addr: u64, buf: &mut [u8]) -> Option<()> {
        mem::read_exact(self.pid, addr, buf)
    }

    fn sockaddr(&mut self, addr: u64, len: u64) -> Option<Vec<u8>> {
        // Reads no more than a sockaddr_un, whatever length the call gave.
        mem::read_unix_path(self.pid, addr, len)
    }

    fn absolute(&mut self, dirfd: i32, p: &[u8]) -> Option<Vec<u8>> {
        self.t.absolute(self.pid, dirfd, p)
    }

    fn fd(&mut self, fd: i32) -> Option<Vec<u8>> {
        self.t.fd_path(self.pid, fd)
    }

    fn dirfd_file(&mut self, dirfd: i32) -> Option<Vec<u8>> {
        self.t.fd_path(self.pid, dirfd)
    }

    fn returned_fd(&mut self) -> Option<Vec<u8>> {
        // Known at the exit stop only: `Pending::result_fd`.
        None
    }
}

/// Whether `path`, as thread `pid` names it in its own mount namespace
/// (through /proc/PID/root), is what the host has there (beneath `root`
/// for a jailed command): the same object, or nothing in both.
/// `path` is the host path recorded; its part from `named_at` on is the
/// path as the thread names it beneath its own root.
fn same_on_host(root: Option<&[u8]>, pid: i32, path: &[u8], named_at: usize) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let mut inside = format!("/proc/{pid}/root").into_bytes();
    // A thread gone since cannot be asked: unknown.
    if nix::sys::stat::stat(std::ffi::OsStr::from_bytes(&inside)).is_err() {
        return false;
    }
    inside.extend_from_slice(&path[named_at..]);
    let mut host = root.map(<[u8]>::to_vec).unwrap_or_default();
    host.extend_from_slice(path);
    let look = |p: &[u8]| nix::sys::stat::lstat(std::ffi::OsStr::from_bytes(p));
    match (look(&inside), look(&host)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

/// The mount namespace of a thread: the inode of /proc/PID/ns/mnt.
pub(super) fn mount_ns(pid: Pid) -> Option<u64> {
    nix::sys::stat::stat(format!("/proc/{pid}/ns/mnt").as_str())
        .ok()
        .map(|s| s.st_ino)
}

impl Tracer<'_> {
    pub(super) fn exists(&self, path: &[u8], follow: bool) -> bool {
        log::exists(self.opts.root.as_deref(), path, follow)
    }

    pub(super) fn absolute(&mut self, pid: Pid, dirfd: i32, p: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(p.len() + 64);
        // Where the path as the tracee names it starts in `out`: after the
        // root it chrooted into.
        let mut named_at = 0;
        if p.first() != Some(&b'/') {
            // The base goes straight from its cache into the result.
            if dirfd == libc::AT_FDCWD {
                self.append_cwd(pid, &mut out)?;
            } else {
                self.append_dirfd_path(pid, dirfd, &mut out)?;
            }
            if out.last() != Some(&b'/') {
                out.push(b'/');
            }
        } else if self.chroots {
            // Beneath the root the tracee chrooted into.
            self.append_root(pid, &mut out)?;
            named_at = out.len();
        }
        out.extend_from_slice(p);
        self.rewrite_proc(&mut out);
        // /proc/PID/root is the tracee's root already: the path as it
        // names it, without that prefix, is what is looked up there.
        if self.tasks.get(&pid).is_some_and(|t| t.foreign_ns)
            && !self.same_on_host(pid, &out, named_at)
        {
            self.lost.foreign += 1;
            return None;
        }
        Some(out)
    }

    /// Notes whether thread `pid` is in another mount namespace than the
    /// command started in.
    pub(super) fn check_ns(&mut self, pid: Pid) {
        // No /proc read before the first exec sets the home namespace.
        let Some(home) = self.home_ns else {
            return;
        };
        let Some(ns) = mount_ns(pid) else {
            return;
        };
        if let Some(t) = self.tasks.get_mut(&pid) {
            t.foreign_ns = ns != home;
            // setns also moves the root and the cwd.
            t.root = None;
            t.cwd = None;
        }
    }

    pub(super) fn same_on_host(&self, pid: Pid, path: &[u8], named_at: usize) -> bool {
        same_on_host(self.opts.root.as_deref(), pid.as_raw(), path, named_at)
    }

    pub(super) fn rewrite_proc(&self, path: &mut Vec<u8>) {
        rewrite_proc(path, |id| self.tasks.contains_key(&Pid::from_raw(id)));
    }

    /// Appends the tracee's working directory (cached) to `out`. One the
    /// host cannot show is a loss: the access is not recorded.
    pub(super) fn append_cwd(&mut self, pid: Pid, out: &mut Vec<u8>) -> Option<()> {
        if self.tasks.get(&pid)?.cwd.is_none() {
            let cwd = match self.proc_link(pid, "cwd") {
                Ok(c) if self.names_its_object(pid, "cwd", &c) => self.unroot(c),
                // The task is gone: no access to lose.
                Err(Errno::ENOENT | Errno::ESRCH) => return None,
                _ => {
                    self.lost.unresolved += 1;
                    return None;
                }
            };
            self.tasks.get_mut(&pid)?.cwd = Some(cwd);
        }
        out.extend_from_slice(self.tasks.get(&pid)?.cwd.as_deref()?);
        Some(())
    }

    /// Appends the tracee's root directory (cached; nothing for the
    /// host's) to `out`. One the host cannot show is a loss.
    fn append_root(&mut self, pid: Pid, out: &mut Vec<u8>) -> Option<()> {
        let tgid = self.tasks.get(&pid)?.tgid;
        if let Some(root) = self.pivoted.get(&tgid) {
            out.extend_from_slice(root);
            return Some(());
        }
        if self.tasks.get(&pid)?.root.is_none() {
            let root = match self.proc_link(pid, "root") {
                Ok(r) if self.names_its_object(pid, "root", &r) => {
                    let r = self.unroot(r);
                    if r == b"/" {
                        Vec::new()
                    } else {
                        r
                    }
                }
                Err(Errno::ENOENT | Errno::ESRCH) => return None,
                _ => {
                    self.lost.unresolved += 1;
                    return None;
                }
            };
            self.tasks.get_mut(&pid)?.root = Some(root);
        }
        out.extend_from_slice(self.tasks.get(&pid)?.root.as_deref()?);
        Some(())
    }

    /// Whether `text`, read from the link `name` under `/proc/<pid>`,
    /// names on the host the very object the link leads to. It does not
    /// when the directory was deleted (the text then ends in
    /// " (deleted)") or lies in a mount jailtrace does not see: a path
    /// made of such a text would be made up.
    pub(super) fn names_its_object(&self, pid: Pid, name: &str, text: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Some(task) = self.tasks.get(&pid) else {
            return false;
        };
        let target = match &task.proc_dir {
            Some(dir) => nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::empty()),
            None => nix::sys::stat::stat(format!("/proc/{pid}/{name}").as_str()),
        };
        let named = nix::sys::stat::stat(std::ffi::OsStr::from_bytes(text));
        matches!((target, named), (Ok(a), Ok(b)) if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
    }

    /// Reads a link under `/proc/<pid>` (`cwd`, `fd/N`).
    pub(super) fn proc_link(&mut self, pid: Pid, name: &str) -> Result<Vec<u8>, Errno> {
        let task = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if task.proc_dir.is_none() {
            // Falls back to full paths if jailtrace runs out of descriptors.
            task.proc_dir = nix::fcntl::open(
                format!("/proc/{pid}").as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok();
        }
        let link = match &task.proc_dir {
            Some(dir) => nix::fcntl::readlinkat(dir, name)?,
            None => std::fs::read_link(format!("/proc/{pid}/{name}"))
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
                .into_os_string(),
        };
        use std::os::unix::ffi::OsStringExt;
        Ok(link.into_vec())
    }

    /// Appends the path of a descriptor used as a `dirfd` to `out`,
    /// through the cache.
    pub(super) fn append_dirfd_path(&mut self, pid: Pid, fd: i32, out: &mut Vec<u8>) -> Option<()> {
        if !self.dirfds.enabled() {
            out.extend_from_slice(&self.fd_path(pid, fd)?);
            return Some(());
        }
        let tgid = self.tasks.get(&pid)?.tgid;
        if self.dirfds.append(pid, tgid, fd, out) {
            return Some(());
        }
        let path = self.fd_path(pid, fd)?;
        out.extend_from_slice(&path);
        self.dirfds.insert(tgid, fd, path);
        Some(())
    }

    pub(super) fn fd_path(&mut self, pid: Pid, fd: i32) -> Option<Vec<u8>> {
        let name = format!("fd/{fd}");
        let p = match self.proc_link(pid, &name) {
            Ok(p) => p,
            // Longer than PATH_MAX: a path, but one jailtrace cannot read.
            Err(Errno::ENAMETOOLONG) => {
                self.lost.unresolved += 1;
                return None;
            }
            // No such descriptor (the call fails with EBADF), or the task
            // is gone: no path.
            Err(_) => return None,
        };
        // Pipes, sockets and anonymous inodes have no path.
        if p.first() != Some(&b'/') {
            return None;
        }
        if !self.names_its_object(pid, &name, &p) {
            self.lost.unresolved += 1;
            return None;
        }
        Some(self.unroot(p))
    }

    /// A host path read from /proc, as the (possibly chrooted) tracee sees it.
    pub(super) fn unroot(&self, p: Vec<u8>) -> Vec<u8> {
        let u = unrooted(self.opts.root.as_deref(), &p);
        if u.len() == p.len() {
            p
        } else {
            u.to_vec()
        }
    }
}
