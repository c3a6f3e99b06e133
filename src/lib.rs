//! jailtrace as a library: each module has one job.
//!
//! - [`cli`]: argument parsing and dispatch.
//! - [`record`]: the `record` command, tying tracing and resolution together.
//! - [`trace`]: the ptrace engine (spawn, event loop, syscall decoding).
//! - [`resolve`]: host path resolution, symlink chains, ELF and `#!`
//!   interpreters, classification into manifest entries.
//! - [`manifest`] and [`pathenc`]: the manifest schema and its path encoding.
//! - [`accounts`]: what of the account databases a jail gets.
//! - [`location`]: whether others can write above a jail.
//! - [`beneath`]: the one way a path inside a jail is opened.
//! - [`devices`]: the device nodes a jail may hold.
//! - [`materialize`], [`diff`], [`merge`], [`run`], [`verify`], [`check`]: the
//!   other commands.

pub mod accounts;
pub mod beneath;
pub mod check;
pub mod cli;
pub mod devices;
pub mod diff;
pub mod error;
pub mod location;
pub mod manifest;
pub mod materialize;
pub mod merge;
pub mod pathenc;
pub mod record;
pub mod resolve;
pub mod run;
pub mod trace;
pub mod verify;
