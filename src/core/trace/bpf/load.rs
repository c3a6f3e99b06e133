//! Loading `bpf/jailtrace.bpf.o` with aya, and telling it what to capture.
//!
//! The object knows nothing of syscalls: [`descriptors`] derives, from the
//! same decode table the ptrace backend uses, which arguments of each
//! syscall are path strings (and which argument is their dirfd),
//! sockaddrs, descriptors or `open_how` pointers. So both backends read
//! exactly the same operands.

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{KProbe, Program, RawTracePoint};
use aya::Ebpf;

use super::abi::{
    Desc, D_CREATED, D_EMPTYFD, D_EXEC, D_FDNULL, D_NOTE, D_ON, D_RETFD, D_SETID, ID_EXE, ID_NSNEW,
    ID_RETFD, ID_ROOTS, L_DEPTH, L_N, L_NOPATH, L_READ, L_RINGBUF, L_STASH, L_TRUNCATED, M_MMSG,
    M_MMSG32, M_MSG, M_MSG32, M_SOCKETCALL, NR_MAX, U_X32,
};
pub use super::abi::{ARMED, MAX_MSGS};
use crate::core::manifest::Op;
use crate::core::trace::arch::{self, Sys};
use crate::core::trace::decode::{self, Operand};

/// The compiled program, committed beside its source (`bpf/build`).
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../../../bpf/jailtrace.bpf.o");

/// What each lost-data counter (`L_*`) counts.
pub const LOST_NAMES: [&str; L_N] = {
    let mut n = [""; L_N];
    n[L_RINGBUF] = "events dropped because the ring buffer was full";
    n[L_TRUNCATED] = "strings truncated";
    n[L_READ] = "failed reads of the program's memory";
    n[L_STASH] = "syscalls whose entry state could not be kept";
    n[L_DEPTH] = "paths deeper than the walk limit";
    n[L_NOPATH] =
        "paths relative to a deleted directory or a detached tree, which have no host path";
    n
};

/// The loaded program and its maps.
pub struct Loaded {
    /// Kept for the attachments: dropping it detaches everything.
    _ebpf: Ebpf,
    pub traced: HashMap<MapData, u32, u8>,
    pub events: RingBuf<MapData>,
    pub lost: PerCpuArray<MapData, u64>,
    pub undecoded: PerCpuArray<MapData, u64>,
    /// The rename kprobe is attached: a rename says whether it made its
    /// target's name. Kernels without kprobes (CONFIG_KPROBES) do not.
    pub renames_seen: bool,
    /// How long each start-up step took (`Recording::timings`).
    pub timings: Vec<String>,
}

/// Markers standing for "argument i" when the decode table is asked which
/// arguments are what; small enough to be a dirfd, large enough to be no
/// flag bits the table looks at.
const MARK: u64 = 0x7000_0000;

/// One syscall's descriptor.
fn descriptor(sys: Sys) -> Desc {
    let mut d = Desc::default();
    let which = |v: u64| -> u8 {
        if (MARK..MARK + 6).contains(&v) {
            (v - MARK) as u8 + 1
        } else {
            0
        }
    };
    let dirfd_of = |fd: i32| -> u8 {
        if fd == libc::AT_FDCWD {
            0
        } else {
            which(u64::from(fd as u32))
        }
    };
    match sys {
        Sys::SetId => {
            d.flags = D_ON | D_SETID;
            return d;
        }
        Sys::IoUringSetup => {
            d.flags = D_ON | D_NOTE;
            return d;
        }
        // A namespace unshare copies is still the program's, as far as
        // paths go, until a mount changes (see ns_state in the program).
        Sys::Unshare => {
            d.flags = D_ON;
            d.ident = ID_NSNEW;
            return d;
        }
        // The ptrace backend's own concerns (its CPU mask, its dirfd cache,
        // its check of paths in another mount namespace).
        Sys::SchedGetaffinity | Sys::Umount | Sys::Setns => return d,
        _ => {}
    }
    d.flags = D_ON;
    if matches!(sys, Sys::Execve | Sys::Execveat) {
        d.flags |= D_EXEC;
    }
    if matches!(sys, Sys::Open | Sys::Openat | Sys::Openat2 | Sys::Creat) {
        d.flags |= D_CREATED;
        // The flags argument, so that only an O_CREAT open looks at the
        // file it returns (creat always creates; openat2's flags are in
        // its open_how).
        d.oflags = match sys {
            Sys::Open => 2,
            Sys::Openat => 3,
            _ => 0,
        };
    }
    // Probes: the markers, then the markers with each argument in turn 0,
    // for the calls whose operand changes shape with a NULL pointer
    // (fanotify_mark's NULL path marks its dirfd's own file).
    let markers: [u64; 6] = std::array::from_fn(|i| MARK + i as u64);
    let probes = std::iter::once(markers).chain((0..6).map(|j| {
        let mut a = markers;
        a[j] = 0;
        a
    }));
    let mut strs: Vec<(u8, u8)> = Vec::new();
    // Which probes named a descriptor operand: with every argument given,
    // or only with argument j NULL.
    let (mut fd_always, mut fd_when_null) = (false, Vec::new());
    for (k, args) in probes.enumerate() {
        for u in decode::decode(sys, &args).into_iter().flatten() {
            match u.operand {
                // A NULL string or a descriptor 0 is the probe's own zero,
                // not an operand of the call.
                Operand::Path { dirfd, addr, .. } | Operand::Openat2 { dirfd, addr, .. }
                    if addr == 0 || dirfd == 0 => {}
                Operand::Path { dirfd, addr, .. } | Operand::Openat2 { dirfd, addr, .. } => {
                    // An empty path names no path, except the dirfd's own
                    // file for these two (with AT_EMPTY_PATH): then its
                    // base is walked even for "".
                    if u.ops.iter().any(|o| matches!(o, Op::Exec | Op::LinkFrom)) {
                        d.flags |= D_EMPTYFD;
                    }
                    let s = (which(addr), dirfd_of(dirfd));
                    if !strs.contains(&s) && strs.len() < 2 {
                        strs.push(s);
                    }
                    if let Operand::Openat2 { how, .. } = u.operand {
                        d.u64p = which(how);
                    }
                }
                Operand::Fd(fd) => {
                    let f = which(u64::from(fd as u32));
                    if f != 0 {
                        // One descriptor slot: no call has two shapes
                        // with different descriptors.
                        assert!(d.fd == 0 || d.fd == f, "{sys:?}: two descriptors");
                        d.fd = f;
                        match k {
                            0 => fd_always = true,
                            k => fd_when_null.push(k as u8),
                        }
                    }
                }
                // A zero length is the probe's too: keep the argument.
                Operand::Sockaddr { addr, len } if which(addr) != 0 => {
                    d.sock = which(addr);
                    d.socklen = d.socklen.max(which(len));
                }
                Operand::Sockaddr { .. } => {}
                Operand::ReturnedFd => d.flags |= D_RETFD,
                // Nested reads: the program knows these four layouts.
                Operand::SocketcallSockaddr { .. }
                | Operand::Msghdrs { .. }
                | Operand::SocketcallMsghdrs { .. } => {}
            }
        }
    }
    for (i, (s, f)) in strs.into_iter().enumerate() {
        d.str[i] = s;
        d.dirfd[i] = f;
    }
    // The descriptor is the operand only when the path is NULL
    // (fanotify_mark): otherwise the program need not walk it.
    if d.fd != 0 && !fd_always && d.str[0] != 0 && fd_when_null.iter().all(|&j| j == d.str[0]) {
        d.flags |= D_FDNULL;
    }
    d.msg = match sys {
        Sys::Sendmsg => M_MSG,
        Sys::Sendmmsg => M_MMSG,
        Sys::Sendmsg32 => M_MSG32,
        Sys::Sendmmsg32 => M_MMSG32,
        Sys::Socketcall => M_SOCKETCALL,
        _ => 0,
    };
    // The objects that show, in a mount namespace of the program's own,
    // whether its paths name what the host has.
    d.ident = match sys {
        Sys::Open | Sys::Openat | Sys::Openat2 | Sys::Creat => ID_RETFD,
        Sys::Execve | Sys::Execveat => ID_EXE,
        Sys::PivotRoot => ID_ROOTS,
        _ => 0,
    };
    d
}

/// Why the bpf backend cannot run here, in one line, naming the missing
/// piece; `None` when it can.
pub fn unavailable() -> Option<String> {
    let caps = procfs::process::Process::myself()
        .and_then(|p| p.status())
        .map(|s| s.capeff)
        .unwrap_or(0);
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    const CAP_PERFMON: u64 = 1 << 38;
    const CAP_BPF: u64 = 1 << 39;
    let has = |c: u64| caps & c != 0;
    if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        return Some("it needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)".into());
    }
    // The tracepoints see the kernel's pids; jailtrace in a PID namespace
    // of its own registers another number for its child.
    let nested = procfs::process::Process::myself()
        .and_then(|p| p.status())
        .ok()
        .and_then(|s| s.nspid)
        .is_some_and(|ids| ids.len() > 1);
    if nested {
        return Some(
            "jailtrace runs in a PID namespace of its own, and the kernel's tracepoints see other pids"
                .into(),
        );
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(why) = too_old(&release) {
        return Some(why);
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; CONFIG_DEBUG_INFO_BTF)"
                .into(),
        );
    }
    None
}

/// The program walks paths with `bpf_loop` (5.17) and keeps per-thread
/// state in task storage (5.11): an older kernel is named in one line
/// rather than left to the verifier's message.
fn too_old(release: &str) -> Option<String> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    ((major, minor) < (5, 17))
        .then(|| format!("the kernel is {release}, and it needs 5.17 or later (bpf_loop)"))
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    // aya's errors nest their cause; one line with all of it.
    let mut s = format!("{what}: {e}");
    s = s.replace('\n', " ");
    s
}

/// Writes every recorded syscall's descriptor, native and i386.
fn fill_descriptors(ebpf: &mut Ebpf) -> Result<(), String> {
    let mut descs: Array<_, [u8; Desc::SIZE]> = Array::try_from(
        ebpf.map_mut("descs")
            .ok_or_else(|| "the BPF object has no descs map".to_string())?,
    )
    .map_err(|e| err("descs", e))?;
    for (base, table) in [
        (0u32, arch::table(arch::AUDIT_ARCH_X86_64)),
        (NR_MAX, arch::table(arch::AUDIT_ARCH_I386)),
    ] {
        for &(nr, sys) in table {
            if nr < NR_MAX {
                descs
                    .set(base + nr, descriptor(sys).bytes(), 0)
                    .map_err(|e| err("descs", e))?;
            }
        }
    }
    Ok(())
}

/// Loads (and so verifies) one program; the verifier's refusal comes back
/// as the reason it gives.
fn load_program(prog: &str, p: &mut Program) -> Result<String, String> {
    let t0 = std::time::Instant::now();
    let loaded = match p {
        Program::RawTracePoint(p) => p.load(),
        Program::KProbe(p) => p.load(),
        _ => return Err(format!("the BPF program {prog} is of an unexpected type")),
    };
    let took = format!("bpf {prog} verified in {:.3} s", t0.elapsed().as_secs_f64());
    loaded.map(|()| took).map_err(|e| match &e {
        // The whole verifier log is in the error's text: keep its end,
        // which says why.
        aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            // The last line is statistics; the one before says why.
            let why = log
                .lines()
                .rev()
                .filter(|l| !l.trim().is_empty())
                .find(|l| {
                    !l.starts_with("verification time")
                        && !l.starts_with("processed ")
                        && !l.starts_with("stack depth")
                })
                .unwrap_or("")
                .trim();
            let why: String = why
                .chars()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("the kernel refused the BPF program {prog} ({io_error}): {why}")
        }
        e => err(&format!("the kernel refused the BPF program {prog}"), e),
    })
}

/// The kernel's BTF cut down for the program (see `btf.rs`), from the
/// cache when this kernel was seen before (see `cache.rs`).
fn cut_btf(timings: &mut Vec<String>) -> Result<aya::Btf, String> {
    use object::{Object as _, ObjectSection as _};
    let file = object::File::parse(OBJECT).map_err(|e| e.to_string())?;
    let local = file
        .section_by_name(".BTF")
        .ok_or("the object has no .BTF")?
        .data()
        .map_err(|e| e.to_string())?;
    let parse =
        |b: &[u8]| aya::Btf::parse(b, aya::Endianness::default()).map_err(|e| e.to_string());
    let dir = super::cache::dir();
    let key = super::cache::Key::of_this_kernel(local);
    let kept = dir.as_deref().zip(key.as_ref().ok());
    if let Some(cut) = kept.and_then(|(d, k)| super::cache::get(d, k)) {
        if let Ok(btf) = parse(&cut) {
            timings.push("bpf: the cut BTF was read from the cache".into());
            return Ok(btf);
        }
    }
    let kernel = std::fs::read("/sys/kernel/btf/vmlinux")
        .map_err(|e| format!("/sys/kernel/btf/vmlinux: {e}"))?;
    let cut = super::btf::cut(&kernel, local)?;
    timings.push(match (&dir, &key) {
        (None, _) => "bpf: the cut BTF was made, not kept (JAILTRACE_CACHE_DIR is empty)".into(),
        (Some(_), Err(why)) => format!("bpf: the cut BTF was made, not kept ({why})"),
        (Some(d), Ok(k)) => match super::cache::put(d, k, &cut) {
            Ok(()) => "bpf: the cut BTF was made and kept".into(),
            Err(e) => format!("bpf: the cut BTF was made, not kept ({e})"),
        },
    });
    parse(&cut)
}

/// Loads the program, fills the descriptors and attaches it.
pub fn load() -> Result<Loaded, String> {
    let t0 = std::time::Instant::now();
    // How long each step took, for `record` to show (see docs/performance.md).
    let mut timings = Vec::new();
    // aya relocates against the cut, a few hundred types instead of all
    // (see btf.rs); should the cut fail, against the whole. The loader is
    // made where it cannot parse the whole on its own (see sys.rs).
    let mut loader = super::sys::made_without_opens(aya::EbpfLoader::new)
        .map_err(|_| "the BPF loader thread panicked".to_string())?;
    let target = cut_btf(&mut timings).or_else(|e| {
        timings.push(format!("bpf: the whole kernel BTF is used ({e})"));
        aya::Btf::from_sys_fs().map_err(|e| err("cannot read the kernel's BTF", e))
    })?;
    timings.push(format!(
        "bpf BTF ready at {:.3} s",
        t0.elapsed().as_secs_f64()
    ));
    loader.btf(Some(&target));
    // Task storage maps have no aya type; they are only used by the
    // program itself.
    let mut ebpf = loader.allow_unsupported_maps().load(OBJECT).map_err(|e| {
        let mut msg = err("cannot load the BPF program", &e);
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg.replace('\n', " ")
    })?;
    fill_descriptors(&mut ebpf)?;
    timings.push(format!(
        "bpf object loaded in {:.3} s",
        t0.elapsed().as_secs_f64()
    ));
    // Verification is most of the start-up. The kernel verifies the
    // programs of a privileged loader concurrently, so each is loaded on a
    // thread of its own (the two syscall programs take about the same).
    let loaded: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ebpf
            .programs_mut()
            .map(|(name, prog)| scope.spawn(move || load_program(name, prog)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a loader thread panicked".into()))
            })
            .collect()
    });
    timings.extend(
        loaded
            .into_iter()
            .collect::<Result<Vec<String>, String>>()?,
    );
    timings.push(format!(
        "bpf programs verified at {:.3} s",
        t0.elapsed().as_secs_f64()
    ));
    // The rename kprobe tells exit whether a rename made its target's
    // name (nothing is traced yet, so before the tracepoints is as good
    // as after). Without kprobes the recording goes on, and says what it
    // could not tell.
    let (prog, func) = ("rename_target", "security_inode_rename");
    let k: &mut KProbe = ebpf
        .program_mut(prog)
        .ok_or_else(|| format!("the BPF object has no program {prog}"))?
        .try_into()
        .map_err(|e| err(prog, e))?;
    let renames_seen = k.attach(func, 0).is_ok();
    // The exit program first, so that every entry recorded has its exit.
    for (prog, tp) in [
        ("process_fork", "sched_process_fork"),
        ("process_exit", "sched_process_exit"),
        ("process_exec", "sched_process_exec"),
        ("sys_exit", "sys_exit"),
        ("sys_enter", "sys_enter"),
    ] {
        let p: &mut RawTracePoint = ebpf
            .program_mut(prog)
            .ok_or_else(|| format!("the BPF object has no program {prog}"))?
            .try_into()
            .map_err(|e| err(prog, e))?;
        p.attach(tp)
            .map_err(|e| err(&format!("cannot attach to {tp}"), e))?;
        timings.push(format!(
            "bpf {prog} attached at {:.3} s",
            t0.elapsed().as_secs_f64()
        ));
    }
    let traced = HashMap::try_from(
        ebpf.take_map("traced")
            .ok_or_else(|| "the BPF object has no traced map".to_string())?,
    )
    .map_err(|e| err("traced", e))?;
    let events = RingBuf::try_from(
        ebpf.take_map("events")
            .ok_or_else(|| "the BPF object has no events map".to_string())?,
    )
    .map_err(|e| err("events", e))?;
    let lost = PerCpuArray::try_from(
        ebpf.take_map("lost")
            .ok_or_else(|| "the BPF object has no lost map".to_string())?,
    )
    .map_err(|e| err("lost", e))?;
    let undecoded = PerCpuArray::try_from(
        ebpf.take_map("undecoded")
            .ok_or_else(|| "the BPF object has no undecoded map".to_string())?,
    )
    .map_err(|e| err("undecoded", e))?;
    Ok(Loaded {
        _ebpf: ebpf,
        traced,
        events,
        lost,
        undecoded,
        renames_seen,
        timings,
    })
}

impl Loaded {
    /// x32 syscalls the command made, summed over the CPUs.
    pub fn x32_calls(&self) -> u64 {
        self.undecoded.get(&U_X32, 0).map_or(0, |v| v.iter().sum())
    }

    /// The lost-data counters, summed over the CPUs.
    pub fn lost(&self) -> [u64; L_N] {
        let mut out = [0u64; L_N];
        for (i, slot) in out.iter_mut().enumerate() {
            if let Ok(v) = self.lost.get(&(i as u32), 0) {
                *slot = v.iter().sum();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each loss counter has its words.
    #[test]
    fn every_loss_is_named() {
        assert!(LOST_NAMES.iter().all(|n| !n.is_empty()), "{LOST_NAMES:?}");
    }

    #[test]
    fn kernels_without_bpf_loop_are_named() {
        let old = too_old("5.16.20-amd64").unwrap();
        assert!(old.contains("5.16.20-amd64") && old.contains("5.17") && old.contains("bpf_loop"));
        assert!(too_old("4.19.0-27-cloud-amd64").is_some());
        assert_eq!(too_old("5.17.0"), None);
        assert_eq!(too_old("6.1.0-57-cloud-amd64"), None);
        assert_eq!(too_old("6.18.44-fc-v1272"), None);
        // Unreadable: left to the loader to say.
        assert_eq!(too_old("weird"), None);
    }

    #[test]
    fn descriptors_come_from_the_decode_table() {
        // openat(dirfd, path, flags, mode): string arg 2, dirfd arg 1.
        let d = descriptor(Sys::Openat);
        assert_eq!((d.flags & D_ON, d.str[0], d.dirfd[0]), (D_ON, 2, 1));
        assert_ne!(d.flags & D_CREATED, 0);
        assert_eq!(d.oflags, 3);
        // rename(old, new): two strings against the cwd.
        let d = descriptor(Sys::Rename);
        assert_eq!((d.str[0], d.str[1], d.dirfd[0], d.dirfd[1]), (1, 2, 0, 0));
        // renameat2(olddirfd, old, newdirfd, new, flags).
        let d = descriptor(Sys::Renameat2);
        assert_eq!((d.str[0], d.str[1], d.dirfd[0], d.dirfd[1]), (2, 4, 1, 3));
        // connect(fd, addr, len).
        let d = descriptor(Sys::Connect);
        assert_eq!((d.sock, d.socklen), (2, 3));
        // openat2(dirfd, path, how, size).
        let d = descriptor(Sys::Openat2);
        assert_eq!((d.str[0], d.dirfd[0], d.u64p), (2, 1, 3));
        // fchdir(fd).
        assert_eq!(descriptor(Sys::Fchdir).fd, 1);
        assert_ne!(descriptor(Sys::Execve).flags & D_EXEC, 0);
        // An empty path names the dirfd's file only for these; for an
        // fstat-style call it names nothing, and nothing is walked.
        assert_ne!(descriptor(Sys::Execveat).flags & D_EMPTYFD, 0);
        assert_ne!(descriptor(Sys::Linkat).flags & D_EMPTYFD, 0);
        assert_eq!(descriptor(Sys::Newfstatat).flags & D_EMPTYFD, 0);
        assert_eq!(descriptor(Sys::Statx).flags & D_EMPTYFD, 0);
        // fanotify_mark's descriptor is its operand only for a NULL path.
        assert_ne!(descriptor(Sys::FanotifyMark).flags & D_FDNULL, 0);
        assert_ne!(descriptor(Sys::FanotifyMarkSplit).flags & D_FDNULL, 0);
        assert_eq!(descriptor(Sys::Fchdir).flags & D_FDNULL, 0);
        assert_eq!(descriptor(Sys::Umount).flags, 0);
        assert_eq!(descriptor(Sys::Sendmmsg32).msg, M_MMSG32);
        assert_eq!(descriptor(Sys::Socketcall).msg, M_SOCKETCALL);
    }

    /// Every operand the decode table can yield, for any argument values
    /// that change its shape (a NULL pointer, a flag, AT_FDCWD,
    /// socketcall's call number), is one the descriptor captures: else
    /// user space finds no item for it, and nothing counts the loss.
    #[test]
    fn descriptors_capture_every_operand_shape() {
        const FAN_MARK_FLUSH: u64 = 0x80;
        let flags = (libc::AT_EMPTY_PATH | libc::AT_SYMLINK_FOLLOW | libc::AT_REMOVEDIR) as u64
            | FAN_MARK_FLUSH;
        let marked = |v: u64| (MARK..MARK + 6).contains(&v);
        let marked_fd = |fd: i32| marked(u64::from(fd as u32));
        let markers: [u64; 6] = std::array::from_fn(|i| MARK + i as u64);
        for arch in [arch::AUDIT_ARCH_X86_64, arch::AUDIT_ARCH_I386] {
            for &(nr, sys) in arch::table(arch) {
                let d = descriptor(sys);
                let mut probes = vec![markers];
                for j in 0..6 {
                    for v in [
                        0,
                        u64::from(libc::AT_FDCWD as u32),
                        (MARK + j as u64) | flags,
                    ] {
                        let mut a = markers;
                        a[j] = v;
                        probes.push(a);
                    }
                }
                if sys == Sys::Socketcall {
                    for call in 1..=20 {
                        let mut a = markers;
                        a[0] = call;
                        probes.push(a);
                    }
                }
                for a in &probes {
                    // What the program reads for a descriptor slot: the
                    // argument it names (a dirfd slot of 0: the cwd).
                    let arg = |slot: u8| a[usize::from(slot) - 1];
                    let base = |slot: u8| match slot {
                        0 => libc::AT_FDCWD,
                        s => arg(s) as i32,
                    };
                    for u in decode::decode(sys, a).into_iter().flatten() {
                        let what = format!("{sys:?} (nr {nr}, arch {arch:#x}) {a:x?}: {u:?}");
                        match u.operand {
                            Operand::Path { dirfd, addr, .. }
                            | Operand::Openat2 { dirfd, addr, .. } => {
                                if !marked(addr) || !(marked_fd(dirfd) || dirfd == libc::AT_FDCWD) {
                                    continue;
                                }
                                assert!(
                                    (0..2).any(|i| d.str[i] != 0
                                        && arg(d.str[i]) == addr
                                        && base(d.dirfd[i]) == dirfd),
                                    "{what}: not captured by {d:?}"
                                );
                                if let Operand::Openat2 { how, .. } = u.operand {
                                    assert!(d.u64p != 0 && arg(d.u64p) == how, "{what}: open_how");
                                }
                            }
                            Operand::Fd(fd) => {
                                if marked_fd(fd) {
                                    assert!(d.fd != 0 && arg(d.fd) as i32 == fd, "{what}: {d:?}");
                                }
                            }
                            Operand::Sockaddr { addr, len } => {
                                if marked(addr) {
                                    assert!(d.sock != 0 && arg(d.sock) == addr, "{what}: {d:?}");
                                }
                                if marked(len) {
                                    assert!(
                                        d.socklen != 0 && arg(d.socklen) == len,
                                        "{what}: {d:?}"
                                    );
                                }
                            }
                            Operand::ReturnedFd => assert_ne!(d.flags & D_RETFD, 0, "{what}"),
                            Operand::SocketcallSockaddr { .. }
                            | Operand::Msghdrs { .. }
                            | Operand::SocketcallMsghdrs { .. } => {
                                assert_ne!(d.msg, 0, "{what}: message layout");
                            }
                        }
                    }
                }
            }
        }
    }
}
