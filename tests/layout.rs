//! The shape of the source, held by tests: how many files the two most
//! common changes touch, counted from the code, as docs/design.md states.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every source file under src/, with its text, paths relative to src/.
fn tree() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, text)
        })
        .collect()
}

/// Whether `text` names `prefix::name` as a whole word.
fn names(text: &str, prefix: &str, name: &str) -> bool {
    let needle = format!("{prefix}::{name}");
    text.match_indices(&needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The variants of `enum_head` ("pub enum Sys {") in `text`.
fn variants(text: &str, enum_head: &str) -> Vec<String> {
    let body = &text[text.find(enum_head).expect(enum_head) + enum_head.len()..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with('#'))
        .filter_map(|l| {
            let name: String = l
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            name.starts_with(|c: char| c.is_ascii_uppercase())
                .then_some(name)
        })
        .collect()
}

/// The files that every one of `items` is named in: what a new one must
/// touch, since every existing one is there.
fn touched_by_every(tree: &[(String, String)], prefix: &str, items: &[String]) -> BTreeSet<String> {
    items
        .iter()
        .map(|v| {
            tree.iter()
                .filter(|(_, t)| names(t, prefix, v))
                .map(|(f, _)| f.clone())
                .collect::<BTreeSet<_>>()
        })
        .reduce(|a, b| a.intersection(&b).cloned().collect())
        .unwrap()
}

fn design_row(start: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/design.md"))
        .unwrap();
    doc.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("docs/design.md has no row {start:?}"))
        .to_string()
}

#[test]
fn a_new_syscall_touches_the_table_and_the_decoder() {
    let tree = tree();
    let arch = &tree
        .iter()
        .find(|(f, _)| f == "core/trace/arch.rs")
        .unwrap()
        .1;
    let sys = variants(arch, "pub enum Sys {");
    assert!(sys.len() > 50, "Sys variants not found: {sys:?}");
    let every = touched_by_every(&tree, "Sys", &sys);
    assert_eq!(
        every,
        BTreeSet::from(["core/trace/arch.rs".into(), "core/trace/decode.rs".into()]),
        "a new syscall would touch these files"
    );
    let row = design_row("| a new traced syscall |");
    assert!(row.contains("(2;"), "docs/design.md says otherwise: {row}");
}

#[test]
fn a_new_op_touches_its_row_and_the_decoder() {
    let tree = tree();
    let manifest = &tree
        .iter()
        .find(|(f, _)| f == "core/manifest/op.rs")
        .unwrap()
        .1;
    // The ops! table's rows: `Name => "name", m(...)`.
    let table = &manifest[manifest.find("ops! {").unwrap()..];
    let table = &table[..table.find("\n}").unwrap()];
    let ops: Vec<String> = table
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(" => \"")?;
            (!rest.is_empty()).then(|| name.to_string())
        })
        .collect();
    assert!(ops.len() > 20, "ops! rows not found: {ops:?}");
    // The ops a traced call produces (the rest come from resolution).
    let decode = &tree
        .iter()
        .find(|(f, _)| f == "core/trace/decode.rs")
        .unwrap()
        .1;
    let traced: Vec<String> = ops
        .iter()
        .filter(|o| names(decode, "Op", o))
        .cloned()
        .collect();
    assert!(traced.len() > 20);
    let every = touched_by_every(&tree, "Op", &traced);
    assert_eq!(
        every,
        BTreeSet::from(["core/trace/decode.rs".into()]),
        "besides its row in core/manifest/op.rs, a new op would touch these files"
    );
    let row = design_row("| a new traced syscall |");
    assert!(
        row.contains("core/manifest/op.rs") && row.contains(": 3)"),
        "docs/design.md says otherwise: {row}"
    );
}

/// No source file grows into a god object: each stays at or under 800
/// lines, except the decode table, which is one long match by design.
#[test]
fn no_source_file_is_over_800_lines() {
    const EXEMPT: [&str; 1] = ["core/trace/decode.rs"];
    let over: Vec<String> = tree()
        .iter()
        .filter(|(f, _)| !EXEMPT.contains(&f.as_str()))
        .filter_map(|(f, t)| {
            let n = t.lines().count();
            (n > 800).then(|| format!("src/{f}: {n} lines"))
        })
        .collect();
    assert!(over.is_empty(), "split by job: {over:#?}");
}
