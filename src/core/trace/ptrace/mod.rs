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

mod dirfd;
mod mem;
mod paths;
mod placement;
pub mod seccomp;
mod sys;
mod task;

use std::collections::{BTreeSet, HashMap};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::arch::{self, Sys};
use super::decode::{self, Operand};
use super::ends::{self, Ends};
use super::log::{real_beneath, record_call, Call, RawLog};
use super::{operand, progress, signals};
use super::{Backend, Launch, Recording, Stats, TraceError, TraceOptions};
use crate::core::manifest::Op;
use dirfd::DirfdCache;
use task::{Pending, Task};

const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESECCOMP
    // If jailtrace dies, its tracees die too: left running, every filtered
    // syscall would fail with ENOSYS (seccomp RET_TRACE without a tracer).
    | libc::PTRACE_O_EXITKILL;

/// How the command (the first process) ended.
#[derive(Default)]
struct Command {
    /// Its exit status as a shell reports it.
    status: Option<i32>,
    /// The signal that killed it, if one did.
    signal: Option<i32>,
}

/// Accesses not recorded because their path cannot be known.
#[derive(Default)]
struct Lost {
    /// Relative to a working directory or descriptor whose path the host
    /// cannot show (deeper than PATH_MAX, deleted, or not reachable from
    /// jailtrace's root).
    unresolved: u64,
    /// In another mount namespace, naming something else on the host.
    foreign: u64,
}

struct Tracer<'a> {
    opts: &'a TraceOptions,
    tasks: HashMap<Pid, Task>,
    root: Pid,
    command: Command,
    log: RawLog,
    warnings: BTreeSet<String>,
    stats: Stats,
    /// Signals to jailtrace and the timeout.
    ends: Ends,
    /// SIGTSTP received: stop jailtrace too once every tracee has stopped,
    /// so that the shell sees the job stopped, as it would untraced.
    stop_requested: bool,
    progress: Option<progress::Progress>,
    dirfds: DirfdCache,
    /// With `--cpu same`: the command's original CPU mask, as the bytes
    /// sched_getaffinity returns.
    virtual_mask: Option<Vec<u8>>,
    /// See [`Recording::set_uids`]: (user ids, group ids).
    ids: (BTreeSet<u32>, BTreeSet<u32>),
    /// See [`Recording::privileged_bind`].
    privileged_bind: bool,
    lost: Lost,
    /// An i386 syscall was seen: its warning is given once, not looked up
    /// in the set at every one.
    i386_seen: bool,
    /// The mount namespace (inode of /proc/PID/ns/mnt) the command's first
    /// exec ran in: a thread in another one names paths the host may not
    /// have.
    home_ns: Option<u64>,
    /// A traced process has chrooted: absolute paths are read beneath each
    /// task's root from then on.
    chroots: bool,
    /// The new root of each thread group that called pivot_root (or whose
    /// parent had): /proc/PID/root of a process in a mount namespace of
    /// its own cannot show it.
    pivoted: HashMap<Pid, Vec<u8>>,
    /// Test hook (`JAILTRACE_FAILPOINT=panic-after:N`): panic at the Nth
    /// recorded syscall, to exercise the internal-error policy.
    failpoint: Option<u64>,
}

/// What a stopped tracee does next. Every stop yields one and
/// [`Tracer::handle`] carries it out, so no stop can be left unresumed by
/// an arm that forgets.
enum Next {
    /// Resume it, delivering this signal (0: none); to its syscall-exit
    /// stop when a call is pending.
    Go(i32),
    /// Group-stop (job control): stay stopped, but let SIGCONT wake it.
    Listen,
    /// Not stopped (it exited, or only continued): nothing to resume.
    Nothing,
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
    // Restored when this function returns: hashing, saving and verify's
    // later rounds must stay interruptible.
    let handlers = signals::install_signal_handlers()
        .map_err(|e| TraceError::Internal(format!("signal handlers: {e}")))?;
    let spec = crate::core::launch::ChildSpec {
        launch,
        hold: true,
        mask: None,
        filter: Some(seccomp::filter()),
        no_new_privs: !has_cap_sys_admin(),
        child_affinity: placed.child_affinity(),
        ignored: handlers.ignored(),
    };
    let child = crate::core::launch::spawn(&spec).map_err(TraceError::Spawn)?;
    if let Err(e) = sys::seize(child.pid, OPTIONS) {
        let _ = signals::kill(child.pid, libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(child.pid, None);
        return Err(match e {
            Errno::EPERM | Errno::EACCES => TraceError::PtraceDenied(e),
            e => TraceError::Internal(format!("PTRACE_SEIZE: {e}")),
        });
    }
    signals::set_forward_target(Some(child.pid));
    child
        .release()
        .map_err(|e| TraceError::Internal(format!("cannot release the child: {e}")))?;

    let mut t = Tracer::new(opts, child.pid, placed.virtual_mask());
    if opts.timeout.is_some() {
        let _ = signals::set_alarm(100);
    }
    let internal_error = t.run_guarded();
    let _ = signals::set_alarm(0);
    signals::set_forward_target(None);
    if let Some(p) = &t.progress {
        p.finish();
    }
    placed.restore();
    // From here on signals act on jailtrace itself (resolution, hashing and
    // saving stay interruptible). One that arrived while the last tracee
    // was exiting was meant for the command, and is dropped rather than
    // allowed to lose the manifest.
    let _ = signals::take_signals();
    drop(handlers);
    let start_failure = child.failure();
    if t.lost.foreign > 0 {
        t.warnings.insert(ends::foreign_ns(t.lost.foreign));
    }
    if t.lost.unresolved > 0 {
        t.warnings.insert(format!(
            "incomplete recording: {} accesses are relative to a working directory or \
             descriptor whose path the host cannot show (deeper than PATH_MAX, deleted, or in a \
             mount jailtrace does not see); their paths are not recorded",
            t.lost.unresolved
        ));
    }
    Ok(Recording {
        log: t.log,
        exit_status: t.command.status,
        killed_by: t.command.signal,
        start_failure,
        warnings: t.warnings,
        stats: t.stats,
        set_uids: t.ids.0,
        set_gids: t.ids.1,
        privileged_bind: t.privileged_bind,
        internal_error,
        lost: t.lost.unresolved + t.lost.foreign,
        timings: Vec::new(),
    })
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
            command: Command::default(),
            log: RawLog::default(),
            warnings: BTreeSet::new(),
            stats: Stats::default(),
            ids: (BTreeSet::new(), BTreeSet::new()),
            privileged_bind: false,
            ends: Ends::new(opts.timeout, opts.grace),
            stop_requested: false,
            progress: None,
            virtual_mask,
            lost: Lost::default(),
            i386_seen: false,
            home_ns: None,
            chroots: false,
            pivoted: HashMap::new(),
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
                    let _ = signals::kill(w.pid, libc::SIGKILL);
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
        let gone = self.command.status.is_some();
        let tasks = &self.tasks;
        let polled = self
            .ends
            .poll(gone, &mut self.warnings, |sig| kill_all(tasks, sig));
        if polled.stop {
            self.stop_requested = true;
            self.stop_if_job_stopped();
        }
    }

    /// Job control: after a SIGTSTP, jailtrace stops itself once all its
    /// tracees are in group-stop, and goes on after SIGCONT (which also
    /// wakes the tracees parked with PTRACE_LISTEN).
    fn stop_if_job_stopped(&mut self) {
        if self.stop_requested
            && !self.tasks.is_empty()
            && self.tasks.values().all(|t| t.group_stopped)
        {
            self.stop_requested = false;
            if let Some(pb) = &self.progress {
                pb.suspend(signals::stop_self);
            } else {
                signals::stop_self();
            }
        }
    }

    /// A task that appears after the timeout's SIGTERM or the final
    /// SIGKILL gets it too.
    fn late_signal(&self, pid: Pid) {
        if let Some(sig) = self.ends.late_signal() {
            let _ = signals::kill(pid, sig);
        }
    }

    fn kill_all(&self, sig: i32) {
        kill_all(&self.tasks, sig);
    }

    /// Handles one stop and carries out what it says to do next.
    fn handle(&mut self, w: sys::Wait) {
        let pid = w.pid;
        match self.on_stop(w) {
            Next::Go(sig) => self.resume(pid, sig),
            Next::Listen => {
                let _ = sys::listen(pid);
                if let Some(t) = self.tasks.get_mut(&pid) {
                    t.group_stopped = true;
                }
                self.stop_if_job_stopped();
            }
            Next::Nothing => {}
        }
    }

    fn on_stop(&mut self, w: sys::Wait) -> Next {
        use sys::Stop;
        let pid = w.pid;
        if let Stop::Exited(_) | Stop::Killed(_) = w.stop {
            if let Some(t) = self.tasks.remove(&pid) {
                if t.tgid == pid {
                    self.dirfds.forget(pid);
                    self.pivoted.remove(&pid);
                }
            }
            if pid == self.root {
                self.command = match w.stop {
                    Stop::Killed(n) => Command {
                        status: Some(128 + n),
                        signal: Some(n),
                    },
                    Stop::Exited(c) => Command {
                        status: Some(c),
                        signal: None,
                    },
                    _ => unreachable!("matched above"),
                };
                signals::set_forward_target(None);
            }
            return Next::Nothing;
        }
        if w.stop == Stop::Other {
            return Next::Nothing;
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
            Stop::SyscallExit => self.on_syscall_exit(pid),
            Stop::Interrupt(libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) => {
                return Next::Listen
            }
            Stop::Seccomp => self.on_seccomp(pid),
            Stop::Fork { clone } => self.on_fork(pid, clone),
            Stop::Exec => self.on_exec(pid),
            // Signal-delivery-stop: pass the signal on unchanged.
            Stop::Signal(sig) => return Next::Go(sig),
            Stop::Interrupt(_)
            | Stop::OtherEvent
            | Stop::Exited(_)
            | Stop::Killed(_)
            | Stop::Other => {}
        }
        Next::Go(0)
    }

    fn on_fork(&mut self, pid: Pid, clone: bool) {
        let Ok(new) = sys::event_msg(pid) else {
            return;
        };
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
        // A new process starts in its parent's root.
        let parent = self.tasks.get(&pid).map(|t| t.tgid);
        let child = self.tasks.get(&new).map(|t| t.tgid);
        if let (Some(parent), Some(child)) = (parent, child) {
            match self.pivoted.get(&parent).cloned() {
                Some(root) => self.pivoted.insert(child, root),
                None if child != parent => self.pivoted.remove(&child),
                None => None,
            };
        }
    }

    fn on_exec(&mut self, pid: Pid) {
        // After an exec from a non-leader thread the thread takes over the
        // leader's pid: carry its pending execve over.
        if let Ok(former) = sys::event_msg(pid) {
            let former = Pid::from_raw(former as i32);
            if former != pid {
                if let Some(old) = self.tasks.remove(&former) {
                    let task = self.tasks.entry(pid).or_insert_with(|| Task::new(pid));
                    task.pending = old.pending;
                    task.cwd = None;
                    task.root = None;
                    task.proc_dir = None;
                }
            }
        }
        // A successful exec: record it now; the exit stop would only
        // confirm it.
        self.finish_pending(pid, 0, 0);
        // The namespace the recording starts in is the command's own
        // (verify's jailed command has a private one).
        if self.home_ns.is_none() {
            self.home_ns = paths::mount_ns(pid);
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
            return;
        };
        let Some(call) = arch::lookup(arch, nr) else {
            if arch == arch::NATIVE_AUDIT_ARCH
                && nr & arch::X32_SYSCALL_BIT != 0
                && !self.warnings.contains(ends::X32)
            {
                self.warnings.insert(ends::X32.into());
            }
            return;
        };
        if arch != arch::NATIVE_AUDIT_ARCH && !self.i386_seen {
            self.i386_seen = true;
            self.warnings.insert(ends::I386.into());
        }
        if call == Sys::Umount {
            // Our duplicates of the tracee's directory descriptors must not
            // make its umount fail with EBUSY.
            self.dirfds.clear();
            return;
        }
        if call == Sys::SetId {
            if let Some(task) = self.tasks.get_mut(&pid) {
                task.setid_call = true;
            }
            return;
        }
        if matches!(call, Sys::Unshare | Sys::Setns) {
            if let Some(task) = self.tasks.get_mut(&pid) {
                task.ns_call = true;
            }
            return;
        }
        if call == Sys::SchedGetaffinity {
            if self.virtual_mask.is_some() {
                if let Some(task) = self.tasks.get_mut(&pid) {
                    task.affinity_call = Some((args[2], args[1]));
                }
            }
            return;
        }
        if call == Sys::IoUringSetup {
            self.warnings.insert(ends::IO_URING.into());
            return;
        }
        let uses = decode::decode(call, &args);
        let mut items = Vec::new();
        let mut result_fd = None;
        for u in uses.into_iter().flatten() {
            if u.operand == Operand::ReturnedFd {
                result_fd = Some((u.ops, u.follow));
            } else {
                let mut src = paths::Tracee { t: self, pid };
                operand::read(&mut src, &u, &mut items);
                if operand::bound_port(&mut src, &u).is_some_and(|p| p < 1024) {
                    self.privileged_bind = true;
                }
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
        let new_root = (sys == Sys::PivotRoot && errno == 0)
            .then(|| p.items.first().map(|i| i.0.clone()))
            .flatten();
        if !record_call(
            &mut self.log,
            self.opts.root.as_deref(),
            Call {
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
        if sys == Sys::Chroot && errno == 0 {
            self.chroots = true;
        }
        if let Some(root) = new_root {
            // The new root, as the host names it: the caller's (and its
            // later children's) absolute paths are beneath it.
            self.chroots = true;
            let real = real_beneath(self.opts.root.as_deref(), &root).unwrap_or(root);
            if let Some(tgid) = self.tasks.get(&pid).map(|t| t.tgid) {
                if real == b"/" {
                    self.pivoted.remove(&tgid);
                } else {
                    self.pivoted.insert(tgid, real);
                }
            }
        }
        // The caller's root moved (and its CLONE_FS sharers'; pivot_root
        // moves every process's at the old root): read roots afresh.
        // pivot_root itself keeps its warning and the namespace check.
        if matches!(sys, Sys::Chroot | Sys::PivotRoot) && errno == 0 {
            for t in self.tasks.values_mut() {
                t.root = None;
            }
        }
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
}

/// Once per new task, never per syscall.
fn read_tgid(pid: Pid) -> Option<Pid> {
    let st = procfs::process::Process::new(pid.as_raw())
        .and_then(|p| p.status())
        .ok()?;
    Some(Pid::from_raw(st.tgid))
}

/// Sends `sig` to every traced thread group.
fn kill_all(tasks: &HashMap<Pid, Task>, sig: i32) {
    let mut groups: Vec<Pid> = tasks.values().map(|t| t.tgid).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        let _ = signals::kill(g, sig);
    }
}
