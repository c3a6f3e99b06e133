//! Errors that carry their own exit status.

use std::fmt;

/// A failure whose exit status is fixed by convention (for example 127 when
/// the command to trace is not found). `main` prints the message on one line
/// and exits with `code`.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
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

/// How jailtrace ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit with this status.
    Code(i32),
    /// The command that `record` traced or `run` ran was killed by this
    /// signal: jailtrace kills itself with it, once its work is done, so
    /// that a calling shell sees the signal as it would without jailtrace
    /// (a `while` loop stops on ^C). As strace and GNU timeout do.
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

/// Exit status for jailtrace's own failures in commands that run a program
/// (`record`, `run`, `verify`), as `chroot` and `env` use them.
pub const EXIT_INTERNAL: i32 = 125;
/// The program was found but could not be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// The program was not found.
pub const EXIT_NOT_FOUND: i32 = 127;
