//! Entries for the paths that `--infer` rules name although the run did
//! not reach them, resolved as a traced path is.

use super::entry::{is_proc, make_entry};
use super::{FastMap, Options, Resolver};
use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::Entry;

/// The entries of paths that rules infer (see [`crate::core::infer`]),
/// each marked with its rule and without accesses: the path, the symlinks
/// on the way to it and its directories, resolved like a traced path.
/// Paths `known` says are the run's own entries are left to those.
pub fn inferred(
    paths: Vec<(Vec<u8>, crate::core::infer::Rule)>,
    known: &dyn Fn(&[u8]) -> bool,
    opts: &Options,
) -> Vec<Entry> {
    let mut r = Resolver::default();
    let mut marks: FastMap<Vec<u8>, crate::core::infer::Rule> = FastMap::default();
    let mut mark = |p: &[u8], rule| {
        let mut end = p.len();
        loop {
            let cur = &p[..end];
            if known(cur) || marks.contains_key(cur) {
                break;
            }
            marks.insert(cur.to_vec(), rule);
            match cur.iter().rposition(|&b| b == b'/') {
                Some(0) if end > 1 => end = 1,
                Some(cut) if cut > 0 => end = cut,
                _ => break,
            }
        }
    };
    for (path, rule) in paths {
        let res = r.resolve(&path, true);
        for l in &res.links {
            mark(l, rule);
        }
        if r.lstat(&res.path).is_some() && !is_proc(&res.path) {
            mark(&res.path, rule);
        }
    }
    let mut out: Vec<Entry> = marks
        .into_iter()
        .filter_map(|(p, rule)| {
            let meta = r.lstat(&p).cloned();
            let path = MPath::new(p).ok()?;
            let mut e = make_entry(path, meta, Vec::new(), true, opts);
            e.inferred = Some(rule.name().to_string());
            Some(e)
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
