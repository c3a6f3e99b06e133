//! Failures the core reports, with why they happened, and how a process ends.

use std::fmt;

/// Why a command failed, as far as how jailtrace ends cares. The core
/// says why; the commands' one exit policy (`commands::Kind::exit`) turns
/// it into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// jailtrace could not do its job.
    Failed,
    /// The program to run was not found.
    NotFound,
    /// The program was found but could not be executed.
    CannotExec,
    /// A recording lost accesses: what it found would be wrong.
    Incomplete,
}

/// A failure with a message of one line. `commands::main` prints it and
/// exits with the status its [`Cause`] has for the failing command.
#[derive(Debug)]
pub struct Failure {
    pub cause: Cause,
    pub message: String,
}

impl Failure {
    /// jailtrace could not do its job.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure::because(Cause::Failed, message)
    }

    /// A failure for another reason than jailtrace's own.
    pub fn because(cause: Cause, message: impl Into<String>) -> Failure {
        Failure {
            cause,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// How a process ends: the program `record` traced or `run` ran, and
/// jailtrace itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit with this status.
    Code(i32),
    /// Killed by this signal. When the program was, jailtrace kills itself
    /// with it, once its work is done, so that a calling shell sees the
    /// signal as it would without jailtrace (a `while` loop stops on ^C).
    /// As strace and GNU timeout do.
    Signal(i32),
}

impl Exit {
    /// The status a shell reports: the code, or 128+N.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(n) => 128 + n,
        }
    }
}

/// The statuses of the conventions the exit policy follows.
///
/// jailtrace's own failures in commands that run a program (`record`,
/// `run`, `verify`), as `chroot` and `env` use them.
pub const EXIT_INTERNAL: i32 = 125;
/// `record` when the engine lost events (bpf) and `--allow-incomplete`
/// was not given: the manifest is written, but it may lack accesses.
pub const EXIT_INCOMPLETE: i32 = 124;
/// The program was found but could not be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// The program was not found.
pub const EXIT_NOT_FOUND: i32 = 127;
