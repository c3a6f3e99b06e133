//! The tracer under stress: storms, signals, job control, odd programs and
//! odd paths. Each test is a promise in docs/reliability.md.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{entry, fixture, has_access, jailtrace, output, tempdir};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

fn load(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[track_caller]
fn assert_access(m: &Value, path: &str, op: &str, result: &str) {
    assert!(
        has_access(m, path, op, result),
        "expected {op} {result} on {path}: {:?}",
        entry(m, path)
    );
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Processes still traced by `tracer` (TracerPid in /proc/PID/status).
fn tracees_of(tracer: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        if status.lines().any(|l| l == format!("TracerPid:\t{tracer}")) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn fork_storm_of_200_processes() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let m = common::record_in(
        &d,
        "m",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do i=$((i+1)); (: > f$i) & done; wait",
        ],
        0,
    );
    for i in 1..=200 {
        assert_access(
            &m,
            d.join(format!("f{i}")).to_str().unwrap(),
            "create",
            "ok",
        );
    }
}

#[test]
fn thread_storm_of_64_threads() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let bin = fixture("threadstorm", &["-pthread"]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), d.to_str().unwrap()], 0);
    for i in 0..64 {
        assert_access(
            &m,
            d.join(format!("t{i}")).to_str().unwrap(),
            "create",
            "ok",
        );
    }
}

#[test]
fn the_command_killed_from_outside() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let mut child = jailtrace()
        .current_dir(&d)
        .args(["record", "-o", "m.json", "--", "sh", "-c"])
        .arg("cat /etc/hostname >/dev/null; touch ready; exec sleep 30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&d.join("ready"));
    std::thread::sleep(Duration::from_millis(100));
    for pid in tracees_of(child.id()) {
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(common::killed_by(&status), Some(9));
    let m = load(&d.join("m.json"));
    assert_access(&m, "/etc/hostname", "read", "ok");
    assert_eq!(m["command"]["exit_status"], 137);
}

#[test]
fn a_child_killed_in_the_middle_of_a_traced_syscall() {
    // `cat p` blocks inside open() of a FIFO with no writer: between the
    // syscall's entry and exit stops. SIGKILL must not confuse the tracer.
    let tmp = tempdir();
    let d = real(tmp.path());
    let m = common::record_in(
        &d,
        "m",
        &[
            "sh",
            "-c",
            "mkfifo p; cat p & sleep 0.3; kill -9 $!; wait; cat /etc/hostname >/dev/null",
        ],
        0,
    );
    assert_access(&m, "/etc/hostname", "read", "ok");
}

#[test]
fn sigint_twice_is_forwarded_twice_and_the_manifest_written() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let mut child = jailtrace()
        .current_dir(&d)
        .args(["record", "-o", "m.json", "--", "sh", "-c"])
        .arg("n=0; trap 'n=$((n+1)); [ $n -ge 2 ] && exit 9' INT; cat /etc/hostname >/dev/null; touch ready; while :; do sleep 0.0517; done")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&d.join("ready"));
    let jt = Pid::from_raw(child.id() as i32);
    kill(jt, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kill(jt, Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(9));
    let m = load(&d.join("m.json"));
    assert_access(&m, "/etc/hostname", "read", "ok");
    // Nothing of the trace is left behind.
    std::thread::sleep(Duration::from_millis(200));
    let leftover = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.windows(6).any(|w| w == b"0.0517"))
    });
    assert!(!leftover, "a traced process survived");
}

#[test]
fn a_third_signal_kills_a_command_that_ignores_them() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let mut child = jailtrace()
        .current_dir(&d)
        .args(["record", "-o", "m.json", "--", "sh", "-c"])
        .arg("trap '' INT TERM; touch ready; exec sleep 30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&d.join("ready"));
    let jt = Pid::from_raw(child.id() as i32);
    for _ in 0..3 {
        kill(jt, Signal::SIGINT).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().unwrap();
    assert_eq!(common::killed_by(&status), Some(9));
    let m = load(&d.join("m.json"));
    assert!(m["warnings"]
        .to_string()
        .contains("interrupted three times"));
}

/// Runs `argv` in its own process group, sends SIGTSTP to the group like a
/// terminal's ^Z, checks the group leader is stopped, sends SIGCONT, and
/// returns the exit status and the total time.
fn suspend_and_resume(argv: &[&str]) -> (Option<i32>, Duration) {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = Pid::from_raw(child.id() as i32);
    std::thread::sleep(Duration::from_millis(300));
    killpg(pgid, Signal::SIGTSTP).unwrap();
    // The job is stopped: the leader (what the shell waits for) says T.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        if state == "T" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{argv:?}: not stopped after SIGTSTP (state {state})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(700));
    killpg(pgid, Signal::SIGCONT).unwrap();
    let status = child.wait().unwrap();
    (status.code(), start.elapsed())
}

#[test]
fn job_control_behaves_like_the_untraced_command() {
    let tmp = tempdir();
    let out = tmp.path().join("m.json");
    let jt = env!("CARGO_BIN_EXE_jailtrace");
    let (native, native_time) = suspend_and_resume(&["sh", "-c", "sleep 1 & wait"]);
    let (traced, traced_time) = suspend_and_resume(&[
        jt,
        "record",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 1 & wait",
    ]);
    assert_eq!(native, Some(0));
    assert_eq!(traced, native);
    let diff = traced_time.as_secs_f64() - native_time.as_secs_f64();
    assert!(
        diff.abs() < 1.0,
        "native {native_time:?}, traced {traced_time:?}"
    );
    assert!(load(&out)["entries"].as_array().unwrap().len() > 3);
}

#[test]
fn setuid_programs_are_a_warning_in_the_manifest() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let src = fixture("euid", &[]);
    let suid = d.join("euid-suid");
    std::fs::copy(&src, &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    // Make the permission-bit change visible to a non-root reader too.
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = common::record_in(&d, "m", &[suid.to_str().unwrap()], 0);
    let w = m["warnings"].to_string();
    assert!(
        w.contains("setuid program executed") && w.contains("euid-suid"),
        "{w}"
    );
    assert_eq!(entry(&m, suid.to_str().unwrap()).unwrap()["mode"], "4755");
}

#[test]
fn i386_programs_are_traced_with_the_i386_table() {
    let tmp = tempdir();
    let d = real(tmp.path());
    std::fs::write(d.join("rel32.txt"), "x").unwrap();
    let bin = fixture("open32", &["-m32"]);
    let out = output(
        jailtrace()
            .current_dir(&d)
            .args(["record", "-o", "m.json", "--"])
            .arg(&bin)
            .arg(&d),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok32\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    let m = load(&d.join("m.json"));
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    assert_access(&m, &p("rel32.txt"), "read", "ok");
    assert_access(&m, "/etc/passwd", "stat", "ok");
    assert_access(&m, &p("missing32"), "access", "ENOENT");
    assert_access(&m, &p("new32.txt"), "create", "ok");
    assert!(m["warnings"].to_string().contains("i386"));
    // The 32-bit ELF interpreter, loaded by the kernel.
    let interp = real(Path::new("/lib/ld-linux.so.2"));
    assert_access(&m, interp.to_str().unwrap(), "interp", "ok");
}

#[test]
fn long_paths_and_newlines_round_trip() {
    let tmp = tempdir();
    let d = real(tmp.path());
    // Nest directories until the path is close to PATH_MAX (4096).
    let mut long = d.clone();
    while long.as_os_str().len() < 3900 {
        long.push("d".repeat(200));
    }
    std::fs::create_dir_all(&long).unwrap();
    let long_file = long.join("f".repeat(4090 - long.as_os_str().len()));
    std::fs::write(&long_file, "x").unwrap();
    assert!(long_file.as_os_str().len() >= 4080);
    let nl = d.join("new\nline");
    std::fs::write(&nl, "x").unwrap();
    let m = common::record_in(
        &d,
        "m",
        &["cat", long_file.to_str().unwrap(), nl.to_str().unwrap()],
        0,
    );
    assert_access(&m, long_file.to_str().unwrap(), "read", "ok");
    assert_access(&m, nl.to_str().unwrap(), "read", "ok");
    // And through the library: load and save give the same bytes.
    let text = std::fs::read(d.join("m.json")).unwrap();
    let parsed = jailtrace::core::manifest::Manifest::from_slice("m.json", &text).unwrap();
    assert_eq!(parsed.to_bytes(), text);
}

#[test]
fn many_distinct_paths_round_trip() {
    // 20k files stat'ed one by one (ls -l): every one recorded, and the
    // manifest reloads to the same bytes. docs/reliability.md reports the
    // peak memory for 130k paths.
    let tmp = tempdir();
    let d = real(tmp.path());
    for i in 0..100 {
        let sub = d.join(format!("s{i}"));
        std::fs::create_dir(&sub).unwrap();
        for j in 0..200 {
            std::fs::write(sub.join(format!("f{j}")), "").unwrap();
        }
    }
    let out = output(
        jailtrace()
            .current_dir(&d)
            .args(["record", "-o", "m.json", "--", "ls", "-lR", "."])
            .stdout(Stdio::null()),
    );
    assert!(out.status.success());
    let text = std::fs::read(d.join("m.json")).unwrap();
    let m = jailtrace::core::manifest::Manifest::from_slice("m.json", &text).unwrap();
    let files = m
        .entries
        .iter()
        .filter(|e| {
            e.path
                .as_bytes()
                .starts_with(d.as_os_str().as_encoded_bytes())
                && e.has_ok(jailtrace::core::manifest::Op::Stat)
        })
        .count();
    assert!(files >= 20_000, "{files} paths stat'ed");
    assert_eq!(m.to_bytes(), text);
}

#[test]
fn an_internal_tracer_error_kills_the_tracees_and_keeps_the_recording() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let start = Instant::now();
    let out = output(
        jailtrace()
            .current_dir(&d)
            .env("JAILTRACE_FAILPOINT", "panic-after:40")
            .args(["record", "-o", "m.json", "--", "sh", "-c"])
            .arg("for i in 1 2 3 4 5 6 7 8 9 10; do cat /etc/hostname >/dev/null; done; exec sleep 31.5"),
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "tracees were left running"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("internal error while tracing") && err.contains("killed"),
        "{err}"
    );
    let m = load(&d.join("m.json"));
    assert!(m["warnings"].to_string().contains("incomplete recording"));
    // What was seen before the failure is kept: at least the exec of sh.
    let sh = real(Path::new("/bin/sh"));
    assert_access(&m, sh.to_str().unwrap(), "exec", "ok");
    // No process of the trace is left, stopped or running.
    let leftover = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.windows(4).any(|w| w == b"31.5"))
    });
    assert!(!leftover, "a traced process survived");
}

/// Runs `cmd` on a real terminal (script(1) allocates a pty), types ^C
/// once `ready` exists, and returns what the terminal showed.
fn control_c_on_a_terminal(cmd: &str, ready: &Path) -> String {
    use std::io::Write;
    let mut child = common::on_a_terminal(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(ready);
    std::thread::sleep(Duration::from_millis(200));
    // The terminal's line discipline turns it into SIGINT for the
    // foreground process group.
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const COUNT_INTS: &str = "n=0; trap 'n=$((n+1))' INT; touch READY; i=0; while [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; echo n=$n";

#[test]
fn a_terminal_control_c_reaches_the_recorded_command_exactly_once() {
    if !common::require_program("terminal ^C", "script") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    let ready = d.join("ready");
    let script = d.join("count.sh");
    std::fs::write(
        &script,
        COUNT_INTS.replace("READY", ready.to_str().unwrap()),
    )
    .unwrap();
    let jt = env!("CARGO_BIN_EXE_jailtrace");
    let m = d.join("m.json");
    let cmd = format!("{jt} record -o {} -- sh {}", m.display(), script.display());
    let shown = control_c_on_a_terminal(&cmd, &ready);
    assert!(shown.contains("n=1"), "{shown}");
}

#[test]
fn a_terminal_control_c_reaches_a_command_verified_in_its_jail() {
    if !common::require_root("a_terminal_control_c_reaches_a_command_verified_in_its_jail")
        || !common::require_program("terminal ^C", "script")
    {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    // The jail user writes its marker in /shared inside the jail.
    let shared = d.join("jail/shared");
    let m = d.join("m.json");
    let probe = "touch /tmp/x; i=0; [ $i -lt 1 ] && sleep 0.01; echo n=0";
    common::success(
        jailtrace()
            .current_dir(&d)
            .args(["record", "-o"])
            .arg(&m)
            .args(["--", "sh", "-c", probe]),
    );
    common::success(jailtrace().arg("materialize").arg(&m).arg(d.join("jail")));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(
        shared.join("count.sh"),
        COUNT_INTS.replace("READY", "/shared/ready"),
    )
    .unwrap();
    let jt = env!("CARGO_BIN_EXE_jailtrace");
    let cmd = format!(
        "{jt} verify --user nobody {} -- sh /shared/count.sh",
        d.join("jail").display()
    );
    let shown = control_c_on_a_terminal(&cmd, &shared.join("ready"));
    assert!(shown.contains("n=1"), "{shown}");
}
