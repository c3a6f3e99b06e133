//! The child side: entering the jail and exec. These functions run between
//! fork and exec, so they allocate nothing and only replay a [`Plan`]; a
//! failure is a [`ChildError`] (a step and an errno), which the child sends
//! to the parent over a pipe as eight bytes.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::plan::{open_mount_target, MountKind, Plan};
use super::sys;
use crate::core::error::Cause;

/// The step of the jail entry that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Setsid,
    Signals,
    Unshare,
    MakePrivate,
    OpenJail,
    /// Opening the mount point of mount N of the plan.
    MountTarget(u16),
    /// Mounting mount N.
    Mount(u16),
    Chdir,
    Chroot,
    ChdirRoot,
    Setgroups,
    Setgid,
    Setuid,
    NoNewPrivs,
    CloseFds,
    /// Every exec candidate failed; the errno is the most telling one.
    Exec,
    /// Installing the tracer's seccomp filter (`record`, `verify`).
    Seccomp,
    /// Waiting for the tracer's go: it never came.
    Hold,
}

impl Step {
    fn code(self) -> u32 {
        match self {
            Step::Setsid => 13,
            Step::Signals => 14,
            Step::Unshare => 1,
            Step::MakePrivate => 2,
            Step::OpenJail => 3,
            Step::MountTarget(i) => 0x1_0000 | u32::from(i),
            Step::Mount(i) => 0x2_0000 | u32::from(i),
            Step::Chdir => 4,
            Step::Chroot => 5,
            Step::ChdirRoot => 6,
            Step::Setgroups => 7,
            Step::Setgid => 8,
            Step::Setuid => 9,
            Step::NoNewPrivs => 10,
            Step::CloseFds => 11,
            Step::Exec => 12,
            Step::Seccomp => 15,
            Step::Hold => 16,
        }
    }

    fn from_code(c: u32) -> Option<Step> {
        Some(match c {
            1 => Step::Unshare,
            2 => Step::MakePrivate,
            3 => Step::OpenJail,
            4 => Step::Chdir,
            5 => Step::Chroot,
            6 => Step::ChdirRoot,
            7 => Step::Setgroups,
            8 => Step::Setgid,
            9 => Step::Setuid,
            10 => Step::NoNewPrivs,
            11 => Step::CloseFds,
            12 => Step::Exec,
            13 => Step::Setsid,
            14 => Step::Signals,
            15 => Step::Seccomp,
            16 => Step::Hold,
            c if c >> 16 == 1 => Step::MountTarget(c as u16),
            c if c >> 16 == 2 => Step::Mount(c as u16),
            _ => return None,
        })
    }
}

/// A failed step in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildError {
    pub step: Step,
    pub errno: Errno,
}

impl ChildError {
    fn at(step: Step) -> impl Fn(Errno) -> ChildError {
        move |errno| ChildError { step, errno }
    }

    /// Why the command did not start: not found, not executable, or a
    /// step of jailtrace's own.
    pub fn cause(&self) -> Cause {
        match (self.step, self.errno) {
            (Step::Exec, Errno::ENOENT) => Cause::NotFound,
            (Step::Exec, _) => Cause::CannotExec,
            _ => Cause::Failed,
        }
    }

    /// The status the child exits with, by the chroot/env conventions: 127
    /// when the command was not found, 126 when it could not be executed,
    /// 125 otherwise. (jailtrace reads the report; a parent that only
    /// waits sees this.)
    pub fn exit_code(&self) -> i32 {
        use crate::core::error::{EXIT_CANNOT_EXEC, EXIT_INTERNAL, EXIT_NOT_FOUND};
        match self.cause() {
            Cause::NotFound => EXIT_NOT_FOUND,
            Cause::CannotExec => EXIT_CANNOT_EXEC,
            Cause::Failed | Cause::Incomplete => EXIT_INTERNAL,
        }
    }

    /// One line saying what failed and why.
    pub fn message(&self, plan: &Plan) -> String {
        let jail = plan.jail.display();
        let e = self.errno.desc();
        let mount = |i: u16| plan.prepared_mounts.get(i as usize).map(|m| m.kind);
        match self.step {
            Step::Setsid => format!("cannot start a new session: {e}"),
            Step::Signals => format!("cannot reset signal dispositions: {e}"),
            Step::Unshare if self.errno == Errno::EPERM => {
                format!("cannot enter a private mount namespace: {e} (run needs root)")
            }
            Step::Unshare => format!("cannot enter a private mount namespace: {e}"),
            Step::MakePrivate => format!("cannot make the mount namespace private: {e}"),
            Step::OpenJail if self.errno == Errno::ESTALE => format!(
                "{jail}: cannot enter the jail: the path names another directory than when \
                 it was checked (it was replaced meanwhile)"
            ),
            Step::OpenJail => format!("{jail}: cannot open the jail: {e}"),
            Step::MountTarget(i) => match mount(i) {
                Some(k) => format!(
                    "{}: cannot mount {} there: {}",
                    plan.jail.join(k.target()).display(),
                    k.name(),
                    super::plan::mount_point_reason(k, self.errno)
                ),
                None => format!("cannot open a mount point: {e}"),
            },
            Step::Mount(i) => match mount(i) {
                Some(k) => format!(
                    "{}: cannot mount {}: {e}",
                    plan.jail.join(k.target()).display(),
                    k.name()
                ),
                None => format!("cannot mount: {e}"),
            },
            Step::Chdir => format!("{jail}: cannot chdir into the jail: {e}"),
            Step::Chroot if self.errno == Errno::EPERM => {
                format!("{jail}: cannot chroot: {e} (chroot needs root)")
            }
            Step::Chroot => format!("{jail}: cannot chroot: {e}"),
            Step::ChdirRoot => format!("{jail}: cannot chdir to / after chroot: {e}"),
            Step::Setgroups => format!("cannot set the supplementary groups: {e}"),
            Step::Setgid => format!("cannot set gid {}: {e}", plan.identity.gid),
            Step::Setuid => format!("cannot set uid {}: {e}", plan.identity.uid),
            Step::NoNewPrivs => format!("cannot set no_new_privs: {e}"),
            Step::CloseFds => format!("cannot close inherited descriptors: {e}"),
            Step::Exec => exec_message(plan, self.errno),
            Step::Seccomp => format!("cannot install the tracer's seccomp filter: {e}"),
            Step::Hold => "the tracer never let the command start".to_string(),
        }
    }

    /// The eight bytes sent to the parent.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.step.code().to_le_bytes());
        b[4..].copy_from_slice(&(self.errno as i32).to_le_bytes());
        b
    }

    pub fn from_bytes(b: [u8; 8]) -> Option<ChildError> {
        let step = Step::from_code(u32::from_le_bytes(b[..4].try_into().ok()?))?;
        let errno = Errno::from_raw(i32::from_le_bytes(b[4..].try_into().ok()?));
        Some(ChildError { step, errno })
    }
}

fn exec_message(plan: &Plan, errno: Errno) -> String {
    let cmd = plan
        .command
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let jail = plan.jail.display();
    if errno == Errno::ENOENT {
        // execve also says ENOENT when the file exists but its ELF
        // interpreter or #! interpreter does not: say which it is.
        let present = plan
            .candidates
            .iter()
            .find(|c| super::plan::exists_in_jail(plan.jail_fd.as_fd(), c, false));
        return match present {
            Some(p) if !super::plan::exists_in_jail(plan.jail_fd.as_fd(), p, true) => format!(
                "{}: cannot execute inside {jail}: it is a symlink whose target is missing \
                 from the jail",
                p.to_string_lossy()
            ),
            Some(p) => format!(
                "{}: cannot execute inside {jail}: its interpreter (the dynamic loader, \
                 or the program named after #!) is missing from the jail",
                p.to_string_lossy()
            ),
            None if cmd.contains('/') => format!("{cmd}: not found inside the jail {jail}"),
            None => format!("{cmd}: command not found in the jail's PATH inside {jail}"),
        };
    }
    let why = match errno {
        Errno::EACCES => format!(
            "permission denied (not executable, or not accessible to uid {})",
            plan.identity.uid
        ),
        Errno::ENOEXEC => "not an executable format the kernel knows".into(),
        e => e.desc().to_string(),
    };
    format!("{cmd}: cannot execute inside {jail}: {why}")
}

fn make_mount(plan: &Plan, jail: BorrowedFd<'_>, i: usize) -> Result<(), ChildError> {
    let m = &plan.prepared_mounts[i];
    let target = open_mount_target(jail, &m.target, m.kind)
        .map_err(ChildError::at(Step::MountTarget(i as u16)))?;
    let step = ChildError::at(Step::Mount(i as u16));
    let nosuid = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    let mnt = match m.kind {
        MountKind::Proc | MountKind::Sys => {
            let (fstype, attrs) = match m.kind {
                MountKind::Proc => (c"proc", nosuid),
                _ => (c"sysfs", nosuid | libc::MOUNT_ATTR_RDONLY),
            };
            let fs = sys::fsopen(fstype).map_err(&step)?;
            if m.kind == MountKind::Proc {
                // Processes of other users stay invisible to the jailed
                // program (the pid namespace is the host's).
                sys::fsconfig_string(fs.as_fd(), c"hidepid", c"invisible").map_err(&step)?;
            }
            sys::fsconfig_create(fs.as_fd()).map_err(&step)?;
            sys::fsmount(fs.as_fd(), attrs).map_err(&step)?
        }
        MountKind::DevLog => {
            let src = m.source.as_deref().unwrap_or(c"/dev/log");
            sys::open_tree_clone(src).map_err(&step)?
        }
    };
    sys::move_mount(mnt.as_fd(), target.as_fd()).map_err(&step)
}

/// Opens the jail in the child's own mount namespace. The parent's
/// descriptor cannot serve: it refers to the host namespace's mount, and
/// mounts made under it, or a chroot into it, would miss the private
/// namespace. So the canonical path is opened once more, through no
/// symlink, and must be the very directory the parent checked (same device
/// and inode; `ESTALE` otherwise). From here on, everything goes through
/// this one descriptor.
fn open_jail(plan: &Plan) -> Result<OwnedFd, ChildError> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let step = ChildError::at(Step::OpenJail);
    let fd =
        nix::fcntl::openat2(nix::fcntl::AT_FDCWD, plan.jail_c.as_c_str(), how).map_err(&step)?;
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(&step)?;
    if (st.st_dev, st.st_ino) != plan.jail_id {
        return Err(step(Errno::ESTALE));
    }
    Ok(fd)
}

/// Enters the jail as the plan says, in the order that matters:
///
/// 0. a new session, without a controlling terminal, so that the jailed
///    program cannot push keystrokes into the terminal it shares with the
///    user's shell (TIOCSTI) and have them run outside the jail; and
///    SIGPIPE back to its default action;
/// 1. a private mount namespace (unshare, then `/` recursively private, so
///    nothing propagates back to the host);
/// 2. the jail opened once (see [`open_jail`]); the planned mounts inside
///    it, onto mount points opened from that descriptor without following
///    any symlink;
/// 3. `fchdir(jail)`, `chroot(".")`, `chdir("/")`: the issue's
///    chdir/chroot/chdir on the descriptor the mounts went into, so that no
///    path is resolved again and a rename or symlink swapped in meanwhile
///    cannot split mounts and chroot across two directories (fchdir on an
///    `O_PATH` descriptor works since Linux 3.5; openat2 needs 5.6 anyway);
/// 4. `setgroups`, `setgid`, `setuid`, then `PR_SET_NO_NEW_PRIVS`;
/// 5. close every descriptor above 2, except `keep` (the error pipe, which
///    is close-on-exec).
///
/// Call it in a forked child right before [`exec_command`]: it allocates
/// nothing. The environment (step 6) is the plan's and is passed to execve.
pub fn enter_jail(plan: &Plan, keep: Option<RawFd>) -> Result<(), ChildError> {
    nix::unistd::setsid().map_err(ChildError::at(Step::Setsid))?;
    sys::default_sigpipe().map_err(ChildError::at(Step::Signals))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(ChildError::at(Step::Unshare))?;
    nix::mount::mount(
        None::<&std::ffi::CStr>,
        c"/",
        None::<&std::ffi::CStr>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&std::ffi::CStr>,
    )
    .map_err(ChildError::at(Step::MakePrivate))?;
    let jail = open_jail(plan)?;
    for i in 0..plan.prepared_mounts.len() {
        make_mount(plan, jail.as_fd(), i)?;
    }
    nix::unistd::fchdir(&jail).map_err(ChildError::at(Step::Chdir))?;
    nix::unistd::chroot(c".").map_err(ChildError::at(Step::Chroot))?;
    nix::unistd::chdir(c"/").map_err(ChildError::at(Step::ChdirRoot))?;
    drop(jail);
    let id = &plan.identity;
    nix::unistd::setgroups(&id.groups).map_err(ChildError::at(Step::Setgroups))?;
    nix::unistd::setgid(id.gid).map_err(ChildError::at(Step::Setgid))?;
    nix::unistd::setuid(id.uid).map_err(ChildError::at(Step::Setuid))?;
    nix::sys::prctl::set_no_new_privs().map_err(ChildError::at(Step::NoNewPrivs))?;
    sys::close_fds_above_stderr(keep).map_err(ChildError::at(Step::CloseFds))?;
    Ok(())
}

/// Executes the command, searching the plan's PATH inside the jail as
/// execvp does. Returns only on failure: ENOENT when no candidate exists,
/// else the first other errno (EACCES is kept while the search goes on).
pub fn exec_command(plan: &Plan) -> ChildError {
    let mut errno = Errno::ENOENT;
    for cand in &plan.candidates {
        match sys::execve(cand, &plan.argv_ptrs, &plan.env_ptrs) {
            Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::ENAMETOOLONG => {}
            Errno::EACCES => errno = Errno::EACCES,
            e => {
                errno = e;
                break;
            }
        }
    }
    ChildError {
        step: Step::Exec,
        errno,
    }
}

/// Reads a [`ChildError`] from the parent's end of the pipe: `None` when the
/// pipe closed without one, i.e. the exec succeeded.
pub fn read_report(fd: BorrowedFd<'_>) -> std::io::Result<Option<ChildError>> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if got == buf.len() {
        ChildError::from_bytes(buf)
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_and_map_to_exit_codes() {
        for step in [
            Step::Unshare,
            Step::MountTarget(3),
            Step::Mount(0),
            Step::Exec,
        ] {
            let e = ChildError {
                step,
                errno: Errno::ELOOP,
            };
            assert_eq!(ChildError::from_bytes(e.to_bytes()), Some(e));
        }
        let exec = |errno| ChildError {
            step: Step::Exec,
            errno,
        };
        assert_eq!(exec(Errno::ENOENT).exit_code(), 127);
        assert_eq!(exec(Errno::EACCES).exit_code(), 126);
        let chroot = ChildError {
            step: Step::Chroot,
            errno: Errno::EPERM,
        };
        assert_eq!(chroot.exit_code(), 125);
    }
}
