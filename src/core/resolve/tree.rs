//! A directory kept whole (`--tree`): its subtree as the host has it now,
//! walked without following a symlink or leaving its file system, made
//! into entries with no accesses (so a jail gets every file's bytes), and
//! its digest. Device nodes and sockets are left out: a data directory's
//! are runtime objects, and no tree may smuggle a device into a jail.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::entry::{lstat_host, make_entry, Meta};
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
    /// Every object beneath it, sorted by path, with what `lstat` said of
    /// it (once: the digest and the entries use it).
    pub(super) objects: Vec<(Vec<u8>, Meta)>,
    /// Device nodes, sockets and FIFOs left out.
    pub left_out: usize,
}

impl Walked {
    /// How many objects the tree holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Walks the tree at `path` (as a program names it).
pub fn walk(path: &[u8]) -> Result<Walked, String> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let root = super::real_path(path).ok_or_else(|| {
        let e = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(path)).err();
        format!(
            "{shown}: {}",
            e.map_or("cannot resolve it".into(), |e| e.to_string())
        )
    })?;
    let meta = lstat_host(&root).ok_or_else(|| format!("{shown}: cannot look at it"))?;
    if meta.kind != Kind::Dir {
        return Err(format!("{shown}: not a directory"));
    }
    let mut out = Walked {
        root,
        objects: Vec::new(),
        left_out: 0,
    };
    let mut stack = vec![out.root.clone()];
    while let Some(dir) = stack.pop() {
        let shown_dir = String::from_utf8_lossy(&dir).into_owned();
        let list = std::fs::read_dir(std::ffi::OsStr::from_bytes(&dir))
            .map_err(|e| format!("{shown_dir}: {e}"))?;
        for ent in list {
            let ent = ent.map_err(|e| format!("{shown_dir}: {e}"))?;
            let p = ent.path().into_os_string().into_encoded_bytes();
            // Not followed: a symlink is an object of its own.
            let Some(m) = lstat_host(&p) else {
                return Err(format!(
                    "{}: gone while it was read",
                    String::from_utf8_lossy(&p)
                ));
            };
            match m.kind {
                Kind::Dir if m.dev == meta.dev => stack.push(p.clone()),
                Kind::Dir | Kind::File | Kind::Symlink => {}
                _ => {
                    out.left_out += 1;
                    continue;
                }
            }
            out.objects.push((p, m));
            if out.objects.len() > MAX_OBJECTS {
                return Err(format!(
                    "{shown}: more than {MAX_OBJECTS} objects: a tree is a service's data, not \
                     a system directory"
                ));
            }
        }
    }
    out.objects.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The digest of a walked tree: SHA-256 over one line per object, sorted
/// by path relative to the root: its path, kind, mode, owner, group and
/// size, and a file's content digest or a symlink's target.
pub fn digest(w: &Walked) -> Result<String, String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (p, m) in &w.objects {
        let rel = &p[w.root.len()..];
        let what = match m.kind {
            Kind::File => {
                let f = super::exe::open_regular(Path::new(std::ffi::OsStr::from_bytes(p)))
                    .ok_or_else(|| format!("{}: cannot read it", String::from_utf8_lossy(p)))?;
                crate::core::manifest::sha256_hex(f)
                    .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(p)))?
            }
            Kind::Symlink => crate::core::manifest::hex(m.target.as_deref().unwrap_or_default()),
            _ => String::new(),
        };
        h.update(rel);
        h.update(
            format!(
                "\0{:?}\0{:o}\0{}\0{}\0{}\0{what}\n",
                m.kind,
                m.mode,
                m.uid,
                m.gid,
                if m.kind == Kind::File { m.size } else { 0 }
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
    paths.sort();
    paths.dedup();
    // The way to the root is looked at now; what is beneath it, as walked.
    let leading = paths.into_iter().map(|p| {
        let meta = lstat_host(&p);
        (p, meta)
    });
    let beneath = w.objects.iter().map(|(p, m)| (p.clone(), Some(m.clone())));
    let mut out: Vec<Entry> = leading
        .chain(beneath)
        .filter(|(p, _)| !known.contains(p.as_slice()))
        .filter_map(|(p, meta)| {
            let path = MPath::new(p).ok()?;
            Some(make_entry(path, meta, Vec::new(), true, opts))
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
