//! `jailtrace check`: audit a jail for escape vectors
//! ([`crate::core::audit`]) and print the findings.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::commands::common::Format;
use crate::commands::Outcome;
use crate::core::audit::{audit, who, Report, Severity};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The jail directory.
    #[arg(value_name = "JAIL")]
    pub jail: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The user the jailed program runs as (name or uid, looked up on the
    /// host); files it can modify are checked. Default: any non-root user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The accounts whose password hashes the jail keeps on purpose
    /// (`materialize --keep-password-hashes --accounts`), comma-separated:
    /// a shadow file holding only their hashes is a medium finding, not a
    /// high one.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub accounts: Vec<String>,
}

fn print_text(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    for f in &r.findings {
        writeln!(
            out,
            "{:<6}  {:<14}  {}: {}",
            f.severity, f.check, f.path, f.detail
        )?;
    }
    writeln!(
        out,
        "{}: {} high, {} medium, {} low",
        r.jail,
        r.count(Severity::High),
        r.count(Severity::Medium),
        r.count(Severity::Low)
    )
}

pub fn run(args: &CheckArgs) -> anyhow::Result<Outcome> {
    let who = who(args.user.as_deref())?;
    let report = audit(&args.jail, &who, &args.accounts)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Text => print_text(&report, &mut out)?,
        Format::Json => {
            #[derive(Serialize)]
            struct Counts {
                high: usize,
                medium: usize,
                low: usize,
            }
            #[derive(Serialize)]
            struct Json<'a> {
                #[serde(flatten)]
                report: &'a Report,
                counts: Counts,
            }
            let j = Json {
                report: &report,
                counts: Counts {
                    high: report.count(Severity::High),
                    medium: report.count(Severity::Medium),
                    low: report.count(Severity::Low),
                },
            };
            serde_json::to_writer_pretty(&mut out, &j)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if report.has_high() {
        Outcome::No
    } else {
        Outcome::Done
    })
}
