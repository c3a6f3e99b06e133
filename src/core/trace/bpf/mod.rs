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
mod event;
mod load;

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::arch::{self, Sys};
use super::decode::{self, Operand};
use super::task::Item;
use super::{
    progress, record_call, rewrite_proc, sys, unrooted, Backend, Call, Launch, RawLog, Recording,
    Stats, TraceError, TraceOptions,
};
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
    i386_seen: bool,
    /// Items a thread sent for the syscall it is finishing.
    pending: std::collections::HashMap<u32, Event>,
    /// Records that arrived malformed or incomplete: lost like the
    /// program's own counts.
    lost_here: u64,
    /// Whether renames say if they made their target (`Loaded`), and how
    /// many renames onto untouched names were taken as inputs without it.
    renames_seen: bool,
    unseen_renames: u64,
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
    let handlers = sys::install_signal_handlers()
        .map_err(|e| TraceError::Internal(format!("signal handlers: {e}")))?;
    let child = start(&mut loaded, launch)?;
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
        i386_seen: false,
        pending: std::collections::HashMap::new(),
        lost_here: 0,
        renames_seen: loaded.renames_seen,
        unseen_renames: 0,
    };
    let mut ends = Ends {
        deadline: opts.timeout.map(|d| Instant::now() + d),
        ..Ends::default()
    };
    let mut progress = opts.progress.then(progress::Progress::new);
    if let Some(p) = &progress {
        p.draw(r.progress_line());
    }
    loop {
        ends.signals_and_deadline(&mut r, progress.as_ref());
        // Nothing new: a 1 ms nap (no event stops the program, so this
        // only delays jailtrace's reading, and its noticing the end).
        if r.drain(&mut loaded.events) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let done = ends.reap(&mut r, root);
        if let Some(p) = progress.as_mut() {
            p.tick(|| r.progress_line());
        }
        if done {
            // Every event of the tree was written before its last task
            // exited.
            r.drain(&mut loaded.events);
            break;
        }
    }
    sys::set_forward_target(None);
    if let Some(p) = &progress {
        p.finish();
    }
    let _ = sys::take_signals();
    drop(handlers);

    let lost = r.losses(&loaded);
    if std::env::var_os("JAILTRACE_BPF_STARTUP").is_some() {
        eprintln!(
            "jailtrace: bpf start-up {:.3} s, {} syscalls, {} processes",
            startup.as_secs_f64(),
            r.stats.syscalls,
            r.stats.processes
        );
    }
    Ok(Recording {
        log: r.log,
        exit_status: ends.status,
        killed_by: ends.signal,
        start_failure: child.failure(),
        warnings: r.warnings,
        stats: r.stats,
        set_uids: r.creds.0,
        set_gids: r.creds.1,
        internal_error: None,
        lost,
    })
}

/// Spawns the command held, registers it with the program, releases it.
fn start(
    loaded: &mut load::Loaded,
    launch: Launch,
) -> Result<crate::core::launch::Child, TraceError> {
    let spec = crate::core::launch::ChildSpec {
        launch,
        hold: true,
        mask: None,
        filter: None,
        no_new_privs: false,
        child_affinity: None,
    };
    let child = crate::core::launch::spawn(&spec).map_err(TraceError::Spawn)?;
    let root = child.pid;
    if let Err(e) = loaded.traced.insert(root.as_raw() as u32, load::ARMED, 0) {
        let _ = sys::kill(root, libc::SIGKILL);
        let _ = waitpid(root, None);
        return Err(TraceError::Internal(format!(
            "cannot register the command: {e}"
        )));
    }
    sys::set_forward_target(Some(root));
    child
        .release()
        .map_err(|e| TraceError::Internal(format!("cannot release the child: {e}")))?;
    Ok(child)
}

/// How the recording ends: the command's status, jailtrace's signals, the
/// timeout.
#[derive(Default)]
struct Ends {
    deadline: Option<Instant>,
    term_sent: Option<Instant>,
    killed: bool,
    signals: u32,
    status: Option<i32>,
    signal: Option<i32>,
}

impl Ends {
    /// Signals to jailtrace: the handler forwarded them to the command;
    /// once it is gone they go to the whole tree, and a third kills it.
    /// Then the timeout: SIGTERM, and SIGKILL after the grace.
    fn signals_and_deadline(
        &mut self,
        r: &mut Recorder<'_>,
        progress: Option<&progress::Progress>,
    ) {
        let sigs = sys::take_signals();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            if sigs & (1 << sig) != 0 {
                self.signals += 1;
                if self.status.is_some() {
                    r.kill_all(sig);
                }
                if self.signals >= 3 && !self.killed {
                    r.warnings.insert(
                        "jailtrace was interrupted three times: traced processes were killed"
                            .into(),
                    );
                    r.kill_all(libc::SIGKILL);
                    self.killed = true;
                }
            }
        }
        if sigs & (1 << libc::SIGTSTP) != 0 {
            // Nothing is traced by ptrace: the terminal stopped the command
            // with jailtrace's process group; stop jailtrace as well.
            match progress {
                Some(p) => p.suspend(sys::stop_self),
                None => sys::stop_self(),
            }
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) && self.term_sent.is_none() {
            r.kill_all(libc::SIGTERM);
            self.term_sent = Some(now);
        }
        if self.term_sent.is_some_and(|t| now >= t + r.opts.grace) && !self.killed {
            r.kill_all(libc::SIGKILL);
            self.killed = true;
        }
    }

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
                        sys::set_forward_target(None);
                    }
                    r.groups.remove(&pid.as_raw());
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    if pid == root {
                        self.status = Some(128 + sig as i32);
                        self.signal = Some(sig as i32);
                        sys::set_forward_target(None);
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
            self.warnings
                .insert("x32 syscalls are not decoded: their accesses are missing".into());
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
        in_kernel + self.lost_here
    }

    fn kill_all(&self, sig: i32) {
        for &g in &self.groups {
            let _ = sys::kill(Pid::from_raw(g), sig);
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
                self.stats.processes += 1;
                self.ids.insert(e.tid as i32);
                self.ids.insert(e.tgid as i32);
                self.groups.insert(e.tgid as i32);
            }
            event::E_SYSCALL => self.syscall(e),
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
        if e.compat && !self.i386_seen {
            self.i386_seen = true;
            self.warnings.insert(
                "a 32-bit (i386) program was traced; its path syscalls were decoded with the i386 table".into(),
            );
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
                self.warnings.insert(
                    "io_uring_setup was called: files opened through io_uring are invisible to ptrace and may be missing".into(),
                );
                return;
            }
            Sys::SchedGetaffinity | Sys::Umount | Sys::NsChange => return,
            _ => {}
        }
        let mut items: Vec<Item> = Vec::new();
        for u in decode::decode(call, &e.args).into_iter().flatten() {
            self.operand(e, &u, &mut items);
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
        record_call(
            &mut self.log,
            &mut self.warnings,
            self.opts.root.as_deref(),
            Call {
                sys: call,
                items,
                found: &found,
                errno,
            },
        );
    }

    /// The paths one operand names in the event, made absolute.
    fn operand(&mut self, e: &Event, u: &decode::Use, items: &mut Vec<Item>) {
        let path = match u.operand {
            Operand::Path {
                dirfd,
                addr,
                empty_is_fd,
            } => {
                let Some(mut p) = e.string(addr) else {
                    return;
                };
                // A successful execveat's path is the kernel's copy, which
                // names a dirfd-relative path /dev/fd/N/PATH.
                if e.ret == 0 && dirfd != libc::AT_FDCWD && u.ops.iter().any(|o| o == Op::Exec) {
                    let prefix = format!("/dev/fd/{dirfd}");
                    if let Some(rest) = p.strip_prefix(prefix.as_bytes()) {
                        match rest.first() {
                            None => p = rest,
                            Some(b'/') => p = &rest[1..],
                            Some(_) => {}
                        }
                    }
                }
                if p.is_empty() {
                    if !empty_is_fd || dirfd == libc::AT_FDCWD {
                        return;
                    }
                    if !u.ops.iter().any(|o| matches!(o, Op::Exec | Op::LinkFrom)) {
                        return;
                    }
                    match e.base(dirfd) {
                        Some(b) => self.unroot(b),
                        None => return,
                    }
                } else {
                    match self.absolute(e, dirfd, p) {
                        Some(a) => a,
                        None => return,
                    }
                }
            }
            Operand::Fd(fd) => match e.fd_path(i64::from(fd)) {
                Some(p) => self.unroot(p),
                None => return,
            },
            Operand::Sockaddr { addr, len } => {
                let Some(p) = e.mem(addr, len).and_then(super::mem::unix_path) else {
                    return;
                };
                match self.socket_path(e, &p) {
                    Some(a) => a,
                    None => return,
                }
            }
            Operand::Openat2 { dirfd, addr, how } => {
                let Some(flags) = e.u64_at(how) else {
                    return;
                };
                let (ops, follow) = decode::open_ops(flags);
                let Some(p) = e.string(addr).filter(|p| !p.is_empty()) else {
                    return;
                };
                if let Some(a) = self.absolute(e, dirfd, p) {
                    items.push((a, follow, ops));
                }
                return;
            }
            Operand::ReturnedFd => match e.fd_path(e.ret) {
                Some(p) if e.ret >= 0 => self.unroot(p),
                _ => return,
            },
            Operand::SocketcallSockaddr { pair } => {
                // Two 32-bit values: the sockaddr pointer, then its length.
                let Some(v) = e.u64_at(pair) else { return };
                let Some(p) = e
                    .mem(v & 0xffff_ffff, v >> 32)
                    .and_then(super::mem::unix_path)
                else {
                    return;
                };
                match self.socket_path(e, &p) {
                    Some(a) => a,
                    None => return,
                }
            }
            Operand::Msghdrs {
                addr,
                count,
                stride,
                compat,
            } => return self.msg_destinations(e, u, (addr, count, stride, compat), items),
            Operand::SocketcallMsghdrs { args, many } => {
                // The 32-bit arguments (fd, msg, ...): msg, then vlen.
                let Some(v) = e.u64_at(args.wrapping_add(4)) else {
                    return;
                };
                let (msg, vlen) = (v & 0xffff_ffff, v >> 32);
                let layout = if many {
                    (msg, vlen, decode::MMSGHDR32, true)
                } else {
                    (msg, 1, decode::MSGHDR32, true)
                };
                return self.msg_destinations(e, u, layout, items);
            }
        };
        items.push((path, u.follow, u.ops));
    }

    /// The AF_UNIX destinations of message headers (`addr`, `count`,
    /// `stride`, `compat`), each once, as the ptrace backend reads them.
    fn msg_destinations(
        &mut self,
        e: &Event,
        u: &decode::Use,
        (addr, count, stride, compat): (u64, u64, u64, bool),
        items: &mut Vec<Item>,
    ) {
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for i in 0..count.min(load::MAX_MSGS) {
            let h = addr.wrapping_add(i * stride);
            let (name, namelen) = if compat {
                let Some(v) = e.u64_at(h) else { continue };
                (v & 0xffff_ffff, v >> 32)
            } else {
                let (Some(n), Some(l)) = (e.u64_at(h), e.u64_at(h + 8)) else {
                    continue;
                };
                (n, l & 0xffff_ffff)
            };
            if name == 0 || namelen == 0 {
                continue;
            }
            let Some(p) = e.mem(name, namelen).and_then(super::mem::unix_path) else {
                continue;
            };
            if seen.contains(&p) {
                continue;
            }
            if let Some(abs) = self.socket_path(e, &p) {
                items.push((abs, u.follow, u.ops));
            }
            seen.push(p);
        }
    }

    /// `p` made absolute against the base the program walked at entry.
    /// A path operand without one had a bad dirfd (EBADF): no path, as
    /// under ptrace.
    fn absolute(&self, e: &Event, dirfd: i32, p: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(p.len() + 64);
        if p.first() != Some(&b'/') {
            let base = e.base(dirfd)?;
            out.extend_from_slice(unrooted(self.opts.root.as_deref(), base));
            if out.last() != Some(&b'/') {
                out.push(b'/');
            }
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
        unrooted(self.opts.root.as_deref(), p).to_vec()
    }
}
