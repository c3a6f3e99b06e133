//! Jail hygiene: what a careful admin would otherwise clean up by hand.
//! Password hashes never enter a jail, `--accounts` keeps only the accounts
//! a jail needs, directories that only held failed probes are left out, a
//! jail under a directory others can write is flagged, and symlinks keep
//! the host's times.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn write_manifest(dir: &Path, m: &Value) -> PathBuf {
    let p = dir.join("m.json");
    std::fs::write(&p, m.to_string()).unwrap();
    p
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

fn names(p: &Path) -> Vec<String> {
    lines_of(p)
        .iter()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
postgres:x:101:104::/var/lib/postgresql:/bin/bash\n\
alice:x:1000:1000::/home/alice:/bin/bash\n\
bob:x:1001:1001::/home/bob:/bin/bash\n\
+::::::\n";
const GROUP: &str = "root:x:0:\ndaemon:x:1:\npostgres:x:104:\nssl-cert:x:105:postgres\n\
alice:x:1000:\nbob:x:1001:\n";
const SHADOW: &str = "root:$6$salt$roothash:19000:0:99999:7:::\n\
daemon:*:19000:0:99999:7:::\npostgres:!:19000::::::\n\
alice:$y$j9T$alicehash:19000:0:99999:7:::\nbob:!$y$locked:19000:0:99999:7:::\n";
const GSHADOW: &str = "root:*::\ndaemon:*::\npostgres:!::\nssl-cert:!::postgres\n\
alice:$6$grouphash::\nbob:!::\n";

/// Runs `jailtrace materialize ARGS` in a private mount namespace where the
/// host's account files are these fakes, bind-mounted over the real ones:
/// the host itself is never touched.
fn materialize_with_fake_accounts(dir: &Path, args: &[&str]) -> std::process::Output {
    let fakes = dir.join("fakes");
    std::fs::create_dir_all(&fakes).unwrap();
    let mut script = String::from("set -e\n");
    for (name, text) in [
        ("passwd", PASSWD),
        ("group", GROUP),
        ("shadow", SHADOW),
        ("gshadow", GSHADOW),
    ] {
        // Written once: a second materialize must see the same host files.
        if !fakes.join(name).exists() {
            std::fs::write(fakes.join(name), text).unwrap();
        }
        script += &format!("mount --bind '{}' /etc/{name}\n", s(&fakes.join(name)));
    }
    script += "exec \"$@\"\n";
    common::output(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .arg(env!("CARGO_BIN_EXE_jailtrace"))
            .arg("materialize")
            .args(args),
    )
}

/// A manifest naming the four account files, a file owned by alice, and
/// postgres as the id the program switched to.
fn accounts_manifest(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::write(&data, "x").unwrap();
    std::os::unix::fs::chown(&data, Some(1000), Some(1000)).unwrap();
    let file = |p: &str| json!({"path": p, "kind": "file", "class": "regular", "accesses": [{"op": "read", "result": "ok"}]});
    write_manifest(dir, &{
        let mut m = common::manifest(json!([
            file("/etc/passwd"), file("/etc/group"), file("/etc/shadow"), file("/etc/gshadow"),
            {"path": s(&data), "kind": "file", "class": "regular", "uid": 1000, "gid": 1000,
             "accesses": [{"op": "read", "result": "ok"}]},
        ]));
        m["command"]["set_uids"] = json!([101]);
        m["command"]["set_gids"] = json!([104]);
        m
    })
}

#[test]
fn password_hashes_never_enter_a_jail() {
    let name = "password_hashes_never_enter_a_jail";
    if !common::require_root(name) || !common::require_program(name, "unshare") {
        return;
    }
    let t = common::tempdir();
    let m = accounts_manifest(t.path());
    let jail = t.path().join("jail");
    let out = materialize_with_fake_accounts(t.path(), &[&s(&m), &s(&jail)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every hash is now `!`; what had no hash (`*`, `!`) is as it was, and
    // every other field too.
    assert_eq!(
        lines_of(&jail.join("etc/shadow")),
        [
            "root:!:19000:0:99999:7:::",
            "daemon:*:19000:0:99999:7:::",
            "postgres:!:19000::::::",
            "alice:!:19000:0:99999:7:::",
            "bob:!:19000:0:99999:7:::",
        ]
    );
    assert_eq!(lines_of(&jail.join("etc/gshadow"))[4], "alice:!::");
    // passwd and group keep every entry by default.
    assert_eq!(lines_of(&jail.join("etc/passwd")).join("\n") + "\n", PASSWD);
    assert_eq!(lines_of(&jail.join("etc/group")).join("\n") + "\n", GROUP);
    // check no longer calls the shadow file sensitive: it holds no secret.
    let chk = common::output(
        common::jailtrace()
            .args(["check", "--format", "json"])
            .arg(&jail),
    );
    let report: Value = serde_json::from_slice(&chk.stdout).unwrap();
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "sensitive-file"),
        "{report}"
    );
    // A second run changes nothing.
    let again = materialize_with_fake_accounts(t.path(), &[&s(&m), &s(&jail)]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("nothing to do"), "{text}");

    // Asked for, the hashes are copied, and check says so.
    let jail2 = t.path().join("jail2");
    let out =
        materialize_with_fake_accounts(t.path(), &["--keep-password-hashes", &s(&m), &s(&jail2)]);
    assert!(out.status.success());
    assert_eq!(
        lines_of(&jail2.join("etc/shadow")).join("\n") + "\n",
        SHADOW
    );
    let chk = common::output(
        common::jailtrace()
            .args(["check", "--format", "json"])
            .arg(&jail2),
    );
    assert_eq!(chk.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&chk.stdout).contains("sensitive-file"));
}

#[test]
fn accounts_keeps_the_named_root_owners_and_switched_ids() {
    let name = "accounts_keeps_the_named_root_owners_and_switched_ids";
    if !common::require_root(name) || !common::require_program(name, "unshare") {
        return;
    }
    let t = common::tempdir();
    let m = accounts_manifest(t.path());
    let jail = t.path().join("jail");
    let out =
        materialize_with_fake_accounts(t.path(), &["--accounts", "daemon", &s(&m), &s(&jail)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The NIS compat line is no account: left out, and said so among the
    // summary's warnings.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("1 line of /etc/passwd names no account"),
        "{said}"
    );
    // root; daemon, named; postgres, switched to; alice, owner of a file.
    // bob is none of these.
    assert_eq!(
        names(&jail.join("etc/passwd")),
        ["root", "daemon", "postgres", "alice"]
    );
    assert_eq!(
        names(&jail.join("etc/shadow")),
        ["root", "daemon", "postgres", "alice"]
    );
    // Their groups, and ssl-cert, which lists postgres as a member.
    assert_eq!(
        names(&jail.join("etc/group")),
        ["root", "daemon", "postgres", "ssl-cert", "alice"]
    );
    assert_eq!(
        names(&jail.join("etc/gshadow")),
        ["root", "daemon", "postgres", "ssl-cert", "alice"]
    );

    // An unknown name is one clear error, and nothing is written.
    let jail3 = t.path().join("jail3");
    let out =
        materialize_with_fake_accounts(t.path(), &["--accounts", "mallory", &s(&m), &s(&jail3)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--accounts mallory: no such user or group"),
        "{err}"
    );
    assert!(!jail3.exists());
}

#[test]
fn symlinks_keep_the_host_times() {
    let t = common::tempdir();
    let d = t.path().join("host");
    std::fs::create_dir(&d).unwrap();
    let link = d.join("UTC");
    std::os::unix::fs::symlink("Etc/UTC", &link).unwrap();
    // An old time on the link itself, as a package leaves it.
    let old = nix::sys::time::TimeSpec::new(1_500_000_000, 123_456_789);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &link,
        &old,
        &old,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    let m = write_manifest(
        t.path(),
        &common::manifest(
            json!([{"path": s(&link), "kind": "symlink", "class": "regular",
            "target": "Etc/UTC", "accesses": [{"op": "follow", "result": "ok"}]}]),
        ),
    );
    let jail = t.path().join("jail");
    common::success(common::jailtrace().arg("materialize").arg(&m).arg(&jail));
    let inside = jail.join(s(&link).trim_start_matches('/'));
    let (h, j) = (
        std::fs::symlink_metadata(&link).unwrap(),
        std::fs::symlink_metadata(&inside).unwrap(),
    );
    assert!(j.file_type().is_symlink());
    assert_eq!((j.mtime(), j.mtime_nsec()), (h.mtime(), h.mtime_nsec()));
    assert_eq!(j.mtime(), 1_500_000_000);
    // And a second run sees nothing to do.
    let again = common::success(common::jailtrace().arg("materialize").arg(&m).arg(&jail));
    assert!(again.contains("nothing to do"), "{again}");
}

#[test]
fn a_jail_under_a_directory_others_can_write_is_flagged() {
    let name = "a_jail_under_a_directory_others_can_write_is_flagged";
    if !common::require_root(name) {
        return;
    }
    let m_dir = common::tempdir();
    let m = write_manifest(
        m_dir.path(),
        &common::manifest(json!([{"path": "/etc", "kind": "dir", "class": "regular"}])),
    );
    let check = |jail: &Path| {
        let out = common::output(
            common::jailtrace()
                .args(["check", "--format", "json"])
                .arg(jail),
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let found: Vec<(String, String)> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "writable-ancestor")
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().into(),
                    f["path"].as_str().unwrap().into(),
                )
            })
            .collect();
        (out.status.code(), found)
    };

    // Under /tmp (1777): anyone can replace the jail.
    let tmp = tempfile::Builder::new()
        .prefix("jailtrace-test-")
        .tempdir_in("/tmp")
        .unwrap();
    let jail = tmp.path().join("jail");
    let out = common::success(common::jailtrace().arg("materialize").arg(&m).arg(&jail));
    assert!(
        out.contains("/tmp (mode 1777, sticky) can be written by"),
        "{out}"
    );
    assert_eq!(
        check(&jail),
        (Some(1), vec![("high".into(), "/tmp".into())])
    );

    // Under a directory owned by someone else, with a safe mode.
    let t = common::tempdir();
    let theirs = t.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let jail = theirs.join("jail");
    common::success(common::jailtrace().arg("materialize").arg(&m).arg(&jail));
    let (code, found) = check(&jail);
    assert_eq!((code, found), (Some(1), vec![("high".into(), s(&theirs))]));

    // Where only root writes every ancestor: nothing to say.
    let jail = t.path().join("jail");
    let out = common::success(common::jailtrace().arg("materialize").arg(&m).arg(&jail));
    assert!(!out.contains("can replace the jail"), "{out}");
    assert_eq!(check(&jail), (Some(0), vec![]));
}

/// A PATH search through a directory that exists on the host but holds
/// nothing the program runs leaves that directory out of the jail, and the
/// jailed run sees the same ENOENT and prints the same.
#[test]
fn e2e_directories_of_vain_probes_are_left_out_with_the_same_result() {
    let name = "e2e_directories_of_vain_probes_are_left_out_with_the_same_result";
    if !common::require_root(name) {
        return;
    }
    let t = common::tempdir();
    let extra = t.path().join("extra").join("bin");
    std::fs::create_dir_all(&extra).unwrap();
    let script = format!("PATH={}:/usr/bin:/bin; id -un", s(&extra));
    let argv = ["/bin/sh", "-c", script.as_str()];
    let host = common::output(Command::new(argv[0]).args(&argv[1..]));
    let m = common::record_in(t.path(), "rec", &argv, 0);
    let probe = format!("{}/id", s(&extra));
    assert!(
        common::has_access(&m, &probe, "stat", "ENOENT"),
        "no failed probe of {probe}"
    );
    let jail = t.path().join("jail");
    let out = common::success(
        common::jailtrace()
            .arg("materialize")
            .arg(t.path().join("rec.json"))
            .arg(&jail),
    );
    assert!(out.contains("looked for in vain"), "{out}");
    let inside = jail.join(s(&extra).trim_start_matches('/'));
    assert!(!inside.exists(), "{} is clutter", s(&extra));
    assert!(!inside.parent().unwrap().exists());
    // The jailed run, traced: the same probe fails the same way, and the
    // program prints the same.
    let rec = t.path().join("jailed.json");
    let jailed = common::output(
        common::jailtrace()
            .arg("record")
            .arg("-o")
            .arg(&rec)
            .arg("--")
            .arg("chroot")
            .arg(&jail)
            .args(argv),
    );
    assert_eq!(
        (jailed.status.code(), &jailed.stdout),
        (host.status.code(), &host.stdout),
        "{}",
        String::from_utf8_lossy(&jailed.stderr)
    );
    // Recorded beneath the root chroot entered, as the kernel resolved it.
    let jm: Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
    let probe_inside = format!("{}{probe}", s(&jail));
    assert!(
        common::has_access(&jm, &probe_inside, "stat", "ENOENT"),
        "no failed probe of {probe_inside} in the jail"
    );
    let check = common::output(common::jailtrace().arg("check").arg(&jail));
    assert!(!String::from_utf8_lossy(&check.stdout).contains("extra"));
}

fn set_ids(m: &Value) -> (Value, Value) {
    (
        m["command"]["set_uids"].clone(),
        m["command"]["set_gids"].clone(),
    )
}

/// The credentials a program switches to are in the manifest, from every
/// form of the set*id calls (i386's too); a call that fails adds nothing.
#[test]
fn switched_ids_are_recorded() {
    let name = "switched_ids_are_recorded";
    if !common::require_root(name) {
        return;
    }
    let t = common::tempdir();
    for flags in [&[][..], &["-m32"][..]] {
        let bin = common::fixture("setid", flags);
        let m = common::record_in(
            t.path(),
            "rec",
            &[bin.to_str().unwrap(), "101", "104", "105"],
            0,
        );
        // root's own ids stay in the real or saved ids until the last call.
        assert_eq!(
            set_ids(&m),
            (json!([0, 101]), json!([0, 104, 105])),
            "{flags:?}"
        );
    }
    // As nobody every call fails: nothing was switched to.
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out_dir = t.path().join("nobody");
    std::fs::create_dir(&out_dir).unwrap();
    std::os::unix::fs::chown(&out_dir, Some(65534), Some(65534)).unwrap();
    let bin = common::fixture("setid", &[]);
    let out = common::output(
        common::jailtrace()
            .uid(65534)
            .gid(65534)
            .arg("record")
            .arg("-o")
            .arg(out_dir.join("m.json"))
            .arg("--")
            .args([bin.to_str().unwrap(), "101", "104", "105"]),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&std::fs::read(out_dir.join("m.json")).unwrap()).unwrap();
    assert_eq!(set_ids(&m), (Value::Null, Value::Null));
}

/// A real daemon that drops root: memcached -u nobody.
#[test]
fn a_daemon_dropping_root_records_its_user() {
    let name = "a_daemon_dropping_root_records_its_user";
    if !common::require_root(name) || !common::require_program(name, "memcached") {
        return;
    }
    let t = common::tempdir();
    let m = t.path().join("m.json");
    common::output(
        common::jailtrace()
            .args(["record", "--timeout", "1s", "-o"])
            .arg(&m)
            .args([
                "--",
                "memcached",
                "-u",
                "nobody",
                "-l",
                "127.0.0.1",
                "-p",
                "21121",
                "-U",
                "0",
            ]),
    );
    let m: Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    let uids = m["command"]["set_uids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let gids = m["command"]["set_gids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(uids.contains(&json!(65534)), "{uids:?}");
    assert!(gids.contains(&json!(65534)), "{gids:?}");
}
