//! What the jailed run lacked: the analysis of its log against the jail,
//! and the report.

use super::view::JailView;
use super::{Findings, Missing};
use crate::core::manifest::pathenc::encode;
use crate::core::manifest::{Kind, Manifest, Op};
use crate::core::trace::RawLog;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether the host has what `path` names (after the same symlink rule).
pub(super) fn on_host(path: &[u8], follow: bool) -> bool {
    let p = Path::new(std::ffi::OsStr::from_bytes(path));
    if follow {
        std::fs::metadata(p).is_ok()
    } else {
        std::fs::symlink_metadata(p).is_ok()
    }
}

/// Errors that say a path is not there (as opposed to EINVAL from readlink
/// on a non-link, EEXIST, EACCES...).
pub(super) const NOT_THERE: [i32; 5] = [
    libc::ENOENT,
    libc::ENOTDIR,
    libc::ELOOP,
    libc::ENXIO,
    libc::ENODEV,
];

/// Directories listed (opened for reading) in the jail, compared with the
/// host's: the names only the host has.
pub(super) fn listed_dirs(log: &RawLog, view: &JailView) -> BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
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

pub(super) fn missing_interpreters(f: &Findings, view: &JailView) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
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
pub(super) fn analyse(log: &RawLog, view: &JailView, mounted: &[&str]) -> Findings {
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
pub(super) fn stripped_hashes(
    m: &Manifest,
    jail: &Path,
) -> anyhow::Result<BTreeMap<Vec<u8>, usize>> {
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

pub(super) fn print_findings(
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

/// What the recorded run made itself (a cache it rebuilds when absent) is
/// no dependency of a run that went well.
pub(super) fn drop_own_outputs(f: &mut Findings, m: &Manifest) {
    let created: BTreeSet<&[u8]> = m
        .entries
        .iter()
        .filter(|e| e.created)
        .map(|e| e.path.as_bytes())
        .collect();
    f.missing.retain(|x| !created.contains(x.path.as_slice()));
}

pub(super) fn print_status(w: &mut dyn Write, f: &Findings, on_host: Option<i32>) {
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

/// The files among `read` that the manifest gives no bytes, by their real
/// host paths (the manifest's); no path is resolved when there are none.
pub(super) fn contentless_reads(
    read: &BTreeSet<(Vec<u8>, bool)>,
    m: &Manifest,
) -> BTreeSet<Vec<u8>> {
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
            crate::core::resolve::real_path(p)
        })
        .filter(|p| without.contains(p.as_slice()))
        .collect()
}
