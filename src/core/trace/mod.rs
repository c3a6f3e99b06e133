//! Recording what a command does to paths. The seam: [`Backend`], with
//! two engines behind it, [`ptrace::Ptrace`] and [`bpf::Bpf`], which share
//! the decode table ([`arch`], [`decode`]), the operand interpreter
//! ([`operand`]), the log and its rules ([`log`]), how a recording ends
//! ([`ends`], [`signals`]) and the live line ([`progress`]). See
//! docs/design.md.

pub mod arch;
pub mod bpf;
pub mod decode;
mod ends;
pub mod log;
mod operand;
mod progress;
pub mod ptrace;
mod signals;

use std::collections::BTreeSet;
use std::time::Duration;

use nix::errno::Errno;

pub use crate::core::launch::Launch;
pub use log::{Fresh, Outcomes, RawLog, Seen};
pub use ptrace::Ptrace;

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
    /// Where an engine that leaves jailtrace's CPU idle sends each new
    /// outcome of the log as it comes (bpf; see `resolve::ahead`).
    /// When it would have to wait, it stops sending (the receiver then
    /// knows it has not had everything).
    pub fresh: Option<std::sync::mpsc::SyncSender<Vec<Fresh>>>,
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
    /// A `bind` asked for an IPv4/IPv6 port below 1024 (any outcome).
    pub privileged_bind: bool,
    /// The tracer failed mid-trace (a bug): every tracee was killed, and the
    /// log holds what was seen until then.
    pub internal_error: Option<String>,
    /// How much the engine knows it lost (events, strings, reads); the
    /// warnings say what. Always 0 for ptrace, which stops instead.
    pub lost: u64,
    /// How long the engine's start-up steps took, one line each (bpf);
    /// `record` shows them when `JAILTRACE_BPF_STARTUP` is set.
    pub timings: Vec<String>,
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
