//! What a jail needs beyond the paths one run took (issue 22): the base set
//! of the chroot article every program may reach for (name service,
//! resolver, time zones, a few devices, temporary directories), and the
//! data a loaded library reads on paths of its own (CA certificates,
//! gconv modules, PAM's configuration and modules).
//!
//! Each rule names the host paths it infers; resolution turns them into
//! entries marked with the rule and without accesses. docs/manifest.md
//! gives each rule's evidence. No rule infers a file that holds secrets.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::core::resolve::exe::{open_regular, read_regular};

/// One inference rule. The order is the manifest's: a path that two rules
/// infer is marked with the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `/etc/nsswitch.conf`, the files of the databases it configures and
    /// the NSS modules it names.
    Nss,
    /// The resolver's and `getaddrinfo`'s files.
    Resolver,
    /// The local time zone and the time zone database.
    Time,
    /// `/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`.
    Devices,
    /// `/tmp` and `/var/tmp`.
    Tmp,
    /// A TLS library implies the system CA store and `openssl.cnf`.
    Tls,
    /// iconv use implies the gconv cache and modules.
    Gconv,
    /// libpam implies `/etc/pam.d`, the modules it names and their
    /// configuration.
    Pam,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::Nss,
        Rule::Resolver,
        Rule::Time,
        Rule::Devices,
        Rule::Tmp,
        Rule::Tls,
        Rule::Gconv,
        Rule::Pam,
    ];
    /// The chroot article's minimum base set.
    pub const BASE: [Rule; 5] = [
        Rule::Nss,
        Rule::Resolver,
        Rule::Time,
        Rule::Devices,
        Rule::Tmp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::Nss => "nss",
            Rule::Resolver => "resolver",
            Rule::Time => "time",
            Rule::Devices => "devices",
            Rule::Tmp => "tmp",
            Rule::Tls => "tls",
            Rule::Gconv => "gconv",
            Rule::Pam => "pam",
        }
    }

    pub fn from_name(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// `--infer`: `all`, `none`, `base`, or rule names, comma-separated.
pub fn parse_rules(s: &str) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    for word in s.split(',').map(str::trim) {
        match word {
            "all" => out.extend(Rule::ALL),
            "base" => out.extend(Rule::BASE),
            "none" if s.trim() == "none" => {}
            _ => match Rule::from_name(word) {
                Some(r) => out.push(r),
                None => {
                    let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                    return Err(format!(
                        "unknown rule {word:?} (all, none, base, or some of {})",
                        names.join(", ")
                    ));
                }
            },
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether a path is one no rule may infer: password hashes, private keys,
/// old passwords. The rules never name such files; this holds when a
/// directory they copy whole contains one.
pub fn holds_secrets(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    matches!(
        name,
        b"shadow" | b"gshadow" | b"shadow-" | b"gshadow-" | b"opasswd" | b"sudoers"
    ) || path.windows(9).any(|w| w == b"/private/")
        || path.ends_with(b"/private")
        || name.ends_with(b".key")
}

/// The host paths that `rules` infer, each with its rule. `touched`: the
/// paths the run reached successfully, which the library rules look at.
pub fn paths<'a>(
    rules: &[Rule],
    touched: impl Iterator<Item = &'a [u8]> + Clone,
) -> Vec<(Vec<u8>, Rule)> {
    let mut out: BTreeMap<Vec<u8>, Rule> = BTreeMap::new();
    let libdirs = library_dirs();
    for &rule in rules {
        let mut found = Vec::new();
        match rule {
            Rule::Nss => nss(&libdirs, &mut found),
            Rule::Resolver => {
                for p in [
                    "/etc/hosts",
                    "/etc/host.conf",
                    "/etc/resolv.conf",
                    "/etc/gai.conf",
                    "/etc/services",
                    "/etc/protocols",
                ] {
                    existing(p.as_bytes(), &mut found);
                }
            }
            Rule::Time => {
                existing(b"/etc/localtime", &mut found);
                existing(b"/etc/timezone", &mut found);
                // Debian ships the database twice more (right/, posix/),
                // for leap-second clocks nobody sets TZ to by accident.
                tree(b"/usr/share/zoneinfo", &[b"right", b"posix"], &mut found);
            }
            Rule::Devices => {
                for d in ["null", "zero", "full", "random", "urandom", "tty"] {
                    existing(format!("/dev/{d}").as_bytes(), &mut found);
                }
            }
            Rule::Tmp => {
                existing(b"/tmp", &mut found);
                existing(b"/var/tmp", &mut found);
            }
            Rule::Tls => tls(touched.clone(), &mut found),
            Rule::Gconv => gconv(touched.clone(), &mut found),
            Rule::Pam => pam(touched.clone(), &libdirs, &mut found),
        }
        for p in found {
            if !holds_secrets(&p) {
                out.entry(p).or_insert(rule);
            }
        }
    }
    out.into_iter().collect()
}

fn name_of(p: &[u8]) -> &[u8] {
    p.rsplit(|&b| b == b'/').next().unwrap_or(p)
}

fn as_path(p: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(p))
}

fn exists(p: &[u8]) -> bool {
    std::fs::symlink_metadata(as_path(p)).is_ok()
}

fn existing(p: &[u8], out: &mut Vec<Vec<u8>>) {
    if exists(p) {
        out.push(p.to_vec());
    }
}

/// A directory and everything beneath it, links not followed (their
/// targets are resolved like any path), less the top-level names `skip`.
fn tree(root: &[u8], skip: &[&[u8]], out: &mut Vec<Vec<u8>>) {
    let Ok(md) = std::fs::symlink_metadata(as_path(root)) else {
        return;
    };
    out.push(root.to_vec());
    if !md.is_dir() {
        return;
    }
    let mut stack = vec![(root.to_vec(), true)];
    while let Some((dir, top)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(as_path(&dir)) else {
            continue;
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let name = name.as_bytes();
            if top && skip.contains(&name) {
                continue;
            }
            let mut p = dir.clone();
            p.push(b'/');
            p.extend_from_slice(name);
            if ent.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((p.clone(), false));
            }
            out.push(p);
        }
    }
}

/// The directories the dynamic linker searches: `/etc/ld.so.conf` and what
/// it includes, then the default ones.
pub fn library_dirs() -> Vec<Vec<u8>> {
    let mut dirs = Vec::new();
    ld_conf(b"/etc/ld.so.conf", &mut dirs, 0);
    for d in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
        dirs.push(d.as_bytes().to_vec());
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

fn ld_conf(file: &[u8], dirs: &mut Vec<Vec<u8>>, depth: u32) {
    let Some(text) = read_regular(as_path(file)) else {
        return;
    };
    if depth > 4 {
        return;
    }
    for line in text.split(|&b| b == b'\n') {
        let line = line
            .split(|&b| b == b'#')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        if let Some(pat) = line.strip_prefix(b"include").map(<[u8]>::trim_ascii) {
            if pat.is_empty() {
                continue;
            }
            for f in glob_last(pat) {
                ld_conf(&f, dirs, depth + 1);
            }
        } else if line.first() == Some(&b'/') {
            dirs.push(line.to_vec());
        }
    }
}

/// The files a pattern with at most one `*`, in its last component, names,
/// sorted (glibc's ldconfig reads them in that order).
fn glob_last(pat: &[u8]) -> Vec<Vec<u8>> {
    let cut = pat.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let (dir, name) = (&pat[..cut.max(1)], &pat[cut + 1..]);
    let Some(star) = name.iter().position(|&b| b == b'*') else {
        return vec![pat.to_vec()];
    };
    let (pre, post) = (&name[..star], &name[star + 1..]);
    let Ok(rd) = std::fs::read_dir(as_path(dir)) else {
        return Vec::new();
    };
    let mut out: Vec<Vec<u8>> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().as_bytes().to_vec();
            (n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post)).then(
                || {
                    let mut p = dir.to_vec();
                    if p != b"/" {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&n);
                    p
                },
            )
        })
        .collect();
    out.sort();
    out
}

/// The first file named `name` in the library directories.
fn find_library(libdirs: &[Vec<u8>], name: &[u8]) -> Option<Vec<u8>> {
    libdirs.iter().find_map(|d| {
        let mut p = d.clone();
        p.push(b'/');
        p.extend_from_slice(name);
        std::fs::metadata(as_path(&p))
            .is_ok_and(|m| m.is_file())
            .then_some(p)
    })
}

/// A shared object and the libraries it needs, transitively (`DT_NEEDED`
/// found in the library directories, as the dynamic linker would).
fn with_needed(libdirs: &[Vec<u8>], lib: Vec<u8>, out: &mut Vec<Vec<u8>>) {
    let mut work = vec![lib];
    let mut seen = std::collections::HashSet::new();
    while let Some(p) = work.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        for n in needed(&p) {
            if n.contains(&b'/') {
                continue;
            }
            if let Some(q) = find_library(libdirs, &n) {
                work.push(q);
            }
        }
        out.push(p);
    }
}

/// The `DT_NEEDED` names of an ELF shared object; none if it is not one.
/// Only the headers, the dynamic section and its strings are read, not
/// the whole object (libc alone is 2 MB).
fn needed(path: &[u8]) -> Vec<Vec<u8>> {
    use object::read::elf::{Dyn as _, FileHeader as _};
    let Some(file) = open_regular(as_path(path)) else {
        return Vec::new();
    };
    let cache = object::ReadCache::new(file);
    let data = &cache;
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(data) else {
        return Vec::new();
    };
    let Ok(endian) = header.endian() else {
        return Vec::new();
    };
    let Ok(sections) = header.sections(endian, data) else {
        return Vec::new();
    };
    let Ok(Some((dynamic, link))) = sections.dynamic(endian, data) else {
        return Vec::new();
    };
    let Ok(strings) = sections.strings(endian, data, link) else {
        return Vec::new();
    };
    dynamic
        .iter()
        .filter(|d| d.tag32(endian) == Some(object::elf::DT_NEEDED as i32))
        .filter_map(|d| d.string(endian, strings).ok().map(<[u8]>::to_vec))
        .collect()
}

/// The databases whose files the rule copies, with those files. `shadow`
/// and `gshadow` are left out: they hold password hashes.
const NSS_FILES: [(&str, &str); 6] = [
    ("hosts", "/etc/hosts"),
    ("passwd", "/etc/passwd"),
    ("group", "/etc/group"),
    ("services", "/etc/services"),
    ("protocols", "/etc/protocols"),
    ("networks", "/etc/networks"),
];

/// The services `nsswitch.conf` names for each database (glibc's defaults
/// for a database it does not configure: `files`, and `dns` for hosts).
pub fn nss_services(conf: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (db, _) in NSS_FILES {
        let default = if db == "hosts" {
            vec!["dns".to_string(), "files".to_string()]
        } else {
            vec!["files".to_string()]
        };
        out.insert(db.to_string(), default);
    }
    for line in conf.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((db, rest)) = line.split_once(':') else {
            continue;
        };
        let db = db.trim();
        if !out.contains_key(db) {
            continue;
        }
        // `[NOTFOUND=return]` and the like are actions, not services.
        let mut services = Vec::new();
        let mut in_action = false;
        for w in rest.split_whitespace() {
            if in_action || w.starts_with('[') {
                in_action = !w.ends_with(']');
            } else {
                services.push(w.to_string());
            }
        }
        out.insert(db.to_string(), services);
    }
    out
}

fn nss(libdirs: &[Vec<u8>], out: &mut Vec<Vec<u8>>) {
    existing(b"/etc/nsswitch.conf", out);
    let conf = read_regular(Path::new("/etc/nsswitch.conf")).unwrap_or_default();
    let conf = String::from_utf8_lossy(&conf);
    for (db, services) in nss_services(&conf) {
        if services.iter().any(|s| s == "files" || s == "compat") {
            if let Some((_, file)) = NSS_FILES.iter().find(|(d, _)| *d == db) {
                existing(file.as_bytes(), out);
            }
        }
        for s in services {
            // Where glibc builds a service into libc (files and dns since
            // 2.34) there is no module, or an empty stub: either way the
            // host's file is what the program would load.
            if s.contains('/') {
                continue;
            }
            if let Some(lib) = find_library(libdirs, format!("libnss_{s}.so.2").as_bytes()) {
                with_needed(libdirs, lib, out);
            }
        }
    }
}

/// Whether the run reached a file whose name starts with one of `prefixes`.
fn loaded<'a>(touched: impl Iterator<Item = &'a [u8]>, prefixes: &[&[u8]]) -> Vec<&'a [u8]> {
    touched
        .filter(|p| {
            let n = name_of(p);
            prefixes.iter().any(|pre| n.starts_with(pre))
        })
        .collect()
}

/// OpenSSL's configuration directory, as libcrypto was built with it (the
/// string `OPENSSLDIR: "…"` that `openssl version -d` prints).
fn openssl_dir(libcrypto: &[u8]) -> Option<Vec<u8>> {
    let data = read_regular(as_path(libcrypto))?;
    let key = b"OPENSSLDIR: \"";
    let at = data.windows(key.len()).position(|w| w == key)? + key.len();
    let len = data[at..].iter().take(4096).position(|&b| b == b'"')?;
    let dir = &data[at..at + len];
    (dir.first() == Some(&b'/')).then(|| dir.to_vec())
}

fn tls<'a>(touched: impl Iterator<Item = &'a [u8]> + Clone, out: &mut Vec<Vec<u8>>) {
    if loaded(
        touched.clone(),
        &[b"libssl.so", b"libgnutls.so", b"libnss3.so"],
    )
    .is_empty()
    {
        return;
    }
    tree(b"/etc/ssl/certs", &[], out);
    existing(b"/etc/ssl/openssl.cnf", out);
    let mut dirs: Vec<Vec<u8>> = loaded(touched, &[b"libcrypto.so"])
        .into_iter()
        .filter_map(openssl_dir)
        .collect();
    if dirs.is_empty() {
        dirs.push(b"/usr/lib/ssl".to_vec());
    }
    for d in dirs {
        for name in [&b"cert.pem"[..], b"certs", b"openssl.cnf"] {
            let mut p = d.clone();
            p.push(b'/');
            p.extend_from_slice(name);
            existing(&p, out);
        }
    }
}

fn gconv<'a>(touched: impl Iterator<Item = &'a [u8]>, out: &mut Vec<Vec<u8>>) {
    let mut dirs: Vec<Vec<u8>> = touched
        .filter_map(|p| {
            let at = p.windows(7).position(|w| w == b"/gconv/")?;
            Some(p[..at + 6].to_vec())
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        tree(&d, &[], out);
    }
}

/// The module paths a PAM configuration names.
pub fn pam_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('@') {
            continue;
        }
        let mut words = line.split_whitespace();
        // type, then control: one word or a bracketed list.
        if words.next().is_none() {
            continue;
        }
        let Some(control) = words.next() else {
            continue;
        };
        if control.starts_with('[') && !control.ends_with(']') {
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        if let Some(module) = words.next() {
            out.push(module.to_string());
        }
    }
    out
}

fn pam<'a>(touched: impl Iterator<Item = &'a [u8]>, libdirs: &[Vec<u8>], out: &mut Vec<Vec<u8>>) {
    if loaded(touched, &[b"libpam.so"]).is_empty() {
        return;
    }
    existing(b"/etc/pam.conf", out);
    let mut confs = Vec::new();
    tree(b"/etc/pam.d", &[], &mut confs);
    let mut modules = std::collections::BTreeSet::new();
    for c in &confs {
        if let Some(text) = read_regular(as_path(c)) {
            modules.extend(pam_modules(&String::from_utf8_lossy(&text)));
        }
    }
    out.extend(confs);
    for m in modules {
        let lib = if m.starts_with('/') {
            std::fs::metadata(&m).is_ok().then(|| m.into_bytes())
        } else {
            find_library(libdirs, format!("security/{m}").as_bytes())
        };
        if let Some(lib) = lib {
            with_needed(libdirs, lib, out);
        }
    }
    // The modules' own configuration (limits, access, namespaces, the
    // environment); old passwords are left out by the secrets rule.
    tree(b"/etc/security", &[], out);
    existing(b"/etc/environment", out);
    existing(b"/etc/login.defs", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lists() {
        assert_eq!(parse_rules("none").unwrap(), vec![]);
        assert_eq!(parse_rules("all").unwrap(), Rule::ALL.to_vec());
        assert_eq!(parse_rules("base").unwrap(), Rule::BASE.to_vec());
        assert_eq!(
            parse_rules("tls, time,tls").unwrap(),
            vec![Rule::Time, Rule::Tls]
        );
        assert!(parse_rules("none,tls").unwrap_err().contains("\"none\""));
        assert!(parse_rules("dns")
            .unwrap_err()
            .contains("unknown rule \"dns\""));
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
        }
    }

    #[test]
    fn nsswitch_services_skip_actions_and_comments() {
        let s = nss_services(
            "passwd: files systemd # and more\n\
             hosts: files mdns4_minimal [NOTFOUND=return] dns\n\
             services: db [ SUCCESS = return ] files\n\
             netgroup: nis\n",
        );
        assert_eq!(s["passwd"], ["files", "systemd"]);
        assert_eq!(s["hosts"], ["files", "mdns4_minimal", "dns"]);
        assert_eq!(s["services"], ["db", "files"]);
        assert_eq!(s["group"], ["files"], "glibc's default");
        assert!(!s.contains_key("netgroup"));
    }

    #[test]
    fn pam_lines_name_their_modules() {
        let m = pam_modules(
            "# comment\n@include common-auth\n\
             auth [success=1 default=ignore] pam_unix.so nullok\n\
             -session optional pam_systemd.so\n\
             account required /lib/security/pam_abs.so\n",
        );
        assert_eq!(
            m,
            ["pam_unix.so", "pam_systemd.so", "/lib/security/pam_abs.so"]
        );
    }

    #[test]
    fn secrets_are_never_inferred() {
        for p in [
            &b"/etc/shadow"[..],
            b"/etc/gshadow-",
            b"/etc/security/opasswd",
            b"/etc/ssl/private",
            b"/etc/ssl/private/x.pem",
            b"/etc/ssl/certs/host.key",
        ] {
            assert!(holds_secrets(p), "{}", String::from_utf8_lossy(p));
        }
        for p in [&b"/etc/passwd"[..], b"/etc/ssl/certs/ca-certificates.crt"] {
            assert!(!holds_secrets(p));
        }
    }
}
