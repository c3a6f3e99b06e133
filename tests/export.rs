//! `jailtrace export`: the recordings of the materialize end-to-end tests
//! run under the real bubblewrap and give the host's output; what the
//! manifest does not list is not there; dangerous binds are refused; the
//! OCI archive of a redis recording goes through real consumers (skopeo,
//! umoci) and runs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn export(args: &[&str], manifest: &Path) -> Output {
    common::output(common::jailtrace().arg("export").args(args).arg(manifest))
}

fn export_ok(args: &[&str], manifest: &Path) {
    let out = export(args, manifest);
    assert!(
        out.status.success(),
        "export {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (status, stdout, stderr) of a run from `/` with no input.
fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = common::output(cmd.stdin(Stdio::null()).current_dir("/"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn needs(test: &str) -> bool {
    common::require_root(test)
        && common::require_program(test, "bwrap")
        && common::require_program(test, "setpriv")
}

/// Records `argv` in `cwd` into `m`, removes `out_file`, which the
/// recording wrote on the host, and exports `m` as a bwrap script beside
/// it, whose path it returns.
fn record_then_script(m: &Path, cwd: &Path, argv: &[&str], out_file: &Path) -> PathBuf {
    common::success(
        common::jailtrace()
            .current_dir(cwd)
            .args(["record", "-o"])
            .arg(m)
            .arg("--")
            .args(argv),
    );
    std::fs::remove_file(out_file).unwrap();
    let script = m.with_file_name("rec.sh");
    export_ok(&["--format", "bwrap", "--script", "-o", &s(&script)], m);
    script
}

/// A directory of the test's own directly beneath the host's /tmp, which
/// the sandbox makes private.
fn dir_in_tmp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap()
}

/// Records `argv`, exports it as a bwrap script, runs the script and
/// compares status, stdout and stderr with the host's run. Returns the
/// script.
fn record_export_compare(t: &Path, test: &str, argv: &[&str], extra: &[&str]) -> PathBuf {
    // The sandbox starts with `run`'s clean environment: so does the host
    // run it is compared with.
    let host = run(Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("USER", "root")
        .env("LOGNAME", "root"));
    common::record_in(t, "rec", argv, host.0.expect("host run not killed"));
    let script = t.join("rec.sh");
    let mut args = vec!["--format", "bwrap", "--script", "-o"];
    let script_s = s(&script);
    args.push(&script_s);
    args.extend(extra);
    export_ok(&args, &t.join("rec.json"));
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "{test}: the script is executable");
    let boxed = run(&mut Command::new(&script));
    assert_eq!(host, boxed, "{test}: host, then under bwrap");
    script
}

#[test]
fn bwrap_ls() {
    if !needs("bwrap_ls") {
        return;
    }
    let t = common::tempdir();
    let ls = s(&common::which("ls").unwrap());
    let script = record_export_compare(t.path(), "ls", &[&ls, "-l", "/etc/hostname"], &[]);

    // What the manifest does not list is not there: the proof that the
    // program sees nothing else.
    let (status, _, err) = run(Command::new(&script).args(["cat", "/etc/os-release"]));
    assert_ne!(status, Some(0), "{err}");
    let (status, _, err) = run(Command::new(&script).args([&ls, "/etc/os-release"]));
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    let (status, out, _) = run(Command::new(&script).args([&ls, "/"]));
    assert_eq!(status, Some(0));
    // Exactly the top-level names the manifest has (with cargo's
    // LD_LIBRARY_PATH that includes /root, probed by the loader), not the
    // host's others.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("rec.json")).unwrap()).unwrap();
    let mut listed: Vec<String> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] != "missing")
        .filter_map(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .split('/')
                .nth(1)
                .map(String::from)
        })
        .filter(|c| !c.is_empty())
        .collect();
    listed.sort();
    listed.dedup();
    let top: Vec<String> = out.lines().map(String::from).collect();
    assert!(
        top.iter().all(|n| listed.contains(n)),
        "{top:?} beyond {listed:?}"
    );
    let hidden: Vec<String> = std::fs::read_dir("/")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !listed.contains(n))
        .collect();
    assert!(
        !hidden.is_empty(),
        "the host has nothing the manifest lacks?"
    );
    assert!(
        !top.iter().any(|n| hidden.contains(n)),
        "{top:?} shows some of {hidden:?}"
    );

    // The argument list form, as `bwrap --args FD` reads it.
    let list = t.path().join("rec.args");
    export_ok(
        &["--format", "bwrap", "-o", &s(&list)],
        &t.path().join("rec.json"),
    );
    let text = std::fs::read(&list).unwrap();
    assert!(
        text.starts_with(b"--unshare-all\0"),
        "{:?}",
        String::from_utf8_lossy(&text)
    );
    let host = run(Command::new(&ls).args(["-l", "/etc/hostname"]));
    let boxed = run(Command::new("sh").args([
        "-c",
        &format!("exec bwrap --args 3 {ls} -l /etc/hostname 3<{}", s(&list)),
    ]));
    assert_eq!(host, boxed);
}

/// A file written in place is the host's, read-write; `--ephemeral` gives
/// the program a private copy and leaves the host's alone.
#[test]
fn bwrap_dd_writes_in_place_or_ephemeral() {
    if !needs("bwrap_dd_writes_in_place_or_ephemeral") {
        return;
    }
    let t = common::tempdir();
    let state = t.path().join("state.log");
    std::fs::write(&state, "there before\n").unwrap();
    let dd = s(&common::which("dd").unwrap());
    let of = format!("of={}", s(&state));
    let argv = [
        dd.as_str(),
        &of,
        "conv=notrunc,nocreat",
        "oflag=append",
        "status=none",
    ];
    // The sandbox runs as root, which owns everything: only --writable
    // gives a read-write bind of the host's file.
    let state_s = s(&state);
    record_export_compare(t.path(), "dd", &argv, &["--writable", &state_s]);
    // Host run, record and the bwrap run each appended nothing (no input)
    // but touched the same file, which is still there with its content.
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "there before\n");

    // Ephemeral: the program writes its private copy.
    let writer = t.path().join("writer.sh");
    std::fs::write(&writer, "#!/bin/sh\necho more >> \"$1\"\n").unwrap();
    std::fs::set_permissions(&writer, std::fs::Permissions::from_mode(0o755)).unwrap();
    common::record_in(t.path(), "w", &["/bin/sh", &s(&writer), &s(&state)], 0);
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "there before\nmore\n"
    );
    let eph = t.path().join("eph.sh");
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--ephemeral",
            "-o",
            &s(&eph),
        ],
        &t.path().join("w.json"),
    );
    let (status, _, err) = run(&mut Command::new(&eph));
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "there before\nmore\n"
    );
    // Without it, the host's file.
    let shared = t.path().join("shared.sh");
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--writable",
            &state_s,
            "-o",
            &s(&shared),
        ],
        &t.path().join("w.json"),
    );
    let (status, _, err) = run(&mut Command::new(&shared));
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "there before\nmore\nmore\n"
    );
    // Nothing else can be made: the root is read-only, and of the host's
    // directory only the file the program wrote is writable. With
    // --ephemeral that directory is private: a write there succeeds and
    // vanishes.
    let sibling = t.path().join("new");
    for (script, status_wanted) in [(&shared, 2), (&eph, 0)] {
        let (status, _, err) = run(Command::new(script).args([
            "/bin/sh",
            "-c",
            &format!("echo x > /etc/jailtrace-new || echo x > {}", s(&sibling)),
        ]));
        assert_eq!(status, Some(status_wanted), "{}: {err}", s(script));
        assert!(err.contains("Read-only file system"), "{err}");
    }
    assert!(!sibling.exists() && !Path::new("/etc/jailtrace-new").exists());
}

#[test]
fn bwrap_id_date_perl() {
    if !needs("bwrap_id_date_perl") {
        return;
    }
    for (name, argv) in [
        ("id", vec!["id", "-un"]),
        ("date", vec!["date", "-u", "+%Y"]),
        (
            "perl",
            vec![
                "perl",
                "-MPOSIX",
                "-e",
                "print strftime(\"%Y\", gmtime(0)), \"\\n\"",
            ],
        ),
    ] {
        let t = common::tempdir();
        let prog = s(&common::which(argv[0]).unwrap());
        let mut full = vec![prog.as_str()];
        full.extend(&argv[1..]);
        record_export_compare(t.path(), name, &full, &[]);
    }
}

#[test]
fn bwrap_sh_pipeline() {
    if !needs("bwrap_sh_pipeline") {
        return;
    }
    let t = common::tempdir();
    let argv = common::sh_pipeline(t.path());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    record_export_compare(t.path(), "sh", &argv, &[]);
}

#[test]
fn bwrap_python3() {
    if !needs("bwrap_python3") {
        return;
    }
    let t = common::tempdir();
    record_export_compare(
        t.path(),
        "python3",
        &[
            "/usr/bin/python3",
            "-c",
            "import json, sqlite3, decimal; print(json.dumps([1]))",
        ],
        &[],
    );
}

/// `--user`: the script starts bwrap as that user, so the program acts on
/// host files as it, and is it inside.
#[test]
fn bwrap_user() {
    if !needs("bwrap_user") {
        return;
    }
    let t = common::tempdir();
    let id = s(&common::which("id").unwrap());
    common::record_in(t.path(), "id", &[&id], 0);
    let script = t.path().join("id.sh");
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--user",
            "nobody",
            "-o",
            &s(&script),
        ],
        &t.path().join("id.json"),
    );
    let (status, out, err) = run(&mut Command::new(&script));
    assert_eq!(status, Some(0), "{err}");
    assert!(out.starts_with("uid=65534(nobody) gid=65534("), "{out}");
}

fn wait_exit(mut child: Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after 30s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Records redis-server serving a real client, for the bwrap and OCI tests.
fn record_redis(t: &Path) -> PathBuf {
    let manifest = t.join("redis.json");
    let port = common::free_port();
    let log = t.join("record.stderr");
    let mut rec = common::jailtrace()
        .current_dir(t)
        .args(["record", "-o"])
        .arg(&manifest)
        .args([
            "--",
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    common::wait_for_pong("redis-cli", port, &mut rec, &log, "recorded redis-server");
    assert_eq!(
        common::redis_cli("redis-cli", port, &["SET", "jailtrace", "works"]),
        "OK"
    );
    common::redis_cli("redis-cli", port, &["SHUTDOWN"]);
    let st = wait_exit(rec, "record redis-server");
    assert_eq!(
        st.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    manifest
}

/// redis-server under the exported sandbox serves a redis-cli on the host,
/// and finds the data the recorded run saved in its directory.
#[test]
fn bwrap_redis_server_serves_a_host_client() {
    let test = "bwrap_redis_server_serves_a_host_client";
    if !needs(test)
        || !common::require_program(test, "redis-server")
        || !common::require_program(test, "redis-cli")
    {
        return;
    }
    let t = common::tempdir();
    let manifest = record_redis(t.path());
    let script = t.path().join("redis.sh");
    let dir = s(t.path());
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--share-net",
            "--writable",
            &dir,
            "-o",
            &s(&script),
        ],
        &manifest,
    );
    let port = common::free_port();
    let log = t.path().join("boxed.stderr");
    let mut server = Command::new(&script)
        .args([
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    common::wait_for_pong(
        "redis-cli",
        port,
        &mut server,
        &log,
        "redis-server under bwrap",
    );
    assert_eq!(
        common::redis_cli("redis-cli", port, &["GET", "jailtrace"]),
        "works"
    );
    assert_eq!(
        common::redis_cli("redis-cli", port, &["SET", "again", "1"]),
        "OK"
    );
    common::redis_cli("redis-cli", port, &["SHUTDOWN"]);
    let st = wait_exit(server, "redis-server under bwrap");
    assert_eq!(
        st.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Without --share-net the sandbox has its own network: nothing answers.
    let script = t.path().join("nonet.sh");
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--writable",
            &dir,
            "-o",
            &s(&script),
        ],
        &manifest,
    );
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("--unshare-all") && !text.contains("--share-net"));
}

fn write_manifest(dir: &Path, name: &str, entries: serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, common::manifest(entries).to_string()).unwrap();
    p
}

/// Every refusal is one line naming the entry and the way to allow it,
/// exit 1, and no output file.
#[test]
fn dangerous_binds_are_refused_unless_allowed() {
    let t = common::tempdir();
    let out = t.path().join("out.sh");
    let refused = |m: &Path, extra: &[&str], want: &str| {
        let mut args = vec!["--format", "bwrap", "--script", "-o"];
        let o = s(&out);
        args.push(&o);
        args.extend(extra);
        let r = export(&args, m);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(!out.exists());
    };
    let disk = write_manifest(
        t.path(),
        "disk.json",
        json!([{ "path": "/dev/sda", "kind": "blockdev", "class": "dev", "major": 8, "minor": 0,
                 "accesses": [ { "op": "read", "result": "ok" } ] }]),
    );
    refused(
        &disk,
        &[],
        "entry /dev/sda: block device 8:0 gives raw access to a disk",
    );
    let mem = write_manifest(
        t.path(),
        "mem.json",
        json!([{ "path": "/dev/mem", "kind": "chardev", "class": "dev", "major": 1, "minor": 1,
                 "accesses": [ { "op": "read", "result": "ok" } ] }]),
    );
    refused(&mem, &[], "physical memory (/dev/mem)");
    let docker = write_manifest(
        t.path(),
        "docker.json",
        json!([{ "path": "/run/docker.sock", "kind": "socket", "class": "regular",
                 "accesses": [ { "op": "connect", "result": "ok" } ] }]),
    );
    refused(
        &docker,
        &[],
        "entry /run/docker.sock: this socket gives control of the host",
    );
    export_ok(
        &["--format", "bwrap", "--allow-bind", "/run/docker.sock"],
        &docker,
    );
    // The other daemons that hand out the host: buses, snapd, libvirt,
    // rootless runtimes.
    for sock in [
        "/run/user/0/bus",
        "/run/snapd.socket",
        "/run/libvirt/libvirt-sock",
        "/run/user/1000/docker.sock",
    ] {
        let m = write_manifest(
            t.path(),
            "ctl.json",
            json!([{ "path": sock, "kind": "socket", "class": "regular",
                     "accesses": [ { "op": "connect", "result": "ok" } ] }]),
        );
        refused(
            &m,
            &[],
            &format!("entry {sock}: this socket gives control of the host"),
        );
    }
    let etc = write_manifest(
        t.path(),
        "etc.json",
        json!([{ "path": "/etc", "kind": "dir", "class": "regular" },
               { "path": "/etc/new.conf", "kind": "file", "class": "regular", "created": true, "output": true,
                 "accesses": [ { "op": "create", "result": "ok" } ] }]),
    );
    refused(
        &etc,
        &[],
        "the program writes /etc; a read-write bind of the host's is given only to what the \
         sandbox's user owns, and it is a system directory",
    );
    // Read-write binds are allowed, not denied: root's own directories
    // (/root/.ssh, /var/lib/dpkg/info) are refused for a root sandbox, a
    // directory of another user's for --user nobody, and --writable binds
    // one anyway.
    let owned = t.path().join("owned");
    std::fs::create_dir(&owned).unwrap();
    std::os::unix::fs::chown(&owned, Some(65534), Some(65534)).unwrap();
    let writes_in = |dir: &Path, name: &str| {
        write_manifest(
            t.path(),
            name,
            json!([{ "path": s(dir), "kind": "dir", "class": "regular" },
                   { "path": format!("{}/new", s(dir)), "kind": "file", "class": "regular",
                     "created": true, "output": true,
                     "accesses": [ { "op": "create", "result": "ok" } ] }]),
        )
    };
    let roots = t.path().join("roots");
    std::fs::create_dir(&roots).unwrap();
    let ssh = writes_in(&roots, "ssh.json");
    refused(&ssh, &[], "the sandbox runs as root, which owns everything");
    let theirs = writes_in(t.path(), "theirs.json");
    refused(
        &theirs,
        &["--user", "nobody"],
        "uid 0 owns it, not the sandbox's user (uid 65534)",
    );
    let mine = writes_in(&owned, "mine.json");
    export_ok(&["--format", "bwrap", "--user", "nobody"], &mine);
    refused(&mine, &[], "the sandbox runs as root");
    export_ok(&["--format", "bwrap", "--writable", &s(&owned)], &mine);
    // Private, it is harmless.
    let r = export(&["--format", "bwrap", "--ephemeral"], &etc);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let args: Vec<&[u8]> = r.stdout.split(|&b| b == 0).collect();
    assert!(
        args.windows(2).any(|w| w == [&b"--tmpfs"[..], b"/etc"]),
        "{args:?}"
    );
    // Options of the other format are a usage error.
    let r = export(&["--format", "oci", "--script"], &etc);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--script is an option of --format bwrap"));
    // A malformed manifest names itself.
    let bad = t.path().join("bad.json");
    std::fs::write(&bad, "{").unwrap();
    let r = export(&["--format", "bwrap"], &bad);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("bad.json"));
}

/// Temporary directories are private; account databases are passed
/// rewritten (no hashes), never bound.
#[test]
fn temp_dirs_are_private_and_shadow_is_scrubbed() {
    let t = common::tempdir();
    let m = write_manifest(
        t.path(),
        "m.json",
        json!([{ "path": "/etc", "kind": "dir", "class": "regular" },
               { "path": "/etc/shadow", "kind": "file", "class": "regular", "mode": "0640",
                 "accesses": [ { "op": "read", "result": "ok" } ] },
               { "path": "/tmp", "kind": "dir", "class": "regular" },
               { "path": "/tmp/x", "kind": "missing", "class": "regular", "created": true, "output": true,
                 "accesses": [ { "op": "create", "result": "ok" }, { "op": "unlink", "result": "ok" } ] }]),
    );
    let script = String::from_utf8(
        common::output(
            common::jailtrace()
                .args(["export", "--format", "bwrap", "--script"])
                .arg(&m),
        )
        .stdout,
    )
    .unwrap();
    assert!(script.contains("--tmpfs /tmp"), "{script}");
    assert!(script.contains("--ro-bind-data 3 /etc/shadow"), "{script}");
    assert!(script.contains("3<<'JAILTRACE_DATA_3'"), "{script}");
    let host = std::fs::read_to_string("/etc/shadow").unwrap();
    for line in host.lines() {
        let hash = line.split(':').nth(1).unwrap_or("");
        if hash.len() > 2 {
            assert!(!script.contains(hash), "a password hash reached the script");
        }
    }
    // The argument list cannot carry data: one clear error.
    let r = export(&["--format", "bwrap"], &m);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr)
        .contains("/etc/shadow has to be passed to bwrap as data"));
}

/// The OCI archive of a redis recording: two exports are the same bytes;
/// skopeo reads it as an oci-archive, umoci unpacks it, and redis-server
/// runs in the unpacked root.
#[test]
fn oci_archive_of_redis_unpacks_and_runs() {
    let test = "oci_archive_of_redis_unpacks_and_runs";
    if !common::require_root(test)
        || !common::require_program(test, "skopeo")
        || !common::require_program(test, "umoci")
        || !common::require_program(test, "redis-server")
    {
        return;
    }
    let t = common::tempdir();
    let manifest = record_redis(t.path());
    let (a, b) = (t.path().join("a.tar"), t.path().join("b.tar"));
    let args = [
        "--format",
        "oci",
        "--user",
        "redis",
        "--env",
        "LANG=C.UTF-8",
        "--tag",
        "v1",
        "-o",
    ];
    let mut first = args.to_vec();
    let a_s = s(&a);
    first.push(&a_s);
    export_ok(&first, &manifest);
    let mut second = args.to_vec();
    let b_s = s(&b);
    second.push(&b_s);
    export_ok(&second, &manifest);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "not reproducible"
    );

    // One gzip layer, its config naming the digest of the tar inside.
    let mut files = std::collections::HashMap::new();
    for e in tar::Archive::new(std::fs::File::open(&a).unwrap())
        .entries()
        .unwrap()
    {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.insert(path, data);
    }
    let blob = |digest: &serde_json::Value| {
        let d = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        files[&format!("blobs/sha256/{d}")].clone()
    };
    let json = |b: Vec<u8>| serde_json::from_slice::<serde_json::Value>(&b).unwrap();
    let index = json(files["index.json"].clone());
    let image = json(blob(&index["manifests"][0]["digest"]));
    let layer = &image["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let gz = blob(&layer["digest"]);
    assert_eq!(layer["size"], gz.len());
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut plain)
        .unwrap();
    assert!(
        gz.len() < plain.len() / 2,
        "{} of {}",
        gz.len(),
        plain.len()
    );
    let config = json(blob(&image["config"]["digest"]));
    let diff_id = format!(
        "sha256:{}",
        sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&plain))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(config["rootfs"]["diff_ids"][0], diff_id);

    let layout = t.path().join("layout");
    common::success(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}:v1", s(&a)),
        &format!("oci:{}:v1", s(&layout)),
    ]));
    let bundle = t.path().join("bundle");
    common::success(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:v1", s(&layout))])
            .arg(&bundle),
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let redis = nix::unistd::User::from_name("redis").unwrap().unwrap();
    assert_eq!(config["process"]["user"]["uid"], redis.uid.as_raw());
    assert_eq!(config["process"]["args"][0], "/usr/bin/redis-server");
    assert_eq!(config["process"]["args"][1], "--port");
    assert!(
        config["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "LANG=C.UTF-8"),
        "{}",
        config["process"]["env"]
    );
    let rootfs = bundle.join("rootfs");
    let host = run(Command::new("redis-server").arg("--version"));
    let unpacked = run(Command::new("chroot")
        .arg(&rootfs)
        .args(["/usr/bin/redis-server", "--version"]));
    assert_eq!(host, unpacked);
    // Only what the recording used: no shell, no shadow file.
    assert!(!rootfs.join("bin/sh").exists() && !rootfs.join("usr/bin/sh").exists());
    assert!(
        rootfs.join("dev/null").exists()
            || !common::has_access(
                &serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap(),
                "/dev/null",
                "write",
                "ok"
            )
    );
}

/// `--ephemeral --user`: the private copies of host files are read as the
/// sandbox's user, when the script runs: a root-only file, a symlink or a
/// FIFO swapped in since the export are refused in one line, never read
/// as root for the user, never hung on.
#[test]
fn bwrap_private_copies_are_read_as_the_sandbox_user() {
    if !needs("bwrap_private_copies_are_read_as_the_sandbox_user") {
        return;
    }
    let t = common::tempdir();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let open = t.path().join("open.log");
    let closed = t.path().join("closed.log");
    std::fs::write(&open, "open before\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::write(&closed, "ROOT SECRET\n").unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o600)).unwrap();
    let export_script = |name: &str, files: &[&Path]| -> PathBuf {
        let appends: Vec<String> = files
            .iter()
            .map(|f| format!("echo x >> {}", s(f)))
            .collect();
        let rec = format!("{name}.json");
        common::record_in(t.path(), name, &["/bin/sh", "-c", &appends.join("; ")], 0);
        let script = t.path().join(format!("{name}.sh"));
        export_ok(
            &[
                "--format",
                "bwrap",
                "--script",
                "--ephemeral",
                "--user",
                "nobody",
                "-o",
                &s(&script),
            ],
            &t.path().join(rec),
        );
        script
    };
    let script = export_script("both", &[&open, &closed]);
    let (status, out, err) = run(Command::new(&script)
        .args(["/bin/sh", "-c", "cat"])
        .arg(&closed));
    assert_eq!(status, Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot be read as the sandbox's user"),
        "{err}"
    );
    assert!(!out.contains("ROOT SECRET"));
    // What the user may read, it gets (a copy: the host's stays).
    let script = export_script("open", &[&open]);
    let (status, out, err) = run(Command::new(&script).args(["/bin/sh", "-c"]).arg(format!(
        "echo mine >> {0} && while read -r l; do echo \"$l\"; done < {0}",
        s(&open)
    )));
    assert_eq!(status, Some(0), "{err}");
    assert!(out.ends_with("mine\n"), "{out}");
    let host_before = std::fs::read_to_string(&open).unwrap();
    assert!(!host_before.contains("mine"));
    // Swapped since the export: a symlink to the secret, then a FIFO.
    std::fs::remove_file(&open).unwrap();
    std::os::unix::fs::symlink(&closed, &open).unwrap();
    let (status, out, err) = run(Command::new(&script)
        .args(["/bin/sh", "-c", "cat"])
        .arg(&open));
    assert_eq!(status, Some(125), "{err}");
    assert!(err.contains("not a regular file now"), "{err}");
    assert!(!out.contains("ROOT SECRET"));
    std::fs::remove_file(&open).unwrap();
    nix::unistd::mkfifo(&open, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let started = Instant::now();
    let (status, _, err) = run(Command::new(&script).args(["/bin/true"]));
    assert_eq!(status, Some(125), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A recording made in a working directory under /tmp: /tmp is private
/// (a tmpfs) in the sandbox, so the script makes the directory there
/// before bwrap changes into it (issue 21: it failed with "Can't chdir").
#[test]
fn bwrap_cwd_under_a_private_tmp_is_made_there() {
    let test = "bwrap_cwd_under_a_private_tmp_is_made_there";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    let work = dir_in_tmp("jailtrace-cwd-");
    let cwd = work.path().join("deep/er");
    std::fs::create_dir_all(&cwd).unwrap();
    let m = t.path().join("m.json");
    // It writes beside its working directory and never looks at it (a
    // shell would stat it): the plan has no entry for the directory.
    let out_file = work.path().join("out");
    let of = format!("of={}", out_file.display());
    let argv = [
        "/bin/dd",
        "if=/dev/zero",
        of.as_str(),
        "bs=1",
        "count=3",
        "status=none",
    ];
    // The recording wrote it on the host; the sandbox must not.
    let script = record_then_script(&m, &cwd, &argv, &out_file);
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("--tmpfs /tmp"), "{text}");
    let (code, _, err) = run(&mut Command::new(&script));
    assert_eq!(code, Some(0), "{err}\n{text}");
    // Private: the host's directory did not get the file.
    assert!(!out_file.exists(), "written through to the host");
}

/// The script gives the program `run`'s clean environment and `--env`,
/// never the caller's (issue 21: NODE_EXTRA_CA_CERTS leaked into node).
#[test]
fn bwrap_gives_a_clean_environment_and_env() {
    let test = "bwrap_gives_a_clean_environment_and_env";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    common::record_in(t.path(), "rec", &["/usr/bin/env"], 0);
    let script = t.path().join("env.sh");
    // `--env LANG` takes the exporter's value, here set for it.
    let exported = common::output(
        common::jailtrace()
            .env("LANG", "C.UTF-8")
            .args(["export", "--format", "bwrap", "--script"])
            .args(["--env", "GREETING=hi there", "--env", "LANG", "-o"])
            .arg(&script)
            .arg(t.path().join("rec.json")),
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let (code, out, err) = run(Command::new(&script)
        .env("LANG", "POSIX")
        .env("NODE_EXTRA_CA_CERTS", "/tmp/evil.pem")
        .env("SECRET_TOKEN", "s3cret"));
    assert_eq!(code, Some(0), "{err}");
    // bwrap itself sets PWD to the directory it changed into.
    let mut got: Vec<&str> = out.lines().filter(|l| !l.starts_with("PWD=")).collect();
    got.sort_unstable();
    let home = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .map_or("/".to_string(), |u| u.dir.display().to_string());
    let name = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .map(|u| u.name);
    let mut want = vec![
        "GREETING=hi there".to_string(),
        format!("HOME={home}"),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ];
    // LANG's value is the exporter's, read when the script was written.
    want.push("LANG=C.UTF-8".to_string());
    if let Some(n) = name {
        want.push(format!("LOGNAME={n}"));
        want.push(format!("USER={n}"));
    }
    want.sort_unstable();
    assert_eq!(got, want);
}

/// The warning about a recorded user switch says what is true for the
/// options given: with --user it does not advise --user (issue 21).
#[test]
fn the_user_switch_warning_fits_the_options() {
    let t = common::tempdir();
    // Recorded as uid 1000, which became root (a setuid helper) and nobody.
    let mut m = common::manifest(json!([{ "path": "/", "kind": "dir", "class": "regular" }]));
    m["command"]["uid"] = json!(1000);
    m["command"]["set_uids"] = json!([0, 65534]);
    let p = t.path().join("m.json");
    std::fs::write(&p, m.to_string()).unwrap();
    let warning = |extra: &[&str]| {
        let out = export(&[&["--format", "bwrap"][..], extra].concat(), &p);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let plain = warning(&[]);
    assert!(plain.contains("switched to uid 0, 65534"), "{plain}");
    assert!(plain.contains("export with --user"), "{plain}");
    let with_user = warning(&["--user", "65534:65534"]);
    assert!(with_user.contains("switched to uid 0"), "{with_user}");
    assert!(
        with_user.contains("runs it as uid 65534 (--user)"),
        "{with_user}"
    );
    assert!(!with_user.contains("export with --user"), "{with_user}");
}

/// A path bound read-write for --user that this user cannot write on the
/// host is named with its owner before the script exists (issue 21).
#[test]
fn a_writable_path_the_user_cannot_write_is_named() {
    if !common::require_root("a_writable_path_the_user_cannot_write_is_named") {
        return;
    }
    let t = common::tempdir();
    let dir = std::fs::canonicalize(t.path()).unwrap();
    let f = dir.join("state");
    std::fs::write(&f, "x").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut entries = vec![json!({ "path": "/", "kind": "dir", "class": "regular" })];
    for a in dirs_down_to(&dir) {
        entries.push(json!({ "path": a, "kind": "dir", "class": "regular", "mode": "0755" }));
    }
    entries.push(
        json!({ "path": s(&f), "kind": "file", "class": "regular", "mode": "0644",
        "uid": 0, "gid": 0, "accesses": [ { "op": "write", "result": "ok" } ] }),
    );
    let m = write_manifest(&dir, "m.json", json!(entries));
    let out = export(
        &[
            "--format",
            "bwrap",
            "--user",
            "nobody",
            "--writable",
            &s(&dir),
        ],
        &m,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is bound read-write, but uid 65534 (--user) cannot write it: uid 0 gid 0 owns \
             it, mode 0644",
            f.display()
        )),
        "{err}"
    );
    // Writable by the user: nothing to say.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = export(
        &[
            "--format",
            "bwrap",
            "--user",
            "nobody",
            "--writable",
            &s(&dir),
        ],
        &m,
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("cannot write"));
}

/// The directories from `/` (exclusive) down to `p` (inclusive).
fn dirs_down_to(p: &Path) -> Vec<String> {
    let mut out: Vec<String> = p
        .ancestors()
        .filter(|a| *a != Path::new("/"))
        .map(s)
        .collect();
    out.reverse();
    out
}

/// SIGTERM to the script reaches the program, which shuts down its own
/// way (here: a file written in its TERM handler), and the script ends
/// with its status (issue 21: bwrap died of the signal and its
/// --die-with-parent SIGKILLed the program).
#[test]
fn bwrap_script_passes_sigterm_to_the_program() {
    let test = "bwrap_script_passes_sigterm_to_the_program";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    let dir = std::fs::canonicalize(t.path()).unwrap();
    let body = format!(
        "trap 'echo bye > {d}/bye; exit 0' TERM; echo up > {d}/ready; \
         while :; do sleep 0.1; done",
        d = dir.display()
    );
    let m = dir.join("m.json");
    let rec = common::output(
        common::jailtrace()
            .args(["record", "--timeout", "1s", "-o"])
            .arg(&m)
            .args(["--", "/bin/sh", "-c", &body]),
    );
    assert_eq!(
        rec.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    for f in ["bye", "ready"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let script = dir.join("svc.sh");
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--writable",
            &s(&dir),
            "-o",
            &s(&script),
        ],
        &m,
    );
    let child = Command::new(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !dir.join("ready").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the service did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_exit(child, "the script after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("bye")).unwrap_or_default(),
        "bye\n",
        "the TERM handler did not run"
    );
}

/// A program recorded as root that drops privileges itself runs from its
/// script as recorded: as root in the host's user namespace, so that its
/// own switch works, with a bounded capability set (issue 21, part 1).
#[test]
fn bwrap_runs_a_self_dropping_root_program_as_recorded() {
    let test = "bwrap_runs_a_self_dropping_root_program_as_recorded";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    let argv = [
        "/bin/sh",
        "-c",
        "grep CapEff /proc/self/status; \
         exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- id",
    ];
    common::record_in(t.path(), "rec", &argv, 0);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("rec.json")).unwrap()).unwrap();
    assert!(
        m["command"]["set_uids"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(65534))),
        "{}",
        m["command"]
    );
    let script = t.path().join("rec.sh");
    let exported = export(
        &["--format", "bwrap", "--script", "-o", &s(&script)],
        &t.path().join("rec.json"),
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    // It works as recorded: no advice to rewrite it with --user.
    assert!(!String::from_utf8_lossy(&exported.stderr).contains("switched to uid"));
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        !text.contains("--unshare-all"),
        "a user namespace maps one user"
    );
    assert!(text.contains("--cap-drop ALL"), "{text}");
    for kept in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
        assert!(text.contains(&format!("--cap-add {kept}")), "{kept}");
    }
    // Proved unused by the recording: no chroot, chown or chmod call, no
    // port bound (below 1024 or at all).
    assert_eq!(
        m["command"]["binds_privileged_port"],
        json!(false),
        "{}",
        m["command"]
    );
    for dropped in [
        "CAP_SYS_CHROOT",
        "CAP_CHOWN",
        "CAP_FSETID",
        "CAP_SYS_ADMIN",
        "CAP_NET_BIND_SERVICE",
    ] {
        assert!(!text.contains(dropped), "{dropped}");
    }
    let (code, out, err) = run(&mut Command::new(&script));
    assert_eq!(code, Some(0), "{err}");
    // DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID, SETPCAP and
    // AUDIT_WRITE: bits 1, 3, 5, 6, 7, 8, 29.
    assert_eq!(
        out,
        "CapEff:\t00000000200001ea\nuid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
    );
}

/// NET_BIND_SERVICE is given to a root service only when its recording
/// asked for a port below 1024, or does not say.
#[test]
fn bwrap_gives_net_bind_service_only_for_a_privileged_port() {
    let test = "bwrap_gives_net_bind_service_only_for_a_privileged_port";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    common::record_in(
        t.path(),
        "rec",
        &[
            "/bin/sh",
            "-c",
            "exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- true",
        ],
        0,
    );
    let path = t.path().join("rec.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (ports, given) in [
        (Some(json!(false)), false),
        (Some(json!(true)), true),
        (None, true),
    ] {
        match &ports {
            Some(p) => m["command"]["binds_privileged_port"] = p.clone(),
            None => {
                m["command"]
                    .as_object_mut()
                    .unwrap()
                    .remove("binds_privileged_port");
            }
        }
        std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        let out = export(&["--format", "bwrap", "--script"], &path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.contains("--cap-add CAP_NET_BIND_SERVICE"),
            given,
            "{ports:?}: {text}"
        );
    }
}

/// Under --user, a recorded command that starts with a privilege wrapper
/// is named, with the command it wraps (issue 21, part 3).
#[test]
fn a_privilege_wrapper_under_user_is_named_with_what_it_wraps() {
    let t = common::tempdir();
    let mut m = common::manifest(json!([{ "path": "/", "kind": "dir", "class": "regular" }]));
    m["command"]["argv"] = json!([
        "/usr/bin/setpriv",
        "--reuid=nobody",
        "--",
        "/usr/bin/id",
        "-u"
    ]);
    let p = t.path().join("m.json");
    std::fs::write(&p, m.to_string()).unwrap();
    let out = export(&["--format", "bwrap", "--user", "65534:65534"], &p);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("starts with setpriv, which switches users: as uid 65534 (--user) it cannot"),
        "{err}"
    );
    assert!(err.contains("(/usr/bin/id -u)"), "{err}");
    // Without --user it runs as recorded: nothing to say.
    let out = export(&["--format", "bwrap"], &p);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("starts with setpriv"));
}

/// A data directory under /var/tmp that `--writable` names is the host's,
/// bound read-write, not a private tmpfs: what the service writes there is
/// kept (issue 21). Unnamed writes under /tmp stay private.
#[test]
fn bwrap_writable_data_under_var_tmp_is_kept() {
    let test = "bwrap_writable_data_under_var_tmp_is_kept";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    let data = tempfile::Builder::new()
        .prefix("jailtrace-data-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let state = data.path().join("state");
    std::fs::write(&state, "one\n").unwrap();
    let scratch = format!("/tmp/jailtrace-scratch-{}", std::process::id());
    let m = t.path().join("m.json");
    let script_text = format!(
        "cat {s} >/dev/null && echo two >> {s} && echo x > {scratch}",
        s = state.display()
    );
    common::success(common::jailtrace().args(["record", "-o"]).arg(&m).args([
        "--",
        "/bin/sh",
        "-c",
        &script_text,
    ]));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "one\ntwo\n");
    // The recording wrote it on the host; the sandbox must not.
    std::fs::remove_file(&scratch).unwrap();
    let script = t.path().join("rec.sh");
    let dir = s(data.path());
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--writable",
            &dir,
            "-o",
            &s(&script),
        ],
        &m,
    );
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(!text.contains("--tmpfs /var/tmp"), "{text}");
    assert!(text.contains("--tmpfs /tmp"), "{text}");
    let (code, _, err) = run(&mut Command::new(&script));
    assert_eq!(code, Some(0), "{err}\n{text}");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "one\ntwo\ntwo\n",
        "the sandbox's write did not reach the host's data"
    );
    assert!(!Path::new(&scratch).exists(), "the private /tmp leaked");
}

/// A root service's directory that another user owns keeps its owner in
/// the sandbox, and shows only what the recording used: the script makes
/// it empty on the host with that owner and binds it read-only, rather
/// than binding the host's directory with all it holds.
#[test]
fn a_root_services_own_directory_shows_only_what_was_used() {
    let test = "a_root_services_own_directory_shows_only_what_was_used";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    let dir = t.path().join("own");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "used\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "not used\n").unwrap();
    for p in [dir.clone(), dir.join("a.txt"), dir.join("secret.txt")] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let drop_to_nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let m = t.path().join("m.json");
    common::success(
        common::jailtrace()
            .args(["record", "-o"])
            .arg(&m)
            .arg("--")
            .args(drop_to_nobody)
            .arg("cat")
            .arg(dir.join("a.txt")),
    );
    let script = t.path().join("rec.sh");
    export_ok(&["--format", "bwrap", "--script", "-o", &s(&script)], &m);
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains(&format!("--bind \"$stage\"{d} {d}", d = s(&dir)))
            && text.contains(&format!("--remount-ro {}", s(&dir))),
        "{text}"
    );
    let (code, out, err) = run(&mut Command::new(&script));
    assert_eq!((code, out.as_str()), (Some(0), "used\n"), "{err}\n{text}");
    let (code, out, _) = run(Command::new(&script)
        .args(drop_to_nobody)
        .arg("cat")
        .arg(dir.join("secret.txt")));
    assert_ne!(code, Some(0), "the sandbox showed {out:?}\n{text}");
}

/// The script's copies for a service that starts as root (`--ephemeral`)
/// refuse, in one line with status 125, a file whose directory was swapped
/// for a symlink since the export: root never reads through it.
#[test]
fn a_staged_copy_through_a_swapped_directory_is_refused() {
    let test = "a_staged_copy_through_a_swapped_directory_is_refused";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    let sub = t.path().join("own/sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("log"), "one\n").unwrap();
    for p in [t.path().join("own"), sub.clone(), sub.join("log")] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let m = t.path().join("m.json");
    let append = format!("echo two >> {}", sub.join("log").display());
    common::success(common::jailtrace().args(["record", "-o"]).arg(&m).args([
        "--",
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        &append,
    ]));
    let script = t.path().join("rec.sh");
    export_ok(
        &[
            "--format",
            "bwrap",
            "--script",
            "--ephemeral",
            "-o",
            &s(&script),
        ],
        &m,
    );
    // A directory on the copy's path is now a symlink to another one that
    // holds a file of the same name.
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("log"), "root's\n").unwrap();
    std::fs::rename(&sub, t.path().join("sub.old")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &sub).unwrap();
    let (code, _, err) = run(&mut Command::new(&script));
    assert_eq!(code, Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a regular file at that path now"), "{err}");
}

/// A root service's directory beneath /tmp that another user owns keeps
/// its owner in the sandbox's private /tmp (bwrap would make it root's),
/// so the service, once it has dropped to that user, writes there; the
/// host's directory gets nothing.
#[test]
fn a_root_services_directory_under_tmp_keeps_its_owner() {
    let test = "a_root_services_directory_under_tmp_keeps_its_owner";
    if !needs(test) {
        return;
    }
    let t = common::tempdir();
    let work = dir_in_tmp("jailtrace-owned-");
    std::os::unix::fs::chown(work.path(), Some(65534), Some(65534)).unwrap();
    let out_file = work.path().join("out");
    let m = t.path().join("m.json");
    let write = format!("echo hi > {}", out_file.display());
    let drop_and_write = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        &write,
    ];
    let here = std::env::current_dir().unwrap();
    let script = record_then_script(&m, &here, &drop_and_write, &out_file);
    let text = std::fs::read_to_string(&script).unwrap();
    let (code, _, err) = run(&mut Command::new(&script));
    assert_eq!(code, Some(0), "{err}\n{text}");
    assert!(!out_file.exists(), "written through to the host");
    // Gone from the host when the sandbox is exported (a /tmp emptied at
    // boot): the recording's owner, as the plan gives it.
    std::fs::remove_dir(work.path()).unwrap();
    export_ok(&["--format", "bwrap", "--script", "-o", &s(&script)], &m);
    let (code, _, err) = run(&mut Command::new(&script));
    assert_eq!(
        code,
        Some(0),
        "exported without the host's directory: {err}"
    );
    assert!(!work.path().exists(), "made on the host");
}
