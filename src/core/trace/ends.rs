//! How a recording is ended, the same for both engines: jailtrace's own
//! signals (forwarded to the command; once it is gone, to the whole tree;
//! a third kills it), the `--timeout` (SIGTERM, then SIGKILL after the
//! grace), and the warnings both engines give in the same words.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::signals;

/// Given when an x32 syscall was seen.
pub const X32: &str = "x32 syscalls are not decoded: their accesses are missing";
/// Given once when a 32-bit program is traced.
pub const I386: &str =
    "a 32-bit (i386) program was traced; its path syscalls were decoded with the i386 table";
/// io_uring submits its operations without a syscall per file: neither
/// engine sees them.
pub const IO_URING: &str = "io_uring_setup was called: files opened through io_uring are not seen by the tracer and may be missing";
/// A third signal to jailtrace ends the command.
pub const INTERRUPTED: &str = "jailtrace was interrupted three times: traced processes were killed";

/// The warning for accesses dropped because their path names something
/// else on the host.
pub fn foreign_ns(n: u64) -> String {
    format!(
        "incomplete recording: {n} accesses in a mount namespace of the program's own name paths \
         that are something else on the host (a bind mount, another tree); they are not recorded"
    )
}

/// The signals jailtrace passes on; SIGTSTP is job control, handled by
/// each engine.
const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The state of ending a recording.
pub struct Ends {
    deadline: Option<Instant>,
    grace: Duration,
    /// When SIGTERM went to every traced process (the timeout).
    term_sent: Option<Instant>,
    /// SIGKILL went to every traced process.
    killed: bool,
    signals: u32,
}

/// What [`Ends::poll`] found for the engine to act on.
pub struct Polled {
    /// SIGTSTP arrived: the terminal stopped the job.
    pub stop: bool,
}

impl Ends {
    pub fn new(timeout: Option<Duration>, grace: Duration) -> Ends {
        Ends {
            deadline: timeout.map(|d| Instant::now() + d),
            grace,
            term_sent: None,
            killed: false,
            signals: 0,
        }
    }

    /// Takes jailtrace's signals and checks the deadlines. The signal
    /// handler has already forwarded a signal to the command while it
    /// lives; once it is gone (`command_gone`: a daemon that forked away),
    /// `kill_all` passes it to every traced process instead.
    pub fn poll(
        &mut self,
        command_gone: bool,
        warnings: &mut BTreeSet<String>,
        kill_all: impl Fn(i32),
    ) -> Polled {
        let sigs = signals::take_signals();
        for sig in FORWARDED {
            if sigs & (1 << sig) == 0 {
                continue;
            }
            self.signals += 1;
            if command_gone {
                kill_all(sig);
            }
            if self.signals >= 3 && !self.killed {
                warnings.insert(INTERRUPTED.into());
                kill_all(libc::SIGKILL);
                self.killed = true;
            }
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) && self.term_sent.is_none() {
            kill_all(libc::SIGTERM);
            self.term_sent = Some(now);
        }
        if self.term_sent.is_some_and(|t| now >= t + self.grace) && !self.killed {
            kill_all(libc::SIGKILL);
            self.killed = true;
        }
        Polled {
            stop: sigs & (1 << libc::SIGTSTP) != 0,
        }
    }

    /// The signal a process that appears after the timeout's SIGTERM or
    /// the final SIGKILL gets too, so that a command forking in a loop
    /// cannot outlive them.
    pub fn late_signal(&self) -> Option<i32> {
        if self.killed {
            Some(libc::SIGKILL)
        } else if self.term_sent.is_some() {
            Some(libc::SIGTERM)
        } else {
            None
        }
    }
}
