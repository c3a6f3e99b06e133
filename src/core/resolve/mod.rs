//! From raw accesses to manifest entries: each accessed path is resolved on
//! the host the way the kernel resolves it, once per unique path, so that
//! every symlink met in any component becomes an entry of its own, every
//! directory on the way gets an entry with its metadata, and the accessed
//! object is recorded under its real path.

mod ahead;
mod entry;
pub(crate) mod exe;
mod inferred;
mod order;
pub mod tree;
mod watch;

use std::collections::VecDeque;

/// Resolution hashes every path several times: foldhash, seeded per
/// process (so a traced program cannot aim for collisions), instead of
/// SipHash.
type FastMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
use std::os::unix::ffi::OsStrExt;

use crate::core::manifest::{Access, Entry, Kind, Op, Outcome};
use crate::core::trace::RawLog;

pub use ahead::Ahead;
pub use entry::classify;
use entry::{is_proc, lstat_at, lstat_host, Meta};
pub use exe::{loader, loader_of, open_regular, Loader};
pub use inferred::inferred;

/// Linux gives up after this many symlinks in one lookup (ELOOP).
const MAX_SYMLINKS: usize = 40;
/// The kernel's limit on nested `#!` interpreters is lower; this is a bound.
const MAX_INTERP_DEPTH: usize = 8;

pub struct Options {
    pub hash: bool,
    /// Whether setuid programs run with their privileges under this tracer
    /// (only a tracer with CAP_SYS_PTRACE and without no_new_privs).
    pub setuid_effective: bool,
}

/// The outcome of resolving one path.
struct Resolved {
    /// The real path of the object (or of the first missing component and
    /// what followed it).
    path: Vec<u8>,
    /// Symlinks met on the way, in order.
    links: Vec<Vec<u8>>,
}

/// A resolved directory: its real path and the symlinks met on the way.
type ResolvedDir = Option<(Box<[u8]>, Vec<Vec<u8>>)>;

/// What resolution knows of one real path.
#[derive(Default)]
struct Node {
    /// The `lstat` result once taken; `Some(None)`: nothing is there.
    meta: Option<Option<Meta>>,
    accesses: Vec<Access>,
    /// (when, found) of the earliest raw access that reached it: whether
    /// the object was there when the program first touched it.
    first: Option<(u64, bool)>,
    /// Whether it becomes an entry: it was accessed, or it is an ancestor
    /// of a path that was. (A directory a walk only passed through, as in
    /// `a/b/../c`, is looked at but not listed.)
    listed: bool,
    /// When it was listed, in its part: the part takes its paths in order,
    /// so this is nearly the manifest's order (see `order::sorted`).
    seq: u32,
}

impl Node {
    /// Lists it, numbered from `count` (see `seq`), unless it already is;
    /// whether it was not.
    fn list(&mut self, count: &mut u32) -> bool {
        if self.listed {
            return false;
        }
        (self.listed, self.seq) = (true, *count);
        *count += 1;
        true
    }

    /// Adds what another part found at the same path.
    fn absorb(&mut self, theirs: Node) {
        if self.meta.is_none() {
            self.meta = theirs.meta;
        }
        for a in theirs.accesses {
            push_access(&mut self.accesses, a.op, a.result);
        }
        self.first = match (self.first, theirs.first) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        self.listed |= theirs.listed;
    }
}

#[derive(Default)]
struct Resolver {
    /// Every real path looked at: its lstat result, accesses and first
    /// touch under one key, so that each use hashes the path once.
    nodes: FastMap<Vec<u8>, Node>,
    /// Directory part of accessed paths (as spelled) -> its resolution,
    /// `None` when it is not an existing directory outside /proc.
    dirs: FastMap<Box<[u8]>, ResolvedDir>,
    /// The root a walk stays beneath, as the kernel keeps a chrooted
    /// process's lookups: `..` stops there and an absolute symlink starts
    /// there. Empty: the host's `/`.
    floor: Vec<u8>,
    /// The real directory last looked in, open (`None`: it could not be
    /// opened), so that the files of one directory are looked at relative
    /// to it.
    dir_fd: Option<(Box<[u8]>, Option<std::os::fd::OwnedFd>)>,
    /// Nodes listed so far.
    listed: u32,
    /// While resolving ahead (see `ahead`): what is looked at is watched.
    watch: Option<watch::Watch>,
    /// Whether the directory in `dir_fd` is watched.
    dir_watched: bool,
}

/// Builds manifest entries from a trace. Returns entries (sorted) and
/// warnings.
pub fn build(log: RawLog, opts: &Options) -> (Vec<Entry>, Vec<String>) {
    let b = build_with(log, None, 0, opts);
    // Freed off this thread: the caller has more to do.
    std::thread::spawn(move || drop(b.scraps));
    (b.entries, b.warnings)
}

/// What [`build_with`] gives.
pub struct Built {
    /// Sorted by path.
    pub entries: Vec<Entry>,
    pub warnings: Vec<String>,
    /// How resolution ahead went, when there was one.
    pub how: Option<String>,
    /// What it no longer needs.
    pub scraps: Scraps,
}

/// Large things resolution is done with but has not freed: freeing them
/// piece by piece takes longer than a process's exit takes its memory
/// back, and slows whatever runs beside it. A caller about to exit can
/// leave them.
#[derive(Default)]
pub struct Scraps(Vec<Box<dyn std::any::Any + Send>>);

impl Scraps {
    fn keep<T: Send + 'static>(&mut self, t: T) {
        self.0.push(Box::new(t));
    }
}

/// [`build`], from what was resolved ahead when that still counts (`lost`:
/// how many events the engine knows it lost).
pub fn build_with(log: RawLog, ahead: Option<Ahead>, lost: u64, opts: &Options) -> Built {
    let mut warnings = Vec::new();
    let keys: Vec<_> = log.into_iter().collect();
    let roots = chroot_roots(&keys);
    let mut how = None;
    let mut scraps = Scraps::default();
    if let Some(ahead) = ahead {
        match ahead::kept(ahead, &keys, &roots, lost, &mut scraps) {
            Ok(done) => {
                let how = format!(
                    "resolution ahead: kept ({} paths, {:.3} s of the run's)",
                    keys.len(),
                    done.busy.as_secs_f64()
                );
                scraps.keep(keys);
                let entries = ahead::entries(done, opts, &mut warnings, &mut scraps);
                return Built {
                    entries,
                    warnings,
                    how: Some(how),
                    scraps,
                };
            }
            Err(why) => how = Some(format!("resolution ahead: not kept: {why}")),
        }
    }
    // Resolution is mostly lstat calls, independent from one path to the
    // next: large traces are split across the CPUs (the tracer has given
    // back its CPU mask by now). Each part has its own caches; what they
    // found is merged by path, so the result does not depend on the split.
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(4)
        .min(keys.len() / PARALLEL_MIN + 1);
    let chunk = keys.len().div_ceil(threads).max(1);
    let parts: Vec<&[_]> = keys.chunks(chunk).collect();
    let resolved = on_threads(parts, |p| resolve_part(p, &roots));
    let mut execs = Vec::new();
    let mut parts: Vec<Resolver> = resolved
        .into_iter()
        .map(|(r, e)| {
            execs.extend(e);
            r
        })
        .collect();
    // The raw log is large and no longer needed.
    scraps.keep(keys);
    let Some(first) = parts.first_mut() else {
        return Built {
            entries: Vec::new(),
            warnings,
            how,
            scraps,
        };
    };
    first.interpreters(execs, &roots, opts, &mut warnings);
    // Each part's listed nodes in the manifest's order, sorted on the
    // part's thread, then merged into entries (see `order`).
    let sorted = on_threads(parts, |r| order::sorted(r.nodes));
    Built {
        entries: order::entries(sorted, threads, opts),
        warnings,
        how,
        scraps,
    }
}

/// The real path of `p` on the host (every symlink resolved), if it
/// exists.
pub fn real_path(p: &[u8]) -> Option<Vec<u8>> {
    let real = std::fs::canonicalize(std::ffi::OsStr::from_bytes(p)).ok()?;
    Some(std::os::unix::ffi::OsStringExt::into_vec(
        real.into_os_string(),
    ))
}

/// The real paths of the directories the program chrooted into: a
/// program run beneath one has its interpreter loaded from beneath it.
fn chroot_roots(keys: &[(Box<[u8]>, bool, crate::core::trace::Seen)]) -> Vec<Vec<u8>> {
    let mut roots: Vec<Vec<u8>> = keys
        .iter()
        .filter(|(_, _, seen)| seen.outcomes.contains(&(Op::Chroot, 0)))
        .filter_map(|(p, _, _)| real_path(p))
        .filter(|p| p.as_slice() != b"/")
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// The deepest of `roots` that `path` lies strictly beneath.
fn beneath<'r>(roots: &'r [Vec<u8>], path: &[u8]) -> Option<&'r [u8]> {
    roots
        .iter()
        .filter(|r| path.len() > r.len() && crate::core::manifest::pathenc::within(path, r))
        .max_by_key(|r| r.len())
        .map(Vec::as_slice)
}

/// `f` on each item, each on a thread of its own (none for one item).
fn on_threads<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || f(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a resolver thread panicked"))
            .collect()
    })
}

/// Below this many unique paths per thread, splitting is not worth it.
const PARALLEL_MIN: usize = 4000;

/// Resolves one part of the raw log; returns the resolver and the real
/// paths of successful execs.
fn resolve_part(
    keys: &[(Box<[u8]>, bool, crate::core::trace::Seen)],
    roots: &[Vec<u8>],
) -> (Resolver, Vec<Vec<u8>>) {
    let mut r = Resolver::default();
    // About one real path per key (growing the map as it fills costs
    // more than its first touch).
    r.nodes.reserve(keys.len());
    let mut execs = Vec::new();
    // In path order, so that the files of one directory come one after the
    // other and are looked at relative to it (see `Resolver::dir_fd`); the
    // order changes nothing else.
    let mut keys: Vec<_> = keys.iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (path, follow, seen) in keys {
        // Beneath a root the program chrooted into, a path is resolved as
        // the kernel resolves it for the chrooted process: its absolute
        // symlinks and its `..` stay beneath the root.
        let res = match beneath(roots, path) {
            Some(root) => r.resolve_beneath(root, &path[root.len()..], *follow),
            None => r.resolve(path, *follow),
        };
        r.note_links(&res.links);
        add_seen(
            &mut r,
            &res.path,
            (seen.first, seen.found),
            &seen.outcomes,
            &mut execs,
        );
    }
    (r, execs)
}

/// What the log saw of a path resolved to `real`: its accesses, and when
/// it was first touched; the real paths of successful execs go to `execs`.
fn add_seen(
    r: &mut Resolver,
    real: &[u8],
    (first, found): (u64, bool),
    outcomes: &[(Op, i32)],
    execs: &mut Vec<Vec<u8>>,
) {
    let node = r.list(real);
    match node.first {
        Some(f) if f.0 <= first => {}
        _ => node.first = Some((first, found)),
    }
    for &(op, errno) in outcomes {
        let outcome = if errno == 0 {
            Outcome::ok()
        } else {
            Outcome::from_errno(errno)
        };
        push_access(&mut node.accesses, op, outcome);
        if op == Op::Exec && errno == 0 {
            execs.push(real.to_vec());
        }
    }
}

/// The directory `dir` open (`O_PATH`) in `slot`, opened unless it is
/// already; `None` when it cannot be.
fn open_dir<'a>(
    slot: &'a mut Option<(Box<[u8]>, Option<std::os::fd::OwnedFd>)>,
    dir: &[u8],
) -> Option<std::os::fd::BorrowedFd<'a>> {
    use rustix::fs::{Mode, OFlags};
    if slot.as_ref().is_none_or(|(d, _)| **d != *dir) {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        *slot = Some((dir.into(), rustix::fs::open(dir, flags, Mode::empty()).ok()));
    }
    let fd = slot.as_ref()?.1.as_ref()?;
    Some(std::os::fd::AsFd::as_fd(fd))
}

fn push_access(v: &mut Vec<Access>, op: Op, result: Outcome) {
    let a = Access { op, result };
    if !v.contains(&a) {
        v.push(a);
    }
}

impl Resolver {
    /// The node of `path`, listed as an entry together with its ancestors.
    fn list(&mut self, path: &[u8]) -> &mut Node {
        let mut end = path.len();
        // Ancestors first, up to the first one already listed (then all of
        // its own are too).
        while let Some(cut) = path[..end].iter().rposition(|&b| b == b'/') {
            end = cut.max(1);
            if end == path.len() {
                break;
            }
            let n = self.nodes.entry_ref(&path[..end]).or_default();
            if !n.list(&mut self.listed) || end == 1 {
                break;
            }
        }
        let n = self.nodes.entry_ref(path).or_default();
        n.list(&mut self.listed);
        n
    }

    /// The host's metadata of `path` (no symlink followed), looked at once.
    fn lstat(&mut self, path: &[u8]) -> Option<&Meta> {
        self.lstat_in(path, None)
    }

    /// [`Self::lstat`]; `at`: the real directory `path` is in and its name
    /// there, to look at it relative to the directory, kept open while the
    /// paths of one directory follow one another.
    fn lstat_in(&mut self, path: &[u8], at: Option<(&[u8], &[u8])>) -> Option<&Meta> {
        if self.watch.is_some() && self.nodes.get(path).is_none_or(|n| n.meta.is_none()) {
            let meta = self.look_watched(path, at);
            self.nodes.entry_ref(path).or_default().meta = Some(meta);
        }
        let node = self.nodes.entry_ref(path).or_default();
        if node.meta.is_none() {
            // A path the kernel would refuse whole (ENAMETOOLONG) is
            // looked at whole, so that it says the same.
            let at = at.filter(|_| path.len() < libc::PATH_MAX as usize);
            node.meta = Some(match at {
                Some((dir, name)) => match open_dir(&mut self.dir_fd, dir) {
                    Some(fd) => lstat_at(fd, name),
                    None => lstat_host(path),
                },
                None => lstat_host(path),
            });
        }
        node.meta.as_ref().and_then(Option::as_ref)
    }

    /// Kind of `path` (no symlink followed), and the target of a symlink.
    fn probe(&mut self, path: &[u8]) -> Option<(Kind, Option<Vec<u8>>)> {
        self.probe_in(path, None)
    }

    /// [`Self::probe`], looked at as [`Self::lstat_in`] does.
    fn probe_in(
        &mut self,
        path: &[u8],
        at: Option<(&[u8], &[u8])>,
    ) -> Option<(Kind, Option<Vec<u8>>)> {
        let m = self.lstat_in(path, at)?;
        let target = (m.kind == Kind::Symlink).then(|| m.target.clone().unwrap_or_default());
        Some((m.kind, target))
    }

    /// Resolves `path` like the kernel's lookup. The directory part is
    /// resolved once per distinct spelling and cached: traces touch many
    /// files in few directories.
    fn resolve(&mut self, path: &[u8], follow_last: bool) -> Resolved {
        let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let (dir, last) = (&path[..cut], &path[cut + 1..]);
        if path.first() != Some(&b'/') || matches!(last, b"" | b"." | b"..") {
            let queue = split(path).map(<[u8]>::to_vec).collect();
            return self.walk(b"/".to_vec(), Vec::new(), queue, follow_last);
        }
        let cached = match self.dirs.get(dir) {
            Some(c) => c.clone(),
            None => {
                let queue = split(dir).map(<[u8]>::to_vec).collect();
                let r = self.walk(b"/".to_vec(), Vec::new(), queue, true);
                let usable =
                    !is_proc(&r.path) && matches!(self.probe(&r.path), Some((Kind::Dir, _)));
                let c = usable.then(|| (r.path.into_boxed_slice(), r.links));
                self.dirs.insert(Box::from(dir), c.clone());
                c
            }
        };
        match cached {
            Some((cur, links)) => {
                // The common case: one more component in a known real
                // directory, which is not a symlink to follow.
                let next = join(&cur, last);
                match self.probe_in(&next, Some((&cur, last))) {
                    Some((Kind::Symlink, Some(_))) if follow_last => {
                        self.walk(cur.into_vec(), links, VecDeque::from([last.to_vec()]), true)
                    }
                    _ => Resolved { path: next, links },
                }
            }
            None => {
                let queue = split(path).map(<[u8]>::to_vec).collect();
                self.walk(b"/".to_vec(), Vec::new(), queue, follow_last)
            }
        }
    }

    /// Resolves `path` as a process chrooted at the real directory `root`
    /// names it: beneath `root`, whatever its `..` and absolute symlinks.
    fn resolve_beneath(&mut self, root: &[u8], path: &[u8], follow_last: bool) -> Resolved {
        self.floor = root.to_vec();
        let queue = split(path).map(<[u8]>::to_vec).collect();
        let r = self.walk(root.to_vec(), Vec::new(), queue, follow_last);
        self.floor.clear();
        r
    }

    /// Resolves the components in `queue` starting from the real directory
    /// `cur`, reached through `links`.
    fn walk(
        &mut self,
        mut cur: Vec<u8>,
        mut links: Vec<Vec<u8>>,
        mut queue: VecDeque<Vec<u8>>,
        follow_last: bool,
    ) -> Resolved {
        while let Some(comp) = queue.pop_front() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if self.floor.is_empty() || cur != self.floor {
                        parent_in_place(&mut cur);
                    }
                    continue;
                }
                _ => {}
            }
            if is_proc(&cur) {
                // /proc is per-process and its symlinks point into the
                // tracer's own view: keep the rest as written.
                let mut rest = vec![comp];
                rest.extend(queue.drain(..));
                return Resolved {
                    path: lexical_join(&cur, &rest),
                    links,
                };
            }
            let next = join(&cur, &comp);
            let last = queue.is_empty();
            match self.probe(&next) {
                None => {
                    let rest: Vec<Vec<u8>> = queue.drain(..).collect();
                    return Resolved {
                        path: lexical_join(&next, &rest),
                        links,
                    };
                }
                Some((Kind::Symlink, Some(target))) if !last || follow_last => {
                    if links.len() >= MAX_SYMLINKS {
                        return Resolved { path: next, links };
                    }
                    links.push(next);
                    if target.first() == Some(&b'/') {
                        cur = if self.floor.is_empty() {
                            b"/".to_vec()
                        } else {
                            self.floor.clone()
                        };
                    }
                    for c in split(&target).rev() {
                        queue.push_front(c.to_vec());
                    }
                }
                Some((kind, _)) => {
                    if !last && kind != Kind::Dir {
                        // ENOTDIR: nothing beyond a non-directory exists.
                        let rest: Vec<Vec<u8>> = queue.drain(..).collect();
                        return Resolved {
                            path: lexical_join(&next, &rest),
                            links,
                        };
                    }
                    cur = next;
                }
            }
        }
        Resolved { path: cur, links }
    }

    fn add(&mut self, path: &[u8], op: Op, result: Outcome) {
        push_access(&mut self.list(path).accesses, op, result);
    }

    fn note_links(&mut self, links: &[Vec<u8>]) {
        for l in links {
            self.add(l, Op::Follow, Outcome::ok());
        }
    }
}

fn split(p: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn join(dir: &[u8], comp: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(dir.len() + 1 + comp.len());
    v.extend_from_slice(dir);
    if v.last() != Some(&b'/') {
        v.push(b'/');
    }
    v.extend_from_slice(comp);
    v
}

/// Moves `p` to its parent; false when it already is `/`.
fn parent_in_place(p: &mut Vec<u8>) -> bool {
    if p.as_slice() == b"/" {
        return false;
    }
    let cut = p.iter().rposition(|&b| b == b'/').unwrap_or(0);
    p.truncate(cut.max(1));
    true
}

/// Appends components to `base` lexically (`..` never climbs above `base`).
fn lexical_join(base: &[u8], rest: &[Vec<u8>]) -> Vec<u8> {
    let mut out = base.to_vec();
    let floor = out.len();
    for c in rest {
        match c.as_slice() {
            b"" | b"." => {}
            b".." => {
                if out.len() > floor {
                    parent_in_place(&mut out);
                    out.truncate(out.len().max(floor));
                }
            }
            c => out = join(&out, c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::pathenc::MPath;
    use crate::core::manifest::Class;
    use std::path::Path;

    fn with_tree(f: impl FnOnce(&Path, &mut Resolver)) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("usr/lib")).unwrap();
        std::fs::write(d.join("usr/lib/libx.so.1"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/lib", d.join("lib")).unwrap();
        std::os::unix::fs::symlink("libx.so.1", d.join("usr/lib/libx.so")).unwrap();
        std::os::unix::fs::symlink(d.join("lib/libx.so"), d.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        f(d, &mut Resolver::default());
    }

    fn b(p: &Path) -> Vec<u8> {
        p.as_os_str().as_bytes().to_vec()
    }

    #[test]
    fn follows_chains_in_every_component() {
        with_tree(|d, r| {
            let res = r.resolve(&b(&d.join("abs")), true);
            assert_eq!(res.path, b(&d.join("usr/lib/libx.so.1")));
            let links: Vec<_> = res.links.clone();
            assert_eq!(
                links,
                [
                    b(&d.join("abs")),
                    b(&d.join("lib")),
                    b(&d.join("usr/lib/libx.so"))
                ]
            );
            // Not following the last component stops at the link itself.
            let res = r.resolve(&b(&d.join("lib/libx.so")), false);
            assert_eq!(res.path, b(&d.join("usr/lib/libx.so")));
        });
    }

    #[test]
    fn dotdot_after_a_symlink_is_physical() {
        with_tree(|d, r| {
            // lib -> usr/lib, so lib/.. is usr, not d.
            let res = r.resolve(&b(&d.join("lib/../lib/libx.so.1")), true);
            assert_eq!(res.path, b(&d.join("usr/lib/libx.so.1")));
        });
    }

    #[test]
    fn missing_and_loops_terminate() {
        with_tree(|d, r| {
            let res = r.resolve(&b(&d.join("lib/nope/x/../y")), true);
            assert_eq!(res.path, b(&d.join("usr/lib/nope/y")));
            let res = r.resolve(&b(&d.join("loop")), true);
            assert_eq!(res.links.len(), MAX_SYMLINKS);
        });
    }

    fn paths(entries: &[Entry]) -> Vec<Vec<u8>> {
        entries.iter().map(|e| e.path.as_bytes().to_vec()).collect()
    }

    const OPTS: Options = Options {
        hash: false,
        setuid_effective: false,
    };

    #[test]
    fn a_directory_only_passed_through_is_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/c"), b"x").unwrap();
        let mut log = RawLog::default();
        log.add(&b(&d.join("a/b/../c")), true, Op::Read, 0);
        let (entries, _) = build(log, &OPTS);
        let got = paths(&entries);
        assert!(got.contains(&b(&d.join("a/c"))));
        assert!(got.contains(&b(&d.join("a"))));
        assert!(got.contains(&b"/".to_vec()));
        assert!(
            !got.contains(&b(&d.join("a/b"))),
            "a/b was only passed through"
        );
    }

    #[test]
    fn the_parts_of_a_large_trace_merge_into_one_entry_per_object() {
        // Enough paths to be resolved on several threads (when the machine
        // has them): one object reached by two spellings, maybe in two
        // parts, gets both accesses in one entry.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let n = 3 * PARALLEL_MIN;
        let mut log = RawLog::default();
        for i in 0..n {
            let f = d.join(format!("f{i}"));
            std::fs::write(&f, b"").unwrap();
            log.add(&b(&f), true, Op::Read, 0);
        }
        std::os::unix::fs::symlink("f0", d.join("l")).unwrap();
        log.add(&b(&d.join("l")), true, Op::Stat, 0);
        log.add(&b(&d.join("missing")), true, Op::Stat, libc::ENOENT);
        let (entries, _) = build(log, &OPTS);
        let ancestors = d.components().count();
        assert_eq!(entries.len(), n + 2 + ancestors);
        let f0 = entries
            .iter()
            .find(|e| e.path.as_bytes() == b(&d.join("f0")))
            .unwrap();
        let ops: Vec<Op> = f0.accesses.iter().map(|a| a.op).collect();
        assert_eq!(ops, [Op::Read, Op::Stat]);
        let l = entries
            .iter()
            .find(|e| e.path.as_bytes() == b(&d.join("l")))
            .unwrap();
        assert_eq!(l.kind, Kind::Symlink);
        let mut sorted = paths(&entries);
        sorted.sort_by(|a, b| {
            MPath::new(a.clone())
                .unwrap()
                .cmp(&MPath::new(b.clone()).unwrap())
        });
        assert_eq!(sorted, paths(&entries), "entries are sorted");
    }

    #[test]
    fn proc_paths_are_kept_as_written() {
        let mut r = Resolver::default();
        let res = r.resolve(b"/proc/self/../self/maps", true);
        assert_eq!(res.path, b"/proc/self/maps");
    }

    #[test]
    fn classes() {
        let c = |p: &str, k| classify(&MPath::new(p).unwrap(), k);
        assert_eq!(c("/dev/urandom", Kind::Chardev), Class::Dev);
        assert_eq!(c("/proc/self/maps", Kind::File), Class::Proc);
        assert_eq!(c("/sys/devices", Kind::Dir), Class::Sys);
        assert_eq!(c("/usr/lib", Kind::Dir), Class::Regular);
        assert_eq!(c("/srv/null", Kind::Chardev), Class::Dev);
    }
}
