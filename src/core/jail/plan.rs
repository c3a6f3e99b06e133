//! From a manifest to the list of things the jail should contain.
//!
//! This step reads the manifest and host metadata only; it writes nothing. It
//! also rejects manifests whose entries contradict each other (a file beneath
//! a symlink, say), so that a bad manifest fails before the jail is touched.

use std::collections::{BTreeMap, HashMap, HashSet};

use nix::sys::stat::{lstat, stat, FileStat, SFlag};

use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Class, Entry, Kind, Manifest};

use super::fs::file_type;
use crate::core::jail::accounts::{self, Rewrite};
use crate::core::jail::devices::{self, Verdict};

/// Permission bits and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug)]
pub enum Want {
    Dir(Meta),
    /// Data, mode and owner come from the host file at copy time; the mode is
    /// further limited to `mode_cap` (the recorded mode), and loses its
    /// setuid/setgid bits unless `keep_special` (`--keep-setuid`).
    File {
        mode_cap: u32,
        keep_special: bool,
        /// The bytes are copied only when the program opened the file,
        /// ran it or moved it (see [`carries_content`]); otherwise the jail
        /// gets a sparse file of the host's size, type, mode and owner.
        content: bool,
        sha256: Option<String>,
        size_hint: u64,
        /// An account database, rewritten rather than copied.
        rewrite: Option<Rewrite>,
    },
    Symlink {
        target: Vec<u8>,
        uid: u32,
        gid: u32,
        /// The host link's (atime, mtime) as (seconds, nanoseconds), kept
        /// as `cp -a` keeps them (`ls -l` of a zoneinfo link shows them).
        times: Option<[(i64, i64); 2]>,
    },
    Device {
        block: bool,
        major: u32,
        minor: u32,
        meta: Meta,
    },
    Fifo(Meta),
}

#[derive(Debug)]
pub struct Item {
    pub path: MPath,
    pub want: Want,
    /// The recorded program created this; gone-from-host is a skip, not a
    /// failure.
    pub output: bool,
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Parents always come before their children.
    pub items: Vec<Item>,
    pub skipped: Vec<(MPath, String)>,
    /// Mount point -> file system type the jail needs mounted there.
    pub mounts: BTreeMap<MPath, &'static str>,
    pub warnings: Vec<String>,
    /// Shadow files the program read whose hashes the jail does not get,
    /// with the number of accounts that lose one (see
    /// `accounts::stripped_reads`): said on a line of its own.
    pub stripped: Vec<(MPath, usize)>,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Default)]
pub struct Options {
    pub with_outputs: bool,
    pub allow_devices: Vec<MPath>,
    /// Copy password hashes of shadow and gshadow as they are.
    pub keep_password_hashes: bool,
    /// Keep only these accounts (and those the jail needs) in the account
    /// databases.
    pub accounts: Option<Vec<String>>,
    /// Files that keep their setuid/setgid bits; every other copy loses
    /// them (a program that only looked for `mount` must not get a
    /// setuid `mount` in its jail).
    pub keep_setuid: Vec<MPath>,
}

/// A manifest entry that cannot go into a jail as it stands (named, with
/// the reason), found before anything is written.
#[derive(Debug, thiserror::Error)]
#[error("{manifest}: entry {path}: {reason}")]
pub struct EntryError {
    pub manifest: String,
    pub path: String,
    pub reason: String,
}

fn socket_advice(e: &Entry, jail_hint: &str) -> String {
    if e.output {
        return "socket the program creates itself when it runs".into();
    }
    if e.path.as_bytes() == b"/dev/log" {
        return format!(
            "syslog socket: not created; have the syslog daemon listen there \
             (`syslogd -a {jail_hint}/dev/log`, or rsyslog's imuxsock `Socket` option), \
             or bind-mount the host's /dev/log over an empty file at {jail_hint}/dev/log \
             (`jailtrace run --mount dev-log=...` does this)"
        );
    }
    format!(
        "socket: not created; bind-mount the host socket over an empty file at \
         {jail_hint}{}, or run the service it belongs to inside the jail",
        e.path
    )
}

fn mount_fs(class: Class) -> &'static str {
    match class {
        Class::Sys => "sysfs",
        _ => "proc",
    }
}

fn host_stat(p: &MPath, follow: bool) -> Option<FileStat> {
    if follow {
        stat(p.as_path()).ok()
    } else {
        lstat(p.as_path()).ok()
    }
}

/// Directory metadata: the host's owner, and a mode no wider than either the
/// recorded one or the host's. Where the host has no such directory, the
/// manifest alone cannot give setuid, setgid, sticky or group/world write
/// (`7777` would make `drwsrwsrwt`).
fn dir_meta(entry: Option<&Entry>, host: Option<FileStat>) -> Meta {
    let host = host.filter(|s| file_type(s) == SFlag::S_IFDIR);
    let recorded = entry.and_then(|e| e.mode).map(|m| m.0);
    let mode = match (recorded, host.map(|s| s.st_mode & 0o7777)) {
        (Some(a), Some(b)) => a & b,
        (Some(a), None) => a & !0o7022,
        (None, Some(b)) => b,
        (None, None) => 0o755,
    };
    let (uid, gid) = match host {
        Some(s) => (s.st_uid, s.st_gid),
        None => (
            entry.and_then(|e| e.uid).unwrap_or(0),
            entry.and_then(|e| e.gid).unwrap_or(0),
        ),
    };
    Meta { mode, uid, gid }
}

/// Metadata for a device or FIFO: as for directories, but the host object
/// only counts when it is the same kind of node (and the same device).
fn node_meta(e: &Entry, ty: SFlag, rdev: Option<(u32, u32)>) -> Meta {
    let host = host_stat(&e.path, false).filter(|s| {
        file_type(s) == ty
            && rdev.is_none_or(|(ma, mi)| {
                (
                    nix::sys::stat::major(s.st_rdev),
                    nix::sys::stat::minor(s.st_rdev),
                ) == (u64::from(ma), u64::from(mi))
            })
    });
    // Special bits make no sense on nodes; never create them.
    let recorded = e.mode.map(|m| m.0 & 0o777);
    let mode = match (recorded, host.map(|s| s.st_mode & 0o777)) {
        (Some(a), Some(b)) => a & b,
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => 0o600,
    };
    let (uid, gid) = match host {
        Some(s) => (s.st_uid, s.st_gid),
        None => (e.uid.unwrap_or(0), e.gid.unwrap_or(0)),
    };
    Meta { mode, uid, gid }
}

pub fn build(
    m: &Manifest,
    manifest_name: &str,
    opts: &Options,
    jail_hint: &str,
) -> Result<Plan, EntryError> {
    let mut entries: Vec<&Entry> = m.entries.iter().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let index: HashMap<&MPath, &Entry> = entries.iter().map(|e| (&e.path, *e)).collect();
    let err = |e: &Entry, reason: String| EntryError {
        manifest: manifest_name.to_string(),
        path: e.path.encoded(),
        reason,
    };

    let mut plan = Plan::default();
    let mut ensured: HashSet<MPath> = HashSet::new();
    let keep = match &opts.accounts {
        None => None,
        Some(names) => Some(std::sync::Arc::new(accounts_to_keep(m, names).map_err(
            |reason| EntryError {
                manifest: manifest_name.to_string(),
                path: "/etc/passwd".into(),
                reason,
            },
        )?)),
    };
    if let Some(k) = &keep {
        plan.warnings.extend(k.left_out.iter().cloned());
    }
    plan.stripped = accounts::stripped_reads(m, opts.keep_password_hashes, keep.as_deref());
    plan.warnings.extend(unknown_allowed_devices(opts, &index));

    let probes_only = probe_only_dirs(&entries);

    for e in &entries {
        // Checked before the proc/sys branch too: a `class` is only a claim
        // of the manifest, and a "proc" entry beneath a symlink is just as
        // contradictory.
        if let Some(reason) = bad_parent(e, &index) {
            return Err(err(e, reason));
        }

        // Entries inside a proc or sys mount belong to that mount.
        let pseudo_parent = e
            .path
            .ancestors()
            .into_iter()
            .filter_map(|a| index.get(&a).copied())
            .find(|a| matches!(a.class, Class::Proc | Class::Sys));
        if matches!(e.class, Class::Proc | Class::Sys) || pseudo_parent.is_some() {
            let class = pseudo_parent.map_or(e.class, |p| p.class);
            if e.kind != Kind::Missing {
                plan_mount(e, class, &index, &mut ensured, &mut plan);
            }
            continue;
        }
        if e.kind == Kind::Missing {
            continue;
        }
        if probes_only.contains(&e.path) {
            plan.skipped.push((e.path.clone(), VAIN_PROBES.into()));
            continue;
        }

        // Only what the run itself brought into existence is left out: an
        // object it found is an input, whatever the program did to it
        // afterwards. A device is never an output.
        let device = matches!(e.kind, Kind::Chardev | Kind::Blockdev);
        if e.created && !device && !opts.with_outputs {
            skip_created(e, &index, &mut ensured, &mut plan);
            continue;
        }

        let want = match e.kind {
            Kind::Missing => continue,
            Kind::Dir => {
                if ensured.contains(&e.path) {
                    continue;
                }
                Want::Dir(dir_meta(Some(e), host_stat(&e.path, false)))
            }
            Kind::File => {
                let want = file_want(e, opts, keep.as_ref());
                if let Want::File { size_hint, .. } = want {
                    plan.files += 1;
                    plan.bytes += size_hint;
                }
                want
            }
            Kind::Symlink => symlink_want(e).map_err(|r| err(e, r))?,
            Kind::Chardev | Kind::Blockdev => match device_want(e, opts) {
                Ok(want) => want,
                Err(Refusal::Skip(reason)) => {
                    plan.skipped.push((e.path.clone(), reason));
                    continue;
                }
                Err(Refusal::Invalid(reason)) => return Err(err(e, reason)),
            },
            Kind::Socket => {
                // Its directory is made, so a bind mount has somewhere to go.
                ensure_ancestors(&e.path, &index, &mut ensured, &mut plan);
                plan.skipped
                    .push((e.path.clone(), socket_advice(e, jail_hint)));
                continue;
            }
            Kind::Fifo => Want::Fifo(node_meta(e, SFlag::S_IFIFO, None)),
        };
        ensure_ancestors(&e.path, &index, &mut ensured, &mut plan);
        if matches!(want, Want::Dir(_)) {
            ensured.insert(e.path.clone());
        }
        plan.items.push(Item {
            path: e.path.clone(),
            want,
            output: e.output,
        });
    }
    // An output directory that turned out to hold something we create is
    // created after all; don't also list it as skipped.
    plan.skipped.retain(|(p, _)| !ensured.contains(p));
    Ok(plan)
}

/// Why `e` cannot be where the manifest puts it: whatever holds another
/// entry must be a directory, since a manifest records real host objects.
/// Anything else (a file beneath a symlink entry, typically) is a forged or
/// corrupt manifest. Ancestors of class proc or sys are exempt
/// (`/proc/self` is a symlink with entries beneath it).
fn bad_parent(e: &Entry, index: &HashMap<&MPath, &Entry>) -> Option<String> {
    if e.kind == Kind::Missing {
        return None;
    }
    for a in e.path.ancestors() {
        let Some(p) = index.get(&a) else { continue };
        if p.kind == Kind::Dir || matches!(p.class, Class::Proc | Class::Sys) {
            continue;
        }
        let what = match p.kind {
            Kind::Symlink => "a symlink",
            Kind::Missing => "missing",
            _ => "not a directory",
        };
        return Some(format!(
            "lies beneath {a}, which the manifest records as {what}; \
             a manifest path never has such a parent"
        ));
    }
    None
}

/// An entry on a proc or sys mount: only the mount point is made, and the
/// mount is listed as needed.
fn plan_mount(
    e: &Entry,
    class: Class,
    index: &HashMap<&MPath, &Entry>,
    ensured: &mut HashSet<MPath>,
    plan: &mut Plan,
) {
    // The mount point: the topmost ancestor-or-self that is not a recorded
    // ordinary directory (`/proc` for `/proc/self/stat`).
    let mut chain = e.path.ancestors();
    chain.push(e.path.clone());
    let mount = chain
        .iter()
        .skip(1)
        .find(|a| index.get(a).is_none_or(|x| x.class == class))
        .cloned()
        .unwrap_or_else(|| e.path.clone());
    if !ensured.contains(&mount) {
        ensure_ancestors(&mount, index, ensured, plan);
        let meta = dir_meta(index.get(&mount).copied(), host_stat(&mount, true));
        plan.items.push(Item {
            path: mount.clone(),
            want: Want::Dir(meta),
            output: false,
        });
        ensured.insert(mount.clone());
    }
    let fs = mount_fs(class);
    plan.mounts.insert(mount.clone(), fs);
    if e.path != mount {
        plan.skipped.push((
            e.path.clone(),
            format!("on the {fs} file system: needs {fs} mounted at {mount}"),
        ));
    }
}

/// What the run made itself: left out, with its directory made, unless the
/// run made that too (the program's own mkdir must find nothing there).
fn skip_created(
    e: &Entry,
    index: &HashMap<&MPath, &Entry>,
    ensured: &mut HashSet<MPath>,
    plan: &mut Plan,
) {
    let reason = match e.kind {
        Kind::Dir => "directory the program created: not created (--with-outputs creates it)",
        Kind::Socket => "socket the program creates itself when it runs",
        _ => "made by the program: its directory is created, the object not (--with-outputs copies it)",
    };
    let made_by_run = |a: &MPath| index.get(a).is_some_and(|x| x.created);
    let anchor = match e.path.ancestors().into_iter().find(made_by_run) {
        Some(top) => top,
        None => e.path.clone(),
    };
    ensure_ancestors(&anchor, index, ensured, plan);
    plan.skipped.push((e.path.clone(), reason.to_string()));
}

/// Whether a file's bytes go into a jail: only when the program opened it
/// successfully (read, write, `O_CREAT`), ran it or had the kernel load it,
/// or renamed or linked it (its bytes then appear under the new name). A
/// file it only looked up (`[ -e /etc/ssh/ssh_host_ed25519_key ]`) or was
/// refused gets no bytes: a secret the program never read must not reach a
/// jail or an image. An entry without recorded accesses (written by hand,
/// or by another tool) says nothing of use, and keeps its bytes.
pub fn carries_content(e: &Entry) -> bool {
    e.accesses.is_empty()
        || e.accesses
            .iter()
            .any(|a| a.result.as_str() == "ok" && a.op.meaning().content)
}

/// A regular file: copied from the host at apply time, or rewritten if it
/// is an account database.
fn file_want(e: &Entry, opts: &Options, keep: Option<&std::sync::Arc<accounts::Keep>>) -> Want {
    let size = e
        .size
        .or_else(|| host_stat(&e.path, false).map(|s| s.st_size as u64))
        .unwrap_or(0);
    Want::File {
        mode_cap: e.mode.map_or(0o7777, |m| m.0),
        keep_special: opts.keep_setuid.contains(&e.path),
        content: carries_content(e),
        sha256: e.sha256.clone(),
        size_hint: size,
        rewrite: Rewrite::for_path(e.path.as_bytes(), opts.keep_password_hashes, keep),
    }
}

const VAIN_PROBES: &str = "directory that only holds paths the program looked for in vain \
     (ENOENT): not made, since without it they are just as missing";

/// `--allow-device` paths where the manifest has no device.
fn unknown_allowed_devices(opts: &Options, index: &HashMap<&MPath, &Entry>) -> Vec<String> {
    opts.allow_devices
        .iter()
        .filter(|a| {
            !index
                .get(a)
                .is_some_and(|e| matches!(e.kind, Kind::Chardev | Kind::Blockdev))
        })
        .map(|a| format!("--allow-device {a}: the manifest has no device at that path"))
        .collect()
}

/// Why a device entry gives no device.
enum Refusal {
    /// Left out, for this reason (see [`devices::verdict`]).
    Skip(String),
    /// The entry itself is malformed.
    Invalid(String),
}

/// A device node, as [`devices::verdict`] rules.
fn device_want(e: &Entry, opts: &Options) -> Result<Want, Refusal> {
    let (block, major, minor) = match devices::verdict(e, &opts.allow_devices) {
        Ok(Verdict::Create {
            block,
            major,
            minor,
        }) => (block, major, minor),
        Ok(Verdict::Refuse(reason)) => return Err(Refusal::Skip(reason)),
        Err(why) => return Err(Refusal::Invalid(why.into())),
    };
    let ty = if block {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFCHR
    };
    Ok(Want::Device {
        block,
        major,
        minor,
        meta: node_meta(e, ty, Some((major, minor))),
    })
}

/// A symlink with the recorded target and the host link's owner and times.
fn symlink_want(e: &Entry) -> Result<Want, String> {
    let Some(target) = &e.target else {
        return Err("symlink without a target".into());
    };
    let host = host_stat(&e.path, false).filter(|s| file_type(s) == SFlag::S_IFLNK);
    let (uid, gid) = match host {
        Some(s) => (s.st_uid, s.st_gid),
        None => (e.uid.unwrap_or(0), e.gid.unwrap_or(0)),
    };
    Ok(Want::Symlink {
        target: target.0.clone(),
        uid,
        gid,
        times: host.map(|s| [(s.st_atime, s.st_atime_nsec), (s.st_mtime, s.st_mtime_nsec)]),
    })
}

/// Directories that are in the manifest only to hold failed lookups (a PATH
/// search through `/root/.cargo/bin`): no accesses of their own, and
/// nothing below them but such directories and missing paths whose every
/// lookup failed with ENOENT. Without them those lookups fail the same way.
/// A probe that failed otherwise (EACCES, ENOTDIR) or a path the program
/// made keeps its directory: its result depends on it. `verify` asks too,
/// so that it never calls missing what materialize leaves out on purpose.
pub fn probe_only_dirs(entries: &[&Entry]) -> HashSet<MPath> {
    let vain = |e: &Entry| {
        e.kind == Kind::Missing
            && !e.created
            && e.accesses.iter().all(|a| a.result.as_str() == "ENOENT")
    };
    let mut holds: HashSet<MPath> = HashSet::new();
    for e in entries {
        holds.extend(e.path.parent());
    }
    // Children sort after their parents: walking backwards, every child is
    // judged before its directory.
    let mut needed: HashSet<MPath> = HashSet::new();
    let mut out = HashSet::new();
    for e in entries.iter().rev() {
        let probe_dir = e.kind == Kind::Dir
            && e.class == Class::Regular
            && e.accesses.is_empty()
            && !e.path.is_root()
            && holds.contains(&e.path)
            && !needed.contains(&e.path);
        if probe_dir {
            out.insert(e.path.clone());
        } else if !vain(e) {
            needed.extend(e.path.ancestors());
        }
    }
    out
}

/// What `--accounts NAMES` keeps: the names, root, the owners of whatever
/// the jail gets, the recording's user and the ids the program switched to.
fn accounts_to_keep(m: &Manifest, names: &[String]) -> Result<accounts::Keep, String> {
    let mut uids: std::collections::BTreeSet<u32> = m.command.set_uids.iter().copied().collect();
    let mut gids: std::collections::BTreeSet<u32> = m.command.set_gids.iter().copied().collect();
    uids.insert(m.command.uid);
    gids.insert(m.command.gid);
    for e in &m.entries {
        if e.kind != Kind::Missing && !e.created && e.class != Class::Proc {
            uids.extend(e.uid);
            gids.extend(e.gid);
        }
    }
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("--accounts: cannot read {p}: {e}"));
    accounts::keep(
        &read("/etc/passwd")?,
        &read("/etc/group")?,
        names,
        &uids,
        &gids,
    )
}

/// Adds a directory item for every ancestor of `p` not planned yet, from its
/// manifest entry, or from the host when the manifest has none.
fn ensure_ancestors(
    p: &MPath,
    index: &HashMap<&MPath, &Entry>,
    ensured: &mut HashSet<MPath>,
    plan: &mut Plan,
) {
    for a in p.ancestors() {
        if ensured.contains(&a) {
            continue;
        }
        let entry = index.get(&a).copied();
        let host = host_stat(&a, entry.is_none());
        plan.items.push(Item {
            path: a.clone(),
            want: Want::Dir(dir_meta(entry, host)),
            output: false,
        });
        ensured.insert(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: &str) -> Manifest {
        let text = format!(
            r#"{{"schema":1,"generator":"t","command":{{"argv":["x"],"cwd":"/","uid":0,"gid":0}},"entries":[{entries}]}}"#
        );
        Manifest::from_slice("t", text.as_bytes()).unwrap()
    }

    fn opts() -> Options {
        Options {
            with_outputs: false,
            allow_devices: vec![],
            keep_setuid: vec![],
            keep_password_hashes: false,
            accounts: None,
        }
    }

    #[test]
    fn a_directory_the_host_lacks_gets_no_special_or_shared_write_bits() {
        let mut e = Entry::new(
            MPath::new("/nowhere/jailtrace-test").unwrap(),
            Kind::Dir,
            Class::Regular,
        );
        e.mode = Some(crate::core::manifest::Mode(0o7777));
        assert_eq!(dir_meta(Some(&e), None).mode, 0o755);
        e.mode = Some(crate::core::manifest::Mode(0o0750));
        assert_eq!(dir_meta(Some(&e), None).mode, 0o750);
    }

    #[test]
    fn rejects_entries_beneath_a_symlink() {
        let m = manifest(
            r#"{"path":"/a","kind":"symlink","class":"regular","target":"/tmp/x"},
               {"path":"/a/f","kind":"file","class":"regular"}"#,
        );
        let e = build(&m, "t", &opts(), "J").unwrap_err();
        assert!(e.to_string().contains("beneath /a"), "{e}");
    }

    #[test]
    fn a_proc_class_claim_does_not_lift_the_symlink_check() {
        for class in ["proc", "sys"] {
            let m = manifest(&format!(
                r#"{{"path":"/a","kind":"symlink","class":"regular","target":"/tmp/x"}},
                   {{"path":"/a/f","kind":"file","class":"{class}"}}"#
            ));
            let e = build(&m, "t", &opts(), "J").unwrap_err();
            assert!(e.to_string().contains("beneath /a"), "{class}: {e}");
        }
        // A symlink of class proc, as record writes /proc/self, is fine.
        let m = manifest(
            r#"{"path":"/proc","kind":"dir","class":"proc"},
               {"path":"/proc/self","kind":"symlink","class":"proc"},
               {"path":"/proc/self/status","kind":"file","class":"proc"}"#,
        );
        let p = build(&m, "t", &opts(), "J").unwrap();
        assert_eq!(p.mounts.len(), 1);
    }

    #[test]
    fn ancestors_come_first_and_once() {
        let m = manifest(
            r#"{"path":"/x/y/z","kind":"symlink","class":"regular","target":"q"},
               {"path":"/x/y/w","kind":"symlink","class":"regular","target":"q"}"#,
        );
        let p = build(&m, "t", &opts(), "J").unwrap();
        let paths: Vec<String> = p.items.iter().map(|i| i.path.encoded()).collect();
        assert_eq!(paths, ["/", "/x", "/x/y", "/x/y/w", "/x/y/z"]);
    }

    #[test]
    fn devices_are_matched_by_path_and_number() {
        let m = manifest(
            r#"{"path":"/dev/null","kind":"chardev","class":"dev","major":8,"minor":0},
               {"path":"/dev/zero","kind":"chardev","class":"dev","major":1,"minor":5},
               {"path":"/dev/mem","kind":"chardev","class":"dev","major":1,"minor":1},
               {"path":"/dev/sda","kind":"blockdev","class":"dev","major":8,"minor":0}"#,
        );
        let p = build(&m, "t", &opts(), "J").unwrap();
        let skipped: Vec<String> = p.skipped.iter().map(|s| s.0.encoded()).collect();
        assert_eq!(skipped, ["/dev/mem", "/dev/null", "/dev/sda"]);
        assert!(p.skipped[0].1.contains("physical memory"));
        let mut o = opts();
        o.allow_devices = vec![MPath::new("/dev/sda").unwrap()];
        let p = build(&m, "t", &o, "J").unwrap();
        assert!(p.items.iter().any(|i| i.path.encoded() == "/dev/sda"));
    }

    #[test]
    fn directories_holding_only_vain_lookups_are_left_out() {
        let m = manifest(
            r#"{"path":"/a","kind":"dir","class":"regular"},
               {"path":"/a/b","kind":"dir","class":"regular"},
               {"path":"/a/b/x","kind":"missing","class":"regular","accesses":[{"op":"exec","result":"ENOENT"}]},
               {"path":"/c","kind":"dir","class":"regular"},
               {"path":"/c/x","kind":"missing","class":"regular","accesses":[{"op":"exec","result":"EACCES"}]},
               {"path":"/d","kind":"dir","class":"regular"},
               {"path":"/d/tmp","kind":"missing","class":"regular","created":true,"output":true,
                "accesses":[{"op":"create","result":"ok"},{"op":"unlink","result":"ok"}]},
               {"path":"/e","kind":"dir","class":"regular","accesses":[{"op":"stat","result":"ok"}]},
               {"path":"/e/x","kind":"missing","class":"regular","accesses":[{"op":"stat","result":"ENOENT"}]},
               {"path":"/f","kind":"dir","class":"regular"}"#,
        );
        let p = build(&m, "t", &opts(), "J").unwrap();
        let made: Vec<String> = p.items.iter().map(|i| i.path.encoded()).collect();
        assert_eq!(made, ["/", "/c", "/d", "/e", "/f"]);
        let skipped: Vec<String> = p.skipped.iter().map(|s| s.0.encoded()).collect();
        assert_eq!(skipped, ["/a", "/a/b"]);
    }

    #[test]
    fn what_the_run_made_is_left_out_with_its_own_directories() {
        let m = manifest(
            r#"{"path":"/run","kind":"dir","class":"regular","accesses":[{"op":"stat","result":"ok"}]},
               {"path":"/run/app","kind":"dir","class":"regular","created":true,"output":true,
                "accesses":[{"op":"mkdir","result":"ok"}]},
               {"path":"/run/app/pid","kind":"file","class":"regular","created":true,"output":true,
                "accesses":[{"op":"create","result":"ok"}]},
               {"path":"/var/log/app.log","kind":"file","class":"regular","created":true,"output":true,
                "accesses":[{"op":"create","result":"ok"}]}"#,
        );
        let p = build(&m, "t", &opts(), "J").unwrap();
        let made: Vec<String> = p.items.iter().map(|i| i.path.encoded()).collect();
        assert_eq!(made, ["/", "/run", "/var", "/var/log"]);
        let skipped: Vec<String> = p.skipped.iter().map(|s| s.0.encoded()).collect();
        assert_eq!(skipped, ["/run/app", "/run/app/pid", "/var/log/app.log"]);
    }

    #[test]
    fn dir_modes_never_widen() {
        let mut e = Entry::new(MPath::new("/d").unwrap(), Kind::Dir, Class::Regular);
        e.mode = Some(crate::core::manifest::Mode(0o4777));
        let host = stat("/").unwrap();
        let m = dir_meta(Some(&e), Some(host));
        assert_eq!(m.mode, 0o4777 & (host.st_mode & 0o7777));
    }
}
