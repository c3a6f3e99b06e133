//! The eBPF backend (`record --backend bpf`): the kernel hands every
//! recorded syscall of the command's process tree to a ring buffer, and
//! nothing stops. The same decode table and the same log rules as the
//! ptrace backend turn the events into the raw log.
//!
//! The command is started held, registered in the program's `traced` map,
//! and released; the program records from its first exec on (before that
//! the child is jailtrace's own code, as under ptrace, whose filter is
//! installed right before the exec). jailtrace is the child subreaper of
//! the tree, so every process of it, double-forked daemons included, is
//! reaped here: the recording ends when the last one has exited and the
//! ring buffer is drained. See docs/design.md.

mod abi;
pub mod btf;
mod cache;
mod event;
mod load;
mod sys;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::arch::{self, Sys};
use super::decode;
use super::ends::{self, Ends};
use super::log::{real_beneath, record_call, rewrite_proc, unrooted, Call, Item, RawLog};
use super::{operand, progress, signals};
use super::{Backend, Launch, Recording, Stats, TraceError, TraceOptions};
use crate::core::manifest::{Born, Op};
use event::{Event, Record};

/// The eBPF backend: needs root (CAP_BPF and CAP_PERFMON) and a kernel
/// with BTF; nothing stops, so long recordings cost little.
pub struct Bpf;

impl Backend for Bpf {
    fn record(&self, launch: Launch, opts: &TraceOptions) -> Result<Recording, TraceError> {
        if let Some(why) = load::unavailable() {
            return Err(TraceError::Unavailable(why));
        }
        let started = Instant::now();
        let loaded = load::load().map_err(TraceError::Unavailable)?;
        let startup = started.elapsed();
        record(loaded, launch, opts, startup)
    }
}

/// jailtrace as the child subreaper for as long as a recording lasts
/// (`verify` records several times, and goes on after).
struct Subreaper;

impl Subreaper {
    fn new() -> Result<Subreaper, TraceError> {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| TraceError::Internal(format!("PR_SET_CHILD_SUBREAPER: {e}")))?;
        Ok(Subreaper)
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        let _ = nix::sys::prctl::set_child_subreaper(false);
    }
}

/// The state of one recording.
struct Recorder<'a> {
    opts: &'a TraceOptions,
    log: RawLog,
    warnings: BTreeSet<String>,
    stats: Stats,
    /// Every task id and thread group id seen, for `/proc/<pid>`.
    ids: HashSet<i32>,
    /// Thread groups alive, for signals.
    groups: BTreeSet<i32>,
    creds: (BTreeSet<u32>, BTreeSet<u32>),
    /// See [`Recording::privileged_bind`].
    privileged_bind: bool,
    /// Items a thread sent for the syscall it is finishing.
    pending: std::collections::HashMap<u32, Event>,
    /// Records that arrived malformed or incomplete: lost like the
    /// program's own counts.
    lost_here: u64,
    /// Whether renames say if they made their target (`Loaded`), and how
    /// many renames onto untouched names were taken as inputs without it.
    renames_seen: bool,
    unseen_renames: u64,
    /// The root directory of each thread group that chrooted (or whose
    /// parent had), as the program names its paths: an absolute path it
    /// uses names a file beneath it.
    roots: std::collections::HashMap<u32, Vec<u8>>,
    /// Accesses in a mount namespace of the program's own (changed, or
    /// entered with setns) that named something else than the host's
    /// path, and those that nothing could check: not recorded.
    foreign: u64,
    unchecked: u64,
    /// The root directory of the first exec as the program walks it (up
    /// to the namespace's root): what lies above it in a walked path is
    /// not the program's (jailtrace itself in a chroot; the jail `verify`
    /// runs in). `None` until it is known, or when it is `/`.
    walk_root: Option<Vec<u8>>,
}

fn record(
    mut loaded: load::Loaded,
    launch: Launch,
    opts: &TraceOptions,
    startup: std::time::Duration,
) -> Result<Recording, TraceError> {
    // Orphans of the tree come to jailtrace, so that waiting for them all
    // is waiting for the tree.
    let _subreaper = Subreaper::new()?;
    let handlers = signals::install_signal_handlers()
        .map_err(|e| TraceError::Internal(format!("signal handlers: {e}")))?;
    let child = start(&mut loaded, launch, handlers.ignored())?;
    let root = child.pid;
    let mut r = Recorder {
        opts,
        log: RawLog::default(),
        warnings: BTreeSet::new(),
        stats: Stats {
            processes: 1,
            syscalls: 0,
        },
        ids: HashSet::from([root.as_raw()]),
        groups: BTreeSet::from([root.as_raw()]),
        creds: (BTreeSet::new(), BTreeSet::new()),
        privileged_bind: false,
        pending: std::collections::HashMap::new(),
        lost_here: 0,
        renames_seen: loaded.renames_seen,
        unseen_renames: 0,
        roots: std::collections::HashMap::new(),
        foreign: 0,
        unchecked: 0,
        walk_root: None,
    };
    if opts.fresh.is_some() {
        r.log.keep_fresh();
    }
    let mut ends = Ends::new(opts.timeout, opts.grace);
    let mut tree = Tree::default();
    let mut progress = opts.progress.then(progress::Progress::new);
    if let Some(p) = &progress {
        p.draw(r.progress_line());
    }
    loop {
        let groups = &r.groups;
        let polled = ends.poll(tree.status.is_some(), &mut r.warnings, |sig| {
            kill_all(groups, sig);
        });
        if polled.stop {
            // Nothing is traced by ptrace: the terminal stopped the
            // command with jailtrace's process group; stop jailtrace too.
            match &progress {
                Some(p) => p.suspend(signals::stop_self),
                None => signals::stop_self(),
            }
        }
        // Nothing new: a 1 ms nap (no event stops the program, so this
        // only delays jailtrace's reading, and its noticing the end).
        if r.drain(&mut loaded.events) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        r.send_fresh();
        let done = tree.reap(&mut r, root);
        if let Some(p) = progress.as_mut() {
            p.tick(|| r.progress_line());
        }
        if done {
            // Every event of the tree was written before its last task
            // exited.
            r.drain(&mut loaded.events);
            r.send_fresh();
            break;
        }
    }
    signals::set_forward_target(None);
    if let Some(p) = &progress {
        p.finish();
    }
    let _ = signals::take_signals();
    drop(handlers);

    let lost = r.losses(&loaded);
    let mut timings = std::mem::take(&mut loaded.timings);
    timings.push(format!(
        "bpf start-up {:.3} s, {} syscalls, {} processes",
        startup.as_secs_f64(),
        r.stats.syscalls,
        r.stats.processes
    ));
    Ok(Recording {
        log: r.log,
        exit_status: tree.status,
        killed_by: tree.signal,
        start_failure: child.failure(),
        warnings: r.warnings,
        stats: r.stats,
        set_uids: r.creds.0,
        set_gids: r.creds.1,
        privileged_bind: r.privileged_bind,
        internal_error: None,
        lost,
        timings,
    })
}

/// Spawns the command held, registers it with the program, releases it.
fn start(
    loaded: &mut load::Loaded,
    launch: Launch,
    ignored: Vec<libc::c_int>,
) -> Result<crate::core::launch::Child, TraceError> {
    let spec = crate::core::launch::ChildSpec {
        launch,
        hold: true,
        mask: None,
        filter: None,
        no_new_privs: false,
        child_affinity: None,
        ignored,
    };
    let child = crate::core::launch::spawn(&spec).map_err(TraceError::Spawn)?;
    let root = child.pid;
    if let Err(e) = loaded.traced.insert(root.as_raw() as u32, load::ARMED, 0) {
        let _ = signals::kill(root, libc::SIGKILL);
        let _ = waitpid(root, None);
        return Err(TraceError::Internal(format!(
            "cannot register the command: {e}"
        )));
    }
    signals::set_forward_target(Some(root));
    child
        .release()
        .map_err(|e| TraceError::Internal(format!("cannot release the child: {e}")))?;
    Ok(child)
}

/// How the command's tree has ended so far: the command's status.
#[derive(Default)]
struct Tree {
    status: Option<i32>,
    signal: Option<i32>,
}

impl Tree {
    /// Reaps what has exited (jailtrace is the tree's subreaper); true
    /// once nothing is left.
    fn reap(&mut self, r: &mut Recorder<'_>, root: Pid) -> bool {
        loop {
            match waitpid(
                Pid::from_raw(-1),
                Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
            ) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    if pid == root {
                        self.status = Some(code);
                        signals::set_forward_target(None);
                    }
                    r.groups.remove(&pid.as_raw());
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    if pid == root {
                        self.status = Some(128 + sig as i32);
                        self.signal = Some(sig as i32);
                        signals::set_forward_target(None);
                    }
                    r.groups.remove(&pid.as_raw());
                }
                Ok(WaitStatus::StillAlive) => return false,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return true,
            }
        }
    }
}

impl Recorder<'_> {
    fn progress_line(&self) -> String {
        format!(
            "tracing (bpf): {} processes, {} syscalls, {} paths",
            self.stats.processes,
            self.stats.syscalls,
            self.log.len()
        )
    }

    /// What the program counted as lost, and what arrived broken here: the
    /// warnings, and the total.
    fn losses(&mut self, loaded: &load::Loaded) -> u64 {
        if loaded.x32_calls() > 0 {
            self.warnings.insert(ends::X32.into());
        }
        let mut lost = loaded.lost();
        // Test hook: the loss policy, without having to overrun the kernel.
        if std::env::var("JAILTRACE_FAILPOINT").as_deref() == Ok("bpf-lost") {
            lost[0] += 1;
        }
        if self.unseen_renames > 0 {
            self.warnings.insert(format!(
                "this kernel has no kprobes (CONFIG_KPROBES), so the bpf backend cannot tell whether a \
                 rename replaced its target: {} renames onto names the run had not touched were \
                 taken as inputs (--backend ptrace tells)",
                self.unseen_renames
            ));
        }
        if self.foreign > 0 {
            self.warnings.insert(ends::foreign_ns(self.foreign));
        }
        if self.unchecked > 0 {
            self.warnings.insert(format!(
                "incomplete recording (bpf): {} accesses in a mount namespace of the program's own \
                 (one that changed a mount, or that it entered with setns) could not be checked \
                 against the host, which only opens, execs and pivot_root allow here; they are not \
                 recorded (--backend ptrace checks every path)",
                self.unchecked
            ));
        }
        let in_kernel: u64 = lost.iter().sum();
        if in_kernel > 0 {
            let what: Vec<String> = lost
                .iter()
                .zip(load::LOST_NAMES)
                .filter(|(n, _)| **n > 0)
                .map(|(n, name)| format!("{n} {name}"))
                .collect();
            self.warnings.insert(format!(
                "incomplete recording (bpf): {}; accesses may be missing",
                what.join(", ")
            ));
        }
        in_kernel + self.lost_here + self.foreign + self.unchecked
    }

    /// Sends the log's new keys on, if anything wants them.
    fn send_fresh(&mut self) {
        if let Some(tx) = &self.opts.fresh {
            let fresh = self.log.take_fresh();
            // A receiver gone or too far behind has given up: it is sent
            // nothing more (it knows what it did not get), and the log
            // keeps no more copies for it. Nothing recorded is lost.
            if !fresh.is_empty() && tx.try_send(fresh).is_err() {
                self.log.stop_fresh();
            }
        }
    }

    /// Handles every event in the ring buffer; returns how many.
    fn drain(&mut self, ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> usize {
        let mut n = 0;
        while let Some(item) = ring.next() {
            n += 1;
            match Record::parse(&item) {
                Some(Record::Item { tid, item }) => {
                    self.pending.entry(tid).or_default().add(&item);
                }
                Some(Record::Event(mut e)) => {
                    let pending = self.pending.remove(&e.tid);
                    let got = pending.as_ref().map_or(0, |p| p.nitems) + e.nitems;
                    if e.kind == event::E_SYSCALL && got != e.sent {
                        self.lost_here += 1;
                        self.warnings.insert(
                            "incomplete recording (bpf): a syscall's captured operands did not all arrive".into(),
                        );
                    }
                    if let Some(p) = pending {
                        e.strings.extend(p.strings);
                        e.bases.extend(p.bases);
                        e.bytes.extend(p.bytes);
                        e.fd_paths.extend(p.fd_paths);
                        e.idents.extend(p.idents);
                        if !p.creds.is_empty() {
                            e.creds = p.creds;
                        }
                    }
                    self.event(&e);
                }
                None => {
                    self.lost_here += 1;
                    self.warnings
                        .insert("incomplete recording (bpf): a malformed event was dropped".into());
                }
            }
        }
        n
    }

    fn event(&mut self, e: &Event) {
        match e.kind {
            event::E_FORK => {
                // A new process starts in its parent's root (`ret`).
                match self.roots.get(&(e.ret as u32)).cloned() {
                    Some(root) => self.roots.insert(e.tgid, root),
                    None => self.roots.remove(&e.tgid),
                };
                self.stats.processes += 1;
                self.ids.insert(e.tid as i32);
                self.ids.insert(e.tgid as i32);
                self.groups.insert(e.tgid as i32);
            }
            event::E_SYSCALL => self.syscall(e),
            event::E_ROOT => {
                if let Some(root) = e.base(0).filter(|r| *r != b"/") {
                    self.walk_root.get_or_insert_with(|| root.to_vec());
                }
            }
            _ => {}
        }
    }

    fn syscall(&mut self, e: &Event) {
        self.stats.syscalls += 1;
        let audit = if e.compat {
            arch::AUDIT_ARCH_I386
        } else {
            arch::AUDIT_ARCH_X86_64
        };
        let Some(call) = arch::lookup(audit, u64::from(e.nr)) else {
            return;
        };
        if e.compat && !self.warnings.contains(ends::I386) {
            self.warnings.insert(ends::I386.into());
        }
        let errno = if e.ret < 0 { -e.ret as i32 } else { 0 };
        match call {
            Sys::SetId => {
                if errno == 0 && e.creds.len() >= 8 {
                    self.creds.0.extend(&e.creds[..4]);
                    self.creds.1.extend(&e.creds[4..]);
                }
                return;
            }
            Sys::IoUringSetup => {
                self.warnings.insert(ends::IO_URING.into());
                return;
            }
            Sys::SchedGetaffinity | Sys::Umount | Sys::Unshare | Sys::Setns => return,
            _ => {}
        }
        let mut items: Vec<Item> = Vec::new();
        for u in decode::decode(call, &e.args).into_iter().flatten() {
            let mut src = Captured { r: self, e };
            operand::read(&mut src, &u, &mut items);
            if operand::bound_port(&mut src, &u).is_some_and(|p| p < 1024) {
                self.privileged_bind = true;
            }
        }
        if e.foreign_ns {
            self.keep_same_objects(e, &mut items);
        }
        if items.is_empty() {
            return;
        }
        // What was there before the call, for the paths a call may create
        // (asked only at a path's first touch).
        let found: Vec<Option<bool>> = items
            .iter()
            .map(|(path, follow, ops)| {
                let creates = ops.iter().any(Op::creates);
                if !creates || errno != 0 || self.log.contains(path, *follow) {
                    return None;
                }
                let born = |b: Born| ops.iter().any(|o| o.meaning().creates == Some(b));
                Some(if born(Born::CreateFlag) {
                    // O_CREAT: the kernel marks the file it created.
                    !e.created
                } else if born(Born::RenameTarget) {
                    // The kernel's lookup of the target, seen in
                    // security_inode_rename; unseen, the object there
                    // now is taken as an input, and the manifest says so.
                    // (Only a name untouched in either sense counts: an
                    // earlier open decides found or created by itself.)
                    if !self.renames_seen && !self.log.contains(path, !*follow) {
                        self.unseen_renames += 1;
                    }
                    !self.renames_seen || !e.rename_made_target
                } else {
                    // Born::FailsIfExists: made by the success.
                    false
                })
            })
            .collect();
        let new_root = (matches!(call, Sys::Chroot | Sys::PivotRoot) && errno == 0)
            .then(|| items.first().map(|i| i.0.clone()))
            .flatten();
        record_call(
            &mut self.log,
            self.opts.root.as_deref(),
            Call {
                items,
                found: &found,
                errno,
            },
        );
        if let Some(root) = new_root {
            self.chrooted(e.tgid, root);
        }
    }

    /// Keeps, of the paths a thread used in another mount namespace than
    /// the program's, those that name on the host the very objects the
    /// kernel used (`Event::idents`), and in an unchanged copy of it those
    /// with no object to compare; counts the rest.
    fn keep_same_objects(&mut self, e: &Event, items: &mut Vec<Item>) {
        // (0, 0): an exec that ran an interpreter, whose file named shows
        // no object; nothing to compare, in a copy too.
        if e.idents.contains(&(0, 0)) || (e.idents.is_empty() && !e.copy_ns) {
            self.unchecked += items.len() as u64;
            items.clear();
            return;
        }
        if e.idents.is_empty() {
            return;
        }
        let root = self.opts.root.as_deref();
        let (mut foreign, mut unchecked) = (0, 0);
        items.retain(|(path, _, _)| match on_host(root, path, &e.idents) {
            OnHost::Same => true,
            OnHost::Other => {
                foreign += 1;
                false
            }
            // Gone since the call (a file made and removed meanwhile):
            // as named in an unchanged copy, else unknown.
            OnHost::Gone => {
                if !e.copy_ns {
                    unchecked += 1;
                }
                e.copy_ns
            }
        });
        self.foreign += foreign;
        self.unchecked += unchecked;
    }

    /// Thread group `tgid` changed its root to `path` (as it named it,
    /// made absolute): the real path, as the kernel resolved it, is its
    /// new root. One the host cannot show now is taken as named, and
    /// counted as a loss.
    fn chrooted(&mut self, tgid: u32, path: Vec<u8>) {
        let root = match real_beneath(self.opts.root.as_deref(), &path) {
            Some(real) => real,
            None => {
                self.lost_here += 1;
                self.warnings.insert(
                    "incomplete recording (bpf): a chroot's new root could not be read on the \
                     host; the paths used beneath it may be placed wrongly"
                        .into(),
                );
                path
            }
        };
        if root == b"/" {
            self.roots.remove(&tgid);
        } else {
            self.roots.insert(tgid, root);
        }
    }

    /// `p` made absolute against the base the program walked at entry.
    /// A path operand without one had a bad dirfd (EBADF): no path, as
    /// under ptrace.
    fn absolute(&self, e: &Event, dirfd: i32, p: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(p.len() + 64);
        if p.first() != Some(&b'/') {
            let base = e.base(dirfd)?;
            out.extend_from_slice(unrooted(self.walked_from(), base));
            if out.last() != Some(&b'/') {
                out.push(b'/');
            }
        } else if let Some(root) = (!self.roots.is_empty())
            .then(|| self.roots.get(&e.tgid))
            .flatten()
        {
            // Beneath the root the program chrooted into.
            out.extend_from_slice(root);
        }
        out.extend_from_slice(p);
        let ids = &self.ids;
        rewrite_proc(&mut out, |id| ids.contains(&id));
        Some(out)
    }

    /// An AF_UNIX name made absolute. The program walks the cwd at entry
    /// when a name is relative then; one relative only at exit (changed,
    /// or unreadable at entry) cannot be placed, and is counted as lost.
    fn socket_path(&mut self, e: &Event, p: &[u8]) -> Option<Vec<u8>> {
        let abs = self.absolute(e, libc::AT_FDCWD, p);
        if abs.is_none() {
            self.lost_here += 1;
            self.warnings.insert(
                "incomplete recording (bpf): a relative AF_UNIX socket name had no working directory taken at the call's entry".into(),
            );
        }
        abs
    }

    /// A walked host path, as the (possibly chrooted) program sees it.
    fn unroot(&self, p: &[u8]) -> Vec<u8> {
        unrooted(self.walked_from(), p).to_vec()
    }

    /// What to take off a walked path: the first exec's root as walked,
    /// else the jail's (`verify`), which it is unless jailtrace itself is
    /// in a chroot.
    fn walked_from(&self) -> Option<&[u8]> {
        self.walk_root.as_deref().or(self.opts.root.as_deref())
    }
}

/// One event's captured bytes, as the operand interpreter reads them.
struct Captured<'r, 'o, 'e> {
    r: &'r mut Recorder<'o>,
    e: &'e Event,
}

impl<'e> operand::Source<'e> for Captured<'_, '_, 'e> {
    fn path(&mut self, addr: u64, dirfd: i32, ops: decode::Ops) -> Option<Cow<'e, [u8]>> {
        let mut p = self.e.string(addr)?;
        // A successful execveat's path is the kernel's copy, which names a
        // dirfd-relative path /dev/fd/N/PATH.
        if self.e.ret == 0 && dirfd != libc::AT_FDCWD && ops.iter().any(|o| o == Op::Exec) {
            let prefix = format!("/dev/fd/{dirfd}");
            if let Some(rest) = p.strip_prefix(prefix.as_bytes()) {
                match rest.first() {
                    None => p = rest,
                    Some(b'/') => p = &rest[1..],
                    Some(_) => {}
                }
            }
        }
        Some(Cow::Borrowed(p))
    }

    fn u64_at(&mut self, addr: u64) -> Option<u64> {
        self.e.u64_at(addr)
    }

    fn bytes(&mut self, addr: u64, len: u64) -> Option<Cow<'e, [u8]>> {
        self.e.mem(addr, len).map(Cow::Borrowed)
    }

    fn absolute(&mut self, dirfd: i32, p: &[u8]) -> Option<Vec<u8>> {
        self.r.absolute(self.e, dirfd, p)
    }

    fn socket_absolute(&mut self, p: &[u8]) -> Option<Vec<u8>> {
        self.r.socket_path(self.e, p)
    }

    fn fd(&mut self, fd: i32) -> Option<Vec<u8>> {
        self.e.fd_path(i64::from(fd)).map(|p| self.r.unroot(p))
    }

    fn dirfd_file(&mut self, dirfd: i32) -> Option<Vec<u8>> {
        self.e.base(dirfd).map(|b| self.r.unroot(b))
    }

    fn returned_fd(&mut self) -> Option<Vec<u8>> {
        let ret = self.e.ret;
        (ret >= 0)
            .then(|| self.e.fd_path(ret))
            .flatten()
            .map(|p| self.r.unroot(p))
    }

    fn max_messages(&self) -> u64 {
        load::MAX_MSGS
    }
}

/// What host path `path` (beneath `root`, for a jail) names now, against
/// `objects`, the kernel's (device, inode) pairs of the call.
enum OnHost {
    /// One of them: itself, or where it leads.
    Same,
    /// Something else.
    Other,
    /// Nothing.
    Gone,
}

fn on_host(root: Option<&[u8]>, path: &[u8], objects: &[(u64, u64)]) -> OnHost {
    use std::os::unix::ffi::OsStrExt;
    let mut host = root.map(<[u8]>::to_vec).unwrap_or_default();
    host.extend_from_slice(path);
    let host = std::ffi::OsStr::from_bytes(&host);
    // The kernel's dev_t: major in the bits above 20, minor below. (On a
    // btrfs subvolume, stat's device is the subvolume's, not the super
    // block's: such a path is Other, a loss, never a wrong record.)
    let kernel_dev = |dev: u64| (dev >> 20, dev & 0xf_ffff);
    let seen = [nix::sys::stat::lstat(host), nix::sys::stat::stat(host)];
    if seen.iter().all(Result::is_err) {
        return OnHost::Gone;
    }
    let same = seen.iter().flatten().any(|st| {
        let dev = (
            nix::sys::stat::major(st.st_dev),
            nix::sys::stat::minor(st.st_dev),
        );
        objects
            .iter()
            .any(|&(d, ino)| kernel_dev(d) == dev && ino == st.st_ino)
    });
    if same {
        OnHost::Same
    } else {
        OnHost::Other
    }
}

/// Sends `sig` to every thread group of the tree.
fn kill_all(groups: &BTreeSet<i32>, sig: i32) {
    for &g in groups {
        let _ = signals::kill(Pid::from_raw(g), sig);
    }
}
