//! The account databases are rewritten on their way into a jail, never
//! copied as they are: password hashes stay on the host, and with
//! `--accounts` only the accounts the jail needs remain (jailkit's way).
//!
//! Without `--accounts`, `passwd` and `group` keep every entry: a lookup by
//! name (`getpwnam("nobody")`) reads the whole file, and a syscall trace
//! cannot tell which entry the program was after.

use std::collections::{BTreeSet, HashSet};

/// One of the files handled here, by its real path on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Passwd,
    Group,
    Shadow,
    Gshadow,
}

impl Db {
    pub fn of(path: &[u8]) -> Option<Db> {
        match path {
            // The databases, shadow's `-` backups and Debian's daily copies
            // in /var/backups hold the same lines.
            b"/etc/passwd" | b"/etc/passwd-" | b"/var/backups/passwd.bak" => Some(Db::Passwd),
            b"/etc/group" | b"/etc/group-" | b"/var/backups/group.bak" => Some(Db::Group),
            b"/etc/shadow" | b"/etc/shadow-" | b"/var/backups/shadow.bak" => Some(Db::Shadow),
            b"/etc/gshadow" | b"/etc/gshadow-" | b"/var/backups/gshadow.bak" => Some(Db::Gshadow),
            _ => None,
        }
    }

    /// Whether entries are users (passwd, shadow) or groups.
    fn users(self) -> bool {
        matches!(self, Db::Passwd | Db::Shadow)
    }
}

/// The accounts a filtered jail keeps, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Keep {
    pub users: HashSet<Vec<u8>>,
    pub groups: HashSet<Vec<u8>>,
    /// What the filter leaves out without being asked: lines of the host's
    /// passwd and group that name no account (NIS `+`/`-` lines, malformed
    /// ones), one warning per file.
    pub left_out: Vec<String>,
}

/// How one account file is written into the jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub db: Db,
    /// Replace password hashes with `!` (shadow and gshadow).
    pub scrub: bool,
    /// Keep only these accounts.
    pub keep: Option<std::sync::Arc<Keep>>,
}

impl Rewrite {
    /// The rewrite for `path`, or `None` when it is copied unchanged.
    pub fn for_path(
        path: &[u8],
        keep_hashes: bool,
        keep: Option<&std::sync::Arc<Keep>>,
    ) -> Option<Rewrite> {
        let db = Db::of(path)?;
        // passwd and group too: a hash in their second field (no shadow)
        // is as secret as one in shadow.
        let scrub = !keep_hashes;
        (scrub || keep.is_some()).then(|| Rewrite {
            db,
            scrub,
            keep: keep.cloned(),
        })
    }

    /// Whether the file is one whose purpose is to hold hashes (shadow,
    /// gshadow): never to be bound live, since the host may add one later.
    pub fn is_shadow(&self) -> bool {
        matches!(self.db, Db::Shadow | Db::Gshadow)
    }

    /// The jail's version of the host file's `content`, line by line; lines
    /// kept are unchanged but for the hash field.
    pub fn apply(&self, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len());
        for line in content.split_inclusive(|&b| b == b'\n') {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            if let Some(keep) = &self.keep {
                let set = if self.db.users() {
                    &keep.users
                } else {
                    &keep.groups
                };
                if !set.contains(name) {
                    continue;
                }
            }
            if self.scrub {
                out.extend_from_slice(&scrub_line(line));
            } else {
                out.extend_from_slice(line);
            }
        }
        out
    }
}

/// An account line with its second field, the hash, replaced by `!` ("no
/// password", so a key-based login still works), whatever the rest of the
/// line (a short line `name:HASH` too). An empty field, `*` or `!` (no hash
/// at all) and passwd's and group's `x` (see shadow) are kept as they are.
fn scrub_line(line: &[u8]) -> Vec<u8> {
    let mut fields = line.splitn(3, |&b| b == b':');
    let (Some(name), Some(hash)) = (fields.next(), fields.next()) else {
        return line.to_vec();
    };
    let rest = fields.next();
    // The line's end stays as it was (a newline is part of a short line's
    // hash field).
    let (hash, end): (&[u8], &[u8]) = match (rest, hash.strip_suffix(b"\n")) {
        (None, Some(h)) => (h, b"\n"),
        _ => (hash, b""),
    };
    if hash == b"x" || hash.iter().all(|&b| b == b'!' || b == b'*') {
        return line.to_vec();
    }
    let mut out = Vec::with_capacity(line.len());
    out.extend_from_slice(name);
    out.extend_from_slice(b":!");
    if let Some(rest) = rest {
        out.push(b':');
        out.extend_from_slice(rest);
    }
    out.extend_from_slice(end);
    out
}

/// Whether a shadow or gshadow text holds any password hash.
pub fn has_hash(content: &[u8]) -> bool {
    content.split(|&b| b == b'\n').any(|l| scrub_line(l) != l)
}

/// The accounts (or groups) of a shadow or gshadow text that hold a
/// password hash, in file order.
pub fn hashed_accounts(content: &[u8]) -> Vec<String> {
    content
        .split(|&b| b == b'\n')
        .filter(|l| scrub_line(l) != *l)
        .filter_map(|l| l.split(|&b| b == b':').next())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// The shadow files the program read (so it checks passwords with them)
/// whose hashes the jail does not get, each with how many of the accounts
/// the jail keeps had one on the host: every login against those fails in
/// the jail, which nothing else says (issue 23).
pub fn stripped_reads(
    m: &crate::core::manifest::Manifest,
    keep_hashes: bool,
    keep: Option<&Keep>,
) -> Vec<(crate::core::manifest::pathenc::MPath, usize)> {
    use crate::core::manifest::Op;
    if keep_hashes {
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in &m.entries {
        let Some(db) = Db::of(e.path.as_bytes()) else {
            continue;
        };
        if !matches!(db, Db::Shadow | Db::Gshadow) || !e.has_ok(Op::Read) {
            continue;
        }
        let Some(content) = crate::core::resolve::exe::read_regular(e.path.as_path()) else {
            continue;
        };
        let n = content
            .split(|&b| b == b'\n')
            .filter(|l| {
                let name = l.split(|&b| b == b':').next().unwrap_or_default();
                let kept = keep.is_none_or(|k| {
                    if db.users() {
                        k.users.contains(name)
                    } else {
                        k.groups.contains(name)
                    }
                });
                kept && scrub_line(l) != *l
            })
            .count();
        if n > 0 {
            out.push((e.path.clone(), n));
        }
    }
    out
}

/// How many accounts of the host's shadow `host` have a hash that the
/// jail's copy `jail` lacks (stripped, or the account left out).
pub fn lost_hashes(host: &[u8], jail: &[u8]) -> usize {
    let jail_lines: HashSet<&[u8]> = jail.split(|&b| b == b'\n').collect();
    host.split(|&b| b == b'\n')
        .filter(|l| scrub_line(l) != *l && !jail_lines.contains(l))
        .count()
}

/// The line that says so, for materialize's summary and export's warnings.
pub fn stripped_notice(path: &crate::core::manifest::pathenc::MPath, n: usize) -> String {
    let whose = if n == 1 {
        "its 1 account's hash".to_string()
    } else {
        format!("none of its {n} accounts' hashes")
    };
    let has = if n == 1 { "lacks" } else { "has" };
    format!(
        "password hashes stripped: the program read {path} (it checks passwords), and the jail \
         {has} {whose}: every password login fails there; keep them \
         with --keep-password-hashes --accounts NAME,... (the accounts it must log in)"
    )
}

/// A passwd or group line: name, id, and the primary gid or the members.
type Line<'a> = (&'a [u8], u32, &'a [u8]);

/// The well-formed lines of a passwd or group file.
fn parse(content: &[u8]) -> Vec<Line<'_>> {
    content
        .split(|&b| b == b'\n')
        .filter_map(|l| {
            let f: Vec<&[u8]> = l.split(|&b| b == b':').collect();
            let id = std::str::from_utf8(f.get(2)?).ok()?.parse().ok()?;
            Some((f[0], id, *f.get(3)?))
        })
        .collect()
}

/// The accounts to keep with `--accounts NAMES`: those named (users or
/// groups), root, and the given users and groups (owners of the jail's
/// files, the ids the program switched to), with each kept user's primary
/// group and every group that lists a kept user as a member.
pub fn keep(
    passwd: &[u8],
    group: &[u8],
    names: &[String],
    uids: &BTreeSet<u32>,
    gids: &BTreeSet<u32>,
) -> Result<Keep, String> {
    let users = parse(passwd);
    let groups = parse(group);
    let mut k = Keep::default();
    for (file, content, parsed) in [
        ("/etc/passwd", passwd, users.len()),
        ("/etc/group", group, groups.len()),
    ] {
        let lines = content
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .count();
        let n = lines - parsed;
        if n > 0 {
            let (line, names, is) = if n == 1 {
                ("line", "names", "is")
            } else {
                ("lines", "name", "are")
            };
            k.left_out.push(format!(
                "--accounts: {n} {line} of {file} {names} no account (NIS `+`/`-` lines, or malformed) and {is} left out of the jail"
            ));
        }
    }
    let mut gids = gids.clone();
    gids.insert(0);
    for name in names {
        let n = name.as_bytes();
        let user = users.iter().any(|u| u.0 == n);
        let grp = groups.iter().any(|g| g.0 == n);
        if !user && !grp {
            return Err(format!(
                "--accounts {name}: no such user or group in the host's /etc/passwd or /etc/group"
            ));
        }
        if user {
            k.users.insert(n.to_vec());
        }
        if grp {
            k.groups.insert(n.to_vec());
        }
    }
    for (name, uid, primary) in &users {
        if *uid == 0 || uids.contains(uid) || k.users.contains(*name) {
            k.users.insert(name.to_vec());
            if let Some(g) = std::str::from_utf8(primary)
                .ok()
                .and_then(|s| s.parse().ok())
            {
                gids.insert(g);
            }
        }
    }
    for (name, gid, members) in &groups {
        let member = members.split(|&b| b == b',').any(|m| k.users.contains(m));
        if gids.contains(gid) || member {
            k.groups.insert(name.to_vec());
        }
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/usr/sbin/nologin\n\
postgres:x:101:104::/var/lib/postgresql:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n";
    const GROUP: &[u8] =
        b"root:x:0:\ndaemon:x:1:\npostgres:x:104:\nssl-cert:x:105:postgres\nalice:x:1000:\n";
    const SHADOW: &[u8] = b"root:$6$salt$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n\
postgres:!:19000::::::\nalice:!$y$j9T$locked:19000:0:99999:7:::\nbob::19000::::::\n";

    #[test]
    fn hashes_are_scrubbed_and_the_rest_kept() {
        let r = Rewrite::for_path(b"/etc/shadow", false, None).unwrap();
        assert_eq!(
            String::from_utf8(r.apply(SHADOW)).unwrap(),
            "root:!:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n\
postgres:!:19000::::::\nalice:!:19000:0:99999:7:::\nbob::19000::::::\n"
        );
        assert!(has_hash(SHADOW));
        assert!(!has_hash(&r.apply(SHADOW)));
        assert!(Rewrite::for_path(b"/etc/shadow", true, None).is_none());
        let g = Rewrite::for_path(b"/etc/gshadow", false, None).unwrap();
        assert_eq!(g.apply(b"sudo:$6$x:alice:alice\n"), b"sudo:!:alice:alice\n");
        // passwd's x (see shadow) stays; a hash there, the old way, goes.
        let p = Rewrite::for_path(b"/etc/passwd", false, None).unwrap();
        assert_eq!(p.apply(PASSWD), PASSWD);
        assert_eq!(
            p.apply(b"old:$1$salt$hash:1001:1001::/:/bin/sh\n"),
            b"old:!:1001:1001::/:/bin/sh\n"
        );
    }

    #[test]
    fn backups_and_short_lines_are_scrubbed_too() {
        for path in [
            b"/etc/shadow-".as_slice(),
            b"/var/backups/shadow.bak",
            b"/etc/gshadow-",
            b"/var/backups/gshadow.bak",
        ] {
            let r = Rewrite::for_path(path, false, None).unwrap();
            assert!(
                !has_hash(&r.apply(SHADOW)),
                "{}",
                String::from_utf8_lossy(path)
            );
        }
        let r = Rewrite::for_path(b"/etc/shadow", false, None).unwrap();
        assert_eq!(r.apply(b"root:$6$s$h\n"), b"root:!\n");
        assert_eq!(r.apply(b"root:$6$s$h"), b"root:!");
        assert_eq!(r.apply(b"root:$6$s$h:1\nx:*\n"), b"root:!:1\nx:*\n");
        assert!(!has_hash(b"root:!\n"));
        assert!(has_hash(b"root:$6$s$h"));
    }

    #[test]
    fn lines_that_are_no_account_are_named_when_left_out() {
        let passwd = [PASSWD, b"+::::::\n-bob::::::\n\n".as_slice()].concat();
        let group = [GROUP, b"+:::\n".as_slice()].concat();
        let k = keep(&passwd, &group, &[], &BTreeSet::new(), &BTreeSet::new()).unwrap();
        assert_eq!(k.left_out.len(), 2, "{:?}", k.left_out);
        assert!(k.left_out[0].starts_with("--accounts: 2 lines of /etc/passwd name no account"));
        assert!(k.left_out[1].starts_with("--accounts: 1 line of /etc/group names no account"));
        let k = keep(PASSWD, GROUP, &[], &BTreeSet::new(), &BTreeSet::new()).unwrap();
        assert!(k.left_out.is_empty());
    }

    #[test]
    fn accounts_keep_root_owners_switched_ids_and_memberships() {
        let uids = BTreeSet::from([101]);
        let k = keep(PASSWD, GROUP, &[], &uids, &BTreeSet::new()).unwrap();
        let names = |s: &HashSet<Vec<u8>>| {
            let mut v: Vec<String> = s
                .iter()
                .map(|n| String::from_utf8_lossy(n).into())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&k.users), ["postgres", "root"]);
        assert_eq!(names(&k.groups), ["postgres", "root", "ssl-cert"]);
        let k = std::sync::Arc::new(
            keep(PASSWD, GROUP, &["alice".into()], &uids, &BTreeSet::new()).unwrap(),
        );
        let r = Rewrite::for_path(b"/etc/passwd", false, Some(&k)).unwrap();
        let out = String::from_utf8(r.apply(PASSWD)).unwrap();
        assert_eq!(
            out.lines()
                .map(|l| l.split(':').next().unwrap())
                .collect::<Vec<_>>(),
            ["root", "postgres", "alice"]
        );
        let e = keep(PASSWD, GROUP, &["mallory".into()], &uids, &BTreeSet::new()).unwrap_err();
        assert!(
            e.contains("--accounts mallory: no such user or group"),
            "{e}"
        );
    }
}
