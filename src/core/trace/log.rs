//! The raw log both engines write, and the rules for writing a finished
//! call into it: restart codes, found or created, the
//! `/proc/<pid>` rewrite.

use std::collections::HashMap;

use super::decode;
use crate::core::manifest::Op;

/// One path a call names: absolute path, whether its last symlink is
/// followed, and what the call does to it.
pub type Item = (Vec<u8>, bool, decode::Ops);

/// The (operation, errno or 0) pairs seen for one raw path.
pub type Outcomes = Vec<(Op, i32)>;

/// Everything seen for one raw path.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub outcomes: Outcomes,
    /// When the path was first touched: lower is earlier, across the whole
    /// log, so that raw paths naming the same object can be ordered.
    pub first: u64,
    /// Whether an object was at the path when the program first touched
    /// it. What the run found is an input; only what it made is an output.
    pub found: bool,
}

/// Unique accesses seen during a trace: for each absolute path as the
/// tracee named it (not yet resolved) and whether its last symlink is
/// followed, the (operation, errno or 0) pairs and what was at the path
/// when it was first touched. One map per `follow` value so that a repeated
/// access is found by slice, without allocating.
#[derive(Debug, Default)]
pub struct RawLog {
    follow: HashMap<Box<[u8]>, Seen, foldhash::fast::RandomState>,
    nofollow: HashMap<Box<[u8]>, Seen, foldhash::fast::RandomState>,
    touched: u64,
    /// Outcomes new since the last [`RawLog::take_fresh`], when asked for.
    fresh: Option<Vec<Fresh>>,
}

/// An (operation, errno) new to a key of the log, as it comes.
#[derive(Debug)]
pub struct Fresh {
    pub path: Box<[u8]>,
    pub follow: bool,
    pub op: Op,
    pub errno: i32,
    /// The key's [`Seen::first`] and [`Seen::found`].
    pub first: u64,
    pub found: bool,
}

impl RawLog {
    /// Adds an access whose success says the object was there, as for
    /// every call that does not create (used where no tracer is involved).
    pub fn add(&mut self, path: &[u8], follow: bool, op: Op, errno: i32) {
        self.add_with(path, follow, op, errno, || errno == 0 && !op.creates());
    }

    /// Adds an access; `found` is asked only when the path is new to the
    /// log, and says whether an object was at it before this access.
    pub fn add_with(
        &mut self,
        path: &[u8],
        follow: bool,
        op: Op,
        errno: i32,
        found: impl FnOnce() -> bool,
    ) {
        let map = if follow {
            &mut self.follow
        } else {
            &mut self.nofollow
        };
        let v = match map.get_mut(path) {
            Some(v) => v,
            None => {
                self.touched += 1;
                map.entry(Box::from(path)).or_insert(Seen {
                    outcomes: Vec::new(),
                    first: self.touched,
                    found: found(),
                })
            }
        };
        if !v.outcomes.contains(&(op, errno)) {
            v.outcomes.push((op, errno));
            if let Some(fresh) = &mut self.fresh {
                fresh.push(Fresh {
                    path: Box::from(path),
                    follow,
                    op,
                    errno,
                    first: v.first,
                    found: v.found,
                });
            }
        }
    }

    /// From now on, new outcomes are kept for [`RawLog::take_fresh`].
    pub fn keep_fresh(&mut self) {
        self.fresh.get_or_insert_with(Vec::new);
    }

    /// No more outcomes are kept for [`RawLog::take_fresh`].
    pub fn stop_fresh(&mut self) {
        self.fresh = None;
    }

    /// The outcomes new since the last call, in the order they came.
    pub fn take_fresh(&mut self) -> Vec<Fresh> {
        self.fresh.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Whether this (path, follow) has been touched at all.
    pub fn contains(&self, path: &[u8], follow: bool) -> bool {
        let map = if follow { &self.follow } else { &self.nofollow };
        map.contains_key(path)
    }

    /// Number of unique (path, follow) keys.
    pub fn len(&self) -> usize {
        self.follow.len() + self.nofollow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (path, follow, outcomes) for every key.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], bool, &[(Op, i32)])> {
        let f = self
            .follow
            .iter()
            .map(|(k, v)| (&**k, true, v.outcomes.as_slice()));
        let n = self
            .nofollow
            .iter()
            .map(|(k, v)| (&**k, false, v.outcomes.as_slice()));
        f.chain(n)
    }
}

impl IntoIterator for RawLog {
    type Item = (Box<[u8]>, bool, Seen);
    type IntoIter = Box<dyn Iterator<Item = Self::Item>>;

    /// Consumes the log, freeing it as it goes.
    fn into_iter(self) -> Self::IntoIter {
        let f = self.follow.into_iter().map(|(k, v)| (k, true, v));
        let n = self.nofollow.into_iter().map(|(k, v)| (k, false, v));
        Box::new(f.chain(n))
    }
}

/// Kernel-internal restart codes, seen only by a tracer.
const ERESTARTSYS: i32 = 512;
const ERESTARTNOINTR: i32 = 513;
const ERESTARTNOHAND: i32 = 514;
const ERESTART_RESTARTBLOCK: i32 = 516;

/// A host path as a tracee running chrooted at `root` sees it (`verify`):
/// the root's prefix removed; unchanged without a root or outside it.
pub(crate) fn unrooted<'a>(root: Option<&[u8]>, p: &'a [u8]) -> &'a [u8] {
    match root {
        Some(root) if p.starts_with(root) && p.get(root.len()) == Some(&b'/') => &p[root.len()..],
        Some(root) if p == root => b"/",
        _ => p,
    }
}

/// The real path of `p` as a tracee chrooted at `root` names it (the
/// host's when there is no root), as that tracee sees it; `None` when the
/// host cannot show it now.
pub(crate) fn real_beneath(root: Option<&[u8]>, p: &[u8]) -> Option<Vec<u8>> {
    let mut full = root.unwrap_or_default().to_vec();
    full.extend_from_slice(p);
    let real = crate::core::resolve::real_path(&full)?;
    Some(unrooted(root, &real).to_vec())
}

/// A finished call, as both backends hand it to [`record_call`].
pub(crate) struct Call<'a> {
    pub items: Vec<Item>,
    /// For each item, what was at its path before the call when that had
    /// to be found out at entry (see [`Seen::found`]).
    pub found: &'a [Option<bool>],
    /// 0, or the errno (a kernel restart code included).
    pub errno: i32,
}

/// Records a finished call's accesses with its outcome. Returns false for
/// a call that will be restarted and record itself again.
pub(crate) fn record_call(log: &mut RawLog, root: Option<&[u8]>, call: Call<'_>) -> bool {
    // Interrupted by a signal. ERESTARTNOINTR is always restarted (and
    // stops again); the others end in EINTR unless the handler has
    // SA_RESTART, which the tracer cannot see: record the attempt as
    // EINTR, and a restart adds its own outcome.
    let errno = match call.errno {
        ERESTARTNOINTR => return false,
        ERESTARTSYS | ERESTARTNOHAND | ERESTART_RESTARTBLOCK => libc::EINTR,
        e => e,
    };
    for (i, (path, follow, ops)) in call.items.into_iter().enumerate() {
        let probed = call.found.get(i).copied().flatten();
        for op in ops.iter() {
            log.add_with(&path, follow, op, errno, || match (probed, errno) {
                (Some(found), _) => found,
                // A call that does not create succeeded: it was there.
                (None, 0) => !ops.iter().any(Op::creates),
                (None, libc::ENOENT | libc::ENOTDIR) => false,
                // A failed call changed nothing: look now.
                (None, _) => exists(root, &path, follow),
            });
        }
    }
    true
}

/// `/proc/<pid>` of a traced process is written `/proc/self`, and
/// `/proc/self/task/<tid>` of a traced thread `/proc/thread-self`, so that
/// manifests hold no pids or thread ids. A thread that names another's
/// task directory (a main thread naming its workers through
/// `task/TID/comm`) gets `thread-self` too: which thread it was is not
/// kept, since tids differ on every run, and a jail needs only /proc.
pub(crate) fn rewrite_proc(path: &mut Vec<u8>, traced: impl Fn(i32) -> bool) {
    const PROC: &[u8] = b"/proc/";
    const TASK: &[u8] = b"/proc/self/task/";
    if let Some(end) = traced_id_at(path, PROC.len(), &traced) {
        path.splice(PROC.len()..end, b"self".iter().copied());
    }
    if path.starts_with(TASK) {
        if let Some(end) = traced_id_at(path, TASK.len(), &traced) {
            path.splice(..end, b"/proc/thread-self".iter().copied());
        }
    }
}

/// The end of the path component starting at `at`, if it is the id of a
/// traced task.
fn traced_id_at(path: &[u8], at: usize, traced: &impl Fn(i32) -> bool) -> Option<usize> {
    let rest = path.get(at..)?;
    let len = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let comp = &rest[..len];
    if comp.is_empty() || !comp.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: i32 = std::str::from_utf8(comp).ok()?.parse().ok()?;
    traced(n).then_some(at + len)
}

/// Whether an object is at `path` as the tracee names it (beneath `root`
/// when it runs chrooted). Called once per first-touched path that a call
/// may create, never on the common path.
pub(crate) fn exists(root: Option<&[u8]>, path: &[u8], follow: bool) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let mut full = root.unwrap_or_default().to_vec();
    full.extend_from_slice(path);
    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(&full));
    let r = if follow {
        std::fs::metadata(p)
    } else {
        std::fs::symlink_metadata(p)
    };
    // A lookup the tracer may not make (EACCES) tells nothing; the
    // program, which made the call, could see it.
    r.is_ok() || r.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
}
