//! The few system calls `run` needs that nix does not wrap safely: fork,
//! execve with prepared pointer arrays, close_range, the fd-based mount API,
//! and the signal-forwarding handler. Everything unsafe in `run` lives here.
//!
//! The functions used in the forked child are allocation-free: they take
//! C strings and pointer arrays built before the fork.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use libc::c_char;
use nix::errno::Errno;

use super::{ChildError, Step};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

/// Executes `path`; returns only on failure, with the errno. `argv` and
/// `envp` are null-terminated arrays of pointers into C strings that the
/// caller keeps alive.
pub fn execve(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: `path` is a valid C string; `argv` and `envp` are
    // null-terminated arrays of pointers to C strings owned by the caller's
    // `Plan`, which outlives this call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// Closes every descriptor above 2 except `keep`.
pub fn close_fds_above_stderr(keep: Option<RawFd>) -> nix::Result<()> {
    let close = |first: u32, last: u32| -> nix::Result<()> {
        if first > last {
            return Ok(());
        }
        // SAFETY: close_range only closes descriptors; the ones we close are
        // inherited or ours and never used again in this process.
        let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        Errno::result(r).map(drop)
    };
    match keep {
        Some(k) if k > 2 => {
            close(3, k as u32 - 1)?;
            close(k as u32 + 1, u32::MAX)
        }
        _ => close(3, u32::MAX),
    }
}

// The new mount API through rustix, which wraps each call safely and
// without allocating (`&CStr` arguments are passed as they are): the child
// calls these between fork and exec.

fn from_rustix(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// `fsopen(fstype)`: a filesystem context for a new, detached mount.
pub fn fsopen(fstype: &CStr) -> nix::Result<OwnedFd> {
    rustix::mount::fsopen(fstype, rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC).map_err(from_rustix)
}

/// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
pub fn fsconfig_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> nix::Result<()> {
    rustix::mount::fsconfig_set_string(fs, key, value).map_err(from_rustix)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)`: creates the superblock.
pub fn fsconfig_create(fs: BorrowedFd<'_>) -> nix::Result<()> {
    rustix::mount::fsconfig_create(fs).map_err(from_rustix)
}

/// `fsmount`: turns a configured context into a detached mount with the
/// given `MOUNT_ATTR_*` flags.
pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> nix::Result<OwnedFd> {
    let attrs = u32::try_from(attrs).map_err(|_| Errno::EINVAL)?;
    rustix::mount::fsmount(
        fs,
        rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
        rustix::mount::MountAttrFlags::from_bits_retain(attrs),
    )
    .map_err(from_rustix)
}

/// `open_tree(OPEN_TREE_CLONE)`: a detached bind mount of a host path.
pub fn open_tree_clone(path: &CStr) -> nix::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    // AT_FDCWD resolves it from our (host) root.
    rustix::mount::open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(from_rustix)
}

/// Attaches the detached mount `mnt` onto the object `target` refers to.
/// Working on descriptors means no path is resolved again, so nothing can
/// redirect the mount through a symlink swapped in meanwhile.
pub fn move_mount(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
    use rustix::mount::MoveMountFlags;
    rustix::mount::move_mount(
        mnt,
        c"",
        target,
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(from_rustix)
}

// --- spawning -------------------------------------------------------------

/// What the child runs.
pub enum Launch<'a> {
    /// A program on the host, with jailtrace's environment.
    Host {
        program: CString,
        argv: Vec<CString>,
    },
    /// A program on the host run as another user, from `/`, with the given
    /// environment: `verify`'s reference run, with the jail's identity.
    HostAs {
        program: CString,
        argv: Vec<CString>,
        env: Vec<CString>,
        uid: libc::uid_t,
        gid: libc::gid_t,
        groups: Vec<libc::gid_t>,
    },
    /// A command inside a jail, entered exactly as `jailtrace run` does.
    Jail(&'a super::Plan),
}

/// Everything the child needs, prepared before fork so that the child does
/// no allocation.
pub struct ChildSpec<'a> {
    pub launch: Launch<'a>,
    /// Wait for [`Child::release`] before going on (the tracer seizes the
    /// child first).
    pub hold: bool,
    /// The signal mask the child restores (the parent blocks the signals
    /// it forwards around the fork).
    pub mask: Option<&'a nix::sys::signal::SigSet>,
    /// A seccomp filter to install right before the exec (the tracer's).
    pub filter: Option<Vec<libc::sock_filter>>,
    /// Set PR_SET_NO_NEW_PRIVS before installing the filter (required
    /// without CAP_SYS_ADMIN).
    pub no_new_privs: bool,
    /// CPU mask to restore in the child before exec (when the tracer pinned
    /// itself but the command must keep its original CPUs).
    pub child_affinity: Option<libc::cpu_set_t>,
    /// Signals the command starts with ignored, because jailtrace was
    /// started with them ignored but handles them itself (SIGALRM, the
    /// tracer's timer): the handler, inherited by the child, would
    /// otherwise become the default at exec.
    pub ignored: Vec<libc::c_int>,
}

/// The byte that releases a held child.
const GO: u8 = b'g';

pub struct Child {
    pub pid: Pid,
    go: OwnedFd,
    report: OwnedFd,
}

/// The one launch path of `record`, `verify` and `run`: forks a child that
/// (with `hold`) waits for [`Child::release`], restores the signal mask,
/// enters the jail or switches user as `launch` says, installs the seccomp
/// filter if there is one, and execs. A failure before the exec
/// is sent back as a [`ChildError`] through a close-on-exec pipe.
pub fn spawn(spec: &ChildSpec) -> Result<Child, Errno> {
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (rep_r, rep_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (host_argv, host_env) = match &spec.launch {
        Launch::Host { argv, .. } => (ptrs(argv), Vec::new()),
        Launch::HostAs { argv, env, .. } => (ptrs(argv), ptrs(env)),
        Launch::Jail(_) => (Vec::new(), Vec::new()),
    };
    let prog = spec.filter.as_ref().map(|f| libc::sock_fprog {
        len: f.len() as u16,
        filter: f.as_ptr().cast_mut(),
    });
    // SAFETY: the child below only makes async-signal-safe raw system calls
    // (and run's allocation-free jail entry) on memory prepared before the
    // fork, so no lock another thread held (a progress ticker of an earlier
    // round) can be needed in it.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        child_side(
            spec,
            go_r.as_raw_fd(),
            go_w.as_raw_fd(),
            rep_w.as_raw_fd(),
            prog.as_ref(),
            &host_argv,
            &host_env,
        );
    }
    drop(go_r);
    drop(rep_w);
    Ok(Child {
        pid: Pid::from_raw(pid),
        go: go_w,
        report: rep_r,
    })
}

/// The child side of [`spawn`]: waits until the tracer has seized it, sets
/// up what the launch asks for, installs the filter and execs. Failures go
/// to the tracer through `report_fd` as a [`ChildError`]. Async-signal-safe
/// only: every buffer was prepared before the fork.
fn child_side(
    spec: &ChildSpec,
    go: std::os::fd::RawFd,
    go_w: std::os::fd::RawFd,
    report_fd: std::os::fd::RawFd,
    prog: Option<&libc::sock_fprog>,
    host_argv: &[*const libc::c_char],
    host_env: &[*const libc::c_char],
) -> ! {
    let report = |e: ChildError| -> ! {
        let b = e.to_bytes();
        // SAFETY: write and _exit are async-signal-safe; `b` is ours.
        unsafe {
            libc::write(report_fd, b.as_ptr() as *const libc::c_void, b.len());
            libc::_exit(e.exit_code())
        }
    };
    let fail = |step: Step| -> ! {
        report(ChildError {
            step,
            errno: Errno::last(),
        })
    };
    let mut byte = 0u8;
    if let Some(mask) = spec.mask {
        // The forwarded signals must not stay blocked across exec.
        let _ = mask.thread_set_mask();
    }
    for &sig in &spec.ignored {
        // SAFETY: SIG_IGN runs no code; signal() is async-signal-safe.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // SAFETY: child side of fork; only raw syscalls on pre-built data.
    unsafe {
        // Our copy of the write end would keep the pipe open: without
        // it, the parent's end closing (it died or gave up) is EOF here.
        libc::close(go_w);
        if spec.hold {
            // Wait until the parent has seized us (ptrace) or registered
            // our pid (bpf). The forwarding handlers inherited from the
            // parent do not restart calls, so a signal here is EINTR, not
            // the go: going on early would run code nobody records. End
            // of file (the parent gave up) or any other byte is no go.
            loop {
                let n = libc::read(go, &mut byte as *mut u8 as *mut libc::c_void, 1);
                if n == 1 && byte == GO {
                    break;
                }
                if n < 0 && Errno::last() == Errno::EINTR {
                    continue;
                }
                if n >= 0 {
                    Errno::set_raw(libc::EPIPE);
                }
                fail(Step::Hold);
            }
        }
        // Rust's runtime ignores SIGPIPE; the traced program must not
        // inherit that.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if let Some(mask) = &spec.child_affinity {
            // Best effort: on failure the command runs on the tracer's CPU.
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), mask);
        }
    }
    match &spec.launch {
        Launch::Jail(plan) => {
            // The jail entry sets no_new_privs itself, after setuid.
            if let Err(e) = super::enter_jail(plan, Some(report_fd)) {
                report(e);
            }
        }
        Launch::HostAs {
            uid, gid, groups, ..
        } => {
            // SAFETY: plain syscalls on data prepared before the fork.
            unsafe {
                if libc::chdir(c"/".as_ptr()) != 0 {
                    fail(Step::ChdirRoot);
                }
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                    fail(Step::Setgroups);
                }
                if libc::setgid(*gid) != 0 {
                    fail(Step::Setgid);
                }
                if libc::setuid(*uid) != 0 {
                    fail(Step::Setuid);
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    fail(Step::NoNewPrivs);
                }
            }
        }
        Launch::Host { .. } => {}
    }
    if let Some(prog) = prog {
        // SAFETY: prctl reads the filter program prepared before the fork.
        unsafe {
            if spec.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                fail(Step::Seccomp);
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                std::ptr::from_ref(prog),
            ) != 0
            {
                fail(Step::Seccomp);
            }
        }
    }
    match &spec.launch {
        Launch::Host { program, .. } => {
            // SAFETY: program and argv are NUL-terminated C strings and a
            // NULL-terminated pointer array built before the fork.
            unsafe { libc::execv(program.as_ptr(), host_argv.as_ptr()) };
            fail(Step::Exec)
        }
        Launch::HostAs { program, .. } => {
            // SAFETY: as above, with an environment array built the same way.
            unsafe { libc::execve(program.as_ptr(), host_argv.as_ptr(), host_env.as_ptr()) };
            fail(Step::Exec)
        }
        Launch::Jail(plan) => report(super::exec_command(plan)),
    }
}

impl Child {
    /// Lets the child go on to exec.
    pub fn release(&self) -> Result<(), Errno> {
        nix::unistd::write(&self.go, &[GO]).map(drop)
    }

    /// Waits until the child has exec'd or died, and says what failed in
    /// it, if anything.
    pub fn report(&self) -> std::io::Result<Option<ChildError>> {
        super::read_report(self.report.as_fd())
    }

    /// As [`Child::report`], a failure to read the report counting as none.
    pub fn failure(&self) -> Option<ChildError> {
        self.report().ok().flatten()
    }
}

/// The child that forwarded signals go to (0: none yet).
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let child = CHILD.load(Ordering::Relaxed);
    // SAFETY: the kernel passes a valid (or null) siginfo to an SA_SIGINFO
    // handler; pass_on is async-signal-safe.
    unsafe { pass_on(child, sig, from_terminal(info)) }
}

/// Whether a signal's siginfo says the kernel sent it for the terminal
/// (Ctrl-C, `Ctrl-\`, hangup) rather than a process with kill.
///
/// # Safety
/// `info` is null or points to the siginfo the kernel gave the handler.
pub unsafe fn from_terminal(info: *const libc::siginfo_t) -> bool {
    // SAFETY: as the caller promises.
    !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL
}

/// The one forwarding rule of `run` and of the tracer, called from their
/// signal handlers: passes `sig` on to the command `pid` (0: none). A command
/// that leads its own process group (it called setsid, as the jail entry
/// does) gets it in its whole group, so that what it runs in the foreground
/// (`sh -c 'sleep 6'`) gets it too, as from a terminal. Otherwise it is still
/// in jailtrace's group, where a terminal's signal already reached it:
/// forwarding that would deliver it twice, so only a signal from a process
/// is passed on, to the command alone.
///
/// # Safety
/// Only async-signal-safe calls; callable from a signal handler.
pub unsafe fn pass_on(pid: libc::pid_t, sig: libc::c_int, from_terminal: bool) {
    if pid <= 0 {
        return;
    }
    // SAFETY: getpgid and kill are async-signal-safe and take integers.
    unsafe {
        if libc::getpgid(pid) == pid {
            libc::kill(-pid, sig);
        } else if !from_terminal {
            libc::kill(pid, sig);
        }
    }
}

/// The signals `run` passes on to its child. SIGQUIT too: a terminal's Ctrl-\
/// reaches only jailtrace (the command has left the terminal's group), and
/// jailtrace dying of it would leave the command without its supervisor.
pub const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Sends `sig` to `child`'s process group, or to `child` alone before it
/// has made that group with setsid.
///
/// # Safety
/// Only async-signal-safe calls; callable from a signal handler.
unsafe fn signal_group(child: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill is async-signal-safe and takes plain integers.
    unsafe {
        if libc::kill(-child, sig) != 0 {
            libc::kill(child, sig);
        }
    }
}

/// Ctrl-Z: the command left the terminal's process group, so the terminal
/// stops jailtrace alone. Pass the stop on to the command's group, stop
/// jailtrace itself the way SIGTSTP's default action does, and continue the
/// command when jailtrace is continued (`fg`, `bg`, SIGCONT).
extern "C" fn suspend(_sig: libc::c_int) {
    let child = CHILD.load(Ordering::Relaxed);
    // SAFETY: only async-signal-safe calls (kill, sigaction, sigprocmask,
    // getpid) on values that live on this stack frame.
    unsafe {
        if child > 0 {
            signal_group(child, libc::SIGSTOP);
        }
        // Raise SIGTSTP with its default action rather than SIGSTOP: if
        // jailtrace's own group is orphaned, the kernel discards it as
        // POSIX requires, and nothing stays stopped with no one to wake it.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let mut mine: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGTSTP, &dfl, &mut mine);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTSTP);
        libc::kill(libc::getpid(), libc::SIGTSTP);
        // Blocked while this handler runs: unblocking delivers it, and
        // jailtrace stops here until SIGCONT.
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::sigaction(libc::SIGTSTP, &mine, std::ptr::null_mut());
        let child = CHILD.load(Ordering::Relaxed);
        if child > 0 {
            signal_group(child, libc::SIGCONT);
        }
    }
}

/// Blocks the forwarded signals (and SIGTSTP) and returns the previous
/// mask, so that none arrives between the fork and the handlers'
/// installation.
pub fn block_forwarded() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGTSTP);
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&set),
        Some(&mut old),
    )?;
    Ok(old)
}

/// Restores a signal mask saved by [`block_forwarded`].
pub fn restore_mask(old: &SigSet) -> nix::Result<()> {
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(old), None)
}

/// Installs handlers that send SIGINT, SIGTERM, SIGHUP and SIGQUIT on to `child`'s
/// process group (the child leads it).
pub fn forward_signals_to(child: Pid) -> nix::Result<()> {
    CHILD.store(child.as_raw(), Ordering::Relaxed);
    // SA_RESTART: the parent's blocking read and waitpid simply resume.
    let action = SigAction::new(
        SigHandler::SigAction(forward),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in FORWARDED {
        // SAFETY: `forward` is async-signal-safe: it reads an atomic and
        // makes only async-signal-safe system calls.
        unsafe { nix::sys::signal::sigaction(s, &action) }?;
    }
    let action = SigAction::new(
        SigHandler::Handler(suspend),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: `suspend` makes only async-signal-safe calls.
    unsafe { nix::sys::signal::sigaction(Signal::SIGTSTP, &action) }?;
    Ok(())
}

/// Stops forwarding: once the child is reaped its pid (and group id) may be
/// reused by an unrelated process.
pub fn stop_forwarding() {
    CHILD.store(0, Ordering::Relaxed);
}

/// Ends jailtrace by `sig`, the signal that killed the command, with its
/// default action and without a core dump of jailtrace; 128+N if the
/// signal's default is not to terminate.
pub fn die_of(sig: i32) -> ! {
    use nix::sys::resource::{setrlimit, Resource};
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    if let Ok(s) = Signal::try_from(sig) {
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        let _ = unsafe { nix::sys::signal::signal(s, SigHandler::SigDfl) };
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(s);
        let _ = set.thread_unblock();
        let _ = nix::sys::signal::raise(s);
    }
    std::process::exit(128 + sig)
}

/// Gives SIGPIPE back its default action. Rust ignores it at startup and
/// an ignored disposition survives exec: without this, a jailed `cmd | head`
/// would see EPIPE errors instead of ending quietly.
pub fn default_sigpipe() -> nix::Result<()> {
    // SAFETY: installing SIG_DFL runs no code of ours in signal context.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use std::time::{Duration, Instant};

    fn held_true() -> Child {
        let spec = ChildSpec {
            launch: Launch::Host {
                program: c"/bin/true".into(),
                argv: vec![c"true".into()],
            },
            hold: true,
            mask: None,
            filter: None,
            no_new_privs: false,
            child_affinity: None,
            ignored: Vec::new(),
        };
        spawn(&spec).unwrap()
    }

    /// Waits until the child sleeps (in its read of the go pipe).
    fn wait_blocked(pid: Pid) {
        let t0 = Instant::now();
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
            if state == 'S' {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the child never blocked: {stat}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A signal during the hold interrupts the child's read (the handlers
    /// it inherits do not restart calls), and must not release it: under
    /// bpf, what it ran before its pid was registered would go unrecorded.
    #[test]
    fn a_signal_during_the_hold_does_not_release_the_child() {
        extern "C" fn nothing(_: libc::c_int) {}
        let sa = SigAction::new(
            SigHandler::Handler(nothing),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing, so it is async-signal-safe; no
        // other test uses SIGURG.
        unsafe { nix::sys::signal::sigaction(Signal::SIGURG, &sa) }.unwrap();
        let child = held_true();
        wait_blocked(child.pid);
        for _ in 0..3 {
            nix::sys::signal::kill(child.pid, Signal::SIGURG).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            waitpid(child.pid, Some(WaitPidFlag::WNOHANG)).unwrap(),
            WaitStatus::StillAlive,
            "a signal released the held child"
        );
        child.release().unwrap();
        assert_eq!(child.failure(), None);
        assert_eq!(
            waitpid(child.pid, None).unwrap(),
            WaitStatus::Exited(child.pid, 0)
        );
    }

    /// A parent that gives up without the go byte leaves a child that
    /// fails at the hold instead of running the command.
    #[test]
    fn no_go_is_no_start() {
        let Child { pid, go, report } = held_true();
        wait_blocked(pid);
        drop(go);
        // Bounded: a child that keeps waiting is the failure, not a hang.
        let t0 = Instant::now();
        let status = loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
                WaitStatus::StillAlive if t0.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                WaitStatus::StillAlive => {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    panic!("the child still waits for a go that can never come");
                }
                s => break s,
            }
        };
        assert_eq!(
            status,
            WaitStatus::Exited(pid, crate::core::error::EXIT_INTERNAL)
        );
        let e = super::super::read_report(report.as_fd()).unwrap();
        assert_eq!(e.map(|e| e.step), Some(Step::Hold));
    }
}
