//! Which Debian package owns each file of a manifest, from dpkg's database
//! (`/var/lib/dpkg/info/*.list` and `diversions`), read directly: one pass
//! over the lists, no `dpkg -S` per file.
//!
//! A manifest names files by the path the program used or the canonical
//! one (`/usr/lib/x86_64-linux-gnu/libc.so.6`), while dpkg lists them where
//! the package put them (`/lib/x86_64-linux-gnu/libc.so.6` on a merged-/usr
//! system). The top-level symlinks of the host's `/` (`/lib -> usr/lib`)
//! give the other spellings of each path that are looked up too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::core::error::Failure;
use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Class, Entry, Kind, Manifest};

/// Where dpkg keeps its database.
pub const DPKG_ADMIN: &str = "/var/lib/dpkg";

/// Whether an entry is something a package can own and a jail needs: a
/// regular file or symlink the program found (directories are shared by
/// many packages and say nothing).
pub fn ownable(e: &Entry) -> bool {
    matches!(e.kind, Kind::File | Kind::Symlink) && e.class == Class::Regular && !e.created
}

/// The package report of a manifest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Package name to the manifest's files it owns.
    pub packages: BTreeMap<String, Vec<MPath>>,
    /// Files no package owns.
    pub unowned: Vec<MPath>,
}

/// The names dpkg uses for a package: `libc6:amd64` is shown as `libc6`
/// (a manifest is for one architecture; the qualifier only adds noise).
fn display_name(list_stem: &str) -> &str {
    list_stem.split(':').next().unwrap_or(list_stem)
}

/// Other spellings of `path` through the top-level symlinks of `/`:
/// `(link, target)` such as `("/lib", "/usr/lib")`.
fn spellings(path: &[u8], aliases: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    let mut out = vec![path.to_vec()];
    for (link, target) in aliases {
        for (from, to) in [(target, link), (link, target)] {
            if let Some(rest) = path.strip_prefix(from.as_slice()) {
                if rest.first() == Some(&b'/') {
                    let mut p = to.clone();
                    p.extend_from_slice(rest);
                    out.push(p);
                }
            }
        }
    }
    out
}

/// The symlinks directly under `root` that point at a directory one level
/// or more below it (`/lib -> usr/lib`), as absolute paths.
fn root_aliases(root: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ent in dir.flatten() {
        let Ok(target) = std::fs::read_link(ent.path()) else {
            continue;
        };
        let t = target.as_os_str().as_bytes();
        let t = t.strip_prefix(b"/").unwrap_or(t);
        if t.is_empty() || t.split(|&b| b == b'/').any(|c| c == b".." || c == b".") {
            continue;
        }
        let mut link = b"/".to_vec();
        link.extend_from_slice(ent.file_name().as_bytes());
        let mut abs = b"/".to_vec();
        abs.extend_from_slice(t.strip_suffix(b"/").unwrap_or(t));
        out.push((link, abs));
    }
    out.sort();
    out
}

/// One of dpkg's diversions: `(from, to, package)`.
type Diversion = (Vec<u8>, Vec<u8>, String);

/// dpkg's database, reduced to the paths asked about.
pub struct Db {
    admin: PathBuf,
    aliases: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Db {
    /// The host's database. Fails with one line when there is none (not a
    /// Debian system).
    pub fn host() -> anyhow::Result<Db> {
        Db::at(Path::new(DPKG_ADMIN), Path::new("/"))
    }

    /// The database under `admin`, for a system whose root is `root`.
    pub fn at(admin: &Path, root: &Path) -> anyhow::Result<Db> {
        let info = admin.join("info");
        if !info.is_dir() {
            return Err(Failure::new(format!(
                "{}: no dpkg database here (package names need a Debian-based system)",
                info.display()
            ))
            .into());
        }
        Ok(Db {
            admin: admin.to_path_buf(),
            aliases: root_aliases(root),
        })
    }

    /// The owners of each of `paths` (several when packages share a file),
    /// sorted; a path no package owns is absent from the map.
    pub fn owners(&self, paths: &[&MPath]) -> anyhow::Result<HashMap<MPath, BTreeSet<String>>> {
        // Every spelling of every path, back to the manifest paths it
        // stands for; `true` marks a path reached through a diversion.
        let mut wanted: HashMap<Vec<u8>, Vec<(&MPath, bool)>> = HashMap::new();
        for p in paths {
            // The merged-/usr links themselves: packages list `/lib` as one
            // of their directories, which says nothing about the link.
            if self
                .aliases
                .iter()
                .any(|(link, _)| link.as_slice() == p.as_bytes())
            {
                continue;
            }
            for s in spellings(p.as_bytes(), &self.aliases) {
                wanted.entry(s).or_default().push((p, false));
            }
        }
        let diversions = self.diversions()?;
        // A diverted file is found at its new name: look for the old one in
        // the lists.
        for (from, to, _) in &diversions {
            if let Some(ps) = wanted.get(to) {
                let via: Vec<(&MPath, bool)> = ps.iter().map(|(p, _)| (*p, true)).collect();
                wanted.entry(from.clone()).or_default().extend(via);
            }
        }
        let info = self.admin.join("info");
        let unreadable = |e: std::io::Error, what: &Path| {
            Failure::new(format!("{}: cannot read: {e}", what.display()))
        };
        let mut lists: Vec<PathBuf> = std::fs::read_dir(&info)
            .map_err(|e| unreadable(e, &info))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "list"))
            .collect();
        lists.sort();
        let mut out: HashMap<MPath, BTreeSet<String>> = HashMap::new();
        for list in &lists {
            let stem = list
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = display_name(&stem);
            let text = std::fs::read(list).map_err(|e| unreadable(e, list))?;
            let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            // Sorted once a list has a match: the test for "a directory of
            // the package" below is a binary search.
            let mut sorted: Option<Vec<&[u8]>> = None;
            for line in &lines {
                let Some(ps) = wanted.get(*line) else {
                    continue;
                };
                // A directory of the package (it lists paths beneath it): on
                // a merged-/usr system `/lib` is listed by every package with
                // files there, and is no package's symlink.
                let sorted = sorted.get_or_insert_with(|| {
                    let mut v = lines.clone();
                    v.sort_unstable();
                    v
                });
                let mut dir = line.to_vec();
                dir.push(b'/');
                let at = sorted.partition_point(|l| *l < dir.as_slice());
                if sorted.get(at).is_some_and(|l| l.starts_with(&dir)) {
                    continue;
                }
                // A package whose file another package (or the admin) diverted
                // owns it at the new name only; the diverter owns the old one.
                let moved = diversions
                    .iter()
                    .any(|(from, _, by)| from.as_slice() == *line && by != name);
                for (p, via) in ps {
                    if *via == moved {
                        out.entry((*p).clone())
                            .or_default()
                            .insert(name.to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// `(from, to, package)` triples of dpkg's diversions; `package` is
    /// `:` for a local diversion.
    fn diversions(&self) -> anyhow::Result<Vec<Diversion>> {
        let path = self.admin.join("diversions");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Failure::new(format!("{}: cannot read: {e}", path.display())).into())
            }
        };
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        Ok(lines
            .chunks_exact(3)
            .map(|c| {
                (
                    c[0].to_vec(),
                    c[1].to_vec(),
                    String::from_utf8_lossy(c[2]).into_owned(),
                )
            })
            .collect())
    }
}

/// The owner recorded in a manifest entry: several owners are joined with
/// `", "` as `dpkg -S` shows them.
pub fn join_owners(owners: &BTreeSet<String>) -> String {
    owners.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// The paths of the entries a package can own.
fn ownable_paths(m: &Manifest) -> Vec<&MPath> {
    m.entries
        .iter()
        .filter(|e| ownable(e))
        .map(|e| &e.path)
        .collect()
}

/// Writes each ownable entry's package into `m` (`record --packages`).
pub fn annotate(m: &mut Manifest, db: &Db) -> anyhow::Result<()> {
    let owners = db.owners(&ownable_paths(m))?;
    for e in &mut m.entries {
        e.package = owners.get(&e.path).map(join_owners);
    }
    Ok(())
}

/// Whether the manifest carries package names (it was recorded with
/// `--packages`, or annotated later).
pub fn annotated(m: &Manifest) -> bool {
    m.entries.iter().any(|e| e.package.is_some())
}

impl Report {
    /// Adds one file and the packages that own it (none: unowned).
    fn add<'a>(&mut self, path: &MPath, owners: impl Iterator<Item = &'a str>) {
        let mut owned = false;
        for n in owners {
            owned = true;
            self.packages
                .entry(n.to_string())
                .or_default()
                .push(path.clone());
        }
        if !owned {
            self.unowned.push(path.clone());
        }
    }
}

/// The report from the names stored in the manifest.
pub fn from_manifest(m: &Manifest) -> Report {
    let mut r = Report::default();
    for e in m.entries.iter().filter(|e| ownable(e)) {
        r.add(&e.path, e.package.iter().flat_map(|n| n.split(", ")));
    }
    r
}

/// The report from the host's dpkg database.
pub fn from_db(m: &Manifest, db: &Db) -> anyhow::Result<Report> {
    let paths = ownable_paths(m);
    let owners = db.owners(&paths)?;
    let mut r = Report::default();
    for p in paths {
        r.add(p, owners.get(p).into_iter().flatten().map(String::as_str));
    }
    Ok(r)
}

/// The package names of a manifest's entries, for `diff`.
pub fn names(m: &Manifest) -> BTreeSet<String> {
    from_manifest(m).packages.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_spellings_both_ways() {
        let aliases = vec![(b"/lib".to_vec(), b"/usr/lib".to_vec())];
        let s = spellings(b"/usr/lib/x/libc.so.6", &aliases);
        assert!(s.contains(&b"/lib/x/libc.so.6".to_vec()));
        let s = spellings(b"/lib/x", &aliases);
        assert!(s.contains(&b"/usr/lib/x".to_vec()));
        // Only whole components: /library is not /lib.
        assert_eq!(spellings(b"/library/x", &aliases).len(), 1);
    }

    #[test]
    fn lists_and_diversions_name_the_owner() {
        let t = tempfile::tempdir().unwrap();
        let info = t.path().join("info");
        std::fs::create_dir(&info).unwrap();
        std::fs::write(
            info.join("libfoo1:amd64.list"),
            "/.\n/usr\n/usr/lib/libfoo.so.1\n",
        )
        .unwrap();
        std::fs::write(
            info.join("bar.list"),
            "/usr/bin/bar\n/usr/lib/libfoo.so.1\n",
        )
        .unwrap();
        std::fs::write(info.join("orig.list"), "/usr/bin/tool\n").unwrap();
        std::fs::write(info.join("wrap.list"), "/usr/bin/tool\n").unwrap();
        std::fs::write(
            t.path().join("diversions"),
            "/usr/bin/tool\n/usr/bin/tool.real\nwrap\n",
        )
        .unwrap();
        let db = Db::at(t.path(), t.path()).unwrap();
        let p = |s: &str| MPath::new(s).unwrap();
        let (foo, bar, tool, real, none) = (
            p("/usr/lib/libfoo.so.1"),
            p("/usr/bin/bar"),
            p("/usr/bin/tool"),
            p("/usr/bin/tool.real"),
            p("/etc/hostname"),
        );
        let o = db.owners(&[&foo, &bar, &tool, &real, &none]).unwrap();
        let names = |p: &MPath| o.get(p).map(join_owners);
        assert_eq!(names(&foo).as_deref(), Some("bar, libfoo1"));
        assert_eq!(names(&bar).as_deref(), Some("bar"));
        assert_eq!(names(&tool).as_deref(), Some("wrap"));
        assert_eq!(names(&real).as_deref(), Some("orig"));
        assert_eq!(names(&none), None);
    }

    #[test]
    fn no_database_is_one_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let e = Db::at(&t.path().join("nope"), t.path()).err().unwrap();
        assert!(e.to_string().contains("no dpkg database"), "{e}");
    }
}
