//! `jailtrace export`: the recording as a bubblewrap sandbox or an OCI
//! image ([`crate::core::export`]).

use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::commands::Outcome;
use crate::core::error::Failure;
use crate::core::export::{bwrap, oci, Common};
use crate::core::manifest::pathenc::{encode, MPath};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// What to write: a bubblewrap argument list (or script), or an OCI
    /// image archive.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Write here (atomically) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The manifest to export.
    pub manifest: PathBuf,
    /// bwrap: a POSIX sh script that execs bwrap with the recorded command
    /// (or with the script's own arguments), instead of the NUL-separated
    /// list `bwrap --args FD` reads.
    #[arg(long)]
    pub script: bool,
    /// bwrap: the directories the program writes are private (tmpfs)
    /// instead of the host's own.
    #[arg(long)]
    pub ephemeral: bool,
    /// bwrap: keep the host's network (otherwise the sandbox has none).
    #[arg(long)]
    pub share_net: bool,
    /// bwrap: bind the socket PATH although it controls the host (a
    /// container runtime's, a bus). May be given several times.
    #[arg(long, value_name = "PATH")]
    pub allow_bind: Vec<PathBuf>,
    /// bwrap: bind PATH (and what lies beneath it) read-write when the
    /// program writes there, although the sandbox's user does not own it.
    /// May be given several times.
    #[arg(long, value_name = "PATH")]
    pub writable: Vec<PathBuf>,
    /// Who the program runs as (name or uid, optionally :GROUP): bwrap's
    /// --uid/--gid (the script starts bwrap as that user), the image's User
    /// (numeric).
    #[arg(long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// An environment variable of the image (oci) or the sandbox (bwrap),
    /// NAME=VALUE or NAME (its value here). May be given several times;
    /// nothing else is passed (bwrap: but PATH, HOME, USER and LOGNAME, as
    /// `run` sets them).
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// oci: the image's reference name in the archive (oci-archive:FILE:TAG).
    #[arg(long, default_value = "latest", value_name = "TAG")]
    pub tag: String,
    /// Include this device although it is outside the safe set.
    #[arg(long, value_name = "PATH")]
    pub allow_device: Vec<PathBuf>,
    /// Keep the password hashes of /etc/shadow and /etc/gshadow.
    #[arg(long)]
    pub keep_password_hashes: bool,
    /// Keep only these accounts (and those the program needs) in the
    /// account databases.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// oci: keep this file's setuid/setgid bits (as on the host); every
    /// other file loses them. Repeat for several.
    #[arg(long = "keep-setuid", value_name = "PATH")]
    pub keep_setuid: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Bwrap,
    Oci,
}

fn mpaths(list: &[PathBuf], flag: &str) -> anyhow::Result<Vec<MPath>> {
    list.iter()
        .map(|a| {
            MPath::new(a.as_os_str().as_bytes().to_vec())
                .map_err(|e| Failure::new(format!("{flag} {}: {e}", a.display())).into())
        })
        .collect()
}

/// Options that only one format takes are a usage error with the other.
fn check_format_options(a: &ExportArgs) -> anyhow::Result<()> {
    let only = |set: bool, flag: &str, format: &str| -> anyhow::Result<()> {
        if set {
            return Err(Failure::new(format!("{flag} is an option of --format {format}")).into());
        }
        Ok(())
    };
    match a.format {
        Format::Oci => {
            only(a.script, "--script", "bwrap")?;
            only(a.ephemeral, "--ephemeral", "bwrap")?;
            only(a.share_net, "--share-net", "bwrap")?;
            only(!a.allow_bind.is_empty(), "--allow-bind", "bwrap")?;
            only(!a.writable.is_empty(), "--writable", "bwrap")
        }
        Format::Bwrap => only(a.tag != "latest", "--tag", "oci"),
    }
}

/// `--env NAME` takes the value from here; `NAME=VALUE` is kept.
fn env_entries(list: &[String]) -> anyhow::Result<Vec<String>> {
    list.iter()
        .map(|e| {
            if e.contains('=') {
                if e.starts_with('=') {
                    return Err(Failure::new(format!("--env {e}: no variable name")).into());
                }
                return Ok(e.clone());
            }
            match std::env::var(e) {
                Ok(v) => Ok(format!("{e}={v}")),
                Err(_) => {
                    Err(Failure::new(format!("--env {e}: not set here (give NAME=VALUE)")).into())
                }
            }
        })
        .collect()
}

pub fn run(a: &ExportArgs) -> anyhow::Result<Outcome> {
    check_format_options(a)?;
    let manifest = crate::commands::common::load(&a.manifest)?;
    let name = encode(a.manifest.as_os_str().as_bytes());
    let common = Common {
        allow_devices: mpaths(&a.allow_device, "--allow-device")?,
        keep_password_hashes: a.keep_password_hashes,
        accounts: a.accounts.clone(),
        keep_setuid: mpaths(&a.keep_setuid, "--keep-setuid")?,
    };
    let user = match &a.user {
        Some(spec) => {
            let (u, g) = match spec.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (spec.as_str(), None),
            };
            let id = crate::core::launch::resolve_identity(Some(u), g).map_err(|e| match e {
                crate::core::launch::PlanError::NoGroup(_) => Failure::new(format!(
                    "--user {spec}: no entry in the host's passwd database, so no primary \
                     group: give --user {spec}:GID"
                )),
                e => Failure::new(format!("--user {spec}: {e}")),
            })?;
            Some(bwrap::User {
                uid: id.uid.as_raw(),
                gid: id.gid.as_raw(),
                name: id.name,
                groups: id.groups.iter().map(|g| g.as_raw()).collect(),
            })
        }
        None => None,
    };
    match a.format {
        Format::Bwrap => {
            let opts = bwrap::Options {
                common,
                ephemeral: a.ephemeral,
                share_net: a.share_net,
                user,
                allow_binds: mpaths(&a.allow_bind, "--allow-bind")?,
                writable: mpaths(&a.writable, "--writable")?,
                env: env_entries(&a.env)?,
            };
            let sandbox = bwrap::build(&manifest, &name, &opts)?;
            let bytes = if a.script {
                bwrap::render_script(&sandbox, &name)?
            } else {
                bwrap::render_args(&sandbox)?
            };
            warn(&sandbox.warnings);
            emit(a.output.as_ref(), a.script, |w| {
                w.write_all(&bytes).map_err(anyhow::Error::from)
            })?;
        }
        Format::Oci => {
            if a.output.is_none() && std::io::stdout().is_terminal() {
                return Err(Failure::new(
                    "standard output is a terminal; write the image archive with -o FILE",
                )
                .into());
            }
            let opts = oci::Options {
                common,
                user: user.map(|u| format!("{}:{}", u.uid, u.gid)),
                env: env_entries(&a.env)?,
                tag: a.tag.clone(),
            };
            let warnings = emit(a.output.as_ref(), false, |w| {
                oci::write(&manifest, &name, &opts, w)
            })?;
            warn(&warnings);
        }
    }
    Ok(Outcome::Done)
}

fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("jailtrace: warning: {w}");
    }
}

/// Writes through `fill` to `output` (atomically: nothing is left behind
/// on failure) or to standard output.
fn emit<T>(
    output: Option<&PathBuf>,
    executable: bool,
    fill: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let Some(path) = output else {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let value = fill(&mut out)?;
        return match out.flush() {
            Ok(()) => Ok(value),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(value),
            Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
        };
    };
    let mut result = None;
    let saved = crate::core::manifest::save_atomic(path, |f| match fill(f) {
        Ok(v) => {
            result = Some(Ok(v));
            Ok(())
        }
        Err(e) => {
            let io = std::io::Error::other(format!("{e:#}"));
            result = Some(Err(e));
            Err(io)
        }
    });
    if let Some(Err(e)) = result {
        return Err(e);
    }
    saved.map_err(|e| Failure::new(e.to_string()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        let md = std::fs::metadata(path)?;
        if md.is_file() {
            // Executable by whoever may read it, as a umask-made script is.
            let mode = md.permissions().mode();
            std::fs::set_permissions(
                path,
                std::fs::Permissions::from_mode(mode | ((mode & 0o444) >> 2)),
            )
            .map_err(|e| {
                Failure::new(format!(
                    "{}: cannot make it executable: {e}",
                    path.display()
                ))
            })?;
        }
    }
    Ok(result.and_then(Result::ok).expect("fill ran and succeeded"))
}
