//! `export`: the same recording as something other than a copied chroot.
//!
//! - [`bwrap`]: a bubblewrap command line that shows the program the host
//!   objects the manifest lists, bound in place (no copy, so the host's
//!   security updates reach them).
//! - [`oci`]: a reproducible OCI image archive whose one layer is the jail
//!   `materialize` would build.
//!
//! Both start from the plan `materialize` uses ([`crate::core::jail::plan`]),
//! so the safety rules (the device policy of [`crate::core::jail::devices`],
//! rewritten account databases, entries that contradict each other) are the
//! same in every output.
//! `docs/export.md` describes them for users; keep it in step.

pub mod bwrap;
pub mod oci;

use std::collections::{BTreeSet, HashMap};

use crate::core::error::Failure;
use crate::core::jail::plan::{self, Plan};
use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Change, Class, Entry, Kind, Manifest, Op};

/// What every format shares.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub allow_devices: Vec<MPath>,
    pub keep_password_hashes: bool,
    pub accounts: Option<Vec<String>>,
    pub keep_setuid: Vec<MPath>,
}

/// The plan of the jail the manifest describes, without what the run
/// created, as `materialize` makes it.
pub fn plan_of(m: &Manifest, name: &str, c: &Common) -> anyhow::Result<Plan> {
    let opts = plan::Options {
        with_outputs: false,
        allow_devices: c.allow_devices.clone(),
        keep_password_hashes: c.keep_password_hashes,
        accounts: c.accounts.clone(),
        keep_setuid: c.keep_setuid.clone(),
    };
    Ok(plan::build(m, name, &opts, "JAIL").map_err(|e| Failure::new(e.to_string()))?)
}

/// Whether the plan makes `p` a directory (the recorded working directory
/// is used only then).
pub fn plans_dir(plan: &Plan, p: &MPath) -> bool {
    plan.items
        .iter()
        .any(|i| i.path == *p && matches!(i.want, plan::Want::Dir(_)))
}

/// The directories whose contents are private to the program: temporary
/// files need no host directory.
pub const TEMP_DIRS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// Sockets that hand out control of the host: container runtimes (rootful
/// and rootless), the system and session buses and systemd's private
/// socket, snapd, libvirt, LXD. A program that talks to one of them in a
/// sandbox can start whatever it likes outside it.
const CONTROL_SOCKETS: &str = r"^(/var)?/run/(docker\.sock|docker/.*\.sock|containerd/.*|podman/.*|crio/.*|buildkit/.*|k3s/.*|snapd(-snap)?\.socket|libvirt/.*|lxd/.*|incus/.*|systemd/private|systemd/io\.systemd\..*|dbus/system_bus_socket|user/[0-9]+/(bus|docker\.sock|podman/.*|systemd/.*|containerd/.*|buildkit/.*))$|^/var/snap/lxd/.*\.socket$|^/var/lib/(incus|lxd)/unix\.socket$";

/// Whether binding the socket at `p` would hand the host to the program.
pub fn control_socket(p: &MPath) -> bool {
    static RE: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::bytes::Regex::new(CONTROL_SOCKETS).expect("a valid pattern"))
        .is_match(p.as_bytes())
}

/// Directories a read-write bind of the host's own would open to the
/// program: the system, every user's home, every service's state or log.
pub const SYSTEM_DIRS: [&str; 21] = [
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/var/lib", "/var/log",
];

/// Whether a read-write bind of `p` opens the system: one of
/// [`SYSTEM_DIRS`], or anything under `/usr`, `/etc`, `/boot` or `/lib*`
/// (binaries, libraries and configuration of everything else).
pub fn system_dir(p: &MPath) -> bool {
    let s = p.as_bytes();
    SYSTEM_DIRS.iter().any(|d| d.as_bytes() == s)
        || [
            "/usr", "/etc", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
        ]
        .iter()
        .any(|d| p.starts_with(&MPath::new(*d).expect("constant path")))
}

/// What the program writes: directories whose entries it adds, removes or
/// renames, and objects it found and changed in place. Beneath a directory
/// of `dirs` nothing is listed in `objects`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Writes {
    pub dirs: BTreeSet<MPath>,
    pub objects: BTreeSet<MPath>,
}

/// Works out [`Writes`] from the successful accesses. Devices (writing
/// `/dev/null` changes nothing) and `/proc` and `/sys` are left out.
pub fn writes(m: &Manifest) -> Writes {
    let index: HashMap<&MPath, &Entry> = m.entries.iter().map(|e| (&e.path, e)).collect();
    // The nearest directory the run found, holding `p`.
    let found_dir = |p: &MPath| -> Option<MPath> {
        p.ancestors()
            .into_iter()
            .rev()
            .find(|a| !index.get(a).is_some_and(|e| e.created))
    };
    let mut w = Writes::default();
    for e in &m.entries {
        if matches!(e.class, Class::Proc | Class::Sys)
            || matches!(e.kind, Kind::Chardev | Kind::Blockdev)
        {
            continue;
        }
        let ok = |c: Change| {
            e.accesses
                .iter()
                .any(|a| a.op.meaning().change == c && a.result.is_ok())
        };
        let renames = ok(Change::Name);
        let changes = ok(Change::Object);
        if e.created || renames {
            // A created object, or one that came or went: its directory.
            w.dirs.extend(found_dir(&e.path));
        } else if changes && e.kind != Kind::Missing {
            if e.kind == Kind::Dir {
                w.dirs.insert(e.path.clone());
            } else {
                w.objects.insert(e.path.clone());
            }
        }
    }
    // Only the topmost: a bind of a directory carries what is beneath it.
    let dirs: Vec<MPath> = w.dirs.iter().cloned().collect();
    w.dirs
        .retain(|d| !dirs.iter().any(|o| o != d && d.starts_with(o)));
    let dirs = w.dirs.clone();
    w.objects.retain(|o| !dirs.iter().any(|d| o.starts_with(d)));
    w
}

/// The program's path: `argv[0]` if it holds a `/`, else the first
/// file (or symlink) of that name in a PATH directory of the host that the
/// manifest shows executed (or followed) (an image has no PATH to search unless `--env`
/// gives it one).
pub fn program_path(m: &Manifest) -> anyhow::Result<MPath> {
    let argv0 = m
        .command
        .argv
        .first()
        .ok_or_else(|| Failure::new("the manifest's command has no argv"))?;
    let a = argv0.0.as_slice();
    if a.contains(&b'/') {
        if a.starts_with(b"/") {
            return MPath::new(a.to_vec()).map_err(|e| Failure::new(e).into());
        }
        let mut p = m.command.cwd.as_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(a);
        return MPath::new(p).map_err(|e| Failure::new(e).into());
    }
    // What exec found, by name, in the order of the host's PATH.
    let path = std::env::var_os("PATH").unwrap_or_else(|| crate::core::launch::SAFE_PATH.into());
    for dir in std::env::split_paths(&path) {
        let Ok(dir) = MPath::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()).to_vec())
        else {
            continue;
        };
        let cand = dir.join(a);
        // Executed there, or followed there (a symlink to the binary).
        let ran = m.entries.iter().any(|e| {
            e.path == cand
                && e.accesses.iter().any(|x| {
                    x.result.is_ok()
                        && match e.kind {
                            Kind::File => x.op == Op::Exec,
                            Kind::Symlink => x.op == Op::Follow,
                            _ => false,
                        }
                })
        });
        if ran {
            return Ok(cand);
        }
    }
    Err(Failure::new(format!(
        "cannot tell which file the recorded command {argv0} is: no successful exec of it in a PATH directory"
    ))
    .into())
}

/// Every operation that changes an object or its directory.
pub fn changing_ops() -> impl Iterator<Item = Op> {
    Op::ALL
        .iter()
        .copied()
        .filter(|op| op.meaning().change != Change::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sockets_are_told_from_service_sockets() {
        let ctl = |p: &str| control_socket(&MPath::new(p).unwrap());
        for p in [
            "/run/docker.sock",
            "/var/run/docker.sock",
            "/run/user/0/bus",
            "/run/user/1000/docker.sock",
            "/run/user/1000/podman/podman.sock",
            "/run/user/0/systemd/private",
            "/run/snapd.socket",
            "/run/snapd-snap.socket",
            "/run/libvirt/libvirt-sock",
            "/var/run/libvirt/virtqemud-sock",
            "/run/containerd/containerd.sock",
            "/run/dbus/system_bus_socket",
            "/run/systemd/private",
            "/var/snap/lxd/common/lxd/unix.socket",
        ] {
            assert!(ctl(p), "{p}");
        }
        for p in [
            "/run/postgresql/.s.PGSQL.5432",
            "/run/mysqld/mysqld.sock",
            "/dev/log",
            "/run/systemd/journal/socket",
            "/tmp/app.sock",
        ] {
            assert!(!ctl(p), "{p}");
        }
    }

    #[test]
    fn system_dirs_and_what_lies_beneath_them() {
        let sys = |p: &str| system_dir(&MPath::new(p).unwrap());
        for p in [
            "/",
            "/var",
            "/var/lib",
            "/etc/ssl",
            "/usr/local/lib",
            "/lib32/x",
            "/libx32",
        ] {
            assert!(sys(p), "{p}");
        }
        // A service's own state directory is its to write.
        for p in ["/var/lib/redis", "/srv/www", "/home/alice/data", "/library"] {
            assert!(!sys(p), "{p}");
        }
    }
}
