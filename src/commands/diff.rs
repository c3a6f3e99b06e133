//! `jailtrace diff`: compare two manifests ([`crate::core::diff`]) and
//! print the report as text or JSON.

use std::io::Write;
use std::path::PathBuf;

use regex::RegexSet;

use crate::commands::common::{load, regex_reason, use_color, ColorWhen, Format};
use crate::commands::Outcome;
use crate::core::diff::{compare, Options};
use crate::core::error::Failure;
use crate::core::manifest::pathenc::encode;

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The baseline manifest (for example the one committed to the repository).
    pub old: PathBuf,
    /// The manifest to compare with it (for example a fresh recording).
    pub new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Leave out paths whose encoded form matches REGEX (unanchored; use
    /// `^...$` for a whole path). May be given several times.
    #[arg(long, value_name = "REGEX")]
    pub ignore: Vec<String>,
    /// Leave out failed accesses unless the same operation on the same path
    /// succeeded in one of the two manifests (probes that failed in both).
    #[arg(long)]
    pub ignore_failed: bool,
    /// Also compare files the program created under /tmp, /var/tmp and
    /// /dev/shm; by default they are left out (mkstemp names differ per run).
    #[arg(long)]
    pub keep_temp: bool,
    /// Also report and count changes in file content (size, sha256).
    #[arg(long)]
    pub content: bool,
    /// Leave out the entries that `record`'s rules inferred (`--infer`):
    /// compare only what the runs themselves reached.
    #[arg(long)]
    pub ignore_inferred: bool,
    /// When to colour the text output: auto (a terminal, and NO_COLOR unset).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
}

pub fn run(args: &DiffArgs) -> anyhow::Result<Outcome> {
    let ignore = if args.ignore.is_empty() {
        None
    } else {
        // Check each pattern alone so the error names the bad one.
        for re in &args.ignore {
            if let Err(e) = regex::Regex::new(re) {
                return Err(Failure::new(format!("--ignore {re:?}: {}", regex_reason(&e))).into());
            }
        }
        let set = RegexSet::new(&args.ignore)
            .map_err(|e| Failure::new(format!("--ignore: {}", regex_reason(&e))))?;
        Some(set)
    };
    let opts = Options {
        ignore,
        ignore_failed: args.ignore_failed,
        keep_temp: args.keep_temp,
        content: args.content,
        ignore_inferred: args.ignore_inferred,
    };
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    let report = compare(&old, &new, &opts);
    let status = if report.is_equivalent() {
        Outcome::Done
    } else {
        Outcome::No
    };

    let (old_name, new_name) = (
        encode(args.old.as_os_str().as_encoded_bytes()),
        encode(args.new.as_os_str().as_encoded_bytes()),
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report.to_json(&old_name, &new_name))
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(out))
        }
        Format::Text => report.write_text(&mut out, use_color(args.color)),
    }
    .and_then(|_| out.flush());
    match written {
        Ok(()) => Ok(status),
        // A reader that stopped early (`| head`) already has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(status),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write the diff to stdout")),
    }
}
