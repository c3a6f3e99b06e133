//! What the tracer keeps per traced thread, and the call it is inside.

use nix::unistd::Pid;

use crate::core::trace::arch::Sys;
use crate::core::trace::decode;
use crate::core::trace::log::Item;

/// Per-thread state.
pub struct Task {
    pub tgid: Pid,
    /// Cached working directory (invalidated on chdir/fchdir).
    pub cwd: Option<Vec<u8>>,
    /// Cached root directory, read once some traced process has chrooted
    /// (empty: the host's, or the jail's under verify).
    pub root: Option<Vec<u8>>,
    /// Accesses read at syscall entry, awaiting the outcome.
    pub pending: Option<Pending>,
    /// In a group-stop (job control), parked with PTRACE_LISTEN.
    pub group_stopped: bool,
    /// A sched_getaffinity in progress: (buffer, length) to rewrite at exit.
    pub affinity_call: Option<(u64, u64)>,
    /// A set*id call in progress: the credentials are read at its exit.
    pub setid_call: bool,
    /// An unshare or setns in progress: the mount namespace is checked at
    /// its exit.
    pub ns_call: bool,
    /// In another mount namespace than the command started in: each path
    /// is checked to name the same object on the host.
    pub foreign_ns: bool,
    /// `/proc/<tid>`, opened on first need: reading `fd/N` and `cwd`
    /// relative to it saves a path walk through procfs on every
    /// dirfd-relative call. A /proc directory stays bound to its task, so a
    /// reused pid can never be read through it; it is closed when the task
    /// goes.
    pub proc_dir: Option<std::os::fd::OwnedFd>,
}

pub struct Pending {
    pub sys: Sys,
    pub items: Vec<Item>,
    /// For calls that name no path (open_by_handle_at): on success, the
    /// file the returned descriptor refers to gets these ops.
    pub result_fd: Option<(decode::Ops, bool)>,
    /// Per item: whether an object was at its path at syscall entry, for a
    /// call that may create it and a path touched for the first time. Its
    /// outcome cannot tell: an `O_CREAT` open succeeds either way.
    pub found: Vec<Option<bool>>,
}

impl Task {
    pub fn new(tgid: Pid) -> Task {
        Task {
            tgid,
            cwd: None,
            root: None,
            pending: None,
            group_stopped: false,
            affinity_call: None,
            setid_call: false,
            ns_call: false,
            foreign_ns: false,
            proc_dir: None,
        }
    }
}
