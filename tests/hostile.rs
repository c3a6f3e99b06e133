//! Hostile input (issue 7): manifests and jails made to do harm. Each case
//! runs the real binary and proves two things: the error (if any) is one
//! clear line with the documented exit status, and nothing outside the jail
//! changed (a canary directory, snapshotted before and after).
//!
//! Already covered elsewhere, and not repeated here:
//! - tests/materialize.rs: a manifest symlink with a file beneath it
//!   (`manifest_symlink_then_file_beneath_it_writes_nothing`), `JAIL/etc -> /`,
//!   `JAIL/usr/lib -> outside`, a FIFO where a file goes, a non-writable
//!   directory, a read-only mount, mount points in the jail, `/` as the jail,
//!   the basic device refusals (`refuses_dangerous_devices_unless_allowed`),
//!   and the first manifest errors;
//! - src/core/manifest/mod.rs and src/core/jail/plan.rs unit tests;
//! - tests/fuzz_props.rs: arbitrary and mutated bytes never panic the parser,
//!   `diff` or `merge`, and errors are one line;
//! - tests/diff.rs: `diff` exits 2 on bad JSON, a newer schema, a missing
//!   file or a relative path.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

const HEADER: &str = r#""schema": 1, "generator": "test", "command": {"argv": ["/bin/true"], "cwd": "/", "uid": 0, "gid": 0}"#;

/// A manifest with one entry per line (see [`entry_line`]), so errors can be
/// checked for their exact line.
fn manifest_lines(entries: &[String]) -> String {
    format!(
        "{{\n{HEADER},\n\"entries\": [\n{}\n]}}\n",
        entries.join(",\n")
    )
}

fn manifest(entries: &[Value]) -> String {
    let lines: Vec<String> = entries
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    manifest_lines(&lines)
}

/// The line of entry `i` in [`manifest_lines`].
fn entry_line(i: usize) -> usize {
    i + 4
}

fn e_dir(p: &str) -> Value {
    json!({"path": p, "kind": "dir", "class": "regular", "mode": "0755"})
}

fn e_file(p: &str) -> Value {
    json!({"path": p, "kind": "file", "class": "regular"})
}

fn e_link(p: &str, target: &str) -> Value {
    json!({"path": p, "kind": "symlink", "class": "regular", "target": target})
}

fn e_dev(p: &str, kind: &str, major: u32, minor: u32) -> Value {
    json!({"path": p, "kind": kind, "class": "dev", "mode": "0666",
           "uid": 0, "gid": 0, "major": major, "minor": minor})
}

fn s(p: &Path) -> String {
    p.to_str().expect("test paths are UTF-8").to_string()
}

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// Peak resident set size of the process, in KiB.
    max_rss_kib: u64,
}

/// Runs `cmd` with stdout and stderr captured in files, kills it (and fails)
/// after `secs`, and returns its exit status and peak memory.
fn run(mut cmd: Command, secs: u64) -> Run {
    let dir = common::tempdir();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (code, max_rss_kib) = loop {
        if let Some(r) = rusage::try_wait(child.id()) {
            break r;
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = rusage::try_wait(child.id());
            panic!(
                "{cmd:?}: still running after {secs}s\nstderr:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Reaped above; dropping a Child never waits, so there is no double wait.
    drop(child);
    Run {
        code,
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
        max_rss_kib,
    }
}

/// The one place this file needs `unsafe`: `wait4`, which reports the
/// resource usage of exactly one child (std's `wait` does not, and
/// `RUSAGE_CHILDREN` would mix in every other test's children).
mod rusage {
    /// Reaps `pid` if it has exited: (exit code or 128+signal, peak RSS KiB).
    pub fn try_wait(pid: u32) -> Option<(i32, u64)> {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain integers, for which all-zero is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 only writes the two locals passed by pointer, which
        // live for the whole call; pid is our own child, not yet reaped.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut ru) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == 0 {
            return None;
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        // ru_maxrss is in KiB on Linux.
        Some((code, ru.ru_maxrss as u64))
    }
}

fn jailtrace(args: &[&str]) -> Command {
    let mut c = common::jailtrace();
    c.args(args);
    c
}

/// `jailtrace ARGS` with its address space limited to 1 GiB, so that a
/// regression that reads an endless input fails the test with an allocation
/// error instead of exhausting the machine's memory.
fn jailtrace_limited(args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "ulimit -v 1048576 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_jailtrace"))
        .args(args);
    c
}

fn materialize(extra: &[&str], m: &Path, jail: &Path) -> Run {
    let mut c = jailtrace(&["materialize"]);
    c.args(extra).arg(m).arg(jail);
    run(c, 120)
}

fn diff(a: &Path, b: &Path) -> Run {
    let mut c = jailtrace(&["diff"]);
    c.arg(a).arg(b);
    run(c, 120)
}

/// Outside the jail: a directory with a file, a subdirectory and a symlink,
/// which hostile manifests and jails point at. [`Canary::check`] proves that
/// nothing in it changed, not even a ctime.
struct Canary {
    dir: PathBuf,
    before: BTreeMap<PathBuf, common::Node>,
}

impl Canary {
    fn new(parent: &Path) -> Canary {
        let dir = parent.join("canary");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("keep"), "canary\n").unwrap();
        std::fs::write(dir.join("sub/deep"), "deep canary\n").unwrap();
        std::os::unix::fs::symlink("keep", dir.join("link")).unwrap();
        let before = common::snapshot(&dir);
        Canary { dir, before }
    }

    fn check(&self, what: &str) {
        assert_eq!(
            self.before,
            common::snapshot(&self.dir),
            "{what}: something outside the jail changed"
        );
    }
}

/// Asserts a refusal: exit `code`, exactly one line on stderr that starts
/// with `jailtrace: ` and contains every `want`, and nothing on stdout.
fn assert_one_line(r: &Run, code: i32, wants: &[&str], what: &str) {
    assert_eq!(
        r.code, code,
        "{what}: exit status\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "{what}: not one line: {:?}",
        r.stderr
    );
    assert!(
        r.stderr.starts_with("jailtrace: "),
        "{what}: {:?}",
        r.stderr
    );
    for w in wants {
        assert!(r.stderr.contains(w), "{what}: {w:?} not in {:?}", r.stderr);
    }
    assert_eq!(r.stdout, "", "{what}: output despite the error");
}

/// Feeds a bad manifest to `materialize` (exit 1, no jail created) and to
/// `diff` on either side of a good one (exit 2), expecting one line that
/// names the file and contains `wants`.
fn refused_everywhere(dir: &Path, canary: &Canary, name: &str, text: &[u8], wants: &[&str]) {
    let bad = write(dir, name, text);
    let good = write(dir, "good.json", manifest(&[e_link("/a", "b")]));
    let jail = dir.join("jail");
    let mut wants: Vec<&str> = wants.to_vec();
    let shown = s(&bad);
    wants.push(&shown);
    let r = materialize(&[], &bad, &jail);
    assert_one_line(&r, 1, &wants, &format!("materialize {name}"));
    assert!(!jail.exists(), "{name}: the jail was created");
    let r = materialize(&["--dry-run"], &bad, &jail);
    assert_one_line(&r, 1, &wants, &format!("materialize --dry-run {name}"));
    for (a, b) in [(&good, &bad), (&bad, &good)] {
        let r = diff(a, b);
        assert_one_line(&r, 2, &wants, &format!("diff {name}"));
    }
    canary.check(name);
}

fn line_col(line: usize) -> String {
    format!("at line {line} column ")
}

// ------------------------------------------------------- broken manifests

#[test]
fn truncated_and_malformed_json_is_one_line_with_its_position() {
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let good = manifest(&[
        e_dir("/etc"),
        e_link("/etc/a", "b"),
        json!({"path": "/etc/f", "kind": "file", "class": "regular", "mode": "0644",
               "accesses": [{"op": "read", "result": "ok"}]}),
    ]);
    // Truncated anywhere: the error is at the end of what is there.
    for cut in [0, 1, good.len() / 4, good.len() / 2, good.len() - 3] {
        let text = &good[..cut];
        let line = text.matches('\n').count() + 1;
        refused_everywhere(
            t.path(),
            &c,
            &format!("cut{cut}.json"),
            text.as_bytes(),
            &["invalid manifest", &line_col(line), "EOF while parsing"],
        );
    }
    // (text, line of the error, reason)
    let cases: Vec<(Vec<u8>, usize, &str)> = vec![
        (
            good.replace("\n]}", ",\n]}").into_bytes(),
            7,
            "expected value",
        ),
        (
            good.replace("\"/etc\"", "'/etc'").into_bytes(),
            4,
            "expected value",
        ),
        (
            good.replace("\"kind\":\"dir\"", "\"kind\" \"dir\"")
                .into_bytes(),
            4,
            "expected `:`",
        ),
        (format!("{good}}}").into_bytes(), 8, "trailing characters"),
        (
            good.replace("\"b\"", "\"b\u{1}\"").into_bytes(),
            5,
            "control character",
        ),
        (b"\x7fELF\x02\x01\x01\0\0\0".to_vec(), 1, "expected value"),
        (b"[1, 2, 3]\n".to_vec(), 1, "invalid"),
    ];
    for (i, (text, line, want)) in cases.iter().enumerate() {
        assert_ne!(text, good.as_bytes(), "case {i} changed nothing");
        refused_everywhere(
            t.path(),
            &c,
            &format!("bad{i}.json"),
            text,
            &["invalid manifest", &line_col(*line), want],
        );
    }
    // Invalid UTF-8 in a string, as raw bytes.
    let mut raw = good.clone().into_bytes();
    let at = good.find("\"b\"").unwrap() + 1;
    raw[at] = 0xff;
    refused_everywhere(
        t.path(),
        &c,
        "utf8.json",
        &raw,
        &[&line_col(5), "invalid unicode"],
    );
    // Nesting a million deep: an error, not a stack overflow.
    let deep = format!(
        "{{\n{HEADER},\n\"warnings\": {}{},\n\"entries\": []}}",
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    refused_everywhere(t.path(), &c, "deep.json", deep.as_bytes(), &[&line_col(3)]);
    let deep = format!(
        "{{\"x\": {}{}, \"schema\": 1}}",
        "{\"a\":".repeat(300_000),
        "1}".repeat(300_000)
    );
    refused_everywhere(t.path(), &c, "deep2.json", deep.as_bytes(), &[&line_col(1)]);
}

#[test]
fn wrong_types_are_one_line_with_the_entrys_line() {
    let t = common::tempdir();
    let c = Canary::new(t.path());
    // Entry 1 of each manifest is the bad one.
    let entries = |bad: &str| {
        vec![
            r#"{"path": "/ok", "kind": "symlink", "class": "regular", "target": "x"}"#.to_string(),
            bad.to_string(),
        ]
    };
    // (the bad entry, the expected reason)
    let cases = [
        (r#"42"#, "invalid type: integer `42`, expected struct Entry"),
        (
            r#"{"path": 7, "kind": "dir", "class": "regular"}"#,
            "invalid type: integer `7`, expected a string",
        ),
        (
            r#"{"path": "/a", "kind": "weird", "class": "regular"}"#,
            "unknown variant `weird`",
        ),
        // serde_json's words for a number where an enum's name belongs.
        (
            r#"{"path": "/a", "kind": 3, "class": "regular"}"#,
            "expected value",
        ),
        (
            r#"{"path": "/a", "kind": "dir", "class": "home"}"#,
            "unknown variant `home`",
        ),
        (
            r#"{"path": "/a", "kind": "dir", "class": "regular", "mode": 755}"#,
            "invalid type: integer `755`",
        ),
        (
            r#"{"path": "/a", "kind": "dir", "class": "regular", "mode": "0999"}"#,
            "bad mode \"0999\"",
        ),
        (
            r#"{"path": "/a", "kind": "dir", "class": "regular", "mode": "77777"}"#,
            "bad mode \"77777\"",
        ),
        (
            r#"{"path": "/a", "kind": "dir", "class": "regular", "uid": "0"}"#,
            "invalid type: string \"0\", expected u32",
        ),
        (
            r#"{"path": "/a", "kind": "dir", "class": "regular", "uid": -1}"#,
            "invalid value: integer `-1`, expected u32",
        ),
        (
            r#"{"path": "/a", "kind": "dir", "class": "regular", "gid": 4294967296}"#,
            "expected u32",
        ),
        (
            r#"{"path": "/a", "kind": "chardev", "class": "dev", "major": "1", "minor": 3}"#,
            "invalid type: string \"1\"",
        ),
        (
            r#"{"path": "/a", "kind": "file", "class": "regular", "size": -5}"#,
            "expected u64",
        ),
        (
            r#"{"path": "/a", "kind": "file", "class": "regular", "output": "yes"}"#,
            "expected a boolean",
        ),
        (
            r#"{"path": "/a", "kind": "file", "class": "regular", "accesses": "read"}"#,
            "invalid type: string \"read\", expected a sequence",
        ),
        (
            r#"{"path": "/a", "kind": "file", "class": "regular", "accesses": [{"op": "reed", "result": "ok"}]}"#,
            "unknown variant `reed`",
        ),
        (
            r#"{"path": "/a", "kind": "file", "class": "regular", "accesses": [{"op": "read", "result": "fine"}]}"#,
            "bad outcome \"fine\"",
        ),
        (
            r#"{"path": "/a", "kind": "file", "class": "regular", "sha256": 123}"#,
            "invalid type: integer `123`",
        ),
        (
            r#"{"path": "/a", "kind": "file", "class": "regular", "evil": true}"#,
            "unknown field `evil`",
        ),
        (
            r#"{"path": "/a", "class": "regular"}"#,
            "missing field `kind`",
        ),
        (
            r#"{"path": "/a", "kind": "symlink", "class": "regular", "target": ["x"]}"#,
            "invalid type: sequence",
        ),
    ];
    for (i, (bad, want)) in cases.iter().enumerate() {
        let text = manifest_lines(&entries(bad));
        refused_everywhere(
            t.path(),
            &c,
            &format!("type{i}.json"),
            text.as_bytes(),
            &["invalid manifest", &line_col(entry_line(1)), want],
        );
    }
    // The header's fields too; the schema is checked first, but a schema of
    // the wrong type is a type error with its position like any other.
    let good = manifest(&[e_link("/a", "b")]);
    let header_cases = [
        (
            "\"schema\": 1,",
            "\"schema\": \"1\",",
            "invalid type: string \"1\", expected u32",
        ),
        (
            "\"schema\": 1,",
            "\"schema\": 1.5,",
            "invalid type: floating point `1.5`",
        ),
        (
            "\"schema\": 1,",
            "\"schema\": -1,",
            "invalid value: integer `-1`",
        ),
        (
            "\"generator\": \"test\"",
            "\"generator\": 7",
            "invalid type: integer `7`",
        ),
        (
            "\"argv\": [\"/bin/true\"]",
            "\"argv\": \"/bin/true\"",
            "expected a sequence",
        ),
        (
            "\"cwd\": \"/\"",
            "\"cwd\": \"relative\"",
            "path is not absolute",
        ),
        (
            "\"uid\": 0",
            "\"uid\": null",
            "invalid type: null, expected u32",
        ),
        (
            "\"entries\": [",
            "\"entries\": 5, \"x\": [",
            "invalid type: integer `5`, expected a sequence",
        ),
    ];
    for (i, (from, to, want)) in header_cases.iter().enumerate() {
        let text = good.replacen(from, to, 1);
        assert_ne!(text, good, "{from} not in the manifest");
        let line = if from.contains("entries") { 3 } else { 2 };
        refused_everywhere(
            t.path(),
            &c,
            &format!("header{i}.json"),
            text.as_bytes(),
            &["invalid manifest", &line_col(line), want],
        );
    }
}

#[test]
fn bad_paths_are_refused_before_anything_is_written() {
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let canary = s(&c.dir);
    // JSON text of a path, and the reason. `\x2f` is `/` and `\x2e` is `.`
    // in the manifest's own escape: they are checked after decoding, so they
    // cannot smuggle a `..` or an empty component past the check.
    let up = format!("{canary}/../../../../../../etc");
    let cases: Vec<(String, &str)> = vec![
        (r#""etc/passwd""#.into(), "path is not absolute"),
        (r#""""#.into(), "path is not absolute"),
        (r#""./etc""#.into(), "path is not absolute"),
        (format!("{up:?}"), "`..` component"),
        (r#""/..""#.into(), "`..` component"),
        (r#""/a/./b""#.into(), "`.` component"),
        (r#""/a//b""#.into(), "empty component"),
        (r#""//etc""#.into(), "empty component"),
        (r#""/etc/""#.into(), "empty component"),
        (r#""/etc/pass\u0000wd""#.into(), "NUL byte"),
        (r#""/etc/pass\\x00wd""#.into(), "NUL byte"),
        (r#""/a\\x2f..\\x2fetc""#.into(), "`..` component"),
        (r#""/\\x2e\\x2e/etc""#.into(), "`..` component"),
        (r#""/\u002e\u002e/etc""#.into(), "`..` component"),
        (r#""/a\\x2f\\x2fb""#.into(), "empty component"),
        (r#""/a\\q""#.into(), "lone backslash"),
        (r#""/a\\x4""#.into(), "bad \\x escape"),
    ];
    for (i, (path, want)) in cases.iter().enumerate() {
        for kind in ["symlink", "dir"] {
            let target = if kind == "symlink" {
                format!(", \"target\": {canary:?}")
            } else {
                String::new()
            };
            let entries = vec![
                s_entry(&e_dir("/ok")),
                format!(r#"{{"path": {path}, "kind": "{kind}", "class": "regular"{target}}}"#),
            ];
            refused_everywhere(
                t.path(),
                &c,
                &format!("path{i}{kind}.json"),
                manifest_lines(&entries).as_bytes(),
                &["invalid manifest", &line_col(entry_line(1)), want],
            );
        }
    }
    // A symlink target may point anywhere (it is only ever followed inside
    // the jail), but it is a C string: no NUL in either spelling.
    for (i, target) in [r#""a\u0000b""#, r#""a\\x00b""#].iter().enumerate() {
        let entries = vec![format!(
            r#"{{"path": "/l", "kind": "symlink", "class": "regular", "target": {target}}}"#
        )];
        refused_everywhere(
            t.path(),
            &c,
            &format!("target{i}.json"),
            manifest_lines(&entries).as_bytes(),
            &["invalid manifest", &line_col(entry_line(0)), "NUL byte"],
        );
    }
}

fn s_entry(v: &Value) -> String {
    v.to_string()
}

#[test]
fn duplicate_paths_are_refused_however_they_are_spelled() {
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let canary = s(&c.dir);
    let cases: Vec<(Vec<String>, &str)> = vec![
        // The same entry twice.
        (
            vec![s_entry(&e_dir("/a")), s_entry(&e_dir("/a"))],
            "entry /a: duplicate path",
        ),
        // A directory, then a symlink out at the same path.
        (
            vec![
                s_entry(&e_dir("/a")),
                s_entry(&e_link("/a", &canary)),
                s_entry(&e_file("/a/keep")),
            ],
            "entry /a: duplicate path",
        ),
        // The same bytes through the manifest's escape: `\x61` is `a`.
        (
            vec![
                s_entry(&e_dir("/a")),
                r#"{"path": "/\\x61", "kind": "dir", "class": "regular"}"#.into(),
            ],
            "entry /a: duplicate path",
        ),
        // And through JSON's: `\u0061` is `a`.
        (
            vec![
                s_entry(&e_dir("/etc/a")),
                r#"{"path": "/etc/\u0061", "kind": "fifo", "class": "regular"}"#.into(),
            ],
            "entry /etc/a: duplicate path",
        ),
        (
            vec![s_entry(&e_dir("/")), s_entry(&e_dir("/"))],
            "entry /: duplicate path",
        ),
    ];
    for (i, (entries, want)) in cases.iter().enumerate() {
        refused_everywhere(
            t.path(),
            &c,
            &format!("dup{i}.json"),
            manifest_lines(entries).as_bytes(),
            &[want],
        );
    }
}

#[test]
fn a_manifest_file_that_never_ends_is_refused_at_once() {
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let good = write(t.path(), "good.json", manifest(&[e_link("/a", "b")]));
    let jail = t.path().join("jail");
    // Reading these "to the end" would take all memory; the run() timeout
    // and the RSS check catch an attempt.
    let (good_s, jail_s) = (s(&good), s(&jail));
    for dev in ["/dev/zero", "/dev/urandom"] {
        let want =
            format!("jailtrace: {dev}: cannot read: it is a character device, not a manifest file");
        let r = run(jailtrace_limited(&["materialize", dev, &jail_s]), 60);
        assert_one_line(&r, 1, &[&want], dev);
        assert!(r.max_rss_kib < 64 * 1024, "{dev}: {} KiB", r.max_rss_kib);
        for (a, b) in [(good_s.as_str(), dev), (dev, good_s.as_str())] {
            let r = run(jailtrace_limited(&["diff", a, b]), 60);
            assert_one_line(&r, 2, &[&want], dev);
        }
    }
    // A directory, and an empty file.
    let r = materialize(&[], t.path(), &jail);
    assert_one_line(&r, 1, &["cannot read", "Is a directory"], "a directory");
    let empty = write(t.path(), "empty.json", "");
    let r = materialize(&[], &empty, &jail);
    assert_one_line(&r, 1, &["at line 1 column 0", "EOF while parsing"], "empty");
    assert!(!jail.exists());
    // A pipe is read to its end as usual (`<(...)` in a shell).
    let fifo = t.path().join("fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let text = std::fs::read(&good).unwrap();
    let f2 = fifo.clone();
    let writer = std::thread::spawn(move || std::fs::write(f2, text).unwrap());
    let r = diff(&good, &fifo);
    writer.join().unwrap();
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "diff from a FIFO");
    c.check("devices as manifests");
}

// ------------------------------------- entries beneath a manifest symlink

#[test]
fn entries_beneath_a_manifest_symlink_are_refused_in_every_shape() {
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let canary = s(&c.dir);
    // `../` enough times to reach / from anywhere in the jail, then the
    // canary: a relative target that leaves the jail if followed.
    let rel_out = format!("{}{}", "../".repeat(12), canary.trim_start_matches('/'));
    let data = write(t.path(), "data", "host data\n");
    let beneath_data = format!("{}/x", s(&data));
    // (what, entries, the entry named in the error, why)
    let shapes: Vec<(&str, Vec<Value>, &str, &str)> = vec![
        (
            "relative ../ target, file beneath",
            vec![e_link("/a", &rel_out), e_file("/a/keep")],
            "/a/keep",
            "beneath /a, which the manifest records as a symlink",
        ),
        (
            "absolute target, dir and symlink beneath",
            vec![
                e_link("/a", &canary),
                e_dir("/a/sub"),
                e_link("/a/sub/x", "y"),
            ],
            "/a/sub",
            "beneath /a",
        ),
        (
            "chain of two symlinks, file beneath the first",
            vec![e_link("/a", "b"), e_link("/b", &canary), e_file("/a/keep")],
            "/a/keep",
            "beneath /a",
        ),
        (
            "chain of two symlinks, FIFO beneath the second",
            vec![
                e_link("/a", "/b"),
                e_link("/b", &rel_out),
                json!({"path": "/b/new", "kind": "fifo", "class": "regular"}),
            ],
            "/b/new",
            "beneath /b",
        ),
        (
            "symlink deep down, device two levels beneath",
            vec![
                e_dir("/x"),
                e_link("/x/y", &canary),
                e_dev("/x/y/z/null", "chardev", 1, 3),
            ],
            "/x/y/z/null",
            "beneath /x/y",
        ),
        (
            "an entry that claims class proc",
            vec![
                e_link("/a", &canary),
                json!({"path": "/a/sub", "kind": "dir", "class": "proc"}),
            ],
            "/a/sub",
            "beneath /a",
        ),
        (
            "an entry that claims class sys",
            vec![
                e_link("/a", &canary),
                json!({"path": "/a/keep", "kind": "file", "class": "sys"}),
            ],
            "/a/keep",
            "beneath /a",
        ),
        (
            "a program output",
            vec![
                e_link("/a", &canary),
                json!({"path": "/a/keep", "kind": "file", "class": "regular", "output": true}),
            ],
            "/a/keep",
            "beneath /a",
        ),
        (
            "a socket",
            vec![
                e_link("/a", &canary),
                json!({"path": "/a/sock", "kind": "socket", "class": "regular"}),
            ],
            "/a/sock",
            "beneath /a",
        ),
        (
            "beneath a file",
            vec![e_file(&s(&data)), e_link(&beneath_data, &canary)],
            &beneath_data,
            "which the manifest records as not a directory",
        ),
        (
            "beneath a missing path",
            vec![
                json!({"path": "/m", "kind": "missing", "class": "regular"}),
                e_dir("/m/d"),
            ],
            "/m/d",
            "which the manifest records as missing",
        ),
    ];
    for (i, (what, entries, entry, want)) in shapes.iter().enumerate() {
        let m = write(t.path(), &format!("shape{i}.json"), manifest(entries));
        for args in [&[][..], &["--with-outputs"], &["--dry-run"]] {
            // A fresh jail is not even created.
            let jail = t.path().join(format!("jail{i}"));
            let r = materialize(args, &m, &jail);
            assert_one_line(&r, 1, &[entry, want, &s(&m)], what);
            assert!(!jail.exists(), "{what}: jail created");
            // A jail the attacker prepared, with the same symlinks already
            // in place, is left exactly as it was.
            let jail = t.path().join(format!("prepared{i}"));
            std::fs::create_dir_all(jail.join("x")).unwrap();
            for link in ["a", "b", "x/y"] {
                let _ = std::os::unix::fs::symlink(&c.dir, jail.join(link));
            }
            let before = common::snapshot(&jail);
            let r = materialize(args, &m, &jail);
            assert_one_line(&r, 1, &[entry, want], what);
            assert_eq!(
                before,
                common::snapshot(&jail),
                "{what}: the prepared jail changed"
            );
        }
        c.check(what);
    }
}

// ---------------------------------------------------------------- devices

#[test]
fn device_entries_are_refused_without_allow_device_and_nothing_is_made() {
    if !common::require_root("device_entries_are_refused_without_allow_device_and_nothing_is_made")
    {
        return;
    }
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let jail = t.path().join("jail");
    let refused = [
        (e_dev("/dev/sda", "blockdev", 8, 0), "raw access to a disk"),
        (e_dev("/dev/sda1", "blockdev", 8, 1), "raw access to a disk"),
        (
            e_dev("/dev/nvme0n1", "blockdev", 259, 0),
            "raw access to a disk",
        ),
        (e_dev("/dev/mem", "chardev", 1, 1), "physical memory"),
        // Safe names with dangerous numbers, and a safe name and number as
        // a block device.
        (e_dev("/dev/null", "chardev", 8, 0), "but /dev/null is 1:3"),
        (e_dev("/dev/zero", "chardev", 1, 1), "but /dev/zero is 1:5"),
        (e_dev("/dev/tty", "chardev", 4, 1), "but /dev/tty is 5:0"),
        (e_dev("/dev/full", "blockdev", 1, 7), "raw access to a disk"),
        // Harmless numbers under another name are still not in the safe set.
        (e_dev("/etc/null", "chardev", 1, 3), "outside the safe set"),
        (e_dev("/dev/kmsg", "chardev", 1, 11), "outside the safe set"),
    ];
    let mut entries: Vec<Value> = vec![
        json!({"path": "/dev", "kind": "dir", "class": "dev", "mode": "0755"}),
        e_dir("/etc"),
    ];
    entries.extend(refused.iter().map(|(e, _)| e.clone()));
    let m = write(t.path(), "m.json", manifest(&entries));

    let r = materialize(&["--dry-run"], &m, &jail);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout.contains("mknod"),
        "a refused device is planned:\n{}",
        r.stdout
    );

    let r = materialize(&[], &m, &jail);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{}", r.stdout);
    for (e, why) in &refused {
        let path = e["path"].as_str().unwrap();
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{path}:")))
            .unwrap_or_else(|| panic!("{path} not listed as skipped:\n{}", r.stdout));
        assert!(
            line.contains(why) && line.contains(&format!("--allow-device {path}")),
            "{line}"
        );
    }
    assert!(r.stdout.contains(", 0 devices"), "{}", r.stdout);
    // Not a single node anywhere in the jail, nor a temporary left behind:
    // exactly the two directories.
    let found: Vec<PathBuf> = common::snapshot(&jail).into_keys().collect();
    assert_eq!(found, [jail.clone(), jail.join("dev"), jail.join("etc")]);
    c.check("devices");

    // Allowing one device creates that one, with the manifest's numbers,
    // and still none of the others.
    let r = materialize(&["--allow-device", "/dev/nvme0n1"], &m, &jail);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = std::fs::symlink_metadata(jail.join("dev/nvme0n1")).unwrap();
    assert!(md.file_type().is_block_device());
    assert_eq!(
        (
            nix::sys::stat::major(md.rdev()),
            nix::sys::stat::minor(md.rdev())
        ),
        (259, 0)
    );
    let found: Vec<PathBuf> = common::snapshot(&jail).into_keys().collect();
    assert_eq!(found.len(), 4, "{found:?}");
    c.check("--allow-device");
}

// ------------------------------------------------------------ hostile jails

#[test]
fn hard_links_to_host_files_in_the_jail_are_replaced_not_written_through() {
    if !common::require_root(
        "hard_links_to_host_files_in_the_jail_are_replaced_not_written_through",
    ) {
        return;
    }
    // An attacker who controlled the jail hard-linked host files into it
    // (same file system) where the manifest puts objects: writing through
    // any of those names would change the host file.
    let t = common::tempdir();
    let victims = t.path().join("victims");
    std::fs::create_dir(&victims).unwrap();
    let data = write(t.path(), "data", "the real content\n");
    let jail = t.path().join("jail");
    let jdata = jail.join(s(&data).trim_start_matches('/'));
    std::fs::create_dir_all(jdata.parent().unwrap()).unwrap();
    std::fs::create_dir_all(jail.join("dev")).unwrap();
    let names = [
        jdata.clone(),
        jail.join("dev/null"),
        jail.join("fifo"),
        jail.join("link"),
        jail.join("dir"),
    ];
    for (i, name) in names.iter().enumerate() {
        let v = victims.join(format!("v{i}"));
        std::fs::write(&v, format!("host file {i}\n")).unwrap();
        std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::hard_link(&v, name).unwrap();
    }
    // Inode, mode, owner, mtime and content: all that writing through a
    // link could change (the ctime changes when a link is removed).
    let victim = |i: usize| {
        let v = victims.join(format!("v{i}"));
        let md = std::fs::metadata(&v).unwrap();
        let state = (md.ino(), md.mode(), md.uid(), md.mtime(), md.mtime_nsec());
        (state, std::fs::read(&v).unwrap(), md.nlink())
    };
    let before: Vec<_> = (0..names.len()).map(victim).collect();
    let c = Canary::new(t.path());
    let m = write(
        t.path(),
        "m.json",
        manifest(&[
            json!({"path": s(&data), "kind": "file", "class": "regular", "mode": "0755"}),
            json!({"path": "/dev", "kind": "dir", "class": "dev", "mode": "0755"}),
            e_dev("/dev/null", "chardev", 1, 3),
            json!({"path": "/fifo", "kind": "fifo", "class": "regular", "mode": "0644"}),
            e_link("/link", &s(&c.dir)),
            e_dir("/dir"),
        ]),
    );
    let r = materialize(&[], &m, &jail);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{}", r.stdout);
    for (i, b) in before.iter().enumerate() {
        let (state, content, nlink) = victim(i);
        assert_eq!(
            (&b.0, &b.1),
            (&state, &content),
            "host file {} changed",
            names[i].display()
        );
        assert_eq!(
            (b.2, nlink),
            (2, 1),
            "{} still links to the host file",
            names[i].display()
        );
    }
    assert_eq!(
        std::fs::read_to_string(&jdata).unwrap(),
        "the real content\n"
    );
    let ft = |p: &str| std::fs::symlink_metadata(jail.join(p)).unwrap().file_type();
    assert!(ft("dev/null").is_char_device());
    assert!(ft("fifo").is_fifo());
    assert!(ft("link").is_symlink());
    assert!(ft("dir").is_dir());
    c.check("hard links");
}

#[test]
fn fifos_in_the_jail_are_never_opened_even_with_a_peer_outside() {
    if !common::require_root("fifos_in_the_jail_are_never_opened_even_with_a_peer_outside") {
        return;
    }
    // tests/materialize.rs shows a FIFO where a file goes does not block
    // materialize. Here a process outside holds each FIFO open, so that
    // opening it would not block either: only the FIFO's peer can tell
    // whether materialize wrote into it or read from it.
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let data = write(t.path(), "data", "content\n");
    let hashed = write(t.path(), "hashed", "abc");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let jail = t.path().join("jail");
    let inside = |p: &Path| jail.join(s(p).trim_start_matches('/'));
    std::fs::create_dir_all(inside(t.path())).unwrap();
    std::fs::create_dir_all(jail.join("dev")).unwrap();
    let fifos = [
        inside(&data),
        jail.join("link"),
        jail.join("dev/null"),
        jail.join("dir"),
    ];
    let mut readers = Vec::new();
    for f in &fifos {
        nix::unistd::mkfifo(f, Mode::from_bits_truncate(0o666)).unwrap();
        readers.push(open(f, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty()).unwrap());
    }
    // Where a file with a recorded hash goes, a FIFO full of data: hashing
    // it would drain it.
    nix::unistd::mkfifo(&inside(&hashed), Mode::from_bits_truncate(0o666)).unwrap();
    let both = open(
        &inside(&hashed),
        OFlag::O_RDWR | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .unwrap();
    nix::unistd::write(&both, b"attacker data").unwrap();
    let m = write(
        t.path(),
        "m.json",
        manifest(&[
            e_file(&s(&data)),
            json!({"path": s(&hashed), "kind": "file", "class": "regular", "sha256": abc}),
            e_link("/link", &s(&c.dir)),
            json!({"path": "/dev", "kind": "dir", "class": "dev", "mode": "0755"}),
            e_dev("/dev/null", "chardev", 1, 3),
            e_dir("/dir"),
        ]),
    );
    let r = materialize(&[], &m, &jail);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{}", r.stdout);
    assert_eq!(
        r.stdout.matches("replaced a FIFO").count(),
        5,
        "{}",
        r.stdout
    );
    for (f, fd) in fifos.iter().zip(&readers) {
        let mut buf = [0u8; 64];
        // EOF: no writer ever had it open, and nothing was written.
        assert_eq!(
            nix::unistd::read(fd, &mut buf),
            Ok(0),
            "{} was opened for writing",
            f.display()
        );
    }
    let mut buf = [0u8; 64];
    let n = nix::unistd::read(&both, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"attacker data", "the FIFO was read from");
    assert_eq!(std::fs::read(inside(&data)).unwrap(), b"content\n");
    assert_eq!(std::fs::read(inside(&hashed)).unwrap(), b"abc");
    let ft = |p: &str| std::fs::symlink_metadata(jail.join(p)).unwrap().file_type();
    assert!(ft("link").is_symlink());
    assert!(ft("dev/null").is_char_device());
    assert!(ft("dir").is_dir());
    c.check("FIFOs");
}

// --------------------------------------------------------- a huge manifest

/// Writes a manifest of `n` entries under `root`: `dirs` directories,
/// `files` small regular files (created on the host), the rest `missing`
/// paths the program probed, as a recording of a program that searches long
/// paths produces. One entry per line, as `record` writes it.
fn big_manifest(root: &Path, n: usize, dirs: usize, files: usize) -> String {
    let mut out = String::with_capacity(n * 120);
    out += &format!("{{\n{HEADER},\n\"entries\": [\n");
    let root = s(root);
    let mut count = 0;
    for d in 0..dirs {
        let dir = format!("{root}/d{d:05}");
        if d < files {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(format!("{dir}/f"), vec![b'x'; 4096]).unwrap();
        }
        let sep = if count == 0 { "" } else { ",\n" };
        out += &format!(
            "{sep}{{\"path\": \"{dir}\", \"kind\": \"dir\", \"class\": \"regular\", \"mode\": \"0755\", \"uid\": 0, \"gid\": 0}}"
        );
        count += 1;
        if d < files {
            out += &format!(
                ",\n{{\"path\": \"{dir}/f\", \"kind\": \"file\", \"class\": \"regular\", \"mode\": \"0644\", \"accesses\": [{{\"op\": \"read\", \"result\": \"ok\"}}]}}"
            );
            count += 1;
        }
        let missing = (n - dirs - files) / dirs + usize::from(d < (n - dirs - files) % dirs);
        for i in 0..missing {
            out += &format!(
                ",\n{{\"path\": \"{dir}/m{i:06}\", \"kind\": \"missing\", \"class\": \"regular\", \"accesses\": [{{\"op\": \"stat\", \"result\": \"ENOENT\"}}]}}"
            );
            count += 1;
        }
    }
    assert_eq!(count, n);
    out += "\n]}\n";
    out
}

/// Peak memory may grow with the manifest, by at most this much per entry
/// (a loaded entry takes about 300 bytes, its JSON text about 120 while it
/// is parsed; measured 540 bytes per entry in all), plus a fixed base.
const MAX_BYTES_PER_ENTRY: u64 = 768;
const BASE_KIB: u64 = 32 * 1024;

fn rss_bound_kib(entries: u64) -> u64 {
    BASE_KIB + entries * MAX_BYTES_PER_ENTRY / 1024
}

#[test]
fn a_huge_manifest_takes_bounded_memory_and_shows_progress() {
    // The 1,000,000-entry run is bench/hostile (release build); 200,000
    // entries keep this to seconds in a debug build.
    const N: usize = 200_000;
    const FILES: usize = 200;
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let text = big_manifest(&t.path().join("src"), N, 2_000, FILES);
    let m = write(t.path(), "big.json", &text);
    drop(text);

    let jail = t.path().join("jail");
    let r = materialize(&[], &m, &jail);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "", "output on a non-terminal stderr");
    assert!(
        r.stdout.contains(&format!("created: {FILES} files")),
        "{}",
        r.stdout
    );
    let bound = rss_bound_kib(N as u64);
    assert!(
        r.max_rss_kib < bound,
        "materialize of {N} entries peaked at {} KiB, over the bound of {bound} KiB",
        r.max_rss_kib
    );
    eprintln!(
        "materialize, {N} entries: peak {} KiB (bound {bound})",
        r.max_rss_kib
    );
    c.check("huge manifest");

    // On a terminal there is a progress bar. `script` gives the command a
    // pseudo-terminal and copies what it draws.
    if common::require_program(
        "a_huge_manifest_takes_bounded_memory_and_shows_progress",
        "script",
    ) {
        let cmd = format!(
            "'{}' materialize '{}' '{}' >/dev/null",
            env!("CARGO_BIN_EXE_jailtrace"),
            s(&m),
            s(&t.path().join("jail2"))
        );
        let tty = run(common::on_a_terminal(&cmd), 120);
        assert_eq!(tty.code, 0, "{}", tty.stderr);
        assert!(
            tty.stdout.contains(&format!("files of {FILES}")),
            "no progress bar on a terminal: {:?}",
            tty.stdout
        );
    }
}

#[test]
fn diff_of_two_huge_manifests_takes_bounded_memory() {
    // Fewer entries than above: diff compares paths component by component,
    // which a debug build does slowly.
    const N: usize = 80_000;
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let text = big_manifest(&t.path().join("src"), N, 800, 0);
    let a = write(t.path(), "a.json", &text);
    // One probe more in b: exactly one difference.
    let extra = format!(
        ",\n{{\"path\": \"{}/new\", \"kind\": \"missing\", \"class\": \"regular\"}}\n]}}\n",
        s(t.path())
    );
    let b = write(t.path(), "b.json", text.replace("\n]}\n", &extra));
    drop(text);
    let r = diff(&a, &b);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("/new"), "{}", r.stdout);
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with(['+', '-', '~']))
            .count(),
        1,
        "{}",
        r.stdout
    );
    let bound = rss_bound_kib(2 * N as u64);
    assert!(
        r.max_rss_kib < bound,
        "diff of 2 x {N} entries peaked at {} KiB, over the bound of {bound} KiB",
        r.max_rss_kib
    );
    eprintln!(
        "diff, 2 x {N} entries: peak {} KiB (bound {bound})",
        r.max_rss_kib
    );
    c.check("huge diff");
}

/// Every command that writes a file refuses a symlink that another user
/// planted at the output path in a sticky, world-writable directory, as
/// the kernel's protected_symlinks does (jailtrace follows the link
/// itself, as root, so the kernel cannot): nothing is written through it
/// and the link stays. The caller's own link there is still followed.
#[test]
fn outputs_refuse_links_other_users_planted_in_sticky_directories() {
    if !common::require_root("outputs_refuse_links_other_users_planted_in_sticky_directories") {
        return;
    }
    let t = common::tempdir();
    let private = t.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sticky = t.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let m = t.path().join("m.json");
    common::success(
        common::jailtrace()
            .args(["record", "-o"])
            .arg(&m)
            .args(["--", "/bin/true"]),
    );
    let target = private.join("planted");
    let link = sticky.join("out.json");
    let plant = || {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &link,
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
    };
    let commands: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
        (
            "record",
            vec![
                "record".into(),
                "-o".into(),
                link.clone().into(),
                "--".into(),
                "/bin/true".into(),
            ],
        ),
        (
            "merge",
            vec![
                "merge".into(),
                m.clone().into(),
                m.clone().into(),
                "-o".into(),
                link.clone().into(),
            ],
        ),
        (
            "export",
            vec![
                "export".into(),
                "--format".into(),
                "bwrap".into(),
                "-o".into(),
                link.clone().into(),
                m.clone().into(),
            ],
        ),
    ];
    for (name, args) in &commands {
        plant();
        let out = common::output(common::jailtrace().args(args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{name}: wrote through the link\n{err}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains("not followed") && err.contains("uid 65534"),
            "{name}: {err}"
        );
        assert!(!target.exists(), "{name}: wrote {}", target.display());
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{name}"
        );
    }
    // The caller's own link in the same directory: followed, as before.
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    common::success(
        common::jailtrace()
            .args(["merge"])
            .arg(&m)
            .arg(&m)
            .arg("-o")
            .arg(&link),
    );
    assert!(target.is_file());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A manifest that calls a device node a `file`: materialize and the OCI
/// export refuse it without ever opening the node (opening `/dev/watchdog`
/// arms the watchdog). An inotify watch on the node sees every open.
#[test]
fn a_device_called_a_file_is_never_opened() {
    if !common::require_root("a_device_called_a_file_is_never_opened") {
        return;
    }
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let t = common::tempdir();
    let node = t.path().join("not-a-file");
    // A null device: harmless if the test fails and it is opened after all.
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let m = write(t.path(), "m.json", manifest(&[e_file(&s(&node))]));
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    inotify
        .add_watch(&node, AddWatchFlags::IN_OPEN | AddWatchFlags::IN_ACCESS)
        .unwrap();
    let jail = t.path().join("jail");
    let r = materialize(&[], &m, &jail);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("character device"), "{}", r.stderr);
    let mut oci = jailtrace(&["export", "--format", "oci", "-o"]);
    oci.arg(t.path().join("image.tar")).arg(&m);
    let r = run(oci, 120);
    assert_ne!(r.code, 0, "{}", r.stderr);
    let events = inotify.read_events().unwrap_or_default();
    assert!(events.is_empty(), "the device node was opened: {events:?}");
    let inside = jail.join(node.strip_prefix("/").unwrap());
    assert!(
        std::fs::symlink_metadata(&inside).is_err(),
        "{}",
        inside.display()
    );
}

/// A program that hides a read behind a working directory the host cannot
/// show: deeper than PATH_MAX, or deleted. The read is not dropped
/// silently and no made-up path is written: it is a loss, so `record`
/// exits 124 (both backends for the deep one) unless `--allow-incomplete`,
/// and the manifest says so.
#[test]
fn reads_through_an_unshowable_working_directory_are_losses() {
    let bin = common::fixture("hidden", &[]);
    let t = common::tempdir();
    let dir = std::fs::canonicalize(t.path()).unwrap();
    write(&dir, "secret", "topsecret\n");
    let mut backends = vec!["ptrace"];
    if common::is_root() {
        backends.push("bpf");
    }
    for backend in backends {
        let m = dir.join(format!("deep-{backend}.json"));
        let mut c = jailtrace(&["record", "--backend", backend, "-o"]);
        c.arg(&m).arg("--").arg(&bin).arg("deep").arg(&dir);
        let r = run(c, 120);
        assert_eq!(r.code, 124, "{backend}: {}", r.stderr);
        assert!(r.stderr.contains("incomplete"), "{backend}: {}", r.stderr);
        let text = std::fs::read_to_string(&m).unwrap();
        assert!(text.contains("incomplete recording"), "{backend}: {text}");
    }
    let m = dir.join("deep-allowed.json");
    let mut c = jailtrace(&["record", "--allow-incomplete", "-o"]);
    c.arg(&m).arg("--").arg(&bin).arg("deep").arg(&dir);
    assert_eq!(run(c, 120).code, 0);

    let mut backends = vec!["ptrace"];
    if common::is_root() {
        backends.push("bpf");
    }
    for backend in backends {
        let _ = std::fs::remove_dir(dir.join("gone"));
        let m = dir.join(format!("deleted-{backend}.json"));
        let mut c = jailtrace(&["record", "--backend", backend, "-o"]);
        c.arg(&m).arg("--").arg(&bin).arg("deleted").arg(&dir);
        let r = run(c, 120);
        assert_eq!(r.code, 124, "{backend}: {}", r.stderr);
        let text = std::fs::read_to_string(&m).unwrap();
        assert!(!text.contains("(deleted)"), "{backend}: {text}");
        assert!(!text.contains("gone/x"), "{backend}: {text}");
        assert!(text.contains("incomplete recording"), "{backend}: {text}");
    }
}

/// A program that enters a mount namespace of its own and reads through a
/// bind mount there names a path the host does not have: that access is a
/// loss (exit 124, a warning, no entry) under both backends, while a read
/// in such a namespace of a path the host has the same is recorded. Under
/// bpf the kernel names the object each open used; a stat there has
/// nothing to compare once the namespace changed, and is a loss too. In a
/// namespace still an unchanged copy of the program's, every access is
/// recorded. A read relative to a detached tree (open_tree) is a loss
/// under both backends.
#[test]
fn reads_in_a_mount_namespace_of_its_own_are_checked_against_the_host() {
    if !common::require_root("reads_in_a_mount_namespace_of_its_own_are_checked_against_the_host") {
        return;
    }
    let bin = common::fixture("mountns", &[]);
    let t = common::tempdir();
    let dir = std::fs::canonicalize(t.path()).unwrap();
    std::fs::create_dir(dir.join("hidden")).unwrap();
    std::fs::create_dir(dir.join("mnt")).unwrap();
    write(&dir.join("hidden"), "secret", "bound\n");
    write(&dir, "plain", "plain\n");
    write(&dir, "nsf", "beneath\n");
    std::fs::copy("/bin/true", dir.join("real")).unwrap();
    std::fs::hard_link(dir.join("real"), dir.join("prog")).unwrap();
    write(&dir, "script", format!("#!{}/real\n", dir.display()));
    std::fs::set_permissions(
        dir.join("script"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let record = |backend: &str, mode: &str| -> (Run, String) {
        let m = dir.join(format!("{mode}-{backend}.json"));
        let mut c = jailtrace(&["record", "--backend", backend, "-o"]);
        c.arg(&m).arg("--").arg(&bin).arg(mode).arg(&dir);
        let r = run(c, 120);
        let text = std::fs::read_to_string(&m).unwrap_or_default();
        (r, text)
    };
    let path = |p: &str| format!("\"path\": \"{}/{p}\"", dir.display());
    for backend in ["ptrace", "bpf"] {
        let (r, text) = record(backend, "bind");
        assert_eq!(r.code, 124, "{backend}: {}", r.stderr);
        assert!(
            text.contains("mount namespace of the program's own"),
            "{backend}: {text}"
        );
        assert!(!text.contains("mnt/secret"), "{backend}: {text}");
        assert!(text.contains(&path("plain")), "{backend}: {text}");
        let (r, text) = record(backend, "plain");
        assert_eq!(r.code, 0, "{backend}: {}", r.stderr);
        assert!(text.contains(&path("plain")), "{backend}: {text}");
        assert!(text.contains(&path("absent")), "{backend}: {text}");
        // A descriptor opened before the namespace names a host path.
        let (r, text) = record(backend, "dirfd");
        assert_eq!(r.code, 0, "{backend}: {}", r.stderr);
        assert!(text.contains(&path("plain")), "{backend}: {text}");
        // The kernel ran the script bound over prog, whose interpreter is
        // prog's own inode: not an exec of the host's prog.
        let (r, text) = record(backend, "script");
        assert_eq!(r.code, 124, "{backend}: {}", r.stderr);
        assert!(!text.contains(&path("prog")), "{backend}: {text}");
        // A copy lacks the namespace file bound over nsf: its read is of
        // the file beneath, which the host hides.
        let (r, text) = record(backend, "nsfs");
        let _ = nix::mount::umount2(&dir.join("nsf"), nix::mount::MntFlags::MNT_DETACH);
        assert_eq!(r.code, 124, "{backend}: {}", r.stderr);
        assert!(!text.contains(&path("nsf")), "{backend}: {text}");
    }
    // A detached tree (open_tree): its paths are nowhere, for both.
    for backend in ["ptrace", "bpf"] {
        let (r, text) = record(backend, "tree");
        assert_eq!(r.code, 124, "{backend}: {}", r.stderr);
        assert!(!text.contains("\"/secret\""), "{backend}: {text}");
        assert!(
            !text.contains(&format!("{}/secret", dir.display())),
            "{backend}: {text}"
        );
    }
}

#[test]
fn inferred_entries_that_no_rule_made_are_refused() {
    let t = common::tempdir();
    let c = Canary::new(t.path());
    let cases: Vec<(Vec<String>, &str)> = vec![
        // A rule this build does not know.
        (
            vec![
                r#"{"path": "/etc", "kind": "dir", "class": "regular", "inferred": "nss"}"#.into(),
                r#"{"path": "/etc/x", "kind": "file", "class": "regular", "inferred": "keys"}"#
                    .into(),
            ],
            "entry /etc/x: unknown inference rule \"keys\"",
        ),
        // A rule's entry carries content without the program's say: one
        // with accesses of its own is a contradiction.
        (
            vec![
                r#"{"path": "/etc", "kind": "dir", "class": "regular"}"#.into(),
                r#"{"path": "/etc/x", "kind": "file", "class": "regular", "inferred": "nss",
                    "accesses": [{"op": "stat", "result": "ok"}]}"#
                    .replace('\n', " "),
            ],
            "entry /etc/x: inferred by a rule, yet with accesses of its own",
        ),
    ];
    for (i, (entries, want)) in cases.iter().enumerate() {
        refused_everywhere(
            t.path(),
            &c,
            &format!("inferred{i}.json"),
            manifest_lines(entries).as_bytes(),
            &[want],
        );
    }
}
