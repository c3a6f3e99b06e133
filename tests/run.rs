//! `jailtrace run`: the secure entry sequence, checked from inside real
//! jails with static probes (the jails hold no libc).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{jailtrace, output};

/// A minimal jail: `JAIL/bin/probe` and `JAIL/bin/breakout`, static, and an
/// empty `JAIL/breakout` directory (so that the break-out's chroot fails for
/// nobody on permission, not on a missing path), in a
/// temporary directory that other users can traverse (so that a jailed
/// `nobody` is stopped by the jail, not by the temp dir's 0700).
struct Jail {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
}

fn make_jail() -> Jail {
    let tmp = common::tempdir();
    let base = tmp.path().to_path_buf();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = base.join("jail");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(
        common::fixture("run_probe", &["-static"]),
        root.join("bin/probe"),
    )
    .unwrap();
    std::fs::copy(
        common::fixture("breakout", &["-static"]),
        root.join("bin/breakout"),
    )
    .unwrap();
    std::fs::create_dir(root.join("breakout")).unwrap();
    Jail {
        _tmp: tmp,
        base,
        root,
    }
}

fn run_in(jail: &Jail, opts: &[&str], cmd: &[&str]) -> Command {
    let mut c = jailtrace();
    c.arg("run").args(opts).arg(&jail.root).arg("--").args(cmd);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn nobody() -> nix::unistd::User {
    nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the host has a nobody user")
}

/// Mount points of this (the host's) mount namespace.
fn host_mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap().to_string())
        .collect()
}

fn under(points: &[String], dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    points
        .iter()
        .filter(|p| p.starts_with(dir))
        .cloned()
        .collect()
}

#[test]
fn breakout_is_contained_for_nobody_and_escapes_as_root() {
    if !common::require_root("breakout_is_contained_for_nobody_and_escapes_as_root") {
        return;
    }
    let jail = make_jail();
    // The marker is readable by anyone: only the chroot keeps it from the
    // jailed program.
    let marker = jail.base.join("marker");
    let secret = format!("marker-{}", std::process::id());
    std::fs::write(&marker, &secret).unwrap();
    std::fs::set_permissions(&marker, std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = format!("cat {}\n", marker.display());

    let attempt = |opts: &[&str]| {
        let mut child = run_in(&jail, opts, &["/bin/breakout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A run that ends before reading (nobody's: no shell to exec) has
        // closed the pipe: that is its answer, not the test's failure.
        let written = child.stdin.take().unwrap().write_all(script.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    };

    // As nobody: chroot is refused (EPERM), so the climb stays inside the
    // jail, and the jail has no /bin/sh to exec.
    let out = attempt(&["--user", "nobody"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains(&secret),
        "nobody read the marker: {stdout}"
    );
    assert!(
        stderr.contains("breakout: chroot: Operation not permitted"),
        "{stderr}"
    );
    assert!(stderr.contains("breakout: exec /bin/sh"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");

    // As root the same program walks out of the jail and runs the host's
    // /bin/sh, which reads the marker. This is why root is refused by
    // default.
    let out = attempt(&["--allow-root"]);
    assert!(
        text(&out.stdout).contains(&secret),
        "root did not escape: {}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn root_is_refused_without_allow_root() {
    if !common::require_root("root_is_refused_without_allow_root") {
        return;
    }
    let jail = make_jail();
    for opts in [&[][..], &["--user", "root"], &["--user", "0"]] {
        let out = output(&mut run_in(&jail, opts, &["/bin/probe", "ids"]));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{opts:?}: {stderr}");
        assert!(
            stderr.contains("root can break out of a chroot"),
            "{stderr}"
        );
        assert!(stderr.contains("--allow-root"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = output(&mut run_in(
        &jail,
        &["--allow-root"],
        &["/bin/probe", "ids"],
    ));
    assert!(
        text(&out.stdout).starts_with("uid=0 "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ids_are_dropped_and_no_new_privs_is_set() {
    if !common::require_root("ids_are_dropped_and_no_new_privs_is_set") {
        return;
    }
    let jail = make_jail();
    let nb = nobody();
    let name = std::ffi::CString::new(nb.name.clone()).unwrap();
    let groups = nix::unistd::getgrouplist(&name, nb.gid).unwrap();
    let mut groups: Vec<String> = groups
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    groups.sort();
    groups.dedup();
    let out = common::success(&mut run_in(&jail, &["--user", "nobody"], &["probe", "ids"]));
    let want = format!(
        "uid={u} euid={u} gid={g} egid={g} groups={} nnp=1\n",
        groups.join(","),
        u = nb.uid,
        g = nb.gid
    );
    assert_eq!(out, want);

    // A bare uid with no passwd entry: no supplementary groups at all, and
    // the group must be given.
    let out = common::success(&mut run_in(
        &jail,
        &["--user", "4242", "--group", "4343"],
        &["probe", "ids"],
    ));
    assert_eq!(out, "uid=4242 euid=4242 gid=4343 egid=4343 groups= nnp=1\n");
    let out = output(&mut run_in(&jail, &["--user", "4242"], &["probe", "ids"]));
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("give --group"),
        "{}",
        text(&out.stderr)
    );

    let out = output(&mut run_in(
        &jail,
        &["--user", "no-such-user-x"],
        &["probe", "ids"],
    ));
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("unknown user \"no-such-user-x\""));
}

#[test]
fn command_runs_in_its_own_session_with_default_sigpipe() {
    if !common::require_root("command_runs_in_its_own_session_with_default_sigpipe") {
        return;
    }
    let jail = make_jail();
    // Give the jail a /dev/tty: without a controlling terminal it cannot
    // be opened, whatever jailtrace's own stdin is.
    std::fs::create_dir(jail.root.join("dev")).unwrap();
    nix::sys::stat::mknod(
        &jail.root.join("dev/tty"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(5, 0),
    )
    .unwrap();
    let out = common::success(&mut run_in(
        &jail,
        &["--user", "nobody"],
        &["probe", "session"],
    ));
    assert_eq!(out, "leader=1 tty=none sigpipe=default\n");
}

#[test]
fn exit_status_is_the_commands() {
    if !common::require_root("exit_status_is_the_commands") {
        return;
    }
    let jail = make_jail();
    let user = ["--user", "nobody"];
    let out = output(&mut run_in(&jail, &user, &["/bin/probe", "exit", "42"]));
    assert_eq!(out.status.code(), Some(42));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let out = output(&mut run_in(&jail, &user, &["/bin/probe", "kill", "15"]));
    assert_eq!(common::killed_by(&out.status), Some(15));
    let out = output(&mut run_in(&jail, &user, &["/bin/probe", "exit", "0"]));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_and_unexecutable_commands_get_127_and_126() {
    if !common::require_root("missing_and_unexecutable_commands_get_127_and_126") {
        return;
    }
    let jail = make_jail();
    let user = ["--user", "nobody"];

    let out = output(&mut run_in(&jail, &user, &["no-such-command"]));
    assert_eq!(out.status.code(), Some(127));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-such-command: command not found"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);

    let out = output(&mut run_in(&jail, &user, &["/bin/missing"]));
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("/bin/missing: not found inside the jail"));

    // Present but not executable.
    std::fs::write(jail.root.join("bin/data"), "x").unwrap();
    std::fs::set_permissions(
        jail.root.join("bin/data"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = output(&mut run_in(&jail, &user, &["data"]));
    assert_eq!(out.status.code(), Some(126));
    assert!(
        text(&out.stderr).contains("data: cannot execute inside"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("permission denied"));

    // A symlink to nothing inside the jail (its target exists on the host:
    // it must be resolved against the jail, not the host).
    std::os::unix::fs::symlink("/usr/bin/env", jail.root.join("bin/dangling")).unwrap();
    let out = output(&mut run_in(&jail, &user, &["dangling"]));
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("/bin/dangling: cannot execute inside")
            && text(&out.stderr).contains("symlink whose target is missing from the jail"),
        "{}",
        text(&out.stderr)
    );

    // A script whose interpreter the jail lacks: execve says ENOENT, and the
    // message says why.
    std::fs::write(jail.root.join("bin/script"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        jail.root.join("bin/script"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = output(&mut run_in(&jail, &user, &["script"]));
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("interpreter"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn environment_is_reset_unless_keep_env() {
    if !common::require_root("environment_is_reset_unless_keep_env") {
        return;
    }
    let jail = make_jail();
    let nb = nobody();
    let mut cmd = run_in(&jail, &["--user", "nobody"], &["probe", "env"]);
    cmd.env("JAILTRACE_TEST_SECRET", "leak")
        .env("TERM", "xterm");
    let out = common::success(&mut cmd);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    let home = format!("HOME={}", nb.dir.display());
    let mut want = vec![
        home.as_str(),
        "LOGNAME=nobody",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM=xterm",
        "USER=nobody",
    ];
    want.sort();
    assert_eq!(lines, want);

    let mut cmd = run_in(
        &jail,
        &["--user", "nobody", "--keep-env"],
        &["/bin/probe", "env"],
    );
    cmd.env("JAILTRACE_TEST_SECRET", "kept");
    let out = common::success(&mut cmd);
    assert!(
        out.lines().any(|l| l == "JAILTRACE_TEST_SECRET=kept"),
        "{out}"
    );
}

#[test]
fn inherited_descriptors_are_closed() {
    if !common::require_root("inherited_descriptors_are_closed") {
        return;
    }
    let jail = make_jail();
    // A descriptor without close-on-exec, which jailtrace inherits.
    let file = std::fs::File::open("/etc/hostname")
        .or_else(|_| std::fs::File::open("/etc/passwd"))
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    nix::fcntl::fcntl(
        &file,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();

    // Control: run directly, the probe sees it.
    let probe = common::fixture("run_probe", &["-static"]);
    let direct = common::success(Command::new(&probe).arg("fds"));
    assert!(
        direct.split_whitespace().any(|w| w == fd.to_string()),
        "control run does not see fd {fd}: {direct}"
    );
    // In the jail, nothing above 2 is left.
    let out = common::success(&mut run_in(&jail, &["--user", "nobody"], &["probe", "fds"]));
    assert_eq!(out, "open:\n");
    drop(file);
}

#[test]
fn proc_mount_works_and_stays_off_the_host() {
    if !common::require_root("proc_mount_works_and_stays_off_the_host") {
        return;
    }
    let jail = make_jail();
    let user = ["--user", "nobody"];
    // Without the mount there is no /proc in the jail.
    let out = output(&mut run_in(
        &jail,
        &user,
        &["probe", "cat", "/proc/self/status"],
    ));
    assert_eq!(out.status.code(), Some(1));

    let mut opts = user.to_vec();
    opts.extend(["--mount", "proc"]);
    let out = common::success(&mut run_in(
        &jail,
        &opts,
        &["probe", "cat", "/proc/self/status"],
    ));
    let uid = nobody().uid.to_string();
    assert!(
        out.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(uid.as_str())),
        "{out}"
    );

    // Other users' processes stay hidden (hidepid=invisible): pid 1 is root's.
    let out = output(&mut run_in(
        &jail,
        &opts,
        &["probe", "cat", "/proc/1/status"],
    ));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    // sysfs, read-only.
    let out = common::success(&mut run_in(
        &jail,
        &["--user", "nobody", "--mount", "sys"],
        &["probe", "cat", "/sys/kernel/uevent_seqnum"],
    ));
    assert!(out.trim().parse::<u64>().is_ok(), "{out}");

    // While the command runs, the mount exists only in its namespace.
    let (mut child, _out) = common::spawn_ready(&mut run_in(&jail, &opts, &["probe", "hold"]));
    assert_eq!(
        under(&host_mount_points(), &jail.root),
        Vec::<String>::new()
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(
        under(&host_mount_points(), &jail.root),
        Vec::<String>::new()
    );
}

#[test]
fn mount_points_that_are_symlinks_are_refused() {
    if !common::require_root("mount_points_that_are_symlinks_are_refused") {
        return;
    }
    let jail = make_jail();
    std::os::unix::fs::symlink("/etc", jail.root.join("proc")).unwrap();
    let before = host_mount_points();
    let out = output(&mut run_in(
        &jail,
        &["--user", "nobody", "--mount", "proc"],
        &["probe", "ids"],
    ));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("/proc: cannot prepare the mount point for proc"),
        "{stderr}"
    );
    assert!(stderr.contains("symlink"), "{stderr}");
    assert!(out.stdout.is_empty(), "the command must not run");
    assert_eq!(host_mount_points(), before);
    // A symlinked parent directory is refused as well.
    std::fs::create_dir(jail.base.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(jail.base.join("elsewhere"), jail.root.join("dev")).unwrap();
    let out = output(&mut run_in(
        &jail,
        &["--user", "nobody", "--mount", "dev-log=/dev/null"],
        &["probe", "ids"],
    ));
    assert_eq!(out.status.code(), Some(125));
    // /dev/null is not a socket: refused before looking at the jail.
    assert!(
        text(&out.stderr).contains("not a socket"),
        "{}",
        text(&out.stderr)
    );
    let sock = jail.base.join("log.sock");
    let _listener = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    let spec = format!("dev-log={}", sock.display());
    let out = output(&mut run_in(
        &jail,
        &["--user", "nobody", "--mount", &spec],
        &["probe", "ids"],
    ));
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("symlink"),
        "{}",
        text(&out.stderr)
    );
    assert!(!jail.base.join("elsewhere/log").exists());
}

#[test]
fn dev_log_bind_reaches_the_host_socket() {
    if !common::require_root("dev_log_bind_reaches_the_host_socket") {
        return;
    }
    let jail = make_jail();
    let sock = jail.base.join("log.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let spec = format!("dev-log={}", sock.display());
    common::success(&mut run_in(
        &jail,
        &["--user", "nobody", "--mount", &spec],
        &["probe", "sendlog", "hello from the jail"],
    ));
    let mut buf = [0u8; 64];
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello from the jail");
    // The mount point is an empty file jailtrace created; the bind is gone.
    let meta = std::fs::symlink_metadata(jail.root.join("dev/log")).unwrap();
    assert!(meta.is_file() && meta.len() == 0);

    // As on most hosts, JAIL/dev/log may be a symlink: it is followed with
    // the jail as root, and the mount point created at its target.
    std::fs::remove_file(jail.root.join("dev/log")).unwrap();
    std::fs::create_dir_all(jail.root.join("run/systemd/journal")).unwrap();
    std::os::unix::fs::symlink("/run/systemd/journal/dev-log", jail.root.join("dev/log")).unwrap();
    common::success(&mut run_in(
        &jail,
        &["--user", "nobody", "--mount", &spec],
        &["probe", "sendlog", "through the symlink"],
    ));
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"through the symlink");
    assert!(jail.root.join("run/systemd/journal/dev-log").is_file());

    // A symlink that climbs out resolves inside the jail all the same:
    // nothing is created on the host, and without that directory in the
    // jail, nothing is mounted.
    std::fs::create_dir(jail.base.join("outside")).unwrap();
    let climb = format!("../../../../../../..{}/outside/log", jail.base.display());
    std::fs::remove_file(jail.root.join("dev/log")).unwrap();
    std::os::unix::fs::symlink(&climb, jail.root.join("dev/log")).unwrap();
    let out = output(&mut run_in(
        &jail,
        &["--user", "nobody", "--mount", &spec],
        &["probe", "sendlog", "must not arrive"],
    ));
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("its directory cannot be opened inside the jail"),
        "{}",
        text(&out.stderr)
    );
    assert!(!jail.base.join("outside/log").exists());
}

#[test]
fn manifest_decides_the_mounts() {
    if !common::require_root("manifest_decides_the_mounts") {
        return;
    }
    let jail = make_jail();
    let manifest = jail.base.join("m.json");
    std::fs::write(
        &manifest,
        r#"{
  "schema": 1,
  "generator": "test",
  "command": { "argv": ["/bin/probe"], "cwd": "/", "uid": 0, "gid": 0 },
  "entries": [
    { "path": "/proc", "kind": "dir", "class": "proc" },
    { "path": "/proc/self", "kind": "symlink", "class": "proc" },
    { "path": "/proc/self/status", "kind": "file", "class": "proc",
      "accesses": [ { "op": "read", "result": "ok" } ] }
  ]
}"#,
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let out = common::success(&mut run_in(
        &jail,
        &["--user", "nobody", "--manifest", m],
        &["probe", "cat", "/proc/self/status"],
    ));
    assert!(out.contains("Uid:"), "{out}");
    // No sys entry: no /sys mount.
    let out = output(&mut run_in(
        &jail,
        &["--user", "nobody", "--manifest", m],
        &["probe", "cat", "/sys/kernel/uevent_seqnum"],
    ));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn signals_are_forwarded_to_the_command() {
    if !common::require_root("signals_are_forwarded_to_the_command") {
        return;
    }
    use nix::sys::signal::Signal;
    let jail = make_jail();
    for sig in [Signal::SIGTERM, Signal::SIGQUIT] {
        let (mut child, _out) = common::spawn_ready(&mut run_in(
            &jail,
            &["--user", "nobody"],
            &["probe", "hold"],
        ));
        let probe = children_of(child.id() as i32)[0].0;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = wait_timeout(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("jailtrace did not end after {sig}")
        });
        // jailtrace survived the signal, passed it on, and, once the
        // command died of it, died of it too; the command is gone, not
        // orphaned.
        assert_eq!(common::killed_by(&status), Some(sig as i32), "{sig}");
        assert!(
            ppid_and_state(probe).is_none_or(|(_, st)| st == 'Z'),
            "{sig}: the command outlived jailtrace"
        );
        drop(child.stdin.take());
    }
}

#[test]
fn a_directory_on_stdin_is_refused() {
    if !common::require_root("a_directory_on_stdin_is_refused") {
        return;
    }
    let jail = make_jail();
    // Opened outside the jail and kept across exec, a directory descriptor
    // lets even an unprivileged program fchdir out of the chroot.
    let dir = std::fs::File::open(&jail.base).unwrap();
    let out = output(run_in(&jail, &["--user", "nobody"], &["probe", "ids"]).stdin(dir));
    assert_eq!(out.status.code(), Some(125));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("stdin is a directory"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_jails_get_one_clear_line() {
    let out = output(jailtrace().args(["run", "/no/such/jail", "--", "true"]));
    assert_eq!(out.status.code(), Some(125));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("jailtrace: /no/such/jail: cannot use as a jail"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
    let out = output(jailtrace().args(["run", "/", "--allow-root", "--", "true"]));
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("host's root directory"));
    // A usage error: run's own failures, and so its usage errors, exit 125.
    let out = output(jailtrace().args(["run", "/tmp", "--mount", "tmpfs", "--", "true"]));
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("expected proc, sys or dev-log"));
}

/// Copies a host program and the shared objects `ldd` lists into the jail,
/// at the same paths.
fn add_host_program(root: &Path, prog: &Path) {
    let out = common::success(Command::new("ldd").arg(prog));
    let mut files = vec![prog.to_path_buf()];
    for line in out.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let dest = root.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}

fn ppid_and_state(pid: i32) -> Option<(i32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    Some((f.next()?.parse().ok()?, state))
}

/// The live processes whose parent is `parent`, with their command names.
fn children_of(parent: i32) -> Vec<(i32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| ppid_and_state(pid).is_some_and(|(pp, st)| pp == parent && st != 'Z'))
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, comm.trim_end().to_string()))
        })
        .collect()
}

fn wait_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The command leads its own process group (setsid), so a signal for the
/// run must reach that whole group: bash waiting for a foreground `sleep`
/// ignores a SIGINT meant for the job until the sleep ends, so with the
/// signal sent to bash alone the run would last the whole 30 seconds.
#[test]
fn sigint_reaches_the_commands_whole_process_group() {
    let name = "sigint_reaches_the_commands_whole_process_group";
    if !common::require_root(name)
        || !common::require_program(name, "bash")
        || !common::require_program(name, "sleep")
    {
        return;
    }
    let jail = make_jail();
    add_host_program(&jail.root, &common::which("bash").unwrap());
    add_host_program(&jail.root, &common::which("sleep").unwrap());
    let bash = format!("{}", common::which("bash").unwrap().display());
    let sleep = format!("{}", common::which("sleep").unwrap().display());
    let script = format!("echo READY; {sleep} 30; echo after");
    let mut child = run_in(&jail, &["--user", "nobody"], &[&bash, "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let jt = child.id() as i32;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "READY\n");
    // Wait until bash runs the sleep in the foreground.
    let start = Instant::now();
    let sleeper = loop {
        let found = children_of(jt)
            .into_iter()
            .flat_map(|(sh, _)| children_of(sh))
            .find(|(_, comm)| comm == "sleep");
        if let Some((pid, _)) = found {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the jailed bash never started sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let pid = |p: i32| nix::unistd::Pid::from_raw(p);
    nix::sys::signal::kill(pid(jt), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(5));
    let sleep_alive = ppid_and_state(sleeper).is_some_and(|(_, st)| st != 'Z');
    if status.is_none() || sleep_alive {
        let _ = nix::sys::signal::kill(pid(sleeper), nix::sys::signal::Signal::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = status.expect("the run did not end within 5s of SIGINT");
    assert!(!sleep_alive, "the jailed sleep outlived the SIGINT");
    // bash saw its foreground job die of SIGINT and killed itself the same
    // way, and so did jailtrace.
    assert_eq!(common::killed_by(&status), Some(2));
}

/// ^Z reaches jailtrace only (the command has left the terminal's group,
/// by design); jailtrace stops the command's group with itself, and
/// continues it when it is continued. Then it collects the command's exit
/// as usual. Nothing hangs.
#[test]
fn stopping_and_continuing_jailtrace_loses_nothing() {
    if !common::require_root("stopping_and_continuing_jailtrace_loses_nothing") {
        return;
    }
    let jail = make_jail();
    // A group of its own whose parent (this test) is in another group of
    // the same session: otherwise, when the test runs in an orphaned
    // process group (a CI runner started with setsid), the kernel discards
    // SIGTSTP as POSIX requires, and nothing would stop.
    let (mut child, _out) = common::spawn_ready(
        run_in(&jail, &["--user", "nobody"], &["probe", "hold"]).process_group(0),
    );
    let jt = child.id() as i32;
    let probe = children_of(jt)[0].0;
    let pid = nix::unistd::Pid::from_raw(jt);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTSTP).unwrap();
    let start = Instant::now();
    while ppid_and_state(jt).map(|(_, s)| s) != Some('T') {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "jailtrace did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The command is stopped with it.
    let start = Instant::now();
    while ppid_and_state(probe).map(|(_, s)| s) != Some('T') {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the command was not stopped with jailtrace"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Continuing jailtrace continues the command: end of input ends it.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let start = Instant::now();
    while ppid_and_state(probe).is_some_and(|(_, s)| s == 'T') {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the command was not continued with jailtrace"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(child.stdin.take());
    let status = wait_timeout(&mut child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        status.expect("jailtrace hung after SIGCONT").code(),
        Some(0)
    );
}

/// Unmounts on drop, so that a failing assertion leaves no bind of `/`.
struct BindMount(PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A bind mount of `/` is the host's root under another name: run must
/// refuse it as it refuses `/`, deciding by device and inode, not by path.
#[test]
fn a_bind_mount_of_the_host_root_is_refused() {
    if !common::require_root("a_bind_mount_of_the_host_root_is_refused") {
        return;
    }
    let tmp = common::tempdir();
    let x = tmp.path().join("hostroot");
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
    let out = output(
        jailtrace()
            .arg("run")
            .arg("--allow-root")
            .arg(&x)
            .args(["--", "/bin/true"]),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("cannot use as a jail: it is the host's root directory"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// The jail path is resolved once: while another thread keeps exchanging
/// JAIL with a second jail (renameat2 RENAME_EXCHANGE), each run either
/// enters the directory that was checked, with its proc mount inside it,
/// or refuses with one clear line. It never mounts in one directory and
/// chroots into the other (the command would then find no /proc).
#[test]
fn a_jail_swapped_during_entry_never_splits_mounts_and_chroot() {
    if !common::require_root("a_jail_swapped_during_entry_never_splits_mounts_and_chroot") {
        return;
    }
    let jail = make_jail();
    let other = jail.base.join("other");
    std::fs::create_dir_all(other.join("bin")).unwrap();
    std::fs::copy(jail.root.join("bin/probe"), other.join("bin/probe")).unwrap();
    for d in [&jail.root, &other] {
        std::fs::create_dir(d.join("proc")).unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, a, b) = (stop.clone(), jail.root.clone(), other.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &a,
                    nix::fcntl::AT_FDCWD,
                    &b,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .unwrap();
            }
        })
    };
    let (mut entered, mut refused) = (0, 0);
    let mut bad = Vec::new();
    for _ in 0..60 {
        let out = output(&mut run_in(
            &jail,
            &["--user", "nobody", "--mount", "proc"],
            &["probe", "cat", "/proc/self/stat"],
        ));
        let stderr = text(&out.stderr);
        match out.status.code() {
            Some(0) => entered += 1,
            Some(125) if stderr.contains("was replaced meanwhile") => refused += 1,
            c => bad.push(format!("{c:?}: {stderr}")),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(bad.is_empty(), "runs that split the jail: {bad:#?}");
    assert!(entered > 0, "no run got in ({refused} refused)");
}

/// Every live descendant of `pid`, with its command name.
fn descendants(pid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children_of(p) {
            todo.push(c.0);
            out.push(c);
        }
    }
    out
}

/// The same from a real terminal: `script` gives jailtrace a pseudo
/// terminal, and a ^C typed there goes (from the kernel) to jailtrace's
/// foreground group only, since the command left it with setsid; jailtrace
/// passes it on to the command's group.
#[test]
fn ctrl_c_at_a_terminal_ends_the_commands_foreground_job() {
    let name = "ctrl_c_at_a_terminal_ends_the_commands_foreground_job";
    if !common::require_root(name)
        || !common::require_program(name, "script")
        || !common::require_program(name, "bash")
        || !common::require_program(name, "sleep")
    {
        return;
    }
    let jail = make_jail();
    let bash = common::which("bash").unwrap();
    let sleep = common::which("sleep").unwrap();
    add_host_program(&jail.root, &bash);
    add_host_program(&jail.root, &sleep);
    let cmd = format!(
        "{} run --user nobody {} -- {} -c 'echo READY; {} 30; echo after'; echo rc=$?",
        env!("CARGO_BIN_EXE_jailtrace"),
        jail.root.display(),
        bash.display(),
        sleep.display()
    );
    let mut child = common::on_a_terminal(&cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no READY");
    }
    let start = Instant::now();
    let sleeper = loop {
        if let Some((pid, _)) = descendants(child.id() as i32)
            .into_iter()
            .find(|(_, comm)| comm == "sleep")
        {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no sleep started"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    // Read the rest on a thread, so that a run that does not end is seen
    // as such instead of blocking the test.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        let _ = tx.send(rest);
    });
    let rest = rx.recv_timeout(Duration::from_secs(5));
    let sleep_alive = ppid_and_state(sleeper).is_some_and(|(_, st)| st != 'Z');
    let pid = |p: i32| nix::unistd::Pid::from_raw(p);
    let _ = nix::sys::signal::kill(pid(sleeper), nix::sys::signal::Signal::SIGKILL);
    drop(stdin);
    let rest = rest.unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("the run did not end within 5s of ^C")
    });
    let _ = child.wait();
    assert!(!sleep_alive, "the jailed sleep outlived ^C");
    // jailtrace died of the SIGINT its command died of, so the calling
    // shell saw ^C and stopped too, as without jailtrace: no `echo rc=`.
    assert!(!rest.contains("rc="), "{rest}");
    assert!(!rest.contains("after"), "{rest}");
}
