//! Black-box tests of `jailtrace diff`: hand-written manifests for every
//! kind of change, and real recordings for determinism and the CI use.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// A manifest as JSON: a fixed header, `entries` as given.
fn manifest(entries: Value) -> Value {
    let mut m = common::manifest(entries);
    m["generator"] = json!("jailtrace 0.1.0");
    m["command"] =
        json!({ "argv": ["/usr/bin/app"], "cwd": "/srv", "uid": 0, "gid": 0, "exit_status": 0 });
    m
}

/// The entries of a small program: its binary, a library, a config file.
fn base_entries() -> Value {
    json!([
        { "path": "/", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/dev", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/dev/null", "kind": "chardev", "class": "dev", "mode": "0666", "uid": 0, "gid": 0,
          "major": 1, "minor": 3, "accesses": [ { "op": "write", "result": "ok" } ] },
        { "path": "/etc", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/etc/app.conf", "kind": "file", "class": "regular", "mode": "0644", "uid": 0, "gid": 0,
          "size": 10, "accesses": [ { "op": "read", "result": "ok" } ] },
        { "path": "/lib", "kind": "symlink", "class": "regular", "target": "usr/lib",
          "accesses": [ { "op": "follow", "result": "ok" } ] },
        { "path": "/usr", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/usr/bin", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/usr/bin/app", "kind": "file", "class": "regular", "mode": "0755", "uid": 0, "gid": 0,
          "size": 1000, "accesses": [ { "op": "exec", "result": "ok" } ] },
        { "path": "/usr/lib", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/usr/lib/libfoo.so.1", "kind": "file", "class": "regular", "mode": "0644", "uid": 0, "gid": 0,
          "size": 5000, "accesses": [ { "op": "read", "result": "ok" } ] },
        { "path": "/var", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/var/log", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
        { "path": "/var/log/app.log", "kind": "file", "class": "regular", "mode": "0640", "uid": 0, "gid": 0,
          "output": true, "accesses": [ { "op": "create", "result": "ok" }, { "op": "write", "result": "ok" } ] }
    ])
}

/// `base_entries` with `f` applied to the entry at `path` (which must exist).
fn edit(path: &str, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut entries = base_entries();
    let e = entries
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("no entry {path}"));
    f(e.as_object_mut().unwrap());
    entries
}

/// `base_entries` plus `extra`, kept in path order by jailtrace itself.
fn with(extra: Value) -> Value {
    let mut entries = base_entries();
    let v = entries.as_array_mut().unwrap();
    v.extend(extra.as_array().unwrap().iter().cloned());
    entries
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

fn diff(old: &Path, new: &Path, extra: &[&str]) -> Output {
    common::output(
        common::jailtrace()
            .arg("diff")
            .arg(old)
            .arg(new)
            .args(extra)
            .env_remove("NO_COLOR"),
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Diffs two manifests and returns (exit status, text output, JSON report).
fn run_both(old: &Value, new: &Value, extra: &[&str]) -> (i32, String, Value) {
    let dir = common::tempdir();
    let a = write(dir.path(), "old.json", old);
    let b = write(dir.path(), "new.json", new);
    let text = diff(&a, &b, extra);
    let mut json_args = vec!["--format", "json"];
    json_args.extend_from_slice(extra);
    let js = diff(&a, &b, &json_args);
    let code = text.status.code().unwrap();
    assert_eq!(
        js.status.code(),
        Some(code),
        "text and JSON disagree; stderr: {}",
        String::from_utf8_lossy(&js.stderr)
    );
    assert!(
        text.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let report: Value = serde_json::from_slice(&js.stdout).expect("JSON report");
    assert_eq!(report["equivalent"], code == 0);
    (code, stdout(&text), report)
}

#[test]
fn identical_manifests_are_equivalent_and_print_nothing() {
    let m = manifest(base_entries());
    let (code, text, report) = run_both(&m, &m, &[]);
    assert_eq!(code, 0);
    assert_eq!(text, "");
    for group in [
        "command", "added", "removed", "changed", "accesses", "content",
    ] {
        assert_eq!(report[group], json!([]), "{group}");
    }
}

#[test]
fn generator_argv_and_cwd_do_not_count() {
    let old = manifest(base_entries());
    let mut new = old.clone();
    new["generator"] = json!("jailtrace 9.9.9");
    new["command"]["argv"] = json!(["/usr/bin/app", "--other-flag"]);
    new["command"]["cwd"] = json!("/home/runner/work/app");
    // Entry order in the file does not matter either.
    new["entries"].as_array_mut().unwrap().reverse();
    let (code, text, _) = run_both(&old, &new, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text, "");
}

#[test]
fn exit_status_user_and_warnings_count() {
    let old = manifest(base_entries());
    let mut new = old.clone();
    new["command"]["exit_status"] = json!(1);
    new["command"]["uid"] = json!(1000);
    new["command"]["gid"] = json!(1000);
    new["warnings"] = json!(["io_uring used: some accesses not seen"]);
    let (code, text, report) = run_both(&old, &new, &[]);
    assert_eq!(code, 1);
    assert!(text.contains("~ exit_status: 0 -> 1\n"), "{text}");
    assert!(text.contains("~ uid: 0 -> 1000\n"), "{text}");
    assert!(text.contains("~ gid: 0 -> 1000\n"), "{text}");
    assert!(
        text.contains("+ warning: io_uring used: some accesses not seen\n"),
        "{text}"
    );
    assert_eq!(
        report["command"],
        json!([
            { "field": "uid", "old": 0, "new": 1000 },
            { "field": "gid", "old": 0, "new": 1000 },
            { "field": "exit_status", "old": 0, "new": 1 },
        ])
    );
    assert_eq!(
        report["warnings"]["added"],
        json!(["io_uring used: some accesses not seen"])
    );
    assert_eq!(report["warnings"]["removed"], json!([]));
}

#[test]
fn added_and_removed_paths_are_marked_and_sorted() {
    let old = manifest(with(json!([
        { "path": "/etc/old.conf", "kind": "file", "class": "regular", "mode": "0644",
          "accesses": [ { "op": "read", "result": "ok" } ] }
    ])));
    let new = manifest(with(json!([
        { "path": "/etc/z.conf", "kind": "file", "class": "regular", "mode": "0644",
          "accesses": [ { "op": "read", "result": "ok" } ] },
        { "path": "/etc/b.conf", "kind": "missing", "class": "regular",
          "accesses": [ { "op": "stat", "result": "ENOENT" } ] },
        { "path": "/opt", "kind": "dir", "class": "regular", "mode": "0755" },
        { "path": "/opt/x", "kind": "file", "class": "regular", "mode": "0755",
          "accesses": [ { "op": "exec", "result": "ok" }, { "op": "stat", "result": "ok" } ] }
    ])));
    let (code, text, report) = run_both(&old, &new, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        text,
        "Paths added (4):\n\
         + /etc/b.conf  missing  stat:ENOENT\n\
         + /etc/z.conf  file  read\n\
         + /opt  dir\n\
         + /opt/x  file  exec stat\n\
         \n\
         Paths removed (1):\n\
         - /etc/old.conf  file  read\n\
         \n\
         5 differences: 4 added, 1 removed, 0 metadata, 0 accesses, 0 command/warnings, 0 content\n"
    );
    assert_eq!(
        report["added"][0],
        json!({ "path": "/etc/b.conf", "kind": "missing", "class": "regular",
                "accesses": [ { "op": "stat", "result": "ENOENT" } ] })
    );
    assert_eq!(report["removed"][0]["path"], "/etc/old.conf");
}

#[test]
fn every_metadata_change_is_reported() {
    let old = manifest(base_entries());
    let cases: Vec<(&str, &str, Value, Value)> = vec![
        // (path, field, new entries, expected change)
        (
            "/etc/app.conf",
            "kind",
            edit("/etc/app.conf", |e| {
                e.insert("kind".into(), json!("symlink"));
                e.insert("target".into(), json!("app.conf.d/main"));
                e.remove("size");
            }),
            json!([
                { "path": "/etc/app.conf", "field": "kind", "old": "file", "new": "symlink" },
                { "path": "/etc/app.conf", "field": "target", "old": null, "new": "app.conf.d/main" },
            ]),
        ),
        (
            "/lib",
            "target",
            edit("/lib", |e| {
                e.insert("target".into(), json!("usr/lib64"));
            }),
            json!([{ "path": "/lib", "field": "target", "old": "usr/lib", "new": "usr/lib64" }]),
        ),
        (
            "/dev/null",
            "class",
            edit("/dev/null", |e| {
                e.insert("class".into(), json!("regular"));
            }),
            json!([{ "path": "/dev/null", "field": "class", "old": "dev", "new": "regular" }]),
        ),
        (
            "/usr/bin/app",
            "mode",
            edit("/usr/bin/app", |e| {
                e.insert("mode".into(), json!("4755"));
            }),
            json!([{ "path": "/usr/bin/app", "field": "mode", "old": "0755", "new": "4755" }]),
        ),
        (
            "/etc/app.conf",
            "owner",
            edit("/etc/app.conf", |e| {
                e.insert("uid".into(), json!(100));
                e.insert("gid".into(), json!(101));
            }),
            json!([
                { "path": "/etc/app.conf", "field": "uid", "old": 0, "new": 100 },
                { "path": "/etc/app.conf", "field": "gid", "old": 0, "new": 101 },
            ]),
        ),
        (
            "/dev/null",
            "device",
            edit("/dev/null", |e| {
                e.insert("major".into(), json!(4));
                e.insert("minor".into(), json!(64));
            }),
            json!([
                { "path": "/dev/null", "field": "major", "old": 1, "new": 4 },
                { "path": "/dev/null", "field": "minor", "old": 3, "new": 64 },
            ]),
        ),
    ];
    for (path, what, entries, expected) in cases {
        let (code, text, report) = run_both(&old, &manifest(entries), &[]);
        assert_eq!(code, 1, "{what}: {text}");
        assert_eq!(report["changed"], expected, "{what}");
        for c in expected.as_array().unwrap() {
            let line = format!("~ {path}  {}: ", c["field"].as_str().unwrap());
            assert!(text.contains(&line), "{what}: no {line:?} in\n{text}");
        }
        assert_eq!(report["added"], json!([]), "{what}");
        assert_eq!(report["accesses"], json!([]), "{what}");
    }
}

#[test]
fn access_changes_new_write_new_exec_and_failures() {
    let old = manifest(base_entries());
    let mut new_entries = edit("/etc/app.conf", |e| {
        e.insert(
            "accesses".into(),
            json!([ { "op": "read", "result": "ok" }, { "op": "write", "result": "ok" } ]),
        );
    });
    for e in new_entries.as_array_mut().unwrap() {
        if e["path"] == "/usr/lib/libfoo.so.1" {
            e["accesses"] = json!([ { "op": "read", "result": "ENOENT" } ]);
        }
        if e["path"] == "/usr/bin/app" {
            e["accesses"] =
                json!([ { "op": "exec", "result": "ok" }, { "op": "stat", "result": "ok" } ]);
        }
        if e["path"] == "/var/log/app.log" {
            e["accesses"] = json!([ { "op": "create", "result": "ok" } ]);
        }
        if e["path"] == "/usr/bin" {
            e["accesses"] = json!([ { "op": "exec", "result": "EACCES" } ]);
        }
    }
    let (code, text, report) = run_both(&old, &manifest(new_entries), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        report["accesses"],
        json!([
            { "path": "/etc/app.conf", "op": "write", "old": [], "new": ["ok"] },
            { "path": "/usr/bin", "op": "exec", "old": [], "new": ["EACCES"] },
            { "path": "/usr/bin/app", "op": "stat", "old": [], "new": ["ok"] },
            { "path": "/usr/lib/libfoo.so.1", "op": "read", "old": ["ok"], "new": ["ENOENT"] },
            { "path": "/var/log/app.log", "op": "write", "old": ["ok"], "new": [] },
        ])
    );
    assert!(
        text.contains(
            "Accesses changed (5):\n\
         + /etc/app.conf  write ok\n\
         + /usr/bin  exec EACCES\n\
         + /usr/bin/app  stat ok\n\
         ~ /usr/lib/libfoo.so.1  read: ok -> ENOENT\n\
         - /var/log/app.log  write ok\n"
        ),
        "{text}"
    );
}

#[test]
fn output_flag_change_counts() {
    let old = manifest(base_entries());
    let new = manifest(edit("/var/log/app.log", |e| {
        e.remove("output");
    }));
    let (code, _, report) = run_both(&old, &new, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        report["changed"],
        json!([{ "path": "/var/log/app.log", "field": "output", "old": true, "new": false }])
    );
}

#[test]
fn content_changes_count_only_with_content_flag() {
    let old = manifest(base_entries());
    let new = manifest(edit("/usr/lib/libfoo.so.1", |e| {
        e.insert("size".into(), json!(5120));
        e.insert("sha256".into(), json!("ab".repeat(32)));
    }));
    let (code, text, report) = run_both(&old, &new, &[]);
    assert_eq!(
        code, 0,
        "a library upgrade alone is not a change in needs: {text}"
    );
    assert_eq!(report["content"], json!([]));

    let (code, text, report) = run_both(&old, &new, &["--content"]);
    assert_eq!(code, 1);
    assert_eq!(
        report["content"],
        json!([
            { "path": "/usr/lib/libfoo.so.1", "field": "size", "old": 5000, "new": 5120 },
            { "path": "/usr/lib/libfoo.so.1", "field": "sha256", "old": null, "new": "ab".repeat(32) },
        ])
    );
    assert!(
        text.contains("Content changed (2):\n~ /usr/lib/libfoo.so.1  size: 5000 -> 5120\n"),
        "{text}"
    );
}

#[test]
fn json_report_has_the_documented_shape() {
    let dir = common::tempdir();
    let old = manifest(base_entries());
    let mut new = manifest(with(json!([
        { "path": "/etc/extra.conf", "kind": "file", "class": "regular", "mode": "0644", "output": true,
          "accesses": [ { "op": "write", "result": "ok" } ] }
    ])));
    new["command"]["exit_status"] = json!(3);
    let a = write(dir.path(), "old.json", &old);
    let b = write(dir.path(), "new.json", &new);
    let out = diff(&a, &b, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!({
            "old": a.to_str().unwrap(),
            "new": b.to_str().unwrap(),
            "equivalent": false,
            "packages": { "added": [], "removed": [] },
            "command": [ { "field": "exit_status", "old": 0, "new": 3 } ],
            "warnings": { "added": [], "removed": [] },
            "added": [ { "path": "/etc/extra.conf", "kind": "file", "class": "regular", "output": true,
                         "accesses": [ { "op": "write", "result": "ok" } ] } ],
            "removed": [],
            "changed": [],
            "accesses": [],
            "content": [],
        })
    );
    // JSON is never coloured, even when asked.
    let out = diff(&a, &b, &["--format", "json", "--color", "always"]);
    assert!(!out.stdout.contains(&0x1b));
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let old = manifest(base_entries());
    let new = manifest(with(json!([
        { "path": "/etc/x", "kind": "file", "class": "regular", "accesses": [ { "op": "read", "result": "ok" } ] }
    ])));
    let dir = common::tempdir();
    let a = write(dir.path(), "old.json", &old);
    let b = write(dir.path(), "new.json", &new);
    // stdout is a pipe here: plain.
    let plain = diff(&a, &b, &[]);
    assert!(!plain.stdout.contains(&0x1b));
    let coloured = diff(&a, &b, &["--color", "always"]);
    assert!(stdout(&coloured).contains("\x1b[32m+ /etc/x  file  read\x1b[0m"));
    let never = diff(&a, &b, &["--color", "never"]);
    assert_eq!(never.stdout, plain.stdout);
    // NO_COLOR wins over a terminal in auto mode; `script` gives us one.
    if common::require_program("colour_only_when_asked_or_on_a_terminal", "script") {
        let cmd = format!(
            "{} diff {} {}",
            env!("CARGO_BIN_EXE_jailtrace"),
            a.display(),
            b.display()
        );
        let tty = common::output(
            common::on_a_terminal(&cmd)
                .env_remove("NO_COLOR")
                .stdin(Stdio::null()),
        );
        assert!(
            stdout(&tty).contains("\x1b[32m+ /etc/x"),
            "{}",
            stdout(&tty)
        );
        let tty = common::output(
            common::on_a_terminal(&cmd)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null()),
        );
        assert!(stdout(&tty).contains("+ /etc/x"));
        assert!(!tty.stdout.contains(&0x1b), "{}", stdout(&tty));
    }
}

#[test]
fn ignore_regex_matches_the_encoded_path() {
    let old = manifest(base_entries());
    let new = manifest(with(json!([
        { "path": "/home", "kind": "dir", "class": "regular", "mode": "0755" },
        { "path": "/home/runner", "kind": "dir", "class": "regular", "mode": "0750" },
        { "path": "/home/runner/.cache\\xff", "kind": "missing", "class": "regular",
          "accesses": [ { "op": "stat", "result": "ENOENT" } ] },
        { "path": "/etc/extra.conf", "kind": "file", "class": "regular", "mode": "0644",
          "accesses": [ { "op": "read", "result": "ok" } ] }
    ])));
    let (code, _, report) = run_both(&old, &new, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["added"].as_array().unwrap().len(), 4);

    // The pattern sees the encoded form (`\xff` as four characters); the
    // directories recorded only because of the ignored path go with it.
    let (code, _, report) = run_both(&old, &new, &["--ignore", r"^/home/runner/\.cache\\xff$"]);
    assert_eq!(code, 1);
    let added: Vec<&str> = report["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["/etc/extra.conf"]);

    let (code, text, _) = run_both(
        &old,
        &new,
        &["--ignore", "^/home/", "--ignore", r"extra\.conf$"],
    );
    assert_eq!(code, 0, "{text}");

    // An ignored path is left out of both sides: a change to it is no change.
    let changed = manifest(edit("/etc/app.conf", |e| {
        e.insert("mode".into(), json!("0600"));
    }));
    let (code, _, _) = run_both(&old, &changed, &["--ignore", "app"]);
    assert_eq!(code, 0);
}

#[test]
fn bad_ignore_regex_is_one_clear_error() {
    let dir = common::tempdir();
    let a = write(dir.path(), "a.json", &manifest(base_entries()));
    let out = diff(&a, &a, &["--ignore", "^/etc/(app"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        "jailtrace: --ignore \"^/etc/(app\": invalid regex: unclosed group\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn ignore_failed_leaves_out_failures_in_both() {
    let probe = |p: &str, op: &str, r: &str| json!({ "path": p, "kind": "missing", "class": "regular", "accesses": [ { "op": op, "result": r } ] });
    let old = manifest(with(json!([
        probe("/etc/app.conf.d", "stat", "ENOENT"),
        probe("/usr/lib/libbar.so", "read", "ENOENT"),
        { "path": "/etc/locale", "kind": "file", "class": "regular", "mode": "0644",
          "accesses": [ { "op": "read", "result": "ok" } ] },
    ])));
    let mut new_entries = with(json!([
        // Same probe, different errno.
        probe("/etc/app.conf.d", "stat", "EACCES"),
        // A probe only the new recording made.
        probe("/usr/lib/libbaz.so", "read", "ENOENT"),
        // Was read fine, now fails: always reported.
        probe("/etc/locale", "read", "ENOENT"),
    ]));
    // A file that exists but could not be written in either run.
    for e in new_entries.as_array_mut().unwrap() {
        if e["path"] == "/etc/app.conf" {
            e["accesses"] =
                json!([ { "op": "read", "result": "ok" }, { "op": "write", "result": "EROFS" } ]);
        }
    }
    let new = manifest(new_entries);

    let (code, _, report) = run_both(&old, &new, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["added"].as_array().unwrap().len(), 1);
    assert_eq!(report["removed"].as_array().unwrap().len(), 1);

    let (code, text, report) = run_both(&old, &new, &["--ignore-failed"]);
    assert_eq!(code, 1);
    assert_eq!(report["added"], json!([]), "{text}");
    assert_eq!(report["removed"], json!([]), "{text}");
    assert_eq!(
        report["changed"],
        json!([
            { "path": "/etc/locale", "field": "kind", "old": "file", "new": "missing" },
            { "path": "/etc/locale", "field": "mode", "old": "0644", "new": null },
        ])
    );
    assert_eq!(
        report["accesses"],
        json!([{ "path": "/etc/locale", "op": "read", "old": ["ok"], "new": ["ENOENT"] }])
    );
}

#[test]
fn temp_files_the_program_made_are_left_out_by_default() {
    let tmp = |name: &str| {
        json!([
            { "path": "/tmp", "kind": "dir", "class": "regular", "mode": "1777" },
            { "path": format!("/tmp/{name}"), "kind": "file", "class": "regular", "mode": "0600", "output": true,
              "accesses": [ { "op": "create", "result": "ok" }, { "op": "write", "result": "ok" },
                            { "op": "unlink", "result": "ok" } ] },
            { "path": "/var/tmp", "kind": "dir", "class": "regular", "mode": "1777" },
            { "path": format!("/var/tmp/d.{name}"), "kind": "dir", "class": "regular", "mode": "0700",
              "output": true, "accesses": [ { "op": "mkdir", "result": "ok" } ] },
            { "path": format!("/var/tmp/d.{name}/inner"), "kind": "file", "class": "regular", "mode": "0600",
              "accesses": [ { "op": "read", "result": "ok" } ] },
            { "path": format!("/dev/shm/sem.{name}"), "kind": "missing", "class": "regular",
              "accesses": [ { "op": "create", "result": "EEXIST" } ] },
        ])
    };
    let old = manifest(with(tmp("tmpa8Zq1x")));
    let new = manifest(with(tmp("tmpQ2m0Lp")));
    let (code, text, _) = run_both(&old, &new, &[]);
    assert_eq!(code, 0, "{text}");

    let (code, _, report) = run_both(&old, &new, &["--keep-temp"]);
    assert_eq!(code, 1);
    assert_eq!(report["added"].as_array().unwrap().len(), 4);

    // A file under /tmp that the program only reads is an input: compared.
    let input = |mode: &str| {
        manifest(with(json!([
            { "path": "/tmp", "kind": "dir", "class": "regular", "mode": "1777" },
            { "path": "/tmp/input.conf", "kind": "file", "class": "regular", "mode": mode,
              "accesses": [ { "op": "read", "result": "ok" } ] },
        ])))
    };
    let (code, _, report) = run_both(&input("0644"), &input("0600"), &[]);
    assert_eq!(code, 1);
    assert_eq!(report["changed"][0]["path"], "/tmp/input.conf");
    let (code, _, report) = run_both(&old, &input("0644"), &[]);
    assert_eq!(code, 1);
    assert_eq!(report["added"][0]["path"], "/tmp");
    assert_eq!(report["added"][1]["path"], "/tmp/input.conf");
}

#[test]
fn proc_link_targets_are_not_compared() {
    let self_link = |pid: &str| {
        manifest(with(json!([
            { "path": "/proc", "kind": "dir", "class": "proc" },
            { "path": "/proc/self", "kind": "symlink", "class": "proc", "target": pid,
              "accesses": [ { "op": "follow", "result": "ok" } ] },
        ])))
    };
    let (code, text, _) = run_both(&self_link("1234"), &self_link("5678"), &[]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn proc_pid_paths_are_compared_without_the_pid() {
    // redis-server reads /proc/<its pid>/stat, so every run records
    // another path.
    let pid_paths = |pid: &str, tid: &str, stat_op: &str| {
        manifest(with(json!([
            { "path": "/proc", "kind": "dir", "class": "proc" },
            { "path": format!("/proc/{pid}"), "kind": "dir", "class": "proc" },
            { "path": format!("/proc/{pid}/stat"), "kind": "file", "class": "proc",
              "accesses": [ { "op": stat_op, "result": "ok" } ] },
            { "path": format!("/proc/{pid}/task"), "kind": "dir", "class": "proc" },
            { "path": format!("/proc/{pid}/task/{tid}"), "kind": "dir", "class": "proc" },
            { "path": format!("/proc/{pid}/task/{tid}/comm"), "kind": "file", "class": "proc",
              "accesses": [ { "op": "write", "result": "ok" } ] },
        ])))
    };
    let (code, text, _) = run_both(
        &pid_paths("1234", "1240", "read"),
        &pid_paths("98765", "98777", "read"),
        &[],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text, report) = run_both(
        &pid_paths("1234", "1240", "read"),
        &pid_paths("98765", "98777", "stat"),
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(
        report["accesses"],
        json!([
            { "path": "/proc/[pid]/stat", "op": "read", "old": ["ok"], "new": [] },
            { "path": "/proc/[pid]/stat", "op": "stat", "old": [], "new": ["ok"] },
        ]),
        "{text}"
    );
    // Two processes in one recording: one key, all accesses.
    let mut two = pid_paths("1234", "1240", "read");
    two["entries"].as_array_mut().unwrap().extend([
        json!({ "path": "/proc/1300", "kind": "dir", "class": "proc" }),
        json!({ "path": "/proc/1300/stat", "kind": "file", "class": "proc",
                "accesses": [ { "op": "stat", "result": "ok" } ] }),
    ]);
    let (code, _, report) = run_both(&two, &pid_paths("5", "6", "read"), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        report["accesses"],
        json!([{ "path": "/proc/[pid]/stat", "op": "stat", "old": ["ok"], "new": [] }])
    );
    // A file named by digits outside /proc's process directories is itself.
    let (code, _, _) = run_both(
        &manifest(with(
            json!([{ "path": "/etc/1234", "kind": "file", "class": "regular" }]),
        )),
        &manifest(with(
            json!([{ "path": "/etc/98765", "kind": "file", "class": "regular" }]),
        )),
        &[],
    );
    assert_eq!(code, 1);
}

#[test]
fn hostile_paths_cannot_break_lines_or_the_terminal() {
    let old = manifest(base_entries());
    let new = manifest(with(json!([
        { "path": "/etc/a\nb\u{1b}[2J\u{9b}x", "kind": "file", "class": "regular",
          "accesses": [ { "op": "read", "result": "ok" } ] },
    ])));
    let (code, text, report) = run_both(&old, &new, &[]);
    assert_eq!(code, 1);
    assert!(
        text.contains("+ /etc/a\\x0ab\\x1b[2J\\xc2\\x9bx  file  read\n"),
        "{text:?}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\u{9b}'));
    // JSON keeps the exact path.
    assert_eq!(report["added"][0]["path"], "/etc/a\nb\u{1b}[2J\u{9b}x");
}

#[test]
fn errors_exit_2_with_one_line() {
    let dir = common::tempdir();
    let good = write(dir.path(), "good.json", &manifest(base_entries()));
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{\n  \"schema\": 1,\n  oops\n}\n").unwrap();
    let mut v3 = manifest(base_entries());
    v3["schema"] = json!(3);
    let v3 = write(dir.path(), "v3.json", &v3);
    let missing = dir.path().join("nope.json");
    let relative = write(
        dir.path(),
        "rel.json",
        &manifest(json!([{ "path": "etc", "kind": "dir", "class": "regular" }])),
    );

    let cases: [(&Path, &str); 4] = [
        (&bad_json, "line 3 column 3"),
        (&v3, "unsupported schema version 3"),
        (&missing, "cannot read"),
        (&relative, "not absolute"),
    ];
    for (bad, expect) in cases {
        for (a, b) in [(good.as_path(), bad), (bad, good.as_path())] {
            let out = diff(a, b, &[]);
            assert_eq!(out.status.code(), Some(2), "{}", bad.display());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(expect), "{expect:?} not in {err:?}");
            assert!(err.contains(&*bad.to_string_lossy()), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(out.stdout.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------
// With real recordings. These need `record`.

/// Records `argv` twice in the same directory and diffs the two manifests.
fn record_twice_and_diff(test: &str, dir: &Path, argv: &[&str]) {
    common::record_in(dir, "first", argv, 0);
    common::record_in(dir, "second", argv, 0);
    let out = diff(&dir.join("first.json"), &dir.join("second.json"), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{test}: two recordings of the same command differ:\n{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_recordings_of_a_forking_script_are_equal() {
    let dir = common::tempdir();
    let script = dir.path().join("fork.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         for i in 1 2 3 4 5 6; do\n\
           ( cat /etc/hostname /etc/passwd >/dev/null; ls / >/dev/null; tr a-z A-Z </etc/os-release | wc -l >/dev/null ) &\n\
         done\n\
         wait\n\
         id -u | sed 's/^/uid /' >/dev/null\n",
    )
    .unwrap();
    let script = script.to_str().unwrap().to_string();
    record_twice_and_diff("forking script", dir.path(), &["/bin/sh", &script]);
}

#[test]
fn two_recordings_of_python_import_json_are_equal() {
    if !common::require_program("python_import_json", "python3") {
        return;
    }
    // The system Python, not a version manager's shim script.
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3 is missing"
    );
    let dir = common::tempdir();
    // One untraced run first, so that a byte-code cache Python writes on
    // its first import is there for both recordings.
    common::success(Command::new("/usr/bin/python3").args(["-c", "import json"]));
    record_twice_and_diff(
        "python3 -c 'import json'",
        dir.path(),
        &["/usr/bin/python3", "-c", "import json"],
    );
}

/// Records redis-server under a fixed workload sent with redis-cli.
fn record_redis(dir: &Path, name: &str) {
    let port = common::free_port().to_string();
    let out = dir.join(format!("{name}.json"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut server = common::jailtrace()
        .current_dir(dir)
        .args(["record", "-o"])
        .arg(&out)
        .args(["--", "redis-server", "--port", &port, "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jailtrace record redis-server");
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .expect("run redis-cli")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let o = cli(&["ping"]);
        if o.status.success() && o.stdout.starts_with(b"PONG") {
            break;
        }
        if let Some(status) = server.try_wait().expect("poll record") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut err).unwrap();
            panic!("record redis-server ended early with {status}: {err}");
        }
        if std::time::Instant::now() > deadline {
            let _ = server.kill();
            panic!("redis-server did not answer on port {port}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for cmd in [
        &["set", "k", "v"][..],
        &["get", "k"],
        &["incr", "n"],
        &["lpush", "l", "a", "b", "c"],
        &["lrange", "l", "0", "-1"],
        &["del", "k"],
    ] {
        assert!(cli(cmd).status.success(), "redis-cli {cmd:?}");
    }
    // redis does periodic work ten times a second (serverCron reads
    // /proc/<pid>/stat, for example); give both runs several rounds of it
    // so that they do the same things.
    std::thread::sleep(std::time::Duration::from_millis(600));
    // SHUTDOWN closes the connection without a reply; the status of this
    // redis-cli does not matter, the server's does.
    let _ = cli(&["shutdown", "nosave"]);
    let result = server.wait_with_output().expect("wait for record");
    assert_eq!(
        result.status.code(),
        Some(0),
        "record redis-server: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn two_recordings_of_redis_with_a_workload_are_equal() {
    if !common::require_program("redis_workload", "redis-server")
        || !common::require_program("redis_workload", "redis-cli")
    {
        return;
    }
    let dir = common::tempdir();
    record_redis(dir.path(), "first");
    record_redis(dir.path(), "second");
    let out = diff(
        &dir.path().join("first.json"),
        &dir.path().join("second.json"),
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "two recordings of redis differ:\n{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The CI use: a committed manifest, a changed program that reads one more
/// config file and loads one less library; diff names exactly those.
#[test]
fn ci_diff_reports_exactly_the_changed_needs() {
    let base = common::fixture("diff_app", &[]);
    let variant = common::fixture("diff_app", &["-DVARIANT"]);
    // Two system libraries that only need libc, by their real paths so that
    // no symlink chain adds entries.
    let lib = |name: &str| {
        let p = Path::new("/lib/x86_64-linux-gnu").join(name);
        std::fs::canonicalize(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .to_str()
            .unwrap()
            .to_string()
    };
    let (libz, libcrypt) = (lib("libz.so.1"), lib("libcrypt.so.1"));

    // Both builds run as the same path in the same directory, so that only
    // what the program does can differ.
    let dir = common::tempdir();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/base.conf"), "port 80\n").unwrap();
    std::fs::write(dir.path().join("conf/extra.conf"), "debug 1\n").unwrap();
    let app = dir.path().join("app");
    let argv = ["./app", "conf", &libz, &libcrypt];

    std::fs::copy(&base, &app).unwrap();
    common::record_in(dir.path(), "committed", &argv, 0);
    // The same build again: nothing to report.
    common::record_in(dir.path(), "again", &argv, 0);
    let same = diff(
        &dir.path().join("committed.json"),
        &dir.path().join("again.json"),
        &[],
    );
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));

    std::fs::remove_file(&app).unwrap();
    std::fs::copy(&variant, &app).unwrap();
    common::record_in(dir.path(), "changed", &argv, 0);

    let committed = dir.path().join("committed.json");
    let changed = dir.path().join("changed.json");
    let out = diff(&committed, &changed, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let extra = std::fs::canonicalize(dir.path().join("conf/extra.conf")).unwrap();
    let paths = |group: &str| -> Vec<String> {
        report[group]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(paths("added"), [extra.to_str().unwrap()], "{report:#}");
    assert_eq!(paths("removed"), [libcrypt.as_str()], "{report:#}");
    for group in ["changed", "accesses", "command", "content"] {
        assert_eq!(report[group], json!([]), "{group}: {report:#}");
    }

    // The readable form names the same two paths, marked.
    let text = stdout(&diff(&committed, &changed, &[]));
    let marked: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("+ ") || l.starts_with("- ") || l.starts_with("~ "))
        .collect();
    assert_eq!(marked.len(), 2, "{text}");
    assert!(
        marked[0].starts_with(&format!("+ {}  file  read", extra.display())),
        "{text}"
    );
    assert!(
        marked[1].starts_with(&format!("- {libcrypt}  file  read")),
        "{text}"
    );
}
