//! The parts' listed nodes put in the manifest's order and merged into
//! entries. Nodes are large, so none is moved by a sort or gathered into
//! a range: each part sorts its own on its thread (the sort moves their
//! paths' slices and indices), every part is cut at the same pivots, and
//! each range merges its pieces on a thread of its own, so that the ranges'
//! entries only need to be put one after the other.

use super::entry::{is_proc, lstat_host, make_entry};
use super::{on_threads, FastMap, Node, Options};
use crate::core::manifest::pathenc::{cmp_path_bytes, MPath};
use crate::core::manifest::Entry;

/// A listed node and its real path.
type Listed = (Vec<u8>, Node);

/// A part's listed nodes, in the manifest's order. The sort moves their
/// paths' slices and indices, not the nodes. Put back in the order they
/// were listed first, they are nearly sorted (a part takes its paths in
/// order), which the stable sort finds in runs.
pub(super) fn sorted(nodes: FastMap<Vec<u8>, Node>) -> Vec<Listed> {
    let mut nodes: Vec<Listed> = nodes.into_iter().filter(|(_, n)| n.listed).collect();
    let mut order: Vec<(&[u8], u32, u32)> = nodes
        .iter()
        .enumerate()
        .map(|(i, (p, n))| (p.as_slice(), n.seq, i as u32))
        .collect();
    order.sort_unstable_by_key(|o| o.1);
    order.sort_by(|a, b| cmp_path_bytes(a.0, b.0));
    let order: Vec<u32> = order.into_iter().map(|(_, _, i)| i).collect();
    order
        .into_iter()
        .map(|i| std::mem::take(&mut nodes[i as usize]))
        .collect()
}

/// [`sorted`] for one map of nodes, on `n` threads: its listed nodes are
/// dealt into `n` parts, each sorted on its own (for [`entries`]). The
/// nodes are taken out where they lie, on the parts' threads, rather than
/// all moved out of the map first on this one; the map is given back.
pub(super) fn sorted_on(
    mut nodes: FastMap<Vec<u8>, Node>,
    n: usize,
) -> (Vec<Vec<Listed>>, FastMap<Vec<u8>, Node>) {
    let mut listed: Vec<(&[u8], &mut Node)> = nodes
        .iter_mut()
        .filter(|(_, n)| n.listed)
        .map(|(p, n)| (p.as_slice(), n))
        .collect();
    let size = listed.len().div_ceil(n.max(1)).max(1);
    let parts: Vec<_> = listed.chunks_mut(size).collect();
    let sorted = on_threads(parts, |part| {
        part.sort_unstable_by(|a, b| cmp_path_bytes(a.0, b.0));
        part.iter_mut()
            .map(|(p, node)| (p.to_vec(), std::mem::take(&mut **node)))
            .collect()
    });
    drop(listed);
    (sorted, nodes)
}

/// The entries of every part's sorted nodes (a path may come from several
/// parts), in the manifest's order, made in `threads` ranges.
pub(super) fn entries(mut parts: Vec<Vec<Listed>>, threads: usize, opts: &Options) -> Vec<Entry> {
    let pivots = parts.first().map_or_else(Vec::new, |p| pivots(p, threads));
    let mut ranges: Vec<Vec<&mut [Listed]>> = (0..=pivots.len()).map(|_| Vec::new()).collect();
    for part in &mut parts {
        let mut rest = part.as_mut_slice();
        for (range, pivot) in ranges.iter_mut().zip(&pivots) {
            let at = rest.partition_point(|(p, _)| cmp_path_bytes(p, pivot).is_lt());
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(at);
            range.push(piece);
            rest = tail;
        }
        ranges[pivots.len()].push(rest);
    }
    let ranges = on_threads(ranges, |pieces| range_entries(pieces, opts));
    let mut all = Vec::with_capacity(ranges.iter().map(Vec::len).sum());
    for mut range in ranges {
        all.append(&mut range);
    }
    all
}

/// Up to `n - 1` paths that cut `sorted` (one part's listed nodes, in
/// order) into `n` ranges of about the same size: every part is a random
/// share of the trace.
fn pivots(sorted: &[Listed], n: usize) -> Vec<Vec<u8>> {
    let mut pivots: Vec<Vec<u8>> = (1..n)
        .filter_map(|i| sorted.get(sorted.len() * i / n))
        .map(|(p, _)| p.clone())
        .collect();
    pivots.dedup();
    pivots
}

/// The entries of one range: its piece of each part's sorted nodes (a path
/// may come from several parts), merged in the manifest's order. The
/// nodes are taken out of the pieces.
fn range_entries(mut pieces: Vec<&mut [Listed]>, opts: &Options) -> Vec<Entry> {
    let mut out = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
    let mut next = vec![0; pieces.len()];
    loop {
        // The piece whose next path comes first (a few pieces: one per
        // part).
        let mut first: Option<(usize, &[u8])> = None;
        for (i, piece) in pieces.iter().enumerate() {
            if let Some((p, _)) = piece.get(next[i]) {
                if first.is_none_or(|(_, f)| cmp_path_bytes(p, f).is_lt()) {
                    first = Some((i, p));
                }
            }
        }
        let Some((i, _)) = first else {
            break;
        };
        let (p, mut node) = std::mem::take(&mut pieces[i][next[i]]);
        next[i] += 1;
        for (j, piece) in pieces.iter_mut().enumerate() {
            if let Some((q, same)) = piece.get_mut(next[j]) {
                if *q == p {
                    node.absorb(std::mem::take(same));
                    next[j] += 1;
                }
            }
        }
        if node.accesses.is_empty() && p.len() > b"/proc".len() && is_proc(&p) {
            // Intermediate /proc directories (like /proc/self) say
            // nothing a jail needs.
            continue;
        }
        let meta = node.meta.unwrap_or_else(|| lstat_host(&p));
        let Ok(path) = MPath::new(p) else {
            continue;
        };
        let found = node.first.is_none_or(|f| f.1);
        out.push(make_entry(path, meta, node.accesses, found, opts));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::{Access, Op, Outcome};
    use std::os::unix::ffi::OsStrExt as _;

    const OPTS: Options = Options {
        hash: false,
        setuid_effective: false,
    };

    /// A part's nodes: each path listed (in the order given) with one
    /// access, and one node looked at but not listed.
    fn part(paths: &[&[u8]], op: Op, unlisted: &[u8]) -> FastMap<Vec<u8>, Node> {
        let mut nodes = FastMap::default();
        for (seq, p) in paths.iter().enumerate() {
            let n: &mut Node = nodes.entry(p.to_vec()).or_default();
            (n.listed, n.seq) = (true, seq as u32);
            n.accesses.push(Access {
                op,
                result: Outcome::ok(),
            });
        }
        nodes.insert(unlisted.to_vec(), Node::default());
        nodes
    }

    /// Parts in any order, cut into any number of ranges, give every
    /// listed path once, in the manifest's order, with what every part
    /// found of it.
    #[test]
    fn parts_merge_into_one_ordered_list() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().as_os_str().as_bytes().to_vec();
        let names = ["a", "a/b", "a-c", "a/b/c", "b", "a.d", "z"];
        for n in names {
            let p = t.path().join(n);
            if n.contains('.') || n == "z" || n == "a-c" || n == "a/b/c" {
                std::fs::write(&p, b"").unwrap();
            } else {
                std::fs::create_dir_all(&p).unwrap();
            }
        }
        let path = |n: &str| [d.as_slice(), b"/", n.as_bytes()].concat();
        let all: Vec<Vec<u8>> = names.iter().map(|n| path(n)).collect();
        let refs = |ns: &[usize]| -> Vec<&[u8]> { ns.iter().map(|&i| all[i].as_slice()).collect() };
        for threads in 1..=4 {
            let one = part(&refs(&[6, 0, 1, 3]), Op::Read, &path("gone"));
            let two = part(&refs(&[2, 3, 4, 5, 0]), Op::Stat, &path("x"));
            let parts = vec![sorted(one), sorted(two)];
            let got = entries(parts, threads, &OPTS);
            let mut want: Vec<Vec<u8>> = all.clone();
            want.sort_by(|a, b| cmp_path_bytes(a, b));
            let paths: Vec<Vec<u8>> = got.iter().map(|e| e.path.as_bytes().to_vec()).collect();
            assert_eq!(paths, want, "{threads} ranges");
            let ops = |i: usize| -> Vec<Op> {
                let e = got.iter().find(|e| e.path.as_bytes() == all[i]).unwrap();
                let mut ops: Vec<Op> = e.accesses.iter().map(|a| a.op).collect();
                ops.sort();
                ops
            };
            // In both parts: what each found.
            assert_eq!(ops(0), [Op::Read, Op::Stat]);
            assert_eq!(ops(3), [Op::Read, Op::Stat]);
            assert_eq!(ops(1), [Op::Read]);
            assert_eq!(ops(4), [Op::Stat]);
        }
    }
}
