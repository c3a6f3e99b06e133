//! Resolution run ahead: during a bpf recording the command runs in the
//! kernel and jailtrace's own CPU time is mostly idle, so each path is
//! resolved on a thread of low priority as soon as it is first seen,
//! instead of all of them after the run. What is looked at is watched
//! (`watch`); if nothing it used changed by the end of the run, the
//! result is the one resolution after the run would give, and only the
//! accesses are added to it then. Otherwise resolution starts over after
//! the run, as without this.
//!
//! Only the bpf engine feeds it: the ptrace engine's tracer keeps its CPU
//! busy, and a recording of the same command by ptrace, resolved after
//! the run, is what the tests compare this with.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use super::entry::{look_at, lstat_host, Meta};
use super::watch::{open_path, Watch};
use super::{open_dir, FastMap, Options, Resolver, Scraps};
use crate::core::manifest::Entry;
use crate::core::manifest::{Kind, Op};

/// New outcomes of the raw log, as the engine first sees them (never
/// empty: an empty one ends the run ahead).
type Batch = Vec<crate::core::trace::Fresh>;

/// The thread resolving ahead, and the way to feed it.
pub struct Ahead {
    tx: mpsc::SyncSender<Batch>,
    worker: Option<std::thread::JoinHandle<Result<Done, String>>>,
    shared: Arc<Shared>,
}

/// What the thread and the run's end share.
#[derive(Default)]
struct Shared {
    /// Outcomes resolved so far.
    done: AtomicUsize,
    /// Set when the run ahead is no longer wanted.
    stop: AtomicBool,
    /// The thread's id, to give it back a normal priority at the end.
    tid: std::sync::atomic::AtomicI32,
}

/// Batches the engine may send ahead of the thread; one more and the
/// engine stops sending (see `TraceOptions::fresh`), so a starved thread
/// does not hold a copy of every path the run touches.
const QUEUE: usize = 1024;

/// Still this far behind when the run ends, one thread would take longer
/// than resolution after the run on all of them: given up then.
fn too_far_behind(behind: usize, total: usize) -> bool {
    behind > 2000 && behind * 4 > total
}

/// How often the thread reads the watch's events while no outcome comes,
/// so that a command writing in a directory it looked in does not overflow
/// the queue in the meantime.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// What was resolved ahead.
pub(super) struct Done {
    /// Every key resolved, with the log's accesses added.
    pub resolver: Resolver,
    /// Each key's resolved real path (`follow` true, false).
    keys: [FastMap<Box<[u8]>, Vec<u8>>; 2],
    /// The outcomes received.
    pub outcomes: usize,
    /// The real paths of successful execs.
    pub execs: Vec<Vec<u8>>,
    /// How long it took, for `JAILTRACE_BPF_STARTUP`'s report.
    pub busy: std::time::Duration,
}

impl Ahead {
    /// Starts the thread.
    pub fn start() -> Self {
        let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let worker = Some(std::thread::spawn(move || work(rx, &theirs)));
        Ahead { tx, worker, shared }
    }

    /// Where the engine sends the log's new outcomes.
    pub fn sender(&self) -> mpsc::SyncSender<Batch> {
        self.tx.clone()
    }

    /// Waits for everything sent (`total` outcomes) to be resolved, or
    /// stops the thread if that is too much; why the result does not
    /// count, if it does not (then the caller resolves after the run, and
    /// what the thread resolved goes to `scraps`).
    pub(super) fn finish(mut self, total: usize, scraps: &mut Scraps) -> Result<Done, String> {
        let behind = total.saturating_sub(self.shared.done.load(Ordering::Relaxed));
        if too_far_behind(behind, total) {
            self.shared.stop.store(true, Ordering::Relaxed);
        }
        // The run is over: what is left of the thread's work is all that
        // jailtrace waits for, at a normal priority (root may raise it).
        let tid = self.shared.tid.load(Ordering::Relaxed);
        if tid > 0 {
            let _ = rustix::process::setpriority_process(rustix::process::Pid::from_raw(tid), 0);
        }
        // The engine's senders may outlive this: an empty batch ends.
        let _ = self.tx.send(Vec::new());
        let worker = self.worker.take().expect("finished once");
        let mut done = worker
            .join()
            .map_err(|_| "the thread resolving ahead panicked".to_string())??;
        let mut watch = done.resolver.watch.take().expect("watched while ahead");
        let unchanged = unchanged(&mut watch, &done.resolver.nodes);
        // Removing every watch takes the kernel a while: off this thread.
        std::thread::spawn(move || drop(watch));
        match unchanged {
            Ok(()) => Ok(done),
            Err(why) => {
                scraps.keep(done);
                Err(why)
            }
        }
    }
}

impl Drop for Ahead {
    /// Not finished (the recording failed): the thread stops at once
    /// rather than resolving what it was sent.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether what was looked at is as it was, by the end of the run.
fn unchanged(watch: &mut Watch, nodes: &FastMap<Vec<u8>, super::Node>) -> Result<(), String> {
    if let Some(why) = watch.check(|p| looked(nodes, p)) {
        return Err(why.to_string());
    }
    // What no watch covered is looked at again, and must be as seen.
    for p in watch.take_unvetted() {
        let same = match (looked(nodes, &p), lstat_host(&p)) {
            (Some(Some(then)), Some(now)) => then.same_as(&now),
            (Some(None), None) | (None, _) => true,
            _ => false,
        };
        if !same {
            return Err(format!(
                "{} changed during the run",
                crate::core::manifest::pathenc::encode(&p)
            ));
        }
    }
    Ok(())
}

/// What was resolved ahead, if it still counts: nothing it looked at
/// changed, the command never chrooted (which changes how the paths
/// beneath the new root resolve, from when it happened), and every
/// outcome of the log came.
pub(super) fn kept(
    ahead: Ahead,
    keys: &[(Box<[u8]>, bool, crate::core::trace::Seen)],
    roots: &[Vec<u8>],
    lost: u64,
    scraps: &mut Scraps,
) -> Result<Done, String> {
    let outcomes: usize = keys.iter().map(|(_, _, seen)| seen.outcomes.len()).sum();
    let done = ahead.finish(outcomes, scraps)?;
    let why = if lost > 0 {
        // A lost event may have been a link the run ahead had to know of.
        Some("the recording lost events".to_string())
    } else if !roots.is_empty() {
        Some("the command chrooted".into())
    } else if done.outcomes != outcomes {
        Some(format!(
            "{} of the log's {outcomes} outcomes came ahead",
            done.outcomes
        ))
    } else {
        None
    };
    match why {
        None => Ok(done),
        Some(why) => {
            scraps.keep(done);
            Err(why)
        }
    }
}

/// The entries of what was resolved ahead (the log's accesses are in).
pub(super) fn entries(
    done: Done,
    opts: &Options,
    warnings: &mut Vec<String>,
    scraps: &mut Scraps,
) -> Vec<Entry> {
    scraps.keep(done.keys);
    let mut r = done.resolver;
    r.interpreters(done.execs, &[], opts, warnings);
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(4);
    let (sorted, nodes) = super::order::sorted_on(r.nodes, threads);
    scraps.keep(nodes);
    super::order::entries(sorted, threads, opts)
}

/// What resolution saw at `p`, if it looked.
fn looked<'m>(nodes: &'m FastMap<Vec<u8>, super::Node>, p: &[u8]) -> Option<Option<&'m Meta>> {
    nodes.get(p)?.meta.as_ref().map(Option::as_ref)
}

/// The thread: resolves each new path as it comes and adds its accesses,
/// until the run ends or what it saw has changed.
fn work(rx: mpsc::Receiver<Batch>, shared: &Shared) -> Result<Done, String> {
    // Only CPU time nobody else wants: the command's comes first.
    let tid = nix::unistd::gettid().as_raw();
    shared.tid.store(tid, Ordering::Relaxed);
    let _ = rustix::process::setpriority_process(rustix::process::Pid::from_raw(tid), 19);
    let mut done = Done {
        resolver: Resolver {
            watch: Some(Watch::new()?),
            ..Resolver::default()
        },
        keys: Default::default(),
        outcomes: 0,
        execs: Vec::new(),
        busy: std::time::Duration::ZERO,
    };
    loop {
        let batch = match rx.recv_timeout(IDLE_CHECK) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => batch,
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let t = std::time::Instant::now();
        let r = &mut done.resolver;
        for f in batch {
            if shared.stop.load(Ordering::Relaxed) {
                return Err("it was too far behind when the run ended".into());
            }
            let keys = &mut done.keys[usize::from(!f.follow)];
            let real = match keys.get(&f.path) {
                Some(real) => real,
                None => {
                    let res = r.resolve(&f.path, f.follow);
                    r.note_links(&res.links);
                    keys.entry(f.path).or_insert(res.path)
                }
            };
            // A new name's link count change goes to the file alone, not
            // to its directory's watch; a change through the new name
            // then goes only to the new name's directory.
            if f.op == Op::LinkFrom && f.errno == 0 {
                return Err(format!(
                    "the command gave {} another name",
                    crate::core::manifest::pathenc::encode(real)
                ));
            }
            let outcome = [(f.op, f.errno)];
            super::add_seen(r, real, (f.first, f.found), &outcome, &mut done.execs);
            done.outcomes += 1;
            shared.done.store(done.outcomes, Ordering::Relaxed);
        }
        // No directory held open between batches: the command may want
        // to unmount it (an inotify watch does not stand in the way).
        r.dir_fd = None;
        let watch = r.watch.as_mut().expect("watched while ahead");
        if let Some(why) = watch.check(|p| looked(&r.nodes, p)) {
            return Err(why.to_string());
        }
        done.busy += t.elapsed();
    }
    Ok(done)
}

impl Resolver {
    /// `lstat` of `path` while resolving ahead: relative to its directory,
    /// which is watched first, and with a watch of its own where the
    /// directory's does not see its changes.
    pub(super) fn look_watched(&mut self, path: &[u8], at: Option<(&[u8], &[u8])>) -> Option<Meta> {
        let w = self.watch.as_mut().expect("watched while ahead");
        let parts = at.or_else(|| {
            let cut = path.iter().rposition(|&b| b == b'/')?;
            Some((if cut == 0 { b"/" } else { &path[..cut] }, &path[cut + 1..]))
        });
        let (dir, name) = match parts {
            Some((dir, name)) if !name.is_empty() && path.len() < libc::PATH_MAX as usize => {
                (dir, name)
            }
            // `/` (watched from the start, but looked at through no
            // directory) and what the kernel refuses whole.
            _ => {
                w.unvetted(path);
                return lstat_host(path);
            }
        };
        let fresh = self.dir_fd.as_ref().is_none_or(|(d, _)| **d != *dir);
        let Some(fd) = open_dir(&mut self.dir_fd, dir) else {
            w.unvetted(path);
            return lstat_host(path);
        };
        if fresh {
            self.dir_watched = w.add(fd, dir);
        }
        let Ok(seen) = look_at(fd, name) else {
            w.spoil("the kernel does not say which directories are mount roots".into());
            return lstat_host(path);
        };
        let Some((meta, mount_root)) = seen else {
            if !self.dir_watched {
                w.unvetted(path);
            }
            return None;
        };
        if !self.dir_watched {
            w.unvetted(path);
            return Some(meta);
        }
        // A mount's root changes without its parent's hearing of it, and a
        // file with more names changes through them.
        let alone = mount_root || (meta.kind != Kind::Dir && meta.nlink > 1);
        if !alone {
            return Some(meta);
        }
        let own = meta.kind != Kind::Symlink
            && open_path(fd, name).is_ok_and(|o| w.add(std::os::fd::AsFd::as_fd(&o), path));
        if !own {
            w.unvetted(path);
            return Some(meta);
        }
        // Watched now: what is there now counts.
        match look_at(fd, name) {
            Ok(again) => again.map(|(m, _)| m),
            Err(()) => {
                w.unvetted(path);
                Some(meta)
            }
        }
    }
}
