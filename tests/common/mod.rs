//! Helpers shared by the black-box CLI tests.
//!
//! Tests that need root call [`require_root`]. Outside CI they print a clear
//! SKIPPED line and return early; under `CI=true` a skip is a failure, because
//! CI runs as root and a skipped test there checks nothing.
#![allow(dead_code)]

pub mod bpf_stack;
pub mod cases;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The jailtrace binary built for these tests, started with every signal
/// at its default action whatever this test process was given: a suite
/// started in the background of a non-interactive shell has SIGINT and
/// SIGQUIT ignored, and jailtrace starts its command with what it was
/// given ignored, as a shell does (tests/record.rs checks that).
pub fn jailtrace() -> Command {
    let mut c = Command::new("/usr/bin/env");
    c.arg("--default-signal")
        .arg(env!("CARGO_BIN_EXE_jailtrace"));
    c
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Returns true when the test may go on. See the module docs.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root, and CI=true forbids skipping it");
    }
    eprintln!("SKIPPED (needs root): {test}");
    false
}

/// Returns true when `prog` is on PATH. Under `CI=true` a missing program is
/// a failure: the README's test command installs everything the suite needs.
pub fn require_program(test: &str, prog: &str) -> bool {
    if which(prog).is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: `{prog}` is not installed, and CI=true forbids skipping");
    }
    eprintln!("SKIPPED (`{prog}` not installed): {test}");
    false
}

pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// `script -qec CMD /dev/null`: runs `CMD` on a real pseudo-terminal and
/// copies what it shows to stdout. script(1) runs `CMD` with `$SHELL -c`,
/// and that shell differs between machines (CI has no `$SHELL`, so it is
/// dash there, which dies of a terminal's ^C where bash waits for its job).
/// Pinning it to bash makes a test mean the same everywhere. `TERM` is set
/// for the same reason: without it (or with `dumb`) a terminal cannot
/// redraw a line, and progress bars rightly stay hidden. Callers check
/// `require_program(.., "script")` first.
pub fn on_a_terminal(cmd: &str) -> Command {
    // Default actions, as for `jailtrace()`.
    let mut c = Command::new("/usr/bin/env");
    c.args(["--default-signal", "script", "-qec", cmd, "/dev/null"])
        .env("SHELL", which("bash").expect("bash is installed"))
        .env("TERM", "xterm");
    c
}

/// Spawns `cmd` with stdin and stdout piped, and waits for its first line,
/// which must be `READY` (what `run_probe hold` prints before it waits for
/// the end of its input). The reader is returned so that the pipe stays
/// open as long as the caller wants.
pub fn spawn_ready(
    cmd: &mut Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read the first line");
    assert_eq!(line, "READY\n");
    (child, out)
}

/// A fresh temporary directory, removed when dropped.
///
/// Also sets the umask to 022 (for the whole test process, so every test
/// sees the same): the tests build jails by hand and run them as nobody, and
/// a runner's stricter umask would make those jails unreadable to it.
///
/// As root it lies in [`JAIL_BASE`], not in `/tmp`: a jail under a
/// directory everyone can write is a finding of `check` of its own (see
/// `tests/hygiene.rs`), which the other tests must not trip over.
pub fn tempdir() -> tempfile::TempDir {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let mut b = tempfile::Builder::new();
    b.prefix("jailtrace-test-");
    if is_root() {
        std::fs::create_dir_all(JAIL_BASE).expect("create the tests' jail base");
        b.tempdir_in(JAIL_BASE)
    } else {
        b.tempdir()
    }
    .expect("create temp dir")
}

/// Where root's test directories go: only root can write it or anything
/// above it.
pub const JAIL_BASE: &str = "/var/cache/jailtrace-tests";

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Compiles `fixtures/<name>.c` with the machine's gcc (once per test run)
/// and returns the binary's path. `extra` adds compiler flags, e.g.
/// `-static` or `-pthread`; each distinct flag set gets its own binary.
pub fn fixture(name: &str, extra: &[&str]) -> PathBuf {
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.c"));
    let tag: String = extra
        .iter()
        .map(|f| f.trim_start_matches('-').replace(['/', '='], "_"))
        .collect::<Vec<_>>()
        .join("_");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(if tag.is_empty() {
        name.to_string()
    } else {
        format!("{name}-{tag}")
    });
    let fresh = match (std::fs::metadata(&out), std::fs::metadata(&src)) {
        (Ok(o), Ok(s)) => o.modified().unwrap() >= s.modified().unwrap(),
        _ => false,
    };
    if !fresh {
        let status = Command::new("gcc")
            .args(["-O1", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .args(extra)
            .status()
            .expect("run gcc");
        assert!(status.success(), "gcc failed for {}", src.display());
    }
    out
}

/// The signal a process died of, if it did.
pub fn killed_by(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

/// Runs a command and returns its output, panicking with stderr if it could
/// not be started.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Asserts success and returns stdout as a string.
pub fn success(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Records `argv` into `<dir>/<name>.json` and returns the parsed manifest as
/// JSON, asserting that jailtrace exited with `expect_status`.
pub fn record_in(dir: &Path, name: &str, argv: &[&str], expect_status: i32) -> serde_json::Value {
    let out_path = dir.join(format!("{name}.json"));
    let out = output(
        jailtrace()
            .current_dir(dir)
            .arg("record")
            .arg("-o")
            .arg(&out_path)
            .arg("--")
            .args(argv),
    );
    assert_eq!(
        out.status.code(),
        Some(expect_status),
        "record {argv:?}: stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(&out_path).expect("manifest written");
    serde_json::from_slice(&text).expect("manifest is JSON")
}

/// The entry for `path` in a parsed manifest, if any.
pub fn entry<'a>(m: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == path)
}

/// True when `path`'s entry has an access `op` with result `result`.
pub fn has_access(m: &serde_json::Value, path: &str, op: &str, result: &str) -> bool {
    entry(m, path).is_some_and(|e| {
        e["accesses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["op"] == op && x["result"] == result))
    })
}

/// Everything observable about one object of a tree, without following
/// symlinks: a changed inode, ctime or content means something was written.
#[derive(Debug, PartialEq)]
pub struct Node {
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub size: u64,
    pub rdev: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub content: Option<Vec<u8>>,
    pub target: Option<PathBuf>,
}

/// Every object below `root` (itself included), for before/after
/// comparisons: the one snapshot of the black-box tests.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<PathBuf, Node> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        let ft = md.file_type();
        out.insert(
            p.clone(),
            Node {
                ino: md.ino(),
                mode: md.mode(),
                uid: md.uid(),
                gid: md.gid(),
                nlink: md.nlink(),
                size: md.size(),
                rdev: md.rdev(),
                mtime: (md.mtime(), md.mtime_nsec()),
                ctime: (md.ctime(), md.ctime_nsec()),
                content: ft.is_file().then(|| std::fs::read(&p).unwrap_or_default()),
                target: ft.is_symlink().then(|| std::fs::read_link(&p).unwrap()),
            },
        );
    }
    out
}

/// A manifest as JSON, the one builder of the black-box tests: the current
/// schema, a generic header (`/bin/true` run as root from `/`), and
/// `entries`. Tests change what they care about, e.g.
/// `m["command"]["argv"] = json!([...])`, or `m["schema"] = json!(1)` to
/// exercise the loading of old manifests.
pub fn manifest(entries: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "schema": 2,
        "generator": "test",
        "command": {"argv": ["/bin/true"], "cwd": "/", "uid": 0, "gid": 0},
        "entries": entries,
    })
}

/// A free loopback TCP port (bound, then released for the server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One redis-cli command against a server on loopback `port`: its
/// trimmed stdout.
pub fn redis_cli(cli: &str, port: u16, args: &[&str]) -> String {
    let out = output(
        Command::new(cli)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(std::process::Stdio::null()),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until a redis server answers PING on `port`, or fails showing the
/// log file its stderr goes to.
pub fn wait_for_pong(
    cli: &str,
    port: u16,
    server: &mut std::process::Child,
    log: &Path,
    what: &str,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if redis_cli(cli, port, &["PING"]) == "PONG" {
            return;
        }
        if let Some(st) = server.try_wait().unwrap() {
            let err = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what}: exited with {st} before answering\n{err}");
        }
        if std::time::Instant::now() > deadline {
            let _ = server.kill();
            let _ = server.wait();
            panic!("{what}: no PONG on port {port} after 20s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A shell pipeline (grep, sort, uniq, sort, wc) over a word list, as a
/// script and its data written in `dir`: the argv `/bin/sh SCRIPT DATA`.
pub fn sh_pipeline(dir: &Path) -> [String; 3] {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("count.sh");
    let data = dir.join("words.txt");
    std::fs::write(&data, "pear\napple\nplum\napple\nbanana\ncherry\n").unwrap();
    std::fs::write(
        &script,
        "#!/bin/sh\ngrep -v '^c' \"$1\" | sort | uniq -c | sort -rn | wc -l\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    ["/bin/sh".into(), s(&script), s(&data)]
}
