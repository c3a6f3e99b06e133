//! The `check` command: audit a jail for escape vectors.
//!
//! The jail is walked without following symlinks ([`walk`]); each object
//! goes through the per-file rules, then the whole-jail rules run: hard
//! links to the outside, accounts, mounts (from /proc/self/mountinfo) and
//! processes running as root inside the jail (from /proc/*/root).
//! Every object the walk could not examine is a high `unexamined` finding.
//! Exit status: 1 when any finding is high, 0 otherwise, 2 on error.

mod rules;
mod walk;

use std::collections::HashSet;
use std::fmt;
use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde::Serialize;

pub use rules::Who;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        })
    }
}

/// One problem found in the jail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Which rule: setuid, setgid, device, socket, hardlink, world-writable,
    /// modifiable, mount, sensitive-file, private-key, root-dotfile, tool,
    /// root-account, root-process, writable-ancestor, unexamined.
    pub check: &'static str,
    /// Path inside the jail, encoded as in manifests (for
    /// writable-ancestor, the host directory above the jail).
    pub path: String,
    pub detail: String,
}

/// The result of an audit.
#[derive(Debug, Serialize)]
pub struct Report {
    pub jail: String,
    pub findings: Vec<Finding>,
    /// Objects that could not be examined, as `path: reason` (each is also
    /// an `unexamined` finding).
    pub errors: Vec<String>,
}

impl Report {
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    pub fn has_high(&self) -> bool {
        self.count(Severity::High) > 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{path}: cannot audit: {source}")]
    Jail {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: cannot audit: not a directory")]
    NotDir(String),
    #[error("{0}: cannot audit the host's root directory as a jail")]
    HostRoot(String),
    #[error("--user {0}: root can modify everything; give the unprivileged user the jail runs as")]
    RootUser(String),
    #[error("{0}")]
    User(#[from] crate::core::launch::PlanError),
}

/// Resolves `--user` into the identity whose write access is checked.
pub fn who(user: Option<&str>) -> Result<Who, CheckError> {
    let Some(spec) = user else {
        return Ok(Who::AnyNonRoot);
    };
    // The group only matters for the supplementary list; a bare uid without
    // a passwd entry gets its uid as gid, which grants nothing extra.
    let id = match crate::core::launch::resolve_identity(Some(spec), None) {
        Err(crate::core::launch::PlanError::NoGroup(uid)) => {
            crate::core::launch::resolve_identity(Some(spec), Some(&uid.to_string()))?
        }
        r => r?,
    };
    if id.uid.is_root() {
        return Err(CheckError::RootUser(spec.to_string()));
    }
    let mut gids = vec![id.gid.as_raw()];
    gids.extend(id.groups.iter().map(|g| g.as_raw()));
    Ok(Who::User {
        uid: id.uid.as_raw(),
        gids,
    })
}

/// Audits the jail at `jail` for the user `who`; `kept` names the
/// accounts whose password hashes it keeps on purpose.
pub fn audit(jail: &std::path::Path, who: &Who, kept: &[String]) -> Result<Report, CheckError> {
    let shown = jail.display().to_string();
    let io_err = |e: nix::errno::Errno| CheckError::Jail {
        path: shown.clone(),
        source: e.into(),
    };
    // Opened once: the host-root check and the walk are about this
    // directory. The canonical path only serves to match mounts, processes
    // and hard links on the host.
    let root = nix::fcntl::open(
        jail,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENOTDIR if jail.exists() && !jail.is_dir() => {
            CheckError::NotDir(shown.clone())
        }
        e => io_err(e),
    })?;
    if crate::core::jail::location::is_host_root(root.as_fd()).map_err(io_err)? {
        return Err(CheckError::HostRoot(shown));
    }
    let canon = std::fs::canonicalize(jail).map_err(|source| CheckError::Jail {
        path: shown.clone(),
        source,
    })?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = rules::host::jail_mounts(&rules::host::parse_mountinfo(&mountinfo), &canon);
    let skip: HashSet<Vec<u8>> = mounts
        .iter()
        .filter(|m| rules::host::pseudo_fs_severity(&m.fstype).is_some())
        .map(|m| m.path.clone())
        .collect();
    let owner = nix::sys::stat::fstat(&root).map_err(io_err)?.st_uid;
    let w = walk::walk(root, &skip).map_err(io_err)?;

    let mut findings = Vec::new();
    for n in &w.nodes {
        rules::privileged_files(n, &mut findings);
        rules::sensitive(n, kept, &mut findings);
        rules::tools(n, &mut findings);
    }
    rules::writable(&w.nodes, who, &mut findings);
    rules::host::hard_links(&w.nodes, &canon, who, &mut findings);
    for a in crate::core::jail::location::writable_ancestors(&canon, owner) {
        findings.push(Finding {
            severity: Severity::High,
            check: "writable-ancestor",
            path: a.dir.display().to_string(),
            detail: a.why,
        });
    }
    let file = |p: &[u8]| {
        w.nodes
            .iter()
            .find(|n| n.path == p)
            .and_then(|n| n.content.as_deref())
    };
    if let Some(passwd) = file(b"/etc/passwd") {
        rules::root_accounts(passwd, file(b"/etc/shadow"), &mut findings);
    }
    // An object the walk could not examine may hide anything (a jail user
    // could nest a setuid file too deep, or make it unreadable to a
    // non-root auditor): the audit is incomplete, which is high.
    for e in &w.errors {
        findings.push(Finding {
            severity: Severity::High,
            check: "unexamined",
            path: crate::core::manifest::pathenc::encode(&e.path),
            detail: format!(
                "could not be examined ({}): the audit is incomplete, anything may hide there",
                e.reason
            ),
        });
    }
    rules::host::mount_findings(&mounts, &mut findings);
    rules::host::root_processes(&canon, &mut findings);

    findings.sort_by(|a, b| {
        (a.severity, &a.path, a.check, &a.detail).cmp(&(b.severity, &b.path, b.check, &b.detail))
    });
    findings.dedup();
    Ok(Report {
        jail: canon.display().to_string(),
        findings,
        errors: w
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    crate::core::manifest::pathenc::encode(&e.path),
                    e.reason
                )
            })
            .collect(),
    })
}
