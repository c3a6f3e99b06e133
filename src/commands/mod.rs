//! Command-line interface: parse, dispatch, and turn errors into one line
//! and an exit status.

pub mod check;
pub mod common;
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

use crate::core::error::{Cause, Exit, Failure};

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

/// What a command came to. Commands return it; [`Kind::exit`] alone
/// turns it into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The job is done; for the commands that answer a question, the
    /// answer is yes: the manifests are equivalent (`diff`), the jail has
    /// no high finding (`check`), the command lacks nothing (`verify`).
    Done,
    /// The answer is no: a difference, a high finding, something missing.
    No,
    /// The program `record` traced or `run` ran ended so: jailtrace ends
    /// the same way.
    Program(Exit),
    /// The command failed, for this reason; the message is already out.
    Failed(Cause),
}

/// The subcommands, without their arguments: what the exit policy is
/// decided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Record,
    Materialize,
    Diff,
    Merge,
    Packages,
    Run,
    Verify,
    Export,
    Check,
    Completions,
    Man,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Record,
        Kind::Materialize,
        Kind::Diff,
        Kind::Merge,
        Kind::Packages,
        Kind::Run,
        Kind::Verify,
        Kind::Export,
        Kind::Check,
        Kind::Completions,
        Kind::Man,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Record => "record",
            Kind::Materialize => "materialize",
            Kind::Diff => "diff",
            Kind::Merge => "merge",
            Kind::Packages => "packages",
            Kind::Run => "run",
            Kind::Verify => "verify",
            Kind::Export => "export",
            Kind::Check => "check",
            Kind::Completions => "completions",
            Kind::Man => "man",
        }
    }

    /// The subcommand named `name` on the command line.
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The exit policy. The commands that run a program use 125 for their
    /// own failures, as `env` and `chroot` do, and 126 and 127 when the
    /// program cannot be executed or is not found; `record` uses 124 for
    /// a recording that lost accesses. `diff`, `check` and `verify` answer
    /// with 0 and 1; `diff` and `check` fail with 2, as do `completions`
    /// and `man`; `materialize`, `merge`, `export` and `packages` fail
    /// with 1.
    pub fn exit(self, outcome: &Outcome) -> Exit {
        use crate::core::error::{
            EXIT_CANNOT_EXEC, EXIT_INCOMPLETE, EXIT_INTERNAL, EXIT_NOT_FOUND,
        };
        let failed = match self {
            Kind::Record | Kind::Run | Kind::Verify => EXIT_INTERNAL,
            Kind::Materialize | Kind::Merge | Kind::Packages | Kind::Export => 1,
            Kind::Diff | Kind::Check | Kind::Completions | Kind::Man => 2,
        };
        Exit::Code(match *outcome {
            Outcome::Done => 0,
            Outcome::No => 1,
            Outcome::Program(exit) => return exit,
            Outcome::Failed(Cause::Failed) => failed,
            Outcome::Failed(Cause::NotFound) => EXIT_NOT_FOUND,
            Outcome::Failed(Cause::CannotExec) => EXIT_CANNOT_EXEC,
            Outcome::Failed(Cause::Incomplete) => EXIT_INCOMPLETE,
        })
    }
}

impl Command {
    pub fn kind(&self) -> Kind {
        match self {
            Command::Record(_) => Kind::Record,
            Command::Materialize(_) => Kind::Materialize,
            Command::Diff(_) => Kind::Diff,
            Command::Merge(_) => Kind::Merge,
            Command::Packages(_) => Kind::Packages,
            Command::Run(_) => Kind::Run,
            Command::Verify(_) => Kind::Verify,
            Command::Check(_) => Kind::Check,
            Command::Export(_) => Kind::Export,
            Command::Completions(_) => Kind::Completions,
            Command::Man(_) => Kind::Man,
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
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) {
                return Exit::Code(0);
            }
            // A usage error follows its subcommand's policy; one that names
            // no subcommand is clap's own, 2.
            let named = std::env::args_os()
                .nth(1)
                .as_deref()
                .and_then(std::ffi::OsStr::to_str)
                .and_then(Kind::named);
            return named.map_or(Exit::Code(2), |k| k.exit(&Outcome::Failed(Cause::Failed)));
        }
    };
    let kind = cli.command.kind();
    let result = match &cli.command {
        Command::Record(a) => crate::commands::record::run(a),
        Command::Materialize(a) => crate::commands::materialize::run(a),
        Command::Diff(a) => crate::commands::diff::run(a),
        Command::Merge(a) => crate::commands::merge::run(a),
        Command::Packages(a) => crate::commands::packages::run(a),
        Command::Run(a) => crate::commands::run::run(a),
        Command::Verify(a) => crate::commands::verify::run(a),
        Command::Check(a) => crate::commands::check::run(a),
        Command::Export(a) => crate::commands::export::run(a),
        Command::Completions(a) => crate::commands::docs::completions(a),
        Command::Man(a) => crate::commands::docs::man(a),
    };
    let outcome = result.unwrap_or_else(|err| {
        let cause = match err.downcast_ref::<Failure>() {
            Some(f) => {
                eprintln!("jailtrace: {}", f.message);
                f.cause
            }
            None => {
                eprintln!("jailtrace: {err:#}");
                Cause::Failed
            }
        };
        Outcome::Failed(cause)
    });
    kind.exit(&outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_a_kind() {
        use clap::CommandFactory;
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        assert_eq!(names.len(), Kind::ALL.len());
        for n in names {
            assert_eq!(Kind::named(&n).map(Kind::name), Some(n.as_str()));
        }
    }
}
