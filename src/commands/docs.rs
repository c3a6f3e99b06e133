//! `jailtrace completions SHELL` and `jailtrace man`: generated from the
//! command-line definitions themselves, so they can never drift from them.

use std::io::Write;

use clap::CommandFactory;

use crate::commands::Outcome;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "jailtrace", &mut out);
    out.flush()?;
    Ok(Outcome::Done)
}

/// One roff page for jailtrace and every subcommand, as `man` reads it.
pub fn man(_: &ManArgs) -> anyhow::Result<Outcome> {
    let cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    let page = clap_mangen::Man::new(cmd.clone());
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("jailtrace {}", sub.get_name());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        let sub = sub.clone().bin_name(name);
        let page = clap_mangen::Man::new(sub);
        page.render_synopsis_section(&mut out)?;
        page.render_description_section(&mut out)?;
        page.render_options_section(&mut out)?;
    }
    page.render_version_section(&mut out)?;
    out.flush()?;
    Ok(Outcome::Done)
}
