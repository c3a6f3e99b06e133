//! The tracer's thin layer over raw system calls: every `unsafe` block of the
//! tracer lives here, behind safe functions.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// What `waitpid` reports of one tracee.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub pid: Pid,
    pub stop: Stop,
}

/// A wait status, lifted from its bits. Decoded here rather than with
/// nix's `WaitStatus`, which rejects the real-time signals and ptrace
/// event bits a tracer must handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The task exited with this code.
    Exited(i32),
    /// The task was killed by this signal.
    Killed(i32),
    /// A syscall-exit stop (`PTRACE_O_TRACESYSGOOD`).
    SyscallExit,
    /// `PTRACE_EVENT_STOP` with this signal: a group-stop for job-control
    /// signals, otherwise the stop of a seize or interrupt.
    Interrupt(i32),
    /// A seccomp `RET_TRACE` stop.
    Seccomp,
    /// A fork, vfork (`clone: false`) or clone (`clone: true`) event.
    Fork { clone: bool },
    /// A successful exec.
    Exec,
    /// Another ptrace event.
    OtherEvent,
    /// A signal about to be delivered.
    Signal(i32),
    /// Anything else (a continued task).
    Other,
}

impl Stop {
    pub fn of(s: i32) -> Stop {
        if libc::WIFEXITED(s) {
            return Stop::Exited(libc::WEXITSTATUS(s));
        }
        if libc::WIFSIGNALED(s) {
            return Stop::Killed(libc::WTERMSIG(s));
        }
        if !libc::WIFSTOPPED(s) {
            return Stop::Other;
        }
        let sig = libc::WSTOPSIG(s);
        let event = (s >> 16) & 0xff;
        if sig == (libc::SIGTRAP | 0x80) {
            return Stop::SyscallExit;
        }
        if event == libc::PTRACE_EVENT_STOP {
            return Stop::Interrupt(sig);
        }
        if sig == libc::SIGTRAP && event != 0 {
            return match event {
                libc::PTRACE_EVENT_SECCOMP => Stop::Seccomp,
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => Stop::Fork { clone: false },
                libc::PTRACE_EVENT_CLONE => Stop::Fork { clone: true },
                libc::PTRACE_EVENT_EXEC => Stop::Exec,
                _ => Stop::OtherEvent,
            };
        }
        Stop::Signal(sig)
    }

    /// Whether the task is gone.
    pub fn is_end(self) -> bool {
        matches!(self, Stop::Exited(_) | Stop::Killed(_))
    }
}

/// `waitpid(-1, __WALL)`.
pub fn wait_any() -> Result<Wait, Errno> {
    let mut status = 0;
    // SAFETY: waitpid only writes the status integer we pass.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
    if pid < 0 {
        return Err(Errno::last());
    }
    Ok(Wait {
        pid: Pid::from_raw(pid),
        stop: Stop::of(status),
    })
}

fn ptrace_raw(
    req: libc::c_uint,
    pid: Pid,
    addr: usize,
    data: usize,
) -> Result<libc::c_long, Errno> {
    Errno::clear();
    // SAFETY: every caller passes a request whose `addr`/`data` are plain
    // integers or point to memory owned by the caller and sized for the
    // request (see each wrapper).
    let ret = unsafe { libc::ptrace(req, pid.as_raw(), addr, data) };
    if ret == -1 && Errno::last_raw() != 0 {
        return Err(Errno::last());
    }
    Ok(ret)
}

/// Attaches without stopping the tracee, with the given `PTRACE_O_*` options.
pub fn seize(pid: Pid, options: libc::c_int) -> Result<(), Errno> {
    ptrace_raw(libc::PTRACE_SEIZE, pid, 0, options as usize).map(drop)
}

/// Resumes until the next ptrace stop; `sig` (0 for none) is delivered.
pub fn cont(pid: Pid, sig: i32) -> Result<(), Errno> {
    ptrace_raw(libc::PTRACE_CONT, pid, 0, sig as usize).map(drop)
}

/// Resumes and stops again at the next syscall entry or exit.
pub fn cont_syscall(pid: Pid, sig: i32) -> Result<(), Errno> {
    ptrace_raw(libc::PTRACE_SYSCALL, pid, 0, sig as usize).map(drop)
}

/// Leaves a group-stopped tracee stopped but lets it be woken by SIGCONT.
pub fn listen(pid: Pid) -> Result<(), Errno> {
    ptrace_raw(libc::PTRACE_LISTEN, pid, 0, 0).map(drop)
}

/// The event message of the last ptrace event (new pid, former tid...).
pub fn event_msg(pid: Pid) -> Result<u64, Errno> {
    let mut msg: libc::c_ulong = 0;
    ptrace_raw(
        libc::PTRACE_GETEVENTMSG,
        pid,
        0,
        &mut msg as *mut libc::c_ulong as usize,
    )?;
    Ok(msg as u64)
}

/// What `PTRACE_GET_SYSCALL_INFO` says about the current stop.
#[derive(Debug, Clone, Copy)]
pub enum SyscallInfo {
    /// A seccomp stop at syscall entry.
    Seccomp { arch: u32, nr: u64, args: [u64; 6] },
    /// A syscall-exit stop.
    Exit { rval: i64, is_error: bool },
    /// Any other stop.
    Other,
}

pub fn syscall_info(pid: Pid) -> Result<SyscallInfo, Errno> {
    // SAFETY: an all-zero ptrace_syscall_info is a valid value of this
    // plain-data struct.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    ptrace_raw(
        libc::PTRACE_GET_SYSCALL_INFO,
        pid,
        std::mem::size_of::<libc::ptrace_syscall_info>(),
        &mut info as *mut _ as usize,
    )?;
    Ok(match info.op {
        // SAFETY: `op` says which union member the kernel filled in.
        libc::PTRACE_SYSCALL_INFO_SECCOMP => unsafe {
            SyscallInfo::Seccomp {
                arch: info.arch,
                nr: info.u.seccomp.nr,
                args: info.u.seccomp.args,
            }
        },
        // SAFETY: as above.
        libc::PTRACE_SYSCALL_INFO_EXIT => unsafe {
            SyscallInfo::Exit {
                rval: info.u.exit.sval,
                is_error: info.u.exit.is_error != 0,
            }
        },
        _ => SyscallInfo::Other,
    })
}

/// Reads one word of tracee memory (fallback when process_vm_readv fails).
pub fn peek(pid: Pid, addr: u64) -> Result<[u8; 8], Errno> {
    ptrace_raw(libc::PTRACE_PEEKDATA, pid, addr as usize, 0).map(i64::to_ne_bytes)
}

/// Restores the calling thread's CPU mask.
pub fn set_affinity(mask: &libc::cpu_set_t) {
    // SAFETY: the kernel reads size_of::<cpu_set_t>() bytes of `mask`.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), mask) };
}

// --- CPU placement ------------------------------------------------------

/// The calling thread's CPU mask.
pub fn get_affinity() -> Result<libc::cpu_set_t, Errno> {
    // SAFETY: an all-zero cpu_set_t is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes.
    Errno::result(unsafe {
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
    })?;
    Ok(set)
}

/// Pins the calling thread to the CPU it is running on; returns that CPU.
pub fn pin_to_current_cpu() -> Result<usize, Errno> {
    // SAFETY: sched_getcpu has no arguments.
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 {
        return Err(Errno::last());
    }
    // SAFETY: an all-zero cpu_set_t is an empty set; CPU_SET writes one bit
    // of it, and the index is a CPU number the kernel just gave us.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET sets bit `cpu` of `set`, a valid cpu_set_t; the kernel
    // gave us `cpu`, so it is within the set's size.
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: the kernel reads size_of::<cpu_set_t>() bytes of `set`.
    Errno::result(unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    })?;
    Ok(cpu as usize)
}

// --- descriptor identity (the dirfd cache) -------------------------------

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    let pid = rustix::process::Pid::from_raw(pid.as_raw()).ok_or(Errno::EINVAL)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// `pidfd_getfd(pidfd, fd, 0)`: a duplicate, in jailtrace, of a tracee's
/// descriptor (the same open file).
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> Result<OwnedFd, Errno> {
    rustix::process::pidfd_getfd(pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
        .map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// Whether descriptor `fd` of task `pid` is the very open file `ours`
/// (`kcmp(KCMP_FILE)`): a comparison of kernel pointers, no path walk.
pub fn same_file(pid: Pid, fd: i32, me: Pid, ours: &OwnedFd) -> Result<bool, Errno> {
    const KCMP_FILE: libc::c_int = 0;
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid.as_raw(),
            me.as_raw(),
            KCMP_FILE,
            fd,
            ours.as_raw_fd(),
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(r == 0)
}

/// The bytes of a CPU mask, as sched_getaffinity copies them out.
pub fn mask_bytes(mask: &libc::cpu_set_t) -> Vec<u8> {
    // SAFETY: cpu_set_t is plain bytes; we read exactly its size.
    unsafe {
        std::slice::from_raw_parts(
            mask as *const libc::cpu_set_t as *const u8,
            std::mem::size_of::<libc::cpu_set_t>(),
        )
    }
    .to_vec()
}
