//! Errors that carry their own exit status.

use std::fmt;

/// A failure with a message of one line. `commands::main` prints it and
/// exits with the failing command's error status (the one exit policy,
/// see `commands::error_code`), or with `code` when a convention fixes it:
/// 126 and 127 when the command to run cannot be executed or is not found,
/// as `env` and `chroot` do.
#[derive(Debug)]
pub struct Failure {
    pub code: Option<i32>,
    pub message: String,
}

impl Failure {
    /// A failure of the command: its status comes from the exit policy.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            code: None,
            message: message.into(),
        }
    }

    /// A failure whose status a convention fixes.
    pub fn exit(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code: Some(code),
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
/// `record` when the engine lost events (bpf) and `--allow-incomplete`
/// was not given: the manifest is written, but it may lack accesses.
pub const EXIT_INCOMPLETE: i32 = 124;
/// The program was found but could not be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// The program was not found.
pub const EXIT_NOT_FOUND: i32 = 127;
