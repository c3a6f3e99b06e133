//! The bubblewrap export: the program sees the host objects the manifest
//! lists, bound read-only where they are (never copied), and nothing else.
//!
//! The sandbox is built in path order, so a directory always exists before
//! what goes into it:
//!
//! - directories are made (`--dir`, with the jail's mode), files bound
//!   read-only, symlinks recreated, the allowed devices bound one by one,
//!   sockets the program found bound (a container runtime's refused);
//! - `/proc` is a new procfs and `/sys` the host's, read-only, each only
//!   when the program used it;
//! - what the program writes: the directories it adds or removes entries
//!   in and the files it changes in place are the host's, read-write (a
//!   system directory refused), or private with `--ephemeral`; temporary
//!   directories are always private (`--tmpfs`);
//! - account databases that `materialize` rewrites (password hashes, or
//!   `--accounts`) are passed as data, never bound;
//! - the root is read-only at the end, so nothing else can be created.
//!
//! The sandbox is one list of typed operations ([`ops`]), rendered as the
//! `--args` list or as a script ([`script`]).

mod ops;
mod script;
mod stage;
mod users;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::core::error::Failure;
use crate::core::export::{self, Common, Writes};
use crate::core::jail::devices;
use crate::core::jail::host::{self, HostFiles, Unreadable};
use crate::core::jail::plan::{Item, Want};
use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Entry, Kind, Manifest};

pub use ops::{render_args, BwrapOp};
pub use script::render_script;

/// Who the program runs as (`--user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The host account name, for supplementary groups.
    pub name: Option<String>,
    /// Its supplementary groups on the host (as `launch::resolve_identity`
    /// found them), for what it may write.
    pub groups: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub common: Common,
    /// Private (tmpfs) directories instead of the host's for what the
    /// program writes.
    pub ephemeral: bool,
    /// Keep the host's network.
    pub share_net: bool,
    pub user: Option<User>,
    /// Sockets refused by default that the user allows (a container
    /// runtime's, a bus).
    pub allow_binds: Vec<MPath>,
    /// What may be bound read-write although the sandbox's user does not
    /// own it (`--writable`): the path and everything beneath it.
    pub writable: Vec<MPath>,
    /// `NAME=VALUE` pairs set in the sandbox (`--env`), over the clean
    /// environment it starts with.
    pub env: Vec<String>,
}

/// Data the sandbox gets through a file descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A rewritten account database.
    Text(Vec<u8>),
    /// A host file copied into a private directory.
    HostFile(MPath),
}

/// The sandbox, ready to render.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// bwrap's options, in order, without the command.
    pub ops: Vec<BwrapOp>,
    /// Descriptor number and what it carries.
    pub data: Vec<(u8, MPath, Data)>,
    pub user: Option<User>,
    /// The program starts as root and switches users itself: it runs as
    /// root, without a user namespace, with the capabilities `args` keeps.
    pub root_service: bool,
    /// The recorded command line.
    pub command: Vec<Vec<u8>>,
    pub warnings: Vec<String>,
}

/// The descriptors a POSIX shell can redirect (dash takes one digit).
const FIRST_FD: u8 = 3;
/// 8 and 9 are the script's own: the caller's stdin, kept for the program,
/// and bwrap's `--json-status-fd` (see [`render_script`]).
const LAST_FD: u8 = 7;

/// `p` bound read-write where it is.
fn bind(p: &MPath) -> BwrapOp {
    BwrapOp::Bind {
        src: p.clone(),
        dest: p.clone(),
    }
}

fn refuse(what: String) -> anyhow::Error {
    Failure::new(what).into()
}

/// Whether the program changes `e` itself or its name.
fn changed(e: &Entry) -> bool {
    e.accesses
        .iter()
        .any(|a| a.result.is_ok() && export::changing_ops().any(|op| op == a.op))
}

struct Builder<'a> {
    opts: &'a Options,
    index: HashMap<&'a MPath, &'a Entry>,
    writes: Writes,
    /// Private directories.
    tmpfs: BTreeSet<MPath>,
    /// The file system's operations, by path: parents first.
    ops: BTreeMap<MPath, BwrapOp>,
    data: Vec<(u8, MPath, Data)>,
    warnings: Vec<String>,
    hosts: HostFiles,
    /// Runs as root without a user namespace: `--dir` makes a directory
    /// owned by 0:0, not by the host directory's owner.
    root_service: bool,
    /// Private directories the script makes on the host (`stage`).
    staged: Vec<MPath>,
}

impl Builder<'_> {
    /// Beneath (not at) a directory bound from the host read-write: the
    /// bind brings it.
    fn under_host_dir(&self, p: &MPath) -> bool {
        self.writes
            .dirs
            .iter()
            .any(|d| p != d && p.starts_with(d) && !self.tmpfs.contains(d))
    }

    fn under_tmpfs(&self, p: &MPath) -> bool {
        self.tmpfs.iter().any(|d| p != d && p.starts_with(d))
    }

    fn add_data(&mut self, p: &MPath, d: Data) -> anyhow::Result<u8> {
        let fd = FIRST_FD + u8::try_from(self.data.len()).unwrap_or(u8::MAX);
        if fd > LAST_FD {
            return Err(refuse(format!(
                "{p}: more than {} files need to be passed as data (rewritten account \
                 databases, copies into private directories); a shell script can pass no more",
                LAST_FD - FIRST_FD + 1
            )));
        }
        self.data.push((fd, p.clone(), d));
        Ok(fd)
    }

    fn item(&mut self, item: &Item, mounts: &BTreeMap<MPath, &'static str>) -> anyhow::Result<()> {
        let p = &item.path;
        if p.is_root() || self.under_host_dir(p) {
            return Ok(());
        }
        let op = match &item.want {
            Want::Dir(meta) => {
                if let Some(fs) = mounts.get(p) {
                    if *fs == "proc" {
                        BwrapOp::Proc(p.clone())
                    } else {
                        BwrapOp::RoBind {
                            src: MPath::new("/sys").expect("constant path"),
                            dest: p.clone(),
                        }
                    }
                } else if self.tmpfs.contains(p) {
                    BwrapOp::Tmpfs {
                        dest: p.clone(),
                        perms: Some(meta.mode),
                    }
                } else if self.writes.dirs.contains(p) {
                    bind(p)
                } else if self.root_service
                    && (meta.uid, meta.gid) != (0, 0)
                    && self.under_tmpfs(p)
                    && !stage::beneath(&self.staged, p)
                {
                    // Beneath a private directory (/tmp): made by the
                    // script with its owner, private too, so that the
                    // service can write it once it has dropped to its user.
                    self.staged.push(p.clone());
                    stage::private_dir(p, (meta.uid, meta.gid, meta.mode))
                } else if self.root_service
                    && (meta.uid, meta.gid) != (0, 0)
                    && !self.under_tmpfs(p)
                {
                    // A root service keeps owners (no user namespace), and
                    // daemons check them: nginx chowns a temp directory it
                    // finds owned by root, on the read-only root. The
                    // host's directory read-write where --writable names it
                    // (nginx writes bodies there later); else an empty one
                    // with its owner, not the host's with all it holds.
                    if self.opts.writable.iter().any(|w| p.starts_with(w)) {
                        bind(p)
                    } else {
                        stage::owned_dir(p, (meta.uid, meta.gid, meta.mode))
                    }
                } else {
                    BwrapOp::Dir {
                        dest: p.clone(),
                        perms: meta.mode,
                    }
                }
            }
            Want::File {
                mode_cap, rewrite, ..
            } => self.file(p, *mode_cap, rewrite.as_ref())?,
            Want::Symlink { target, .. } => BwrapOp::Symlink {
                target: target.clone(),
                dest: p.clone(),
            },
            Want::Device {
                major,
                minor,
                block,
                ..
            } => {
                // Bound, not created: the host's node must still be the
                // device the policy allowed.
                devices::check_host_node(p, *block, *major, *minor)
                    .map_err(|e| refuse(e.to_string()))?;
                BwrapOp::DevBind {
                    src: p.clone(),
                    dest: p.clone(),
                }
            }
            Want::Fifo(_) => bind(p),
        };
        self.ops.insert(p.clone(), op);
        Ok(())
    }

    fn file(
        &mut self,
        p: &MPath,
        mode_cap: u32,
        rewrite: Option<&crate::core::jail::accounts::Rewrite>,
    ) -> anyhow::Result<BwrapOp> {
        let host_mode = || -> anyhow::Result<u32> {
            let st = nix::sys::stat::stat(p.as_path())
                .map_err(|e| refuse(format!("{p}: cannot stat the host file: {}", e.desc())))?;
            Ok(st.st_mode & 0o777 & mode_cap)
        };
        if let Some(r) = rewrite {
            // Read as materialize reads it: no last symlink followed, bounded.
            let (src, st) = self.hosts.open(p).map_err(|e| match e {
                Unreadable::Gone => refuse(format!("{p}: no longer exists on the host")),
                Unreadable::Other(msg) => refuse(format!("{p}: {msg}")),
            })?;
            let text = host::rewritten(&src, r).map_err(|e| refuse(format!("{p}: {e}")))?;
            // A passwd or group the rewrite leaves as it is (no hashes, no
            // --accounts) is bound like any file; shadow never is, since a
            // bind is live and the host may add a hash later.
            let unchanged = !r.is_shadow() && text.len() as u64 == st.st_size as u64 && {
                let mut host = vec![0u8; text.len()];
                std::os::unix::fs::FileExt::read_exact_at(&src, &mut host, 0).is_ok()
                    && host == text
            };
            if !unchanged {
                let fd = self.add_data(p, Data::Text(text))?;
                return Ok(BwrapOp::RoBindData {
                    fd,
                    dest: p.clone(),
                    perms: st.st_mode & 0o777 & mode_cap,
                });
            }
        }
        if self.writes.objects.contains(p) && !self.opts.ephemeral {
            return Ok(bind(p));
        }
        let private = self.under_tmpfs(p) || self.writes.objects.contains(p);
        if private && self.index.get(p).is_some_and(|e| changed(e)) {
            // A bind cannot be renamed over or removed: a private copy.
            let mode = host_mode()?;
            if stage::beneath(&self.staged, p) {
                let (uid, gid) = stage::file_owner(p);
                return Ok(BwrapOp::Staged(ops::Step::File {
                    path: p.clone(),
                    mode,
                    uid,
                    gid,
                }));
            }
            let fd = self.add_data(p, Data::HostFile(p.clone()))?;
            return Ok(BwrapOp::File {
                fd,
                dest: p.clone(),
                perms: mode,
            });
        }
        Ok(BwrapOp::RoBind {
            src: p.clone(),
            dest: p.clone(),
        })
    }
}

/// What the program may write, as host binds (`Writes`) and private
/// directories: temporary directories always private, the rest too with
/// `--ephemeral`; otherwise a system directory is refused, and so is one
/// the host no longer has.
fn writable(
    m: &Manifest,
    name: &str,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> anyhow::Result<(Writes, BTreeSet<MPath>)> {
    let mut writes = export::writes(m);
    let mut tmpfs: BTreeSet<MPath> = BTreeSet::new();
    // What --writable names is the host's, even beneath a temporary
    // directory: a service's data under /var/tmp must survive it.
    let named = |p: &MPath| opts.writable.iter().any(|w| p.starts_with(w));
    for t in export::TEMP_DIRS {
        let t = MPath::new(t).expect("constant path");
        let inside = |p: &MPath| p.starts_with(&t) && !named(p);
        if writes.dirs.iter().any(inside) || writes.objects.iter().any(inside) {
            tmpfs.insert(t.clone());
            writes.dirs.retain(|p| !inside(p));
            writes.objects.retain(|p| !inside(p));
        }
    }
    if opts.ephemeral {
        tmpfs.extend(writes.dirs.iter().cloned());
        tmpfs.extend(writes.objects.iter().filter_map(MPath::parent));
        return Ok((writes, tmpfs));
    }
    // A read-write bind is allowed, not denied: only what the sandbox's
    // user owns (and is no system directory), or what --writable names.
    // Root owns everything, so a root sandbox gets only --writable.
    let uid = opts.user.as_ref().map_or(m.command.uid, |u| u.uid);
    for d in writes.dirs.iter().chain(&writes.objects) {
        let Ok(md) = std::fs::symlink_metadata(d.as_path()) else {
            return Err(refuse(format!(
                "{name}: the program writes {d}, which no longer exists on the host \
                 (create it, or use --ephemeral)"
            )));
        };
        if named(d) {
            unwritable_by_user(d, &md, opts, warnings);
            continue;
        }
        let owner = std::os::unix::fs::MetadataExt::uid(&md);
        let why = if export::system_dir(d) {
            "it is a system directory".to_string()
        } else if uid == 0 {
            "the sandbox runs as root, which owns everything".to_string()
        } else if owner != uid {
            format!("uid {owner} owns it, not the sandbox's user (uid {uid})")
        } else {
            unwritable_by_user(d, &md, opts, warnings);
            continue;
        };
        return Err(refuse(format!(
            "{name}: the program writes {d}; a read-write bind of the host's is given only to \
             what the sandbox's user owns, and {why}; refused (--ephemeral gives it a private \
             one, --writable {d} binds it anyway)"
        )));
    }
    Ok((writes, tmpfs))
}

/// A working directory beneath a private (tmpfs) directory, such as a
/// recording made in `/tmp/build`, is not in the fresh tmpfs: it and the
/// directories above it are made there, with the host's modes, so that
/// `--chdir` finds it.
fn cwd_in_private_dir(m: &Manifest, b: &mut Builder<'_>) {
    let cwd = &m.command.cwd;
    let Some(top) = b
        .tmpfs
        .iter()
        .find(|t| cwd.starts_with(t) && *t != cwd)
        .cloned()
    else {
        return;
    };
    let mut below: Vec<MPath> = cwd
        .ancestors()
        .into_iter()
        .filter(|a| a.starts_with(&top) && *a != top)
        .collect();
    below.push(cwd.clone());
    for d in below {
        if b.ops.contains_key(&d) {
            continue;
        }
        let mode = std::fs::metadata(d.as_path()).map_or(0o755, |md| {
            std::os::unix::fs::PermissionsExt::mode(&md.permissions())
        });
        b.ops.insert(
            d.clone(),
            BwrapOp::Dir {
                dest: d.clone(),
                perms: mode,
            },
        );
    }
}

/// A path bound read-write for `--user`, which that user may not write on
/// the host: said before the script exists, with the owner and mode, since
/// the program's writes there would fail.
fn unwritable_by_user(
    d: &MPath,
    md: &std::fs::Metadata,
    opts: &Options,
    warnings: &mut Vec<String>,
) {
    use std::os::unix::fs::MetadataExt;
    let Some(u) = &opts.user else {
        return;
    };
    if u.uid == 0 {
        return;
    }
    let gids: Vec<u32> = std::iter::once(u.gid)
        .chain(u.groups.iter().copied())
        .collect();
    let bits = crate::core::perm::bits_for(md.mode(), (md.uid(), md.gid()), u.uid, &gids);
    if bits & crate::core::perm::WRITE == 0 {
        warnings.push(format!(
            "{d} is bound read-write, but uid {} (--user) cannot write it: uid {} \
             gid {} owns it, mode {:04o}; the program's writes there will fail",
            u.uid,
            md.uid(),
            md.gid(),
            md.mode() & 0o7777
        ));
    }
}

/// Builds the sandbox for `m` (named `name` in messages).
pub fn build(m: &Manifest, name: &str, opts: &Options) -> anyhow::Result<Sandbox> {
    let plan = export::plan_of(m, name, &opts.common)?;
    let device_warnings = devices::export_warnings(m, &opts.common.allow_devices)
        .map_err(|e| refuse(format!("{name}: {e}")))?;
    let mut warnings = Vec::new();
    let (writes, tmpfs) = writable(m, name, opts, &mut warnings)?;
    let root_service = users::root_service(m, opts);
    let staged = if root_service && opts.ephemeral {
        stage::roots(&tmpfs)
    } else {
        Vec::new()
    };
    let mut b = Builder {
        opts,
        index: m.entries.iter().map(|e| (&e.path, e)).collect(),
        writes,
        tmpfs,
        ops: BTreeMap::new(),
        data: Vec::new(),
        hosts: HostFiles::default(),
        root_service,
        staged,
        warnings: plan
            .warnings
            .iter()
            .cloned()
            .chain(device_warnings)
            .chain(warnings)
            .chain(
                plan.stripped
                    .iter()
                    .map(|(p, n)| crate::core::jail::accounts::stripped_notice(p, *n)),
            )
            .collect(),
    };
    for item in &plan.items {
        b.item(item, &plan.mounts)?;
    }
    sockets(m, name, &mut b)?;
    // A tree kept whole is bound from the host, read-write only if the
    // program wrote inside it; what the plan made beneath it is the
    // host's too.
    for t in &m.trees {
        b.ops.retain(|p, _| p == &t.path || !p.starts_with(&t.path));
        let written = crate::core::jail::trees::written_beneath(m, &t.path)
            || b.writes.dirs.iter().any(|d| d.starts_with(&t.path));
        let op = if written {
            bind(&t.path)
        } else {
            BwrapOp::RoBind {
                src: t.path.clone(),
                dest: t.path.clone(),
            }
        };
        b.ops.insert(t.path.clone(), op);
    }
    // Written directories the plan has no item for, and private ones.
    let extra: Vec<(MPath, bool)> = b
        .tmpfs
        .iter()
        .map(|d| (d.clone(), true))
        .chain(b.writes.dirs.iter().map(|d| (d.clone(), false)))
        .collect();
    for (d, private) in extra {
        if b.ops.contains_key(&d) || b.under_host_dir(&d) {
            continue;
        }
        let op = if private {
            BwrapOp::Tmpfs {
                dest: d.clone(),
                perms: None,
            }
        } else {
            bind(&d)
        };
        b.ops.insert(d, op);
    }
    cwd_in_private_dir(m, &mut b);
    stage::apply(&mut b.ops, &b.staged);
    users::privilege_wrapper(m, opts, &mut b.warnings);
    users::switched_ids(m, opts, root_service, &mut b.warnings);
    // bwrap's /proc keeps /proc/sys read-only, and /sys is bound read-only.
    for e in &m.entries {
        let pseudo = matches!(
            e.class,
            crate::core::manifest::Class::Proc | crate::core::manifest::Class::Sys
        );
        let wrote = e
            .accesses
            .iter()
            .any(|a| a.result.is_ok() && a.op == crate::core::manifest::Op::Write);
        let proc_self = e.path.as_bytes().starts_with(b"/proc/self/")
            || e.path.as_bytes().starts_with(b"/proc/thread-self/");
        if pseudo && wrote && !proc_self {
            b.warnings.push(format!(
                "{}: the program wrote it; inside the sandbox it is read-only, so that write fails",
                e.path
            ));
        }
    }

    // A program recorded as root that switched users itself runs the way
    // it was recorded: as root, so that its own drop works, in the host's
    // user namespace, so that files owned by the users it switches to keep
    // their owners, and with a bounded capability set. bwrap sets
    // no_new_privs, so no exec can raise it again.
    let caps = if root_service {
        users::service_caps(m)
    } else {
        Vec::new()
    };
    let mut ops = if root_service {
        let mut a = vec![
            BwrapOp::UnshareIpc,
            BwrapOp::UnsharePid,
            BwrapOp::UnshareNet,
            BwrapOp::UnshareUts,
            BwrapOp::UnshareCgroupTry,
            BwrapOp::CapDrop("ALL"),
        ];
        a.extend(caps.iter().map(|c| BwrapOp::CapAdd(c)));
        a
    } else {
        vec![BwrapOp::UnshareAll]
    };
    if opts.share_net {
        ops.push(BwrapOp::ShareNet);
    }
    ops.extend([BwrapOp::DieWithParent, BwrapOp::NewSession]);
    ops.extend(environment(m, opts));
    if let Some(u) = &opts.user {
        ops.push(BwrapOp::Uid(u.uid));
        ops.push(BwrapOp::Gid(u.gid));
    }
    let root_private = b.tmpfs.iter().any(MPath::is_root);
    // A read-only staged directory is bound writable so that bwrap can
    // make the mount points of what goes into it, and made read-only once
    // all of it is there.
    let read_only: Vec<MPath> = b
        .ops
        .values()
        .filter_map(|o| match o {
            BwrapOp::BindStaged { dest, ro: true, .. } => Some(dest.clone()),
            _ => None,
        })
        .collect();
    ops.extend(std::mem::take(&mut b.ops).into_values());
    ops.extend(read_only.into_iter().map(BwrapOp::RemountRo));
    // The recorded working directory when the sandbox has it.
    let cwd = &m.command.cwd;
    let has_cwd = export::plans_dir(&plan, cwd)
        || b.writes
            .dirs
            .iter()
            .chain(&b.tmpfs)
            .any(|d| cwd.starts_with(d));
    ops.push(BwrapOp::Chdir(if has_cwd {
        cwd.clone()
    } else {
        MPath::root()
    }));
    if !root_private {
        ops.push(BwrapOp::RemountRo(MPath::root()));
    }
    Ok(Sandbox {
        ops,
        data: b.data,
        user: opts.user.clone(),
        root_service,
        command: m.command.argv.iter().map(|a| a.0.clone()).collect(),
        warnings: b.warnings,
    })
}

/// Sockets the program found: bound, but never one that hands out the host.
fn sockets(m: &Manifest, name: &str, b: &mut Builder<'_>) -> anyhow::Result<()> {
    for e in &m.entries {
        if e.kind != Kind::Socket || e.created || b.under_host_dir(&e.path) {
            continue;
        }
        let p = &e.path;
        let dangerous = export::control_socket(p);
        if dangerous && !b.opts.allow_binds.contains(p) {
            return Err(refuse(format!(
                "{name}: entry {p}: this socket gives control of the host (a container \
                 runtime, a system or session bus, systemd, snapd, libvirt or LXD); refused \
                 (--allow-bind {p} binds it anyway)"
            )));
        }
        b.ops.insert(p.clone(), bind(p));
    }
    Ok(())
}

/// The sandbox's environment: `run`'s clean one (PATH, HOME, USER and
/// LOGNAME of the sandbox's user), then `--env`. Whatever the shell that
/// starts the script holds (tokens, a CA override) stays outside.
fn environment(m: &Manifest, opts: &Options) -> Vec<BwrapOp> {
    use std::os::unix::ffi::OsStringExt;
    let uid = opts.user.as_ref().map_or(m.command.uid, |u| u.uid);
    let account = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let id = crate::core::launch::Identity {
        uid: nix::unistd::Uid::from_raw(uid),
        gid: nix::unistd::Gid::from_raw(opts.user.as_ref().map_or(m.command.gid, |u| u.gid)),
        groups: Vec::new(),
        name: opts
            .user
            .as_ref()
            .and_then(|u| u.name.clone())
            .or_else(|| account.as_ref().map(|a| a.name.clone())),
        home: account.map(|a| a.dir),
    };
    let set = |name: Vec<u8>, value: Vec<u8>| BwrapOp::SetEnv { name, value };
    let mut out = vec![BwrapOp::ClearEnv];
    for (k, v) in crate::core::launch::safe_env(&id, None) {
        out.push(set(k.into_vec(), v.into_vec()));
    }
    for e in &opts.env {
        if let Some((k, v)) = e.split_once('=') {
            out.push(set(k.into(), v.into()));
        }
    }
    out
}
