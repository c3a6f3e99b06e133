//! `record --backend bpf`: the committed object comes from the committed
//! source and keeps its stack margin; both backends record the same
//! manifest for real daemons (the fixtures and programs are the kernel
//! matrix's, `tests/kernels.rs`); nothing is lost under a thread storm; a
//! missing piece or a loss is loud.

mod common;

use std::path::Path;
use std::process::Command;

use sha2::Digest;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `bpf/build` records the hash of each source it builds from: the
/// program and the header it shares with user space.
#[test]
fn committed_object_comes_from_the_committed_source() {
    let recorded = std::fs::read_to_string(repo().join("bpf/jailtrace.bpf.c.sha256")).unwrap();
    let mut files = Vec::new();
    for line in recorded.lines() {
        let (hash, file) = line.split_once("  ").expect("sha256sum's format");
        let src = std::fs::read(repo().join("bpf").join(file)).unwrap();
        let now: String = sha2::Sha256::digest(&src)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hash, now,
            "bpf/{file} changed since bpf/jailtrace.bpf.o was built: run bpf/build"
        );
        files.push(file);
    }
    assert_eq!(files, ["jailtrace.bpf.c", "jailtrace.h"], "run bpf/build");
}

/// With clang (the README's test command installs it), a fresh build of
/// the source is the committed object, byte for byte.
#[test]
fn committed_object_is_what_clang_builds() {
    let test = "committed_object_is_what_clang_builds";
    if !common::require_program(test, "clang") || !common::require_program(test, "llvm-strip") {
        return;
    }
    let t = common::tempdir();
    let out = t.path().join("fresh.o");
    common::success(Command::new(repo().join("bpf/build")).arg(&out));
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(repo().join("bpf/jailtrace.bpf.o")).unwrap(),
        "bpf/jailtrace.bpf.o is not what bpf/build makes of bpf/jailtrace.bpf.c: run bpf/build"
    );
}

/// Records `argv` with `--backend BACKEND` in `dir` (made afresh by
/// `setup`, at the same path each time), returning the manifest without
/// its generator line, and the status.
fn record(
    backend: &str,
    dir: &Path,
    setup: &dyn Fn(&Path),
    argv: &[&str],
) -> (String, Option<i32>, String) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    setup(dir);
    let out_path = dir.with_extension(format!("{backend}.json"));
    let out = common::output(
        common::jailtrace()
            .current_dir(dir)
            .env("JAILTRACE_BPF_STARTUP", "1")
            .args(["record", "--backend", backend, "-o"])
            .arg(&out_path)
            .arg("--")
            .args(argv),
    );
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let text: String = text
        .lines()
        .filter(|l| !l.contains("\"generator\""))
        .map(|l| format!("{l}\n"))
        .collect();
    (
        text,
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Records `argv` with both backends; returns bpf's stderr, which has its
/// start-up report (`JAILTRACE_BPF_STARTUP`).
fn same_with_both(name: &str, setup: &dyn Fn(&Path), argv: &[&str]) -> String {
    let t = common::tempdir();
    let dir = t.path().join("run");
    let p = record("ptrace", &dir, setup, argv);
    let b = record("bpf", &dir, setup, argv);
    assert_eq!(
        p.1, b.1,
        "{name}: exit status\nptrace: {}\nbpf: {}",
        p.2, b.2
    );
    if p.0 != b.0 {
        let diff: Vec<String> =
            p.0.lines()
                .zip(b.0.lines())
                .enumerate()
                .filter(|(_, (x, y))| x != y)
                .take(10)
                .map(|(i, (x, y))| format!("line {}: ptrace {x}\n         bpf    {y}", i + 1))
                .collect();
        panic!(
            "{name}: the backends disagree ({} vs {} lines)\n{}\nbpf stderr: {}",
            p.0.lines().count(),
            b.0.lines().count(),
            diff.join("\n"),
            b.2
        );
    }
    b.2
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn needs_bpf(test: &str) -> bool {
    common::require_root(test)
}

// Every fixture and the real programs of `common::cases` are compared on
// this machine's kernel and on Debian's by the kernel matrix
// (`tests/kernels.rs`).

#[test]
fn redis_server_records_the_same_with_both_backends() {
    let test = "redis_server_records_the_same_with_both_backends";
    if !needs_bpf(test) || !common::require_program(test, "redis-server") {
        return;
    }
    same_with_both(
        "redis-server",
        &|_: &Path| {},
        &["redis-server", "--version"],
    );
}

/// redis-server serving a real client: the only difference between two
/// recordings is the name of its snapshot's temporary file, which holds
/// its pid (two ptrace recordings differ the same way).
#[test]
fn redis_serving_a_client_records_the_same() {
    let test = "redis_serving_a_client_records_the_same";
    if !needs_bpf(test)
        || !common::require_program(test, "redis-server")
        || !common::require_program(test, "redis-cli")
    {
        return;
    }
    let t = common::tempdir();
    let dir = t.path().join("run");
    // One port for both: it is part of the recorded command line.
    let port = common::free_port();
    let session = |backend: &str| -> String {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let out_path = dir.with_extension(format!("{backend}.json"));
        let log = dir.with_extension(format!("{backend}.stderr"));
        let mut rec = common::jailtrace()
            .current_dir(&dir)
            .args(["record", "--backend", backend, "-o"])
            .arg(&out_path)
            .args([
                "--",
                "redis-server",
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let cli = |args: &[&str]| common::redis_cli("redis-cli", port, args);
        common::wait_for_pong("redis-cli", port, &mut rec, &log, backend);
        assert_eq!(cli(&["SET", "k", "v"]), "OK");
        assert_eq!(cli(&["GET", "k"]), "v");
        cli(&["SHUTDOWN"]);
        assert_eq!(rec.wait().unwrap().code(), Some(0), "{backend}");
        let text = std::fs::read_to_string(&out_path).unwrap();
        let temp = regex::Regex::new(r"temp-\d+\.rdb").unwrap();
        text.lines()
            .filter(|l| !l.contains("\"generator\""))
            .map(|l| format!("{}\n", temp.replace_all(l, "temp-PID.rdb")))
            .collect()
    };
    let p = session("ptrace");
    let b = session("bpf");
    let diff: Vec<String> = p
        .lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .take(10)
        .map(|(x, y)| format!("ptrace {x}\nbpf    {y}"))
        .collect();
    assert!(p == b, "redis: the backends disagree\n{}", diff.join("\n"));
}

/// Many threads opening files at once: every open is recorded, nothing is
/// lost, and the status is the command's.
#[test]
fn a_thread_storm_loses_nothing() {
    if !needs_bpf("a_thread_storm_loses_nothing") {
        return;
    }
    let t = common::tempdir();
    let bin = common::fixture("threadstorm", &["-pthread"]);
    let out = common::output(
        common::jailtrace()
            .current_dir(t.path())
            .args(["record", "--backend", "bpf", "-o", "m.json", "--"])
            .arg(&bin)
            .arg(t.path()),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("incomplete"), "{err}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("m.json")).unwrap()).unwrap();
    for i in 0..64 {
        let p = t.path().join(format!("t{i}"));
        assert!(common::has_access(&m, &s(&p), "create", "ok"), "t{i}");
    }
    assert!(m.get("warnings").is_none(), "{}", m["warnings"]);
}

/// A loss is never silent: the manifest says so, and record exits 124
/// unless --allow-incomplete.
#[test]
fn a_loss_is_loud() {
    if !needs_bpf("a_loss_is_loud") {
        return;
    }
    let t = common::tempdir();
    let run = |extra: &[&str]| {
        common::output(
            common::jailtrace()
                .current_dir(t.path())
                .env("JAILTRACE_FAILPOINT", "bpf-lost")
                .args(["record", "--backend", "bpf", "-o", "m.json"])
                .args(extra)
                .args(["--", "sh", "-c", "exit 3"]),
        )
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(
        err.contains("incomplete recording (bpf): 1 events dropped"),
        "{err}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("m.json")).unwrap()).unwrap();
    assert!(m["warnings"].to_string().contains("incomplete recording"));
    let out = run(&["--allow-incomplete"]);
    assert_eq!(out.status.code(), Some(3));

    // verify cannot trust a recording with holes: one line, status 124.
    let jail = t.path().join("jail");
    common::success(
        common::jailtrace()
            .arg("materialize")
            .arg(t.path().join("m.json"))
            .arg(&jail),
    );
    let out = common::output(
        common::jailtrace()
            .env("JAILTRACE_FAILPOINT", "bpf-lost")
            .args(["verify", "--backend", "bpf", "--user", "nobody"])
            .arg(&jail)
            .args(["--", "sh", "-c", "exit 3"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(
        err.contains("the run in the jail was recorded incompletely (incomplete recording (bpf): 1 events dropped"),
        "{err}"
    );
}

/// Without root the bpf backend is refused in one line that names the
/// missing piece and the way out, and nothing runs.
#[test]
fn without_privilege_the_missing_piece_is_named() {
    let test = "without_privilege_the_missing_piece_is_named";
    if !common::require_root(test) || !common::require_program(test, "setpriv") {
        return;
    }
    let t = common::tempdir();
    std::fs::set_permissions(
        t.path(),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o777),
    )
    .unwrap();
    let marker = t.path().join("ran");
    let out = common::output(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_jailtrace"))
            .args(["record", "--backend", "bpf", "-o"])
            .arg(t.path().join("m.json"))
            .arg("--")
            .arg("touch")
            .arg(&marker),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("needs root"), "{err}");
    assert!(err.contains("use --backend ptrace"), "{err}");
    assert!(!marker.exists());
}

/// --timeout, signals and the exit status behave as with ptrace.
#[test]
fn timeout_and_exit_status_as_with_ptrace() {
    if !needs_bpf("timeout_and_exit_status_as_with_ptrace") {
        return;
    }
    let t = common::tempdir();
    let out = common::output(common::jailtrace().current_dir(t.path()).args([
        "record",
        "--backend",
        "bpf",
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
    assert_eq!(
        common::killed_by(&out.status),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("m.json")).unwrap()).unwrap();
    assert!(common::has_access(&m, "/etc/hostname", "read", "ok"));
    // A daemon that double-forks is followed to its end.
    let out = common::output(common::jailtrace().current_dir(t.path()).args([
        "record",
        "--backend",
        "bpf",
        "-o",
        "d.json",
        "--",
        "sh",
        "-c",
        "(sleep 0.3; cat /etc/hostname >/dev/null) & exit 5",
    ]));
    assert_eq!(out.status.code(), Some(5));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("d.json")).unwrap()).unwrap();
    assert!(common::has_access(&m, "/etc/hostname", "read", "ok"));
}

/// verify --backend bpf finds what is missing from a jail as ptrace does.
#[test]
fn verify_finds_the_same_with_both_backends() {
    if !needs_bpf("verify_finds_the_same_with_both_backends") {
        return;
    }
    let t = common::tempdir();
    let ls = s(&common::which("ls").unwrap());
    common::record_in(t.path(), "ls", &[&ls, "-l", "/etc/hostname"], 0);
    let jail = t.path().join("jail");
    common::success(
        common::jailtrace()
            .arg("materialize")
            .arg(t.path().join("ls.json"))
            .arg(&jail),
    );
    std::fs::remove_file(jail.join("etc/hostname")).unwrap();
    let verify = |backend: &str| {
        let out = common::output(
            common::jailtrace()
                .args(["verify", "--backend", backend, "--user", "nobody"])
                .arg(&jail)
                .args(["--", &ls, "-l", "/etc/hostname"]),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let p = verify("ptrace");
    let b = verify("bpf");
    assert_eq!(p.0, Some(1));
    assert!(
        p.1.contains("missing: /etc/hostname (stat ENOENT)"),
        "{}",
        p.1
    );
    assert_eq!(p, b);
}

/// The progress line on a terminal, as with ptrace; nothing when stderr is
/// not one.
#[test]
fn progress_line_only_on_a_terminal() {
    let test = "bpf_progress_line_only_on_a_terminal";
    if !needs_bpf(test) || !common::require_program(test, "script") {
        return;
    }
    let t = common::tempdir();
    let m = t.path().join("m.json");
    let cmd = format!(
        "{} record --backend bpf -o {} -- sleep 0.3",
        env!("CARGO_BIN_EXE_jailtrace"),
        s(&m)
    );
    let out = common::output(&mut common::on_a_terminal(&cmd));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("tracing (bpf): 1 processes"), "{shown:?}");
    let out = common::output(
        common::jailtrace()
            .args(["record", "--backend", "bpf", "-o"])
            .arg(&m)
            .args(["--", "sleep", "0.1"]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// SIGINT to jailtrace goes to the command; the manifest is written and
/// jailtrace dies of the same signal, as with ptrace.
#[test]
fn a_signal_goes_to_the_command() {
    if !needs_bpf("bpf_a_signal_goes_to_the_command") {
        return;
    }
    let t = common::tempdir();
    let ready = t.path().join("ready");
    let mut child = common::jailtrace()
        .current_dir(t.path())
        .args([
            "record",
            "--backend",
            "bpf",
            "-o",
            "m.json",
            "--",
            "sh",
            "-c",
        ])
        .arg(format!(
            "cat /etc/hostname >/dev/null; touch {}; exec sleep 30",
            s(&ready)
        ))
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready.exists() {
        assert!(start.elapsed().as_secs() < 20, "the command never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        common::killed_by(&status),
        Some(nix::sys::signal::Signal::SIGINT as i32)
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("m.json")).unwrap()).unwrap();
    assert_eq!(m["command"]["exit_status"], 130);
    assert!(common::has_access(&m, "/etc/hostname", "read", "ok"));
}

/// The verifier refuses a program whose deepest chain of frames (the
/// program, the global functions it calls, the `bpf_loop` callbacks they
/// pass) passes 512 bytes, and how it counts changes between kernels:
/// frames rounded up to 16 bytes (6.12 and later) or 32 (6.1), 24 bytes
/// added to each frame where it inlines a `bpf_loop`. Measured here from
/// the committed object with the harshest of those rules, every program
/// keeps 64 bytes of margin, so the next kernel's change finds room.
#[test]
fn every_program_keeps_a_stack_margin() {
    let data = std::fs::read(repo().join("bpf/jailtrace.bpf.o")).unwrap();
    let depths = common::bpf_stack::combined_depths(&data);
    let mut over = Vec::new();
    for (prog, depth) in &depths {
        eprintln!("stack: {prog} {depth} bytes (limit 448 of 512)");
        if *depth > 448 {
            over.push(format!("{prog}: {depth}"));
        }
    }
    for prog in [
        "sys_enter",
        "sys_exit",
        "process_fork",
        "process_exit",
        "process_exec",
    ] {
        assert!(depths.contains_key(prog), "no program {prog} in {depths:?}");
    }
    assert!(
        over.is_empty(),
        "combined stack above 448 bytes: {over:?}; move large locals to per-CPU scratch maps"
    );
}

/// bench/bpf_floor.c, the floor of the bpf backend's cost to other
/// processes (docs/performance.md), builds and attaches both of its ways
/// of seeing syscalls on this kernel.
#[test]
fn the_bpf_floor_attaches() {
    let test = "the_bpf_floor_attaches";
    if !needs_bpf(test) || !common::require_program(test, "gcc") {
        return;
    }
    let t = common::tempdir();
    let bin = t.path().join("bpf_floor");
    common::success(
        Command::new("gcc")
            .args(["-O1", "-Wall", "-Werror", "-o"])
            .arg(&bin)
            .arg(repo().join("bench/bpf_floor.c")),
    );
    for mode in ["raw", "syscalls"] {
        let mut child = Command::new(&bin)
            .arg(mode)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            line,
            "attached\n",
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// jailtrace itself run inside a chroot that is not its mount namespace's
/// root (a build chroot) records the same under both backends: the bpf
/// program walks relative paths' bases up to the namespace's root, and
/// the part of them above the chroot is taken off (it was recorded, as the
/// chroot's own path in front of every base).
#[test]
fn inside_a_chroot_both_backends_record_the_same() {
    let test = "inside_a_chroot_both_backends_record_the_same";
    if !needs_bpf(test) || !common::require_program(test, "unshare") {
        return;
    }
    let t = common::tempdir();
    let dir = t.path().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rel"), "relative\n").unwrap();
    std::fs::create_dir(t.path().join("root")).unwrap();
    // In a private mount namespace: / bound (recursively) on ROOT, the
    // chroot made there, and each backend recording a relative open.
    let script = r#"
set -e
mount --rbind / "$T/root"
chroot "$T/root" /bin/sh -c '
  cd "$DIR"
  for b in ptrace bpf; do
    "$JT" record --backend $b -o "$DIR/$b.json" -- /bin/cat rel > /dev/null
  done'
"#;
    let out = common::output(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .env("JT", env!("CARGO_BIN_EXE_jailtrace"))
            .env("T", t.path())
            .env("DIR", &dir),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = |b: &str| -> String {
        std::fs::read_to_string(dir.join(format!("{b}.json")))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"generator\""))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let (p, b) = (manifest("ptrace"), manifest("bpf"));
    let rel = format!("\"path\": \"{}\"", dir.join("rel").display());
    assert!(p.contains(&rel), "{p}");
    assert_eq!(p, b, "the backends disagree inside a chroot");
}

/// Files a program makes and removes in a mount namespace it copied from
/// its own are gone by the time the recorder compares them with the host:
/// that is no loss (the namespace is an unchanged copy), under bpf as
/// under ptrace.
#[test]
fn files_made_and_removed_in_a_namespace_copy_are_no_loss() {
    let test = "files_made_and_removed_in_a_namespace_copy_are_no_loss";
    if !needs_bpf(test) || !common::require_program(test, "unshare") {
        return;
    }
    let script = "for i in $(seq 100); do echo x > f$i; rm f$i; done";
    same_with_both(
        "files made and removed under unshare -m",
        &|_| {},
        &["unshare", "-m", "sh", "-c", script],
    );
}

/// The cut BTF kept in the cache (`JAILTRACE_CACHE_DIR`) gives the
/// recording a fresh cut gives; an entry others could have written is not
/// read but replaced; an empty `JAILTRACE_CACHE_DIR` keeps nothing.
#[test]
fn a_kept_cut_records_what_a_fresh_one_does() {
    use std::os::unix::fs::PermissionsExt as _;
    let test = "a_kept_cut_records_what_a_fresh_one_does";
    if !needs_bpf(test) {
        return;
    }
    let t = common::tempdir();
    let cache = t.path().join("cache");
    let out = t.path().join("m.json");
    // One recording: what the start-up said of the cut, and the manifest.
    let run = |cache_dir: &Path| -> (String, String) {
        let o = common::output(
            common::jailtrace()
                .env("JAILTRACE_CACHE_DIR", cache_dir)
                .env("JAILTRACE_BPF_STARTUP", "1")
                .args(["record", "--backend", "bpf", "-o"])
                .arg(&out)
                .args(["--", "/bin/sh", "-c", "ls / >/dev/null; cat /etc/hostname"]),
        );
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stderr}");
        let said = stderr
            .lines()
            .find(|l| l.contains("the cut BTF"))
            .unwrap_or_else(|| panic!("no word of the cut in:\n{stderr}"))
            .to_string();
        let manifest: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"generator\""))
            .map(String::from)
            .collect();
        (said, manifest.join("\n"))
    };
    let (said, fresh) = run(&cache);
    assert!(said.ends_with("the cut BTF was made and kept"), "{said}");
    let (said, kept) = run(&cache);
    assert!(
        said.ends_with("the cut BTF was read from the cache"),
        "{said}"
    );
    assert_eq!(fresh, kept, "a kept cut recorded differently");

    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o700
    );
    std::fs::set_permissions(entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (said, again) = run(&cache);
    assert!(said.ends_with("the cut BTF was made and kept"), "{said}");
    assert_eq!(fresh, again);
    assert_eq!(
        std::fs::metadata(entry).unwrap().permissions().mode() & 0o777,
        0o600,
        "the entry others could write was replaced"
    );

    let (said, none) = run(Path::new(""));
    assert!(
        said.ends_with("the cut BTF was made, not kept (JAILTRACE_CACHE_DIR is empty)"),
        "{said}"
    );
    assert_eq!(fresh, none);
}

/// Resolution runs ahead during a bpf recording (`resolve::ahead`), and
/// counts only when nothing it looked at changed before the run's end:
/// each change of `fixtures/later.c`, made after the look (through a
/// descriptor, through another name, through a name it gave the file,
/// by a rename, by a mount), makes it
/// start over after the run, so the manifest is the one ptrace's
/// resolution after the run gives.
#[test]
fn a_change_after_resolution_ahead_is_not_missed() {
    let test = "a_change_after_resolution_ahead_is_not_missed";
    if !needs_bpf(test) {
        return;
    }
    let bin = common::fixture("later", &[]);
    let setup = |d: &Path| {
        std::fs::create_dir_all(d.join("d/sub")).unwrap();
        std::fs::create_dir_all(d.join("other")).unwrap();
        std::fs::write(d.join("d/a"), "12345\n").unwrap();
        std::fs::write(d.join("d/sub/x"), "x\n").unwrap();
        std::fs::hard_link(d.join("d/a"), d.join("other/a2")).unwrap();
    };
    for (mode, said) in [
        ("none", "resolution ahead: kept"),
        ("fchmod", "d/a changed during the run (metadata changed)"),
        ("grow", "d/a changed during the run (written)"),
        ("link", "d/a changed during the run (metadata changed)"),
        ("rename", "d/sub changed during the run (moved away)"),
        ("newname", "d/sub/x another name"),
        ("mount", "not kept: the mount table changed"),
        ("unmount", "d/sub changed during the run (unmounted)"),
    ] {
        // `unmount` unmounts a tmpfs mounted before the run.
        let setup = |d: &Path| {
            setup(d);
            if mode == "unmount" {
                let (none, flags) = (None::<&str>, nix::mount::MsFlags::empty());
                nix::mount::mount(Some("later"), &d.join("d/sub"), Some("tmpfs"), flags, none)
                    .unwrap();
            }
        };
        let stderr = same_with_both(mode, &setup, &[&s(&bin), ".", mode]);
        let line = stderr
            .lines()
            .find(|l| l.contains("resolution ahead"))
            .unwrap_or_else(|| panic!("{mode}: no word of resolution ahead in:\n{stderr}"));
        assert!(line.contains(said), "{mode}: {line}");
    }
}
