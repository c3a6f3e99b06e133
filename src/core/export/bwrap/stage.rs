//! Directories for a service that starts as root, which runs without a
//! user namespace: bwrap's own `--dir`, `--tmpfs` and `--file` make
//! everything root's, so a service that drops to its user could not write
//! its private log or state (`--ephemeral`), and would chown back a
//! directory of its own that it finds root's (nginx). The script makes
//! them on the host instead, before bwrap starts, in a directory only root
//! can enter, with the owners and modes the host's have (no setuid or
//! setgid bit, as for every directory of the sandbox), binds them into the
//! sandbox (a private one read-write, an empty one that only keeps its
//! owner read-only), and removes them all when the script ends. A copy of
//! a host file is read as that file's owner, so that a path swapped by
//! whoever writes there yields nothing that owner could not read.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use super::ops::{BwrapOp, Step};
use crate::core::export;
use crate::core::manifest::pathenc::MPath;

/// The private directories of a sandbox that are staged: every `--tmpfs`
/// one but the temporary directories themselves (`/tmp`, whose sticky,
/// world-writable tmpfs every user can write).
pub fn roots(tmpfs: &std::collections::BTreeSet<MPath>) -> Vec<MPath> {
    tmpfs
        .iter()
        .filter(|d| {
            !export::TEMP_DIRS
                .iter()
                .any(|t| d.as_bytes() == t.as_bytes())
        })
        .cloned()
        .collect()
}

/// Whether `p` lies beneath (not at) one of `roots`.
pub fn beneath(roots: &[MPath], p: &MPath) -> bool {
    roots.iter().any(|r| p != r && p.starts_with(r))
}

/// The owner and mode of host path `p`, or `fallback` when the host has
/// nothing there (a directory the program made).
fn owner(p: &MPath, fallback: (u32, u32, u32)) -> (u32, u32, u32) {
    std::fs::symlink_metadata(p.as_path())
        .map_or(fallback, |md| (md.uid(), md.gid(), md.mode() & 0o7777))
}

/// Turns the operations at and beneath each staged root into staging steps:
/// the root is made on the host and bound; directories and symlinks beneath
/// it are made in it; private copies were made steps by the builder. Binds
/// beneath it stay bwrap's (bwrap makes their mount points in the staged
/// directory).
pub fn apply(ops: &mut BTreeMap<MPath, BwrapOp>, roots: &[MPath]) {
    for r in roots {
        if matches!(ops.get(r), Some(BwrapOp::BindStaged { .. })) {
            // Staged by the builder with its owner already.
            continue;
        }
        let mode = match ops.get(r) {
            Some(BwrapOp::Tmpfs {
                perms: Some(mode), ..
            }) => *mode,
            _ => 0o755,
        };
        let (uid, gid, mode) = owner(r, (0, 0, mode));
        ops.insert(
            r.clone(),
            BwrapOp::BindStaged {
                dest: r.clone(),
                uid,
                gid,
                mode,
                ro: false,
            },
        );
    }
    for (p, op) in ops.iter_mut() {
        if !beneath(roots, p) {
            continue;
        }
        let step = match op {
            BwrapOp::Dir { perms, .. } => {
                let (uid, gid, mode) = owner(p, (0, 0, *perms));
                Step::Dir {
                    path: p.clone(),
                    uid,
                    gid,
                    mode,
                }
            }
            BwrapOp::Symlink { target, .. } => Step::Symlink {
                path: p.clone(),
                target: target.clone(),
            },
            _ => continue,
        };
        *op = BwrapOp::Staged(step);
    }
}

/// The owner of host file `p` now, for its staged copy (root when it is
/// gone: the script then refuses it, finding no file).
pub fn file_owner(p: &MPath) -> (u32, u32) {
    std::fs::symlink_metadata(p.as_path()).map_or((0, 0), |md| (md.uid(), md.gid()))
}

/// A directory of a root service that another user owns on the host: made
/// empty with that owner and mode, and bound read-only, so that the
/// service finds it its own without seeing what else the host keeps there.
pub fn owned_dir(p: &MPath, meta: (u32, u32, u32)) -> BwrapOp {
    staged(p, meta, true)
}

/// A private directory of a root service beneath a temporary one: made
/// with the owner and mode the plan gives it (the host's, or the
/// recording's when the host's is gone, as after a reboot emptied /tmp;
/// a staged root: what goes into it is made in it), and bound read-write.
pub fn private_dir(p: &MPath, (uid, gid, mode): (u32, u32, u32)) -> BwrapOp {
    BwrapOp::BindStaged {
        dest: p.clone(),
        uid,
        gid,
        mode,
        ro: false,
    }
}

fn staged(p: &MPath, meta: (u32, u32, u32), ro: bool) -> BwrapOp {
    let (uid, gid, mode) = owner(p, meta);
    BwrapOp::BindStaged {
        dest: p.clone(),
        uid,
        gid,
        mode,
        ro,
    }
}
