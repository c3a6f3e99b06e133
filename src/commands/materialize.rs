//! `jailtrace materialize`: build or update a jail from a manifest
//! ([`crate::core::jail`]).

use std::path::PathBuf;

use crate::commands::common::load;
use crate::commands::Outcome;
use crate::core::error::Cause;
use crate::core::jail::{build, Request};

#[derive(Debug, clap::Args)]
pub struct MaterializeArgs {
    /// Print what would be created or changed, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Create this device node although it is not in the safe set (null,
    /// zero, full, random, urandom, tty). Repeat for several.
    #[arg(long = "allow-device", value_name = "PATH")]
    pub allow_device: Vec<PathBuf>,
    /// Also create what the recorded program wrote or created (its output
    /// files are otherwise left out; their directories are always made).
    #[arg(long)]
    pub with_outputs: bool,
    /// Copy the password hashes of /etc/shadow and /etc/gshadow into the
    /// jail (by default each hash becomes `!`: key logins still work).
    #[arg(long)]
    pub keep_password_hashes: bool,
    /// Keep only these accounts in the jail's passwd, group, shadow and
    /// gshadow, plus root, the owners of the jail's files and the ids the
    /// program switched to (comma-separated user or group names).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// Keep this file's setuid/setgid bits (as on the host); every other
    /// copy loses them. Repeat for several.
    #[arg(long = "keep-setuid", value_name = "PATH")]
    pub keep_setuid: Vec<PathBuf>,
    /// Copy this directory whole, as the host has it now, besides the
    /// manifest's own trees (`record --tree`): a service's data the
    /// recorded session did not read through. Device nodes, sockets and
    /// FIFOs in it are left out; setuid bits go unless --keep-setuid.
    /// Repeat for several.
    #[arg(long = "tree", value_name = "DIR")]
    pub trees: Vec<PathBuf>,
    /// The manifest written by `jailtrace record`.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The jail directory; created if it does not exist.
    #[arg(value_name = "JAIL")]
    pub jail: PathBuf,
}

impl MaterializeArgs {
    pub fn request(&self) -> Request {
        Request {
            jail: self.jail.clone(),
            dry_run: self.dry_run,
            allow_device: self.allow_device.clone(),
            with_outputs: self.with_outputs,
            keep_password_hashes: self.keep_password_hashes,
            accounts: self.accounts.clone(),
            keep_setuid: self.keep_setuid.clone(),
            trees: self.trees.clone(),
        }
    }
}

pub fn run(args: &MaterializeArgs) -> anyhow::Result<Outcome> {
    let manifest = load(&args.manifest)?;
    let built = build(
        &manifest,
        &args.manifest.display().to_string(),
        &args.request(),
    )?;
    built.render(&mut std::io::stdout().lock())?;
    let failures = built.failures();
    for (p, msg) in failures {
        eprintln!("jailtrace: {p}: {msg}");
    }
    if failures.is_empty() {
        return Ok(Outcome::Done);
    }
    eprintln!(
        "jailtrace: {} entries could not be created in {}",
        failures.len(),
        built.jail()
    );
    Ok(Outcome::Failed(Cause::Failed))
}
