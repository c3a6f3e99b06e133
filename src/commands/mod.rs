//! Command-line interface: parse, dispatch, and turn errors into one line
//! and an exit status.

pub mod check;
pub mod diff;
pub mod materialize;
pub mod merge;
pub mod record;
pub mod run;
pub mod verify;

use clap::{Parser, Subcommand};

use crate::core::error::{Exit, Failure};

#[derive(Debug, Parser)]
#[command(
    name = "jailtrace",
    version,
    about = "Record what a program touches under ptrace, and build a minimal, safe chroot jail from it",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command under ptrace and write a manifest of every path it used.
    Record(crate::commands::record::RecordArgs),
    /// Build a chroot tree from a manifest.
    Materialize(crate::commands::materialize::MaterializeArgs),
    /// Compare two manifests (exit 0 equal, 1 different, 2 error).
    Diff(crate::commands::diff::DiffArgs),
    /// Merge several manifests into one.
    Merge(crate::commands::merge::MergeArgs),
    /// Run a command inside a jail the secure way.
    Run(crate::commands::run::RunArgs),
    /// Run a command in its jail under the tracer and list what is missing.
    Verify(crate::commands::verify::VerifyArgs),
    /// Audit a jail for escape vectors.
    Check(crate::commands::check::CheckArgs),
}

impl Command {
    /// The exit status for an error that carries none of its own.
    fn error_code(&self) -> i32 {
        match self {
            Command::Record(_) | Command::Run(_) | Command::Verify(_) => {
                crate::core::error::EXIT_INTERNAL
            }
            Command::Diff(_) => 2,
            Command::Check(_) => 2,
            Command::Materialize(_) | Command::Merge(_) => 1,
        }
    }
}

/// Parses the process arguments, runs the command and says how jailtrace
/// ends (see [`Exit`]).
pub fn main() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Exit::Code(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 2,
            });
        }
    };
    let code = cli.command.error_code();
    let code_only = |r: anyhow::Result<i32>| r.map(Exit::Code);
    let result = match &cli.command {
        Command::Record(a) => crate::commands::record::run(a),
        Command::Materialize(a) => code_only(crate::commands::materialize::run(a)),
        Command::Diff(a) => code_only(crate::commands::diff::run(a)),
        Command::Merge(a) => code_only(crate::commands::merge::run(a)),
        Command::Run(a) => crate::commands::run::run(a),
        Command::Verify(a) => code_only(crate::commands::verify::run(a)),
        Command::Check(a) => code_only(crate::commands::check::run(a)),
    };
    match result {
        Ok(exit) => exit,
        Err(err) => {
            if let Some(f) = err.downcast_ref::<Failure>() {
                eprintln!("jailtrace: {}", f.message);
                return Exit::Code(f.code);
            }
            eprintln!("jailtrace: {err:#}");
            Exit::Code(code)
        }
    }
}
