//! `jailtrace run`: enter a jail the secure way and run a command there
//! ([`crate::core::launch`]).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::commands::Outcome;
use crate::core::launch::{run_in_jail, JailOptions, MountSpec};

/// How to enter a jail: the options `run` and `verify` share.
#[derive(Debug, Clone, clap::Args)]
pub struct JailArgs {
    /// The jail directory.
    #[arg(value_name = "JAIL")]
    pub jail: PathBuf,
    /// Run as this user (name or uid, looked up on the host).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Run with this primary group (name or gid, looked up on the host);
    /// default: the user's.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Mount inside the jail, in a private mount namespace: proc, sys, or
    /// dev-log[=PATH] (bind the host's syslog socket onto JAIL/dev/log).
    #[arg(long = "mount", value_name = "proc|sys|dev-log[=PATH]", value_parser = crate::core::launch::parse_mount)]
    pub mounts: Vec<MountSpec>,
    /// Mount what this manifest shows the program needs (proc, sys, /dev/log).
    #[arg(long, value_name = "M")]
    pub manifest: Option<PathBuf>,
    /// Keep jailtrace's environment instead of a minimal safe one.
    #[arg(long)]
    pub keep_env: bool,
    /// Allow running the command as root inside the jail (root can break
    /// out of a chroot).
    #[arg(long)]
    pub allow_root: bool,
}

impl JailArgs {
    pub fn options(&self) -> JailOptions {
        JailOptions {
            jail: self.jail.clone(),
            user: self.user.clone(),
            group: self.group.clone(),
            mounts: self.mounts.clone(),
            manifest: self.manifest.clone(),
            keep_env: self.keep_env,
            allow_root: self.allow_root,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub jail: JailArgs,
    /// The command to run, searched in the jail's PATH.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

pub fn run(args: &RunArgs) -> anyhow::Result<Outcome> {
    run_in_jail(&args.jail.options(), &args.command).map(Outcome::Program)
}
