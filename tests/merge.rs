//! Black-box tests of `jailtrace merge` on hand-written manifests.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

fn manifest(argv: &[&str], exit_status: i32, entries: Value) -> Value {
    let mut m = common::manifest(entries);
    m["schema"] = json!(1);
    m["command"] =
        json!({ "argv": argv, "cwd": "/srv", "uid": 0, "gid": 0, "exit_status": exit_status });
    m
}

fn dir_entry(path: &str) -> Value {
    json!({ "path": path, "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 })
}

fn file(path: &str, accesses: Value) -> Value {
    json!({ "path": path, "kind": "file", "class": "regular", "mode": "0644", "uid": 0, "gid": 0,
            "size": 10, "accesses": accesses })
}

/// Three recordings of one service: startup, a workload, shutdown.
fn recordings() -> [Value; 3] {
    let startup = manifest(
        &["/usr/sbin/svc", "--start"],
        0,
        json!([
            dir_entry("/"),
            dir_entry("/etc"),
            file("/etc/svc.conf", json!([ { "op": "read", "result": "ok" } ])),
            { "path": "/etc/svc.d", "kind": "missing", "class": "regular",
              "accesses": [ { "op": "stat", "result": "ENOENT" } ] },
            { "path": "/lib", "kind": "symlink", "class": "regular", "target": "usr/lib",
              "accesses": [ { "op": "follow", "result": "ok" } ] },
            dir_entry("/run"),
            { "path": "/run/svc.pid", "kind": "file", "class": "regular", "mode": "0644", "uid": 0, "gid": 0,
              "output": true, "accesses": [ { "op": "create", "result": "ok" }, { "op": "write", "result": "ok" } ] },
        ]),
    );
    let workload = manifest(
        &["/usr/sbin/svc", "--start"],
        0,
        json!([
            dir_entry("/"),
            dir_entry("/etc"),
            // Read again, and stat'ed: the accesses are united.
            file("/etc/svc.conf", json!([ { "op": "read", "result": "ok" }, { "op": "stat", "result": "ok" } ])),
            // Created between recordings: present wins over missing.
            { "path": "/etc/svc.d", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0,
              "accesses": [ { "op": "read", "result": "ok" } ] },
            { "path": "/lib", "kind": "symlink", "class": "regular", "target": "usr/lib",
              "accesses": [ { "op": "follow", "result": "ok" } ] },
            dir_entry("/usr"),
            dir_entry("/usr/lib"),
            { "path": "/usr/lib/libx.so", "kind": "file", "class": "regular", "mode": "0644", "uid": 0, "gid": 0,
              "size": 99, "sha256": "ab".repeat(32), "accesses": [ { "op": "read", "result": "ok" } ] },
            { "path": "/proc", "kind": "dir", "class": "proc" },
            { "path": "/proc/self", "kind": "symlink", "class": "proc", "target": "4242",
              "accesses": [ { "op": "follow", "result": "ok" } ] },
        ]),
    );
    let shutdown = manifest(
        &["/usr/sbin/svc", "--stop"],
        0,
        json!([
            dir_entry("/"),
            dir_entry("/run"),
            // Unlinked now, and not written: `output` stays set from startup.
            { "path": "/run/svc.pid", "kind": "missing", "class": "regular",
              "accesses": [ { "op": "unlink", "result": "ok" } ] },
            dir_entry("/usr"),
            dir_entry("/usr/lib"),
            // No --hash this time: the digest from the workload is kept.
            { "path": "/usr/lib/libx.so", "kind": "file", "class": "regular", "mode": "0644", "uid": 0, "gid": 0,
              "size": 99, "accesses": [ { "op": "read", "result": "ok" } ] },
            { "path": "/proc", "kind": "dir", "class": "proc" },
            { "path": "/proc/self", "kind": "symlink", "class": "proc", "target": "777",
              "accesses": [ { "op": "follow", "result": "ok" } ] },
        ]),
    );
    [startup, workload, shutdown]
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

fn merge(inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    common::output(
        common::jailtrace()
            .arg("merge")
            .args(inputs)
            .arg("-o")
            .arg(out)
            .args(extra),
    )
}

fn merged_ok(inputs: &[&Path], out: &Path, extra: &[&str]) -> Vec<u8> {
    let o = merge(inputs, out, extra);
    assert_eq!(
        o.status.code(),
        Some(0),
        "merge failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).expect("merged manifest written")
}

fn entry<'a>(m: &'a Value, path: &str) -> &'a Value {
    common::entry(m, path).unwrap_or_else(|| panic!("no entry {path} in {m:#}"))
}

#[test]
fn union_of_entries_and_accesses() {
    let dir = common::tempdir();
    let [a, b, c] = recordings();
    let (a, b, c) = (
        write(dir.path(), "startup.json", &a),
        write(dir.path(), "workload.json", &b),
        write(dir.path(), "shutdown.json", &c),
    );
    let out = dir.path().join("merged.json");
    let bytes = merged_ok(&[&a, &b, &c], &out, &[]);
    let m: Value = serde_json::from_slice(&bytes).unwrap();

    let paths: Vec<&str> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/",
            "/etc",
            "/etc/svc.conf",
            "/etc/svc.d",
            "/lib",
            "/proc",
            "/proc/self",
            "/run",
            "/run/svc.pid",
            "/usr",
            "/usr/lib",
            "/usr/lib/libx.so"
        ]
    );
    assert_eq!(
        entry(&m, "/etc/svc.conf")["accesses"],
        json!([ { "op": "read", "result": "ok" }, { "op": "stat", "result": "ok" } ])
    );
    let svc_d = entry(&m, "/etc/svc.d");
    assert_eq!(svc_d["kind"], "dir");
    assert_eq!(
        svc_d["accesses"],
        json!([ { "op": "read", "result": "ok" }, { "op": "stat", "result": "ENOENT" } ])
    );
    // Present in startup, missing at shutdown; output ORed.
    let pid = entry(&m, "/run/svc.pid");
    assert_eq!(pid["kind"], "file");
    assert_eq!(pid["output"], true);
    assert_eq!(
        pid["accesses"],
        // In the schema's operation order.
        json!([ { "op": "write", "result": "ok" }, { "op": "create", "result": "ok" },
                { "op": "unlink", "result": "ok" } ])
    );
    assert_eq!(entry(&m, "/usr/lib/libx.so")["sha256"], "ab".repeat(32));
    // /proc/self points at a different pid each time: no conflict, no target.
    assert!(entry(&m, "/proc/self").get("target").is_none());

    // The header: one input's command, chosen independently of order, and
    // a warning that the commands differed. The generator is ours.
    assert_eq!(m["command"]["argv"], json!(["/usr/sbin/svc", "--start"]));
    assert_eq!(
        m["generator"],
        concat!("jailtrace ", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        m["warnings"],
        json!(["merged from recordings of 2 different commands; the header shows one of them"])
    );

    // The result is a manifest jailtrace reads back: diff against itself.
    let d = common::output(common::jailtrace().arg("diff").arg(&out).arg(&out));
    assert_eq!(
        d.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&d.stderr)
    );
}

#[test]
fn merge_is_independent_of_argument_order() {
    let dir = common::tempdir();
    let [a, b, c] = recordings();
    let paths = [
        write(dir.path(), "a.json", &a),
        write(dir.path(), "b.json", &b),
        write(dir.path(), "c.json", &c),
    ];
    let (a, b, c) = (paths[0].as_path(), paths[1].as_path(), paths[2].as_path());
    let out = dir.path().join("ab.json");
    let ab = merged_ok(&[a, b], &out, &[]);
    let ba = merged_ok(&[b, a], &dir.path().join("ba.json"), &[]);
    assert_eq!(ab, ba, "merge(a,b) and merge(b,a) differ");
    // With the output's own name the same too (names are not recorded).
    let first = merged_ok(&[a, b, c], &dir.path().join("abc.json"), &[]);
    for order in [[a, c, b], [b, a, c], [b, c, a], [c, a, b], [c, b, a]] {
        let other = merged_ok(&order, &dir.path().join("perm.json"), &[]);
        assert_eq!(first, other, "order {order:?}");
    }
    // Merging is associative here, and idempotent.
    let ab_c = merged_ok(&[&out, c], &dir.path().join("ab_c.json"), &[]);
    assert_eq!(first, ab_c);
    let again = merged_ok(&[a, a], &dir.path().join("aa.json"), &[]);
    let again2 = merged_ok(
        &[&dir.path().join("aa.json"), a],
        &dir.path().join("aaa.json"),
        &[],
    );
    assert_eq!(again, again2);
}

/// Two recordings that disagree about /lib and /etc/svc.conf.
fn conflicting(dir: &Path) -> (PathBuf, PathBuf) {
    let old = manifest(
        &["/usr/sbin/svc"],
        0,
        json!([
            dir_entry("/"),
            dir_entry("/etc"),
            file("/etc/svc.conf", json!([ { "op": "read", "result": "ok" } ])),
            dir_entry("/lib"),
            { "path": "/lib/libold.so", "kind": "file", "class": "regular", "mode": "0644",
              "accesses": [ { "op": "read", "result": "ok" } ] },
        ]),
    );
    let mut conf = file(
        "/etc/svc.conf",
        json!([ { "op": "write", "result": "ok" } ]),
    );
    conf["mode"] = json!("0600");
    let new = manifest(
        &["/usr/sbin/svc"],
        0,
        json!([
            dir_entry("/"),
            dir_entry("/etc"),
            conf,
            { "path": "/lib", "kind": "symlink", "class": "regular", "target": "usr/lib",
              "accesses": [ { "op": "follow", "result": "ok" } ] },
        ]),
    );
    (write(dir, "old.json", &old), write(dir, "new.json", &new))
}

#[test]
fn conflicts_fail_with_one_line_each_and_write_nothing() {
    let dir = common::tempdir();
    let (old, new) = conflicting(dir.path());
    let out = dir.path().join("merged.json");
    std::fs::write(&out, "previous content\n").unwrap();
    let o = merge(&[&old, &new], &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    // A symlink has no mode: absent values never conflict.
    let (o, n) = (old.display(), new.display());
    assert_eq!(
        lines,
        [
            format!("jailtrace: conflict at /etc/svc.conf: mode 0644 in {o} vs 0600 in {n}"),
            format!("jailtrace: conflict at /lib: kind dir in {o} vs symlink in {n}"),
            "jailtrace: 2 conflicts: nothing written; pass --prefer newer or --prefer older to settle them".to_string(),
        ]
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous content\n");
    // No temporary file left behind either.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 3);
}

#[test]
fn prefer_settles_conflicts_by_argument_order() {
    let dir = common::tempdir();
    let (old, new) = conflicting(dir.path());

    let out = dir.path().join("newer.json");
    let o = merge(&[&old, &new], &out, &["--prefer", "newer"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("conflict at /lib: kind dir in"), "{err}");
    assert!(err.contains("(took the newer)"), "{err}");
    assert!(
        err.contains("left out /lib/libold.so: /lib is not a directory in the merged manifest"),
        "{err}"
    );
    let m: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(entry(&m, "/lib")["kind"], "symlink");
    assert_eq!(entry(&m, "/lib")["target"], "usr/lib");
    assert!(common::entry(&m, "/lib/libold.so").is_none());
    let conf = entry(&m, "/etc/svc.conf");
    assert_eq!(conf["mode"], "0600");
    // Accesses are still the union.
    assert_eq!(
        conf["accesses"],
        json!([ { "op": "read", "result": "ok" }, { "op": "write", "result": "ok" } ])
    );

    // "newer" means the later argument: swapping the arguments and asking
    // for the older gives the same bytes.
    let swapped = dir.path().join("older.json");
    let o = merge(&[&new, &old], &swapped, &["--prefer", "older"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&swapped).unwrap()
    );

    let out = dir.path().join("older2.json");
    let o = merge(&[&old, &new], &out, &["--prefer", "older"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("(took the older)"));
    let m: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(entry(&m, "/lib")["kind"], "dir");
    assert_eq!(entry(&m, "/lib/libold.so")["kind"], "file");
    assert_eq!(entry(&m, "/etc/svc.conf")["mode"], "0644");
}

#[test]
fn every_conflicting_attribute_is_reported() {
    let dir = common::tempdir();
    let dev = |major: u32, minor: u32, class: &str| {
        manifest(
            &["/x"],
            0,
            json!([
                dir_entry("/"),
                { "path": "/dev", "kind": "dir", "class": "dev", "mode": "0755" },
                { "path": "/dev/tty", "kind": "chardev", "class": class, "mode": "0666", "uid": 0, "gid": 5,
                  "major": major, "minor": minor, "accesses": [ { "op": "read", "result": "ok" } ] },
            ]),
        )
    };
    let a = write(dir.path(), "a.json", &dev(5, 0, "dev"));
    let b = write(dir.path(), "b.json", &dev(4, 1, "regular"));
    let o = merge(&[&a, &b], &dir.path().join("m.json"), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for field in ["class dev in", "major 5 in", "minor 0 in"] {
        assert!(
            err.contains(&format!("conflict at /dev/tty: {field}")),
            "{field}: {err}"
        );
    }
    assert!(err.contains("3 conflicts"), "{err}");

    let owner = |uid: u32, size: u64| {
        manifest(
            &["/x"],
            0,
            json!([
                dir_entry("/"),
                { "path": "/f", "kind": "file", "class": "regular", "mode": "0644", "uid": uid, "gid": 0, "size": size },
            ]),
        )
    };
    let a = write(dir.path(), "a.json", &owner(0, 1));
    let b = write(dir.path(), "b.json", &owner(1000, 2));
    let c = write(dir.path(), "c.json", &owner(0, 2));
    let o = merge(&[&a, &b, &c], &dir.path().join("m.json"), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "conflict at /f: uid 0 in {}, {} vs 1000 in {}",
            a.display(),
            c.display(),
            b.display()
        )),
        "{err}"
    );
    assert!(err.contains("conflict at /f: size 1 in"), "{err}");
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = common::tempdir();
    let [a, ..] = recordings();
    let a = write(dir.path(), "a.json", &a);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": 1, \"generator\": 5}").unwrap();
    let out = dir.path().join("m.json");
    let o = merge(&[&a, &bad], &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&*bad.to_string_lossy()) && err.contains("line 1 column"),
        "{err}"
    );
    assert!(!out.exists());

    // One input is not a merge: a usage error, with merge's error status.
    let o = merge(&[&a], &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.exists());

    // An output directory that does not exist: the error names it.
    let o = merge(&[&a, &a], &dir.path().join("no/such/dir/m.json"), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no/such/dir/m.json"));
}

#[test]
fn output_to_stdout() {
    let dir = common::tempdir();
    let [a, b, _] = recordings();
    let a = write(dir.path(), "a.json", &a);
    let b = write(dir.path(), "b.json", &b);
    let file = merged_ok(&[&a, &b], &dir.path().join("m.json"), &[]);
    let o = merge(&[&a, &b], Path::new("-"), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, file);
}

#[test]
fn an_entry_any_recording_reached_is_no_longer_inferred() {
    let t = common::tempdir();
    let inferred = |path: &str, rule: &str| {
        let mut e = file(path, json!([]));
        e.as_object_mut().unwrap().remove("accesses");
        e["inferred"] = json!(rule);
        e
    };
    let mut etc = dir_entry("/etc");
    etc["inferred"] = json!("nss");
    let a = manifest(
        &["/bin/a"],
        0,
        json!([
            dir_entry("/"),
            etc.clone(),
            inferred("/etc/hosts", "resolver"),
            inferred("/etc/services", "nss"),
        ]),
    );
    let mut etc_b = dir_entry("/etc");
    etc_b["inferred"] = json!("resolver");
    let b = manifest(
        &["/bin/a"],
        0,
        json!([
            dir_entry("/"),
            etc_b,
            file("/etc/hosts", json!([ { "op": "read", "result": "ok" } ])),
            inferred("/etc/services", "resolver"),
        ]),
    );
    let (pa, pb) = (write(t.path(), "a", &a), write(t.path(), "b", &b));
    let out = t.path().join("m.json");
    let m: Value = serde_json::from_slice(&merged_ok(&[&pa, &pb], &out, &[])).unwrap();
    assert!(entry(&m, "/etc/hosts").get("inferred").is_none());
    assert_eq!(entry(&m, "/etc/hosts")["accesses"][0]["op"], "read");
    // Inferred by both: the first rule in the rules' order.
    assert_eq!(entry(&m, "/etc/services")["inferred"], "nss");
    assert_eq!(entry(&m, "/etc")["inferred"], "nss");
}

/// A privileged bind: asked if any recording asked, unknown if none did
/// and one does not say.
#[test]
fn a_privileged_bind_in_any_recording_is_kept() {
    let t = common::tempdir();
    let with = |asked: Option<bool>, name: &str| {
        let mut m = manifest(&["/usr/sbin/d"], 0, json!([dir_entry("/")]));
        if let Some(a) = asked {
            m["command"]["binds_privileged_port"] = json!(a);
        }
        write(t.path(), name, &m)
    };
    let yes = with(Some(true), "yes.json");
    let no = with(Some(false), "no.json");
    let unknown = with(None, "unknown.json");
    for (inputs, want) in [
        (vec![&no, &no], json!(false)),
        (vec![&no, &yes], json!(true)),
        (vec![&unknown, &yes], json!(true)),
        (vec![&no, &unknown], Value::Null),
    ] {
        let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        let out = t.path().join("out.json");
        let m: Value = serde_json::from_slice(&merged_ok(&inputs, &out, &[])).unwrap();
        assert_eq!(m["command"]["binds_privileged_port"], want, "{inputs:?}");
    }
}
