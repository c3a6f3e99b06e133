//! The rules that look at the jail from the host: the mounts at or below
//! it, the processes rooted in it, and the hard links that lead out of it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::stat::SFlag;

use super::{finding, Who};
use crate::core::audit::walk::Node;
use crate::core::audit::{Finding, Severity};

/// A mount from /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct Mount {
    pub point: PathBuf,
    pub fstype: String,
    /// The file system (major:minor) and the directory of it that is
    /// mounted: a bind mount shows the directory it came from.
    pub dev: String,
    pub root: PathBuf,
}

/// A mount at or below the jail, as the audit judges it.
#[derive(Debug, Clone)]
pub struct JailMount {
    /// Jail path of the mount point.
    pub path: Vec<u8>,
    pub fstype: String,
    /// Its source lies outside the jail: the same file system is mounted
    /// outside, and what is mounted is not the jail's own directory.
    pub outside: Option<String>,
}

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Hand-written rather than procfs's `MountInfo`: that keeps the kernel's
/// octal escapes (`\040` for a space) in mount points, and a jail path with
/// a space would then match no mount.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            Some(Mount {
                point: PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(f.get(4)?))),
                fstype: f.get(dash + 1)?.to_string(),
                dev: f.get(2)?.to_string(),
                root: PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(f.get(3)?))),
            })
        })
        .collect()
}

/// Pseudo filesystems the walk does not enter and that are findings when
/// mounted in a jail.
pub fn pseudo_fs_severity(fstype: &str) -> Option<Severity> {
    match fstype {
        "proc" | "sysfs" | "devtmpfs" | "debugfs" | "tracefs" | "securityfs" | "efivarfs"
        | "bpf" | "configfs" | "pstore" => Some(Severity::High),
        "cgroup" | "cgroup2" | "fusectl" | "mqueue" | "hugetlbfs" | "binfmt_misc" => {
            Some(Severity::Medium)
        }
        _ => None,
    }
}

/// Mounts at or below the jail, as jail paths with their fs type, and
/// whether each brings in what lies outside the jail. The jail's own
/// directory, as its file system sees it, is the mount containing it plus
/// the rest of the path; a mount below the jail shows something else of a
/// file system that is also mounted outside when it is a bind mount of
/// the host's `/`, `/etc`, and so on. A fresh file system (a tmpfs mounted
/// only there) lies nowhere else.
pub fn jail_mounts(mounts: &[Mount], jail: &Path) -> Vec<JailMount> {
    let base = mounts
        .iter()
        .filter(|m| jail.starts_with(&m.point))
        .max_by_key(|m| m.point.as_os_str().len());
    let jail_source = base.map(|b| {
        let rest = jail.strip_prefix(&b.point).unwrap_or(Path::new(""));
        (b.dev.as_str(), b.root.join(rest))
    });
    mounts
        .iter()
        .filter_map(|m| {
            let rel = m.point.strip_prefix(jail).ok()?;
            let mut p = b"/".to_vec();
            p.extend_from_slice(rel.as_os_str().as_bytes());
            let own = jail_source
                .as_ref()
                .is_some_and(|(dev, root)| m.dev == *dev && m.root.starts_with(root));
            let elsewhere = mounts
                .iter()
                .any(|o| o.dev == m.dev && !o.point.starts_with(jail));
            let outside = (!own && elsewhere && p != b"/")
                .then(|| format!("{} of file system {}", m.root.display(), m.dev));
            Some(JailMount {
                path: p,
                fstype: m.fstype.clone(),
                outside,
            })
        })
        .collect()
}

pub fn mount_findings(mounts: &[JailMount], out: &mut Vec<Finding>) {
    for m in mounts {
        let (path, fstype) = (&m.path, &m.fstype);
        let (sev, why) = match fstype.as_str() {
            "proc" => (
                Severity::High,
                "proc mounted in the jail: /proc/PID/root of a same-user process outside leads out of the jail, and host processes and kernel tunables show".to_string(),
            ),
            "sysfs" => (
                Severity::High,
                "sysfs mounted in the jail: hardware and kernel state of the host".to_string(),
            ),
            t => match pseudo_fs_severity(t) {
                Some(s) => (s, format!("{t} mounted in the jail: exposes host kernel state")),
                None if path == b"/" => continue,
                None if m.outside.is_some() => (
                    Severity::High,
                    format!(
                        "{t} bind-mounted from outside the jail ({}): the jailed program reaches \
                         the host's files there",
                        m.outside.as_deref().unwrap_or_default()
                    ),
                ),
                None => (
                    Severity::Low,
                    format!("{t} mounted in the jail: check that it holds only what the jail needs"),
                ),
            },
        };
        out.push(finding(sev, "mount", path, why));
    }
}

/// Processes running as root (any of real, effective, saved, fs uid) whose
/// root directory is the jail or inside it.
pub fn root_processes(jail: &Path, out: &mut Vec<Finding>) {
    let Ok(procs) = procfs::process::all_processes() else {
        return;
    };
    // A process that exits meanwhile is simply skipped.
    for p in procs.flatten() {
        let Ok(root) = p.root() else {
            continue;
        };
        if !root.starts_with(jail) {
            continue;
        }
        let Ok(st) = p.status() else {
            continue;
        };
        if [st.ruid, st.euid, st.suid, st.fuid].contains(&0) {
            let (pid, comm) = (p.pid, st.name);
            let mut path = b"/".to_vec();
            if let Ok(rel) = root.strip_prefix(jail) {
                path.extend_from_slice(rel.as_os_str().as_bytes());
            }
            out.push(finding(
                Severity::High,
                "root-process",
                &path,
                format!("process {pid} ({comm}) runs as root inside the jail: root can break out of a chroot"),
            ));
        }
    }
}

/// Limits of the search for the outside end of a hard link.
pub const HOST_SCAN_MAX_ENTRIES: usize = 300_000;
pub const HOST_SCAN_MAX_TIME: Duration = Duration::from_secs(5);

/// Files in the jail whose link count says that some of their links are
/// outside the jail. The count alone proves it (links inside are all
/// walked); a bounded breadth-first scan of the host filesystem, skipping
/// the jail, then names an outside link where it can.
pub fn hard_links(nodes: &[Node], jail: &Path, who: &Who, out: &mut Vec<Finding>) {
    let mut inside: HashMap<(u64, u64), (u64, Vec<&Node>)> = HashMap::new();
    for n in nodes {
        if !n.is(SFlag::S_IFDIR) && n.nlink > 1 {
            let e = inside
                .entry((n.dev, n.ino))
                .or_insert((n.nlink, Vec::new()));
            e.1.push(n);
        }
    }
    inside.retain(|_, (nlink, links)| (links.len() as u64) < *nlink);
    if inside.is_empty() {
        return;
    }
    let wanted: HashSet<(u64, u64)> = inside.keys().copied().collect();
    let found = find_on_host(&wanted, jail);
    let mut keys: Vec<_> = inside.keys().copied().collect();
    keys.sort();
    for key in keys {
        let (nlink, links) = &inside[&key];
        let outside = *nlink - links.len() as u64;
        let n = links[0];
        let (sev, what) = if who.can_write(n) {
            (Severity::High, "writing it changes the host's file")
        } else if n.perm() & 0o6000 != 0 {
            (
                Severity::High,
                "a setuid/setgid program pinned here stays vulnerable after the host updates it",
            )
        } else if n.private_key {
            (Severity::High, "it is a private key")
        } else {
            (
                Severity::Medium,
                "it follows every change to the host's file and pins its inode",
            )
        };
        let where_ = match found.get(&key) {
            Some(p) => format!("also at {} on the host", p.display()),
            None => "its other name was not found within the scan's limits".to_string(),
        };
        for l in links {
            out.push(finding(
                sev,
                "hardlink",
                &l.path,
                format!("hard-linked with {outside} file(s) outside the jail ({where_}): {what}"),
            ));
        }
    }
}

fn find_on_host(wanted: &HashSet<(u64, u64)>, jail: &Path) -> HashMap<(u64, u64), PathBuf> {
    let devs: HashSet<u64> = wanted.iter().map(|k| k.0).collect();
    let inos: HashSet<u64> = wanted.iter().map(|k| k.1).collect();
    let mut found = HashMap::new();
    let start = Instant::now();
    let mut seen = 0usize;
    let mut queue = VecDeque::from([PathBuf::from("/")]);
    while let Some(dir) = queue.pop_front() {
        if found.len() == wanted.len()
            || seen > HOST_SCAN_MAX_ENTRIES
            || start.elapsed() > HOST_SCAN_MAX_TIME
        {
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            seen += 1;
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if path.starts_with(jail) || path.starts_with("/proc") || path.starts_with("/sys") {
                    continue;
                }
                // Only directories on a filesystem that holds a wanted inode.
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    if devs.contains(&m.dev()) {
                        queue.push_back(path);
                    }
                }
            } else if inos.contains(&e.ino()) {
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    let key = (m.dev(), m.ino());
                    if wanted.contains(&key) && !path.starts_with(jail) {
                        found.entry(key).or_insert(path);
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_mount_from_outside_is_told_apart() {
        let m = parse_mountinfo(
            "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
             2 1 8:1 /srv/jail/data /srv/jail/data rw - ext4 /dev/sda1 rw\n\
             3 1 8:1 /etc /srv/jail/etc rw - ext4 /dev/sda1 rw\n\
             4 1 8:1 / /srv/jail/host rw - ext4 /dev/sda1 rw\n\
             5 1 0:50 / /srv/jail/tmp rw - tmpfs tmpfs rw\n",
        );
        let j = jail_mounts(&m, Path::new("/srv/jail"));
        let outside: Vec<(String, bool)> = j
            .iter()
            .map(|m| {
                (
                    String::from_utf8_lossy(&m.path).into_owned(),
                    m.outside.is_some(),
                )
            })
            .collect();
        assert_eq!(
            outside,
            vec![
                ("/data".to_string(), false),
                ("/etc".to_string(), true),
                ("/host".to_string(), true),
                ("/tmp".to_string(), false),
            ]
        );
        let mut out = Vec::new();
        mount_findings(&j, &mut out);
        let high: Vec<_> = out
            .iter()
            .filter(|f| f.severity == Severity::High)
            .map(|f| f.path.clone())
            .collect();
        assert_eq!(high, vec!["/etc".to_string(), "/host".to_string()]);
    }

    #[test]
    fn mountinfo_parses_escapes() {
        let m = parse_mountinfo("36 35 98:0 / /j\\040ail/proc rw,nosuid shared:1 - proc proc rw\n");
        assert_eq!(m[0].point, Path::new("/j ail/proc"));
        assert_eq!(m[0].fstype, "proc");
        let j = jail_mounts(&m, Path::new("/j ail"));
        assert_eq!(j.len(), 1);
        assert_eq!(
            (j[0].path.as_slice(), j[0].fstype.as_str()),
            (b"/proc".as_slice(), "proc")
        );
        assert!(jail_mounts(&m, Path::new("/j")).is_empty());
    }
}
