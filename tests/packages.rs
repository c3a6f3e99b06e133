//! Package names: `record --packages`, `jailtrace packages` and the
//! package-level lines of `diff`, against the machine's real dpkg database.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn record(dir: &Path, name: &str, argv: &[&str], extra: &[&str]) -> Value {
    let out_path = dir.join(format!("{name}.json"));
    common::success(
        common::jailtrace()
            .current_dir(dir)
            .arg("record")
            .args(extra)
            .arg("-o")
            .arg(&out_path)
            .arg("--")
            .args(argv),
    );
    serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap()
}

fn packages_json(manifest: &Path, extra: &[&str]) -> Value {
    let out = common::success(
        common::jailtrace()
            .arg("packages")
            .args(["--format", "json"])
            .args(extra)
            .arg(manifest),
    );
    serde_json::from_str(&out).unwrap()
}

fn names(report: &Value) -> Vec<String> {
    report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_redis_recording_names_its_packages() {
    let test = "a_redis_recording_names_its_packages";
    if !common::require_program(test, "redis-server") {
        return;
    }
    let t = common::tempdir();
    let m = record(
        t.path(),
        "redis",
        &["redis-server", "--version"],
        &["--packages"],
    );
    // The names are in the manifest, on the files themselves.
    let libc = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .ends_with("/x86_64-linux-gnu/libc.so.6")
                && e["kind"] == "file"
        })
        .expect("libc.so.6 in the manifest");
    assert_eq!(libc["package"], "libc6", "{libc}");
    assert!(
        m["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "dir" || e.get("package").is_none()),
        "directories belong to no single package"
    );

    let path = t.path().join("redis.json");
    let stored = packages_json(&path, &[]);
    assert_eq!(stored["source"], "the manifest");
    let got = names(&stored);
    for want in ["libc6", "libssl3"] {
        assert!(got.iter().any(|n| n == want), "{want} missing from {got:?}");
    }
    assert!(
        got.iter()
            .any(|n| n == "redis-server" || n == "redis-tools"),
        "no redis package in {got:?}"
    );
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "packages are listed sorted");
    // Files no package owns are named as such, not dropped.
    let unowned: Vec<&str> = stored["unowned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(unowned.contains(&"/etc/ld.so.cache"), "{unowned:?}");

    // The same names when the host's database is asked afterwards, for a
    // manifest recorded without --packages.
    record(t.path(), "plain", &["redis-server", "--version"], &[]);
    let looked_up = packages_json(&t.path().join("plain.json"), &[]);
    assert_eq!(looked_up["source"], "this host's dpkg database");
    assert_eq!(names(&looked_up), got);

    let text = common::success(common::jailtrace().arg("packages").arg(&path));
    assert!(text.contains("  libc6 ("), "{text}");
    assert!(text.contains("files no package owns"), "{text}");
}

#[test]
fn diff_names_the_package_of_a_new_library_first() {
    let t = common::tempdir();
    let app = common::fixture("diff_app", &["-ldl"]);
    let conf = t.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(conf.join("base.conf"), "x\n").unwrap();
    let app = app.to_str().unwrap();
    let conf = conf.to_str().unwrap();
    record(t.path(), "old", &[app, conf, "libz.so.1"], &["--packages"]);
    record(
        t.path(),
        "new",
        &[app, conf, "libz.so.1", "libbz2.so.1.0"],
        &["--packages"],
    );
    let out = common::output(
        common::jailtrace()
            .arg("diff")
            .arg(t.path().join("old.json"))
            .arg(t.path().join("new.json")),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Packages (1):\n+ new package: libbz2-1.0\n"),
        "{text}"
    );
    let out = common::output(
        common::jailtrace()
            .args(["diff", "--format", "json"])
            .arg(t.path().join("old.json"))
            .arg(t.path().join("new.json")),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["packages"],
        serde_json::json!({"added": ["libbz2-1.0"], "removed": []})
    );
    // Backwards: the package is gone.
    let out = common::output(
        common::jailtrace()
            .arg("diff")
            .arg(t.path().join("new.json"))
            .arg(t.path().join("old.json")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("- package gone: libbz2-1.0"), "{text}");
}

/// Without a dpkg database `record --packages` fails before the command
/// runs, with one line naming what is missing.
#[test]
fn no_dpkg_database_fails_before_running_anything() {
    let test = "no_dpkg_database_fails_before_running_anything";
    if !common::require_root(test) || !common::require_program(test, "unshare") {
        return;
    }
    let t = common::tempdir();
    let marker = t.path().join("ran");
    let script = format!(
        "mount -t tmpfs none {admin} && exec {jt} record --packages -o {out} -- touch {marker}",
        admin = jailtrace::core::packages::DPKG_ADMIN,
        jt = env!("CARGO_BIN_EXE_jailtrace"),
        out = t.path().join("m.json").display(),
        marker = marker.display(),
    );
    let out = common::output(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/var/lib/dpkg/info: no dpkg database here"),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran");
    assert!(!t.path().join("m.json").exists());
}
