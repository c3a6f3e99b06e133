//! The `merge` command: one manifest from several recordings (startup, a
//! workload, shutdown), as their union.
//!
//! The result depends only on the set of inputs, never on their order, as
//! long as they agree: `merge a b` and `merge b a` write identical bytes.
//! Where they disagree about a path (a file in one, a symlink in the other)
//! that is a conflict; `--prefer` settles it by argument order, the last
//! argument being the newest recording. The rules are documented in
//! `docs/ci.md`; keep the two in step.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value};

use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Class, CommandInfo, Entry, Kind, Manifest};

/// Which input settles a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    Newer,
    Older,
}

/// Two or more inputs disagree about one attribute of one path.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub path: MPath,
    pub field: &'static str,
    /// Each distinct value with the names of the inputs that have it, in
    /// argument order.
    pub values: Vec<(Value, Vec<String>)>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflict at {}: {}", self.path, self.field)?;
        for (i, (v, names)) in self.values.iter().enumerate() {
            let v = match v {
                Value::Null => "none".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let sep = if i == 0 { " " } else { " vs " };
            write!(f, "{sep}{v} in {}", names.join(", "))?;
        }
        Ok(())
    }
}

/// The outcome of a merge.
#[derive(Debug)]
pub struct Merged {
    pub manifest: Manifest,
    /// Conflicts found; settled when a preference was given.
    pub conflicts: Vec<Conflict>,
    /// Entries left out because settling a kind conflict made an ancestor
    /// (the second path), a directory in some input, a non-directory.
    pub dropped: Vec<(MPath, MPath)>,
}

/// The attributes that must agree, in the order of [`attributes`].
const FIELDS: [&str; 10] = [
    "kind", "class", "target", "mode", "uid", "gid", "major", "minor", "size", "sha256",
];

/// The values of [`FIELDS`], as JSON for comparison and messages.
fn attributes(e: &Entry) -> [Value; 10] {
    [
        json!(e.kind),
        json!(e.class),
        json!(e.target),
        json!(e.mode.map(|m| m.to_string())),
        json!(e.uid),
        json!(e.gid),
        json!(e.major),
        json!(e.minor),
        json!(e.size),
        json!(e.sha256),
    ]
}

fn same_attributes(a: &Entry, b: &Entry) -> bool {
    (a.kind, a.class, &a.target, a.mode, a.uid, a.gid)
        == (b.kind, b.class, &b.target, b.mode, b.uid, b.gid)
        && (a.major, a.minor, a.size, &a.sha256) == (b.major, b.minor, b.size, &b.sha256)
}

/// The entry of versions that agree: each attribute from whoever has it.
fn agreed(deciding: &[(usize, &Entry)], proc_link: bool) -> Entry {
    let mut m = deciding[0].1.clone();
    for (_, e) in &deciding[1..] {
        m.mode = m.mode.or(e.mode);
        m.uid = m.uid.or(e.uid);
        m.gid = m.gid.or(e.gid);
        m.size = m.size.or(e.size);
        m.target = m.target.take().or_else(|| e.target.clone());
        m.major = m.major.or(e.major);
        m.minor = m.minor.or(e.minor);
        m.sha256 = m.sha256.take().or_else(|| e.sha256.clone());
        // Package names describe the host, not the program: whoever has one.
        m.package = m.package.take().or_else(|| e.package.clone());
    }
    if proc_link && deciding.iter().any(|(_, e)| e.target != m.target) {
        m.target = None;
    }
    m
}

/// The attributes on which the versions of `path` disagree.
fn conflicts_of(
    path: &MPath,
    deciding: &[(usize, &Entry)],
    inputs: &[(String, Manifest)],
    proc_link: bool,
) -> Vec<Conflict> {
    let mut found = Vec::new();
    // One version, or all alike (the common case): nothing to compare.
    if deciding.windows(2).all(|w| same_attributes(w[0].1, w[1].1)) {
        return found;
    }
    let attrs: Vec<_> = deciding.iter().map(|(_, e)| attributes(e)).collect();
    for (k, field) in FIELDS.iter().enumerate() {
        if proc_link && *field == "target" {
            continue;
        }
        // Distinct non-null values in argument order; an attribute one
        // recording lacks (no --hash, say) does not conflict.
        let mut values: Vec<(Value, Vec<String>)> = Vec::new();
        for ((i, _), a) in deciding.iter().zip(&attrs) {
            let v = a[k].clone();
            if v.is_null() {
                continue;
            }
            match values.iter_mut().find(|(x, _)| *x == v) {
                Some((_, names)) => names.push(inputs[*i].0.clone()),
                None => values.push((v, vec![inputs[*i].0.clone()])),
            }
        }
        if values.len() > 1 {
            found.push(Conflict {
                path: path.clone(),
                field,
                values,
            });
        }
    }
    found
}

/// Merges named manifests given oldest first. Without a preference the
/// result does not depend on the order of `inputs`.
pub fn merge(inputs: &[(String, Manifest)], prefer: Option<Prefer>) -> Merged {
    // Every version of each path, in argument order.
    let mut by_path: BTreeMap<&MPath, Vec<(usize, &Entry)>> = BTreeMap::new();
    for (i, (_, m)) in inputs.iter().enumerate() {
        for e in &m.entries {
            by_path.entry(&e.path).or_default().push((i, e));
        }
    }

    let mut conflicts = Vec::new();
    // Each merged entry, and whether settling a conflict made it a
    // non-directory where some input had a directory.
    let mut entries: Vec<(Entry, bool)> = Vec::with_capacity(by_path.len());
    for (path, versions) in by_path {
        // A path that was missing in one recording and present in another
        // existed at some point the program needed it: the present versions
        // decide, the probes' accesses are kept.
        let present: Vec<(usize, &Entry)> = versions
            .iter()
            .copied()
            .filter(|(_, e)| e.kind != Kind::Missing)
            .collect();
        let deciding = if present.is_empty() {
            &versions
        } else {
            &present
        };

        // A /proc link such as /proc/self points at a pid that differs in
        // every recording: not a conflict, and no single target is right.
        let proc_link = deciding
            .iter()
            .all(|(_, e)| e.class == Class::Proc && e.kind == Kind::Symlink);
        let found = conflicts_of(path, deciding, inputs, proc_link);

        let mut merged = if found.is_empty() {
            agreed(deciding, proc_link)
        } else {
            // The preferred version as a whole: its attributes belong
            // together (a symlink's target, a device's numbers).
            let chosen = match prefer {
                Some(Prefer::Older) => deciding[0].1,
                // Without a preference the run fails and this is unused.
                Some(Prefer::Newer) | None => deciding[deciding.len() - 1].1,
            };
            chosen.clone()
        };
        let blocks = merged.kind != Kind::Dir
            && found.iter().any(|c| c.field == "kind")
            && deciding.iter().any(|(_, e)| e.kind == Kind::Dir);
        conflicts.extend(found);

        merged.output = versions.iter().any(|(_, e)| e.output);
        // An object that any recording found on the host is an input of
        // the merge, even where another recording made it itself.
        merged.created = versions.iter().any(|(_, e)| e.created)
            && !versions
                .iter()
                .any(|(_, e)| !e.created && e.kind != Kind::Missing);
        merged.accesses = versions
            .iter()
            .flat_map(|(_, e)| e.accesses.iter().cloned())
            .collect();
        merged.accesses.sort();
        merged.accesses.dedup();
        // Reached by any recording: the run's own. Inferred by all: the
        // first rule in the rules' order (docs/manifest.md).
        merged.inferred = if versions.iter().all(|(_, e)| e.inferred.is_some()) {
            versions
                .iter()
                .filter_map(|(_, e)| e.inferred.as_deref())
                .min_by_key(|r| {
                    crate::core::infer::Rule::from_name(r).map_or(usize::MAX, |r| r as usize)
                })
                .map(str::to_string)
        } else {
            None
        };
        entries.push((merged, blocks));
    }

    // Settling a conflict can make a directory in one recording a symlink
    // or file in the merge; what that recording saw beneath it cannot stay
    // (a manifest never has a symlink or file as a parent).
    let mut dropped = Vec::new();
    let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut blocker: Option<MPath> = None;
    for (e, blocks) in entries {
        if let Some(b) = &blocker {
            if e.path.starts_with(b) {
                dropped.push((e.path, b.clone()));
                continue;
            }
            blocker = None;
        }
        if blocks {
            blocker = Some(e.path.clone());
        }
        kept.push(e);
    }

    let mut warnings: Vec<String> = inputs
        .iter()
        .flat_map(|(_, m)| m.warnings.iter().cloned())
        .collect();
    let mut command = header(inputs, &mut warnings);
    // Every account any recording switched to is needed.
    command.set_uids = inputs
        .iter()
        .flat_map(|(_, m)| m.command.set_uids.iter().copied())
        .collect();
    command.set_gids = inputs
        .iter()
        .flat_map(|(_, m)| m.command.set_gids.iter().copied())
        .collect();
    // A privileged port if any recording asked for one; otherwise
    // unknown if one did not say.
    let asked: Vec<Option<bool>> = inputs
        .iter()
        .map(|(_, m)| m.command.binds_privileged_port)
        .collect();
    command.binds_privileged_port = if asked.contains(&Some(true)) {
        Some(true)
    } else if asked.contains(&None) {
        None
    } else {
        Some(false)
    };
    let mut manifest = Manifest {
        schema: crate::core::manifest::SCHEMA_VERSION,
        generator: concat!("jailtrace ", env!("CARGO_PKG_VERSION")).to_string(),
        command,
        warnings,
        trees: inputs.iter().flat_map(|(_, m)| m.trees.clone()).collect(),
        entries: kept,
    };
    manifest.normalize();
    Merged {
        manifest,
        conflicts,
        dropped,
    }
}

/// The merged command header: the command of one input, chosen by the
/// smallest (argv, cwd, uid, gid, exit status) so that argument order does
/// not matter. When the inputs ran different commands a warning says so.
fn header(inputs: &[(String, Manifest)], warnings: &mut Vec<String>) -> CommandInfo {
    let key = |c: &CommandInfo| {
        (
            c.argv.clone(),
            c.cwd.as_bytes().to_vec(),
            c.uid,
            c.gid,
            c.exit_status,
        )
    };
    let mut commands: Vec<&CommandInfo> = inputs.iter().map(|(_, m)| &m.command).collect();
    commands.sort_by_key(|c| key(c));
    commands.dedup_by_key(|c| key(c));
    if commands.len() > 1 {
        warnings.push(format!(
            "merged from recordings of {} different commands; the header shows one of them",
            commands.len()
        ));
    }
    commands[0].clone()
}
