//! Preparing a jail entry. Everything that allocates, reads host databases
//! or can fail with a friendly message happens here, in the parent, before
//! the fork; the child then only replays the plan (see `child.rs`).

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_char;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Group, Uid, User};

use crate::core::jail::beneath::Resolve;
use crate::core::manifest::{Class, Kind, Manifest};

/// The PATH a jailed command gets when the environment is reset.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The host's syslog socket, bound onto `JAIL/dev/log` by `--mount dev-log`.
pub const DEFAULT_LOG_SOCKET: &str = "/dev/log";

/// What can be mounted inside the jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MountKind {
    Proc,
    Sys,
    DevLog,
}

impl MountKind {
    /// Where the mount goes, relative to the jail root.
    pub fn target(self) -> &'static str {
        match self {
            MountKind::Proc => "proc",
            MountKind::Sys => "sys",
            MountKind::DevLog => "dev/log",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MountKind::Proc => "proc",
            MountKind::Sys => "sysfs",
            MountKind::DevLog => "the syslog socket",
        }
    }
}

/// One `--mount` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Host socket for `dev-log` (default `/dev/log`).
    pub source: Option<PathBuf>,
}

/// Parses `proc`, `sys` or `dev-log[=PATH]`.
pub fn parse_mount(s: &str) -> Result<MountSpec, String> {
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    let kind = match name {
        "proc" => MountKind::Proc,
        "sys" | "sysfs" => MountKind::Sys,
        "dev-log" => MountKind::DevLog,
        _ => {
            return Err(format!(
                "unknown mount {s:?}: expected proc, sys or dev-log[=PATH]"
            ))
        }
    };
    let source = match (kind, value) {
        (MountKind::DevLog, Some(v)) if v.starts_with('/') => Some(PathBuf::from(v)),
        (MountKind::DevLog, Some(v)) => {
            return Err(format!(
                "dev-log={v}: the host socket path must be absolute"
            ))
        }
        (MountKind::DevLog, None) => Some(PathBuf::from(DEFAULT_LOG_SOCKET)),
        (_, Some(_)) => return Err(format!("{name} takes no value: {s:?}")),
        (_, None) => None,
    };
    Ok(MountSpec { kind, source })
}

/// How to enter a jail: shared by `run` and `verify`.
#[derive(Debug, Clone, Default)]
pub struct JailOptions {
    /// The jail directory.
    pub jail: PathBuf,
    /// Run as this user (name or uid, looked up on the host).
    pub user: Option<String>,
    /// Run with this primary group (name or gid, looked up on the host);
    /// default: the user's.
    pub group: Option<String>,
    /// Mount inside the jail, in a private mount namespace: proc, sys, or
    /// dev-log[=PATH] (bind the host's syslog socket onto JAIL/dev/log).
    pub mounts: Vec<MountSpec>,
    /// Mount what this manifest shows the program needs (proc, sys, /dev/log).
    pub manifest: Option<PathBuf>,
    /// Keep jailtrace's environment instead of a minimal safe one.
    pub keep_env: bool,
    /// Allow running the command as root inside the jail (root can break
    /// out of a chroot).
    pub allow_root: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: cannot use as a jail: {source}")]
    Jail {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: cannot use as a jail: not a directory")]
    NotDir(String),
    #[error("{0}: cannot use as a jail: it is the host's root directory")]
    HostRoot(String),
    #[error("unknown {what} {name:?}: not in the host's {db} database")]
    Unknown {
        what: &'static str,
        name: String,
        db: &'static str,
    },
    #[error("cannot look up {what} {name:?}: {source}")]
    Lookup {
        what: &'static str,
        name: String,
        #[source]
        source: Errno,
    },
    #[error("uid {0} has no entry in the host's passwd database, so it has no primary group: give --group")]
    NoGroup(u32),
    #[error(
        "refusing to run the command as root inside the jail: root can break out of a chroot \
         (chroot into a subdirectory, then chdir(\"..\") past the old root); \
         use --user USER, or --allow-root if you accept that"
    )]
    Root,
    #[error("{0}")]
    Manifest(#[from] crate::core::manifest::ManifestError),
    #[error("{path}: cannot prepare the mount point for {what}: {reason}")]
    MountPoint {
        path: String,
        what: &'static str,
        reason: String,
    },
    #[error("{path}: cannot bind it as the jail's /dev/log: {reason}")]
    LogSource { path: String, reason: String },
    #[error("no command given to run in the jail")]
    NoCommand,
    #[error("{0}: contains a NUL byte")]
    Nul(String),
    #[error(
        "{0} is a directory: the jailed program could fchdir to it and walk out of the jail; \
         redirect it from a file instead"
    )]
    StdioDir(&'static str),
}

/// The identity the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups, set with setgroups (empty: none).
    pub groups: Vec<Gid>,
    /// The user's name and home on the host, when it has a passwd entry.
    pub name: Option<String>,
    pub home: Option<PathBuf>,
}

fn lookup_user(spec: &str) -> Result<(Uid, Option<User>), PlanError> {
    let err = |source| PlanError::Lookup {
        what: "user",
        name: spec.to_string(),
        source,
    };
    if let Ok(n) = spec.parse::<u32>() {
        let uid = Uid::from_raw(n);
        return Ok((uid, User::from_uid(uid).map_err(err)?));
    }
    match User::from_name(spec).map_err(err)? {
        Some(u) => Ok((u.uid, Some(u))),
        None => Err(PlanError::Unknown {
            what: "user",
            name: spec.to_string(),
            db: "passwd",
        }),
    }
}

fn lookup_group(spec: &str) -> Result<Gid, PlanError> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(spec) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(PlanError::Unknown {
            what: "group",
            name: spec.to_string(),
            db: "group",
        }),
        Err(source) => Err(PlanError::Lookup {
            what: "group",
            name: spec.to_string(),
            source,
        }),
    }
}

/// Resolves `--user` and `--group` on the host. Without `--user`, the
/// command keeps jailtrace's own user. A user with a passwd entry gets its
/// supplementary groups from the host's group database (as `su` and
/// `chroot --userspec` do); a bare uid gets none.
pub fn resolve_identity(user: Option<&str>, group: Option<&str>) -> Result<Identity, PlanError> {
    let (uid, entry) = match user {
        Some(spec) => lookup_user(spec)?,
        None => {
            let uid = nix::unistd::geteuid();
            (uid, User::from_uid(uid).ok().flatten())
        }
    };
    let gid = match (group, &entry, user) {
        (Some(g), _, _) => lookup_group(g)?,
        (None, Some(u), _) => u.gid,
        (None, None, None) => nix::unistd::getegid(),
        (None, None, Some(_)) => return Err(PlanError::NoGroup(uid.as_raw())),
    };
    let groups = match &entry {
        Some(u) => {
            let name =
                CString::new(u.name.as_bytes()).map_err(|_| PlanError::Nul(u.name.clone()))?;
            nix::unistd::getgrouplist(&name, gid).map_err(|source| PlanError::Lookup {
                what: "groups of user",
                name: u.name.clone(),
                source,
            })?
        }
        None => Vec::new(),
    };
    Ok(Identity {
        uid,
        gid,
        groups,
        name: entry.as_ref().map(|u| u.name.clone()),
        home: entry.as_ref().map(|u| u.dir.clone()),
    })
}

/// The mounts a recorded program needs: proc and sysfs when it touched
/// them, the syslog socket when it used `/dev/log`.
pub fn mounts_from_manifest(m: &Manifest) -> Vec<MountSpec> {
    let mut out = Vec::new();
    let mut add = |kind: MountKind, source: Option<PathBuf>| {
        if !out.iter().any(|s: &MountSpec| s.kind == kind) {
            out.push(MountSpec { kind, source });
        }
    };
    for e in &m.entries {
        match e.class {
            Class::Proc => add(MountKind::Proc, None),
            Class::Sys => add(MountKind::Sys, None),
            _ => {}
        }
        if e.path.as_bytes() == DEFAULT_LOG_SOCKET.as_bytes() && e.kind != Kind::Missing {
            add(MountKind::DevLog, Some(PathBuf::from(DEFAULT_LOG_SOCKET)));
        }
    }
    out
}

/// The minimal environment: PATH, HOME, USER and LOGNAME, and TERM when
/// jailtrace has one (a terminal type is harmless and interactive tools
/// need it). No SHELL: the host's login shell rarely exists in a jail.
pub fn safe_env(id: &Identity, term: Option<&OsStr>) -> Vec<(OsString, OsString)> {
    let mut env = vec![
        (OsString::from("PATH"), OsString::from(SAFE_PATH)),
        (
            OsString::from("HOME"),
            id.home
                .clone()
                .map(PathBuf::into_os_string)
                .unwrap_or_else(|| "/".into()),
        ),
    ];
    if let Some(name) = &id.name {
        env.push(("USER".into(), name.into()));
        env.push(("LOGNAME".into(), name.into()));
    }
    if let Some(t) = term {
        let sane = !t.is_empty()
            && t.len() < 64
            && t.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(b));
        if sane {
            env.push(("TERM".into(), t.to_os_string()));
        }
    }
    env
}

/// The paths to try for `cmd`, as execvp does: the name itself when it has
/// a slash, else each PATH directory in turn. An empty PATH element means
/// the current directory, `here` (`/` inside a jail, `.` on the host). The
/// one PATH search of jailtrace: `find_program` uses it on the host, `run`
/// inside the jail.
pub fn exec_candidates(cmd: &[u8], path: &[u8], here: &[u8]) -> Vec<Vec<u8>> {
    if cmd.contains(&b'/') {
        return vec![cmd.to_vec()];
    }
    path.split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { here } else { dir };
            let mut p = dir.to_vec();
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(cmd);
            p
        })
        .collect()
}

fn cstring(bytes: &[u8]) -> Result<CString, PlanError> {
    CString::new(bytes).map_err(|_| PlanError::Nul(String::from_utf8_lossy(bytes).into_owned()))
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

/// A mount to make in the child, as C strings.
#[derive(Debug)]
pub(crate) struct PreparedMount {
    pub kind: MountKind,
    /// Relative to the jail root.
    pub target: CString,
    pub source: Option<CString>,
}

/// Everything needed to enter the jail and exec, prepared before the fork.
/// The child side ([`super::enter_jail`], [`super::exec_command`]) only
/// reads it.
#[derive(Debug)]
pub struct Plan {
    /// Canonical jail path on the host, for messages and for the child to
    /// open again after entering its mount namespace.
    pub jail: PathBuf,
    /// The jail, opened once before anything else (`O_PATH`, close-on-exec):
    /// every check and mount-point preparation in the parent works on it.
    pub(crate) jail_fd: OwnedFd,
    /// (st_dev, st_ino) of `jail_fd`: the child checks that the directory it
    /// opens in its own mount namespace is this one.
    pub(crate) jail_id: (u64, u64),
    pub identity: Identity,
    pub mounts: Vec<MountSpec>,
    /// The command as given.
    pub command: Vec<OsString>,
    env: Vec<CString>,
    pub(crate) jail_c: CString,
    pub(crate) prepared_mounts: Vec<PreparedMount>,
    pub(crate) candidates: Vec<CString>,
    argv: Vec<CString>,
    // Pointers into `argv` and `env`: CString buffers live on the heap and
    // do not move while the Plan exists.
    pub(crate) argv_ptrs: Vec<*const c_char>,
    pub(crate) env_ptrs: Vec<*const c_char>,
}

impl Plan {
    /// Resolves the user and group, decides the mounts, checks the jail and
    /// creates missing mount points safely inside it, and builds argv, the
    /// environment and the exec candidates.
    pub fn new(opts: &JailOptions, command: &[OsString]) -> Result<Plan, PlanError> {
        if command.is_empty() {
            return Err(PlanError::NoCommand);
        }
        let shown = opts.jail.display().to_string();
        let io_err = |e: Errno| PlanError::Jail {
            path: shown.clone(),
            source: e.into(),
        };
        // Opened once; the checks below are about this directory, whatever
        // happens to the path later.
        let jail_fd = nix::fcntl::open(
            &opts.jail,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOTDIR if opts.jail.exists() && !opts.jail.is_dir() => {
                PlanError::NotDir(shown.clone())
            }
            e => io_err(e),
        })?;
        if crate::core::jail::location::is_host_root(jail_fd.as_fd()).map_err(io_err)? {
            return Err(PlanError::HostRoot(shown));
        }
        let st = nix::sys::stat::fstat(jail_fd.as_fd()).map_err(io_err)?;
        let jail_id = (st.st_dev, st.st_ino);
        let jail = std::fs::canonicalize(&opts.jail).map_err(|source| PlanError::Jail {
            path: shown.clone(),
            source,
        })?;
        check_stdio()?;
        let identity = resolve_identity(opts.user.as_deref(), opts.group.as_deref())?;
        if identity.uid.is_root() && !opts.allow_root {
            return Err(PlanError::Root);
        }

        let mut mounts: Vec<MountSpec> = Vec::new();
        let from_manifest = match &opts.manifest {
            Some(m) => mounts_from_manifest(&Manifest::load(m)?),
            None => Vec::new(),
        };
        for spec in opts.mounts.iter().chain(&from_manifest) {
            // An explicit --mount wins over the manifest's default source.
            if !mounts.iter().any(|s| s.kind == spec.kind) {
                mounts.push(spec.clone());
            }
        }
        mounts.sort_by_key(|s| s.kind);

        let env_pairs: Vec<(OsString, OsString)> = if opts.keep_env {
            std::env::vars_os().collect()
        } else {
            safe_env(&identity, std::env::var_os("TERM").as_deref())
        };
        let path_var = env_pairs
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_bytes().to_vec())
            .unwrap_or_else(|| SAFE_PATH.as_bytes().to_vec());
        let env = env_pairs
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(&kv)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let argv = command
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let cmd = command.first().map(|c| c.as_bytes()).unwrap_or_default();
        let candidates = exec_candidates(cmd, &path_var, b"/")
            .iter()
            .map(|c| cstring(c))
            .collect::<Result<Vec<_>, _>>()?;

        let mut prepared_mounts = Vec::new();
        for spec in &mounts {
            prepare_mount_point(jail_fd.as_fd(), &jail, spec)?;
            prepared_mounts.push(PreparedMount {
                kind: spec.kind,
                target: cstring(spec.kind.target().as_bytes())?,
                source: match &spec.source {
                    Some(s) => Some(cstring(s.as_os_str().as_bytes())?),
                    None => None,
                },
            });
        }

        let argv_ptrs = null_terminated(&argv);
        let env_ptrs = null_terminated(&env);
        Ok(Plan {
            jail_c: cstring(jail.as_os_str().as_bytes())?,
            jail,
            jail_fd,
            jail_id,
            identity,
            mounts,
            command: command.to_vec(),
            env,
            prepared_mounts,
            candidates,
            argv,
            argv_ptrs,
            env_ptrs,
        })
    }

    /// The command's argv as C strings.
    pub fn argv(&self) -> &[CString] {
        &self.argv
    }

    /// The environment the command gets, as `NAME=value` C strings.
    pub fn env(&self) -> &[CString] {
        &self.env
    }
}

/// Descriptors 0-2 stay open across the jail entry; none may be a
/// directory (outside the jail, `fchdir` to it is a way out).
fn check_stdio() -> Result<(), PlanError> {
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let fds = [
        (stdin.as_fd(), "stdin"),
        (stdout.as_fd(), "stdout"),
        (stderr.as_fd(), "stderr"),
    ];
    for (fd, name) in fds {
        if let Ok(st) = nix::sys::stat::fstat(fd) {
            if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() {
                return Err(PlanError::StdioDir(name));
            }
        }
    }
    Ok(())
}

/// True when `path` (a path inside the jail) exists there, resolving
/// symlinks with the jail as root when `follow` is set. For messages only.
pub(crate) fn exists_in_jail(root: BorrowedFd<'_>, path: &std::ffi::CStr, follow: bool) -> bool {
    let flags = if follow {
        OFlag::O_PATH
    } else {
        OFlag::O_PATH | OFlag::O_NOFOLLOW
    };
    crate::core::jail::beneath::open(root, path, flags, Resolve::InRoot).is_ok()
}

/// Opens a mount target, given relative to the jail's root descriptor, and
/// checks its type (a directory for proc and sysfs, a socket or regular
/// file for the syslog socket). Proc and sysfs mount points may not be
/// reached through any symlink; the socket's may, resolved inside the jail.
/// Allocation-free: the child calls it again after entering its mount
/// namespace.
pub(crate) fn open_mount_target(
    jail: std::os::fd::BorrowedFd<'_>,
    target: &std::ffi::CStr,
    kind: MountKind,
) -> nix::Result<OwnedFd> {
    let rule = match kind {
        MountKind::DevLog => Resolve::InRoot,
        MountKind::Proc | MountKind::Sys => Resolve::NoSymlinks,
    };
    let fd = crate::core::jail::beneath::open(jail, target, OFlag::O_PATH, rule)?;
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    match (kind, fmt) {
        (MountKind::Proc | MountKind::Sys, SFlag::S_IFDIR) => Ok(fd),
        (MountKind::Proc | MountKind::Sys, _) => Err(Errno::ENOTDIR),
        (MountKind::DevLog, SFlag::S_IFDIR) => Err(Errno::EISDIR),
        (MountKind::DevLog, SFlag::S_IFREG | SFlag::S_IFSOCK) => Ok(fd),
        (MountKind::DevLog, _) => Err(Errno::EINVAL),
    }
}

/// Explains an errno from [`open_mount_target`] or from creating a mount
/// point.
pub(crate) fn mount_point_reason(kind: MountKind, e: Errno) -> String {
    match e {
        Errno::ELOOP => "it or a directory above it is a symlink; refusing to follow it, \
                         it could lead out of the jail"
            .into(),
        Errno::EXDEV => "it leads out of the jail".into(),
        Errno::ENOTDIR if matches!(kind, MountKind::Proc | MountKind::Sys) => {
            "exists and is not a directory".into()
        }
        Errno::EISDIR => "is a directory; a socket or an empty file is needed".into(),
        Errno::EINVAL => "is neither a socket nor a regular file".into(),
        e => e.desc().to_string(),
    }
}

/// Creates the mount point for `spec` inside the jail if it is missing
/// (directories 0755 on the way, 0555 for proc and sys, an empty 0644 file
/// for /dev/log), never following a symlink, then checks it as the child
/// will.
/// Where a symlink `link` at `target` (a jail path without its leading
/// `/`) points, as (directory, name) inside the jail; `None` when the name
/// is empty, `.` or `..`.
fn link_destination(target: &str, link: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut inside = if link.starts_with(b"/") {
        link.to_vec()
    } else {
        let mut p = target
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or("")
            .as_bytes()
            .to_vec();
        p.push(b'/');
        p.extend_from_slice(link);
        p
    };
    while inside.ends_with(b"/") {
        inside.pop();
    }
    let (parent, base) = match inside.iter().rposition(|&b| b == b'/') {
        Some(i) => (inside[..i].to_vec(), inside[i + 1..].to_vec()),
        None => (Vec::new(), inside.clone()),
    };
    if base.is_empty() || base == b"." || base == b".." {
        return None;
    }
    let parent = if parent.is_empty() {
        b".".to_vec()
    } else {
        parent
    };
    Some((parent, base))
}

fn prepare_mount_point(
    root: BorrowedFd<'_>,
    jail: &Path,
    spec: &MountSpec,
) -> Result<(), PlanError> {
    let target = spec.kind.target();
    let shown = jail.join(target).display().to_string();
    let fail = |e: Errno| PlanError::MountPoint {
        path: shown.clone(),
        what: spec.kind.name(),
        reason: mount_point_reason(spec.kind, e),
    };
    if let Some(src) = &spec.source {
        let reason = match std::fs::metadata(src) {
            Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => None,
            Ok(_) => Some("not a socket".to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = reason {
            return Err(PlanError::LogSource {
                path: src.display().to_string(),
                reason,
            });
        }
    }
    let comps: Vec<&str> = target.split('/').collect();
    let (last, parents) = comps.split_last().expect("targets are non-empty");
    // The directories above the mount point: created when missing, never
    // reached through a symlink.
    let mut dir = root
        .try_clone_to_owned()
        .map_err(|e| fail(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    for comp in parents {
        let open = |dir: &OwnedFd| {
            crate::core::jail::beneath::open(
                dir.as_fd(),
                *comp,
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                Resolve::NoSymlinks,
            )
        };
        let next = match open(&dir) {
            Err(Errno::ENOENT) => {
                nix::sys::stat::mkdirat(dir.as_fd(), *comp, Mode::from_bits_truncate(0o755))
                    .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
                    .map_err(fail)?;
                open(&dir).map_err(fail)?
            }
            r => r.map_err(fail)?,
        };
        dir = next;
    }
    let target_c = cstring(target.as_bytes())?;
    match open_mount_target(root, &target_c, spec.kind) {
        Ok(_) => return Ok(()),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail(e)),
    }
    // Missing: create it. For the socket, a dangling symlink says where:
    // the file is created at its target, resolved inside the jail.
    let mut create_in = dir;
    let mut name = last.as_bytes().to_vec();
    if spec.kind == MountKind::DevLog {
        if let Ok(link) = nix::fcntl::readlinkat(create_in.as_fd(), *last) {
            let link = link.as_bytes();
            let Some((parent, base)) = link_destination(target, link) else {
                return Err(fail(Errno::EINVAL));
            };
            create_in = crate::core::jail::beneath::open(
                root,
                parent.as_slice(),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                Resolve::InRoot,
            )
            .map_err(|e| PlanError::MountPoint {
                path: shown.clone(),
                what: spec.kind.name(),
                reason: format!(
                    "it is a symlink to {}, and its directory cannot be opened inside the jail: {}",
                    String::from_utf8_lossy(link),
                    e.desc()
                ),
            })?;
            name = base;
        }
    }
    let created = match spec.kind {
        MountKind::Proc | MountKind::Sys => nix::sys::stat::mkdirat(
            create_in.as_fd(),
            name.as_slice(),
            Mode::from_bits_truncate(0o555),
        ),
        MountKind::DevLog => nix::fcntl::openat(
            create_in.as_fd(),
            name.as_slice(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match created {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(fail(e)),
    }
    open_mount_target(root, &target_c, spec.kind)
        .map(drop)
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mount_specs() {
        assert_eq!(parse_mount("proc").unwrap().kind, MountKind::Proc);
        assert_eq!(parse_mount("sys").unwrap().kind, MountKind::Sys);
        let log = parse_mount("dev-log").unwrap();
        assert_eq!(log.source.as_deref(), Some(Path::new("/dev/log")));
        let log = parse_mount("dev-log=/run/systemd/journal/dev-log").unwrap();
        assert_eq!(
            log.source.as_deref(),
            Some(Path::new("/run/systemd/journal/dev-log"))
        );
        assert!(parse_mount("dev-log=relative").is_err());
        assert!(parse_mount("proc=/x").is_err());
        assert!(parse_mount("tmp")
            .unwrap_err()
            .contains("expected proc, sys or dev-log"));
    }

    #[test]
    fn candidates_follow_execvp() {
        assert_eq!(
            exec_candidates(b"/bin/ls", b"/a:/b", b"/"),
            vec![b"/bin/ls".to_vec()]
        );
        assert_eq!(exec_candidates(b"./x", b"/a", b"/"), vec![b"./x".to_vec()]);
        assert_eq!(
            exec_candidates(b"ls", b"/usr/bin:/bin/::", b"/"),
            vec![
                b"/usr/bin/ls".to_vec(),
                b"/bin/ls".to_vec(),
                b"/ls".to_vec(),
                b"/ls".to_vec()
            ]
        );
    }

    #[test]
    fn safe_env_is_minimal() {
        let id = Identity {
            uid: Uid::from_raw(65534),
            gid: Gid::from_raw(65534),
            groups: vec![],
            name: Some("nobody".into()),
            home: Some("/nonexistent".into()),
        };
        let env = safe_env(&id, Some(OsStr::new("xterm-256color")));
        let keys: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(keys, ["PATH", "HOME", "USER", "LOGNAME", "TERM"]);
        // A TERM with odd bytes is dropped rather than passed into the jail.
        let env = safe_env(&id, Some(OsStr::new("x;rm -rf /")));
        assert!(!env.iter().any(|(k, _)| k == "TERM"));
    }
}
