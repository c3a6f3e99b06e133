//! The `verify` command: run a command inside its jail, exactly as `run`
//! would, but under the tracer, and list what it looked for and did not
//! find although the host has it. With `--fix`, add that to the manifest,
//! materialize it, and repeat until nothing is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::core::error::Failure;
use crate::core::launch::{JailOptions, Plan, Step};
use crate::core::manifest::{Manifest, Op};
use crate::core::trace::{self, Launch, Placement, TraceOptions};

mod findings;
mod fix;
mod view;

use findings::{
    analyse, contentless_reads, drop_own_outputs, listed_dirs, missing_interpreters,
    print_findings, print_status, stripped_hashes,
};
use fix::{
    entries_for, host_reference, materialize, merge_entries, restore_lost_content, safe_additions,
};
use view::JailView;

/// What `verify` does; see `jailtrace verify --help`.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Add what is missing to the manifest given with --manifest, materialize
    /// it into JAIL, and run again, until nothing more is missing.
    pub fix: bool,
    /// Give up after this many --fix rounds.
    pub max_rounds: u32,
    /// When the command fails in the jail and no failed lookup explains it,
    /// run it once on the host (as the jail's user, from /, with the same
    /// environment) and compare what it used with what the jail has.
    /// `--fix` does this by itself.
    pub host_reference: bool,
    /// Send SIGTERM to the command after this long (for daemons), then
    /// SIGKILL after 5 seconds.
    pub timeout: Option<Duration>,
    /// The tracing engine of every run.
    pub engine: trace::Engine,
    pub jail: JailOptions,
    /// The command to run in the jail.
    pub command: Vec<OsString>,
}

/// A path the command failed on inside the jail that exists on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Missing {
    pub path: Vec<u8>,
    pub follow: bool,
    pub op: Op,
    pub errno: String,
}

/// What one traced run in the jail found.
#[derive(Debug, Default)]
pub struct Findings {
    pub missing: BTreeSet<Missing>,
    /// Mounts the command needed and did not have (`proc`, `sys`).
    pub mounts: BTreeSet<&'static str>,
    /// Device nodes it needed.
    pub devices: BTreeSet<Vec<u8>>,
    /// Directories the command listed in the jail that hold fewer entries
    /// than on the host: (directory, names only the host has). Programs
    /// that search a listing (Python's import system) never look up a name
    /// the listing lacks, so no failed call shows these.
    pub incomplete_dirs: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
    /// (interpreter, executable): an exec failed with ENOENT although the
    /// executable is in the jail, because its ELF or `#!` interpreter is not.
    pub interpreters: BTreeSet<(Vec<u8>, Vec<u8>)>,
    /// Paths the jailed run read or executed, as it named them (with
    /// whether the last symlink was followed): those the jail holds
    /// without their bytes (see `plan::carries_content`) are missing
    /// their content.
    pub read: BTreeSet<(Vec<u8>, bool)>,
    /// Of those, what the manifest gives no bytes (set with a manifest).
    pub contentless: BTreeSet<Vec<u8>>,
    /// Shadow files the program read on the host (set with a manifest)
    /// whose password hashes the jail lacks, with how many: logins fail.
    pub stripped: BTreeMap<Vec<u8>, usize>,
    pub exit_status: Option<i32>,
}

impl Findings {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.mounts.is_empty()
            && self.devices.is_empty()
            && self.contentless.is_empty()
            && self.stripped.is_empty()
    }
}

fn internal(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

/// Runs the command once in the jail under the tracer.
pub fn trace_in_jail(args: &VerifyOptions) -> anyhow::Result<(Findings, Plan)> {
    let plan = Plan::new(&args.jail, &args.command).map_err(|e| internal(e.to_string()))?;
    let opts = TraceOptions {
        placement: Placement::Same,
        timeout: args.timeout,
        grace: Duration::from_secs(5),
        progress: std::io::stderr().is_terminal(),
        root: Some(plan.jail.as_os_str().as_bytes().to_vec()),
        fresh: None,
    };
    let rec = args
        .engine
        .backend()
        .record(Launch::Jail(&plan), &opts)
        .map_err(|e| internal(e.to_string()))?;
    complete(rec.lost, &rec.warnings, "the run in the jail")?;
    if let Some(e) = rec.start_failure {
        // A failed exec is a finding (the program or its interpreter is
        // missing), anything before it is an error.
        if e.step != Step::Exec {
            return Err(Failure::because(e.cause(), e.message(&plan)).into());
        }
    }
    let view = JailView::open(&plan.jail)?;
    let mounted: Vec<&'static str> = plan
        .mounts
        .iter()
        .filter_map(|m| match m.kind {
            crate::core::launch::MountKind::Proc => Some("proc"),
            crate::core::launch::MountKind::Sys => Some("sys"),
            crate::core::launch::MountKind::DevLog => None,
        })
        .collect();
    let mut f = analyse(&rec.log, &view, &mounted);
    f.interpreters = missing_interpreters(&f, &view);
    f.incomplete_dirs = listed_dirs(&rec.log, &view);
    f.exit_status = rec.exit_status;
    Ok((f, plan))
}

/// A recording that lost events (bpf) cannot tell what is missing: an
/// error, as `record` exits 124 without `--allow-incomplete`.
fn complete<'a>(
    lost: u64,
    warnings: impl IntoIterator<Item = &'a String>,
    what: &str,
) -> anyhow::Result<()> {
    if lost == 0 {
        return Ok(());
    }
    let why = warnings
        .into_iter()
        .find(|w| w.starts_with("incomplete recording"))
        .map_or("events were lost", String::as_str);
    Err(Failure::because(
        crate::core::error::Cause::Incomplete,
        format!("{what} was recorded incompletely ({why}); its findings would be wrong"),
    )
    .into())
}

fn resolve_options() -> crate::core::resolve::Options {
    crate::core::resolve::Options {
        hash: false,
        setuid_effective: nix::unistd::geteuid().is_root(),
    }
}

/// What verify found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The command ran in the jail as on the host and looked for nothing
    /// the jail lacks.
    Complete,
    /// It lacks something, or failed; the report says what, and (with
    /// `--fix`) why the jail could not be completed.
    Incomplete,
    /// `--fix` used every round and the jail still lacks something.
    RoundsExhausted(u32),
}

/// Runs `verify`, writing its report to `w`.
pub fn run(args: &VerifyOptions, w: &mut dyn Write) -> anyhow::Result<Verdict> {
    if args.fix && args.jail.manifest.is_none() {
        return Err(internal(
            "--fix needs --manifest M: the manifest to complete",
        ));
    }
    let jail = args.jail.jail.clone();
    if args.fix {
        restore_lost_content(w, args, &jail)?;
    }
    for round in 1..=args.max_rounds.max(1) {
        if args.fix {
            let _ = writeln!(w, "verify round {round}:");
        }
        let (mut f, plan) = trace_in_jail(args)?;
        let mut manifest = match &args.jail.manifest {
            Some(p) => Some(Manifest::load(p).map_err(|e| internal(e.to_string()))?),
            None => None,
        };
        if let Some(m) = &manifest {
            f.contentless = contentless_reads(&f.read, m);
            f.stripped = stripped_hashes(m, &jail)?;
        }
        // The status the command had on the host, when the manifest says;
        // success otherwise.
        let on_host = manifest.as_ref().and_then(|m| m.command.exit_status);
        let expected = on_host.unwrap_or(0);
        let failed = f.exit_status != Some(expected);
        if let (Some(m), false) = (&manifest, failed) {
            drop_own_outputs(&mut f, m);
        }
        print_findings(w, &f, &jail, failed, manifest.as_ref())?;
        if failed {
            print_status(w, &f, on_host);
        }
        if f.is_empty() && !failed {
            return Ok(Verdict::Complete);
        }
        // Failed, and no failed lookup says why: the program searched a
        // listing (Python's import system does) or gave up silently. The
        // reference is what the command uses on the host, if allowed to run
        // there.
        let host = if f.is_empty() {
            if !args.host_reference && !args.fix {
                let _ = writeln!(
                    w,
                    "no failed lookup explains it: --host-reference runs the command once on the \
                     host, as the jail's user, to list what it uses there and the jail lacks"
                );
                return Ok(Verdict::Incomplete);
            }
            Some(host_reference(w, args, &plan, &jail)?)
        } else {
            None
        };
        let (Some(manifest), true) = (manifest.as_mut(), args.fix) else {
            return Ok(Verdict::Incomplete);
        };
        let mpath = args.jail.manifest.clone().expect("checked above");
        let found = match host {
            None => entries_for(&f),
            Some(entries) => entries,
        };
        let found = safe_additions(w, found, &plan);
        let view = JailView::open(&jail)?;
        let restorable = found.iter().filter(|e| view.lacks(e)).count();
        let mut added = merge_entries(w, manifest, found, failed);
        // The jailed run read what the recording only looked up: the
        // manifest says so now, and materialize copies its bytes.
        for e in manifest
            .entries
            .iter_mut()
            .filter(|e| f.contentless.contains(e.path.as_bytes()))
        {
            e.accesses.push(crate::core::manifest::Access {
                op: Op::Read,
                result: crate::core::manifest::Outcome::ok(),
            });
            e.accesses.sort();
            e.accesses.dedup();
            added += 1;
        }
        if added == 0 && restorable == 0 {
            let _ = writeln!(
                w,
                "nothing left to add: neither the manifest nor the host has what the command \
                 lacks in the jail, so the jail cannot be completed from the host"
            );
            return Ok(Verdict::Incomplete);
        }
        manifest.save(&mpath).map_err(|e| internal(e.to_string()))?;
        if added > 0 {
            let _ = writeln!(w, "added {added} entries to {}", mpath.display());
        }
        // Materialized every round, not only after additions: the jail may
        // lack what the manifest holds (removed by hand, built from an
        // older manifest, or half-written by the failed run itself).
        let _ = writeln!(
            w,
            "materializing {} into {}",
            mpath.display(),
            jail.display()
        );
        let changes = materialize(
            w,
            manifest,
            &mpath.display().to_string(),
            &jail,
            "the jail is still incomplete",
        )?;
        if changes == 0 {
            let _ = writeln!(
                w,
                "materialize changed nothing: the jail cannot be completed from the host"
            );
            return Ok(Verdict::Incomplete);
        }
    }
    Ok(Verdict::RoundsExhausted(args.max_rounds))
}
