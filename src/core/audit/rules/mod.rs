//! The audit rules: each looks at the walked jail and reports findings.
//! Those that look at it from the host (mounts, processes, hard links) are
//! in [`host`].

pub mod host;

use std::collections::HashSet;
use std::sync::OnceLock;

use nix::sys::stat::SFlag;
use regex::bytes::Regex;

use super::walk::{AclWriter, Node};
use super::{Finding, Severity};
use crate::core::jail::devices::{self, Danger};

/// Who the audit treats as the jail user.
#[derive(Debug, Clone)]
pub enum Who {
    /// Any user but root (the default: the jail user is not known).
    AnyNonRoot,
    /// This uid and these groups (primary first).
    User { uid: u32, gids: Vec<u32> },
}

impl Who {
    /// True when this user may write to an object with these owner and
    /// permission bits (root-owned objects are only writable through their
    /// group or other bits).
    pub fn can_write(&self, n: &Node) -> bool {
        let p = n.perm();
        // A POSIX ACL's named entries grant write beyond the mode bits
        // (the mask is already applied).
        let by_acl = n.acl_writers.iter().any(|w| match (self, *w) {
            (Who::AnyNonRoot, AclWriter::User(u) | AclWriter::Group(u)) => u != 0,
            (Who::User { uid, .. }, AclWriter::User(u)) => u == *uid,
            (Who::User { gids, .. }, AclWriter::Group(g)) => gids.contains(&g),
        });
        by_acl
            || match self {
                Who::AnyNonRoot => {
                    (n.uid != 0 && p & 0o200 != 0)
                        || (n.gid != 0 && p & 0o020 != 0)
                        || p & 0o002 != 0
                }
                Who::User { uid, gids } => {
                    crate::core::perm::bits_for(p, (n.uid, n.gid), *uid, gids)
                        & crate::core::perm::WRITE
                        != 0
                }
            }
    }

    pub fn describe(&self) -> String {
        match self {
            Who::AnyNonRoot => "a non-root user".into(),
            Who::User { uid, .. } => format!("the jail user (uid {uid})"),
        }
    }
}

fn show(p: &[u8]) -> String {
    crate::core::manifest::pathenc::encode(p)
}

fn finding(severity: Severity, check: &'static str, path: &[u8], detail: String) -> Finding {
    Finding {
        severity,
        check,
        path: show(path),
        detail,
    }
}

/// setuid/setgid files and device nodes outside the safe set.
pub fn privileged_files(n: &Node, out: &mut Vec<Finding>) {
    if n.is(SFlag::S_IFREG) {
        if n.perm() & 0o4000 != 0 {
            out.push(finding(
                Severity::High,
                "setuid",
                &n.path,
                format!(
                    "setuid (owner uid {}): runs with its owner's privileges",
                    n.uid
                ),
            ));
        }
        if n.caps {
            out.push(finding(
                Severity::High,
                "capabilities",
                &n.path,
                "file capabilities (security.capability): runs with privileges, as setuid does"
                    .into(),
            ));
        }
        if n.perm() & 0o2000 != 0 {
            out.push(finding(
                Severity::High,
                "setgid",
                &n.path,
                format!(
                    "setgid (group gid {}): runs with its group's privileges",
                    n.gid
                ),
            ));
        }
    }
    let block = n.is(SFlag::S_IFBLK);
    if block || n.is(SFlag::S_IFCHR) {
        let (maj, min) = (nix::sys::stat::major(n.rdev), nix::sys::stat::minor(n.rdev));
        if let Some(danger) = devices::node_danger(block, maj, min) {
            let (severity, detail) = match danger {
                Danger::Disk => (
                    Severity::High,
                    format!("block device {maj}:{min}: raw access to a disk bypasses every file permission"),
                ),
                Danger::Memory { node, .. } => (
                    Severity::High,
                    format!("character device {maj}:{min} ({node}): reads and writes kernel memory or I/O ports"),
                ),
                Danger::Impostor { .. } | Danger::Other => (
                    Severity::Medium,
                    format!(
                        "character device {maj}:{min} outside the safe set ({})",
                        devices::safe_names()
                    ),
                ),
            };
            out.push(finding(severity, "device", &n.path, detail));
        }
    } else if n.is(SFlag::S_IFSOCK) {
        out.push(finding(
            Severity::Low,
            "socket",
            &n.path,
            "socket: a jailed program can send to the host service listening on it (e.g. syslog)"
                .into(),
        ));
    }
}

fn system_path() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^/(etc|(usr/(local/)?)?(s?bin|lib(32|64|x32)?|libexec))(/|$)").unwrap()
    })
}

fn shared_object() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\.so(\.[0-9.]+)?$").unwrap())
}

/// Files a jailed program executes or loads: executables, ELF objects,
/// scripts, shared libraries, and everything under the system directories
/// (/etc, bin, sbin, lib, libexec, under / , /usr and /usr/local).
pub fn is_loaded(n: &Node) -> bool {
    n.is(SFlag::S_IFREG)
        && (n.perm() & 0o111 != 0
            || n.elf
            || n.script
            || shared_object().is_match(n.name())
            || system_path().is_match(&n.path))
}

/// World-writable objects, and loaded files or system directories the jail
/// user can modify.
pub fn writable(nodes: &[Node], who: &Who, out: &mut Vec<Finding>) {
    let mut dirs_with_loaded: HashSet<&[u8]> = HashSet::new();
    for n in nodes {
        if is_loaded(n) {
            dirs_with_loaded.insert(n.parent());
        }
    }
    for n in nodes {
        let p = n.perm();
        let is_dir = n.is(SFlag::S_IFDIR);
        if n.is(SFlag::S_IFREG) && p & 0o002 != 0 {
            out.push(finding(
                Severity::Medium,
                "world-writable",
                &n.path,
                format!("world-writable file (mode {p:04o})"),
            ));
        }
        if is_dir && p & 0o002 != 0 && p & 0o1000 == 0 {
            out.push(finding(
                Severity::Medium,
                "world-writable",
                &n.path,
                format!(
                    "world-writable directory without the sticky bit (mode {p:04o}): anyone can delete or replace what is in it"
                ),
            ));
        }
        if is_loaded(n) && who.can_write(n) {
            out.push(finding(
                Severity::High,
                "modifiable",
                &n.path,
                format!(
                    "{} can modify this file, which jailed programs execute or load (owner {}, mode {p:04o})",
                    who.describe(),
                    n.uid
                ),
            ));
        }
        let system_dir = n.path == b"/" || system_path().is_match(&n.path);
        if is_dir
            && (system_dir || dirs_with_loaded.contains(n.path.as_slice()))
            && who.can_write(n)
        {
            out.push(finding(
                Severity::High,
                "modifiable",
                &n.path,
                format!(
                    "{} can create or replace files in this directory, which holds programs, libraries or configuration (owner {}, mode {p:04o})",
                    who.describe(),
                    n.uid
                ),
            ));
        }
    }
}

/// Sensitive host files: shadow files, private keys, root's dotfiles.
/// `kept`: the accounts whose password hashes the jail keeps on purpose
/// (`check --accounts`): a shadow file holding only theirs is medium.
pub fn sensitive(n: &Node, kept: &[String], out: &mut Vec<Finding>) {
    static SHADOW: [&[u8]; 5] = [
        b"/etc/shadow",
        b"/etc/gshadow",
        b"/etc/shadow-",
        b"/etc/gshadow-",
        b"/etc/sudoers",
    ];
    static KEY_NAMES: OnceLock<Regex> = OnceLock::new();
    let key_names = KEY_NAMES.get_or_init(|| {
        Regex::new(r"^(id_(rsa|dsa|ecdsa|ed25519)(_sk)?|ssh_host_.*_key)$").unwrap()
    });
    if SHADOW.contains(&n.path.as_slice()) && !n.is(SFlag::S_IFDIR) {
        // A shadow file without hashes (as materialize writes it) says
        // which accounts exist and when passwords age: no secret.
        let hashless = n.path != b"/etc/sudoers"
            && n.content
                .as_deref()
                .is_some_and(|c| !crate::core::jail::accounts::has_hash(c));
        let hashed = match (&n.content, n.path == b"/etc/sudoers") {
            (Some(c), false) => crate::core::jail::accounts::hashed_accounts(c),
            _ => Vec::new(),
        };
        if !hashless && !hashed.is_empty() && hashed.iter().all(|a| kept.contains(a)) {
            out.push(finding(
                Severity::Medium,
                "sensitive-file",
                &n.path,
                format!(
                    "password hashes of {} kept on purpose (--accounts): whoever can read the \
                     jail's copy can try to crack them",
                    hashed.join(", ")
                ),
            ));
        } else if !hashless {
            out.push(finding(
                Severity::High,
                "sensitive-file",
                &n.path,
                "host authentication data (password hashes) copied into the jail".into(),
            ));
        }
        return;
    }
    if n.is(SFlag::S_IFREG) && (n.private_key || key_names.is_match(n.name())) {
        out.push(finding(
            Severity::High,
            "private-key",
            &n.path,
            "private key: anyone who can read the jail can impersonate its owner".into(),
        ));
        return;
    }
    if n.is(SFlag::S_IFREG) && n.name().ends_with(b".key") {
        out.push(finding(
            Severity::Medium,
            "private-key",
            &n.path,
            "named like a private key (*.key); its content was not recognised".into(),
        ));
        return;
    }
    // Other places that hold password hashes: old passwords (pam_pwhistory)
    // and the shadow backups Debian's cron job keeps.
    let backup = n.path == b"/etc/security/opasswd"
        || (n.path.starts_with(b"/var/backups/") && n.name().windows(6).any(|w| w == b"shadow"));
    if backup && n.is(SFlag::S_IFREG) && n.size > 0 {
        out.push(finding(
            Severity::High,
            "sensitive-file",
            &n.path,
            "host authentication data (password hashes, old or backed up) copied into the jail"
                .into(),
        ));
        return;
    }
    if n.path.starts_with(b"/root/.") && !n.path[7..].contains(&b'/') {
        out.push(finding(
            Severity::Medium,
            "root-dotfile",
            &n.path,
            "root's dotfile on the host (history, keys, credentials)".into(),
        ));
    }
}

/// A tool handed to an attacker, by its file name.
fn tool_class(name: &[u8]) -> Option<(Severity, &'static str)> {
    static RULES: OnceLock<Vec<(Regex, Severity, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let r = |s: &str| Regex::new(s).unwrap();
        vec![
            (
                r(r"^(gdb|gdbserver|strace|ltrace|valgrind|perf)$"),
                Severity::High,
                "debugger or tracer: can ptrace processes of the same user outside the jail",
            ),
            (
                r(r"^((x86_64-linux-gnu-)?(gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|tcc|cc1|as|ld|ld\.bfd|ld\.gold|rustc)(-[0-9.]+)?)$"),
                Severity::Medium,
                "compiler, assembler or linker: builds new attack tools inside the jail",
            ),
            (
                r(r"^(sh|bash|dash|ash|zsh|ksh|ksh93|mksh|csh|tcsh|fish|busybox)$"),
                Severity::Medium,
                "shell: a command line for an attacker who gets code execution",
            ),
            (
                r(r"^(perl|python|ruby|lua|node|nodejs|php|tclsh|wish)([0-9.]*)$"),
                Severity::Low,
                "script interpreter: a full language for an attacker (often needed by the jailed program itself)",
            ),
        ]
    });
    rules
        .iter()
        .find(|(re, _, _)| re.is_match(name))
        .map(|(_, s, why)| (*s, *why))
}

pub fn tools(n: &Node, out: &mut Vec<Finding>) {
    let runnable = (n.is(SFlag::S_IFREG) && n.perm() & 0o111 != 0) || n.is(SFlag::S_IFLNK);
    if !runnable {
        return;
    }
    if let Some((sev, why)) = tool_class(n.name()) {
        out.push(finding(sev, "tool", &n.path, why.to_string()));
    }
}

/// Shells that do not give a login.
const NO_LOGIN: [&str; 5] = [
    "/usr/sbin/nologin",
    "/sbin/nologin",
    "/bin/false",
    "/usr/bin/false",
    "/bin/sync",
];

/// Whether glibc reads this uid field as 0: it parses it with strtoul, so
/// `00`, `+0`, `-0` and leading blanks are root too.
pub fn uid_is_root(field: &str) -> bool {
    let f = field.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let digits = f.strip_prefix(['+', '-']).unwrap_or(f);
    !digits.is_empty() && digits.bytes().all(|b| b == b'0')
}

/// uid-0 accounts in the jail's /etc/passwd with a password or a shell.
pub fn root_accounts(passwd: &[u8], shadow: Option<&[u8]>, out: &mut Vec<Finding>) {
    let shadow_hash = |name: &str| -> Option<String> {
        let text = String::from_utf8_lossy(shadow?);
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 1 && f[0] == name)
            .map(|f| f[1].to_string())
    };
    let usable = |hash: &str| !hash.starts_with('!') && !hash.starts_with('*') && hash != "x";
    for line in String::from_utf8_lossy(passwd).lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || !uid_is_root(f[2]) {
            continue;
        }
        let (name, pw, shell) = (f[0], f[1], f[6]);
        let password = match pw {
            "" => Some("has an empty password: anyone can become root".to_string()),
            "x" => match shadow_hash(name) {
                Some(h) if h.is_empty() => {
                    Some("has an empty password in /etc/shadow: anyone can become root".into())
                }
                Some(h) if usable(&h) => {
                    Some("has a password hash in the jail's /etc/shadow".into())
                }
                _ => None,
            },
            h if usable(h) => Some("has a password hash in /etc/passwd".into()),
            _ => None,
        };
        let path = b"/etc/passwd";
        if let Some(why) = password {
            out.push(finding(
                Severity::High,
                "root-account",
                path,
                format!("uid-0 account {name:?} {why}"),
            ));
        }
        if !NO_LOGIN.contains(&shell) {
            let shell = if shell.is_empty() { "/bin/sh" } else { shell };
            out.push(finding(
                Severity::Medium,
                "root-account",
                path,
                format!("uid-0 account {name:?} has a login shell ({shell})"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, mode: u32, uid: u32, gid: u32) -> Node {
        Node {
            path: path.as_bytes().to_vec(),
            mode: SFlag::S_IFREG.bits() | mode,
            uid,
            gid,
            dev: 1,
            ino: 1,
            nlink: 1,
            rdev: 0,
            size: 10,
            elf: false,
            script: false,
            private_key: false,
            content: None,
            caps: false,
            acl_writers: Vec::new(),
        }
    }

    #[test]
    fn an_acl_grants_write_beyond_the_mode() {
        let mut n = file("/usr/bin/x", 0o755, 0, 0);
        let user = Who::User {
            uid: 1000,
            gids: vec![1000],
        };
        assert!(!user.can_write(&n) && !Who::AnyNonRoot.can_write(&n));
        // version 2; user::rwx, user:1000:rwx, group::r-x, mask::rwx, other::r-x
        let mut x = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 7u16, 0u32),
            (2, 7, 1000),
            (4, 5, 0),
            (0x10, 7, 0),
            (0x20, 5, 0),
        ] {
            x.extend(tag.to_le_bytes());
            x.extend(perm.to_le_bytes());
            x.extend(id.to_le_bytes());
        }
        n.acl_writers = super::super::walk::acl_writers(&x);
        assert_eq!(n.acl_writers, vec![AclWriter::User(1000)]);
        assert!(user.can_write(&n) && Who::AnyNonRoot.can_write(&n));
        assert!(!Who::User {
            uid: 1001,
            gids: vec![1001]
        }
        .can_write(&n));
        // A mask without write takes it back.
        x[4 + 3 * 8 + 2] = 5;
        assert!(super::super::walk::acl_writers(&x).is_empty());
    }

    #[test]
    fn glibc_root_aliases_are_root() {
        for f in ["0", "00", "+0", "-0", " 0", "000"] {
            assert!(uid_is_root(f), "{f:?}");
        }
        for f in ["", "1", "10", "0x0", "+", "o"] {
            assert!(!uid_is_root(f), "{f:?}");
        }
        let mut out = Vec::new();
        root_accounts(
            b"alias::00:0::/:/bin/sh\nplus::+0:0::/:/usr/sbin/nologin\n",
            None,
            &mut out,
        );
        let details: Vec<_> = out.iter().map(|f| f.detail.clone()).collect();
        assert!(
            details
                .iter()
                .any(|d| d.contains("\"alias\" has an empty password")),
            "{details:?}"
        );
        assert!(
            details
                .iter()
                .any(|d| d.contains("\"plus\" has an empty password")),
            "{details:?}"
        );
    }

    #[test]
    fn who_can_write() {
        let any = Who::AnyNonRoot;
        assert!(!any.can_write(&file("/x", 0o644, 0, 0)));
        assert!(any.can_write(&file("/x", 0o644, 1000, 0)));
        assert!(any.can_write(&file("/x", 0o664, 0, 50)));
        assert!(any.can_write(&file("/x", 0o646, 0, 0)));
        let u = Who::User {
            uid: 1000,
            gids: vec![1000, 27],
        };
        assert!(u.can_write(&file("/x", 0o600, 1000, 0)));
        assert!(!u.can_write(&file("/x", 0o466, 1000, 1000)));
        assert!(u.can_write(&file("/x", 0o660, 0, 27)));
        assert!(!u.can_write(&file("/x", 0o664, 2000, 2000)));
    }

    #[test]
    fn loaded_files() {
        assert!(is_loaded(&file("/srv/app/run", 0o755, 0, 0)));
        assert!(is_loaded(&file("/usr/lib/python3.11/os.py", 0o644, 0, 0)));
        assert!(is_loaded(&file("/etc/ld.so.preload", 0o644, 0, 0)));
        assert!(is_loaded(&file("/opt/x/libfoo.so.1.2", 0o644, 0, 0)));
        assert!(!is_loaded(&file("/var/lib/app/data", 0o644, 0, 0)));
        assert!(!is_loaded(&file("/etcetera/x", 0o644, 0, 0)));
    }

    #[test]
    fn tools_by_name() {
        assert_eq!(tool_class(b"gdb").unwrap().0, Severity::High);
        assert_eq!(tool_class(b"gcc-12").unwrap().0, Severity::Medium);
        assert_eq!(
            tool_class(b"x86_64-linux-gnu-gcc-12").unwrap().0,
            Severity::Medium
        );
        assert_eq!(tool_class(b"bash").unwrap().0, Severity::Medium);
        assert_eq!(tool_class(b"python3.11").unwrap().0, Severity::Low);
        assert!(tool_class(b"shasum").is_none());
        assert!(tool_class(b"ls").is_none());
        // Not a program: ptrace is a system call.
        assert!(tool_class(b"ptrace").is_none());
        assert_eq!(tool_class(b"strace").unwrap().0, Severity::High);
    }

    #[test]
    fn root_account_rules() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
                       toor::0:0::/:/usr/sbin/nologin\n\
                       daemon:x:1:1::/:/usr/sbin/nologin\n";
        let mut out = Vec::new();
        root_accounts(
            passwd,
            Some(b"root:$y$j9T$abc:19000:0:99999:7:::\n"),
            &mut out,
        );
        let details: Vec<_> = out.iter().map(|f| (f.severity, f.detail.clone())).collect();
        assert_eq!(out.len(), 3, "{details:?}");
        assert!(details
            .iter()
            .any(|(s, d)| *s == Severity::High && d.contains("\"root\" has a password hash")));
        assert!(details
            .iter()
            .any(|(s, d)| *s == Severity::Medium && d.contains("/bin/bash")));
        assert!(details
            .iter()
            .any(|(s, d)| *s == Severity::High && d.contains("\"toor\" has an empty password")));
        let mut out = Vec::new();
        root_accounts(
            b"root:x:0:0::/root:/usr/sbin/nologin\n",
            Some(b"root:*:1::::::\n"),
            &mut out,
        );
        assert!(out.is_empty());
    }
}
