//! Trees kept whole (`--tree`): the manifest with each tree's subtree as
//! the host has it now, and the directories whose whole a jail may lack.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::core::error::Failure;
use crate::core::manifest::pathenc::{within, MPath};
use crate::core::manifest::{Entry, Kind, Manifest, Op};
use crate::core::resolve::tree;

/// `m` with the entries of its trees and of `extra` (materialize's
/// `--tree`): every object beneath a tree, as the host has it now, with
/// no accesses, so that a jail gets every file's bytes; the plan's rules
/// (no setuid bit unless `--keep-setuid`, symlinks as symlinks) apply as
/// to any entry, and device nodes, sockets and FIFOs are left out. The
/// lines say what each tree added.
pub fn expand<'m>(
    m: &'m Manifest,
    extra: &[MPath],
) -> Result<(Cow<'m, Manifest>, Vec<String>), Failure> {
    let roots: Vec<&MPath> = m.trees.iter().map(|t| &t.path).chain(extra).collect();
    if roots.is_empty() {
        return Ok((Cow::Borrowed(m), Vec::new()));
    }
    let opts = crate::core::resolve::Options {
        hash: false,
        setuid_effective: nix::unistd::geteuid().is_root(),
    };
    let mut out = m.clone();
    let mut lines = Vec::new();
    for root in roots {
        if let Some(reason) = crate::core::manifest::tree_path_refusal(root) {
            return Err(Failure::new(format!("--tree {root}: {reason}")));
        }
        let w = tree::walk(root.as_bytes()).map_err(|e| Failure::new(format!("tree {e}")))?;
        let index: HashMap<Vec<u8>, usize> = out
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_bytes().to_vec(), i))
            .collect();
        let beneath = |p: &[u8]| within(p, &w.root);
        // Outside the tree (its ancestors) the manifest's entries stay.
        let known: HashSet<&[u8]> = out
            .entries
            .iter()
            .map(|e| e.path.as_bytes())
            .filter(|p| !beneath(p))
            .collect();
        let fresh = tree::entries(root.as_bytes(), &w, &known, &opts);
        let mut added = Vec::new();
        for e in fresh {
            match index.get(e.path.as_bytes()) {
                Some(&i) => out.entries[i] = e,
                None => added.push(e),
            }
        }
        out.entries.extend(added);
        let left_out = match w.left_out {
            0 => String::new(),
            n => format!("; {n} device nodes, sockets and FIFOs left out"),
        };
        lines.push(format!(
            "tree {root}: {} objects copied whole{left_out}",
            w.len()
        ));
    }
    out.normalize();
    Ok((Cow::Owned(out), lines))
}

/// A `--tree` directory as named on the command line: its real path,
/// checked to be a directory that may be kept whole.
pub fn root(t: &std::path::Path) -> Result<MPath, Failure> {
    let fail = |why: String| Failure::new(format!("--tree {}: {why}", t.display()));
    let real = std::fs::canonicalize(t).map_err(|e| fail(e.to_string()))?;
    if !real.is_dir() {
        return Err(fail("not a directory".into()));
    }
    let p = MPath::new(real.into_os_string().into_encoded_bytes()).map_err(fail)?;
    match crate::core::manifest::tree_path_refusal(&p) {
        Some(reason) => Err(fail(reason)),
        None => Ok(p),
    }
}

/// Directories a jail may hold only part of: the program wrote into them
/// or listed them, they are not system directories, and the host has more
/// in them than the manifest lists. A service's data directory (a mail
/// spool the recorded session did not read through) is one; `--tree`
/// copies it whole. At most `max`, shallowest first.
pub fn partial_dirs(m: &Manifest, max: usize) -> Vec<String> {
    const SYSTEM: [&[u8]; 12] = [
        b"/usr", b"/lib", b"/lib32", b"/lib64", b"/bin", b"/sbin", b"/etc", b"/proc", b"/sys",
        b"/dev", b"/run", b"/tmp",
    ];
    let in_tree = |p: &[u8]| m.trees.iter().any(|t| within(p, t.path.as_bytes()));
    let mut listed: HashMap<&[u8], usize> = HashMap::new();
    let mut wanted: HashSet<&[u8]> = HashSet::new();
    for e in &m.entries {
        let p = e.path.as_bytes();
        let parent = match p.iter().rposition(|&b| b == b'/') {
            Some(0) if p.len() > 1 => Some(&p[..1]),
            Some(cut) if cut > 0 => Some(&p[..cut]),
            _ => None,
        };
        if let Some(parent) = parent {
            if e.kind != Kind::Missing {
                *listed.entry(parent).or_default() += 1;
            }
            if e.output {
                wanted.insert(parent);
            }
        }
        let read_dir = e.kind == Kind::Dir
            && e.accesses
                .iter()
                .any(|a| a.op == Op::Read && a.result.is_ok());
        if read_dir {
            wanted.insert(p);
        }
    }
    let mut dirs: Vec<&[u8]> = wanted
        .into_iter()
        .filter(|d| *d != b"/" && !SYSTEM.iter().any(|s| within(d, s)) && !in_tree(d))
        .collect();
    dirs.sort_by_key(|d| (d.iter().filter(|&&b| b == b'/').count(), d.to_vec()));
    let mut out = Vec::new();
    for d in dirs {
        let Ok(list) =
            std::fs::read_dir(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(d))
        else {
            continue;
        };
        let on_host = list.count();
        let known = listed.get(d).copied().unwrap_or(0);
        if on_host > known {
            let shown = String::from_utf8_lossy(d);
            out.push(format!(
                "{shown} holds {on_host} entries on the host and the manifest lists {known}: \
                 if the program needs them all (a service's data), record or materialize with \
                 --tree {shown}"
            ));
            if out.len() == max {
                break;
            }
        }
    }
    out
}

/// Entries beneath `root` in `m` that the program changed: a tree holding
/// one is bound read-write into a sandbox.
pub fn written_beneath(m: &Manifest, root: &MPath) -> bool {
    m.entries
        .iter()
        .any(|e: &Entry| e.output && e.path.starts_with(root))
}
