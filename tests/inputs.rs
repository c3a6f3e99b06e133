//! What existed before the run is an input: `record` tells objects the
//! program found from objects it made (`created`), and `materialize` puts
//! every found object in the jail, whatever the program then did to it.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `<t>/data`, holding what `fixtures/found.c` expects to find.
fn prepare(t: &Path) -> std::path::PathBuf {
    let dir = t.join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("state"), "there before\n").unwrap();
    std::fs::write(dir.join("locked"), "").unwrap();
    std::fs::create_dir(dir.join("olddir")).unwrap();
    dir
}

fn flag(m: &Value, path: &str, field: &str) -> bool {
    let e = common::entry(m, path).unwrap_or_else(|| panic!("no entry {path}"));
    e[field].as_bool().unwrap_or(false)
}

#[test]
fn found_and_created_are_told_apart() {
    let found = common::fixture("found", &[]);
    let t = common::tempdir();
    let d = prepare(t.path());
    let dir = d.to_str().unwrap();
    let m = common::record_in(t.path(), "rec", &[found.to_str().unwrap(), dir], 0);
    let at = |name: &str| format!("{dir}/{name}");
    // (path, output, created, kind)
    let expect = [
        (at("state"), true, false, "file"),
        (at("locked"), false, false, "file"),
        (at("olddir"), false, false, "dir"),
        (at("fresh"), true, true, "file"),
        (at("tmp"), true, true, "missing"),
        (at("renamed"), true, true, "file"),
        (at("newdir"), true, true, "dir"),
        (at("link"), true, true, "symlink"),
        (at("fifo"), true, true, "fifo"),
        (at("gone"), true, true, "missing"),
        (dir.to_string(), false, false, "dir"),
        ("/dev/null".to_string(), false, false, "chardev"),
    ];
    for (path, output, created, kind) in expect {
        let e = common::entry(&m, &path).unwrap_or_else(|| panic!("no entry {path}"));
        assert_eq!(
            (
                flag(&m, &path, "output"),
                flag(&m, &path, "created"),
                e["kind"].as_str()
            ),
            (output, created, Some(kind)),
            "{path}: {e}"
        );
    }
    assert!(common::has_access(&m, &at("state"), "create", "ok"));
    assert!(common::has_access(&m, &at("locked"), "create", "EEXIST"));
    assert_eq!(m["schema"], 2);
}

/// A file read and then replaced by a rename stays an input (postgres's
/// pgstat.stat); a shell's `>>` onto a file that is there finds it.
#[test]
fn read_then_replaced_by_rename_stays_an_input() {
    let t = common::tempdir();
    let d = t.path();
    std::fs::write(d.join("stat"), "old\n").unwrap();
    std::fs::write(d.join("log"), "line\n").unwrap();
    let script = "cat stat >/dev/null; echo new > stat.tmp; mv stat.tmp stat; echo x >> log; echo y >> newlog";
    let m = common::record_in(d, "rec", &["sh", "-c", script], 0);
    let at = |name: &str| format!("{}/{name}", d.display());
    for (name, created) in [
        ("stat", false),
        ("log", false),
        ("newlog", true),
        ("stat.tmp", true),
    ] {
        assert_eq!(flag(&m, &at(name), "created"), created, "{name}");
        assert!(flag(&m, &at(name), "output"), "{name}");
    }
}

/// The proof that counts: the jail built from the recording, with no
/// `--with-outputs`, runs the program as the host did. It reads `state`
/// through its `O_CREAT` descriptor, finds `locked` and `olddir` (its
/// `O_EXCL` open and `mkdir` must fail), and makes `fresh`, `newdir`,
/// `link` and `fifo` anew (they must not be there).
#[test]
fn e2e_the_jail_holds_what_the_run_found_and_not_what_it_made() {
    let name = "e2e_the_jail_holds_what_the_run_found_and_not_what_it_made";
    if !common::require_root(name) {
        return;
    }
    let found = common::fixture("found", &[]);
    let t = common::tempdir();
    let d = prepare(t.path());
    let dir = d.to_str().unwrap();
    common::record_in(t.path(), "rec", &[found.to_str().unwrap(), dir], 0);
    let jail = t.path().join("jail");
    common::success(
        common::jailtrace()
            .arg("materialize")
            .arg(t.path().join("rec.json"))
            .arg(&jail),
    );
    // What the host file holds now, after the recorded run appended to it.
    let state = std::fs::read_to_string(d.join("state")).unwrap();
    let inside = |p: &str| jail.join(p.trim_start_matches('/'));
    for made in ["fresh", "newdir", "link", "fifo", "renamed"] {
        assert!(
            std::fs::symlink_metadata(inside(&format!("{dir}/{made}"))).is_err(),
            "{made} was made by the run and must not be in the jail"
        );
    }
    let null = std::fs::metadata(inside("/dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    let out = common::output(Command::new("chroot").arg(&jail).arg(&found).arg(dir));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
        ),
        (Some(0), format!("{state}done\n")),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
