//! Black-box tests of `jailtrace record`: real programs, real ptrace.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{entry, fixture, has_access, jailtrace, output, tempdir};
use serde_json::Value;

/// The tempdir with any symlinks resolved, as manifests record real paths.
fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

/// Waits (10 s at most) for the command to create `ready` in `d`.
fn wait_ready(d: &Path) {
    let start = Instant::now();
    while !d.join("ready").exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "never got ready");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// The real path of a host file, as the manifest must list it.
fn canon(p: &str) -> String {
    s(&real(Path::new(p)))
}

fn ld_so() -> String {
    canon("/lib64/ld-linux-x86-64.so.2")
}

#[track_caller]
fn assert_access(m: &Value, path: &str, op: &str, result: &str) {
    assert!(
        has_access(m, path, op, result),
        "expected {op} {result} on {path}; entry: {:#?}",
        entry(m, path)
    );
}

fn kind(m: &Value, path: &str) -> String {
    entry(m, path).unwrap_or_else(|| panic!("no entry for {path}"))["kind"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_syscall_family_is_recorded_with_its_outcome() {
    let tmp = tempdir();
    let d = real(tmp.path());
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("data/file.txt"), "hello\n").unwrap();
    std::os::unix::fs::symlink("chain2", d.join("chain1")).unwrap();
    std::os::unix::fs::symlink("data/file.txt", d.join("chain2")).unwrap();
    let bin = fixture("syscalls", &[]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), d.to_str().unwrap()], 0);
    let p = |rel: &str| s(&d.join(rel));

    // chdir, then a relative open
    assert_access(&m, &s(&d), "chdir", "ok");
    assert_access(&m, &p("data/file.txt"), "read", "ok");
    // dirfd-relative creation of an output
    assert_access(&m, &p("sub/in-sub.txt"), "create", "ok");
    assert_access(&m, &p("sub/in-sub.txt"), "write", "ok");
    assert_eq!(entry(&m, &p("sub/in-sub.txt")).unwrap()["output"], true);
    // relative after fchdir resolves against the fd's directory
    assert_access(&m, &p("sub"), "chdir", "ok");
    assert_access(&m, &p("sub/after-fchdir"), "read", "ENOENT");
    assert_eq!(kind(&m, &p("sub/after-fchdir")), "missing");
    // the symlink chain: both links recorded with targets, stat reaches the file
    assert_eq!(entry(&m, &p("chain1")).unwrap()["target"], "chain2");
    assert_eq!(entry(&m, &p("chain2")).unwrap()["target"], "data/file.txt");
    assert_access(&m, &p("chain1"), "follow", "ok");
    assert_access(&m, &p("chain1"), "stat", "ok"); // lstat
    assert_access(&m, &p("chain1"), "readlink", "ok");
    assert_access(&m, &p("chain2"), "readlink", "ok");
    assert_access(&m, &p("data/file.txt"), "stat", "ok");
    // access family, including a failed probe
    assert_access(&m, &p("data/file.txt"), "access", "ok");
    assert_access(&m, &p("probe-missing"), "access", "ENOENT");
    assert_access(&m, &p("data"), "access", "ok");
    // statx
    assert_access(&m, &p("sub"), "stat", "ok");
    // EISDIR keeps its errno name
    assert_access(&m, &p("data"), "write", "EISDIR");
    // creat, rename, link, symlink, unlink, mkdir, rmdir
    assert_access(&m, &p("created.txt"), "create", "ok");
    assert_access(&m, &p("created.txt"), "rename-from", "ok");
    assert_access(&m, &p("newdir"), "mkdir", "ok");
    assert_access(&m, &p("newdir/renamed.txt"), "rename-to", "ok");
    assert_access(&m, &p("newdir/renamed.txt"), "link-from", "ok");
    assert_access(&m, &p("hardlink.txt"), "link-to", "ok");
    assert_access(&m, &p("hardlink.txt"), "unlink", "ok");
    assert_eq!(kind(&m, &p("hardlink.txt")), "missing");
    assert_access(&m, &p("made-symlink"), "symlink", "ok");
    assert_eq!(entry(&m, &p("made-symlink")).unwrap()["target"], "newdir");
    assert_access(&m, &p("gone"), "mkdir", "ok");
    assert_access(&m, &p("gone"), "rmdir", "ok");
    // devices keep their numbers and class
    let u = entry(&m, "/dev/urandom").expect("/dev/urandom");
    assert_eq!(u["class"], "dev");
    assert_eq!(u["kind"], "chardev");
    assert_eq!(
        (u["major"].as_u64(), u["minor"].as_u64()),
        (Some(1), Some(9))
    );
    assert_access(&m, "/dev/urandom", "read", "ok");
    // /proc/self and /proc/<own pid> are both written /proc/self
    assert_access(&m, "/proc/self/status", "read", "ok");
    assert_access(&m, "/proc/self/cmdline", "read", "ok");
    assert_eq!(entry(&m, "/proc/self/status").unwrap()["class"], "proc");
    let text = serde_json::to_string(&m).unwrap();
    assert!(
        !text.contains("/proc/1") || !text.contains("cmdline\""),
        "pid leaked"
    );
    // a non-UTF-8 name round-trips through the \xNN escape
    assert_access(&m, &format!("{}/bad\\xffname", s(&d)), "create", "ok");
    // unix sockets
    assert_access(&m, &p("sock"), "bind", "ok");
    assert_access(&m, &p("sock"), "connect", "ok");
    assert_eq!(kind(&m, &p("sock")), "socket");
    // dlopen'd library
    let libm = canon("/lib/x86_64-linux-gnu/libm.so.6");
    assert_access(&m, &libm, "read", "ok");
    // execveat, and the ELF interpreter the kernel loaded for each exec
    assert_access(&m, &canon("/bin/true"), "exec", "ok");
    assert_access(&m, &s(&bin), "exec", "ok");
    assert_access(&m, &ld_so(), "interp", "ok");
    // merged /usr: /lib64 and /bin are recorded as the symlinks they are
    for link in ["/lib64", "/bin"] {
        if std::fs::symlink_metadata(link)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            assert_eq!(kind(&m, link), "symlink", "{link}");
            assert_access(&m, link, "follow", "ok");
        }
    }
    // every ancestor directory has an entry with its mode
    assert_eq!(entry(&m, "/").unwrap()["kind"], "dir");
    assert!(entry(&m, &s(&d)).unwrap()["mode"].is_string());
}

#[test]
fn threads_and_exec_from_a_non_leader_thread() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let bin = fixture("threads", &["-pthread"]);
    let m = common::record_in(
        &d,
        "m",
        &[
            bin.to_str().unwrap(),
            d.to_str().unwrap(),
            "/usr/bin/env",
            "true",
        ],
        0,
    );
    for i in 0..8 {
        assert_access(&m, &s(&d.join(format!("thread-{i}"))), "create", "ok");
    }
    assert_access(&m, &canon("/usr/bin/env"), "exec", "ok");
    assert_access(&m, &canon("/bin/true"), "exec", "ok");
}

#[test]
fn fork_vfork_clone3_and_a_daemon_that_outlives_its_parent() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let bin = fixture("forks", &[]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), d.to_str().unwrap()], 7);
    for name in ["fork-child", "clone3-child", "daemon-late", "parent-done"] {
        assert_access(&m, &s(&d.join(name)), "create", "ok");
    }
    assert_access(&m, &canon("/bin/true"), "exec", "ok");
    assert_eq!(m["command"]["exit_status"], 7);
}

#[test]
fn nested_shebang_interpreters_are_recorded() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let inner = d.join("inner");
    let outer = d.join("outer");
    std::fs::write(&inner, "#!/bin/sh\necho nested\n").unwrap();
    std::fs::write(&outer, format!("#!{}\n", inner.display())).unwrap();
    let env_script = d.join("via-env");
    std::fs::write(&env_script, "#!/usr/bin/env sh\nexit 0\n").unwrap();
    for f in [&inner, &outer, &env_script] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let m = common::record_in(&d, "m", &[outer.to_str().unwrap()], 0);
    assert_access(&m, &s(&outer), "exec", "ok");
    // No syscall shows these: the kernel loads them itself.
    assert_access(&m, &s(&inner), "exec", "ok");
    assert_access(&m, &canon("/bin/sh"), "exec", "ok");
    assert_access(&m, &ld_so(), "interp", "ok");

    let m = common::record_in(&d, "env", &[env_script.to_str().unwrap()], 0);
    assert_access(&m, &canon("/usr/bin/env"), "exec", "ok");
    assert_access(&m, &canon("/bin/sh"), "exec", "ok");
}

/// Every path that `strace -f` shows opened, stat'ed or exec'd successfully
/// must be in the manifest, under its real path.
fn cross_check_with_strace(name: &str, argv: &[&str]) {
    if !common::require_program(name, "strace") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    let log = d.join("strace.log");
    let st = output(
        Command::new("strace")
            .current_dir(&d)
            .args(["-f", "-qq", "-e", "trace=%file,%process", "-o"])
            .arg(&log)
            .args(argv)
            .stdout(Stdio::null()),
    );
    assert!(st.status.success(), "strace {argv:?} failed");
    let m = common::record_in(&d, "m", argv, 0);
    let known: std::collections::HashSet<String> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    let re = regex::Regex::new(
        r#"^\d+ +(open|openat|stat|lstat|newfstatat|statx|access|faccessat2?|execve|readlink|readlinkat)\((?:AT_FDCWD, )?"([^"]+)".* = (\d+|0x[0-9a-f]+)$"#,
    )
    .unwrap();
    let mut checked = 0;
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let Some(c) = re.captures(line) else { continue };
        let call = &c[1];
        let path = &c[2];
        if path.contains('\\') || !path.starts_with('/') || path.starts_with("/proc/") {
            continue;
        }
        let follow = !matches!(call, "lstat" | "readlink" | "readlinkat")
            && !line.contains("AT_SYMLINK_NOFOLLOW");
        let p = Path::new(path);
        let real_path = if follow {
            std::fs::canonicalize(p).ok()
        } else {
            p.parent()
                .and_then(|dir| std::fs::canonicalize(dir).ok())
                .map(|dir| dir.join(p.file_name().unwrap()))
        };
        let Some(real_path) = real_path else { continue };
        let rp = s(&real_path);
        if rp.starts_with("/proc/") {
            continue;
        }
        assert!(
            known.contains(&rp),
            "{name}: strace saw `{line}` but {rp} is not in the manifest"
        );
        checked += 1;
    }
    assert!(
        checked > 5,
        "{name}: only {checked} strace lines checked: parser broken?"
    );
}

#[test]
fn matches_strace_on_a_shell_pipeline() {
    cross_check_with_strace(
        "shell pipeline",
        &[
            "/bin/sh",
            "-c",
            "cat /etc/passwd | grep root | sort | wc -l",
        ],
    );
}

#[test]
fn matches_strace_on_python() {
    cross_check_with_strace(
        "python",
        &["/usr/bin/python3", "-c", "import json, sqlite3"],
    );
}

#[test]
fn matches_strace_on_perl() {
    if !common::require_program("perl", "perl") {
        return;
    }
    cross_check_with_strace("perl", &["perl", "-MPOSIX", "-e", "1"]);
}

#[test]
fn redis_server_with_timeout() {
    if !common::require_program("redis", "redis-server") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    // The issue's exact command: redis 7 refuses to run with no listener and
    // exits at once, so compare the status with an untraced run.
    let native = output(
        Command::new("redis-server")
            .args(["--port", "0"])
            .current_dir(&d),
    );
    let out = output(
        jailtrace()
            .current_dir(&d)
            .args(["record", "--timeout", "3s", "-o", "redis0.json", "--"])
            .args(["redis-server", "--port", "0"]),
    );
    assert_eq!(out.status.code(), native.status.code());
    // Serving on a unix socket, it runs until the timeout's SIGTERM and
    // then shuts down cleanly.
    let sock = d.join("redis.sock");
    let out = output(
        jailtrace()
            .current_dir(&d)
            .args(["record", "--timeout", "3s", "-o", "redis.json", "--"])
            .args(["redis-server", "--port", "0", "--save", "", "--unixsocket"])
            .arg(&sock),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&std::fs::read(d.join("redis.json")).unwrap()).unwrap();
    let redis = canon(common::which("redis-server").unwrap().to_str().unwrap());
    assert_access(&m, &redis, "exec", "ok");
    assert_access(&m, &ld_so(), "interp", "ok");
    assert_access(&m, &canon("/lib/x86_64-linux-gnu/libc.so.6"), "read", "ok");
    let u = entry(&m, "/dev/urandom").expect("/dev/urandom");
    assert_eq!(u["class"], "dev");
    assert_eq!(
        (u["major"].as_u64(), u["minor"].as_u64()),
        (Some(1), Some(9))
    );
    let entries = m["entries"].as_array().unwrap();
    let reads = |class: &str| {
        entries.iter().any(|e| {
            e["class"] == class
                && e["accesses"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["result"] == "ok"))
        })
    };
    assert!(reads("proc"), "no /proc file read");
    assert!(reads("sys"), "no /sys file read");
    assert_access(&m, &s(&sock), "bind", "ok");
    let m0: Value = serde_json::from_slice(&std::fs::read(d.join("redis0.json")).unwrap()).unwrap();
    assert_access(&m0, &redis, "exec", "ok");
    assert_access(&m0, &ld_so(), "interp", "ok");
}

#[test]
fn two_recordings_are_byte_identical() {
    let tmp = tempdir();
    let d = real(tmp.path());
    std::fs::write(d.join("in.txt"), "b\na\n").unwrap();
    // The children read their own /proc/<pid>: pids differ from run to run,
    // the manifest must not.
    let script = "sort in.txt > out.txt; for i in 1 2 3; do (cat in.txt /proc/$$/stat >/dev/null; exec cat /proc/self/stat >/dev/null) & done; wait; ls /usr/lib >/dev/null";
    let a = d.join("a.json");
    let b = d.join("b.json");
    for out in [&a, &b] {
        // What the first run made, the second would find.
        let _ = std::fs::remove_file(d.join("out.txt"));
        common::success(
            jailtrace()
                .current_dir(&d)
                .args(["record", "-o"])
                .arg(out)
                .args(["--", "/bin/sh", "-c", script]),
        );
    }
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(a == b, "manifests differ");
    let text = String::from_utf8(a).unwrap();
    let pid_path = regex::Regex::new(r#""/proc/[0-9]+"#).unwrap();
    assert!(!pid_path.is_match(&text), "a pid leaked into the manifest");
    assert!(text.contains("\"/proc/self/stat\""));
}

#[test]
fn exit_statuses_follow_shell_and_chroot_conventions() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let run = |args: &[&str]| {
        output(
            jailtrace()
                .current_dir(&d)
                .args(["record", "-o", "m.json", "--"])
                .args(args),
        )
    };
    assert_eq!(run(&["sh", "-c", "exit 3"]).status.code(), Some(3));
    // A command killed by a signal: jailtrace dies of the same signal once
    // the manifest is written, and the manifest says 128+N.
    let killed = run(&["sh", "-c", "kill -9 $$"]);
    assert_eq!(common::killed_by(&killed.status), Some(9));
    let nf = run(&["no-such-program-xyz"]);
    assert_eq!(nf.status.code(), Some(127));
    let err = String::from_utf8_lossy(&nf.stderr);
    assert!(
        err.contains("no-such-program-xyz") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    std::fs::write(d.join("notexec"), "x").unwrap();
    let ne = run(&["./notexec"]);
    assert_eq!(
        ne.status.code(),
        Some(126),
        "{}",
        String::from_utf8_lossy(&ne.stderr)
    );
    // An unwritable output location fails before the command runs.
    let bad = output(jailtrace().args(["record", "-o", "/nonexistent-dir/m.json", "--", "true"]));
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent-dir"));
}

#[test]
fn writes_to_stdout_with_dash() {
    let out = output(jailtrace().args(["record", "-o", "-", "--", "true"]));
    assert!(out.status.success());
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["schema"], 2);
}

#[test]
fn include_and_exclude_filter_entries() {
    let tmp = tempdir();
    let out = output(jailtrace().current_dir(tmp.path()).args([
        "record",
        "-o",
        "m.json",
        "--include",
        "^/(etc|usr)",
        "--exclude",
        r"\.so",
        "--",
        "cat",
        "/etc/hostname",
    ]));
    assert!(out.status.success());
    let m: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("m.json")).unwrap()).unwrap();
    let paths: Vec<&str> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/etc/hostname"), "{paths:?}");
    assert!(
        paths
            .iter()
            .all(|p| (p.starts_with("/etc") || p.starts_with("/usr")) && !p.contains(".so")),
        "{paths:?}"
    );
    let bad = output(jailtrace().args(["record", "--include", "(", "--", "true"]));
    assert_eq!(bad.status.code(), Some(125));
}

#[test]
fn signals_reach_tracees_unchanged_and_group_stop_does_not_hang() {
    let tmp = tempdir();
    let out = output(jailtrace().current_dir(tmp.path()).args([
        "record", "-o", "m.json", "--", "sh", "-c",
        "trap 'echo usr1' USR1; kill -USR1 $$; (sleep 0.3; kill -CONT $$) & kill -STOP $$; echo resumed",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "usr1\nresumed\n");
    assert!(out.status.success());
}

/// A command recorded by a jailtrace started with signals ignored (`nohup`,
/// a background job) starts with them ignored, as it would without
/// jailtrace (SIGALRM too, which jailtrace uses itself); with defaults,
/// with defaults. Both backends (bpf as root).
#[test]
fn the_command_starts_with_the_signals_jailtrace_was_given_ignored() {
    let mut backends = vec!["ptrace"];
    if common::is_root() {
        backends.push("bpf");
    }
    let tmp = tempdir();
    for backend in backends {
        // SIGHUP, SIGINT and SIGALRM are bits 0, 1 and 13 of the mask.
        let bits = 0b10_0000_0000_0011;
        for (env_arg, want) in [
            ("--ignore-signal=HUP,INT,ALRM", bits),
            ("--default-signal", 0),
        ] {
            let out = output(
                Command::new("/usr/bin/env")
                    .args([env_arg, env!("CARGO_BIN_EXE_jailtrace"), "record"])
                    .args(["--backend", backend, "-o"])
                    .arg(tmp.path().join("m.json"))
                    .args(["--", "/bin/sh", "-c", "grep SigIgn /proc/self/status"]),
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mask = stdout
                .trim()
                .strip_prefix("SigIgn:\t")
                .and_then(|m| u64::from_str_radix(m, 16).ok())
                .unwrap_or_else(|| panic!("{stdout:?}"));
            assert_eq!(
                mask & bits,
                want,
                "{backend}, jailtrace started with {env_arg}: {stdout}"
            );
        }
    }
}

/// The signals jailtrace was started with ignored are ignored by
/// jailtrace itself too: three SIGHUPs to a `nohup`ed recording neither
/// reach the command nor end the recording.
#[test]
fn a_signal_jailtrace_was_given_ignored_does_not_interrupt_it() {
    use nix::sys::signal::Signal;
    let mut backends = vec!["ptrace"];
    if common::is_root() {
        backends.push("bpf");
    }
    for backend in backends {
        let tmp = tempdir();
        let d = real(tmp.path());
        let mut child = Command::new("/usr/bin/env")
            .args(["--ignore-signal=HUP", env!("CARGO_BIN_EXE_jailtrace")])
            .current_dir(&d)
            .args(["record", "--backend", backend, "-o", "m.json", "--"])
            .args(["sh", "-c", "touch ready; sleep 1; cat /etc/hostname"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(&d);
        let jt = nix::unistd::Pid::from_raw(child.id() as i32);
        for _ in 0..3 {
            nix::sys::signal::kill(jt, Signal::SIGHUP).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "{backend}: {status:?}");
        let m: Value = serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
        assert!(has_access(&m, "/etc/hostname", "read", "ok"), "{backend}");
    }
}

/// SIGTERM, and SIGQUIT (whose default action would end jailtrace and,
/// through PTRACE_O_EXITKILL, the command, losing the manifest).
#[test]
fn sigterm_to_jailtrace_is_forwarded_and_the_manifest_written() {
    use nix::sys::signal::Signal;
    for (sig, name) in [(Signal::SIGTERM, "TERM"), (Signal::SIGQUIT, "QUIT")] {
        let tmp = tempdir();
        let d = real(tmp.path());
        let mut child = jailtrace()
            .current_dir(&d)
            .args(["record", "-o", "m.json", "--", "sh", "-c"])
            .arg(format!(
                "trap 'cat /etc/hostname >/dev/null; exit 5' {name}; touch ready; while :; do sleep 0.05; done"
            ))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(&d);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(5), "{name}");
        let m: Value = serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
        assert_access(&m, "/etc/hostname", "read", "ok");
        assert_eq!(m["command"]["exit_status"], 5, "{name}");
    }
}

#[test]
fn timeout_terminates_and_still_writes_the_manifest() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let start = Instant::now();
    let out = output(jailtrace().current_dir(&d).args([
        "record",
        "--timeout",
        "500ms",
        "--grace",
        "1s",
        "-o",
        "m.json",
        "--",
        "sh",
        "-c",
        "trap '' TERM; cat /etc/hostname >/dev/null; sleep 30",
    ]));
    let took = start.elapsed();
    // sh ignores SIGTERM (and so does the sleep it started): SIGKILL after the grace.
    assert_eq!(
        common::killed_by(&out.status),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let m: Value = serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    assert_access(&m, "/etc/hostname", "read", "ok");
}

#[test]
fn io_uring_use_is_a_warning_in_the_manifest() {
    let tmp = tempdir();
    let bin = fixture("iouring", &[]);
    let m = common::record_in(tmp.path(), "m", &[bin.to_str().unwrap()], 0);
    let warnings = m["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("io_uring")),
        "{warnings:?}"
    );
}

#[test]
fn a_killed_tracee_does_not_end_the_trace_of_the_others() {
    let tmp = tempdir();
    let m = common::record_in(
        tmp.path(),
        "m",
        &[
            "sh",
            "-c",
            "sleep 5 & kill -9 $!; wait; cat /etc/hostname >/dev/null",
        ],
        0,
    );
    assert_access(&m, "/etc/hostname", "read", "ok");
}

#[test]
fn the_command_may_follow_without_a_double_dash() {
    let tmp = tempdir();
    let out = output(
        jailtrace()
            .current_dir(tmp.path())
            .args(["record", "-o", "m.json", "sh", "-c", "exit 4"]),
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_progress_line_on_a_terminal_and_nothing_extra_otherwise() {
    if !common::require_program("progress line", "script") {
        return;
    }
    let tmp = tempdir();
    let jt = env!("CARGO_BIN_EXE_jailtrace");
    // script(1) gives jailtrace a terminal as stderr.
    let out = output(
        common::on_a_terminal(&format!(
            "{jt} record -o m.json -- sh -c 'cat /etc/hostname >/dev/null; sleep 0.6'"
        ))
        .current_dir(tmp.path()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tracing:") && text.contains("processes"),
        "{text:?}"
    );
    // Without a terminal, stderr stays empty.
    let out = output(
        jailtrace()
            .current_dir(tmp.path())
            .args(["record", "-o", "m.json", "--", "true"]),
    );
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hash_records_the_sha256_of_files_read() {
    let tmp = tempdir();
    let d = real(tmp.path());
    std::fs::write(d.join("data"), "hello\n").unwrap();
    let out = output(
        jailtrace()
            .current_dir(&d)
            .args(["record", "--hash", "-o", "m.json", "--", "cat", "data"]),
    );
    assert!(out.status.success());
    let m: Value = serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    let e = entry(&m, &s(&d.join("data"))).expect("data");
    // sha256("hello\n")
    assert_eq!(
        e["sha256"],
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    // Outputs carry no hash: their content changes from run to run.
    let out = output(jailtrace().current_dir(&d).args([
        "record",
        "--hash",
        "-o",
        "m2.json",
        "--",
        "sh",
        "-c",
        "echo x > out",
    ]));
    assert!(out.status.success());
    let m2: Value = serde_json::from_slice(&std::fs::read(d.join("m2.json")).unwrap()).unwrap();
    let o = entry(&m2, &s(&d.join("out"))).expect("out");
    assert_eq!(o["output"], true);
    assert!(o.get("sha256").is_none() && o.get("size").is_none(), "{o}");
    // ...while the shell binary it ran does have one.
    assert!(entry(&m2, &canon("/bin/sh")).unwrap()["sha256"].is_string());
}

#[test]
fn a_reused_or_dup2ed_dirfd_is_resolved_as_it_is_at_each_call() {
    let tmp = tempdir();
    let d = real(tmp.path());
    for sub in ["a", "b", "c"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    let bin = fixture("dirfd", &[]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), d.to_str().unwrap()], 0);
    for p in ["a/in-a", "b/in-b", "c/in-c", "c/in-c-again"] {
        assert_access(&m, &s(&d.join(p)), "stat", "ENOENT");
    }
    for wrong in ["a/in-b", "b/in-c", "a/in-c"] {
        assert!(entry(&m, &s(&d.join(wrong))).is_none(), "{wrong} recorded");
    }
    // The call on the closed descriptor (EBADF) named no path.
    let all = m["entries"].to_string();
    assert!(!all.contains("after-close"), "{all}");
    assert!(m["warnings"].is_null(), "{}", m["warnings"]);
}

#[test]
fn an_access_interrupted_by_a_signal_is_recorded_as_eintr() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let fifo = d.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let bin = fixture("eintr", &[]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), fifo.to_str().unwrap()], 0);
    assert_access(&m, &s(&fifo), "read", "EINTR");
    assert_eq!(kind(&m, &s(&fifo)), "fifo");
}

#[test]
fn the_command_sees_its_own_cpus_in_every_placement() {
    let native = common::success(&mut Command::new("nproc"));
    for cpu in ["same", "tracer", "none"] {
        let out =
            output(jailtrace().args(["record", "--cpu", cpu, "-o", "/dev/null", "--", "nproc"]));
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), native, "--cpu {cpu}");
    }
    // With `same` the command really is confined to one CPU; only what
    // sched_getaffinity reports is its original mask.
    let out = output(jailtrace().args([
        "record",
        "--cpu",
        "same",
        "-o",
        "/dev/null",
        "--",
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let list = text.split_whitespace().last().unwrap_or_default();
    assert!(!list.contains(',') && !list.contains('-'), "{text}");
}

/// Thread ids leak nowhere: memcached names its worker threads through
/// `/proc/self/task/TID/comm`, which is recorded as `/proc/thread-self`, so
/// two recordings of a multithreaded daemon are byte-identical too.
#[test]
fn a_multithreaded_daemon_records_byte_identically() {
    let name = "a_multithreaded_daemon_records_byte_identically";
    if !common::require_program(name, "memcached") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    let mut texts = Vec::new();
    for run in ["a", "b"] {
        let out = d.join(format!("{run}.json"));
        let mut argv = vec![
            "memcached",
            "-t",
            "4",
            "-l",
            "127.0.0.1",
            "-p",
            "21131",
            "-U",
            "0",
        ];
        if common::is_root() {
            argv.extend(["-u", "nobody"]);
        }
        common::output(
            jailtrace()
                .current_dir(&d)
                .args(["record", "--timeout", "1s", "-o"])
                .arg(&out)
                .arg("--")
                .args(&argv),
        );
        texts.push(std::fs::read_to_string(out).unwrap());
    }
    assert!(texts[0] == texts[1], "manifests differ");
    assert!(texts[0].contains("\"/proc/thread-self/comm\""));
    let tid_path = regex::Regex::new(r#""/proc/[^"]*task/[0-9]+"#).unwrap();
    assert!(
        !tid_path.is_match(&texts[0]),
        "a thread id leaked into the manifest"
    );
}

/// One exit policy for every command, usage errors included.
#[test]
fn usage_errors_follow_each_commands_convention() {
    let code = |args: &[&str]| output(jailtrace().args(args)).status.code();
    for (args, expect) in [
        (&["record", "--timeout", "soon", "--", "true"][..], 125),
        (&["record", "--include", "(", "--", "true"], 125),
        (&["run", "--bogus", "/tmp", "--", "true"], 125),
        (&["verify", "--bogus", "/tmp", "--", "true"], 125),
        (&["materialize", "--bogus", "m", "j"], 1),
        (&["merge", "--bogus", "a", "b", "-o", "c"], 1),
        (&["export", "--format", "tar", "m"], 1),
        (&["export", "--format", "oci", "--script", "m"], 1),
        (&["packages", "--bogus", "m"], 1),
        (&["diff", "--bogus", "a", "b"], 2),
        (&["diff", "--ignore", "(", "a", "b"], 2),
        (&["check", "--bogus", "/tmp"], 2),
        (&["--bogus"], 2),
        (&["record", "--help"], 0),
        (&["--version"], 0),
    ] {
        assert_eq!(code(args), Some(expect), "{args:?}");
    }
}

/// `--cpu` places the ptrace tracer: under bpf there is none, and an
/// accepted-but-ignored placement would mislead whoever asked for it. The
/// refusal comes before anything is loaded or run, so it needs no root.
#[test]
fn cpu_is_refused_with_the_bpf_backend() {
    let t = common::tempdir();
    let marker = t.path().join("ran");
    let out = output(
        jailtrace()
            .current_dir(t.path())
            .args([
                "record",
                "--backend",
                "bpf",
                "--cpu",
                "tracer",
                "--",
                "touch",
            ])
            .arg(&marker),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--cpu tracer") && err.contains("--backend bpf"),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran");
    assert!(!t.path().join("manifest.json").exists());
}

/// Whether a program asked for a TCP/UDP port below 1024 is recorded
/// (not the ports: resolvers bind random ones), with both backends: an
/// export decides NET_BIND_SERVICE from it.
#[test]
fn a_privileged_bind_is_recorded() {
    let test = "a_privileged_bind_is_recorded";
    if !common::require_root(test) || !common::require_program(test, "python3") {
        return;
    }
    let port = common::free_port();
    let unprivileged = format!(
        "import socket\n\
         a = socket.socket(); a.bind(('127.0.0.1', {port}))\n\
         b = socket.socket(); b.bind(('127.0.0.1', 0))\n\
         u = socket.socket(socket.AF_UNIX); u.bind('sock')\n"
    );
    // Port 1 (tcpmux): free on any machine this runs on, and root may
    // bind it.
    let privileged = "import socket\ns = socket.socket(); s.bind(('127.0.0.1', 1))\n";
    for backend in ["ptrace", "bpf"] {
        for (script, asked) in [(unprivileged.as_str(), false), (privileged, true)] {
            let t = common::tempdir();
            let out = t.path().join("m.json");
            common::success(
                common::jailtrace()
                    .current_dir(t.path())
                    .args(["record", "--backend", backend, "-o"])
                    .arg(&out)
                    .args(["--", "/usr/bin/python3", "-c", script]),
            );
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
            assert_eq!(
                m["command"]["binds_privileged_port"],
                serde_json::json!(asked),
                "{backend} {script}: {}",
                m["command"]
            );
        }
    }
}
