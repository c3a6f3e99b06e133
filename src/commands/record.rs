//! The `record` command: trace a command, resolve what it touched, write
//! the manifest.

use std::ffi::{CString, OsString};
use std::io::IsTerminal;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use regex::Regex;

use crate::commands::common::{parse_duration, BackendArg};
use crate::commands::Outcome;
use crate::core::error::{Cause, Exit, Failure};
use crate::core::launch::Step;
use crate::core::manifest::pathenc::{Bytes, MPath};
use crate::core::manifest::CommandInfo;
use crate::core::record::{RecordError, Request};
use crate::core::trace::{self, Launch, TraceOptions};

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Where to write the manifest (`-` for stdout).
    #[arg(short, long, default_value = "manifest.json", value_name = "FILE")]
    pub output: PathBuf,
    /// Keep only entries whose path matches (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Drop entries whose path matches (repeatable; applied after --include).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Send SIGTERM to the traced processes after this long (e.g. 5s, 500ms,
    /// 2m), then SIGKILL after --grace.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// How long to wait after SIGTERM before SIGKILL.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub grace: Duration,
    /// CPU placement of the ptrace tracer and the traced command (default:
    /// same; see docs/performance.md). Refused with --backend bpf, which has
    /// no tracer to place.
    #[arg(long, value_enum)]
    pub cpu: Option<CpuArg>,
    /// Record the SHA-256 of every regular file read.
    #[arg(long)]
    pub hash: bool,
    /// The tracing engine: ptrace (works without root and in ordinary
    /// containers) or bpf (root and a kernel with BTF; nothing stops, so
    /// long runs cost little).
    #[arg(long, value_enum, default_value = "ptrace")]
    pub backend: BackendArg,
    /// Exit with the command's status even if accesses were lost (bpf:
    /// events dropped; both backends: paths the host cannot show); the
    /// manifest still says how many.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Name the Debian package that owns each file (from dpkg's database),
    /// so that `diff` reports new and removed packages first.
    #[arg(long)]
    pub packages: bool,
    /// What to add beyond the paths the run took, each entry marked with
    /// its rule: `all`, `none`, `base` (nss, resolver, time, devices, tmp),
    /// or rule names, comma-separated (also tls, gconv, pam). See
    /// docs/manifest.md.
    #[arg(long, value_name = "RULES", default_value = "all", value_parser = crate::core::infer::parse_rules)]
    pub infer: std::vec::Vec<crate::core::infer::Rule>,
    /// Keep this directory whole: the manifest names it with the digest of
    /// what it holds after the run, and materialize copies all of it (a
    /// service's data that one recorded session does not read through: a
    /// mail spool, a document root). Repeat for several.
    #[arg(long = "tree", value_name = "DIR")]
    pub trees: Vec<PathBuf>,
    /// The command to trace.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `--cpu`: the command line's name for [`trace::Placement`], so that clap
/// stays out of the tracer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuArg {
    /// Pin jailtrace and the command to the CPU jailtrace starts on (the
    /// fastest; the command still sees its original CPU mask).
    Same,
    /// Pin only jailtrace.
    Tracer,
    /// Change nothing.
    None,
}

impl From<CpuArg> for trace::Placement {
    fn from(c: CpuArg) -> trace::Placement {
        match c {
            CpuArg::Same => trace::Placement::Same,
            CpuArg::Tracer => trace::Placement::Tracer,
            CpuArg::None => trace::Placement::None,
        }
    }
}

fn compile(patterns: &[String], flag: &str) -> anyhow::Result<Vec<Regex>> {
    patterns
        .iter()
        .map(|p| Regex::new(p).with_context(|| format!("bad {flag} regex {p:?}")))
        .collect()
}

pub fn run(args: &RecordArgs) -> anyhow::Result<Outcome> {
    let internal = |msg: String| Failure::new(msg);
    if let (BackendArg::Bpf, Some(cpu)) = (args.backend, args.cpu) {
        // Silently ignoring it would let a benchmark or a CI job believe
        // the placement it asked for was applied.
        let name = clap::ValueEnum::to_possible_value(&cpu)
            .map_or_else(String::new, |v| v.get_name().to_string());
        return Err(internal(format!(
            "--cpu {name} places the ptrace tracer; --backend bpf stops nothing and has no \
             tracer to place"
        ))
        .into());
    }
    let include = compile(&args.include, "--include").map_err(|e| internal(format!("{e:#}")))?;
    let exclude = compile(&args.exclude, "--exclude").map_err(|e| internal(format!("{e:#}")))?;
    let program = crate::core::launch::find_program(Path::new(&args.command[0]))?;
    let cwd = std::env::current_dir()
        .map_err(|e| internal(format!("cannot read the working directory: {e}")))?;
    let cwd = MPath::new(cwd.into_os_string().into_vec())
        .map_err(|e| internal(format!("working directory: {e}")))?;
    check_output_dir(&args.output)?;
    let trees = args
        .trees
        .iter()
        .map(|t| crate::core::jail::trees::root(t))
        .collect::<Result<Vec<_>, _>>()?;
    // Before the command runs: no database is a usage error, not a lost run.
    let dpkg = if args.packages {
        Some(crate::core::packages::Db::host()?)
    } else {
        None
    };

    let to_c =
        |s: &[u8]| CString::new(s).map_err(|_| internal("an argument contains a NUL byte".into()));
    let c_program = to_c(program.as_os_str().as_bytes())?;
    let argv = args
        .command
        .iter()
        .map(|a| to_c(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;

    let request = Request {
        engine: args.backend.into(),
        launch: Launch::Host {
            program: c_program,
            argv,
        },
        trace: TraceOptions {
            placement: args.cpu.unwrap_or(CpuArg::Same).into(),
            timeout: args.timeout,
            grace: args.grace,
            progress: std::io::stderr().is_terminal(),
            root: None,
            fresh: None,
        },
        resolve: crate::core::resolve::Options {
            hash: args.hash,
            setuid_effective: nix::unistd::geteuid().is_root(),
        },
        command: CommandInfo {
            argv: args
                .command
                .iter()
                .map(|a| Bytes(a.as_bytes().to_vec()))
                .collect(),
            cwd,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            exit_status: None,
            set_uids: Vec::new(),
            set_gids: Vec::new(),
            binds_privileged_port: None,
        },
        infer: &args.infer,
        trees: &trees,
        include: &include,
        exclude: &exclude,
        packages: dpkg.as_ref(),
    };
    // Never freed: the process ends once the command returns, and
    // freeing a large recording's entries one by one takes longer than
    // the kernel's taking back its memory at once (20 ms for 70k).
    let recorded = std::mem::ManuallyDrop::new(match crate::core::record::record(request) {
        Ok(r) => r,
        Err(RecordError::NotStarted(e)) => return Err(start_failure(&program, &e).into()),
        Err(RecordError::Trace(e)) => return Err(internal(e.to_string()).into()),
    });
    if std::env::var_os("JAILTRACE_BPF_STARTUP").is_some() {
        for t in &recorded.run.timings {
            eprintln!("jailtrace: {t}");
        }
    }
    let manifest = &recorded.manifest;
    let saved = manifest.save(&args.output);
    if let Some(bug) = &recorded.run.internal_error {
        eprintln!("jailtrace: internal error while tracing: {bug}");
        eprintln!("jailtrace: every traced process was killed");
        match &saved {
            Ok(()) => eprintln!(
                "jailtrace: the manifest of everything seen until then was written to {}",
                args.output.display()
            ),
            Err(e) => eprintln!("jailtrace: {e}"),
        }
        return Ok(Outcome::Failed(Cause::Failed));
    }
    let status = manifest.command.exit_status;
    if let Err(e) = saved {
        // The command ran; say so even though its manifest is lost.
        eprintln!("jailtrace: {e}");
        if let Some(status) = status {
            eprintln!("jailtrace: the traced command exited with status {status}");
        }
        return Ok(Outcome::Failed(Cause::Failed));
    }
    for w in &manifest.warnings {
        eprintln!("jailtrace: warning: {w}");
    }
    if recorded.run.lost > 0 && !args.allow_incomplete {
        eprintln!(
            "jailtrace: the recording is incomplete (see the warning); --allow-incomplete accepts it"
        );
        return Ok(Outcome::Failed(Cause::Incomplete));
    }
    Ok(match (recorded.run.killed_by, status) {
        (Some(sig), _) => Outcome::Program(Exit::Signal(sig)),
        (None, Some(code)) => Outcome::Program(Exit::Code(code)),
        // The command's end was not seen: jailtrace's failure.
        (None, None) => Outcome::Failed(Cause::Failed),
    })
}

/// The one line for a command that could not be started.
fn start_failure(program: &Path, e: &crate::core::launch::ChildError) -> Failure {
    let name = program.display();
    let msg = match e.step {
        Step::Exec => format!("{name}: {}", e.errno.desc()),
        Step::Seccomp => format!(
            "cannot install the seccomp filter in the traced command: {}",
            e.errno.desc()
        ),
        _ => format!("cannot start the command: {}", e.errno.desc()),
    };
    Failure::because(e.cause(), msg)
}

/// Fails early, before the command runs, when the manifest could not be
/// written at all.
fn check_output_dir(out: &Path) -> Result<(), Failure> {
    if out == Path::new("-") {
        return Ok(());
    }
    // A planted link is refused before the command runs, not after.
    crate::core::manifest::output_target(out).map_err(|e| Failure::new(e.to_string()))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => Err(Failure::new(format!(
            "{}: not a directory (output {})",
            dir.display(),
            out.display()
        ))),
        Err(e) => Err(Failure::new(format!(
            "cannot write {}: {}: {e}",
            out.display(),
            dir.display()
        ))),
    }
}
