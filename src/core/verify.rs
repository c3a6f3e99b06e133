//! The `verify` command: run a command inside its jail, exactly as `run`
//! would, but under the tracer, and list what it looked for and did not
//! find although the host has it. With `--fix`, add that to the manifest,
//! materialize it, and repeat until nothing is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use crate::core::error::Failure;
use crate::core::launch::{JailOptions, Plan, Step};
use crate::core::manifest::pathenc::encode;
use crate::core::manifest::{Entry, Kind, Manifest, Op};
use crate::core::record::RecordError;
use crate::core::trace::{self, Launch, Placement, RawLog, TraceOptions};

/// What `verify` does; see `jailtrace verify --help`.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Add what is missing to the manifest given with --manifest, materialize
    /// it into JAIL, and run again, until nothing more is missing.
    pub fix: bool,
    /// Give up after this many --fix rounds.
    pub max_rounds: u32,
    /// When the command fails in the jail and no failed lookup explains it,
    /// run it once on the host (as the jail's user, from /, with the same
    /// environment) and compare what it used with what the jail has.
    /// `--fix` does this by itself.
    pub host_reference: bool,
    /// Send SIGTERM to the command after this long (for daemons), then
    /// SIGKILL after 5 seconds.
    pub timeout: Option<Duration>,
    /// The tracing engine of every run.
    pub engine: trace::Engine,
    pub jail: JailOptions,
    /// The command to run in the jail.
    pub command: Vec<OsString>,
}

/// A path the command failed on inside the jail that exists on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Missing {
    pub path: Vec<u8>,
    pub follow: bool,
    pub op: Op,
    pub errno: String,
}

/// What one traced run in the jail found.
#[derive(Debug, Default)]
pub struct Findings {
    pub missing: BTreeSet<Missing>,
    /// Mounts the command needed and did not have (`proc`, `sys`).
    pub mounts: BTreeSet<&'static str>,
    /// Device nodes it needed.
    pub devices: BTreeSet<Vec<u8>>,
    /// Directories the command listed in the jail that hold fewer entries
    /// than on the host: (directory, names only the host has). Programs
    /// that search a listing (Python's import system) never look up a name
    /// the listing lacks, so no failed call shows these.
    pub incomplete_dirs: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
    /// (interpreter, executable): an exec failed with ENOENT although the
    /// executable is in the jail, because its ELF or `#!` interpreter is not.
    pub interpreters: BTreeSet<(Vec<u8>, Vec<u8>)>,
    /// Paths the jailed run read or executed, as it named them (with
    /// whether the last symlink was followed): those the jail holds
    /// without their bytes (see `plan::carries_content`) are missing
    /// their content.
    pub read: BTreeSet<(Vec<u8>, bool)>,
    /// Of those, what the manifest gives no bytes (set with a manifest).
    pub contentless: BTreeSet<Vec<u8>>,
    /// Shadow files the program read on the host (set with a manifest)
    /// whose password hashes the jail lacks, with how many: logins fail.
    pub stripped: BTreeMap<Vec<u8>, usize>,
    pub exit_status: Option<i32>,
}

impl Findings {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.mounts.is_empty()
            && self.devices.is_empty()
            && self.contentless.is_empty()
            && self.stripped.is_empty()
    }
}

fn internal(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(msg).into()
}

/// Whether the host has what `path` names (after the same symlink rule).
fn on_host(path: &[u8], follow: bool) -> bool {
    let p = Path::new(std::ffi::OsStr::from_bytes(path));
    if follow {
        std::fs::metadata(p).is_ok()
    } else {
        std::fs::symlink_metadata(p).is_ok()
    }
}

/// Runs the command once in the jail under the tracer.
pub fn trace_in_jail(args: &VerifyOptions) -> anyhow::Result<(Findings, Plan)> {
    let plan = Plan::new(&args.jail, &args.command).map_err(|e| internal(e.to_string()))?;
    let opts = TraceOptions {
        placement: Placement::Same,
        timeout: args.timeout,
        grace: Duration::from_secs(5),
        progress: std::io::stderr().is_terminal(),
        root: Some(plan.jail.as_os_str().as_bytes().to_vec()),
    };
    let rec = args
        .engine
        .backend()
        .record(Launch::Jail(&plan), &opts)
        .map_err(|e| internal(e.to_string()))?;
    complete(rec.lost, &rec.warnings, "the run in the jail")?;
    if let Some(e) = rec.start_failure {
        // A failed exec is a finding (the program or its interpreter is
        // missing), anything before it is an error.
        if e.step != Step::Exec {
            return Err(Failure::because(e.cause(), e.message(&plan)).into());
        }
    }
    let view = JailView::open(&plan.jail)?;
    let mounted: Vec<&'static str> = plan
        .mounts
        .iter()
        .filter_map(|m| match m.kind {
            crate::core::launch::MountKind::Proc => Some("proc"),
            crate::core::launch::MountKind::Sys => Some("sys"),
            crate::core::launch::MountKind::DevLog => None,
        })
        .collect();
    let mut f = analyse(&rec.log, &view, &mounted);
    f.interpreters = missing_interpreters(&f, &view);
    f.incomplete_dirs = listed_dirs(&rec.log, &view);
    f.exit_status = rec.exit_status;
    Ok((f, plan))
}

/// A recording that lost events (bpf) cannot tell what is missing: an
/// error, as `record` exits 124 without `--allow-incomplete`.
fn complete<'a>(
    lost: u64,
    warnings: impl IntoIterator<Item = &'a String>,
    what: &str,
) -> anyhow::Result<()> {
    if lost == 0 {
        return Ok(());
    }
    let why = warnings
        .into_iter()
        .find(|w| w.starts_with("incomplete recording"))
        .map_or("events were lost", String::as_str);
    Err(Failure::because(
        crate::core::error::Cause::Incomplete,
        format!("{what} was recorded incompletely ({why}); its findings would be wrong"),
    )
    .into())
}

/// Read-only lookups inside the jail that never leave it: every path is
/// resolved with the jail as root (`RESOLVE_IN_ROOT`), so a symlink in the
/// jail pointing at a host FIFO or device cannot make root open it.
struct JailView {
    root: std::os::fd::OwnedFd,
}

impl JailView {
    fn open(jail: &Path) -> anyhow::Result<JailView> {
        let root = nix::fcntl::open(
            jail,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| {
            internal(format!(
                "{}: cannot open the jail: {}",
                jail.display(),
                e.desc()
            ))
        })?;
        Ok(JailView { root })
    }

    fn openat(&self, path: &[u8], flags: nix::fcntl::OFlag) -> Option<std::os::fd::OwnedFd> {
        use nix::fcntl::OFlag;
        let rel = std::ffi::OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(path));
        let rel = if rel.is_empty() {
            std::ffi::OsStr::new(".")
        } else {
            rel
        };
        // openat2 refuses O_PATH with flags it would ignore.
        let extra = if flags.contains(OFlag::O_PATH) {
            OFlag::empty()
        } else {
            OFlag::O_NOCTTY | OFlag::O_NONBLOCK
        };
        use std::os::fd::AsFd;
        crate::core::jail::beneath::open(
            self.root.as_fd(),
            rel,
            flags | extra,
            crate::core::jail::beneath::Resolve::InRoot,
        )
        .ok()
    }

    /// Whether the jail lacks the host object of `e`, or holds a regular
    /// file of another size in its place (made empty by an `O_CREAT` open
    /// of the failed run, say): materialize would put it right.
    fn lacks(&self, e: &Entry) -> bool {
        use crate::core::manifest::Class;
        use nix::fcntl::OFlag;
        if e.kind == Kind::Missing || !matches!(e.class, Class::Regular | Class::Dev) {
            return false;
        }
        let Some(fd) = self.openat(e.path.as_bytes(), OFlag::O_PATH | OFlag::O_NOFOLLOW) else {
            return true;
        };
        if e.kind != Kind::File {
            return false;
        }
        let (Ok(jail), Ok(host)) = (
            nix::sys::stat::fstat(&fd),
            std::fs::symlink_metadata(e.path.as_path()),
        ) else {
            return false;
        };
        use std::os::unix::fs::MetadataExt;
        jail.st_size as u64 != host.size()
    }

    /// Why the jail's copy of a file the program found has lost what the
    /// host gave it, if it has: gone, empty where the recording saw bytes,
    /// or other bytes than the recorded sha256. A file the jailed program
    /// only changed is left alone.
    fn lost_content(&self, e: &Entry) -> Option<&'static str> {
        use crate::core::manifest::Class;
        use nix::fcntl::OFlag;
        if e.created || e.kind != Kind::File || e.class != Class::Regular {
            return None;
        }
        let Some(fd) = self.openat(e.path.as_bytes(), OFlag::O_PATH | OFlag::O_NOFOLLOW) else {
            return Some("missing in the jail");
        };
        let st = nix::sys::stat::fstat(&fd).ok()?;
        // The recorded size, or the host's for a file the program only
        // wrote (no size is recorded for it).
        let had_bytes = e.size.map_or_else(
            || {
                std::fs::symlink_metadata(e.path.as_path())
                    .is_ok_and(|m| m.is_file() && m.len() > 0)
            },
            |s| s > 0,
        );
        if st.st_size == 0 && had_bytes {
            return Some("empty in the jail, not on the host");
        }
        let h = e.sha256.as_deref()?;
        let f = self.regular_file(e.path.as_bytes())?;
        let jail = crate::core::manifest::sha256_hex(f).ok()?;
        (!jail.eq_ignore_ascii_case(h)).then_some("other bytes than the recorded sha256")
    }

    fn exists(&self, path: &[u8], follow: bool) -> bool {
        use nix::fcntl::OFlag;
        let flags = if follow {
            OFlag::O_PATH
        } else {
            OFlag::O_PATH | OFlag::O_NOFOLLOW
        };
        self.openat(path, flags).is_some()
    }

    /// A regular file of the jail, opened for reading.
    fn regular_file(&self, path: &[u8]) -> Option<std::fs::File> {
        let f = std::fs::File::from(self.openat(path, nix::fcntl::OFlag::O_RDONLY)?);
        f.metadata().ok()?.is_file().then_some(f)
    }

    fn names(&self, dir: &[u8]) -> Option<BTreeSet<Vec<u8>>> {
        use nix::fcntl::OFlag;
        let fd = self.openat(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let d = nix::dir::Dir::from_fd(fd).ok()?;
        Some(
            d.into_iter()
                .flatten()
                .map(|e| e.file_name().to_bytes().to_vec())
                .filter(|n| n != b"." && n != b"..")
                .collect(),
        )
    }
}

/// Whether `uid` (with `gid` and `groups`) may read `path` on the host,
/// judged from the mode bits of the path and the search bits of its
/// ancestors. `--fix` copies nothing the jail's user could not read
/// anyway: no /etc/shadow, no private keys, nothing under /root.
fn readable_by(path: &Path, uid: u32, gid: u32, groups: &[u32]) -> bool {
    use std::os::unix::fs::MetadataExt;
    if uid == 0 {
        return true;
    }
    let mut gids = groups.to_vec();
    gids.push(gid);
    let allowed = |md: &std::fs::Metadata, bit: u32| {
        crate::core::perm::bits_for(md.mode(), (md.uid(), md.gid()), uid, &gids) & bit != 0
    };
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    for anc in real.ancestors().skip(1) {
        match std::fs::metadata(anc) {
            Ok(md) if allowed(&md, crate::core::perm::SEARCH) => {}
            _ => return false,
        }
    }
    match std::fs::metadata(&real) {
        Ok(md) if md.is_dir() => {
            allowed(&md, crate::core::perm::READ) || allowed(&md, crate::core::perm::SEARCH)
        }
        Ok(md) => allowed(&md, crate::core::perm::READ),
        Err(_) => false,
    }
}

/// Errors that say a path is not there (as opposed to EINVAL from readlink
/// on a non-link, EEXIST, EACCES...).
const NOT_THERE: [i32; 5] = [
    libc::ENOENT,
    libc::ENOTDIR,
    libc::ELOOP,
    libc::ENXIO,
    libc::ENODEV,
];

/// Directories listed (opened for reading) in the jail, compared with the
/// host's: the names only the host has.
fn listed_dirs(log: &RawLog, view: &JailView) -> BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
    let host_names = |dir: &Path| -> Option<BTreeSet<Vec<u8>>> {
        let rd = std::fs::read_dir(dir).ok()?;
        Some(
            rd.flatten()
                .map(|e| e.file_name().as_bytes().to_vec())
                .collect(),
        )
    };
    let mut out = BTreeMap::new();
    for (path, _, ops) in log.iter() {
        if !ops.iter().any(|&(op, errno)| op == Op::Read && errno == 0) {
            continue;
        }
        let first = path.split(|&b| b == b'/').nth(1).unwrap_or_default();
        if matches!(first, b"proc" | b"sys" | b"dev") {
            continue;
        }
        let host = Path::new(std::ffi::OsStr::from_bytes(path));
        if !host.is_dir() {
            continue;
        }
        let (Some(h), Some(j)) = (host_names(host), view.names(path)) else {
            continue;
        };
        let absent: Vec<Vec<u8>> = h.difference(&j).cloned().collect();
        if !absent.is_empty() {
            out.insert(path.to_vec(), absent);
        }
    }
    out
}

fn missing_interpreters(f: &Findings, view: &JailView) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    let mut out = BTreeSet::new();
    for m in f.missing.iter().filter(|m| m.op == Op::Exec) {
        let Some(exe) = view.regular_file(&m.path) else {
            continue;
        };
        let Some(
            crate::core::resolve::Loader::Elf(interp)
            | crate::core::resolve::Loader::Script(interp),
        ) = crate::core::resolve::loader_of(exe)
        else {
            continue;
        };
        if !view.exists(&interp, true) {
            out.insert((interp, m.path.clone()));
        }
    }
    out
}

/// Failed accesses of paths the jail lacks and the host has. EACCES counts
/// too: a user who may not create in a directory gets EACCES, not ENOENT,
/// for an `O_CREAT` open of what is missing there (a shell's `>/dev/null`
/// as nobody). Other errors count only when the jail lacks the path:
/// `/dev/tty` without a controlling terminal fails with ENXIO.
///
/// `mounted`: the pseudo file systems the run had (`proc`, `sys`). A failed
/// access beneath one of them is the kernel's answer to the program (a
/// process gone, `hidepid` turning EACCES into ENOENT), not a missing
/// mount: the jail's own empty `/proc` directory says nothing of it.
fn analyse(log: &RawLog, view: &JailView, mounted: &[&str]) -> Findings {
    let mut f = Findings::default();
    for (path, follow, ops) in log.iter() {
        let read = ops
            .iter()
            .any(|&(op, errno)| errno == 0 && matches!(op, Op::Read | Op::Exec | Op::Interp));
        if read {
            f.read.insert((path.to_vec(), follow));
        }
        for &(op, errno) in ops {
            // ENOENT from exec of a file the jail has: its interpreter
            // is missing (see `missing_interpreters`).
            let absent = matches!(errno, libc::ENOENT | libc::ENOTDIR)
                || ((NOT_THERE.contains(&errno) || errno == libc::EACCES)
                    && !view.exists(path, follow));
            if errno == 0 || !absent || !op.meaning().needs_existing {
                continue;
            }
            if !on_host(path, follow) {
                continue;
            }
            let first = path.split(|&b| b == b'/').nth(1).unwrap_or_default();
            if mounted.iter().any(|m| m.as_bytes() == first) {
                continue;
            }
            match first {
                b"proc" => {
                    f.mounts.insert("proc");
                }
                b"sys" => {
                    f.mounts.insert("sys");
                }
                b"dev" => {
                    f.devices.insert(path.to_vec());
                }
                _ => {
                    f.missing.insert(Missing {
                        path: path.to_vec(),
                        follow,
                        op,
                        errno: crate::core::manifest::Outcome::from_errno(errno).to_string(),
                    });
                }
            }
        }
    }
    f
}

/// The shadow files the program read on the host whose hashes the jail
/// lacks, whether or not the run failed: a login test may not be part of
/// the command verify runs, and every login against them fails.
fn stripped_hashes(m: &Manifest, jail: &Path) -> anyhow::Result<BTreeMap<Vec<u8>, usize>> {
    use crate::core::jail::accounts::Db;
    let view = JailView::open(jail)?;
    let mut out = BTreeMap::new();
    for e in &m.entries {
        if !matches!(Db::of(e.path.as_bytes()), Some(Db::Shadow | Db::Gshadow))
            || !e.has_ok(Op::Read)
        {
            continue;
        }
        let Some(host) = crate::core::resolve::exe::read_regular(e.path.as_path()) else {
            continue;
        };
        let mut jailed = Vec::new();
        if let Some(mut f) = view.regular_file(e.path.as_bytes()) {
            let _ = std::io::Read::read_to_end(&mut f, &mut jailed);
        }
        let n = crate::core::jail::accounts::lost_hashes(&host, &jailed);
        if n > 0 {
            out.insert(e.path.as_bytes().to_vec(), n);
        }
    }
    Ok(out)
}

fn print_findings(
    w: &mut dyn Write,
    f: &Findings,
    jail: &Path,
    failed: bool,
    manifest: Option<&Manifest>,
) -> std::io::Result<()> {
    // A path a rule added to the manifest, not one the recording reached:
    // said, since the jail had it and lost it, or was built without it.
    let rule_of = |p: &[u8]| -> String {
        manifest
            .and_then(|m| m.entries.iter().find(|e| e.path.as_bytes() == p))
            .and_then(|e| e.inferred.as_deref())
            .map_or_else(String::new, |r| {
                format!("; inferred by rule {r}, not reached by the recording")
            })
    };
    let mut out = String::new();
    for m in &f.missing {
        out += &format!(
            "missing: {} ({} {}{})\n",
            encode(&m.path),
            m.op.name(),
            m.errno,
            rule_of(&m.path)
        );
    }
    for p in &f.contentless {
        out += &format!(
            "missing: {} (its bytes: the recording only looked it up, so the jail has its size \
             and none of its content)\n",
            encode(p)
        );
    }
    for (p, n) in &f.stripped {
        let s = if *n == 1 { "" } else { "s" };
        out += &format!(
            "hashes: {} ({n} account{s} with a password hash on the host have none in the jail, \
             and the program reads it to check passwords: every password login fails; \
             materialize --keep-password-hashes --accounts NAME,... keeps those it must log in)\n",
            encode(p)
        );
    }
    for (interp, exe) in &f.interpreters {
        out += &format!(
            "missing: {} (the interpreter of {}: the kernel loads it, so no call shows it)\n",
            encode(interp),
            encode(exe)
        );
    }
    for d in &f.devices {
        let hint = if crate::core::jail::devices::is_safe_path(d) {
            "in the safe set: --fix, or materialize, creates it"
        } else {
            "outside the safe set: materialize --allow-device creates it, if the program must have it"
        };
        out += &format!("device: {} ({hint})\n", encode(d));
    }
    for m in &f.mounts {
        out += &format!(
            "mount: {m} is needed in {} (run --mount {m})\n",
            jail.display()
        );
    }
    // Listings are only worth showing when something went wrong: most
    // listed directories are legitimately partial in a minimal jail.
    for (dir, names) in f.incomplete_dirs.iter().filter(|_| failed) {
        let shown: Vec<String> = names.iter().take(5).map(|n| encode(n)).collect();
        out += &format!(
            "listed: {} lacks {} entries the host has ({}{})\n",
            encode(dir),
            names.len(),
            shown.join(", "),
            if names.len() > 5 { ", ..." } else { "" }
        );
    }
    if f.is_empty() && !failed {
        out += "complete: nothing the command looked for is missing from the jail\n";
    }
    w.write_all(out.as_bytes())
}

/// Host entries for everything found: the paths themselves (as if the
/// accesses had succeeded), the symlinks and directories leading to them,
/// and the interpreters of executables that were missing.
fn entries_for(f: &Findings) -> Vec<Entry> {
    let mut log = RawLog::default();
    for m in &f.missing {
        log.add(&m.path, m.follow, m.op, 0);
    }
    for d in &f.devices {
        log.add(d, true, Op::Read, 0);
    }
    for m in &f.mounts {
        // A mount point entry of the right class makes run and materialize
        // provide the mount.
        log.add(format!("/{m}").as_bytes(), true, Op::Stat, 0);
    }
    crate::core::resolve::build(log, &resolve_options()).0
}

fn resolve_options() -> crate::core::resolve::Options {
    crate::core::resolve::Options {
        hash: false,
        setuid_effective: nix::unistd::geteuid().is_root(),
    }
}

/// Records the command on the host as `record` would, but as the jail's
/// user, from `/`, with the environment the jail gets: the reference for
/// what the command uses when it works. It runs outside the jail, so it
/// only happens with `--host-reference`.
fn record_on_host(args: &VerifyOptions, plan: &Plan) -> anyhow::Result<Vec<Entry>> {
    let program = crate::core::launch::find_program(Path::new(&args.command[0]))?;
    let program = std::ffi::CString::new(program.as_os_str().as_bytes())
        .map_err(|_| internal("the program path contains a NUL byte"))?;
    let id = &plan.identity;
    let launch = Launch::HostAs {
        program,
        argv: plan.argv().to_vec(),
        env: plan.env().to_vec(),
        uid: id.uid.as_raw(),
        gid: id.gid.as_raw(),
        groups: id.groups.iter().map(|g| g.as_raw()).collect(),
    };
    let opts = TraceOptions {
        placement: Placement::Same,
        timeout: args.timeout,
        grace: Duration::from_secs(5),
        progress: std::io::stderr().is_terminal(),
        root: None,
    };
    let what = "the reference run on the host";
    let traced = match crate::core::record::trace(args.engine, launch, &opts, &resolve_options()) {
        Ok(t) => t,
        Err(RecordError::Trace(e)) => return Err(internal(e.to_string())),
        Err(RecordError::NotStarted(e)) => {
            return Err(internal(format!("{what} failed: {}", e.message(plan))))
        }
    };
    complete(traced.lost, &traced.warnings, what)?;
    Ok(traced.entries)
}

/// Drops what `--fix` must not copy into the jail: files the jail's user
/// cannot read on the host (shadow files, private keys, /root), and device
/// nodes outside the safe set (left for a human: `materialize --allow-device`).
fn safe_additions(w: &mut dyn Write, entries: Vec<Entry>, plan: &Plan) -> Vec<Entry> {
    let id = &plan.identity;
    let groups: Vec<u32> = id.groups.iter().map(|g| g.as_raw()).collect();
    entries
        .into_iter()
        .filter(|e| {
            let ok = match e.kind {
                Kind::File => {
                    readable_by(e.path.as_path(), id.uid.as_raw(), id.gid.as_raw(), &groups)
                }
                Kind::Chardev | Kind::Blockdev => matches!(
                    crate::core::jail::devices::verdict(e, &[]),
                    Ok(crate::core::jail::devices::Verdict::Create { .. })
                ),
                _ => true,
            };
            if !ok {
                let _ = writeln!(
                    w,
                    "not added: {} ({})",
                    e.path,
                    if e.kind == Kind::File {
                        "the jail's user cannot read it on the host"
                    } else {
                        "not a safe device: materialize --allow-device it if you must"
                    }
                );
            }
            ok
        })
        .collect()
}

/// Adds `entries` to the manifest with `merge`'s rules (the manifest wins
/// a conflict); returns how many paths are new or went from missing to
/// present. With `failed`, an entry the manifest holds as an output the
/// recorded run created becomes an input: the command fails without it.
fn merge_entries(
    w: &mut dyn Write,
    manifest: &mut Manifest,
    entries: Vec<Entry>,
    failed: bool,
) -> usize {
    let known: BTreeMap<_, Kind> = manifest
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.kind))
        .collect();
    let added = entries
        .iter()
        .filter(|e| {
            e.kind != Kind::Missing && known.get(&e.path).is_none_or(|k| *k == Kind::Missing)
        })
        .count();
    let wanted: BTreeSet<_> = entries
        .iter()
        .filter(|e| e.kind != Kind::Missing)
        .map(|e| e.path.clone())
        .collect();
    for e in &mut manifest.entries {
        if failed && e.created && wanted.contains(&e.path) {
            let _ = writeln!(
                w,
                "restoring: {} (the recorded run made it, but the command fails without it)",
                e.path
            );
            e.created = false;
        }
    }
    let found = Manifest {
        schema: manifest.schema,
        generator: manifest.generator.clone(),
        command: manifest.command.clone(),
        warnings: Vec::new(),
        entries,
    };
    let inputs = [
        ("manifest".to_string(), manifest.clone()),
        ("found".to_string(), found),
    ];
    let merged = crate::core::merge::merge(&inputs, Some(crate::core::merge::Prefer::Older));
    *manifest = merged.manifest;
    added
}

/// What the recorded run made itself (a cache it rebuilds when absent) is
/// no dependency of a run that went well.
fn drop_own_outputs(f: &mut Findings, m: &Manifest) {
    let created: BTreeSet<&[u8]> = m
        .entries
        .iter()
        .filter(|e| e.created)
        .map(|e| e.path.as_bytes())
        .collect();
    f.missing.retain(|x| !created.contains(x.path.as_slice()));
}

fn print_status(w: &mut dyn Write, f: &Findings, on_host: Option<i32>) {
    let reference = match on_host {
        Some(s) => format!("on the host: {s}"),
        None => "expected 0; with --manifest, the status it had on the host".into(),
    };
    let _ = writeln!(
        w,
        "the command exited with {} in the jail ({reference})",
        f.exit_status.map_or("no status".into(), |s| s.to_string())
    );
}

/// Runs the command on the host for reference and names what it used that
/// the jail lacks; returns what it used.
fn host_reference(
    w: &mut dyn Write,
    args: &VerifyOptions,
    plan: &Plan,
    jail: &Path,
) -> anyhow::Result<Vec<Entry>> {
    let _ = writeln!(
        w,
        "no failed lookup explains it: running the command on the host for reference"
    );
    let view = JailView::open(jail)?;
    let entries = record_on_host(args, plan)?;
    // A directory that only holds failed lookups (a PATH search through
    // /usr/local/sbin) is left out of every jail on purpose: the lookups
    // fail the same way without it. It is neither missing nor added.
    let probes_only = {
        let all: Vec<&Entry> = entries.iter().collect();
        crate::core::jail::plan::probe_only_dirs(&all)
    };
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| !probes_only.contains(&e.path))
        .collect();
    for e in entries
        .iter()
        .filter(|e| e.kind != Kind::Missing && e.class == crate::core::manifest::Class::Regular)
    {
        if !view.exists(e.path.as_bytes(), false) {
            let _ = writeln!(w, "missing: {} (used on the host)", e.path);
        }
    }
    Ok(entries)
}

/// Before the first run of `--fix`: a file the program found that the jail
/// has lost (deleted, or emptied by an earlier run that opened it with
/// O_CREAT) is restored from the host, since the run would otherwise make
/// an empty one, succeed, and the content would be gone for good.
fn restore_lost_content(
    w: &mut dyn Write,
    args: &VerifyOptions,
    jail: &Path,
) -> anyhow::Result<()> {
    let Some(mpath) = &args.jail.manifest else {
        return Ok(());
    };
    let manifest = Manifest::load(mpath).map_err(|e| internal(e.to_string()))?;
    // Only what materialize puts in the jail: a file it leaves out on
    // purpose (made by the run, never read) is not lost.
    let opts = crate::core::jail::plan::Options::default();
    let Ok(plan) = crate::core::jail::plan::build(&manifest, "manifest", &opts, "JAIL") else {
        // materialize will say what is wrong with the manifest.
        return Ok(());
    };
    let copied: std::collections::HashSet<&[u8]> = plan
        .items
        .iter()
        .filter(|i| matches!(i.want, crate::core::jail::plan::Want::File { .. }))
        .map(|i| i.path.as_bytes())
        .collect();
    let view = JailView::open(jail)?;
    let mut lost: BTreeSet<&[u8]> = BTreeSet::new();
    for e in manifest
        .entries
        .iter()
        .filter(|e| copied.contains(e.path.as_bytes()))
    {
        if let Some(why) = view.lost_content(e) {
            let rule = e
                .inferred
                .as_deref()
                .map_or_else(String::new, |r| format!("; inferred by rule {r}"));
            let _ = writeln!(w, "restoring before the run: {} ({why}{rule})", e.path);
            lost.insert(e.path.as_bytes());
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    // Only those files (and their directories' entries, for their modes):
    // whatever else the jail lacks is for the run to show.
    let wanted: BTreeSet<Vec<u8>> = manifest
        .entries
        .iter()
        .filter(|e| lost.contains(e.path.as_bytes()))
        .flat_map(|e| e.path.ancestors().into_iter().chain([e.path.clone()]))
        .map(|p| p.as_bytes().to_vec())
        .collect();
    let part = Manifest {
        schema: manifest.schema,
        generator: manifest.generator.clone(),
        command: manifest.command.clone(),
        warnings: Vec::new(),
        entries: manifest
            .entries
            .iter()
            .filter(|e| wanted.contains(e.path.as_bytes()))
            .cloned()
            .collect(),
    };
    let name = args
        .jail
        .manifest
        .as_deref()
        .map_or_else(String::new, |p| p.display().to_string());
    materialize(
        w,
        &part,
        &name,
        jail,
        "the files named above are not restored",
    )?;
    Ok(())
}

/// Materializes `manifest` into `jail`, its summary into the report, and
/// says how many objects it created or changed. An entry it could not
/// create fails verify: `then` says what that leaves.
fn materialize(
    w: &mut dyn Write,
    manifest: &Manifest,
    name: &str,
    jail: &Path,
    then: &str,
) -> anyhow::Result<u64> {
    let built = crate::core::jail::build(
        manifest,
        name,
        &crate::core::jail::Request {
            jail: jail.to_path_buf(),
            ..Default::default()
        },
    )?;
    built.render(w)?;
    if let Some((p, why)) = built.failures().first() {
        return Err(internal(format!(
            "materialize into {} failed ({} entries could not be created; {p}: {why}); {then}",
            jail.display(),
            built.failures().len()
        )));
    }
    Ok(built.changes())
}

/// The files among `read` that the manifest gives no bytes, by their real
/// host paths (the manifest's); no path is resolved when there are none.
fn contentless_reads(read: &BTreeSet<(Vec<u8>, bool)>, m: &Manifest) -> BTreeSet<Vec<u8>> {
    let without: std::collections::HashSet<&[u8]> = m
        .entries
        .iter()
        .filter(|e| e.kind == Kind::File && !crate::core::jail::plan::carries_content(e))
        .map(|e| e.path.as_bytes())
        .collect();
    if without.is_empty() {
        return BTreeSet::new();
    }
    read.iter()
        .filter_map(|(p, follow)| {
            if !follow {
                return Some(p.clone());
            }
            let real = std::fs::canonicalize(Path::new(std::ffi::OsStr::from_bytes(p))).ok()?;
            Some(std::os::unix::ffi::OsStringExt::into_vec(
                real.into_os_string(),
            ))
        })
        .filter(|p| without.contains(p.as_slice()))
        .collect()
}

/// What verify found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The command ran in the jail as on the host and looked for nothing
    /// the jail lacks.
    Complete,
    /// It lacks something, or failed; the report says what, and (with
    /// `--fix`) why the jail could not be completed.
    Incomplete,
    /// `--fix` used every round and the jail still lacks something.
    RoundsExhausted(u32),
}

/// Runs `verify`, writing its report to `w`.
pub fn run(args: &VerifyOptions, w: &mut dyn Write) -> anyhow::Result<Verdict> {
    if args.fix && args.jail.manifest.is_none() {
        return Err(internal(
            "--fix needs --manifest M: the manifest to complete",
        ));
    }
    let jail = args.jail.jail.clone();
    if args.fix {
        restore_lost_content(w, args, &jail)?;
    }
    for round in 1..=args.max_rounds.max(1) {
        if args.fix {
            let _ = writeln!(w, "verify round {round}:");
        }
        let (mut f, plan) = trace_in_jail(args)?;
        let mut manifest = match &args.jail.manifest {
            Some(p) => Some(Manifest::load(p).map_err(|e| internal(e.to_string()))?),
            None => None,
        };
        if let Some(m) = &manifest {
            f.contentless = contentless_reads(&f.read, m);
            f.stripped = stripped_hashes(m, &jail)?;
        }
        // The status the command had on the host, when the manifest says;
        // success otherwise.
        let on_host = manifest.as_ref().and_then(|m| m.command.exit_status);
        let expected = on_host.unwrap_or(0);
        let failed = f.exit_status != Some(expected);
        if let (Some(m), false) = (&manifest, failed) {
            drop_own_outputs(&mut f, m);
        }
        print_findings(w, &f, &jail, failed, manifest.as_ref())?;
        if failed {
            print_status(w, &f, on_host);
        }
        if f.is_empty() && !failed {
            return Ok(Verdict::Complete);
        }
        // Failed, and no failed lookup says why: the program searched a
        // listing (Python's import system does) or gave up silently. The
        // reference is what the command uses on the host, if allowed to run
        // there.
        let host = if f.is_empty() {
            if !args.host_reference && !args.fix {
                let _ = writeln!(
                    w,
                    "no failed lookup explains it: --host-reference runs the command once on the \
                     host, as the jail's user, to list what it uses there and the jail lacks"
                );
                return Ok(Verdict::Incomplete);
            }
            Some(host_reference(w, args, &plan, &jail)?)
        } else {
            None
        };
        let (Some(manifest), true) = (manifest.as_mut(), args.fix) else {
            return Ok(Verdict::Incomplete);
        };
        let mpath = args.jail.manifest.clone().expect("checked above");
        let found = match host {
            None => entries_for(&f),
            Some(entries) => entries,
        };
        let found = safe_additions(w, found, &plan);
        let view = JailView::open(&jail)?;
        let restorable = found.iter().filter(|e| view.lacks(e)).count();
        let mut added = merge_entries(w, manifest, found, failed);
        // The jailed run read what the recording only looked up: the
        // manifest says so now, and materialize copies its bytes.
        for e in manifest
            .entries
            .iter_mut()
            .filter(|e| f.contentless.contains(e.path.as_bytes()))
        {
            e.accesses.push(crate::core::manifest::Access {
                op: Op::Read,
                result: crate::core::manifest::Outcome::ok(),
            });
            e.accesses.sort();
            e.accesses.dedup();
            added += 1;
        }
        if added == 0 && restorable == 0 {
            let _ = writeln!(
                w,
                "nothing left to add: neither the manifest nor the host has what the command \
                 lacks in the jail, so the jail cannot be completed from the host"
            );
            return Ok(Verdict::Incomplete);
        }
        manifest.save(&mpath).map_err(|e| internal(e.to_string()))?;
        if added > 0 {
            let _ = writeln!(w, "added {added} entries to {}", mpath.display());
        }
        // Materialized every round, not only after additions: the jail may
        // lack what the manifest holds (removed by hand, built from an
        // older manifest, or half-written by the failed run itself).
        let _ = writeln!(
            w,
            "materializing {} into {}",
            mpath.display(),
            jail.display()
        );
        let changes = materialize(
            w,
            manifest,
            &mpath.display().to_string(),
            &jail,
            "the jail is still incomplete",
        )?;
        if changes == 0 {
            let _ = writeln!(
                w,
                "materialize changed nothing: the jail cannot be completed from the host"
            );
            return Ok(Verdict::Incomplete);
        }
    }
    Ok(Verdict::RoundsExhausted(args.max_rounds))
}
