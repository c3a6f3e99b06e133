//! The sandbox as typed operations, as bubblewrap itself holds it (its
//! `SetupOp` list, run in order). The export builds one `Vec<BwrapOp>`;
//! the `--args` list ([`render_args`]) and the script's lines
//! (`script::render_script`) are two renderings of its [`BwrapOp::words`].

use super::Sandbox;
use crate::core::error::Failure;
use crate::core::manifest::pathenc::MPath;

/// One bwrap option with its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BwrapOp {
    /// Every namespace bwrap can make.
    UnshareAll,
    UnshareIpc,
    UnsharePid,
    UnshareNet,
    UnshareUts,
    UnshareCgroupTry,
    ShareNet,
    CapDrop(&'static str),
    CapAdd(&'static str),
    DieWithParent,
    NewSession,
    ClearEnv,
    SetEnv {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    Uid(u32),
    Gid(u32),
    /// The host's `src` at `dest`, read-write.
    Bind {
        src: MPath,
        dest: MPath,
    },
    RoBind {
        src: MPath,
        dest: MPath,
    },
    /// A bind that keeps device nodes usable.
    DevBind {
        src: MPath,
        dest: MPath,
    },
    /// A new procfs.
    Proc(MPath),
    /// A private directory, with this mode when given.
    Tmpfs {
        dest: MPath,
        perms: Option<u32>,
    },
    Dir {
        dest: MPath,
        perms: u32,
    },
    Symlink {
        target: Vec<u8>,
        dest: MPath,
    },
    /// What descriptor `fd` carries, as a read-only file.
    RoBindData {
        fd: u8,
        dest: MPath,
        perms: u32,
    },
    /// What descriptor `fd` carries, as a file of the sandbox's own.
    File {
        fd: u8,
        dest: MPath,
        perms: u32,
    },
    Chdir(MPath),
    RemountRo(MPath),
    /// A directory the script made on the host with this owner and mode
    /// (see `stage`), bound read-write: a private directory, or (`ro`) an
    /// empty one that keeps its owner, remounted read-only once what goes
    /// into it is there.
    BindStaged {
        dest: MPath,
        uid: u32,
        gid: u32,
        mode: u32,
        ro: bool,
    },
    /// Made by the script inside a staged directory before bwrap starts:
    /// no bwrap option.
    Staged(Step),
}

/// What the script makes in a staged directory, with the host's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Dir {
        path: MPath,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// A private copy of the host file at `path`, read as its owner
    /// (`uid`, `gid`: the host's when the export was made), and owned by it.
    File {
        path: MPath,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        path: MPath,
        target: Vec<u8>,
    },
}

impl BwrapOp {
    /// The option and its values as bwrap reads them (a `--perms` comes
    /// first and goes with the option).
    pub fn words(&self) -> Vec<Vec<u8>> {
        use BwrapOp::*;
        let w = |s: &str| s.as_bytes().to_vec();
        let p = |p: &MPath| p.as_bytes().to_vec();
        let fd = |fd: &u8| fd.to_string().into_bytes();
        // No setuid or setgid bit in the sandbox: permission bits and the
        // sticky bit only.
        let with_perms = |mode: u32, rest: Vec<Vec<u8>>| {
            let mut v = vec![w("--perms"), format!("{:04o}", mode & 0o1777).into_bytes()];
            v.extend(rest);
            v
        };
        match self {
            UnshareAll => vec![w("--unshare-all")],
            UnshareIpc => vec![w("--unshare-ipc")],
            UnsharePid => vec![w("--unshare-pid")],
            UnshareNet => vec![w("--unshare-net")],
            UnshareUts => vec![w("--unshare-uts")],
            UnshareCgroupTry => vec![w("--unshare-cgroup-try")],
            ShareNet => vec![w("--share-net")],
            CapDrop(c) => vec![w("--cap-drop"), w(c)],
            CapAdd(c) => vec![w("--cap-add"), w(c)],
            DieWithParent => vec![w("--die-with-parent")],
            NewSession => vec![w("--new-session")],
            ClearEnv => vec![w("--clearenv")],
            SetEnv { name, value } => vec![w("--setenv"), name.clone(), value.clone()],
            Uid(u) => vec![w("--uid"), u.to_string().into_bytes()],
            Gid(g) => vec![w("--gid"), g.to_string().into_bytes()],
            Bind { src, dest } => vec![w("--bind"), p(src), p(dest)],
            RoBind { src, dest } => vec![w("--ro-bind"), p(src), p(dest)],
            DevBind { src, dest } => vec![w("--dev-bind"), p(src), p(dest)],
            Proc(dest) => vec![w("--proc"), p(dest)],
            Tmpfs { dest, perms: None } => vec![w("--tmpfs"), p(dest)],
            Tmpfs {
                dest,
                perms: Some(mode),
            } => with_perms(*mode, vec![w("--tmpfs"), p(dest)]),
            Dir { dest, perms } => with_perms(*perms, vec![w("--dir"), p(dest)]),
            Symlink { target, dest } => vec![w("--symlink"), target.clone(), p(dest)],
            RoBindData { fd: n, dest, perms } => {
                with_perms(*perms, vec![w("--ro-bind-data"), fd(n), p(dest)])
            }
            File { fd: n, dest, perms } => with_perms(*perms, vec![w("--file"), fd(n), p(dest)]),
            Chdir(dir) => vec![w("--chdir"), p(dir)],
            RemountRo(dir) => vec![w("--remount-ro"), p(dir)],
            // The source is the script's `$stage` (script::render_script);
            // never the host's own path, which would be bound instead.
            BindStaged { dest, .. } => {
                let mut src = b"$stage".to_vec();
                src.extend_from_slice(dest.as_bytes());
                vec![w("--bind"), src, p(dest)]
            }
            Staged(_) => Vec::new(),
        }
    }
}

/// The NUL-separated argument list `bwrap --args FD` reads (options only;
/// the command follows on bwrap's own command line).
pub fn render_args(s: &Sandbox) -> anyhow::Result<Vec<u8>> {
    if let Some((_, p, _)) = s.data.first() {
        return Err(Failure::new(format!(
            "{p} has to be passed to bwrap as data on a file descriptor (a rewritten account \
             database or a private copy); an argument list cannot carry it: use --script"
        ))
        .into());
    }
    if let Some(dest) = s.ops.iter().find_map(|o| match o {
        BwrapOp::BindStaged { dest, .. } => Some(dest),
        _ => None,
    }) {
        return Err(Failure::new(format!(
            "{dest}: the program starts as root and switches users or groups, so this directory \
             is made on the host with its owner before bwrap starts, which only a script can do: \
             use --script"
        ))
        .into());
    }
    let mut out = Vec::new();
    for a in s.ops.iter().flat_map(BwrapOp::words) {
        if a.contains(&0) {
            return Err(Failure::new("an argument contains a NUL byte").into());
        }
        out.extend_from_slice(&a);
        out.push(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_go_first_and_lose_setuid_bits() {
        let dest = MPath::new("/tmp").unwrap();
        let words = BwrapOp::Tmpfs {
            dest,
            perms: Some(0o4777),
        }
        .words();
        assert_eq!(words, [&b"--perms"[..], b"0777", b"--tmpfs", b"/tmp"]);
    }
}
