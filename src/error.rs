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

/// Exit status for jailtrace's own failures in commands that run a program
/// (`record`, `run`, `verify`), as `chroot` and `env` use them.
pub const EXIT_INTERNAL: i32 = 125;
/// The program was found but could not be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// The program was not found.
pub const EXIT_NOT_FOUND: i32 = 127;
