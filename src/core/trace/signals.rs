//! jailtrace's own signals while it records, and signals it sends: the
//! handlers, the forwarding to the command, the alarm that wakes a blocked
//! `waitpid`. Both engines use them; every `unsafe` block here is a libc
//! call behind a safe function.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Stops jailtrace itself (job control) until a SIGCONT.
pub fn stop_self() {
    // SAFETY: raise has no memory effects; SIGSTOP cannot be caught.
    unsafe { libc::raise(libc::SIGSTOP) };
}

pub fn kill(pid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects.
    Errno::result(unsafe { libc::kill(pid.as_raw(), sig) }).map(drop)
}

// --- signals --------------------------------------------------------------

/// Signals received by jailtrace, as a bit mask, since the last `take_signals`.
static PENDING: AtomicU32 = AtomicU32::new(0);
/// The traced command's pid while it lives; signals sent to jailtrace by a
/// process (not by the terminal) are forwarded to it from the handler itself,
/// so that forwarding never waits for the next tracee event.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    PENDING.fetch_or(1 << sig, Ordering::SeqCst);
    if sig == libc::SIGALRM || info.is_null() {
        return;
    }
    let pid = FORWARD_TO.load(Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler,
    // and `pass_on` is async-signal-safe.
    unsafe {
        crate::core::launch::pass_on(pid, sig, crate::core::launch::from_terminal(info));
    }
}

/// The dispositions jailtrace had before tracing, restored afterwards.
pub struct SavedHandlers(Vec<(libc::c_int, libc::sigaction)>);

impl SavedHandlers {
    /// The signals jailtrace was started with ignored and handles anyway
    /// (SIGALRM), which the command must start with ignored too (see
    /// `ChildSpec::ignored`).
    pub fn ignored(&self) -> Vec<libc::c_int> {
        self.0
            .iter()
            .filter(|(_, old)| old.sa_sigaction == libc::SIG_IGN)
            .map(|(sig, _)| *sig)
            .collect()
    }
}

impl Drop for SavedHandlers {
    fn drop(&mut self) {
        for (sig, old) in &self.0 {
            // SAFETY: restores an action the kernel gave us.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
    }
}

/// Installs the handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP and
/// SIGALRM. jailtrace must outlive each of them (SIGQUIT's default would
/// end it, with PTRACE_O_EXITKILL the command, and lose the manifest).
/// They do not restart system calls, so a blocking `waitpid` returns EINTR.
/// A signal jailtrace was started with ignored (`nohup`, a background job)
/// stays ignored, by jailtrace and so by the command; but SIGALRM, which
/// is jailtrace's own timer. Handlers (unlike SIG_IGN) are reset to the
/// default by exec, so the command starts with default dispositions for
/// the others, and an ignored SIGALRM is ignored again in the child
/// ([`SavedHandlers::ignored`]).
pub fn install_signal_handlers() -> Result<SavedHandlers, Errno> {
    let mut saved = SavedHandlers(Vec::new());
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGTSTP,
        libc::SIGALRM,
    ] {
        // SAFETY: an all-zero sigaction is valid for the kernel to fill.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one.
        Errno::result(unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) })?;
        if now.sa_sigaction == libc::SIG_IGN && sig != libc::SIGALRM {
            continue;
        }
        // SAFETY: an all-zero sigaction is valid; we then fill it in.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        // SAFETY: sa_mask is a valid sigset_t inside `sa`.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: an all-zero sigaction is valid for the kernel to fill.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: the handler only touches atomics and calls getpgid and kill.
        Errno::result(unsafe { libc::sigaction(sig, &sa, &mut old) })?;
        saved.0.push((sig, old));
    }
    Ok(saved)
}

pub fn set_forward_target(pid: Option<Pid>) {
    FORWARD_TO.store(pid.map_or(0, Pid::as_raw), Ordering::SeqCst);
}

/// Returns and clears the set of signals received (bit N = signal N).
pub fn take_signals() -> u32 {
    PENDING.swap(0, Ordering::SeqCst)
}

/// Arms a repeating SIGALRM every `interval_ms` (0 disarms), so that a
/// blocked `waitpid` wakes up to check deadlines.
pub fn set_alarm(interval_ms: u64) -> Result<(), Errno> {
    let tv = libc::timeval {
        tv_sec: (interval_ms / 1000) as libc::time_t,
        tv_usec: ((interval_ms % 1000) * 1000) as libc::suseconds_t,
    };
    let it = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: setitimer reads the struct we pass and writes nothing.
    Errno::result(unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) })
        .map(drop)
}
