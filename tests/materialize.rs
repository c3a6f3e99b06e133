//! Black-box tests of `jailtrace materialize`: hand-written manifests for each
//! kind of entry and each hostile jail, run for real; and end-to-end tests
//! that record a program, materialize its jail and run it under chroot.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

const NOBODY: u32 = 65534;

/// These tests write schema 1, so that loading an old manifest (and the
/// `created` it derives) is exercised by every one of them.
fn manifest(entries: Vec<Value>) -> String {
    let mut m = common::manifest(Value::Array(entries));
    m["schema"] = json!(1);
    m.to_string()
}

fn e_dir(p: &str) -> Value {
    json!({"path": p, "kind": "dir", "class": "regular"})
}

fn e_file(p: &str) -> Value {
    json!({"path": p, "kind": "file", "class": "regular"})
}

fn e_link(p: &str, target: &str) -> Value {
    json!({"path": p, "kind": "symlink", "class": "regular", "target": target})
}

fn e_chr(p: &str, major: u32, minor: u32) -> Value {
    json!({"path": p, "kind": "chardev", "class": "dev", "mode": "0666",
           "uid": 0, "gid": 0, "major": major, "minor": minor})
}

fn s(p: &Path) -> String {
    p.to_str().expect("test paths are UTF-8").to_string()
}

/// Writes a manifest readable by everyone whatever the umask: some tests
/// materialize it as nobody.
fn write_manifest(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

/// Waits for a child, killing it (and failing) after `secs`: a materialize
/// that blocks, on a FIFO say, must fail the test rather than hang it.
fn wait_timeout(mut child: Child, secs: u64, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {secs}s\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn materialize_cmd(args: &[&str], m: &Path, jail: &Path) -> Command {
    let mut c = common::jailtrace();
    c.arg("materialize")
        .args(args)
        .arg(m)
        .arg(jail)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run_cmd(mut c: Command) -> (i32, String, String) {
    let out = wait_timeout(c.spawn().expect("spawn jailtrace"), 60, "materialize");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn materialize(args: &[&str], m: &Path, jail: &Path) -> (i32, String, String) {
    run_cmd(materialize_cmd(args, m, jail))
}

fn materialize_ok(args: &[&str], m: &Path, jail: &Path) -> String {
    let (code, out, err) = materialize(args, m, jail);
    assert_eq!(
        code, 0,
        "materialize failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// `jail` + absolute manifest path.
fn inside(jail: &Path, p: &str) -> PathBuf {
    jail.join(p.trim_start_matches('/'))
}

fn lmeta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A canary directory holding one file, to prove nothing beneath it changes.
fn canary(dir: &Path) -> PathBuf {
    let c = dir.join("canary");
    std::fs::create_dir(&c).unwrap();
    std::fs::write(c.join("keep"), "canary\n").unwrap();
    c
}

/// Unmounts (lazily) when dropped, so a failing test leaves no mount behind.
struct Mounted(PathBuf);

impl Mounted {
    fn new(args: &[&str], at: &Path) -> Mounted {
        let st = Command::new("mount").args(args).arg(at).status().unwrap();
        assert!(st.success(), "mount {args:?} {}", at.display());
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn make_host_file(p: &Path, data: &str, mode: u32, owner: (u32, u32), mtime_secs: u64) {
    std::fs::write(p, data).unwrap();
    std::os::unix::fs::chown(p, Some(owner.0), Some(owner.1)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_secs))
        .unwrap();
}

// ------------------------------------------------------ each kind of entry

#[test]
fn creates_each_kind_with_host_metadata() {
    if !common::require_root("creates_each_kind_with_host_metadata") {
        return;
    }
    let t = common::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::os::unix::fs::chown(&src, Some(1000), Some(1001)).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
    let data = src.join("data.txt");
    make_host_file(&data, "hello jail\n", 0o640, (1000, 1001), 1_000_000_000);
    let jail = t.path().join("jail");
    let srcs = s(&src);
    let m = manifest(vec![
        json!({"path": "/", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0}),
        json!({"path": srcs, "kind": "dir", "class": "regular", "mode": "0750", "uid": 1000, "gid": 1001}),
        json!({"path": s(&data), "kind": "file", "class": "regular", "mode": "0640", "size": 11}),
        e_link(&format!("{srcs}/abs"), "/etc/passwd"),
        e_link(&format!("{srcs}/rel"), "data.txt"),
        json!({"path": "/dev", "kind": "dir", "class": "dev", "mode": "0755"}),
        e_chr("/dev/null", 1, 3),
        e_chr("/dev/urandom", 1, 9),
        json!({"path": "/dev/log", "kind": "socket", "class": "dev"}),
        json!({"path": format!("{srcs}/pipe"), "kind": "fifo", "class": "regular", "mode": "0620"}),
        json!({"path": format!("{srcs}/nothere"), "kind": "missing", "class": "regular"}),
        json!({"path": "/proc", "kind": "dir", "class": "proc", "mode": "0555"}),
        json!({"path": "/proc/self/status", "kind": "file", "class": "proc"}),
        json!({"path": "/sys/kernel/mm/transparent_hugepage/enabled", "kind": "file", "class": "sys"}),
    ]);
    let mf = write_manifest(t.path(), "m.json", &m);
    let out = materialize_ok(&[], &mf, &jail);

    // The regular file: content, mode, owner and mtime of the host file.
    let j = inside(&jail, &s(&data));
    assert_eq!(std::fs::read_to_string(&j).unwrap(), "hello jail\n");
    let md = lmeta(&j);
    assert!(md.file_type().is_file());
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!((md.uid(), md.gid()), (1000, 1001));
    assert_eq!(md.mtime(), 1_000_000_000);
    assert_eq!(md.nlink(), 1, "never a hard link to the host file");
    assert_ne!(md.ino(), lmeta(&data).ino());
    // Directories, ancestors included, with their host mode and owner.
    let md = lmeta(&inside(&jail, &srcs));
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o750, 1000, 1001)
    );
    let tmp_host = std::fs::metadata(t.path()).unwrap();
    let md = lmeta(&inside(&jail, &s(t.path())));
    assert_eq!(md.mode() & 0o7777, tmp_host.mode() & 0o7777);
    assert_eq!(lmeta(&jail).mode() & 0o7777, 0o755);
    // Symlinks keep their targets verbatim, absolute ones too.
    assert_eq!(
        std::fs::read_link(inside(&jail, &format!("{srcs}/abs"))).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::read_link(inside(&jail, &format!("{srcs}/rel"))).unwrap(),
        Path::new("data.txt")
    );
    // Safe devices, with their numbers.
    let null = lmeta(&jail.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), std::fs::metadata("/dev/null").unwrap().rdev());
    assert_eq!(null.mode() & 0o7777, 0o666);
    assert!(lmeta(&jail.join("dev/urandom"))
        .file_type()
        .is_char_device());
    // The FIFO.
    let fifo = lmeta(&inside(&jail, &format!("{srcs}/pipe")));
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o777, 0o620);
    // No socket, nothing for `missing`, proc and sys only as mount points.
    assert!(!jail.join("dev/log").exists());
    assert!(!inside(&jail, &format!("{srcs}/nothere")).exists());
    assert_eq!(std::fs::read_dir(jail.join("proc")).unwrap().count(), 0);
    assert_eq!(lmeta(&jail.join("proc")).mode() & 0o7777, 0o555);
    assert_eq!(std::fs::read_dir(jail.join("sys")).unwrap().count(), 0);

    // The summary: counts, skipped entries with reasons, mounts.
    assert!(out.contains("created: 1 files"), "{out}");
    assert!(out.contains(", 2 symlinks"), "{out}");
    assert!(out.contains(", 2 devices"), "{out}");
    assert!(out.contains(", 1 fifos"), "{out}");
    assert!(out.contains("/dev/log: syslog socket"), "{out}");
    assert!(
        out.contains(&format!("syslogd -a {}/dev/log", jail.display())),
        "{out}"
    );
    assert!(
        out.contains("/proc/self/status: on the proc file system"),
        "{out}"
    );
    assert!(
        out.contains(&format!("mount -t proc proc {}/proc", jail.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("mount -t sysfs sysfs {}/sys", jail.display())),
        "{out}"
    );
}

#[test]
fn second_run_changes_nothing_and_says_so() {
    if !common::require_root("second_run_changes_nothing_and_says_so") {
        return;
    }
    let t = common::tempdir();
    let data = t.path().join("data");
    make_host_file(&data, "x", 0o644, (0, 0), 1_500_000_000);
    let jail = t.path().join("jail");
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_file(&s(&data)),
            e_link("/lib64", "usr/lib64"),
            json!({"path": "/dev", "kind": "dir", "class": "dev", "mode": "0755"}),
            e_chr("/dev/zero", 1, 5),
            json!({"path": "/tmp", "kind": "dir", "class": "regular", "mode": "1777"}),
        ]),
    );
    let first = materialize_ok(&[], &mf, &jail);
    assert!(!first.contains("nothing to do"), "{first}");
    let before = common::snapshot(&jail);
    let second = materialize_ok(&[], &mf, &jail);
    assert!(second.contains("nothing to do"), "{second}");
    assert_eq!(
        before,
        common::snapshot(&jail),
        "a second run changed the jail"
    );
}

#[test]
fn a_new_manifest_updates_only_what_changed() {
    if !common::require_root("a_new_manifest_updates_only_what_changed") {
        return;
    }
    let t = common::tempdir();
    let a = t.path().join("a");
    let b = t.path().join("b");
    make_host_file(&a, "one", 0o644, (0, 0), 1_500_000_000);
    make_host_file(&b, "bee", 0o644, (0, 0), 1_500_000_000);
    let jail = t.path().join("jail");
    let m1 = write_manifest(
        t.path(),
        "m1.json",
        &manifest(vec![e_file(&s(&a)), e_file(&s(&b)), e_link("/l", "x")]),
    );
    materialize_ok(&[], &m1, &jail);
    let before = common::snapshot(&jail);

    // The host file changes, a symlink target changes, an entry is added.
    make_host_file(&a, "two!", 0o600, (0, 0), 1_600_000_000);
    let m2 = write_manifest(
        t.path(),
        "m2.json",
        &manifest(vec![
            e_file(&s(&a)),
            e_file(&s(&b)),
            e_link("/l", "y"),
            e_link("/new", "z"),
        ]),
    );
    let out = materialize_ok(&[], &m2, &jail);
    assert!(out.contains("created: 1 files"), "{out}");
    assert!(out.contains(", 2 symlinks"), "{out}");
    let after = common::snapshot(&jail);
    let ja = inside(&jail, &s(&a));
    assert_eq!(std::fs::read_to_string(&ja).unwrap(), "two!");
    assert_eq!(lmeta(&ja).mode() & 0o7777, 0o600);
    assert_eq!(std::fs::read_link(jail.join("l")).unwrap(), Path::new("y"));
    assert_eq!(
        std::fs::read_link(jail.join("new")).unwrap(),
        Path::new("z")
    );
    // b is untouched; directories keep their inode, mode and owner (their
    // times change where entries were renamed in).
    let jb = inside(&jail, &s(&b));
    assert_eq!(before[&jb], after[&jb]);
    for (p, n) in &before {
        if lmeta(p).is_dir() {
            let a = &after[p];
            assert_eq!((n.ino, n.mode, n.uid, n.gid), (a.ino, a.mode, a.uid, a.gid));
        }
    }
}

#[test]
fn sha256_compares_content_and_catches_host_changes() {
    if !common::require_root("sha256_compares_content_and_catches_host_changes") {
        return;
    }
    let t = common::tempdir();
    let f = t.path().join("f");
    make_host_file(&f, "abc", 0o644, (0, 0), 1_500_000_000);
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let jail = t.path().join("jail");
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            json!({"path": s(&f), "kind": "file", "class": "regular", "sha256": abc}),
        ]),
    );
    materialize_ok(&[], &mf, &jail);
    let jf = inside(&jail, &s(&f));
    // Same size and mtime, other content: only the hash notices.
    make_host_file(&jf, "xyz", 0o644, (0, 0), 1_500_000_000);
    let out = materialize_ok(&[], &mf, &jail);
    assert!(out.contains("created: 1 files"), "{out}");
    assert_eq!(std::fs::read_to_string(&jf).unwrap(), "abc");

    // The host file no longer has the recorded content: not copied, named.
    make_host_file(&f, "abd", 0o644, (0, 0), 1_500_000_001);
    make_host_file(&jf, "xyz", 0o644, (0, 0), 1_500_000_000);
    let (code, _out, err) = materialize(&[], &mf, &jail);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&s(&f)) && err.contains("changed since the recording"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&jf).unwrap(), "xyz");
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let t = common::tempdir();
    let data = t.path().join("data");
    std::fs::write(&data, "d").unwrap();
    let jail = t.path().join("jail");
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_file(&s(&data)),
            e_link("/bin", "usr/bin"),
            e_chr("/dev/null", 1, 3),
        ]),
    );
    let out = materialize_ok(&["--dry-run"], &mf, &jail);
    assert!(!jail.exists(), "dry run created the jail");
    assert!(out.contains("nothing was written"), "{out}");
    assert!(out.contains(&format!("copy    {}", s(&data))), "{out}");
    assert!(out.contains("symlink /bin -> usr/bin"), "{out}");
    assert!(out.contains("mknod   c /dev/null 1:3"), "{out}");

    // Over an existing, hostile jail: the plan says what would be replaced,
    // and still nothing changes.
    std::fs::create_dir(&jail).unwrap();
    std::os::unix::fs::symlink("/", jail.join("bin")).unwrap();
    // The top directory of the data file's path (`/tmp`, `/var`).
    let top = format!("/{}", s(t.path()).split('/').nth(1).unwrap());
    std::os::unix::fs::symlink("/", jail.join(&top[1..])).unwrap();
    let before = common::snapshot(&jail);
    let out = materialize_ok(&["--dry-run"], &mf, &jail);
    assert!(out.contains(&format!("mkdir   {top}")), "{out}");
    assert!(
        out.contains(&format!("replace {top} (symlink -> /)")),
        "{out}"
    );
    assert_eq!(before, common::snapshot(&jail));
}

#[test]
fn refuses_dangerous_devices_unless_allowed() {
    if !common::require_root("refuses_dangerous_devices_unless_allowed") {
        return;
    }
    let t = common::tempdir();
    let jail = t.path().join("jail");
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_chr("/dev/mem", 1, 1),
            e_chr("/dev/kmem", 1, 2),
            e_chr("/dev/port", 1, 4),
            e_chr("/dev/null", 8, 0),
            e_chr("/dev/tty", 5, 0),
            json!({"path": "/dev/sda", "kind": "blockdev", "class": "dev", "mode": "0660",
                   "major": 8, "minor": 0}),
        ]),
    );
    let out = materialize_ok(&[], &mf, &jail);
    for (dev, why) in [
        ("/dev/mem", "physical memory"),
        ("/dev/kmem", "kernel memory"),
        ("/dev/port", "I/O ports"),
        ("/dev/null", "is 1:3"),
        ("/dev/sda", "raw access to a disk"),
    ] {
        assert!(!inside(&jail, dev).exists(), "{dev} created");
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{dev}:")))
            .unwrap_or_else(|| panic!("{dev} not listed as skipped:\n{out}"));
        assert!(
            line.contains(why) && line.contains("--allow-device"),
            "{line}"
        );
    }
    assert!(lmeta(&jail.join("dev/tty")).file_type().is_char_device());

    let out = materialize_ok(&["--allow-device", "/dev/sda"], &mf, &jail);
    let sda = lmeta(&jail.join("dev/sda"));
    assert!(sda.file_type().is_block_device(), "{out}");
    assert_eq!((sda.rdev() >> 8) & 0xfff, 8);
    assert!(!jail.join("dev/mem").exists());
}

#[test]
fn mknod_without_privilege_fails_naming_the_entry() {
    if !common::require_root("mknod_without_privilege_fails_naming_the_entry") {
        return;
    }
    let t = common::tempdir();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let jail = t.path().join("jail");
    std::fs::create_dir(&jail).unwrap();
    std::os::unix::fs::chown(&jail, Some(NOBODY), Some(NOBODY)).unwrap();
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            json!({"path": "/dev", "kind": "dir", "class": "dev", "mode": "0755"}),
            e_chr("/dev/null", 1, 3),
            e_link("/dev/stdin", "/proc/self/fd/0"),
        ]),
    );
    let mut c = materialize_cmd(&[], &mf, &jail);
    c.uid(NOBODY).gid(NOBODY);
    let (code, out, err) = run_cmd(c);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("/dev/null") && err.contains("mknod"), "{err}");
    assert!(out.contains("not running as root"), "{out}");
    assert!(
        out.contains(", 0 devices"),
        "a failed mknod is not counted: {out}"
    );
    // What could be made was made.
    assert!(lmeta(&jail.join("dev/stdin")).file_type().is_symlink());
}

/// Setuid and setgid bits are carried only for what `--keep-setuid`
/// names, only from the host (the manifest cannot widen a mode), and the
/// summary says what was stripped and what was kept.
#[test]
fn setuid_kept_only_where_named_and_from_the_host() {
    if !common::require_root("setuid_kept_only_where_named_and_from_the_host") {
        return;
    }
    let t = common::tempdir();
    let suid = t.path().join("suid");
    let kept = t.path().join("kept");
    let plain = t.path().join("plain");
    let narrow = t.path().join("narrow");
    make_host_file(&suid, "#!/bin/sh\n", 0o4755, (0, 0), 1_500_000_000);
    make_host_file(&kept, "#!/bin/sh\n", 0o6755, (0, 0), 1_500_000_000);
    make_host_file(&plain, "#!/bin/sh\n", 0o755, (0, 0), 1_500_000_000);
    make_host_file(&narrow, "#!/bin/sh\n", 0o755, (0, 0), 1_500_000_000);
    let jail = t.path().join("jail");
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            json!({"path": s(&suid), "kind": "file", "class": "regular", "mode": "4755"}),
            json!({"path": s(&kept), "kind": "file", "class": "regular", "mode": "6755"}),
            // The manifest cannot widen: no setuid where the host has none.
            json!({"path": s(&plain), "kind": "file", "class": "regular", "mode": "6777"}),
            json!({"path": s(&narrow), "kind": "file", "class": "regular", "mode": "0700"}),
        ]),
    );
    let out = materialize_ok(
        &["--keep-setuid", &s(&kept), "--keep-setuid", &s(&plain)],
        &mf,
        &jail,
    );
    assert_eq!(lmeta(&inside(&jail, &s(&suid))).mode() & 0o7777, 0o755);
    assert_eq!(lmeta(&inside(&jail, &s(&kept))).mode() & 0o7777, 0o6755);
    assert_eq!(lmeta(&inside(&jail, &s(&plain))).mode() & 0o7777, 0o755);
    assert_eq!(lmeta(&inside(&jail, &s(&narrow))).mode() & 0o7777, 0o700);
    let shown = |p: &Path| inside(&jail, &s(p)).display().to_string();
    assert!(
        out.contains(&format!("{}: setuid bit not carried", shown(&suid))),
        "{out}"
    );
    assert!(
        out.contains(&format!("--keep-setuid {}", s(&suid))),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: setuid and setgid", shown(&kept))),
        "{out}"
    );
    assert!(!out.contains(&format!("{}: set", shown(&plain))), "{out}");
}

#[test]
fn outputs_get_their_directory_but_no_data_unless_asked() {
    let t = common::tempdir();
    let outdir = t.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let log = outdir.join("log");
    std::fs::write(&log, "written by the program\n").unwrap();
    // Written but never created: it was there before, and is copied.
    let state = outdir.join("state");
    std::fs::write(&state, "there before\n").unwrap();
    let jail = t.path().join("jail");
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_dir(&s(&outdir)),
            json!({"path": s(&log), "kind": "file", "class": "regular", "output": true,
                   "accesses": [{"op": "create", "result": "ok"},
                                {"op": "write", "result": "ok"}]}),
            json!({"path": s(&state), "kind": "file", "class": "regular", "output": true,
                   "accesses": [{"op": "read", "result": "ok"},
                                {"op": "write", "result": "ok"}]}),
            json!({"path": format!("{}/made", s(&outdir)), "kind": "dir", "class": "regular",
                   "output": true, "accesses": [{"op": "mkdir", "result": "ok"}]}),
        ]),
    );
    let out = materialize_ok(&[], &mf, &jail);
    assert!(inside(&jail, &s(&outdir)).is_dir());
    assert!(!inside(&jail, &s(&log)).exists());
    assert!(!inside(&jail, &format!("{}/made", s(&outdir))).exists());
    assert_eq!(
        std::fs::read_to_string(inside(&jail, &s(&state))).unwrap(),
        "there before\n"
    );
    assert!(
        out.contains(
            "made by the program: its directory is created, the object not (--with-outputs"
        ),
        "{out}"
    );

    materialize_ok(&["--with-outputs"], &mf, &jail);
    assert_eq!(
        std::fs::read_to_string(inside(&jail, &s(&log))).unwrap(),
        "written by the program\n"
    );
    assert!(inside(&jail, &format!("{}/made", s(&outdir))).is_dir());
}

// ------------------------------------------------------------- safety

#[test]
fn manifest_symlink_then_file_beneath_it_writes_nothing() {
    let t = common::tempdir();
    let c = canary(t.path());
    let before = common::snapshot(&c);
    let data = t.path().join("data");
    std::fs::write(&data, "d").unwrap();
    let jail = t.path().join("jail");
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_link("/a", &s(&c)),
            e_file("/a/keep"),
            e_file(&s(&data)),
        ]),
    );
    let (code, out, err) = materialize(&[], &mf, &jail);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(
        err.contains("/a/keep") && err.contains("beneath /a"),
        "{err}"
    );
    assert!(!jail.exists(), "the jail was created for a bad manifest");
    assert_eq!(before, common::snapshot(&c));
}

#[test]
fn preexisting_etc_symlink_to_root_is_replaced_inside_the_jail() {
    if !common::require_root("preexisting_etc_symlink_to_root_is_replaced_inside_the_jail") {
        return;
    }
    let t = common::tempdir();
    let jail = t.path().join("jail");
    std::fs::create_dir(&jail).unwrap();
    std::os::unix::fs::symlink("/", jail.join("etc")).unwrap();
    let tag = format!("jailtrace-canary-{}", std::process::id());
    let host_before = lmeta(Path::new("/etc/hostname"));
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_dir("/etc"),
            e_file("/etc/hostname"),
            e_link(&format!("/etc/{tag}"), "x"),
            e_dir(&format!("/etc/{tag}.d")),
        ]),
    );
    let out = materialize_ok(&[], &mf, &jail);
    assert!(
        out.contains("/etc: replaced a symlink -> / with a directory"),
        "{out}"
    );
    assert!(lmeta(&jail.join("etc")).is_dir());
    assert!(lmeta(&jail.join("etc").join(&tag)).file_type().is_symlink());
    // Nothing reached the host's / or /etc.
    for p in [
        format!("/{tag}"),
        format!("/etc/{tag}"),
        format!("/{tag}.d"),
        "/hostname".into(),
    ] {
        assert!(
            std::fs::symlink_metadata(&p).is_err(),
            "{p} was created on the host"
        );
    }
    let host_after = lmeta(Path::new("/etc/hostname"));
    assert_eq!(
        (
            host_before.ino(),
            host_before.ctime(),
            host_before.ctime_nsec()
        ),
        (
            host_after.ino(),
            host_after.ctime(),
            host_after.ctime_nsec()
        )
    );
}

#[test]
fn preexisting_usr_lib_symlink_outside_is_never_followed() {
    if !common::require_root("preexisting_usr_lib_symlink_outside_is_never_followed") {
        return;
    }
    let t = common::tempdir();
    let c = canary(t.path());
    let before = common::snapshot(&c);
    let jail = t.path().join("jail");
    std::fs::create_dir_all(jail.join("usr")).unwrap();
    std::os::unix::fs::symlink(&c, jail.join("usr/lib")).unwrap();
    // Also a symlink where a file goes, pointing at the canary file.
    let data = t.path().join("data");
    std::fs::write(&data, "new").unwrap();
    std::fs::create_dir_all(inside(&jail, &s(t.path()))).unwrap();
    std::os::unix::fs::symlink(c.join("keep"), inside(&jail, &s(&data))).unwrap();
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_dir("/usr/lib"),
            e_link("/usr/lib/keep", "evil"),
            json!({"path": "/usr/lib/fifo", "kind": "fifo", "class": "regular"}),
            e_chr("/usr/lib/null", 1, 3),
            e_file(&s(&data)),
        ]),
    );
    let out = materialize_ok(&[], &mf, &jail);
    assert!(out.contains("/usr/lib: replaced a symlink"), "{out}");
    assert!(lmeta(&jail.join("usr/lib")).is_dir());
    assert!(lmeta(&jail.join("usr/lib/fifo")).file_type().is_fifo());
    let jd = inside(&jail, &s(&data));
    assert!(lmeta(&jd).is_file());
    assert_eq!(std::fs::read_to_string(&jd).unwrap(), "new");
    assert_eq!(
        before,
        common::snapshot(&c),
        "the canary outside the jail changed"
    );
}

#[test]
fn fifo_where_a_file_goes_is_replaced_without_blocking() {
    if !common::require_root("fifo_where_a_file_goes_is_replaced_without_blocking") {
        return;
    }
    let t = common::tempdir();
    let data = t.path().join("data");
    std::fs::write(&data, "content").unwrap();
    let jail = t.path().join("jail");
    let jd = inside(&jail, &s(&data));
    std::fs::create_dir_all(jd.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(&jd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let mf = write_manifest(t.path(), "m.json", &manifest(vec![e_file(&s(&data))]));
    // wait_timeout fails the test if materialize opened the FIFO and blocked.
    let out = materialize_ok(&[], &mf, &jail);
    assert!(out.contains("replaced a FIFO"), "{out}");
    assert_eq!(std::fs::read_to_string(&jd).unwrap(), "content");
}

#[test]
fn non_empty_directory_where_a_file_goes_is_kept_and_named() {
    let t = common::tempdir();
    let data = t.path().join("data");
    std::fs::write(&data, "content").unwrap();
    let jail = t.path().join("jail");
    let jd = inside(&jail, &s(&data));
    std::fs::create_dir_all(&jd).unwrap();
    std::fs::write(jd.join("precious"), "keep me").unwrap();
    let mf = write_manifest(t.path(), "m.json", &manifest(vec![e_file(&s(&data))]));
    let (code, _out, err) = materialize(&[], &mf, &jail);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&s(&data)) && err.contains("not empty"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(jd.join("precious")).unwrap(),
        "keep me"
    );
}

#[test]
fn non_writable_directory_fails_cleanly() {
    if !common::require_root("non_writable_directory_fails_cleanly") {
        return;
    }
    let t = common::tempdir();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = canary(t.path());
    let before = common::snapshot(&c);
    let jail = t.path().join("jail");
    std::fs::create_dir_all(jail.join("etc")).unwrap();
    std::fs::set_permissions(jail.join("etc"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&jail, Some(NOBODY), Some(NOBODY)).unwrap();
    // JAIL/etc stays root's 0755: nobody cannot write into it.
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_dir("/etc"),
            e_link("/etc/x", "y"),
            e_link("/ok", "y"),
        ]),
    );
    let mut c2 = materialize_cmd(&[], &mf, &jail);
    c2.uid(NOBODY).gid(NOBODY);
    let (code, out, err) = run_cmd(c2);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("/etc/x: symlink: Permission denied"), "{err}");
    assert!(lmeta(&jail.join("ok")).file_type().is_symlink());
    assert!(!jail.join("etc/x").exists());
    assert_eq!(before, common::snapshot(&c));
}

#[test]
fn read_only_jail_gets_one_clear_error_and_no_writes() {
    if !common::require_root("read_only_jail_gets_one_clear_error_and_no_writes") {
        return;
    }
    let t = common::tempdir();
    let jail = t.path().join("jail");
    std::fs::create_dir(&jail).unwrap();
    let _m = Mounted::new(&["-t", "tmpfs", "-o", "size=4m", "jailtrace-test"], &jail);
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![e_dir("/etc"), e_link("/etc/x", "y")]),
    );
    let remount = |opt: &str| {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&jail)
            .status()
            .unwrap();
        assert!(st.success());
    };
    remount("ro");
    let (code, out, err) = materialize(&[], &mf, &jail);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("read-only file system") && err.contains("nothing written"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&jail).unwrap().count(), 0);

    // A complete jail on a read-only mount is simply up to date.
    remount("rw");
    materialize_ok(&[], &mf, &jail);
    remount("ro");
    let out = materialize_ok(&[], &mf, &jail);
    assert!(out.contains("nothing to do"), "{out}");
}

#[test]
fn mount_points_inside_the_jail_are_never_crossed() {
    if !common::require_root("mount_points_inside_the_jail_are_never_crossed") {
        return;
    }
    let t = common::tempdir();
    let c = canary(t.path());
    let before = common::snapshot(&c);
    let jail = t.path().join("jail");
    std::fs::create_dir_all(jail.join("usr")).unwrap();
    let _m = Mounted::new(&["--bind", &s(&c)], &jail.join("usr"));
    let mf = write_manifest(
        t.path(),
        "m.json",
        &manifest(vec![
            e_dir("/usr"),
            e_link("/usr/x", "y"),
            e_link("/z", "y"),
        ]),
    );
    let (code, out, err) = materialize(&[], &mf, &jail);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("/usr/x") && err.contains("mount point"),
        "{err}"
    );
    // The mount point itself is the user's: neither failed nor changed.
    assert!(!err.contains("jailtrace: /usr:"), "{err}");
    assert!(lmeta(&jail.join("z")).file_type().is_symlink());
    drop(_m);
    assert_eq!(before, common::snapshot(&c));
}

#[test]
fn refuses_the_host_root_as_jail() {
    let t = common::tempdir();
    let tag = format!("/jailtrace-canary-{}", std::process::id());
    let mf = write_manifest(t.path(), "m.json", &manifest(vec![e_link(&tag, "x")]));
    let root_link = t.path().join("root");
    std::os::unix::fs::symlink("/", &root_link).unwrap();
    let up = "/..".repeat(t.path().components().count() - 1);
    let dotdot = format!("{}{up}", s(t.path()));
    for jail in ["/", "//", dotdot.as_str(), &s(&root_link)] {
        let (code, out, err) = materialize(&[], &mf, Path::new(jail));
        let created = std::fs::symlink_metadata(&tag).is_ok();
        if created {
            let _ = std::fs::remove_file(&tag);
        }
        assert!(!created, "materialize wrote into / via {jail:?}");
        assert_eq!(code, 1, "{jail}: {out}\n{err}");
        assert!(
            err.contains("refusing to materialize into /"),
            "{jail}: {err}"
        );
    }
}

#[test]
fn manifest_errors_are_one_clear_line_and_write_nothing() {
    let t = common::tempdir();
    let jail = t.path().join("jail");
    let good = manifest(vec![e_link("/a", "b")]);
    let cases: Vec<(String, &str)> = vec![
        ("{\n  \"schema\": 1,\n  oops\n}".into(), "line 3 column 3"),
        (
            good.replace("\"schema\":1", "\"schema\":7"),
            "unsupported schema version 7",
        ),
        (good.replace("\"/a\"", "\"a\""), "not absolute"),
        (good.replace("\"/a\"", "\"/x/../a\""), "`..`"),
        (good[..good.len() / 2].to_string(), "line 1"),
    ];
    let missing = t.path().join("absent.json");
    let (code, _, err) = materialize(&[], &missing, &jail);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!(
            "jailtrace: {}: cannot read: No such file or directory (os error 2)",
            missing.display()
        )
    );
    for (i, (text, want)) in cases.iter().enumerate() {
        let mf = write_manifest(t.path(), &format!("m{i}.json"), text);
        let (code, out, err) = materialize(&[], &mf, &jail);
        assert_eq!(code, 1, "{want}: {out}\n{err}");
        assert_eq!(err.lines().count(), 1, "{want}: {err}");
        assert!(
            err.contains(want) && err.contains(&format!("m{i}.json")),
            "{want}: {err}"
        );
        assert!(!jail.exists(), "{want}: jail created");
    }
    let (code, _, err) = materialize(
        &["--allow-device", "dev/sda"],
        &write_manifest(t.path(), "ok.json", &good),
        &jail,
    );
    assert_eq!(code, 1);
    assert!(err.contains("--allow-device dev/sda"), "{err}");
    assert!(!jail.exists());
}

// ------------------------------------------- end to end: record, chroot, compare

/// Mounts proc and sys where materialize made their mount points, as its
/// summary tells the user to.
fn mount_pseudo(jail: &Path) -> Vec<Mounted> {
    let mut v = Vec::new();
    if jail.join("proc").is_dir() {
        v.push(Mounted::new(&["-t", "proc", "proc"], &jail.join("proc")));
    }
    if jail.join("sys").is_dir() {
        v.push(Mounted::new(&["-t", "sysfs", "sysfs"], &jail.join("sys")));
    }
    v
}

fn run_output(cmd: &mut Command) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let out = common::output(cmd.stdin(Stdio::null()).current_dir("/"));
    (out.status.code(), out.stdout, out.stderr)
}

/// Records `argv` (absolute program path), materializes its jail, runs it
/// with `chroot`, and compares stdout, stderr and exit status with the host.
fn record_materialize_compare(test: &str, argv: &[&str]) {
    let t = common::tempdir();
    let host = run_output(Command::new(argv[0]).args(&argv[1..]));
    assert!(host.0.is_some(), "{test}: host run was killed");
    common::record_in(t.path(), "rec", argv, host.0.unwrap());
    let jail = t.path().join("jail");
    materialize_ok(&[], &t.path().join("rec.json"), &jail);
    let _mounts = mount_pseudo(&jail);
    let jailed = run_output(Command::new("chroot").arg(&jail).args(argv));
    let show = |r: &(Option<i32>, Vec<u8>, Vec<u8>)| {
        format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}",
            r.0,
            String::from_utf8_lossy(&r.1),
            String::from_utf8_lossy(&r.2)
        )
    };
    assert_eq!(
        host,
        jailed,
        "{test}: host\n{}\njailed\n{}",
        show(&host),
        show(&jailed)
    );
}

fn prog(test: &str, name: &str) -> Option<String> {
    if !common::require_program(test, name) {
        return None;
    }
    common::which(name).map(|p| s(&p))
}

#[test]
fn e2e_ls_etc_hostname() {
    if !common::require_root("e2e_ls_etc_hostname") {
        return;
    }
    let Some(ls) = prog("e2e_ls_etc_hostname", "ls") else {
        return;
    };
    record_materialize_compare("ls", &[&ls, "-l", "/etc/hostname"]);
}

/// A file opened for writing without O_CREAT must be in the jail: `dd
/// conv=nocreat` fails without it.
#[test]
fn e2e_a_file_written_in_place_is_in_the_jail() {
    let name = "e2e_a_file_written_in_place_is_in_the_jail";
    if !common::require_root(name) {
        return;
    }
    let Some(dd) = prog(name, "dd") else {
        return;
    };
    let t = common::tempdir();
    let state = t.path().join("state.log");
    std::fs::write(&state, "there before\n").unwrap();
    let of = format!("of={}", s(&state));
    record_materialize_compare(
        "dd",
        &[
            &dd,
            &of,
            "conv=notrunc,nocreat",
            "oflag=append",
            "status=none",
        ],
    );
}

#[test]
fn e2e_id_un() {
    if !common::require_root("e2e_id_un") {
        return;
    }
    let Some(id) = prog("e2e_id_un", "id") else {
        return;
    };
    record_materialize_compare("id", &[&id, "-un"]);
}

#[test]
fn e2e_date() {
    if !common::require_root("e2e_date") {
        return;
    }
    let Some(date) = prog("e2e_date", "date") else {
        return;
    };
    record_materialize_compare("date", &[&date, "-u", "+%Y"]);
}

#[test]
fn e2e_sh_pipeline() {
    if !common::require_root("e2e_sh_pipeline") {
        return;
    }
    let t = common::tempdir();
    // Kept outside the record's tempdir so both runs see the same paths.
    let argv = common::sh_pipeline(t.path());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    record_materialize_compare("sh", &argv);
}

#[test]
fn e2e_python3() {
    if !common::require_root("e2e_python3") {
        return;
    }
    // Debian's interpreter, not whatever shim PATH finds first.
    if !Path::new("/usr/bin/python3").exists() {
        assert!(common::require_program("e2e_python3", "/usr/bin/python3"));
        return;
    }
    record_materialize_compare(
        "python3",
        &[
            "/usr/bin/python3",
            "-c",
            "import json, sqlite3, decimal; print(json.dumps([1]))",
        ],
    );
}

#[test]
fn e2e_perl() {
    if !common::require_root("e2e_perl") {
        return;
    }
    let Some(perl) = prog("e2e_perl", "perl") else {
        return;
    };
    record_materialize_compare(
        "perl",
        &[
            &perl,
            "-MPOSIX",
            "-e",
            "print strftime(\"%Y\", gmtime(0)), \"\\n\"",
        ],
    );
}

/// The client session both servers must answer identically.
fn redis_session(cli: &str, port: u16) -> Vec<String> {
    vec![
        common::redis_cli(cli, port, &["PING"]),
        common::redis_cli(cli, port, &["SET", "jailtrace", "works"]),
        common::redis_cli(cli, port, &["GET", "jailtrace"]),
    ]
}

#[test]
fn e2e_redis_server() {
    if !common::require_root("e2e_redis_server") {
        return;
    }
    let (Some(server), Some(cli)) = (
        prog("e2e_redis_server", "redis-server"),
        prog("e2e_redis_server", "redis-cli"),
    ) else {
        return;
    };
    let t = common::tempdir();
    let manifest_path = t.path().join("redis.json");

    // Record the server while a real client talks to it.
    let port = common::free_port();
    let rec_log = t.path().join("record.stderr");
    let mut rec = common::jailtrace()
        .current_dir(t.path())
        .arg("record")
        .arg("-o")
        .arg(&manifest_path)
        .arg("--")
        .args([
            server.as_str(),
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&rec_log).unwrap())
        .spawn()
        .unwrap();
    common::wait_for_pong(&cli, port, &mut rec, &rec_log, "recorded redis-server");
    let recorded = redis_session(&cli, port);
    assert_eq!(recorded, ["PONG", "OK", "works"]);
    common::redis_cli(&cli, port, &["SHUTDOWN"]);
    let out = wait_timeout(rec, 30, "record redis-server");
    assert_eq!(
        out.status.code(),
        Some(0),
        "record: {}",
        std::fs::read_to_string(&rec_log).unwrap_or_default()
    );

    let jail = t.path().join("jail");
    materialize_ok(&[], &manifest_path, &jail);
    let _mounts = mount_pseudo(&jail);

    // The jailed server on another port answers the same session.
    let port2 = common::free_port();
    let jail_log = t.path().join("jailed.stderr");
    let mut jailed = Command::new("chroot")
        .arg(&jail)
        .args([
            server.as_str(),
            "--port",
            &port2.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&jail_log).unwrap())
        .spawn()
        .unwrap();
    common::wait_for_pong(&cli, port2, &mut jailed, &jail_log, "jailed redis-server");
    let answers = redis_session(&cli, port2);
    common::redis_cli(&cli, port2, &["SHUTDOWN"]);
    let out = wait_timeout(jailed, 30, "jailed redis-server");
    assert_eq!(answers, recorded);
    assert_eq!(
        out.status.code(),
        Some(0),
        "jailed redis-server: {}",
        std::fs::read_to_string(&jail_log).unwrap_or_default()
    );
}

#[test]
fn progress_bar_only_on_a_terminal() {
    if !common::require_program("progress_bar_only_on_a_terminal", "script") {
        return;
    }
    let t = common::tempdir();
    let data = t.path().join("data");
    std::fs::write(&data, vec![b'x'; 1 << 20]).unwrap();
    let mf = write_manifest(t.path(), "m.json", &manifest(vec![e_file(&s(&data))]));
    let (code, _out, err) = materialize(&[], &mf, &t.path().join("j1"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "output on a non-terminal stderr");
    // `script` gives the command a pseudo-terminal and copies what it draws.
    let cmd = format!(
        "'{}' materialize '{}' '{}' >/dev/null",
        env!("CARGO_BIN_EXE_jailtrace"),
        s(&mf),
        s(&t.path().join("j2"))
    );
    let tty = common::success(&mut common::on_a_terminal(&cmd));
    assert!(
        tty.contains("files of 1"),
        "no progress bar on a terminal: {tty:?}"
    );
}

/// A file the program only looked up (`[ -e KEY ]`), or was refused, gets
/// its type, mode, owner and size in the jail and in the OCI layer, but
/// none of its bytes; a file it read gets them all.
#[test]
fn content_only_for_what_the_program_read() {
    if !common::require_root("content_only_for_what_the_program_read") {
        return;
    }
    let t = common::tempdir();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = t.path().join("host_key");
    let refused = t.path().join("root_only");
    let read = t.path().join("config");
    make_host_file(
        &secret,
        "PRIVATE KEY MATERIAL\n",
        0o600,
        (0, 0),
        1_500_000_000,
    );
    make_host_file(
        &refused,
        "ROOT ONLY MATERIAL\n",
        0o600,
        (0, 0),
        1_500_000_000,
    );
    make_host_file(&read, "setting = 1\n", 0o644, (0, 0), 1_500_000_000);
    // As nobody: the stat works, the read of the root-only file is refused.
    let script = format!(
        "[ -e {} ]; cat {} {} 2>/dev/null; true",
        s(&secret),
        s(&refused),
        s(&read)
    );
    let m = t.path().join("m.json");
    let out = common::output(
        common::jailtrace()
            .uid(65534)
            .gid(65534)
            .current_dir("/")
            .args(["record", "-o", "-", "--", "/bin/sh", "-c", &script]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let json_start = text.find("{\n").unwrap();
    std::fs::write(&m, &text[json_start..]).unwrap();
    let jail = t.path().join("jail");
    let summary = materialize_ok(&[], &m, &jail);
    assert!(summary.contains("without content: 2 files"), "{summary}");
    for (p, len) in [(&secret, 21), (&refused, 19)] {
        let inside = inside(&jail, &s(p));
        let md = lmeta(&inside);
        assert_eq!((md.len(), md.mode() & 0o7777, md.uid()), (len, 0o600, 0));
        let bytes = std::fs::read(&inside).unwrap();
        assert!(bytes.iter().all(|&b| b == 0), "{}: {bytes:?}", p.display());
    }
    assert_eq!(
        std::fs::read_to_string(inside(&jail, &s(&read))).unwrap(),
        "setting = 1\n"
    );
    // A second run keeps it that way, and a copy made before (an older
    // jailtrace copied everything) loses its bytes.
    std::fs::write(inside(&jail, &s(&secret)), "PRIVATE KEY MATERIAL\n").unwrap();
    materialize_ok(&[], &m, &jail);
    assert!(std::fs::read(inside(&jail, &s(&secret)))
        .unwrap()
        .iter()
        .all(|&b| b == 0));

    // The OCI layer: no trace of either secret, the read file whole.
    let image = t.path().join("image.tar");
    common::success(
        common::jailtrace()
            .args(["export", "--format", "oci", "-o"])
            .arg(&image)
            .arg(&m),
    );
    let mut layers = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&image).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                &mut plain,
            )
            .unwrap();
            layers.push(plain);
        }
    }
    let layer = layers.concat();
    let has = |needle: &[u8]| layer.windows(needle.len()).any(|w| w == needle);
    assert!(!layers.is_empty());
    assert!(!has(b"PRIVATE KEY MATERIAL") && !has(b"ROOT ONLY MATERIAL"));
    assert!(has(b"setting = 1"));
}

/// `--tree`: a service's data directory kept whole (issue 21, part 5).
/// record names it with its digest; materialize copies all of it as the
/// host has it then, with the rules of every copy: no device node, socket
/// or FIFO, no setuid bit, symlinks as symlinks and nothing they lead to
/// outside; diff reports a changed tree; the bwrap export binds it.
#[test]
fn a_tree_is_copied_whole_with_the_copy_rules() {
    if !common::require_root("a_tree_is_copied_whole_with_the_copy_rules") {
        return;
    }
    let t = common::tempdir();
    let d = std::fs::canonicalize(t.path()).unwrap();
    let data = d.join("srv/data");
    std::fs::create_dir_all(data.join("sub/deep")).unwrap();
    std::fs::write(data.join("a.txt"), "a\n").unwrap();
    std::fs::write(data.join("sub/b.txt"), "b\n").unwrap();
    std::fs::write(data.join("sub/deep/c.txt"), "c\n").unwrap();
    std::fs::write(d.join("outside.txt"), "secret\n").unwrap();
    std::os::unix::fs::symlink(d.join("outside.txt"), data.join("link-out")).unwrap();
    std::fs::write(data.join("suid"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(data.join("suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    nix::unistd::mkfifo(
        &data.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &data.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let record = |name: &str| {
        common::success(
            common::jailtrace()
                .current_dir(&d)
                .args(["record", "--tree", "srv/data", "-o"])
                .arg(d.join(name))
                .args(["--", "/bin/cat", "srv/data/a.txt"]),
        );
        let m: Value = serde_json::from_slice(&std::fs::read(d.join(name)).unwrap()).unwrap();
        m
    };
    let m = record("m.json");
    assert_eq!(m["trees"][0]["path"], json!(s(&data)), "{}", m["trees"]);
    let digest = m["trees"][0]["digest"].as_str().unwrap().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    // What the host holds when materialize runs goes in.
    std::fs::write(data.join("new.txt"), "new\n").unwrap();
    let jail = d.join("jail");
    let out = materialize_ok(&[], &d.join("m.json"), &jail);
    assert!(
        out.contains(&format!("tree {}: ", s(&data)))
            && out.contains("2 device nodes, sockets and FIFOs left out"),
        "{out}"
    );
    let j = |p: &Path| jail.join(p.strip_prefix("/").unwrap());
    for (f, text) in [
        ("a.txt", "a\n"),
        ("sub/b.txt", "b\n"),
        ("sub/deep/c.txt", "c\n"),
        ("new.txt", "new\n"),
    ] {
        assert_eq!(
            std::fs::read_to_string(j(&data.join(f))).unwrap(),
            text,
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read_link(j(&data.join("link-out"))).unwrap(),
        d.join("outside.txt")
    );
    assert!(!j(&d.join("outside.txt")).exists(), "followed a link out");
    let mode = std::fs::metadata(j(&data.join("suid"))).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o755, "setuid bit kept: {mode:o}");
    for special in ["fifo", "null"] {
        assert!(
            std::fs::symlink_metadata(j(&data.join(special))).is_err(),
            "{special} made"
        );
    }
    // diff reports the tree by its path and digest.
    let m2 = record("m2.json");
    assert_ne!(
        m2["trees"][0]["digest"],
        json!(digest),
        "new.txt changed it"
    );
    let diff = common::output(
        common::jailtrace()
            .arg("diff")
            .arg(d.join("m.json"))
            .arg(d.join("m2.json")),
    );
    let text = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(diff.status.code(), Some(1), "{text}");
    assert!(text.contains("trees:") && text.contains(&digest), "{text}");
    // The bwrap export binds it from the host, read-only: cat wrote nothing.
    let script = common::output(
        common::jailtrace()
            .args(["export", "--format", "bwrap", "--script"])
            .arg(d.join("m.json")),
    );
    let script = String::from_utf8_lossy(&script.stdout);
    assert!(
        script.contains(&format!("--ro-bind {0} {0}", s(&data))),
        "{script}"
    );
}

/// `materialize --tree` adds a tree a manifest lacks; bad trees are one
/// clear line and nothing is written.
#[test]
fn materialize_tree_adds_one_and_refuses_bad_ones() {
    let t = common::tempdir();
    let d = std::fs::canonicalize(t.path()).unwrap();
    let data = d.join("spool");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("msg"), "hello\n").unwrap();
    let m = write_manifest(&d, "m.json", &manifest(vec![e_dir("/")]));
    let jail = d.join("jail");
    let out = materialize_ok(&["--tree", &s(&data)], &m, &jail);
    assert!(out.contains("objects copied whole"), "{out}");
    assert_eq!(
        std::fs::read_to_string(jail.join(data.strip_prefix("/").unwrap()).join("msg")).unwrap(),
        "hello\n"
    );
    for bad in ["/", "/proc/self", "/nonexistent-tree-xyz"] {
        let jail2 = d.join("jail2");
        let (code, _, err) = materialize(&["--tree", bad], &m, &jail2);
        assert_eq!(code, 1, "{bad}: {err}");
        assert!(
            err.starts_with("jailtrace: --tree") && err.lines().count() == 1,
            "{err}"
        );
        assert!(!jail2.exists(), "{bad}: wrote the jail");
    }
    // A manifest naming / as a tree is refused when loaded.
    let mut v: Value = serde_json::from_str(&manifest(vec![e_dir("/")])).unwrap();
    v["trees"] = json!([{ "path": "/", "digest": format!("sha256:{}", "0".repeat(64)) }]);
    let bad = write_manifest(&d, "bad.json", &v.to_string());
    let (code, _, err) = materialize(&[], &bad, &d.join("jail3"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("a tree is a data directory"), "{err}");
}

/// A directory the program wrote into holds more on the host than the
/// manifest lists: the summary suggests --tree.
#[test]
fn a_partly_recorded_data_directory_suggests_tree() {
    let t = common::tempdir();
    let d = std::fs::canonicalize(t.path()).unwrap();
    let data = d.join("var-data");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["one", "two", "three"] {
        std::fs::write(data.join(f), f).unwrap();
    }
    let m = common::record_in(
        &d,
        "m",
        &["/bin/sh", "-c", &format!("echo x > {}/log", s(&data))],
        0,
    );
    assert!(m["trees"].is_null());
    let out = materialize_ok(&["--dry-run"], &d.join("m.json"), &d.join("jail"));
    assert!(
        out.contains("data the jail may hold only part of:")
            && out.contains(&format!("--tree {}", s(&data))),
        "{out}"
    );
}

/// A directory of a recorded path that is a symlink on the host by the
/// time of the copy (swapped in since the recording, as a program that
/// writes that tree can do) is never followed: the file beneath it is not
/// copied from where the symlink leads, and the summary says why.
#[test]
fn a_directory_swapped_for_a_symlink_is_not_followed_out() {
    let t = common::tempdir();
    let tree = t.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/data"), "recorded\n").unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("data"), "outside secret\n").unwrap();
    let m = t.path().join("m.json");
    let rec = common::output(
        common::jailtrace()
            .args(["record", "-o"])
            .arg(&m)
            .arg("--")
            .arg("/bin/cat")
            .arg(tree.join("sub/data")),
    );
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    std::fs::rename(tree.join("sub"), t.path().join("old-sub")).unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("sub")).unwrap();
    let jail = t.path().join("jail");
    let (_, out, err) = materialize(&[], &m, &jail);
    let copied =
        std::fs::read_to_string(inside(&jail, &s(&tree.join("sub/data")))).unwrap_or_default();
    assert!(
        !copied.contains("outside secret"),
        "followed the swapped directory out:\n{out}\n{err}"
    );
    assert!(
        format!("{out}{err}").contains("a directory on its path is a symlink on the host now"),
        "{out}\n{err}"
    );
}
