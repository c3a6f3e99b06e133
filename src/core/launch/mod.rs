//! The `run` command: run a command inside a jail the secure way.
//!
//! The work is split so that `verify` can reuse it:
//! - [`Plan::new`] (parent, before fork): resolve the user and group on the
//!   host, decide the mounts (`--mount`, `--manifest`), create missing mount
//!   points safely, build argv, the environment and the exec candidates as
//!   C strings.
//! - [`enter_jail`] (child, after fork): private mount namespace, mounts,
//!   chdir/chroot/chdir, setgroups/setgid/setuid, no_new_privs, close fds.
//!   Allocation-free.
//! - [`exec_command`] (child): PATH search inside the jail and execve.
//!
//! [`run`] forks, runs [`child_main`] in the child, forwards SIGINT, SIGTERM,
//! SIGHUP and SIGQUIT to the child's process group (the child leads its own session
//! and group), and returns the command's exit status (128+N for signal N).
//! SIGTSTP stops the child's group along with jailtrace, and continuing
//! jailtrace continues it: see docs/security.md.

mod child;
mod plan;
mod sys;

use std::ffi::OsString;
use std::os::fd::AsFd;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

pub use child::{child_main, enter_jail, exec_command, read_report, ChildError, Step};
pub use plan::{
    exec_candidates, mounts_from_manifest, parse_mount, resolve_identity, safe_env, Identity,
    JailOptions, MountKind, MountSpec, Plan, PlanError, DEFAULT_LOG_SOCKET, SAFE_PATH,
};
pub use sys::die_of;

use crate::core::error::{Exit, Failure};

fn internal(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

/// How a wait status ends jailtrace: the exit code, or the signal.
pub fn exit_of(ws: WaitStatus) -> Option<Exit> {
    match ws {
        WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
        WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig as i32)),
        _ => None,
    }
}

/// Waits for `child` to end and returns how it ended.
pub fn wait_exit(child: Pid) -> nix::Result<Exit> {
    loop {
        match waitpid(child, None) {
            Ok(ws) => {
                if let Some(exit) = exit_of(ws) {
                    return Ok(exit);
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Runs `command` in the jail as `jail` says, forwarding signals, and says
/// how it ended.
pub fn run_in_jail(jail: &JailOptions, command: &[OsString]) -> anyhow::Result<Exit> {
    let plan = Plan::new(jail, command).map_err(|e| internal(e.to_string()))?;
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| internal(format!("cannot create a pipe: {e}")))?;
    let old_mask =
        sys::block_forwarded().map_err(|e| internal(format!("cannot block signals: {e}")))?;
    match sys::fork() {
        Err(e) => Err(internal(format!("cannot fork: {e}"))),
        Ok(ForkResult::Child) => {
            drop(report_r);
            // The child starts with the parent's dispositions (default) and
            // must not keep the forwarded signals blocked across exec.
            let _ = sys::restore_mask(&old_mask);
            child_main(&plan, report_w.as_fd())
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_w);
            let installed = sys::forward_signals_to(child);
            let _ = sys::restore_mask(&old_mask);
            if let Err(e) = installed {
                // Without forwarding the child would outlive an interrupted
                // jailtrace unnoticed: stop it.
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = wait_exit(child);
                return Err(internal(format!("cannot install signal handlers: {e}")));
            }
            let report = read_report(report_r.as_fd());
            let status = wait_exit(child);
            sys::stop_forwarding();
            let status =
                status.map_err(|e| internal(format!("cannot wait for the command: {e}")))?;
            match report {
                Ok(Some(err)) => Err(Failure::exit(err.exit_code(), err.message(&plan)).into()),
                Ok(None) => Ok(status),
                Err(e) => Err(internal(format!("cannot read the child's report: {e}"))),
            }
        }
    }
}

/// Finds `prog` like `execvp` would, so that "not found" is reported before
/// anything is traced.
pub fn find_program(
    prog: &std::path::Path,
) -> Result<std::path::PathBuf, crate::core::error::Failure> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let name = prog.display();
    if prog.as_os_str().as_bytes().contains(&b'/') {
        return match std::fs::metadata(prog) {
            Ok(_) => Ok(prog.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(crate::core::error::Failure::exit(
                    crate::core::error::EXIT_NOT_FOUND,
                    format!("{name}: no such file or directory"),
                ))
            }
            Err(e) => Err(crate::core::error::Failure::exit(
                crate::core::error::EXIT_CANNOT_EXEC,
                format!("{name}: {e}"),
            )),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = None;
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(prog);
        if let Ok(md) = std::fs::metadata(&cand) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
            denied.get_or_insert(cand);
        }
    }
    match denied {
        Some(c) => Err(crate::core::error::Failure::exit(
            crate::core::error::EXIT_CANNOT_EXEC,
            format!("{}: permission denied", c.display()),
        )),
        None => Err(crate::core::error::Failure::exit(
            crate::core::error::EXIT_NOT_FOUND,
            format!("{name}: command not found"),
        )),
    }
}
