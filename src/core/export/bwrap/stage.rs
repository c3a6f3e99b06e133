//! Private directories for a service that starts as root (`--ephemeral`
//! without a user namespace). bwrap's own `--tmpfs` and `--file` make
//! everything root's, so a service that drops to its user could not write
//! its log or its state there. The script makes them on the host instead,
//! before bwrap starts, in a directory only root can enter, with the
//! owners and modes the host's have, binds each private directory into the
//! sandbox, and removes them all when the sandbox ends.

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
/// it are made in it; private copies were already made steps by the
/// builder. Binds beneath it stay bwrap's (bwrap makes their mount points in
/// the staged directory). Returns the descriptors that no longer carry
/// anything.
pub fn apply(ops: &mut BTreeMap<MPath, BwrapOp>, roots: &[MPath]) -> Vec<u8> {
    let mut freed = Vec::new();
    for r in roots {
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
            BwrapOp::File { fd, perms, .. } => {
                freed.push(*fd);
                Step::File {
                    path: p.clone(),
                    mode: *perms,
                }
            }
            _ => continue,
        };
        *op = BwrapOp::Staged(step);
    }
    freed
}
