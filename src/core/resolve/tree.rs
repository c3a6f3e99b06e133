//! A directory kept whole (`--tree`): its subtree as the host has it now,
//! walked without following a symlink or leaving its file system, made
//! into entries with no accesses (so a jail gets every file's bytes), and
//! its digest. Device nodes and sockets are left out: a data directory's
//! are runtime objects, and no tree may smuggle a device into a jail.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::entry::{lstat_host, make_entry};
use super::{Options, Resolver};
use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Entry, Kind};

/// Trees larger than this many objects are refused: a mistake (`--tree
/// /usr`) rather than a service's data.
pub const MAX_OBJECTS: usize = 200_000;

/// A tree walked on the host.
pub struct Walked {
    /// The real path of the tree's root (symlinks on the way resolved).
    pub root: Vec<u8>,
    /// Every object beneath it, sorted by path, with its kind.
    pub objects: Vec<(Vec<u8>, Kind)>,
    /// Device nodes, sockets and FIFOs left out.
    pub left_out: usize,
}

/// Walks the tree at `path` (as a program names it).
pub fn walk(path: &[u8]) -> Result<Walked, String> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let root = std::fs::canonicalize(std::ffi::OsStr::from_bytes(path))
        .map_err(|e| format!("{shown}: {e}"))?;
    let md = std::fs::metadata(&root).map_err(|e| format!("{shown}: {e}"))?;
    if !md.is_dir() {
        return Err(format!("{shown}: not a directory"));
    }
    let dev = md.dev();
    let mut out = Walked {
        root: root.as_os_str().as_bytes().to_vec(),
        objects: Vec::new(),
        left_out: 0,
    };
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let list = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for ent in list {
            let ent = ent.map_err(|e| format!("{}: {e}", dir.display()))?;
            let p = ent.path();
            // Not followed: a symlink is an object of its own.
            let md = std::fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else if ft.is_symlink() {
                Kind::Symlink
            } else {
                out.left_out += 1;
                continue;
            };
            if kind == Kind::Dir && md.dev() == dev {
                stack.push(p.clone());
            }
            out.objects.push((p.as_os_str().as_bytes().to_vec(), kind));
            if out.objects.len() > MAX_OBJECTS {
                return Err(format!(
                    "{shown}: more than {MAX_OBJECTS} objects: a tree is a service's data, not \
                     a system directory"
                ));
            }
        }
    }
    out.objects.sort();
    Ok(out)
}

/// The digest of a walked tree: SHA-256 over one line per object, sorted
/// by path relative to the root: its path, kind, mode, owner, group and
/// size, and a file's content digest or a symlink's target.
pub fn digest(w: &Walked) -> Result<String, String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (p, kind) in &w.objects {
        let rel = &p[w.root.len()..];
        let md = std::fs::symlink_metadata(Path::new(std::ffi::OsStr::from_bytes(p)))
            .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(p)))?;
        let what = match kind {
            Kind::File => {
                let f = super::exe::open_regular(Path::new(std::ffi::OsStr::from_bytes(p)))
                    .ok_or_else(|| format!("{}: cannot read it", String::from_utf8_lossy(p)))?;
                crate::core::manifest::sha256_hex(f)
                    .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(p)))?
            }
            Kind::Symlink => {
                let t = std::fs::read_link(Path::new(std::ffi::OsStr::from_bytes(p)))
                    .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(p)))?;
                crate::core::manifest::hex(t.as_os_str().as_bytes())
            }
            _ => String::new(),
        };
        h.update(rel);
        h.update(
            format!(
                "\0{kind:?}\0{:o}\0{}\0{}\0{}\0{what}\n",
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                if *kind == Kind::File { md.size() } else { 0 }
            )
            .as_bytes(),
        );
    }
    Ok(format!(
        "sha256:{}",
        crate::core::manifest::hex(&h.finalize())
    ))
}

/// Entries for a walked tree: the directories and symlinks leading to its
/// root, the root, and every object beneath it, none with accesses (so
/// every file's bytes go into a jail), except paths in `known`.
pub fn entries(path: &[u8], w: &Walked, known: &HashSet<&[u8]>, opts: &Options) -> Vec<Entry> {
    let mut r = Resolver::default();
    let res = r.resolve(path, true);
    let mut paths: Vec<Vec<u8>> = res.links;
    // The root's ancestors, the root and everything beneath it.
    let mut end = w.root.len();
    while let Some(cut) = w.root[..end].iter().rposition(|&b| b == b'/') {
        paths.push(w.root[..cut.max(1)].to_vec());
        if cut == 0 {
            break;
        }
        end = cut;
    }
    paths.push(w.root.clone());
    paths.extend(w.objects.iter().map(|(p, _)| p.clone()));
    paths.sort();
    paths.dedup();
    let mut out: Vec<Entry> = paths
        .into_iter()
        .filter(|p| !known.contains(p.as_slice()))
        .filter_map(|p| {
            let meta = lstat_host(&p);
            let path = MPath::new(p).ok()?;
            Some(make_entry(path, meta, Vec::new(), true, opts))
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
