//! Launching a command: on the host or inside a jail, the secure way. One
//! launch path serves `run`, and `record`'s and `verify`'s tracer:
//! [`spawn`] forks; its child waits to be seized when asked, enters the jail
//! or switches user, installs the tracer's seccomp filter when there is one,
//! and execs, sending any failure back as a [`ChildError`].
//!
//! - [`Plan::new`] (parent, before fork): resolve the user and group on the
//!   host, decide the mounts (`--mount`, `--manifest`), create missing mount
//!   points safely, build argv, the environment and the exec candidates as
//!   C strings.
//! - [`enter_jail`] (child, after fork): private mount namespace, mounts,
//!   chdir/chroot/chdir, setgroups/setgid/setuid, no_new_privs, close fds.
//!   Allocation-free.
//! - [`exec_command`] (child): PATH search inside the jail and execve.
//!
//! [`run_in_jail`] spawns, forwards SIGINT, SIGTERM,
//! SIGHUP and SIGQUIT to the child's process group (the child leads its own session
//! and group), and returns the command's exit status (128+N for signal N).
//! SIGTSTP stops the child's group along with jailtrace, and continuing
//! jailtrace continues it: see docs/security.md.

mod child;
mod plan;
mod sys;

use std::ffi::OsString;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

pub use child::{enter_jail, exec_command, read_report, ChildError, Step};
pub use plan::{
    exec_candidates, mounts_from_manifest, parse_mount, resolve_identity, safe_env, Identity,
    JailOptions, MountKind, MountSpec, Plan, PlanError, DEFAULT_LOG_SOCKET, SAFE_PATH,
};
pub use sys::{die_of, from_terminal, pass_on, spawn, Child, ChildSpec, Launch};

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
    // Blocked around the fork, so that a signal cannot reach jailtrace
    // between the fork and the forwarding to the child; the child restores
    // the mask before exec.
    let old_mask =
        sys::block_forwarded().map_err(|e| internal(format!("cannot block signals: {e}")))?;
    let spec = ChildSpec {
        launch: Launch::Jail(&plan),
        hold: false,
        mask: Some(&old_mask),
        filter: None,
        no_new_privs: false,
        child_affinity: None,
        // Forwarding starts after the fork: the child keeps jailtrace's
        // dispositions as they are, an ignored one included.
        ignored: Vec::new(),
    };
    let child = match spawn(&spec) {
        Ok(c) => c,
        Err(e) => {
            let _ = sys::restore_mask(&old_mask);
            return Err(internal(format!("cannot fork: {e}")));
        }
    };
    let installed = sys::forward_signals_to(child.pid);
    let _ = sys::restore_mask(&old_mask);
    if let Err(e) = installed {
        // Without forwarding the child would outlive an interrupted
        // jailtrace unnoticed: stop it.
        let _ = nix::sys::signal::kill(child.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = wait_exit(child.pid);
        return Err(internal(format!("cannot install signal handlers: {e}")));
    }
    let report = child.report();
    let status = wait_exit(child.pid);
    sys::stop_forwarding();
    let status = status.map_err(|e| internal(format!("cannot wait for the command: {e}")))?;
    match report {
        Ok(Some(err)) => Err(Failure::because(err.cause(), err.message(&plan)).into()),
        Ok(None) => Ok(status),
        Err(e) => Err(internal(format!("cannot read the child's report: {e}"))),
    }
}

/// Finds `prog` like `execvp` would, so that "not found" is reported before
/// anything is traced.
pub fn find_program(
    prog: &std::path::Path,
) -> Result<std::path::PathBuf, crate::core::error::Failure> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::os::unix::fs::PermissionsExt;
    let name = prog.display();
    if prog.as_os_str().as_bytes().contains(&b'/') {
        return match std::fs::metadata(prog) {
            Ok(_) => Ok(prog.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(crate::core::error::Failure::because(
                    crate::core::error::Cause::NotFound,
                    format!("{name}: no such file or directory"),
                ))
            }
            Err(e) => Err(crate::core::error::Failure::because(
                crate::core::error::Cause::CannotExec,
                format!("{name}: {e}"),
            )),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = None;
    for cand in exec_candidates(prog.as_os_str().as_bytes(), path.as_bytes(), b".") {
        let cand = std::path::PathBuf::from(std::ffi::OsString::from_vec(cand));
        if let Ok(md) = std::fs::metadata(&cand) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
            denied.get_or_insert(cand);
        }
    }
    match denied {
        Some(c) => Err(crate::core::error::Failure::because(
            crate::core::error::Cause::CannotExec,
            format!("{}: permission denied", c.display()),
        )),
        None => Err(crate::core::error::Failure::because(
            crate::core::error::Cause::NotFound,
            format!("{name}: command not found"),
        )),
    }
}
