//! Command-line interface: parse, dispatch, and turn errors into one line
//! and an exit status.

pub mod check;
pub mod diff;
pub mod docs;
pub mod export;
pub mod materialize;
pub mod merge;
pub mod packages;
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
    /// List the Debian packages a manifest's files come from.
    Packages(crate::commands::packages::PackagesArgs),
    /// Run a command inside a jail the secure way.
    Run(crate::commands::run::RunArgs),
    /// Run a command in its jail under the tracer and list what is missing.
    Verify(crate::commands::verify::VerifyArgs),
    /// Write the recording as a bubblewrap sandbox or an OCI image archive.
    Export(crate::commands::export::ExportArgs),
    /// Audit a jail for escape vectors.
    Check(crate::commands::check::CheckArgs),
    /// Write a shell completion script (bash, zsh, fish, ...) to stdout.
    Completions(crate::commands::docs::CompletionsArgs),
    /// Write the manual page (roff) to stdout.
    Man(crate::commands::docs::ManArgs),
}

/// The exit policy: the status of a failure of `subcommand` that no
/// convention fixes, usage errors included. The commands that run a program
/// use 125 for their own failures, as `env` and `chroot` do (126 and 127 are
/// the program's); `diff` and `check` keep 0 and 1 for their answers and
/// use 2, as do `completions` and `man`; `materialize`, `merge`, `export` and `packages` use 1.
pub fn error_code(subcommand: &str) -> i32 {
    match subcommand {
        "record" | "run" | "verify" => crate::core::error::EXIT_INTERNAL,
        "materialize" | "merge" | "packages" | "export" => 1,
        _ => 2,
    }
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Record(_) => "record",
            Command::Materialize(_) => "materialize",
            Command::Diff(_) => "diff",
            Command::Merge(_) => "merge",
            Command::Packages(_) => "packages",
            Command::Run(_) => "run",
            Command::Verify(_) => "verify",
            Command::Check(_) => "check",
            Command::Export(_) => "export",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }
}

/// Parses the process arguments, runs the command and says how jailtrace
/// ends (see [`Exit`]). Every status is decided here.
pub fn main() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Exit::Code(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                // A usage error follows its subcommand's convention.
                _ => error_code(
                    std::env::args_os()
                        .nth(1)
                        .as_deref()
                        .and_then(std::ffi::OsStr::to_str)
                        .unwrap_or_default(),
                ),
            });
        }
    };
    let code = error_code(cli.command.name());
    let code_only = |r: anyhow::Result<i32>| r.map(Exit::Code);
    let result = match &cli.command {
        Command::Record(a) => crate::commands::record::run(a),
        Command::Materialize(a) => code_only(crate::commands::materialize::run(a)),
        Command::Diff(a) => code_only(crate::commands::diff::run(a)),
        Command::Merge(a) => code_only(crate::commands::merge::run(a)),
        Command::Packages(a) => code_only(crate::commands::packages::run(a)),
        Command::Run(a) => crate::commands::run::run(a),
        Command::Verify(a) => code_only(crate::commands::verify::run(a)),
        Command::Check(a) => code_only(crate::commands::check::run(a)),
        Command::Export(a) => code_only(crate::commands::export::run(a)),
        Command::Completions(a) => code_only(crate::commands::docs::completions(a)),
        Command::Man(a) => code_only(crate::commands::docs::man(a)),
    };
    match result {
        Ok(exit) => exit,
        Err(err) => {
            if let Some(f) = err.downcast_ref::<Failure>() {
                eprintln!("jailtrace: {}", f.message);
                return Exit::Code(f.code.unwrap_or(code));
            }
            eprintln!("jailtrace: {err:#}");
            Exit::Code(code)
        }
    }
}
