//! Paths of directory descriptors used as `dirfd`, so that the calls of a
//! program walking a tree (tar, find) need no /proc readlink each. An entry
//! holds a duplicate of the tracee's descriptor (`pidfd_getfd`) and is
//! trusted only while `kcmp` says the tracee's descriptor is still that very
//! open file: a close, dup2 or exec that changes it is always noticed. A
//! traced rename or umount drops the whole cache, since it may move a cached
//! directory or keep a file system busy.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::sys;

/// Bound on cached descriptors (each holds a descriptor in jailtrace).
const MAX: usize = 256;

pub struct DirfdCache {
    /// Off when the kernel lacks pidfd_getfd or kcmp.
    disabled: bool,
    /// jailtrace's own pid, for kcmp.
    me: Pid,
    pidfds: HashMap<Pid, OwnedFd>,
    entries: HashMap<(Pid, i32), (Vec<u8>, OwnedFd)>,
}

impl DirfdCache {
    pub fn new() -> DirfdCache {
        DirfdCache {
            disabled: false,
            me: nix::unistd::getpid(),
            pidfds: HashMap::new(),
            entries: HashMap::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.disabled
    }

    /// Appends the cached path of descriptor `fd` of thread `pid` (in
    /// thread group `tgid`) to `out` and returns true, if the tracee's
    /// descriptor is still the cached open file. One map lookup on a hit:
    /// this runs for every dirfd-relative call of a tree walk.
    pub fn append(&mut self, pid: Pid, tgid: Pid, fd: i32, out: &mut Vec<u8>) -> bool {
        let Some((path, ours)) = self.entries.get(&(tgid, fd)) else {
            return false;
        };
        match sys::same_file(pid, fd, self.me, ours) {
            Ok(true) => {
                out.extend_from_slice(path);
                return true;
            }
            Ok(false) => {}
            Err(_) => self.disabled = true,
        }
        self.entries.remove(&(tgid, fd));
        false
    }

    /// Caches `path` for descriptor `fd` of thread group `tgid`.
    pub fn insert(&mut self, tgid: Pid, fd: i32, path: Vec<u8>) {
        if self.entries.len() >= MAX {
            self.entries.clear();
        }
        let pidfd = match self.pidfds.entry(tgid) {
            std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
            std::collections::hash_map::Entry::Vacant(v) => {
                sys::pidfd_open(tgid).ok().map(|fd| v.insert(fd))
            }
        };
        match pidfd.map(|p| sys::pidfd_getfd(p, fd)) {
            Some(Ok(ours)) => {
                self.entries.insert((tgid, fd), (path, ours));
            }
            Some(Err(Errno::ENOSYS | Errno::EPERM)) | None => self.disabled = true,
            Some(Err(_)) => {}
        }
    }

    /// Forgets a thread group that has exited.
    pub fn forget(&mut self, tgid: Pid) {
        if self.pidfds.remove(&tgid).is_some() {
            self.entries.retain(|&(g, _), _| g != tgid);
        }
    }

    /// Drops every cached descriptor.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
