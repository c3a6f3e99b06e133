//! `jailtrace check`: a jail with one planted case of each escape vector
//! gets every one flagged; clean jails get no high finding.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{jailtrace, output};
use serde_json::Value;

/// Creates `p` with `mode`, and any missing parent with 0755, whatever the
/// umask (a 077 umask must not hide a jail's parents from its user).
fn mkdirs(p: &Path, mode: u32) {
    if let Some(d) = p.parent() {
        if !d.exists() {
            mkdirs(d, 0o755);
        }
    }
    if !p.is_dir() {
        std::fs::create_dir(p).unwrap();
    }
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn write(p: &Path, content: &[u8], mode: u32) {
    if let Some(d) = p.parent() {
        if !d.exists() {
            mkdirs(d, 0o755);
        }
    }
    std::fs::write(p, content).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn mknod(p: &Path, kind: nix::sys::stat::SFlag, major: u64, minor: u64) {
    nix::sys::stat::mknod(
        p,
        kind,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap();
}

fn nobody() -> nix::unistd::User {
    nix::unistd::User::from_name("nobody").unwrap().unwrap()
}

/// A clean jail by hand: root-owned 0755 directories, a static program,
/// non-login accounts, the safe devices, a sticky /tmp.
fn clean_jail(base: &Path) -> PathBuf {
    let jail = base.join("jail");
    mkdirs(&jail, 0o755);
    for d in ["bin", "etc", "dev", "var/lib/app"] {
        mkdirs(&jail.join(d), 0o755);
    }
    mkdirs(&jail.join("tmp"), 0o1777);
    std::fs::copy(
        common::fixture("run_probe", &["-static"]),
        jail.join("bin/app"),
    )
    .unwrap();
    write(
        &jail.join("etc/passwd"),
        b"root:x:0:0:root:/root:/usr/sbin/nologin\napp:x:1000:1000::/var/lib/app:/usr/sbin/nologin\n",
        0o644,
    );
    write(&jail.join("etc/hosts"), b"127.0.0.1 localhost\n", 0o644);
    for (name, minor) in [("null", 3), ("zero", 5), ("urandom", 9)] {
        mknod(
            &jail.join("dev").join(name),
            nix::sys::stat::SFlag::S_IFCHR,
            1,
            minor,
        );
    }
    // The program's data directory belongs to its user: that is fine.
    let nb = nobody();
    chown(&jail.join("var/lib/app"), nb.uid.as_raw(), nb.gid.as_raw());
    write(&jail.join("var/lib/app/state"), b"x", 0o600);
    chown(
        &jail.join("var/lib/app/state"),
        nb.uid.as_raw(),
        nb.gid.as_raw(),
    );
    jail
}

fn base() -> tempfile::TempDir {
    let t = common::tempdir();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

fn check_json(jail: &Path, extra: &[&str]) -> (i32, Value) {
    let out = output(
        jailtrace()
            .arg("check")
            .arg("--format")
            .arg("json")
            .args(extra)
            .arg(jail),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn findings(v: &Value) -> Vec<(String, String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["check"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts a finding with this severity, check and path exists, and
/// returns its detail.
fn flagged(all: &[(String, String, String, String)], sev: &str, check: &str, path: &str) -> String {
    all.iter()
        .find(|f| f.0 == sev && f.1 == check && f.2 == path)
        .unwrap_or_else(|| panic!("no {sev} {check} finding for {path}; findings:\n{all:#?}"))
        .3
        .clone()
}

#[test]
fn clean_hand_built_jail_has_no_high_findings() {
    if !common::require_root("clean_hand_built_jail_has_no_high_findings") {
        return;
    }
    let t = base();
    let jail = clean_jail(t.path());
    for extra in [&[][..], &["--user", "nobody"]] {
        let (code, v) = check_json(&jail, extra);
        assert_eq!(v["counts"]["high"], 0, "{extra:?}: {:#?}", findings(&v));
        assert_eq!(code, 0);
        // Nothing here deserves even a note.
        assert_eq!(findings(&v), vec![], "{extra:?}");
    }
    let out = common::success(jailtrace().arg("check").arg(&jail));
    assert!(out.ends_with(": 0 high, 0 medium, 0 low\n"), "{out}");
}

#[test]
fn every_planted_vector_is_flagged() {
    if !common::require_root("every_planted_vector_is_flagged")
        || !common::require_program("every_planted_vector_is_flagged", "unshare")
    {
        return;
    }
    use nix::sys::stat::SFlag;
    let t = base();
    let jail = clean_jail(t.path());
    let nb = nobody();
    let (nuid, ngid) = (nb.uid.as_raw(), nb.gid.as_raw());
    let probe = std::fs::read(common::fixture("run_probe", &["-static"])).unwrap();

    // setuid and setgid files.
    write(&jail.join("bin/su"), &probe, 0o4755);
    write(&jail.join("bin/wall"), &probe, 0o2755);
    // Devices: a disk, raw memory, an unusual character device.
    mknod(&jail.join("dev/sda"), SFlag::S_IFBLK, 8, 0);
    mknod(&jail.join("dev/mem"), SFlag::S_IFCHR, 1, 1);
    mknod(&jail.join("dev/tty0"), SFlag::S_IFCHR, 4, 0);
    // Hard links to host files: one read-only, one the jail user can write.
    let outside = t.path().join("outside.conf");
    write(&outside, b"host config\n", 0o644);
    std::fs::hard_link(&outside, jail.join("etc/linked.conf")).unwrap();
    let outside_w = t.path().join("outside-writable");
    write(&outside_w, b"host data\n", 0o666);
    std::fs::hard_link(&outside_w, jail.join("var/linked-data")).unwrap();
    // World-writable file, and a world-writable directory without sticky.
    write(&jail.join("var/lib/app/shared"), b"x", 0o666);
    mkdirs(&jail.join("var/spool"), 0o777);
    // Files and directories the jail user can modify and that run.
    write(&jail.join("bin/helper"), &probe, 0o755);
    chown(&jail.join("bin/helper"), nuid, ngid);
    mkdirs(&jail.join("usr/lib"), 0o755);
    chown(&jail.join("usr/lib"), nuid, ngid);
    write(&jail.join("usr/lib/libx.so.1"), b"\x7fELF", 0o644);
    // Sensitive host files.
    write(
        &jail.join("etc/shadow"),
        b"root:*:19000:0:99999:7:::\n",
        0o640,
    );
    let pem = b"-----BEGIN OPENSSH PRIVATE KEY-----\n\
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
        -----END OPENSSH PRIVATE KEY-----\n";
    write(&jail.join("srv/tls/server.pem"), pem, 0o600);
    write(&jail.join("home/u/.ssh/id_ed25519"), b"(unreadable)", 0o600);
    write(
        &jail.join("root/.bash_history"),
        b"mysql -p secret\n",
        0o600,
    );
    // Tools handed to an attacker.
    write(&jail.join("bin/sh"), &probe, 0o755);
    write(&jail.join("usr/bin/gdb"), &probe, 0o755);
    write(&jail.join("usr/bin/gcc-12"), &probe, 0o755);
    std::os::unix::fs::symlink("gcc-12", jail.join("usr/bin/gcc")).unwrap();
    write(&jail.join("usr/bin/python3"), &probe, 0o755);
    // A uid-0 account with a password and a shell.
    write(
        &jail.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/bash\nbackdoor::0:0::/:/usr/sbin/nologin\n",
        0o644,
    );
    write(
        &jail.join("etc/shadow"),
        b"root:$y$j9T$abcdefgh$ijklmnopqrstuvwxyz:19000:0:99999:7:::\n",
        0o640,
    );
    // Symlinks out of the jail must not be followed: the host's /usr/bin
    // has setuid programs, its /etc a shadow file.
    std::os::unix::fs::symlink("/", jail.join("escape")).unwrap();
    std::os::unix::fs::symlink("/usr/bin", jail.join("bin/hostbin")).unwrap();

    // A root process whose root is the jail.
    let (mut holder, _out) = common::spawn_ready(
        jailtrace()
            .arg("run")
            .arg("--allow-root")
            .arg(&jail)
            .args(["--", "/bin/app", "hold"]),
    );

    // proc mounted inside the jail, in a private mount namespace so that
    // the host never sees it, with check running in that namespace.
    mkdirs(&jail.join("proc"), 0o555);
    let script = format!(
        "mount -t proc proc {jail}/proc && exec {bin} check --format json --user nobody {jail}",
        jail = jail.display(),
        bin = env!("CARGO_BIN_EXE_jailtrace"),
    );
    let out = output(Command::new("unshare").args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    drop(holder.stdin.take());
    let status = holder.wait().unwrap();
    assert!(status.success());

    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "high findings give exit 1");
    let all = findings(&v);

    flagged(&all, "high", "setuid", "/bin/su");
    flagged(&all, "high", "setgid", "/bin/wall");
    assert!(flagged(&all, "high", "device", "/dev/sda").contains("block device 8:0"));
    assert!(flagged(&all, "high", "device", "/dev/mem").contains("/dev/mem"));
    flagged(&all, "medium", "device", "/dev/tty0");
    let d = flagged(&all, "medium", "hardlink", "/etc/linked.conf");
    assert!(d.contains(&outside.display().to_string()), "{d}");
    let d = flagged(&all, "high", "hardlink", "/var/linked-data");
    assert!(d.contains(&outside_w.display().to_string()), "{d}");
    flagged(&all, "medium", "world-writable", "/var/lib/app/shared");
    flagged(&all, "medium", "world-writable", "/var/spool");
    flagged(&all, "high", "modifiable", "/bin/helper");
    flagged(&all, "high", "modifiable", "/usr/lib");
    flagged(&all, "high", "sensitive-file", "/etc/shadow");
    flagged(&all, "high", "private-key", "/srv/tls/server.pem");
    flagged(&all, "high", "private-key", "/home/u/.ssh/id_ed25519");
    flagged(&all, "medium", "root-dotfile", "/root/.bash_history");
    flagged(&all, "medium", "tool", "/bin/sh");
    flagged(&all, "high", "tool", "/usr/bin/gdb");
    flagged(&all, "medium", "tool", "/usr/bin/gcc-12");
    flagged(&all, "medium", "tool", "/usr/bin/gcc");
    flagged(&all, "low", "tool", "/usr/bin/python3");
    let accounts: Vec<_> = all.iter().filter(|f| f.1 == "root-account").collect();
    assert!(
        accounts
            .iter()
            .any(|f| f.0 == "high" && f.3.contains("\"root\" has a password hash")),
        "{accounts:#?}"
    );
    assert!(
        accounts
            .iter()
            .any(|f| f.0 == "high" && f.3.contains("\"backdoor\" has an empty password")),
        "{accounts:#?}"
    );
    assert!(
        accounts
            .iter()
            .any(|f| f.0 == "medium" && f.3.contains("/bin/bash")),
        "{accounts:#?}"
    );
    flagged(&all, "high", "mount", "/proc");
    let d = flagged(&all, "high", "root-process", "/");
    assert!(d.contains("(app)"), "{d}");

    // Nothing was reported through the symlinks out of the jail, and the
    // clean parts stayed clean.
    for f in &all {
        assert!(
            !f.2.starts_with("/escape/") && !f.2.starts_with("/bin/hostbin/"),
            "followed a symlink out of the jail: {f:?}"
        );
        assert!(!f.2.starts_with("/dev/null") && f.2 != "/tmp", "{f:?}");
        assert!(!f.2.starts_with("/proc/"), "walked into proc: {f:?}");
    }
    assert!(all.iter().all(|f| f.2 != "/var/lib/app/state"));
}

#[test]
fn text_output_and_errors() {
    if !common::require_root("text_output_and_errors") {
        return;
    }
    let t = base();
    let jail = clean_jail(t.path());
    write(&jail.join("bin/su"), b"x", 0o4755);
    let out = output(jailtrace().arg("check").arg(&jail));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("high    setuid          /bin/su: setuid")),
        "{text}"
    );
    assert!(text.ends_with(": 1 high, 0 medium, 0 low\n"), "{text}");

    let out = output(jailtrace().args(["check", "/no/such/jail"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("jailtrace: /no/such/jail: cannot audit"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let out = output(jailtrace().args(["check", "--user", "root"]).arg(&jail));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("root can modify everything"));
}

/// A daemon recorded serving a real client, materialized, then audited:
/// what materialize builds from a manifest must carry no high finding.
/// Needs `record` and `materialize`.
#[test]
fn materialized_daemon_jail_has_no_high_findings() {
    if !common::require_root("materialized_daemon_jail_has_no_high_findings")
        || !common::require_program(
            "materialized_daemon_jail_has_no_high_findings",
            "redis-server",
        )
        || !common::require_program("materialized_daemon_jail_has_no_high_findings", "redis-cli")
    {
        return;
    }
    let t = base();
    let manifest = t.path().join("redis.json");
    let port = 20000 + (std::process::id() % 20000);
    let port_s = port.to_string();
    let mut rec = jailtrace()
        .current_dir(t.path())
        .arg("record")
        .arg("-o")
        .arg(&manifest)
        .args([
            "--",
            "redis-server",
            "--port",
            &port_s,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(t.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["-p", &port_s])
            .args(args)
            .output()
            .unwrap()
    };
    let start = Instant::now();
    while !String::from_utf8_lossy(&cli(&["PING"]).stdout).contains("PONG") {
        if let Some(status) = rec.try_wait().unwrap() {
            panic!("record ended before redis answered: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "redis did not start under record"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cli(&["SET", "k", "v"]);
    cli(&["GET", "k"]);
    cli(&["SHUTDOWN", "NOSAVE"]);
    assert!(rec.wait().unwrap().code().is_some());

    let jail = t.path().join("jail");
    common::success(jailtrace().arg("materialize").arg(&manifest).arg(&jail));
    let (code, v) = check_json(&jail, &[]);
    let high: Vec<_> = findings(&v).into_iter().filter(|f| f.0 == "high").collect();
    assert_eq!(high, vec![], "materialized jail has high findings");
    assert_eq!(code, 0);
}

/// Creates `levels` nested directories named `name` under `top`, with a
/// setuid file `suid-N` in a `z-side` directory next to every 100th level,
/// and returns the chain's jail path (for `suid` at the bottom). The walk
/// goes by name, so it enters each `z-side` only on its way back up from
/// the bottom, after the descriptors of those levels were closed: they
/// must be re-opened. Made with *at calls from the parent's descriptor:
/// the full path is far longer than PATH_MAX.
fn deep_tree(top: &Path, name: &str, levels: usize) -> String {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut dir = nix::fcntl::open(top, dir_flags, Mode::empty()).unwrap();
    let suid = |dir: &std::os::fd::OwnedFd, file: &str| {
        let f = openat(
            dir,
            file,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o755),
        )
        .unwrap();
        nix::sys::stat::fchmod(&f, Mode::from_bits_truncate(0o4755)).unwrap();
    };
    for level in 1..=levels {
        if level % 100 == 0 {
            mkdirat(&dir, "z-side", Mode::from_bits_truncate(0o755)).unwrap();
            let side = openat(&dir, "z-side", dir_flags, Mode::empty()).unwrap();
            suid(&side, &format!("suid-{level}"));
        }
        mkdirat(&dir, name, Mode::from_bits_truncate(0o755)).unwrap();
        dir = openat(&dir, name, dir_flags, Mode::empty()).unwrap();
    }
    suid(&dir, "suid");
    format!("/{name}").repeat(levels)
}

/// Removes a tree too deep for `std::fs::remove_dir_all` under a low
/// descriptor limit (rm's fts walks it without holding one per level).
struct RmOnDrop(PathBuf);

impl Drop for RmOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("rm").arg("-rf").arg(&self.0).status();
    }
}

/// A jail user can nest directories deeper than a walk holding one
/// descriptor per level can follow (past the usual limit of 1024), and hide
/// a setuid file at the bottom. The walk holds a bounded number of
/// descriptors: under a 1024 limit, everything 1500 levels down is found.
#[test]
fn deep_nesting_hides_nothing() {
    if !common::require_root("deep_nesting_hides_nothing")
        || !common::require_program("deep_nesting_hides_nothing", "prlimit")
    {
        return;
    }
    let t = base();
    let _rm = RmOnDrop(t.path().to_path_buf());
    let jail = clean_jail(t.path());
    let chain = deep_tree(&jail, "nested-directory", 1500);
    let out = output(
        Command::new("prlimit")
            .arg("--nofile=1024:1024")
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_jailtrace"))
            .args(["check", "--format", "json"])
            .arg(&jail),
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let all = findings(&v);
    let short = |f: &(String, String, String, String)| {
        let p = &f.2;
        format!(
            "{} {} ...{}: {}",
            f.0,
            f.1,
            &p[p.len().saturating_sub(60)..],
            f.3
        )
    };
    let shown: Vec<String> = all.iter().map(short).collect();
    assert!(
        all.iter().all(|f| f.1 != "unexamined"),
        "some objects went unexamined: {shown:#?}"
    );
    flagged(&all, "high", "setuid", &format!("{chain}/suid"));
    for level in (100..=1500).step_by(100) {
        let side = "/nested-directory".repeat(level - 1);
        flagged(
            &all,
            "high",
            "setuid",
            &format!("{side}/z-side/suid-{level}"),
        );
    }
    assert_eq!(v["counts"]["high"], 16, "{shown:#?}");
    assert_eq!(out.status.code(), Some(1));
}

/// What the walk cannot examine is a high finding, not a note: here a
/// directory an unprivileged auditor cannot list.
#[test]
fn an_object_that_cannot_be_examined_is_a_high_finding() {
    let name = "an_object_that_cannot_be_examined_is_a_high_finding";
    if !common::require_root(name) || !common::require_program(name, "setpriv") {
        return;
    }
    let t = base();
    let jail = clean_jail(t.path());
    mkdirs(&jail.join("var/hidden"), 0o700);
    write(&jail.join("var/hidden/payload"), b"x", 0o4755);
    let nb = nobody();
    let out = output(
        Command::new("setpriv")
            .arg(format!("--reuid={}", nb.uid))
            .arg(format!("--regid={}", nb.gid))
            .arg("--clear-groups")
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_jailtrace"))
            .args(["check", "--format", "json"])
            .arg(&jail),
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let all = findings(&v);
    let detail = flagged(&all, "high", "unexamined", "/var/hidden");
    assert!(detail.contains("Permission denied"), "{detail}");
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{all:#?}");
    assert_eq!(out.status.code(), Some(1));
}

/// Unmounts on drop, so that a failing assertion leaves no bind of `/`.
struct BindMount(PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A bind mount of `/` is the host's root under another name: check refuses
/// it as it refuses `/` (by device and inode, not by path) instead of
/// auditing the whole host.
#[test]
fn a_bind_mount_of_the_host_root_is_refused() {
    if !common::require_root("a_bind_mount_of_the_host_root_is_refused") {
        return;
    }
    let t = base();
    let x = t.path().join("hostroot");
    std::fs::create_dir(&x).unwrap();
    nix::mount::mount(
        Some("/"),
        &x,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let _bind = BindMount(x.clone());
    let mut child = jailtrace()
        .arg("check")
        .arg(&x)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("check is auditing the host's root instead of refusing it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot audit the host's root directory"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// The vectors a review found `check` missing: file capabilities, a POSIX
/// ACL that lets the jail user write, uid fields glibc reads as 0, bind
/// mounts of host directories, and the other files that hold password
/// hashes. The mounts are made in a private mount namespace, with check
/// running in it, so that the host never sees them.
#[test]
fn capabilities_acls_root_aliases_bind_mounts_and_hash_backups_are_flagged() {
    let test = "capabilities_acls_root_aliases_bind_mounts_and_hash_backups_are_flagged";
    if !common::require_root(test)
        || !["unshare", "setcap", "setfacl"]
            .iter()
            .all(|p| common::require_program(test, p))
    {
        return;
    }
    let t = base();
    let jail = clean_jail(t.path());
    let probe = std::fs::read(common::fixture("run_probe", &["-static"])).unwrap();
    write(&jail.join("bin/capped"), &probe, 0o755);
    common::success(
        Command::new("setcap")
            .arg("cap_setuid+ep")
            .arg(jail.join("bin/capped")),
    );
    // Root's directory, 0755, but an ACL lets nobody write it.
    mkdirs(&jail.join("usr/bin"), 0o755);
    common::success(
        Command::new("setfacl")
            .args(["-m", "u:nobody:rwx"])
            .arg(jail.join("usr/bin")),
    );
    write(
        &jail.join("etc/passwd"),
        b"root:x:0:0:root:/root:/usr/sbin/nologin\nzeros::00:0::/:/usr/sbin/nologin\nplus::+0:0::/:/bin/sh\n",
        0o644,
    );
    write(
        &jail.join("var/backups/shadow.bak"),
        b"root:$y$j9T$abc:19000::::::\n",
        0o600,
    );
    write(
        &jail.join("etc/security/opasswd"),
        b"u:1000:1:$y$j9T$old\n",
        0o600,
    );
    mkdirs(&jail.join("hostetc"), 0o755);
    mkdirs(&jail.join("scratch"), 0o755);
    let script = format!(
        "mount --bind /etc {jail}/hostetc && mount -t tmpfs none {jail}/scratch && \
         exec {bin} check --format json --user nobody {jail}",
        jail = jail.display(),
        bin = env!("CARGO_BIN_EXE_jailtrace"),
    );
    let out = output(Command::new("unshare").args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let all = findings(&v);
    assert!(flagged(&all, "high", "capabilities", "/bin/capped").contains("security.capability"));
    flagged(&all, "high", "modifiable", "/usr/bin");
    let accounts: Vec<_> = all.iter().filter(|f| f.1 == "root-account").collect();
    for name in ["zeros", "plus"] {
        assert!(
            accounts
                .iter()
                .any(|f| f.0 == "high" && f.3.contains(&format!("{name:?} has an empty password"))),
            "{accounts:#?}"
        );
    }
    flagged(&all, "high", "sensitive-file", "/var/backups/shadow.bak");
    flagged(&all, "high", "sensitive-file", "/etc/security/opasswd");
    assert!(flagged(&all, "high", "mount", "/hostetc").contains("from outside the jail"));
    // A fresh tmpfs holds nothing of the host's.
    flagged(&all, "low", "mount", "/scratch");
}
