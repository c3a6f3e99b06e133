//! The ptrace engine: spawns the command under `PTRACE_SEIZE` with a
//! seccomp filter, follows every process and thread, and logs each path
//! access with its outcome.
//!
//! Only the syscalls in [`arch`] stop the tracee (seccomp `RET_TRACE`). At
//! that stop the path operands are read and made absolute against the
//! tracee's cwd or dirfd as it is at that moment; the tracee is then resumed
//! to its syscall-exit stop, where the outcome is attached. Path resolution
//! against the host file system happens once per unique path, after the
//! trace (see `crate::core::resolve`).

pub mod arch;
pub mod bpf;
pub mod decode;
mod dirfd;
mod mem;
mod placement;
mod progress;
pub mod seccomp;
mod sys;
mod task;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::unistd::Pid;

pub use crate::core::launch::Launch;
use crate::core::manifest::Op;
use arch::Sys;
use decode::{Operand, Use};
use dirfd::DirfdCache;
use task::{Item, Pending, Task};

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
        }
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

/// Where the tracer and its tracees run. Every ptrace stop is a round trip
/// between tracee and tracer; when they sit on different CPUs each trip
/// costs a cross-CPU wake-up. See docs/performance.md for measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Pin the tracer and the whole command to the CPU jailtrace starts on.
    /// The fastest on every measured workload, parallel builds included:
    /// the tracer serialises the command's path syscalls anyway. The
    /// command still sees its original CPU mask, because the tracer
    /// rewrites the result of sched_getaffinity (what nproc, Go and Java
    /// read); only its scheduling is confined.
    Same,
    /// Pin the tracer to one CPU and leave the command's CPUs unchanged.
    Tracer,
    /// Change nothing.
    None,
}

pub struct TraceOptions {
    /// CPU placement of tracer and tracees.
    pub placement: Placement,
    /// Send SIGTERM to every traced process after this long.
    pub timeout: Option<Duration>,
    /// After SIGTERM (from the timeout or a third signal), wait this long
    /// before SIGKILL.
    pub grace: Duration,
    /// Show a live progress line on stderr.
    pub progress: bool,
    /// The root directory of the tracees when they run chrooted (`verify`):
    /// paths read back from /proc (cwd, descriptors) are host paths and get
    /// this prefix removed, so that every recorded path is as the tracee
    /// sees it.
    pub root: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub processes: u64,
    pub syscalls: u64,
}

pub struct Recording {
    pub log: RawLog,
    /// The command's exit status as a shell reports it.
    pub exit_status: Option<i32>,
    /// The signal that killed the command, if one did.
    pub killed_by: Option<i32>,
    /// Set when the command could not be started.
    pub start_failure: Option<crate::core::launch::ChildError>,
    pub warnings: BTreeSet<String>,
    pub stats: Stats,
    /// Every user and group id a traced thread held after a successful
    /// set*id call (real, effective, saved, file system; supplementary
    /// groups too).
    pub set_uids: BTreeSet<u32>,
    pub set_gids: BTreeSet<u32>,
    /// The tracer failed mid-trace (a bug): every tracee was killed, and the
    /// log holds what was seen until then.
    pub internal_error: Option<String>,
    /// How much the engine knows it lost (events, strings, reads); the
    /// warnings say what. Always 0 for ptrace, which stops instead.
    pub lost: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("ptrace is not permitted here ({0}): a container's seccomp policy, missing CAP_SYS_PTRACE, or Yama (kernel.yama.ptrace_scope) forbids it")]
    PtraceDenied(Errno),
    #[error("cannot start the command: {0}")]
    Spawn(Errno),
    #[error("tracing failed: {0}")]
    Internal(String),
    #[error("the bpf backend is not available: {0}; use --backend ptrace")]
    Unavailable(String),
}

/// Kernel-internal restart codes, seen only by a tracer.
const ERESTARTSYS: i32 = 512;
const ERESTARTNOINTR: i32 = 513;
const ERESTARTNOHAND: i32 = 514;
const ERESTART_RESTARTBLOCK: i32 = 516;

const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESECCOMP
    // If jailtrace dies, its tracees die too: left running, every filtered
    // syscall would fail with ENOSYS (seccomp RET_TRACE without a tracer).
    | libc::PTRACE_O_EXITKILL;

/// How a trace is being ended: jailtrace's signals, the timeout, job
/// control.
#[derive(Default)]
struct Ends {
    /// When SIGTERM went to every tracee (the timeout, or a third signal).
    term_sent: Option<Instant>,
    /// SIGKILL went to every tracee.
    killed: bool,
    signals_received: u32,
    deadline: Option<Instant>,
    /// SIGTSTP received: stop jailtrace too once every tracee has stopped,
    /// so that the shell sees the job stopped, as it would untraced.
    stop_requested: bool,
}

struct Tracer<'a> {
    opts: &'a TraceOptions,
    tasks: HashMap<Pid, Task>,
    root: Pid,
    root_status: Option<i32>,
    /// The signal that killed the command, if one did.
    root_signal: Option<i32>,
    log: RawLog,
    warnings: BTreeSet<String>,
    stats: Stats,
    /// Signals to jailtrace, the timeout, and what they led to.
    ends: Ends,
    progress: Option<progress::Progress>,
    dirfds: DirfdCache,
    /// With `--cpu same`: the command's original CPU mask, as the bytes
    /// sched_getaffinity returns.
    virtual_mask: Option<Vec<u8>>,
    /// See [`Recording::set_uids`]: (user ids, group ids).
    ids: (BTreeSet<u32>, BTreeSet<u32>),
    /// The i386 warning is given once, not built on every syscall.
    i386_seen: bool,
    /// Accesses relative to a working directory or descriptor whose path
    /// the host cannot show (deeper than PATH_MAX, deleted, or not
    /// reachable from jailtrace's root): not recorded, and a loss.
    unresolved: u64,
    /// The mount namespace (inode of /proc/PID/ns/mnt) the command's first
    /// exec ran in: a thread in another one names paths the host may not
    /// have.
    home_ns: Option<u64>,
    /// Accesses in another mount namespace whose path names something else
    /// on the host: not recorded, and a loss.
    foreign: u64,
    /// Test hook (`JAILTRACE_FAILPOINT=panic-after:N`): panic at the Nth
    /// recorded syscall, to exercise the internal-error policy.
    failpoint: Option<u64>,
}

/// The seam between the commands and a tracing engine. `record` and
/// `verify` use an engine only through this; what it yields, a
/// [`Recording`], is all that resolution, the manifest and the commands
/// see: the raw log (each path as the program named it, already made
/// absolute against the cwd or dirfd the kernel used at that moment, with
/// whether its last symlink is followed, the operations and their
/// outcomes, and what was there at the first touch), the command's exit,
/// warnings, and the ids it switched to. ptrace is one backend; another
/// (eBPF) plugs in beside it without touching resolve, manifest or the
/// commands. See docs/design.md.
pub trait Backend {
    /// Starts the command as `launch` says, held until it is being
    /// recorded, and records it and everything it starts until the last of
    /// them has exited.
    fn record(&self, launch: Launch, opts: &TraceOptions) -> Result<Recording, TraceError>;
}

/// The engines, by name, for options that pick one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// [`Ptrace`], the default.
    #[default]
    Ptrace,
    /// [`bpf::Bpf`].
    Bpf,
}

impl Engine {
    pub fn backend(self) -> &'static dyn Backend {
        match self {
            Engine::Ptrace => &Ptrace,
            Engine::Bpf => &bpf::Bpf,
        }
    }
}

/// The ptrace backend: works without root and inside ordinary containers.
pub struct Ptrace;

impl Backend for Ptrace {
    fn record(&self, launch: Launch, opts: &TraceOptions) -> Result<Recording, TraceError> {
        record(launch, opts)
    }
}

/// Runs the command under the tracer until every traced process has exited.
fn record(launch: Launch, opts: &TraceOptions) -> Result<Recording, TraceError> {
    let placed = placement::Placed::new(opts.placement);
    let spec = crate::core::launch::ChildSpec {
        launch,
        hold: true,
        mask: None,
        filter: Some(seccomp::filter()),
        no_new_privs: !has_cap_sys_admin(),
        child_affinity: placed.child_affinity(),
    };
    // Restored when this function returns: hashing, saving and verify's
    // later rounds must stay interruptible.
    let handlers = sys::install_signal_handlers()
        .map_err(|e| TraceError::Internal(format!("signal handlers: {e}")))?;
    let child = crate::core::launch::spawn(&spec).map_err(TraceError::Spawn)?;
    if let Err(e) = sys::seize(child.pid, OPTIONS) {
        let _ = sys::kill(child.pid, libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(child.pid, None);
        return Err(match e {
            Errno::EPERM | Errno::EACCES => TraceError::PtraceDenied(e),
            e => TraceError::Internal(format!("PTRACE_SEIZE: {e}")),
        });
    }
    sys::set_forward_target(Some(child.pid));
    child
        .release()
        .map_err(|e| TraceError::Internal(format!("cannot release the child: {e}")))?;

    let mut t = Tracer::new(opts, child.pid, placed.virtual_mask());
    if opts.timeout.is_some() {
        let _ = sys::set_alarm(100);
    }
    let internal_error = t.run_guarded();
    let _ = sys::set_alarm(0);
    sys::set_forward_target(None);
    if let Some(p) = &t.progress {
        p.finish();
    }
    placed.restore();
    // From here on signals act on jailtrace itself (resolution, hashing and
    // saving stay interruptible). One that arrived while the last tracee
    // was exiting was meant for the command, and is dropped rather than
    // allowed to lose the manifest.
    let _ = sys::take_signals();
    drop(handlers);
    let start_failure = child.failure();
    if t.foreign > 0 {
        t.warnings.insert(foreign_ns_warning(t.foreign));
    }
    if t.unresolved > 0 {
        t.warnings.insert(format!(
            "incomplete recording: {} accesses are relative to a working directory or \
             descriptor whose path the host cannot show (deeper than PATH_MAX, deleted, or in a \
             mount jailtrace does not see); their paths are not recorded",
            t.unresolved
        ));
    }
    Ok(Recording {
        log: t.log,
        exit_status: t.root_status,
        killed_by: t.root_signal,
        start_failure,
        warnings: t.warnings,
        stats: t.stats,
        set_uids: t.ids.0,
        set_gids: t.ids.1,
        internal_error,
        lost: t.unresolved + t.foreign,
    })
}

/// Whether `path`, as thread `pid` names it in its own mount namespace
/// (through /proc/PID/root), is what the host has there (beneath `root`
/// for a jailed command): the same object, or nothing in both.
fn same_on_host(root: Option<&[u8]>, pid: i32, path: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let mut inside = format!("/proc/{pid}/root").into_bytes();
    // A thread gone since cannot be asked: unknown.
    if nix::sys::stat::stat(std::ffi::OsStr::from_bytes(&inside)).is_err() {
        return false;
    }
    inside.extend_from_slice(path);
    let mut host = root.map(<[u8]>::to_vec).unwrap_or_default();
    host.extend_from_slice(path);
    let look = |p: &[u8]| nix::sys::stat::lstat(std::ffi::OsStr::from_bytes(p));
    match (look(&inside), look(&host)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

/// The warning for accesses dropped by [`same_on_host`].
fn foreign_ns_warning(n: u64) -> String {
    format!(
        "incomplete recording: {n} accesses in a mount namespace of the program's own name paths \
         that are something else on the host (a bind mount, another tree); they are not recorded"
    )
}

/// The mount namespace of a thread: the inode of /proc/PID/ns/mnt.
fn mount_ns(pid: Pid) -> Option<u64> {
    nix::sys::stat::stat(format!("/proc/{pid}/ns/mnt").as_str())
        .ok()
        .map(|s| s.st_ino)
}

fn has_cap_sys_admin() -> bool {
    procfs::process::Process::myself()
        .and_then(|p| p.status())
        // CAP_SYS_ADMIN is capability 21.
        .is_ok_and(|s| s.capeff & (1 << 21) != 0)
}

impl<'a> Tracer<'a> {
    fn new(opts: &'a TraceOptions, root: Pid, virtual_mask: Option<Vec<u8>>) -> Tracer<'a> {
        let mut t = Tracer {
            opts,
            tasks: HashMap::new(),
            root,
            root_status: None,
            root_signal: None,
            log: RawLog::default(),
            warnings: BTreeSet::new(),
            stats: Stats::default(),
            ids: (BTreeSet::new(), BTreeSet::new()),
            ends: Ends {
                deadline: opts.timeout.map(|d| Instant::now() + d),
                ..Ends::default()
            },
            progress: None,
            virtual_mask,
            i386_seen: false,
            unresolved: 0,
            home_ns: None,
            foreign: 0,
            dirfds: DirfdCache::new(),
            failpoint: std::env::var("JAILTRACE_FAILPOINT")
                .ok()
                .and_then(|v| v.strip_prefix("panic-after:")?.parse().ok()),
        };
        t.tasks.insert(root, Task::new(root));
        t.stats.processes = 1;
        if opts.progress {
            let p = progress::Progress::new();
            p.draw(t.progress_line());
            t.progress = Some(p);
        }
        t
    }

    /// Runs the loop. Policy on an internal error (a panic in the loop):
    /// kill every tracee, reap them, and still hand back what was seen, with
    /// the panic's message. Tracees are never left stopped;
    /// PTRACE_O_EXITKILL covers jailtrace dying outright.
    fn run_guarded(&mut self) -> Option<String> {
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run())).err()?;
        let msg = panic
            .downcast_ref::<&str>()
            .map(std::string::ToString::to_string)
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        self.kill_all(libc::SIGKILL);
        // Reap everything, killing also tracees the loop never registered
        // (a child in its first stop).
        loop {
            match sys::wait_any() {
                Ok(w) if !w.stop.is_end() && w.stop != sys::Stop::Other => {
                    let _ = sys::kill(w.pid, libc::SIGKILL);
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        self.warnings.insert(format!(
            "incomplete recording: internal tracer error ({msg}); traced processes were killed"
        ));
        Some(msg)
    }

    fn run(&mut self) {
        loop {
            self.handle_signals_and_deadlines();
            let w = match sys::wait_any() {
                Ok(w) => w,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => break,
                Err(e) => {
                    self.warnings
                        .insert(format!("waitpid failed: {e}; tracees were killed"));
                    self.kill_all(libc::SIGKILL);
                    break;
                }
            };
            self.handle(w);
            if let Some(mut p) = self.progress.take() {
                p.tick(|| self.progress_line());
                self.progress = Some(p);
            }
        }
    }

    fn progress_line(&self) -> String {
        format!(
            "tracing: {} processes, {} syscalls, {} paths",
            self.stats.processes,
            self.stats.syscalls,
            self.log.len()
        )
    }

    fn handle_signals_and_deadlines(&mut self) {
        let sigs = sys::take_signals();
        let forwardable = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];
        for sig in forwardable {
            if sigs & (1 << sig) == 0 {
                continue;
            }
            self.ends.signals_received += 1;
            // The handler already forwarded it to the command if it lives.
            // If the command is gone (a daemon that forked away), pass it to
            // every traced process instead.
            if self.root_status.is_some() {
                self.kill_all(sig);
            }
            if self.ends.signals_received >= 3 && !self.ends.killed {
                self.warnings.insert(
                    "jailtrace was interrupted three times: traced processes were killed".into(),
                );
                self.kill_all(libc::SIGKILL);
                self.ends.killed = true;
            }
        }
        if sigs & (1 << libc::SIGTSTP) != 0 {
            self.ends.stop_requested = true;
            self.stop_if_job_stopped();
        }
        let now = Instant::now();
        if let Some(deadline) = self.ends.deadline {
            if now >= deadline && self.ends.term_sent.is_none() {
                self.kill_all(libc::SIGTERM);
                self.ends.term_sent = Some(now);
            }
        }
        if let Some(sent) = self.ends.term_sent {
            if now >= sent + self.opts.grace && !self.ends.killed {
                self.kill_all(libc::SIGKILL);
                self.ends.killed = true;
            }
        }
    }

    /// Job control: after a SIGTSTP, jailtrace stops itself once all its
    /// tracees are in group-stop, and goes on after SIGCONT (which also
    /// wakes the tracees parked with PTRACE_LISTEN).
    fn stop_if_job_stopped(&mut self) {
        if self.ends.stop_requested
            && !self.tasks.is_empty()
            && self.tasks.values().all(|t| t.group_stopped)
        {
            self.ends.stop_requested = false;
            if let Some(pb) = &self.progress {
                pb.suspend(sys::stop_self);
            } else {
                sys::stop_self();
            }
        }
    }

    /// A task that appears after the timeout's SIGTERM or the final SIGKILL
    /// gets it too, so that a command forking in a loop cannot outlive them.
    fn late_signal(&self, pid: Pid) {
        if self.ends.killed {
            let _ = sys::kill(pid, libc::SIGKILL);
        } else if self.ends.term_sent.is_some() {
            let _ = sys::kill(pid, libc::SIGTERM);
        }
    }

    /// Sends `sig` to every traced thread group.
    fn kill_all(&self, sig: i32) {
        let mut groups: Vec<Pid> = self.tasks.values().map(|t| t.tgid).collect();
        groups.sort();
        groups.dedup();
        for g in groups {
            let _ = sys::kill(g, sig);
        }
    }

    fn handle(&mut self, w: sys::Wait) {
        use sys::Stop;
        let pid = w.pid;
        if let Stop::Exited(_) | Stop::Killed(_) = w.stop {
            if let Some(t) = self.tasks.remove(&pid) {
                if t.tgid == pid {
                    self.dirfds.forget(pid);
                }
            }
            if pid == self.root {
                (self.root_status, self.root_signal) = match w.stop {
                    Stop::Killed(n) => (Some(128 + n), Some(n)),
                    Stop::Exited(c) => (Some(c), None),
                    _ => unreachable!("matched above"),
                };
                sys::set_forward_target(None);
            }
            return;
        }
        if w.stop == Stop::Other {
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(v) = self.tasks.entry(pid) {
            // A new child whose first stop arrived before its parent's
            // fork event.
            v.insert(Task::new(read_tgid(pid).unwrap_or(pid)));
            self.stats.processes += 1;
            self.late_signal(pid);
        }
        if let Some(t) = self.tasks.get_mut(&pid) {
            t.group_stopped = false;
        }
        match w.stop {
            Stop::SyscallExit => {
                self.on_syscall_exit(pid);
                self.resume(pid, 0);
            }
            Stop::Interrupt(libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) => {
                // Group-stop: stay stopped, but let SIGCONT wake the tracee.
                let _ = sys::listen(pid);
                if let Some(t) = self.tasks.get_mut(&pid) {
                    t.group_stopped = true;
                }
                self.stop_if_job_stopped();
            }
            Stop::Seccomp => self.on_seccomp(pid),
            Stop::Fork { clone } => {
                if let Ok(new) = sys::event_msg(pid) {
                    let new = Pid::from_raw(new as i32);
                    if let std::collections::hash_map::Entry::Vacant(v) = self.tasks.entry(new) {
                        let tgid = if clone {
                            read_tgid(new).unwrap_or(new)
                        } else {
                            new
                        };
                        v.insert(Task::new(tgid));
                        self.stats.processes += 1;
                        self.late_signal(new);
                        // clone(CLONE_NEWNS) makes a new one.
                        self.check_ns(new);
                    }
                }
                self.resume(pid, 0);
            }
            Stop::Exec => {
                // After an exec from a non-leader thread the thread takes
                // over the leader's pid: carry its pending execve over.
                if let Ok(former) = sys::event_msg(pid) {
                    let former = Pid::from_raw(former as i32);
                    if former != pid {
                        if let Some(old) = self.tasks.remove(&former) {
                            let task = self.tasks.entry(pid).or_insert_with(|| Task::new(pid));
                            task.pending = old.pending;
                            task.cwd = None;
                            task.proc_dir = None;
                        }
                    }
                }
                // A successful exec: record it now; the exit stop would
                // only confirm it.
                self.finish_pending(pid, 0, 0);
                // The namespace the recording starts in is the command's
                // own (verify's jailed command has a private one).
                if self.home_ns.is_none() {
                    self.home_ns = mount_ns(pid);
                }
                self.resume(pid, 0);
            }
            // Signal-delivery-stop: pass the signal on unchanged.
            Stop::Signal(sig) => self.resume(pid, sig),
            Stop::Interrupt(_)
            | Stop::OtherEvent
            | Stop::Exited(_)
            | Stop::Killed(_)
            | Stop::Other => {
                self.resume(pid, 0);
            }
        }
    }

    /// Resumes a tracee, to its syscall-exit stop if an access is pending.
    fn resume(&mut self, pid: Pid, sig: i32) {
        let pending = self.tasks.get(&pid).is_some_and(|t| {
            t.pending.is_some() || t.affinity_call.is_some() || t.setid_call || t.ns_call
        });
        let r = if pending {
            sys::cont_syscall(pid, sig)
        } else {
            sys::cont(pid, sig)
        };
        // ESRCH: killed meanwhile; its exit is reported by waitpid.
        let _ = r;
    }

    fn on_seccomp(&mut self, pid: Pid) {
        self.stats.syscalls += 1;
        if self.failpoint == Some(self.stats.syscalls) {
            panic!(
                "failpoint: injected tracer failure at syscall {}",
                self.stats.syscalls
            );
        }
        let Ok(sys::SyscallInfo::Seccomp { arch, nr, args }) = sys::syscall_info(pid) else {
            return self.resume(pid, 0);
        };
        let Some(call) = arch::lookup(arch, nr) else {
            const X32: &str = "x32 syscalls are not decoded: their accesses are missing";
            if arch == arch::NATIVE_AUDIT_ARCH
                && nr & arch::X32_SYSCALL_BIT != 0
                && !self.warnings.contains(X32)
            {
                self.warnings.insert(X32.into());
            }
            return self.resume(pid, 0);
        };
        if arch != arch::NATIVE_AUDIT_ARCH && !self.i386_seen {
            self.i386_seen = true;
            self.warnings.insert(
                "a 32-bit (i386) program was traced; its path syscalls were decoded with the i386 table".into(),
            );
        }
        if call == Sys::Umount {
            // Our duplicates of the tracee's directory descriptors must not
            // make its umount fail with EBUSY.
            self.dirfds.clear();
            return self.resume(pid, 0);
        }
        if call == Sys::SetId {
            if let Some(task) = self.tasks.get_mut(&pid) {
                task.setid_call = true;
            }
            return self.resume(pid, 0);
        }
        if call == Sys::NsChange {
            if let Some(task) = self.tasks.get_mut(&pid) {
                task.ns_call = true;
            }
            return self.resume(pid, 0);
        }
        if call == Sys::SchedGetaffinity {
            if self.virtual_mask.is_some() {
                if let Some(task) = self.tasks.get_mut(&pid) {
                    task.affinity_call = Some((args[2], args[1]));
                }
            }
            return self.resume(pid, 0);
        }
        if call == Sys::IoUringSetup {
            self.warnings.insert(
                "io_uring_setup was called: files opened through io_uring are invisible to ptrace and may be missing".into(),
            );
            return self.resume(pid, 0);
        }
        let uses = decode::decode(call, &args);
        let mut items = Vec::new();
        let mut result_fd = None;
        for u in uses.into_iter().flatten() {
            if u.operand == Operand::ReturnedFd {
                result_fd = Some((u.ops, u.follow));
            } else {
                self.read_use(pid, &u, &mut items);
            }
        }
        if !items.is_empty() || result_fd.is_some() {
            let creates = |ops: &decode::Ops| ops.iter().any(Op::creates);
            // Empty (no allocation) for the common call that creates nothing.
            let found = if items.iter().any(|i| creates(&i.2)) {
                items
                    .iter()
                    .map(|(path, follow, ops)| {
                        (creates(ops) && !self.log.contains(path, *follow))
                            .then(|| self.exists(path, *follow))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            if let Some(task) = self.tasks.get_mut(&pid) {
                task.pending = Some(Pending {
                    sys: call,
                    items,
                    result_fd,
                    found,
                });
            }
        }
        self.resume(pid, 0);
    }

    fn on_syscall_exit(&mut self, pid: Pid) {
        let Ok(sys::SyscallInfo::Exit { rval, is_error }) = sys::syscall_info(pid) else {
            return;
        };
        // One lookup per exit stop for the rare calls handled here.
        let (setid, affinity, ns) = match self.tasks.get_mut(&pid) {
            Some(t) => (
                std::mem::take(&mut t.setid_call),
                t.affinity_call.take(),
                std::mem::take(&mut t.ns_call),
            ),
            None => (false, None, false),
        };
        if ns {
            if !is_error {
                self.check_ns(pid);
            }
            return;
        }
        if setid {
            if !is_error {
                self.note_credentials(pid);
            }
            return;
        }
        if let Some((buf, len)) = affinity {
            // The kernel copied `rval` bytes of the pinned mask: show the
            // command its original one instead.
            if let (false, Some(mask)) = (is_error, &self.virtual_mask) {
                let n = (rval.max(0) as u64).min(len).min(mask.len() as u64) as usize;
                mem::write_bytes(pid, buf, &mask[..n]);
            }
            return;
        }
        if is_error {
            self.finish_pending(pid, -rval as i32, 0);
        } else {
            self.finish_pending(pid, 0, rval);
        }
    }

    /// Records a pending call's accesses with its outcome: `errno`, or 0
    /// and the return value `rval`.
    fn finish_pending(&mut self, pid: Pid, errno: i32, rval: i64) {
        let Some(task) = self.tasks.get_mut(&pid) else {
            return;
        };
        let Some(mut p) = task.pending.take() else {
            return;
        };
        if let (0, Some((ops, follow))) = (errno, p.result_fd) {
            if let Some(path) = self.fd_path(pid, rval as i32) {
                p.items.push((path, follow, ops));
            }
        }
        let (sys, errno) = (p.sys, errno);
        if !record_call(
            &mut self.log,
            &mut self.warnings,
            self.opts.root.as_deref(),
            Call {
                sys,
                items: p.items,
                found: &p.found,
                errno,
            },
        ) {
            return;
        }
        if matches!(sys, Sys::Rename | Sys::Renameat | Sys::Renameat2) && errno == 0 {
            self.dirfds.clear();
        }
        // pivot_root also moves the cwd of every process that was at the old
        // root; a rename of one of its directories moves it, and an rmdir
        // may delete it (then it has no host path: see names_its_object).
        let moves_cwd = matches!(
            sys,
            Sys::Chdir
                | Sys::Fchdir
                | Sys::PivotRoot
                | Sys::Rename
                | Sys::Renameat
                | Sys::Renameat2
                | Sys::Rmdir
        );
        if moves_cwd && errno == 0 {
            // Threads and CLONE_FS siblings share the cwd: drop all caches.
            for t in self.tasks.values_mut() {
                t.cwd = None;
            }
        }
    }

    /// Adds the thread's credentials after a successful set*id call. Read
    /// rather than decoded from the arguments: -1 ("unchanged"), setfsuid's
    /// return of the old id and the 16-bit forms then need no special case.
    fn note_credentials(&mut self, tid: Pid) {
        let Ok(st) = procfs::process::Process::new(tid.as_raw()).and_then(|p| p.status()) else {
            return;
        };
        self.ids.0.extend([st.ruid, st.euid, st.suid, st.fuid]);
        self.ids.1.extend([st.rgid, st.egid, st.sgid, st.fgid]);
        self.ids.1.extend(st.groups.iter().copied());
    }

    fn exists(&self, path: &[u8], follow: bool) -> bool {
        exists(self.opts.root.as_deref(), path, follow)
    }

    /// The AF_UNIX destinations named by the message headers of a
    /// sendmsg/sendmmsg, each once. Messages without one (a connected
    /// socket) add nothing, and then the call needs no exit stop.
    fn read_msg_destinations(&mut self, pid: Pid, u: &Use, items: &mut Vec<Item>) -> Option<()> {
        let (addr, count, stride, compat) = match u.operand {
            Operand::Msghdrs {
                addr,
                count,
                stride,
                compat,
            } => (addr, count, stride, compat),
            Operand::SocketcallMsghdrs { args, many } => {
                // The 32-bit arguments (fd, msg, ...): msg, then vlen.
                let v = mem::read_u64(pid, args.wrapping_add(4))?;
                let (msg, vlen) = (v & 0xffff_ffff, v >> 32);
                if many {
                    (msg, vlen.min(decode::MAX_MMSG), decode::MMSGHDR32, true)
                } else {
                    (msg, 1, decode::MSGHDR32, true)
                }
            }
            _ => return None,
        };
        if addr == 0 || count == 0 {
            return None;
        }
        // msg_name and msg_namelen lead every header: a single message
        // needs only them.
        let head = if compat { 8 } else { 16 };
        let mut one = [0u8; 16];
        let mut many = Vec::new();
        let buf: &mut [u8] = if count == 1 {
            &mut one[..head]
        } else {
            many.resize((count * stride) as usize, 0);
            &mut many
        };
        mem::read_exact(pid, addr, buf)?;
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for h in buf.chunks(stride as usize) {
            let word = |at: usize, n: usize| -> u64 {
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(&h[at..at + n]);
                u64::from_ne_bytes(b)
            };
            let (name, namelen) = if compat {
                (word(0, 4), word(4, 4))
            } else {
                (word(0, 8), word(8, 4))
            };
            let Some(p) = mem::read_unix_path(pid, name, namelen) else {
                continue;
            };
            if seen.contains(&p) {
                continue;
            }
            if let Some(abs) = self.absolute(pid, libc::AT_FDCWD, &p) {
                items.push((abs, u.follow, u.ops));
            }
            seen.push(p);
        }
        Some(())
    }

    /// Reads one operand at syscall entry and adds the paths it names, made
    /// absolute, to `items`.
    fn read_use(&mut self, pid: Pid, u: &Use, items: &mut Vec<Item>) -> Option<()> {
        let (path, ops) = match u.operand {
            Operand::Path {
                dirfd,
                addr,
                empty_is_fd,
            } => {
                let p = mem::read_cstr(pid, addr)?;
                if p.is_empty() {
                    if !empty_is_fd || dirfd == libc::AT_FDCWD {
                        // fstat-style or an ENOENT on "": no path access.
                        return None;
                    }
                    // execveat/linkat of an fd: the fd's file.
                    if u.ops.iter().any(|o| matches!(o, Op::Exec | Op::LinkFrom)) {
                        (self.fd_path(pid, dirfd)?, u.ops)
                    } else {
                        return None;
                    }
                } else {
                    (self.absolute(pid, dirfd, &p)?, u.ops)
                }
            }
            Operand::Fd(fd) => (self.fd_path(pid, fd)?, u.ops),
            Operand::Sockaddr { addr, len } => (
                mem::read_unix_path(pid, addr, len)
                    .and_then(|p| self.absolute(pid, libc::AT_FDCWD, &p))?,
                u.ops,
            ),
            Operand::SocketcallSockaddr { pair } => {
                // Two 32-bit values: the sockaddr pointer, then its length.
                let v = mem::read_u64(pid, pair)?;
                (
                    mem::read_unix_path(pid, v & 0xffff_ffff, v >> 32)
                        .and_then(|p| self.absolute(pid, libc::AT_FDCWD, &p))?,
                    u.ops,
                )
            }
            Operand::Msghdrs { .. } | Operand::SocketcallMsghdrs { .. } => {
                return self.read_msg_destinations(pid, u, items)
            }
            Operand::Openat2 { dirfd, addr, how } => {
                let flags = mem::read_u64(pid, how)?;
                let (ops, follow) = decode::open_ops(flags);
                let p = mem::read_cstr(pid, addr)?;
                if p.is_empty() {
                    return None;
                }
                items.push((self.absolute(pid, dirfd, &p)?, follow, ops));
                return Some(());
            }
            // Known at exit only (`Pending::result_fd`).
            Operand::ReturnedFd => return None,
        };
        items.push((path, u.follow, ops));
        Some(())
    }

    fn absolute(&mut self, pid: Pid, dirfd: i32, p: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(p.len() + 64);
        if p.first() != Some(&b'/') {
            // The base goes straight from its cache into the result.
            if dirfd == libc::AT_FDCWD {
                self.append_cwd(pid, &mut out)?;
            } else {
                self.append_dirfd_path(pid, dirfd, &mut out)?;
            }
            if out.last() != Some(&b'/') {
                out.push(b'/');
            }
        }
        out.extend_from_slice(p);
        self.rewrite_proc(&mut out);
        if self.tasks.get(&pid).is_some_and(|t| t.foreign_ns) && !self.same_on_host(pid, &out) {
            self.foreign += 1;
            return None;
        }
        Some(out)
    }

    /// Notes whether thread `pid` is in another mount namespace than the
    /// command started in.
    fn check_ns(&mut self, pid: Pid) {
        // No /proc read before the first exec sets the home namespace.
        let Some(home) = self.home_ns else {
            return;
        };
        let Some(ns) = mount_ns(pid) else {
            return;
        };
        if let Some(t) = self.tasks.get_mut(&pid) {
            t.foreign_ns = ns != home;
        }
    }

    fn same_on_host(&self, pid: Pid, path: &[u8]) -> bool {
        same_on_host(self.opts.root.as_deref(), pid.as_raw(), path)
    }

    fn rewrite_proc(&self, path: &mut Vec<u8>) {
        rewrite_proc(path, |id| self.tasks.contains_key(&Pid::from_raw(id)));
    }

    /// Appends the tracee's working directory (cached) to `out`. One the
    /// host cannot show is a loss: the access is not recorded.
    fn append_cwd(&mut self, pid: Pid, out: &mut Vec<u8>) -> Option<()> {
        if self.tasks.get(&pid)?.cwd.is_none() {
            let cwd = match self.proc_link(pid, "cwd") {
                Ok(c) if self.names_its_object(pid, "cwd", &c) => self.unroot(c),
                // The task is gone: no access to lose.
                Err(Errno::ENOENT | Errno::ESRCH) => return None,
                _ => {
                    self.unresolved += 1;
                    return None;
                }
            };
            self.tasks.get_mut(&pid)?.cwd = Some(cwd);
        }
        out.extend_from_slice(self.tasks.get(&pid)?.cwd.as_deref()?);
        Some(())
    }

    /// Whether `text`, read from the link `name` under `/proc/<pid>`,
    /// names on the host the very object the link leads to. It does not
    /// when the directory was deleted (the text then ends in
    /// " (deleted)") or lies in a mount jailtrace does not see: a path
    /// made of such a text would be made up.
    fn names_its_object(&self, pid: Pid, name: &str, text: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Some(task) = self.tasks.get(&pid) else {
            return false;
        };
        let target = match &task.proc_dir {
            Some(dir) => nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::empty()),
            None => nix::sys::stat::stat(format!("/proc/{pid}/{name}").as_str()),
        };
        let named = nix::sys::stat::stat(std::ffi::OsStr::from_bytes(text));
        matches!((target, named), (Ok(a), Ok(b)) if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
    }

    /// Reads a link under `/proc/<pid>` (`cwd`, `fd/N`).
    fn proc_link(&mut self, pid: Pid, name: &str) -> Result<Vec<u8>, Errno> {
        let task = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if task.proc_dir.is_none() {
            // Falls back to full paths if jailtrace runs out of descriptors.
            task.proc_dir = nix::fcntl::open(
                format!("/proc/{pid}").as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok();
        }
        let link = match &task.proc_dir {
            Some(dir) => nix::fcntl::readlinkat(dir, name)?,
            None => std::fs::read_link(format!("/proc/{pid}/{name}"))
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
                .into_os_string(),
        };
        use std::os::unix::ffi::OsStringExt;
        Ok(link.into_vec())
    }

    /// Appends the path of a descriptor used as a `dirfd` to `out`,
    /// through the cache.
    fn append_dirfd_path(&mut self, pid: Pid, fd: i32, out: &mut Vec<u8>) -> Option<()> {
        if !self.dirfds.enabled() {
            out.extend_from_slice(&self.fd_path(pid, fd)?);
            return Some(());
        }
        let tgid = self.tasks.get(&pid)?.tgid;
        if self.dirfds.append(pid, tgid, fd, out) {
            return Some(());
        }
        let path = self.fd_path(pid, fd)?;
        out.extend_from_slice(&path);
        self.dirfds.insert(tgid, fd, path);
        Some(())
    }

    fn fd_path(&mut self, pid: Pid, fd: i32) -> Option<Vec<u8>> {
        let name = format!("fd/{fd}");
        let p = match self.proc_link(pid, &name) {
            Ok(p) => p,
            // Longer than PATH_MAX: a path, but one jailtrace cannot read.
            Err(Errno::ENAMETOOLONG) => {
                self.unresolved += 1;
                return None;
            }
            // No such descriptor (the call fails with EBADF), or the task
            // is gone: no path.
            Err(_) => return None,
        };
        // Pipes, sockets and anonymous inodes have no path.
        if p.first() != Some(&b'/') {
            return None;
        }
        if !self.names_its_object(pid, &name, &p) {
            self.unresolved += 1;
            return None;
        }
        Some(self.unroot(p))
    }

    /// A host path read from /proc, as the (possibly chrooted) tracee sees it.
    fn unroot(&self, p: Vec<u8>) -> Vec<u8> {
        let u = unrooted(self.opts.root.as_deref(), &p);
        if u.len() == p.len() {
            p
        } else {
            u.to_vec()
        }
    }
}

/// A host path as a tracee running chrooted at `root` sees it (`verify`):
/// the root's prefix removed; unchanged without a root or outside it.
pub(crate) fn unrooted<'a>(root: Option<&[u8]>, p: &'a [u8]) -> &'a [u8] {
    match root {
        Some(root) if p.starts_with(root) && p.get(root.len()) == Some(&b'/') => &p[root.len()..],
        Some(root) if p == root => b"/",
        _ => p,
    }
}

/// A finished call, as both backends hand it to [`record_call`].
pub(crate) struct Call<'a> {
    pub sys: Sys,
    pub items: Vec<Item>,
    /// For each item, what was at its path before the call when that had
    /// to be found out at entry (see [`Seen::found`]).
    pub found: &'a [Option<bool>],
    /// 0, or the errno (a kernel restart code included).
    pub errno: i32,
}

/// Records a finished call's accesses with its outcome. Returns false for
/// a call that will be restarted and record itself again.
pub(crate) fn record_call(
    log: &mut RawLog,
    warnings: &mut BTreeSet<String>,
    root: Option<&[u8]>,
    call: Call<'_>,
) -> bool {
    // Interrupted by a signal. ERESTARTNOINTR is always restarted (and
    // stops again); the others end in EINTR unless the handler has
    // SA_RESTART, which the tracer cannot see: record the attempt as
    // EINTR, and a restart adds its own outcome.
    let errno = match call.errno {
        ERESTARTNOINTR => return false,
        ERESTARTSYS | ERESTARTNOHAND | ERESTART_RESTARTBLOCK => libc::EINTR,
        e => e,
    };
    if call.sys == Sys::Chroot && errno == 0 {
        warnings.insert(
            "chroot was called: absolute paths used after it are relative to the new root but were recorded as host paths".into(),
        );
    }
    if call.sys == Sys::PivotRoot && errno == 0 {
        warnings.insert(
            "pivot_root was called: absolute paths used after it are relative to the new root but were recorded as host paths".into(),
        );
    }
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
fn exists(root: Option<&[u8]>, path: &[u8], follow: bool) -> bool {
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

/// Once per new task, never per syscall.
fn read_tgid(pid: Pid) -> Option<Pid> {
    let st = procfs::process::Process::new(pid.as_raw())
        .and_then(|p| p.status())
        .ok()?;
    Some(Pid::from_raw(st.tgid))
}
