//! The `materialize` command: build a chroot tree from a manifest.
//!
//! - [`plan`] turns the manifest into the list of objects the jail needs
//!   (and what is skipped, and why), reading nothing but the manifest and
//!   host metadata. A manifest that contradicts itself fails here, before
//!   anything is written.
//! - [`apply`] compares that list with the jail and changes only what
//!   differs, through [`jail`], which never follows a symlink or crosses a
//!   mount inside the jail.
//!
//! `docs/materialize.md` describes the behaviour for users; keep it in step.

pub mod accounts;
pub(crate) mod apply;
pub mod beneath;
pub mod devices;
mod fs;
pub mod host;
pub mod location;
pub mod plan;
mod sys;
pub mod trees;

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::core::error::Failure;
use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::Manifest;

/// Opens (and if needed creates) the jail directory. `Ok(None)`: a dry run
/// into a jail that does not exist yet.
fn open_jail(path: &Path, dry_run: bool) -> anyhow::Result<Option<fs::Jail>> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        return Err(Failure::new("JAIL must not be empty").into());
    }
    let refuse_root = || {
        Failure::new(format!(
            "{shown}: refusing to materialize into / (JAIL is the host's root directory)"
        ))
    };
    if path.exists() {
        if path.canonicalize().is_ok_and(|c| c == Path::new("/")) {
            return Err(refuse_root().into());
        }
    } else if dry_run {
        return Ok(None);
    } else {
        std::fs::create_dir_all(path)
            .with_context(|| format!("{shown}: cannot create the jail directory"))?;
    }
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Failure::new(format!(
            "{shown}: cannot open the jail directory: {}",
            e.desc()
        ))
    })?;
    // Checked again on the open directory: a path can reach / in ways
    // canonicalize does not see (a bind mount of /).
    if crate::core::jail::location::is_host_root(std::os::fd::AsFd::as_fd(&fd))? {
        return Err(refuse_root().into());
    }
    Ok(Some(fs::Jail::new(fd, path.to_path_buf())))
}

fn progress_bar(files: u64, bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:30}} {{bytes}}/{{total_bytes}} {{msg}} of {files}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// Where and how to materialize: the command line's options without clap,
/// for callers other than the command (`verify --fix`).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub jail: PathBuf,
    pub dry_run: bool,
    pub allow_device: Vec<PathBuf>,
    pub with_outputs: bool,
    pub keep_password_hashes: bool,
    pub accounts: Option<Vec<String>>,
    pub keep_setuid: Vec<PathBuf>,
    /// `--tree`: directories copied whole, besides the manifest's trees.
    pub trees: Vec<PathBuf>,
}

/// What a materialize did: what [`Built::render`] shows, and the entries
/// it could not create.
pub struct Built {
    dry_run: bool,
    /// The jail as the user named it, without a trailing slash.
    jail: String,
    report: apply::Report,
    warnings: Vec<String>,
    mounts: std::collections::BTreeMap<MPath, &'static str>,
    notes: Notes,
}

impl Built {
    /// The entries that could not be created, and why.
    pub fn failures(&self) -> &[(MPath, String)] {
        &self.report.failures
    }

    /// How many objects were created or changed (`verify --fix` stops
    /// when a round changes nothing).
    pub fn changes(&self) -> u64 {
        self.report.stats.changes()
    }

    /// The jail as the user named it.
    pub fn jail(&self) -> &str {
        &self.jail
    }

    /// The summary: what was (or would be) made, skipped, and needed.
    pub fn render(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        print_summary(w, self)
    }
}

/// Materializes `manifest` (`name` says where it came from, in errors).
/// Everything is validated before anything is created, the jail included.
pub fn build(manifest: &Manifest, name: &str, args: &Request) -> anyhow::Result<Built> {
    let extra = args
        .trees
        .iter()
        .map(|t| trees::root(t))
        .collect::<Result<Vec<_>, _>>()?;
    let (manifest, tree_lines) = trees::expand(manifest, &extra)?;
    let manifest = manifest.as_ref();
    let mut allow = Vec::new();
    for a in &args.allow_device {
        let p = MPath::new(a.as_os_str().as_bytes().to_vec())
            .map_err(|e| Failure::new(format!("--allow-device {}: {e}", a.display())))?;
        allow.push(p);
    }
    let mut keep_setuid = Vec::new();
    for a in &args.keep_setuid {
        let p = MPath::new(a.as_os_str().as_bytes().to_vec())
            .map_err(|e| Failure::new(format!("--keep-setuid {}: {e}", a.display())))?;
        keep_setuid.push(p);
    }
    let opts = plan::Options {
        with_outputs: args.with_outputs,
        allow_devices: allow,
        keep_password_hashes: args.keep_password_hashes,
        accounts: args.accounts.clone(),
        keep_setuid,
    };
    let jail_shown = args.jail.display().to_string();
    let jail_hint = jail_shown.trim_end_matches('/');
    let plan = plan::build(manifest, name, &opts, jail_hint)?;

    let jail = open_jail(&args.jail, args.dry_run)?;
    let read_only = match &jail {
        Some(j) => nix::sys::statvfs::fstatvfs(j.root())
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)),
        None => false,
    };
    // On a read-only file system only look: a complete jail is "nothing to
    // do", anything else one clear error instead of an error per entry.
    let dry = args.dry_run || read_only;

    let pb = if dry {
        ProgressBar::hidden()
    } else {
        progress_bar(plan.files, plan.bytes)
    };
    // Modes are set explicitly on every object; with umask 0 mknod and
    // symlink get them exactly. Restored before returning.
    let old_umask = (!dry).then(|| nix::sys::stat::umask(Mode::empty()));
    let mut exec = apply::Executor::new(jail.as_ref(), &args.jail, dry, &pb);
    exec.run(&plan.items);
    pb.finish_and_clear();
    if let Some(m) = old_umask {
        nix::sys::stat::umask(m);
    }
    let mut report = exec.report;
    report.skipped.extend(plan.skipped);
    report.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    let mut warnings = plan.warnings;
    if !nix::unistd::geteuid().is_root() && !dry {
        warnings.push(
            "not running as root: everything is owned by you, setuid/setgid bits are dropped, \
             and device nodes cannot be created"
                .into(),
        );
    }
    warnings.append(&mut report.warnings);
    if let Some(j) = &jail {
        let owner = nix::sys::stat::fstat(j.root()).map_or(0, |s| s.st_uid);
        for a in crate::core::jail::location::writable_ancestors(&args.jail, owner) {
            warnings.push(format!(
                "{}; build jails under directories only root can write (check reports this as high)",
                a.why
            ));
        }
    }

    if read_only && !args.dry_run && report.stats.changes() > 0 {
        return Err(Failure::new(format!(
            "{jail_hint}: read-only file system: {} changes needed, nothing written",
            report.stats.changes()
        ))
        .into());
    }

    let mut notes = Notes::default();
    for e in &manifest.entries {
        if let Some(r) = &e.inferred {
            *notes.inferred.entry(r.as_str().to_string()).or_default() += 1;
        }
    }
    notes.stripped = plan
        .stripped
        .iter()
        .map(|(p, n)| crate::core::jail::accounts::stripped_notice(p, *n))
        .collect();
    notes.trees = tree_lines;
    notes.partial = trees::partial_dirs(manifest, 5);
    Ok(Built {
        dry_run: args.dry_run,
        jail: jail_hint.to_string(),
        report,
        warnings,
        mounts: plan.mounts,
        notes,
    })
}

/// What the summary says about the manifest beyond what was made.
#[derive(Default)]
struct Notes {
    /// Inferred entries per rule.
    inferred: std::collections::BTreeMap<String, usize>,
    /// One line per shadow file whose hashes the program needs and lost.
    stripped: Vec<String>,
    /// What each tree kept whole added.
    trees: Vec<String>,
    /// Directories the jail may hold only part of (`--tree` would copy
    /// them whole).
    partial: Vec<String>,
}

fn print_summary(w: &mut dyn std::io::Write, b: &Built) -> std::io::Result<()> {
    let (inferred, stripped) = (&b.notes.inferred, &b.notes.stripped);
    let (jail, r, warnings, mounts) = (b.jail.as_str(), &b.report, &b.warnings, &b.mounts);
    let s = &r.stats;
    let mut out = String::new();
    if b.dry_run {
        out += &format!("dry run: nothing was written. Plan for {jail}:\n");
        for a in &r.actions {
            out += &format!("  {a}\n");
        }
    }
    if s.changes() == 0 && r.failures.is_empty() {
        out += &format!(
            "nothing to do: {jail} is up to date ({} objects checked)\n",
            s.unchanged
        );
    } else {
        let verb = if b.dry_run { "would create" } else { "created" };
        out += &format!(
            "{verb}: {} files ({}, {} bytes), {} dirs, {} symlinks, {} devices, {} fifos; \
             {} directories updated; {} already up to date\n",
            s.files,
            HumanBytes(s.bytes),
            s.bytes,
            s.dirs,
            s.symlinks,
            s.devices,
            s.fifos,
            s.updated,
            s.unchanged
        );
    }
    // Prominent: the jail is built, and every login in it will fail.
    for line in stripped {
        out += &format!("{line}\n");
    }
    for line in &b.notes.trees {
        out += &format!("{line}\n");
    }
    if !inferred.is_empty() {
        // What the manifest holds beyond the recorded run, by rule.
        let by_rule: Vec<String> = inferred.iter().map(|(r, n)| format!("{r} {n}")).collect();
        out += &format!(
            "inferred entries (record --infer): {}\n",
            by_rule.join(", ")
        );
    }
    if s.no_content > 0 {
        out += &format!(
            "without content: {} files the program only looked up or was refused have their \
             size, mode and owner in the jail, but none of their bytes (verify --fix copies \
             what a jailed run reads)\n",
            s.no_content
        );
    }
    if !r.skipped.is_empty() {
        out += &format!("skipped ({}):\n", r.skipped.len());
        for (p, why) in &r.skipped {
            out += &format!("  {p}: {why}\n");
        }
    }
    if !warnings.is_empty() {
        out += &format!("warnings ({}):\n", warnings.len());
        for w in warnings {
            out += &format!("  {w}\n");
        }
    }
    if !b.notes.partial.is_empty() {
        out += "data the jail may hold only part of:\n";
        for line in &b.notes.partial {
            out += &format!("  {line}\n");
        }
    }
    if !mounts.is_empty() {
        out += "mounts the jail needs (materialize does not mount anything):\n";
        for (m, fs) in mounts {
            out += &format!("  mount -t {fs} {fs} {}\n", fs::show(Path::new(jail), m));
        }
    }
    if !r.failures.is_empty() {
        out += &format!("failed: {} (listed on stderr)\n", r.failures.len());
    }
    w.write_all(out.as_bytes())
}
