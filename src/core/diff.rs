//! The `diff` command: what changed in a program's needs between two
//! manifests, as readable text or as JSON for tools.
//!
//! Only what says something about dependencies counts; the rules (which
//! header fields, content, temporary files, `/proc`) are documented in
//! `docs/ci.md` and must stay in step with [`compare`].

use std::borrow::Cow;
use std::collections::{btree_map, BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use regex::RegexSet;
use serde::Serialize;
use serde_json::{json, Value};

use crate::core::manifest::pathenc::MPath;
use crate::core::manifest::{Access, Class, Entry, Kind, Manifest, Op, Outcome};

/// What to leave out of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Entries whose encoded path matches any of these are left out.
    pub ignore: Option<RegexSet>,
    /// Leave out failed accesses unless the same operation on the same path
    /// succeeded in one of the two manifests (`diff --ignore-failed`).
    pub ignore_failed: bool,
    /// Also compare what the program created under the temporary
    /// directories (`diff --keep-temp`).
    pub keep_temp: bool,
    /// Also compare size and sha256 (`diff --content`).
    pub content: bool,
    /// Leave out the entries that rules inferred: compare only what the
    /// runs reached (`diff --ignore-inferred`).
    pub ignore_inferred: bool,
}

/// Directories whose program-created contents are left out by default.
pub const TEMP_DIRS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// A path present in only one of the manifests.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathChange {
    pub path: MPath,
    pub kind: Kind,
    pub class: Class,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub output: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    pub accesses: Vec<Access>,
}

/// One attribute of a path present in both manifests that differs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldChange {
    pub path: MPath,
    pub field: &'static str,
    pub old: Value,
    pub new: Value,
}

/// The results of one operation on one path, where they differ. An empty
/// `old` means the operation is new; an empty `new` that it is gone.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccessChange {
    pub path: MPath,
    pub op: Op,
    pub old: Vec<Outcome>,
    pub new: Vec<Outcome>,
}

/// A header field that counts (see `docs/ci.md`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeaderChange {
    pub field: &'static str,
    pub old: Value,
    pub new: Value,
}

/// Every difference between two manifests, each list sorted. Its JSON form
/// is [`Report::to_json`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Packages only the new (added) or the old (removed) manifest's files
    /// come from; compared when both carry package names
    /// (`record --packages`).
    pub packages_added: Vec<String>,
    pub packages_removed: Vec<String>,
    pub command: Vec<HeaderChange>,
    pub warnings_added: Vec<String>,
    pub warnings_removed: Vec<String>,
    pub added: Vec<PathChange>,
    pub removed: Vec<PathChange>,
    pub changed: Vec<FieldChange>,
    pub accesses: Vec<AccessChange>,
    /// Size and sha256 changes; only filled with [`Options::content`].
    pub content: Vec<FieldChange>,
}

impl Report {
    /// True when nothing that counts differs.
    pub fn is_equivalent(&self) -> bool {
        self.count() == 0
    }

    pub fn count(&self) -> usize {
        self.packages_added.len()
            + self.packages_removed.len()
            + self.command.len()
            + self.warnings_added.len()
            + self.warnings_removed.len()
            + self.added.len()
            + self.removed.len()
            + self.changed.len()
            + self.accesses.len()
            + self.content.len()
    }

    /// The documented JSON form (`docs/ci.md`), fields in that order.
    pub fn to_json<'a>(&'a self, old: &'a str, new: &'a str) -> impl Serialize + 'a {
        #[derive(Serialize)]
        struct Warnings<'a> {
            added: &'a [String],
            removed: &'a [String],
        }
        #[derive(Serialize)]
        struct Packages<'a> {
            added: &'a [String],
            removed: &'a [String],
        }
        #[derive(Serialize)]
        struct Json<'a> {
            old: &'a str,
            new: &'a str,
            equivalent: bool,
            packages: Packages<'a>,
            command: &'a [HeaderChange],
            warnings: Warnings<'a>,
            added: &'a [PathChange],
            removed: &'a [PathChange],
            changed: &'a [FieldChange],
            accesses: &'a [AccessChange],
            content: &'a [FieldChange],
        }
        Json {
            old,
            new,
            equivalent: self.is_equivalent(),
            packages: Packages {
                added: &self.packages_added,
                removed: &self.packages_removed,
            },
            command: &self.command,
            warnings: Warnings {
                added: &self.warnings_added,
                removed: &self.warnings_removed,
            },
            added: &self.added,
            removed: &self.removed,
            changed: &self.changed,
            accesses: &self.accesses,
            content: &self.content,
        }
    }

    /// The readable form: one line per difference, grouped, sorted, marked
    /// `+` (new), `-` (gone) or `~` (changed). Prints nothing when equivalent.
    pub fn write_text(&self, w: &mut dyn Write, color: bool) -> std::io::Result<()> {
        let paint = |code: &str, s: String| paint(color, code, s);
        let mut first = true;
        for (title, lines) in self.text_groups(color) {
            if lines.is_empty() {
                continue;
            }
            if !first {
                writeln!(w)?;
            }
            first = false;
            writeln!(w, "{}", paint("1", format!("{title} ({}):", lines.len())))?;
            for l in lines {
                writeln!(w, "{l}")?;
            }
        }
        if !first {
            writeln!(w)?;
            let packages = self.packages_added.len() + self.packages_removed.len();
            writeln!(
                w,
                "{} difference{}: {}{} added, {} removed, {} metadata, {} accesses, {} command/warnings, {} content",
                self.count(),
                if self.count() == 1 { "" } else { "s" },
                if packages > 0 { format!("{packages} packages, ") } else { String::new() },
                self.added.len(),
                self.removed.len(),
                self.changed.len(),
                self.accesses.len(),
                self.command.len() + self.warnings_added.len() + self.warnings_removed.len(),
                self.content.len(),
            )?;
        }
        Ok(())
    }

    /// The text report's groups: a title and its lines each.
    fn text_groups(&self, color: bool) -> Vec<(&'static str, Vec<String>)> {
        let paint = |code: &str, s: String| paint(color, code, s);
        let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();

        // What a reviewer understands first: which packages came or went.
        let mut lines = Vec::new();
        for p in &self.packages_added {
            lines.push(paint("32", format!("+ new package: {}", text_safe(p))));
        }
        for p in &self.packages_removed {
            lines.push(paint("31", format!("- package gone: {}", text_safe(p))));
        }
        groups.push(("Packages", lines));

        let mut lines = Vec::new();
        for c in &self.command {
            lines.push(paint(
                "33",
                format!(
                    "~ {}: {} -> {}",
                    c.field,
                    show_value(&c.old),
                    show_value(&c.new)
                ),
            ));
        }
        for w in &self.warnings_added {
            lines.push(paint("32", format!("+ warning: {}", text_safe(w))));
        }
        for w in &self.warnings_removed {
            lines.push(paint("31", format!("- warning: {}", text_safe(w))));
        }
        groups.push(("Command and warnings", lines));

        let summary = |p: &PathChange| {
            let mut s = format!("{}  {}", text_path(&p.path), kind_name(p.kind));
            if p.created {
                s.push_str("  created");
            } else if p.output {
                s.push_str("  output");
            }
            if !p.accesses.is_empty() {
                s.push_str("  ");
                s.push_str(&show_accesses(&p.accesses));
            }
            s
        };
        groups.push((
            "Paths added",
            self.added
                .iter()
                .map(|p| paint("32", format!("+ {}", summary(p))))
                .collect(),
        ));
        groups.push((
            "Paths removed",
            self.removed
                .iter()
                .map(|p| paint("31", format!("- {}", summary(p))))
                .collect(),
        ));
        let field_line = |c: &FieldChange| {
            paint(
                "33",
                format!(
                    "~ {}  {}: {} -> {}",
                    text_path(&c.path),
                    c.field,
                    show_value(&c.old),
                    show_value(&c.new)
                ),
            )
        };
        groups.push((
            "Metadata changed",
            self.changed.iter().map(field_line).collect(),
        ));
        groups.push((
            "Accesses changed",
            self.accesses
                .iter()
                .map(|a| {
                    let path = text_path(&a.path);
                    let op = a.op.name();
                    if a.old.is_empty() {
                        paint("32", format!("+ {path}  {op} {}", join(&a.new)))
                    } else if a.new.is_empty() {
                        paint("31", format!("- {path}  {op} {}", join(&a.old)))
                    } else {
                        paint(
                            "33",
                            format!("~ {path}  {op}: {} -> {}", join(&a.old), join(&a.new)),
                        )
                    }
                })
                .collect(),
        ));
        groups.push((
            "Content changed",
            self.content.iter().map(field_line).collect(),
        ));
        groups
    }
}

/// `s` in the ANSI colour `code` when `color` is set.
fn paint(color: bool, code: &str, s: String) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s
    }
}

fn join(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(super::manifest::Outcome::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn show_accesses(accesses: &[Access]) -> String {
    accesses
        .iter()
        .map(|a| {
            if a.result.is_ok() {
                a.op.name().to_string()
            } else {
                format!("{}:{}", a.op.name(), a.result)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Chardev => "chardev",
        Kind::Blockdev => "blockdev",
        Kind::Socket => "socket",
        Kind::Fifo => "fifo",
        Kind::Missing => "missing",
    }
}

/// Escapes control characters as `\xNN`, so that a hostile path can neither
/// break the line structure nor send terminal escapes. The result still
/// decodes to the same bytes (see `pathenc`).
fn text_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if ch.is_control() {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            out.push(ch);
        }
    }
    out
}

fn text_path(p: &MPath) -> String {
    text_safe(&p.encoded())
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::String(s) => text_safe(s),
        other => text_safe(&other.to_string()),
    }
}

/// Compares two manifests under `opts`.
pub fn compare(old: &Manifest, new: &Manifest, opts: &Options) -> Report {
    let mut report = Report::default();

    // Header: generator, argv and cwd say nothing about what the program
    // needs (the checkout path differs between CI and a laptop); the user
    // and the exit status do.
    let (oc, nc) = (&old.command, &new.command);
    let headers = [
        ("uid", json!(oc.uid), json!(nc.uid)),
        ("gid", json!(oc.gid), json!(nc.gid)),
        ("exit_status", json!(oc.exit_status), json!(nc.exit_status)),
        ("set_uids", json!(oc.set_uids), json!(nc.set_uids)),
        ("set_gids", json!(oc.set_gids), json!(nc.set_gids)),
    ];
    for (field, old, new) in headers {
        if old != new {
            report.command.push(HeaderChange { field, old, new });
        }
    }
    // Unknown on one side (an older recording) is no change.
    if let (Some(o), Some(n)) = (oc.binds_privileged_port, nc.binds_privileged_port) {
        if o != n {
            report.command.push(HeaderChange {
                field: "binds_privileged_port",
                old: json!(o),
                new: json!(n),
            });
        }
    }
    // Trees kept whole, by path and digest.
    if old.trees != new.trees {
        report.command.push(HeaderChange {
            field: "trees",
            old: json!(old.trees),
            new: json!(new.trees),
        });
    }
    let ow: BTreeSet<&String> = old.warnings.iter().collect();
    let nw: BTreeSet<&String> = new.warnings.iter().collect();
    report.warnings_added = nw.difference(&ow).map(|s| (*s).clone()).collect();
    report.warnings_removed = ow.difference(&nw).map(|s| (*s).clone()).collect();

    let packages = crate::core::packages::annotated(old) && crate::core::packages::annotated(new);
    if packages {
        let (op, np) = (
            crate::core::packages::names(old),
            crate::core::packages::names(new),
        );
        report.packages_added = np.difference(&op).cloned().collect();
        report.packages_removed = op.difference(&np).cloned().collect();
    }

    let old_index: HashMap<&MPath, &Entry> = old.entries.iter().map(|e| (&e.path, e)).collect();
    let new_index: HashMap<&MPath, &Entry> = new.entries.iter().map(|e| (&e.path, e)).collect();
    let old_view = view(old, &new_index, opts);
    let new_view = view(new, &old_index, opts);

    for (path, o) in &old_view {
        match new_view.get(path) {
            None => report.removed.push(path_change(path, o)),
            Some(n) => {
                compare_entry(path, o, n, opts, &mut report);
                if packages && o.entry.package != n.entry.package {
                    report.changed.push(FieldChange {
                        path: path.clone().into_owned(),
                        field: "package",
                        old: json!(o.entry.package),
                        new: json!(n.entry.package),
                    });
                }
            }
        }
    }
    for (path, n) in &new_view {
        if !old_view.contains_key(path) {
            report.added.push(path_change(path, n));
        }
    }
    report.added.sort_by(|a, b| a.path.cmp(&b.path));
    report
}

fn path_change(path: &MPath, v: &Viewed) -> PathChange {
    let mut accesses = v.accesses.to_vec();
    accesses.sort();
    accesses.dedup();
    PathChange {
        path: path.clone(),
        kind: v.entry.kind,
        class: v.entry.class,
        output: v.entry.output,
        created: v.entry.created,
        accesses,
    }
}

fn compare_entry(path: &MPath, ov: &Viewed, nv: &Viewed, opts: &Options, report: &mut Report) {
    let (o, n) = (ov.entry, nv.entry);
    let mut field = |field: &'static str, old: Value, new: Value, content: bool| {
        if old != new {
            let c = FieldChange {
                path: path.clone(),
                field,
                old,
                new,
            };
            if content {
                report.content.push(c);
            } else {
                report.changed.push(c);
            }
        }
    };
    field("kind", json!(o.kind), json!(n.kind), false);
    field("class", json!(o.class), json!(n.class), false);
    // A /proc link such as /proc/self points at a pid, which differs on
    // every run.
    if o.class != Class::Proc || n.class != Class::Proc {
        field("target", json!(o.target), json!(n.target), false);
    }
    field(
        "mode",
        json!(o.mode.map(|m| m.to_string())),
        json!(n.mode.map(|m| m.to_string())),
        false,
    );
    field("uid", json!(o.uid), json!(n.uid), false);
    field("gid", json!(o.gid), json!(n.gid), false);
    field("major", json!(o.major), json!(n.major), false);
    field("minor", json!(o.minor), json!(n.minor), false);
    field("output", json!(o.output), json!(n.output), false);
    field("created", json!(o.created), json!(n.created), false);
    if opts.content {
        field("size", json!(o.size), json!(n.size), true);
        field("sha256", json!(o.sha256), json!(n.sha256), true);
    }

    let ops = |v: &Viewed| {
        let mut m: BTreeMap<Op, BTreeSet<Outcome>> = BTreeMap::new();
        for a in v.accesses.iter() {
            m.entry(a.op).or_default().insert(a.result.clone());
        }
        m
    };
    let (oo, no) = (ops(ov), ops(nv));
    let all: BTreeSet<Op> = oo.keys().chain(no.keys()).copied().collect();
    let empty = BTreeSet::new();
    for op in all {
        let a = oo.get(&op).unwrap_or(&empty);
        let b = no.get(&op).unwrap_or(&empty);
        if a != b {
            report.accesses.push(AccessChange {
                path: path.clone(),
                op,
                old: a.iter().cloned().collect(),
                new: b.iter().cloned().collect(),
            });
        }
    }
}

/// True for an entry the program made under a temporary directory: a file
/// it created or wrote, a directory it made, or a failed attempt to create
/// one (mkstemp retrying after EEXIST). Files it only read stay compared.
fn is_own_temp(e: &Entry) -> bool {
    let under_temp = TEMP_DIRS.iter().any(|d| {
        let b = e.path.as_bytes();
        b.len() > d.len() && b.starts_with(d.as_bytes()) && b[d.len()] == b'/'
    });
    under_temp
        && (e.output
            || e.accesses
                .iter()
                .any(|a| a.op.is_output() && a.result.is_ok())
            || (e.accesses.iter().all(|a| !a.result.is_ok())
                && e.accesses.iter().any(|a| a.op.is_output())))
}

/// The key under which a `/proc` entry of one process is compared: pids and
/// thread ids differ on every run, so `/proc/1234/stat` is compared as
/// `/proc/[pid]/stat` and `/proc/1234/task/1240` as `/proc/[pid]/task/[tid]`.
fn proc_key(e: &Entry) -> Option<MPath> {
    if e.class != Class::Proc {
        return None;
    }
    let comps: Vec<&[u8]> = e.path.components().collect();
    if comps.len() < 2 || comps[0] != b"proc" {
        return None;
    }
    let number = |c: &[u8]| !c.is_empty() && c.iter().all(u8::is_ascii_digit);
    let mut changed = false;
    let mut key = Vec::with_capacity(e.path.as_bytes().len());
    for (i, c) in comps.iter().enumerate() {
        key.push(b'/');
        if i == 1 && number(c) {
            key.extend_from_slice(b"[pid]");
            changed = true;
        } else if i == 3 && comps[2] == b"task" && number(c) {
            key.extend_from_slice(b"[tid]");
            changed = true;
        } else {
            key.extend_from_slice(c);
        }
    }
    if changed {
        MPath::new(key).ok()
    } else {
        None
    }
}

/// An entry taking part in a comparison, with its filtered accesses
/// (borrowed when nothing was filtered: manifests can be large).
struct Viewed<'a> {
    entry: &'a Entry,
    accesses: Cow<'a, [Access]>,
}

/// The entries of `m` that take part in the comparison, with their accesses
/// filtered. `other` is the other manifest, for `--ignore-failed`.
///
/// Leaving out an entry can leave its ancestors behind with nothing to say:
/// a directory recorded only because something beneath it was used. Such an
/// entry goes too when nothing beneath it remains, as does an entry whose
/// accesses were all filtered away.
///
/// Entries of one process under `/proc` are keyed by [`proc_key`].
fn view<'a>(
    m: &'a Manifest,
    other: &HashMap<&MPath, &Entry>,
    opts: &Options,
) -> BTreeMap<Cow<'a, MPath>, Viewed<'a>> {
    let mut sorted: Vec<&Entry> = m.entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    // Forward pass: which entries a rule drops. Everything beneath a
    // temporary directory the program made is its own too.
    let mut dropped = vec![false; sorted.len()];
    let mut temp_root: Option<&MPath> = None;
    for (i, e) in sorted.iter().enumerate() {
        if let Some(root) = temp_root {
            if e.path.starts_with(root) {
                dropped[i] = true;
                continue;
            }
            temp_root = None;
        }
        if opts
            .ignore
            .as_ref()
            .is_some_and(|set| set.is_match(&e.path.encoded()))
            || (opts.ignore_inferred && e.inferred.is_some())
        {
            dropped[i] = true;
        } else if !opts.keep_temp && is_own_temp(e) {
            dropped[i] = true;
            temp_root = Some(&e.path);
        }
    }

    // Backward pass: descendants come right after their ancestor in
    // component order, so walking backwards sees them first, and the last
    // kept path tells whether anything beneath the current one was kept.
    let mut out = BTreeMap::new();
    let mut last_kept: Option<&MPath> = None;
    for i in (0..sorted.len()).rev() {
        if dropped[i] {
            continue;
        }
        let e = sorted[i];
        let had_descendants = sorted
            .get(i + 1)
            .is_some_and(|next| next.path.starts_with(&e.path));
        let kept_descendants = last_kept.is_some_and(|k| k.starts_with(&e.path));
        let mut accesses = Cow::Borrowed(&e.accesses[..]);
        if opts.ignore_failed {
            let other_entry = other.get(&e.path);
            let noise = |a: &Access| {
                !a.result.is_ok() && !e.has_ok(a.op) && !other_entry.is_some_and(|o| o.has_ok(a.op))
            };
            if e.accesses.iter().any(noise) {
                accesses = Cow::Owned(e.accesses.iter().filter(|a| !noise(a)).cloned().collect());
            }
        }
        let keep =
            !accesses.is_empty() || kept_descendants || (e.accesses.is_empty() && !had_descendants);
        if keep {
            last_kept = Some(&e.path);
            match proc_key(e) {
                None => {
                    out.insert(Cow::Borrowed(&e.path), Viewed { entry: e, accesses });
                }
                // Several pids under one key: one entry with all accesses.
                Some(key) => match out.entry(Cow::Owned(key)) {
                    btree_map::Entry::Vacant(v) => {
                        v.insert(Viewed { entry: e, accesses });
                    }
                    btree_map::Entry::Occupied(mut o) => {
                        let v = o.get_mut();
                        let mut all = v.accesses.to_vec();
                        all.extend(accesses.iter().cloned());
                        v.accesses = Cow::Owned(all);
                    }
                },
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: Kind, accesses: &[(Op, &str)]) -> Entry {
        let mut e = Entry::new(MPath::new(path).unwrap(), kind, Class::Regular);
        e.accesses = accesses
            .iter()
            .map(|(op, r)| Access {
                op: *op,
                result: Outcome::parse(r).unwrap(),
            })
            .collect();
        e
    }

    fn manifest(entries: Vec<Entry>) -> Manifest {
        Manifest {
            schema: 1,
            generator: "test".into(),
            command: crate::core::manifest::CommandInfo {
                argv: vec![],
                cwd: MPath::root(),
                uid: 0,
                gid: 0,
                exit_status: Some(0),
                set_uids: vec![],
                set_gids: vec![],
                binds_privileged_port: None,
            },
            warnings: vec![],
            trees: vec![],
            entries,
        }
    }

    #[test]
    fn ancestors_of_left_out_entries_go_too() {
        let m = manifest(vec![
            entry("/", Kind::Dir, &[]),
            entry("/tmp", Kind::Dir, &[]),
            entry("/tmp/tmpa8Zq1x", Kind::File, &[(Op::Create, "ok")]),
            entry("/etc", Kind::Dir, &[]),
            entry("/etc/x", Kind::File, &[(Op::Read, "ok")]),
            entry("/lonely", Kind::Dir, &[]),
        ]);
        let v = view(&m, &HashMap::new(), &Options::default());
        let kept: Vec<String> = v.keys().map(|p| p.encoded()).collect();
        assert_eq!(kept, ["/", "/etc", "/etc/x", "/lonely"]);
        let keep_temp = Options {
            keep_temp: true,
            ..Options::default()
        };
        assert_eq!(view(&m, &HashMap::new(), &keep_temp).len(), 6);
    }

    #[test]
    fn ignore_failed_keeps_changes_from_success() {
        let old = manifest(vec![entry("/a", Kind::File, &[(Op::Read, "ok")])]);
        let new = manifest(vec![entry("/a", Kind::Missing, &[(Op::Read, "ENOENT")])]);
        let opts = Options {
            ignore_failed: true,
            ..Options::default()
        };
        let r = compare(&old, &new, &opts);
        assert_eq!(r.accesses.len(), 1, "{r:?}");
        assert_eq!(r.changed.len(), 1, "{r:?}");
    }

    #[test]
    fn text_escapes_control_characters() {
        assert_eq!(text_safe("/a\nb\x1b[31m"), "/a\\x0ab\\x1b[31m");
        assert_eq!(
            crate::core::manifest::pathenc::decode("/a\\x0ab").unwrap(),
            b"/a\nb"
        );
        assert_eq!(text_safe("/\u{9b}"), "/\\xc2\\x9b");
        assert_eq!(
            crate::core::manifest::pathenc::decode("/\\xc2\\x9b").unwrap(),
            "/\u{9b}".as_bytes()
        );
    }
}
