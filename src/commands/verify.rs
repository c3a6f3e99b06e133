//! `jailtrace verify`: run a command in its jail under the tracer, name
//! what is missing, and with `--fix` complete the jail
//! ([`crate::core::verify`]).

use std::ffi::OsString;
use std::time::Duration;

use crate::commands::run::JailArgs;
use crate::commands::Outcome;
use crate::core::verify::{Verdict, VerifyOptions};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Add what is missing to the manifest given with --manifest, materialize
    /// it into JAIL, and run again, until nothing more is missing.
    #[arg(long)]
    pub fix: bool,
    /// Give up after this many --fix rounds.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_rounds: u32,
    /// When the command fails in the jail and no failed lookup explains it,
    /// run it once on the host (as the jail's user, from /, with the same
    /// environment) and compare what it used with what the jail has.
    /// `--fix` does this by itself.
    #[arg(long)]
    pub host_reference: bool,
    /// Send SIGTERM to the command after this long (for daemons), then
    /// SIGKILL after 5 seconds.
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::common::parse_duration)]
    pub timeout: Option<Duration>,
    /// The tracing engine: ptrace, or bpf (root and a kernel with BTF).
    #[arg(long, value_enum, default_value = "ptrace")]
    pub backend: crate::commands::common::BackendArg,
    #[command(flatten)]
    pub jail: JailArgs,
    /// The command to run in the jail.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl VerifyArgs {
    pub fn options(&self) -> VerifyOptions {
        VerifyOptions {
            fix: self.fix,
            max_rounds: self.max_rounds,
            host_reference: self.host_reference,
            timeout: self.timeout,
            engine: self.backend.into(),
            jail: self.jail.options(),
            command: self.command.clone(),
        }
    }
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let verdict = crate::core::verify::run(&args.options(), &mut std::io::stdout().lock())?;
    Ok(match verdict {
        Verdict::Complete => Outcome::Done,
        Verdict::Incomplete => Outcome::No,
        Verdict::RoundsExhausted(n) => {
            eprintln!("jailtrace: still incomplete after {n} rounds");
            Outcome::No
        }
    })
}
