//! `--fix` and `--host-reference`: what to add to the manifest, from the
//! findings or from a reference run on the host, and materializing it.

use super::view::{readable_by, JailView};
use super::{complete, internal, resolve_options, Findings, VerifyOptions};
use crate::core::launch::Plan;
use crate::core::manifest::{Entry, Kind, Manifest, Op};
use crate::core::record::RecordError;
use crate::core::trace::{Launch, Placement, RawLog, TraceOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Host entries for everything found: the paths themselves (as if the
/// accesses had succeeded), the symlinks and directories leading to them,
/// and the interpreters of executables that were missing.
pub(super) fn entries_for(f: &Findings) -> Vec<Entry> {
    let mut log = RawLog::default();
    for m in &f.missing {
        log.add(&m.path, m.follow, m.op, 0);
    }
    for d in &f.devices {
        log.add(d, true, Op::Read, 0);
    }
    for m in &f.mounts {
        // A mount point entry of the right class makes run and materialize
        // provide the mount.
        log.add(format!("/{m}").as_bytes(), true, Op::Stat, 0);
    }
    crate::core::resolve::build(log, &resolve_options()).0
}

/// Records the command on the host as `record` would, but as the jail's
/// user, from `/`, with the environment the jail gets: the reference for
/// what the command uses when it works. It runs outside the jail, so it
/// only happens with `--host-reference`.
pub(super) fn record_on_host(args: &VerifyOptions, plan: &Plan) -> anyhow::Result<Vec<Entry>> {
    let program = crate::core::launch::find_program(Path::new(&args.command[0]))?;
    let program = std::ffi::CString::new(program.as_os_str().as_bytes())
        .map_err(|_| internal("the program path contains a NUL byte"))?;
    let id = &plan.identity;
    let launch = Launch::HostAs {
        program,
        argv: plan.argv().to_vec(),
        env: plan.env().to_vec(),
        uid: id.uid.as_raw(),
        gid: id.gid.as_raw(),
        groups: id.groups.iter().map(|g| g.as_raw()).collect(),
    };
    let opts = TraceOptions {
        placement: Placement::Same,
        timeout: args.timeout,
        grace: Duration::from_secs(5),
        progress: std::io::stderr().is_terminal(),
        root: None,
        fresh: None,
    };
    let what = "the reference run on the host";
    let traced = match crate::core::record::trace(args.engine, launch, &opts, &resolve_options()) {
        Ok(t) => t,
        Err(RecordError::Trace(e)) => return Err(internal(e.to_string())),
        Err(RecordError::NotStarted(e)) => {
            return Err(internal(format!("{what} failed: {}", e.message(plan))))
        }
    };
    complete(traced.rec.lost, traced.warnings(), what)?;
    Ok(traced.entries)
}

/// Drops what `--fix` must not copy into the jail: files the jail's user
/// cannot read on the host (shadow files, private keys, /root), and device
/// nodes outside the safe set (left for a human: `materialize --allow-device`).
pub(super) fn safe_additions(w: &mut dyn Write, entries: Vec<Entry>, plan: &Plan) -> Vec<Entry> {
    let id = &plan.identity;
    let groups: Vec<u32> = id.groups.iter().map(|g| g.as_raw()).collect();
    entries
        .into_iter()
        .filter(|e| {
            let ok = match e.kind {
                Kind::File => {
                    readable_by(e.path.as_path(), id.uid.as_raw(), id.gid.as_raw(), &groups)
                }
                Kind::Chardev | Kind::Blockdev => matches!(
                    crate::core::jail::devices::verdict(e, &[]),
                    Ok(crate::core::jail::devices::Verdict::Create { .. })
                ),
                _ => true,
            };
            if !ok {
                let _ = writeln!(
                    w,
                    "not added: {} ({})",
                    e.path,
                    if e.kind == Kind::File {
                        "the jail's user cannot read it on the host"
                    } else {
                        "not a safe device: materialize --allow-device it if you must"
                    }
                );
            }
            ok
        })
        .collect()
}

/// Adds `entries` to the manifest with `merge`'s rules (the manifest wins
/// a conflict); returns how many paths are new or went from missing to
/// present. With `failed`, an entry the manifest holds as an output the
/// recorded run created becomes an input: the command fails without it.
pub(super) fn merge_entries(
    w: &mut dyn Write,
    manifest: &mut Manifest,
    entries: Vec<Entry>,
    failed: bool,
) -> usize {
    let known: BTreeMap<_, Kind> = manifest
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.kind))
        .collect();
    let added = entries
        .iter()
        .filter(|e| {
            e.kind != Kind::Missing && known.get(&e.path).is_none_or(|k| *k == Kind::Missing)
        })
        .count();
    let wanted: BTreeSet<_> = entries
        .iter()
        .filter(|e| e.kind != Kind::Missing)
        .map(|e| e.path.clone())
        .collect();
    for e in &mut manifest.entries {
        if failed && e.created && wanted.contains(&e.path) {
            let _ = writeln!(
                w,
                "restoring: {} (the recorded run made it, but the command fails without it)",
                e.path
            );
            e.created = false;
        }
    }
    let found = Manifest {
        schema: manifest.schema,
        generator: manifest.generator.clone(),
        command: manifest.command.clone(),
        warnings: Vec::new(),
        trees: Vec::new(),
        entries,
    };
    let inputs = [
        ("manifest".to_string(), manifest.clone()),
        ("found".to_string(), found),
    ];
    let merged = crate::core::merge::merge(&inputs, Some(crate::core::merge::Prefer::Older));
    *manifest = merged.manifest;
    added
}

/// Runs the command on the host for reference and names what it used that
/// the jail lacks; returns what it used.
pub(super) fn host_reference(
    w: &mut dyn Write,
    args: &VerifyOptions,
    plan: &Plan,
    jail: &Path,
) -> anyhow::Result<Vec<Entry>> {
    let _ = writeln!(
        w,
        "no failed lookup explains it: running the command on the host for reference"
    );
    let view = JailView::open(jail)?;
    let entries = record_on_host(args, plan)?;
    // A directory that only holds failed lookups (a PATH search through
    // /usr/local/sbin) is left out of every jail on purpose: the lookups
    // fail the same way without it. It is neither missing nor added.
    let probes_only = {
        let all: Vec<&Entry> = entries.iter().collect();
        crate::core::jail::plan::probe_only_dirs(&all)
    };
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| !probes_only.contains(&e.path))
        .collect();
    for e in entries
        .iter()
        .filter(|e| e.kind != Kind::Missing && e.class == crate::core::manifest::Class::Regular)
    {
        if !view.exists(e.path.as_bytes(), false) {
            let _ = writeln!(w, "missing: {} (used on the host)", e.path);
        }
    }
    Ok(entries)
}

/// Before the first run of `--fix`: a file the program found that the jail
/// has lost (deleted, or emptied by an earlier run that opened it with
/// O_CREAT) is restored from the host, since the run would otherwise make
/// an empty one, succeed, and the content would be gone for good.
pub(super) fn restore_lost_content(
    w: &mut dyn Write,
    args: &VerifyOptions,
    jail: &Path,
) -> anyhow::Result<()> {
    let Some(mpath) = &args.jail.manifest else {
        return Ok(());
    };
    let manifest = Manifest::load(mpath).map_err(|e| internal(e.to_string()))?;
    // Only what materialize puts in the jail: a file it leaves out on
    // purpose (made by the run, never read) is not lost.
    let opts = crate::core::jail::plan::Options::default();
    let Ok(plan) = crate::core::jail::plan::build(&manifest, "manifest", &opts, "JAIL") else {
        // materialize will say what is wrong with the manifest.
        return Ok(());
    };
    let copied: std::collections::HashSet<&[u8]> = plan
        .items
        .iter()
        .filter(|i| matches!(i.want, crate::core::jail::plan::Want::File { .. }))
        .map(|i| i.path.as_bytes())
        .collect();
    let view = JailView::open(jail)?;
    let mut lost: BTreeSet<&[u8]> = BTreeSet::new();
    for e in manifest
        .entries
        .iter()
        .filter(|e| copied.contains(e.path.as_bytes()))
    {
        if let Some(why) = view.lost_content(e) {
            let rule = e
                .inferred
                .as_deref()
                .map_or_else(String::new, |r| format!("; inferred by rule {r}"));
            let _ = writeln!(w, "restoring before the run: {} ({why}{rule})", e.path);
            lost.insert(e.path.as_bytes());
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    // Only those files (and their directories' entries, for their modes):
    // whatever else the jail lacks is for the run to show.
    let wanted: BTreeSet<Vec<u8>> = manifest
        .entries
        .iter()
        .filter(|e| lost.contains(e.path.as_bytes()))
        .flat_map(|e| e.path.ancestors().into_iter().chain([e.path.clone()]))
        .map(|p| p.as_bytes().to_vec())
        .collect();
    let part = Manifest {
        schema: manifest.schema,
        generator: manifest.generator.clone(),
        command: manifest.command.clone(),
        warnings: Vec::new(),
        trees: Vec::new(),
        entries: manifest
            .entries
            .iter()
            .filter(|e| wanted.contains(e.path.as_bytes()))
            .cloned()
            .collect(),
    };
    let name = args
        .jail
        .manifest
        .as_deref()
        .map_or_else(String::new, |p| p.display().to_string());
    materialize(
        w,
        &part,
        &name,
        jail,
        "the files named above are not restored",
    )?;
    Ok(())
}

/// Materializes `manifest` into `jail`, its summary into the report, and
/// says how many objects it created or changed. An entry it could not
/// create fails verify: `then` says what that leaves.
pub(super) fn materialize(
    w: &mut dyn Write,
    manifest: &Manifest,
    name: &str,
    jail: &Path,
    then: &str,
) -> anyhow::Result<u64> {
    let built = crate::core::jail::build(
        manifest,
        name,
        &crate::core::jail::Request {
            jail: jail.to_path_buf(),
            ..Default::default()
        },
    )?;
    built.render(w)?;
    if let Some((p, why)) = built.failures().first() {
        return Err(internal(format!(
            "materialize into {} failed ({} entries could not be created; {p}: {why}); {then}",
            jail.display(),
            built.failures().len()
        )));
    }
    Ok(built.changes())
}
