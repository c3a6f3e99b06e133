//! The few system calls `run` needs that nix does not wrap safely: fork,
//! execve with prepared pointer arrays, close_range, the fd-based mount API,
//! and the signal-forwarding handler. Everything unsafe in `run` lives here.
//!
//! The functions used in the forked child are allocation-free: they take
//! C strings and pointer arrays built before the fork.

use std::ffi::CStr;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use libc::c_char;
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{ForkResult, Pid};

/// Forks the process.
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: jailtrace is single-threaded when it forks, so the child owns
    // a consistent copy of every lock and allocator state; the child side
    // only makes allocation-free system calls until it execs or `_exit`s.
    unsafe { nix::unistd::fork() }
}

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

/// The child that forwarded signals go to (0: none yet).
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let child = CHILD.load(Ordering::Relaxed);
    if child <= 0 {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler;
    // getpgid, getpgrp and kill are async-signal-safe system calls.
    unsafe {
        // A signal from the terminal (Ctrl-C, hangup) already went to the
        // whole foreground process group, the child included while it has
        // not yet left it with setsid: sending it again would deliver it
        // twice.
        if !info.is_null()
            && (*info).si_code == libc::SI_KERNEL
            && libc::getpgid(child) == libc::getpgrp()
        {
            return;
        }
        // The child calls setsid, so it leads its own session and process
        // group: the signal goes to that whole group, so that what the
        // command runs in the foreground (`sh -c 'sleep 6'`) gets it too,
        // as it would from a terminal. Before the setsid, the group does not
        // exist yet (ESRCH): then the child alone gets it.
        signal_group(child, sig);
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

/// Ends the forked child at once, without running the parent's atexit
/// handlers or flushing its copied stdio buffers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and takes a plain integer.
    unsafe { libc::_exit(code) }
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
