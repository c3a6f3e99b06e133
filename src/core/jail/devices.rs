//! The one answer to "may this device node exist in a jail, and how", which
//! `materialize` (through the plan), the exports, `verify --fix` and `check`
//! all ask:
//!
//! - the safe set, harmless nodes every libc and language runtime expects,
//!   is created without being asked, matched by path *and* number, so that
//!   a manifest cannot pass off `/dev/sda` as `/dev/null`;
//! - any other node is refused, with the reason, unless `--allow-device`
//!   names it; an export, which has no report of what it left out, fails
//!   when the program opened such a node;
//! - a node already in a jail (`check`) is judged by its number alone:
//!   whatever its name, the number is what it gives access to.

use nix::errno::Errno;

use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Entry, Kind, Manifest, Op};

/// (path, major, minor) of the safe set.
const SAFE: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Raw memory and I/O ports: (major, minor, node, what it gives access to).
const MEMORY: [(u32, u32, &str, &str); 3] = [
    (1, 1, "/dev/mem", "physical memory"),
    (1, 2, "/dev/kmem", "kernel memory"),
    (1, 4, "/dev/port", "I/O ports"),
];

/// Why a device node may not be in a jail unless asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Danger {
    /// A block device: raw access to a disk.
    Disk,
    /// Raw memory or I/O ports.
    Memory {
        node: &'static str,
        what: &'static str,
    },
    /// The path of a safe device with other numbers than that device's
    /// (which it has on Linux): only when judged by path.
    Impostor { major: u32, minor: u32 },
    /// Any other character device.
    Other,
}

/// The names of the safe set, for messages: "null, zero, ..., tty".
pub fn safe_names() -> String {
    SAFE.iter()
        .map(|d| d.0.trim_start_matches("/dev/"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `path` names a device of the safe set (by path only: verify's
/// advice for a device the jail lacks).
pub fn is_safe_path(path: &[u8]) -> bool {
    SAFE.iter().any(|d| d.0.as_bytes() == path)
}

/// A node already in a jail, by its number alone.
pub fn node_danger(block: bool, major: u64, minor: u64) -> Option<Danger> {
    danger(None, block, major, minor)
}

/// A node a manifest asks for at `path`, by path and number.
fn entry_danger(path: &[u8], block: bool, major: u32, minor: u32) -> Option<Danger> {
    danger(Some(path), block, major.into(), minor.into())
}

fn danger(path: Option<&[u8]>, block: bool, major: u64, minor: u64) -> Option<Danger> {
    if block {
        return Some(Danger::Disk);
    }
    let is = |ma: u32, mi: u32| (u64::from(ma), u64::from(mi)) == (major, minor);
    match path {
        Some(path) => {
            if let Some(&(_, ma, mi)) = SAFE.iter().find(|d| d.0.as_bytes() == path) {
                return (!is(ma, mi)).then_some(Danger::Impostor {
                    major: ma,
                    minor: mi,
                });
            }
        }
        None if SAFE.iter().any(|&(_, ma, mi)| is(ma, mi)) => return None,
        None => {}
    }
    Some(match MEMORY.iter().find(|&&(ma, mi, ..)| is(ma, mi)) {
        Some(&(_, _, node, what)) => Danger::Memory { node, what },
        None => Danger::Other,
    })
}

impl Danger {
    /// Why the node at `path` (`major`:`minor`) is left out or refused,
    /// with the way to allow it.
    fn refusal(&self, path: &MPath, major: u32, minor: u32) -> String {
        let allow = format!("name it with --allow-device {path} to create it");
        let what = match self {
            Danger::Disk => {
                return format!(
                    "block device {major}:{minor} gives raw access to a disk; refused ({allow})"
                )
            }
            Danger::Impostor {
                major: ma,
                minor: mi,
            } => {
                return format!(
                    "character device {major}:{minor}, but {path} is {ma}:{mi} on Linux; \
                     refused ({allow})"
                )
            }
            Danger::Memory { node, what } => format!("{what} ({node})"),
            Danger::Other => format!("a device outside the safe set ({})", safe_names()),
        };
        format!("character device {major}:{minor} gives access to {what}; refused ({allow})")
    }
}

/// What a manifest's device entry gets in a jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The node, with these numbers: one of the safe set, or one that
    /// `--allow-device` names.
    Create { block: bool, major: u32, minor: u32 },
    /// Left out (or, by an export, refused), for this reason.
    Refuse(String),
}

/// The verdict on the device entry `e`, `allowed` being the paths
/// `--allow-device` names; an error when the entry is malformed.
pub fn verdict(e: &Entry, allowed: &[MPath]) -> Result<Verdict, &'static str> {
    let (Some(major), Some(minor)) = (e.major, e.minor) else {
        return Err("device without major and minor");
    };
    let block = e.kind == Kind::Blockdev;
    if !allowed.contains(&e.path) {
        if let Some(d) = entry_danger(e.path.as_bytes(), block, major, minor) {
            return Ok(Verdict::Refuse(d.refusal(&e.path, major, minor)));
        }
    }
    Ok(Verdict::Create {
        block,
        major,
        minor,
    })
}

/// A device an export refuses: the program opened it, so leaving it out
/// would change what the program does.
#[derive(Debug, thiserror::Error)]
#[error("entry {path}: {reason}")]
pub struct Opened {
    pub path: MPath,
    pub reason: String,
}

/// The devices of `m` an export (bwrap, OCI) leaves out: an error for one
/// the program opened (binding `/dev/mem` or a disk hands the program the
/// host), a warning for each one it only looked at. Malformed entries are
/// the plan's to report.
pub fn export_warnings(m: &Manifest, allowed: &[MPath]) -> Result<Vec<String>, Opened> {
    let mut warnings = Vec::new();
    for e in &m.entries {
        if !matches!(e.kind, Kind::Chardev | Kind::Blockdev) {
            continue;
        }
        let Ok(Verdict::Refuse(reason)) = verdict(e, allowed) else {
            continue;
        };
        let opened = e.accesses.iter().any(|a| {
            a.result.is_ok() && matches!(a.op, Op::Read | Op::Write | Op::Create | Op::Path)
        });
        if opened {
            return Err(Opened {
                path: e.path.clone(),
                reason,
            });
        }
        warnings.push(format!(
            "{}: left out: a device the program only looked at ({reason})",
            e.path
        ));
    }
    Ok(warnings)
}

/// The host's node that an export binds in place of creating one
/// (bwrap's `--dev-bind`) is not the recorded device.
#[derive(Debug, thiserror::Error)]
pub enum HostNode {
    #[error("{0}: the host has no such device now: {desc}", desc = .1.desc())]
    Gone(MPath, Errno),
    #[error(
        "{0}: the manifest records device {1}:{2}, the host's is not that device now (record again)"
    )]
    Changed(MPath, u32, u32),
}

/// Checks that the host's `p` is still the device the verdict creates.
pub fn check_host_node(p: &MPath, block: bool, major: u32, minor: u32) -> Result<(), HostNode> {
    let st = nix::sys::stat::stat(p.as_path()).map_err(|e| HostNode::Gone(p.clone(), e))?;
    let ty = if block { libc::S_IFBLK } else { libc::S_IFCHR };
    let now = (
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    );
    if st.st_mode & libc::S_IFMT != ty || now != (u64::from(major), u64::from(minor)) {
        return Err(HostNode::Changed(p.clone(), major, minor));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_nodes_must_match_and_found_nodes_count_by_number() {
        assert_eq!(safe_names(), "null, zero, full, random, urandom, tty");
        assert_eq!(entry_danger(b"/dev/null", false, 1, 3), None);
        // A safe name with another number, and a safe number under another
        // name, are not created unasked; in a jail the number decides.
        assert_eq!(
            entry_danger(b"/dev/null", false, 8, 0),
            Some(Danger::Impostor { major: 1, minor: 3 })
        );
        assert_eq!(entry_danger(b"/dev/foo", false, 1, 3), Some(Danger::Other));
        assert_eq!(node_danger(false, 1, 3), None);
        assert_eq!(node_danger(true, 1, 3), Some(Danger::Disk));
        assert!(matches!(
            node_danger(false, 1, 2),
            Some(Danger::Memory {
                node: "/dev/kmem",
                ..
            })
        ));
        assert_eq!(node_danger(false, 4, 64), Some(Danger::Other));
    }
}
