//! Real daemons with real clients: each is recorded on the host while its
//! client uses it, materialized once (no `--with-outputs`), started in its
//! jail with `jailtrace run` as the recommended user, and must give the
//! client the same answer as on the host. Ports 21100–21199 (below the
//! kernel's ephemeral range, so that no client's source port takes one) and data
//! directories are the tests' own. See docs/daemons.md.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};

/// A jailtrace process (`record` or `run`) holding a daemon. Dropping it
/// kills what is left, so a failed test leaves no daemon behind.
struct Held {
    child: Option<Child>,
    log: PathBuf,
}

impl Held {
    fn start(cmd: &mut Command, log: &Path) -> Held {
        let f = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Held {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM to jailtrace, which forwards it to the daemon; SIGKILL if
    /// it has not ended after 20 s.
    fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("did not stop on SIGTERM within 20 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGKILL to jailtrace kills its tracees (PTRACE_O_EXITKILL),
            // and `run` puts its command in jailtrace's lifetime too.
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(500));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the client until it succeeds (the daemon is up) and returns its
/// trimmed stdout; panics after 30 s with the daemon's log.
fn ask(client: &[String], held: &mut Held) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(&client[0])
            .args(&client[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", client[0]));
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        let last = String::from_utf8_lossy(&out.stderr);
        if let Some(st) = held.child.as_mut().unwrap().try_wait().unwrap() {
            panic!(
                "the daemon ended ({st}) before answering; client said: {last}\ndaemon log:\n{}",
                held.log()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "no answer within 30 s; client said: {last}\ndaemon log:\n{}",
                held.log()
            );
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// One daemon and its client.
struct Case<'a> {
    name: &'a str,
    dir: &'a Path,
    daemon: Vec<String>,
    /// Record as this user (the daemon refuses root, or runs as it).
    record_as: Option<&'a str>,
    /// `jailtrace run` options choosing the user.
    run_as: Vec<&'a str>,
    client: Vec<String>,
    expect: &'a str,
    /// Also served from its bwrap export, with the recorded command and
    /// these options besides `--share-net` and the user's (`--user` for a
    /// daemon recorded as its own user, `--writable` its data directory
    /// for one that starts as root).
    bwrap: Option<&'a [&'a str]>,
}

fn as_user(cmd: &mut Command, user: Option<&str>) {
    if let Some(name) = user {
        let u = User::from_name(name).unwrap().expect("user exists");
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
}

/// Records the daemon on the host, materializes its jail once, runs it
/// there, and compares the client's answers. Returns the manifest and jail.
fn record_materialize_run(c: &Case) -> (PathBuf, PathBuf) {
    let manifest = c.dir.join("rec").join("m.json");
    let jail = c.dir.join("jail");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    if let Some(name) = c.record_as {
        let u = User::from_name(name).unwrap().expect("user exists");
        nix::unistd::chown(manifest.parent().unwrap(), Some(u.uid), Some(u.gid)).unwrap();
    }

    let mut rec = common::jailtrace();
    // The environment a service manager gives: none of the test runner's
    // (cargo's LD_LIBRARY_PATH would add the toolchain's directories).
    rec.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .arg("record")
        .arg("-o")
        .arg(&manifest)
        .arg("--")
        .args(&c.daemon)
        .current_dir(c.dir);
    as_user(&mut rec, c.record_as);
    let mut held = Held::start(&mut rec, &c.dir.join("record.log"));
    let host = ask(&c.client, &mut held);
    let host_status = held.stop();
    assert_eq!(host, c.expect, "{}: host answer", c.name);
    assert!(manifest.exists(), "{}: no manifest", c.name);

    let out = common::output(
        common::jailtrace()
            .arg("materialize")
            .arg(&manifest)
            .arg(&jail),
    );
    assert!(
        out.status.success(),
        "{}: materialize: {}",
        c.name,
        String::from_utf8_lossy(&out.stderr)
    );

    let mut run = common::jailtrace();
    run.arg("run")
        .arg(&jail)
        .arg("--manifest")
        .arg(&manifest)
        .args(&c.run_as)
        .arg("--")
        .args(&c.daemon);
    let mut held = Held::start(&mut run, &c.dir.join("run.log"));
    let jailed = ask(&c.client, &mut held);
    held.stop();
    assert_eq!(jailed, host, "{}: the jail answers differently", c.name);

    if let Some(extra) = c.bwrap {
        serve_from_bwrap(c, &manifest, extra, &host, host_status);
    }

    // What check says of the jail is documented in docs/daemons.md; print
    // it (with --nocapture) so that the table can be kept true.
    check_jail(c, &jail);
    (manifest, jail)
}

/// The bwrap export runs the recorded command unchanged, shares the
/// host's network for the client, answers as on the host, and stops
/// cleanly on SIGTERM, which the script passes on.
fn serve_from_bwrap(
    c: &Case,
    manifest: &Path,
    extra: &[&str],
    host: &str,
    host_status: ExitStatus,
) {
    // A daemon recorded as its own user runs as that user; one that
    // starts as root may write its own data directory (the test's).
    let script = c.dir.join("sandbox.sh");
    let mut export = common::jailtrace();
    export.args(["export", "--format", "bwrap", "--script", "--share-net"]);
    match c.record_as {
        Some(user) => export.args(["--user", user]),
        None => export.arg("--writable").arg(c.dir),
    };
    export.args(extra);
    let out = common::output(export.arg("-o").arg(&script).arg(manifest));
    assert!(
        out.status.success(),
        "{}: export: {}",
        c.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut boxed = Command::new(&script);
    boxed.current_dir("/");
    let mut held = Held::start(&mut boxed, &c.dir.join("bwrap.log"));
    let sandboxed = ask(&c.client, &mut held);
    let log = held.log();
    let st = held.stop();
    assert_eq!(
        sandboxed, host,
        "{}: the bwrap sandbox answers differently",
        c.name
    );
    // As cleanly as under record on the host (postfix's master exits 1
    // on SIGTERM either way).
    assert!(
        st.success() || st.code() == Some(143) || st.code() == host_status.code(),
        "{}: the sandbox did not stop cleanly on SIGTERM ({st}; on the host \
         {host_status}):\n{log}",
        c.name
    );
}

fn check_jail(c: &Case, jail: &Path) {
    let out = common::output(
        common::jailtrace()
            .args(["check", "--format", "json"])
            .arg(jail),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check JSON");
    let findings: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| format!("{} {} {}", f["severity"], f["check"], f["path"]))
        .collect();
    eprintln!(
        "{}: check exit {:?}: {}",
        c.name,
        out.status.code(),
        findings.join("; ")
    );
}

/// Runs the daemon in its jail and returns the client's answer.
fn serve_from_jail(c: &Case, manifest: &Path, jail: &Path) -> String {
    let mut run = common::jailtrace();
    run.arg("run")
        .arg(jail)
        .arg("--manifest")
        .arg(manifest)
        .args(&c.run_as)
        .arg("--")
        .args(&c.daemon);
    let mut held = Held::start(&mut run, &c.dir.join("run2.log"));
    let answer = ask(&c.client, &mut held);
    held.stop();
    answer
}

/// Takes `lost` away from a working jail and shows `verify --fix`
/// completing it again in at most two rounds, after which the daemon
/// serves its client from the jail.
fn verify_fix_restores(c: &Case, lost: &str) {
    let (manifest, jail) = record_materialize_run(c);
    let inside = jail.join(lost.trim_start_matches('/'));
    std::fs::remove_file(&inside).unwrap_or_else(|e| panic!("{}: {e}", inside.display()));
    let out = common::output(
        common::jailtrace()
            .args(["verify", "--fix", "--timeout", "3s", "--manifest"])
            .arg(&manifest)
            .arg(&jail)
            .args(&c.run_as)
            .arg("--")
            .args(&c.daemon),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rounds = text
        .lines()
        .filter(|l| l.starts_with("verify round"))
        .count();
    assert!(
        out.status.success() && rounds <= 2,
        "{}: verify --fix took {rounds} rounds, exit {:?}:\n{text}\n{}",
        c.name,
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{lost} (")),
        "{}: {lost} not named:\n{text}",
        c.name
    );
    assert!(std::fs::symlink_metadata(&inside).is_ok(), "{lost} is back");
    assert_eq!(serve_from_jail(c, &manifest, &jail), c.expect, "{}", c.name);
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(std::string::ToString::to_string).collect()
}

/// A test directory daemons dropping to other users can read.
fn open_tempdir() -> tempfile::TempDir {
    let t = common::tempdir();
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    t
}

fn ready(test: &str, progs: &[&str]) -> bool {
    common::require_root(test) && progs.iter().all(|p| common::require_program(test, p))
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn postgres_case<'a>(dir: &'a Path, port: u16) -> Case<'a> {
    let data = dir.join("data");
    let sock = dir.join("sock");
    let pg = User::from_name("postgres").unwrap().unwrap();
    // Owned by postgres below a directory only root writes, as a careful
    // admin lays it out (check flags a jail under a directory others own).
    for d in [&data, &sock] {
        std::fs::create_dir(d).unwrap();
        nix::unistd::chown(d, Some(pg.uid), Some(pg.gid)).unwrap();
    }
    let mut initdb = Command::new(format!("{PG_BIN}/initdb"));
    initdb
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&data)
        .current_dir(dir);
    as_user(&mut initdb, Some("postgres"));
    common::success(&mut initdb);
    Case {
        name: "postgres",
        dir,
        daemon: vec![
            format!("{PG_BIN}/postgres"),
            "-D".into(),
            s(&data),
            "-k".into(),
            s(&sock),
            "-p".into(),
            port.to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
        ],
        record_as: Some("postgres"),
        run_as: vec!["--user", "postgres"],
        client: strings(&[
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-Atc",
            "SELECT 6 * 7",
        ]),
        expect: "42",
        bwrap: Some(&[]),
    }
}

#[test]
fn postgres_serves_psql_from_its_first_jail() {
    let name = "postgres_serves_psql_from_its_first_jail";
    if !ready(name, &["psql", &format!("{PG_BIN}/postgres")]) {
        return;
    }
    let t = open_tempdir();
    record_materialize_run(&postgres_case(t.path(), 21101));
}

fn sshd_case<'a>(dir: &'a Path, port: u16) -> Case<'a> {
    for key in ["hostkey", "userkey"] {
        common::success(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key)),
        );
    }
    std::fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
    // The privilege separation directory the package's service would make.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nUsePAM no\n\
             PermitRootLogin prohibit-password\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\nStrictModes no\n",
            d = dir.display()
        ),
    )
    .unwrap();
    Case {
        name: "sshd",
        dir,
        daemon: vec![
            "/usr/sbin/sshd".into(),
            "-D".into(),
            "-e".into(),
            "-f".into(),
            s(&cfg),
        ],
        record_as: None,
        // sshd drops privileges itself, per connection.
        run_as: vec!["--allow-root"],
        client: vec![
            "ssh".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-i".into(),
            s(&dir.join("userkey")),
            "-p".into(),
            port.to_string(),
            "root@127.0.0.1".into(),
            "echo hello from sshd".into(),
        ],
        expect: "hello from sshd",
        bwrap: Some(&["--ephemeral"]),
    }
}

#[test]
fn sshd_serves_ssh_from_its_first_jail() {
    let name = "sshd_serves_ssh_from_its_first_jail";
    if !ready(name, &["ssh", "ssh-keygen", "/usr/sbin/sshd"]) {
        return;
    }
    let t = open_tempdir();
    record_materialize_run(&sshd_case(t.path(), 21102));
}

fn www(dir: &Path) -> PathBuf {
    let www = dir.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from the jail\n").unwrap();
    www
}

fn curl(port: u16) -> Vec<String> {
    strings(&[
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "5",
        &format!("http://127.0.0.1:{port}/hello.txt"),
    ])
}

fn lighttpd_case<'a>(dir: &'a Path, port: u16) -> Case<'a> {
    let www = www(dir);
    // lighttpd opens its error log after dropping to www-data.
    let logs = dir.join("log");
    std::fs::create_dir(&logs).unwrap();
    let w = User::from_name("www-data")
        .unwrap()
        .expect("www-data exists");
    nix::unistd::chown(&logs, Some(w.uid), Some(w.gid)).unwrap();
    let cfg = dir.join("lighttpd.conf");
    std::fs::write(
        &cfg,
        format!(
            "server.document-root = \"{}\"\nserver.port = {port}\nserver.bind = \"127.0.0.1\"\n\
             server.username = \"www-data\"\nserver.groupname = \"www-data\"\n\
             server.errorlog = \"{}/error.log\"\nmimetype.assign = (\".txt\" => \"text/plain\")\n",
            www.display(),
            logs.display()
        ),
    )
    .unwrap();
    Case {
        name: "lighttpd",
        dir,
        daemon: vec![
            "/usr/sbin/lighttpd".into(),
            "-D".into(),
            "-f".into(),
            s(&cfg),
        ],
        record_as: None,
        // lighttpd drops to www-data itself after binding.
        run_as: vec!["--allow-root"],
        client: curl(port),
        expect: "hello from the jail",
        bwrap: Some(&[]),
    }
}

#[test]
fn lighttpd_serves_curl_from_its_first_jail() {
    let name = "lighttpd_serves_curl_from_its_first_jail";
    if !ready(name, &["curl", "/usr/sbin/lighttpd"]) {
        return;
    }
    let t = open_tempdir();
    record_materialize_run(&lighttpd_case(t.path(), 21103));
}

#[test]
fn nginx_serves_curl_from_its_first_jail() {
    let name = "nginx_serves_curl_from_its_first_jail";
    if !ready(name, &["curl", "/usr/sbin/nginx"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let www = www(dir);
    let port = 21104;
    let cfg = dir.join("nginx.conf");
    std::fs::write(
        &cfg,
        format!(
            "user www-data;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 16; }}\n\
             http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {w}; }} }}\n",
            d = dir.display(),
            w = www.display()
        ),
    )
    .unwrap();
    record_materialize_run(&Case {
        name: "nginx",
        dir,
        daemon: vec![
            "/usr/sbin/nginx".into(),
            "-p".into(),
            s(dir),
            "-c".into(),
            s(&cfg),
            "-g".into(),
            "daemon off;".into(),
        ],
        record_as: None,
        // The master binds as root; workers run as www-data.
        run_as: vec!["--allow-root"],
        client: curl(port),
        expect: "hello from the jail",
        // Its temp directories keep their owner (www-data), or the master
        // chowns them; read-write for request bodies.
        bwrap: Some(&["--writable", "/var/lib/nginx"]),
    });
}

#[test]
fn redis_serves_redis_cli_from_its_first_jail() {
    let name = "redis_serves_redis_cli_from_its_first_jail";
    if !ready(name, &["redis-server", "redis-cli"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let redis = User::from_name("redis").unwrap().unwrap();
    let data = dir.join("redis");
    std::fs::create_dir(&data).unwrap();
    nix::unistd::chown(&data, Some(redis.uid), Some(redis.gid)).unwrap();
    let port = "21105";
    record_materialize_run(&Case {
        name: "redis",
        dir,
        daemon: strings(&[
            "/usr/bin/redis-server",
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            data.to_str().unwrap(),
        ]),
        // redis does not drop privileges: it runs as its own user.
        record_as: Some("redis"),
        run_as: vec!["--user", "redis"],
        client: strings(&["redis-cli", "-p", port, "ECHO", "hello from redis"]),
        expect: "hello from redis",
        bwrap: Some(&[]),
    });
}

#[test]
fn unbound_answers_dig_from_its_first_jail() {
    let name = "unbound_answers_dig_from_its_first_jail";
    if !ready(name, &["dig", "/usr/sbin/unbound"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let port = 21106;
    let cfg = dir.join("unbound.conf");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  do-daemonize: no\n\
             \x20 chroot: \"\"\n  username: \"unbound\"\n  directory: \"{d}\"\n  pidfile: \"\"\n\
             \x20 use-syslog: no\n  logfile: \"\"\n  num-threads: 1\n\
             \x20 local-zone: \"jailtrace.test.\" static\n\
             \x20 local-data: \"www.jailtrace.test. IN A 192.0.2.7\"\n\
             remote-control:\n  control-enable: no\n",
            d = dir.display()
        ),
    )
    .unwrap();
    record_materialize_run(&Case {
        name: "unbound",
        dir,
        daemon: vec![
            "/usr/sbin/unbound".into(),
            "-d".into(),
            "-c".into(),
            s(&cfg),
        ],
        record_as: None,
        // unbound binds as root and drops to its own user.
        run_as: vec!["--allow-root"],
        client: dig(port),
        expect: "192.0.2.7",
        bwrap: Some(&[]),
    });
}

#[test]
fn verify_fix_restores_postgres_commit_log() {
    let name = "verify_fix_restores_postgres_commit_log";
    if !ready(name, &["psql", &format!("{PG_BIN}/postgres")]) {
        return;
    }
    let t = open_tempdir();
    let c = postgres_case(t.path(), 21111);
    let lost = format!("{}/data/pg_xact/0000", s(t.path()));
    verify_fix_restores(&c, &lost);
}

#[test]
fn verify_fix_restores_dev_null_for_sshd() {
    let name = "verify_fix_restores_dev_null_for_sshd";
    if !ready(name, &["ssh", "ssh-keygen", "/usr/sbin/sshd"]) {
        return;
    }
    let t = open_tempdir();
    verify_fix_restores(&sshd_case(t.path(), 21112), "/dev/null");
}

#[test]
fn verify_fix_restores_dev_null_for_lighttpd() {
    let name = "verify_fix_restores_dev_null_for_lighttpd";
    if !ready(name, &["curl", "/usr/sbin/lighttpd"]) {
        return;
    }
    let t = open_tempdir();
    verify_fix_restores(&lighttpd_case(t.path(), 21113), "/dev/null");
}

/// The password of `ftpuser`, and its SHA-512 crypt hash (`openssl passwd
/// -6 -salt jailtrace secret`).
const FTP_HASH: &str = "$6$jailtrace$sTMACxQKZ2ibUmvlBmGjtBdoilfTa1Ge07PBywfgkjh7aCYEkHFldNXPg7H4m/olvhNPNSe7v.wSus5I6CuMa/";

/// vsftpd logs a local user in through PAM (it reads /etc/shadow) and
/// chroots its unprivileged child into `secure_chroot_dir` (issue 23). Its
/// first jail fails every login and says so, loudly, in materialize's
/// summary and as a verify finding; the jail built with the options that
/// line names serves the user's file to curl as the host does. The user
/// exists only in a private mount namespace, where the test's passwd and
/// shadow are bound over the host's.
#[test]
fn vsftpd_logs_a_local_user_in_from_its_first_jail() {
    let name = "vsftpd_logs_a_local_user_in_from_its_first_jail";
    if !ready(name, &["curl", "/usr/sbin/vsftpd", "unshare"]) {
        return;
    }
    let t = open_tempdir();
    let d = t.path();
    let port = 21107;
    std::fs::create_dir_all(d.join("home")).unwrap();
    std::fs::create_dir_all(d.join("empty")).unwrap();
    std::fs::write(d.join("home/hello.txt"), "hello from vsftpd\n").unwrap();
    nix::unistd::chown(
        &d.join("home"),
        Some(nix::unistd::Uid::from_raw(1600)),
        Some(nix::unistd::Gid::from_raw(1600)),
    )
    .unwrap();
    std::fs::write(
        d.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nftpuser:x:1600:1600::{}/home:/bin/sh\n",
            d.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("shadow"),
        format!("root:*:19000:0:99999:7:::\nftpuser:{FTP_HASH}:19000:0:99999:7:::\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("vsftpd.conf"),
        format!(
            "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=NO\n\
             pam_service_name=vsftpd\nsecure_chroot_dir={}/empty\npasv_enable=YES\n\
             pasv_min_port={}\npasv_max_port={}\npasv_address=127.0.0.1\nxferlog_enable=NO\n",
            d.display(),
            port + 1,
            port + 2
        ),
    )
    .unwrap();
    // The daemon under jailtrace in the background, curl until it answers,
    // then SIGTERM to jailtrace (forwarded to vsftpd).
    let script = r#"
set -e
mount --bind "$D/passwd" /etc/passwd
mount --bind "$D/shadow" /etc/shadow
serve() { # LOG, jailtrace's arguments...
    log=$1; shift
    "$JT" "$@" > "$log" 2>&1 &
    pid=$!
    answer=
    for i in $(seq 100); do
        answer=$(curl -s "ftp://ftpuser:secret@127.0.0.1:$PORT/hello.txt") && [ -n "$answer" ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.2
    done
    kill -TERM $pid 2>/dev/null || true
    wait $pid || true
    echo "answer: $answer"
}
echo "--- host"
serve "$D/record.log" record -o "$D/m.json" -- /usr/sbin/vsftpd "$D/vsftpd.conf"
echo "--- first jail"
"$JT" materialize "$D/m.json" "$D/jail1"
echo "--- verify"
"$JT" verify --allow-root --timeout 2s --manifest "$D/m.json" "$D/jail1" -- /usr/sbin/vsftpd "$D/vsftpd.conf" || echo "verify status $?"
echo "--- kept"
"$JT" materialize --keep-password-hashes --accounts ftpuser "$D/m.json" "$D/jail"
serve "$D/run.log" run --allow-root --manifest "$D/m.json" "$D/jail" -- /usr/sbin/vsftpd "$D/vsftpd.conf"
"#;
    let out = common::output(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .env("JT", env!("CARGO_BIN_EXE_jailtrace"))
            .env("D", d)
            .env("PORT", port.to_string()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let logs = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    let ctx = format!(
        "{text}\n{}\nrecord.log:\n{}\nrun.log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs("record.log"),
        logs("run.log")
    );
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let (host, rest) = text.split_once("--- first jail").unwrap();
    let (first, rest) = rest.split_once("--- verify").unwrap();
    let (verified, kept) = rest.split_once("--- kept").unwrap();
    assert!(host.contains("answer: hello from vsftpd"), "{ctx}");
    // The recording has the nested tree vsftpd chroots into.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("m.json")).unwrap()).unwrap();
    assert!(
        common::has_access(&m, &s(&d.join("empty")), "chroot", "ok"),
        "{ctx}"
    );
    assert!(
        first.contains(
            "password hashes stripped: the program read /etc/shadow (it checks passwords), \
             and the jail lacks its 1 account's hash"
        ),
        "{ctx}"
    );
    assert!(verified.contains("hashes: /etc/shadow"), "{ctx}");
    assert!(verified.contains("verify status 1"), "{ctx}");
    assert!(kept.contains("answer: hello from vsftpd"), "{ctx}");
    assert!(!kept.contains("password hashes stripped"), "{ctx}");
}

/// postfix started through its master directly, not the package's start
/// script (issue 23): smtpd runs chrooted in the queue directory and
/// resolves the client's name there, from the copies of /etc/hosts and
/// friends the start script would have made. `reject_unknown_client_hostname`
/// turns the peer name into the client's answer: 250 when smtpd finds it,
/// 450 when the jail lacks the queue directory's etc/hosts (recorded as
/// the host's /etc/hosts before jailtrace followed chroot).
fn postfix_case<'a>(dir: &'a Path, port: u16) -> Case<'a> {
    let conf = dir.join("conf");
    let queue = dir.join("queue");
    let data = dir.join("data");
    for d in [&conf, &queue, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    let pf = User::from_name("postfix").unwrap().expect("postfix user");
    nix::unistd::chown(&data, Some(pf.uid), Some(pf.gid)).unwrap();
    std::fs::write(
        conf.join("main.cf"),
        format!(
            "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {d}\n\
             mail_owner = postfix\nsetgid_group = postdrop\nmyhostname = jailtrace.test\n\
             mydestination = localhost\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_client_restrictions = reject_unknown_client_hostname\n\
             maillog_file = {dir}/maillog\nalias_maps =\nalias_database =\n",
            q = queue.display(),
            d = data.display(),
            dir = dir.display()
        ),
    )
    .unwrap();
    // The package's master.cf, with smtpd (chroot y) on the test's port.
    let master = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
    let master: String = master
        .lines()
        .map(|l| {
            if l.starts_with("smtp ") && l.contains(" inet ") {
                format!("127.0.0.1:{port} inet n - y - - smtpd")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        master.contains(&format!("127.0.0.1:{port} inet")),
        "{master}"
    );
    std::fs::write(conf.join("master.cf"), master + "\n").unwrap();
    // The queue directory's tree, and the copies of /etc that Debian's
    // start script makes for the chrooted services.
    common::success(Command::new("postfix").arg("-c").arg(&conf).arg("check"));
    std::fs::create_dir_all(queue.join("etc")).unwrap();
    for f in [
        "hosts",
        "resolv.conf",
        "nsswitch.conf",
        "services",
        "host.conf",
    ] {
        let from = Path::new("/etc").join(f);
        if from.exists() {
            std::fs::copy(&from, queue.join("etc").join(f)).unwrap();
        }
    }
    let client = dir.join("smtp.py");
    std::fs::write(
        &client,
        "import smtplib, sys\n\
         s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)\n\
         s.ehlo('client.test')\n\
         s.mail('sender@jailtrace.test')\n\
         code, msg = s.rcpt('root@localhost')\n\
         print(code, 'accepted' if code == 250 else msg.decode().split(' ')[0])\n\
         s.quit()\n",
    )
    .unwrap();
    Case {
        name: "postfix",
        dir,
        daemon: vec![
            "/usr/lib/postfix/sbin/master".into(),
            "-c".into(),
            s(&conf),
            "-d".into(),
        ],
        record_as: None,
        // master starts as root; its services drop to postfix and chroot.
        run_as: vec!["--allow-root"],
        client: vec!["python3".into(), s(&client), port.to_string()],
        expect: "250 accepted",
        bwrap: Some(&[]),
    }
}

#[test]
fn postfix_master_knows_its_peer_from_its_first_jail() {
    let name = "postfix_master_knows_its_peer_from_its_first_jail";
    if !ready(
        name,
        &["python3", "postfix", "/usr/lib/postfix/sbin/master"],
    ) {
        return;
    }
    let t = open_tempdir();
    let c = postfix_case(t.path(), 21114);
    let (manifest, jail) = record_materialize_run(&c);
    // smtpd's reads after its chroot are beneath the queue directory, and
    // the jail has them.
    let hosts = t.path().join("queue/etc/hosts");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert!(common::has_access(&m, &s(&hosts), "read", "ok"), "{m:#}");
    assert!(jail.join(hosts.strip_prefix("/").unwrap()).exists());
}

/// dovecot serves a session from its index and only `stat`s the Maildir,
/// so a recording holds none of the messages; the jail's `cur/` is empty,
/// dovecot rescans it, and the mail is gone (issue 21, part 5). materialize
/// says so (the Maildir holds more on the host than the manifest lists),
/// and `record --tree` on the Maildir gives a jail that serves it. Its
/// imap-login also chroots itself (into the base directory's `login/`).
#[test]
fn dovecot_serves_its_mail_from_its_first_jail_with_tree() {
    let name = "dovecot_serves_its_mail_from_its_first_jail_with_tree";
    if !ready(name, &["curl", "/usr/sbin/dovecot"]) {
        return;
    }
    let t = open_tempdir();
    let d = t.path();
    let port = 21116;
    let maildir = d.join("home/Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::create_dir_all(d.join("base")).unwrap();
    std::fs::create_dir_all(d.join("state")).unwrap();
    std::fs::write(
        maildir.join("cur/1700000000.M1P1.jailtrace:2,S"),
        "From: a@jailtrace.test\nTo: alice@jailtrace.test\nSubject: hello\n\nbody\n",
    )
    .unwrap();
    common::success(
        Command::new("chown")
            .args(["-R", "mail:mail"])
            .arg(d.join("home")),
    );
    std::fs::write(d.join("users"), "alice:{PLAIN}secret\n").unwrap();
    let conf = d.join("dovecot.conf");
    std::fs::write(
        &conf,
        format!(
            "protocols = imap\nfirst_valid_uid = 8\nfirst_valid_gid = 8\nlisten = 127.0.0.1\n\
             base_dir = {d}/base\nstate_dir = {d}/state\nlog_path = /dev/stderr\nssl = no\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    \
             port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid=mail gid=mail home={d}/home\n}}\n",
            d = d.display()
        ),
    )
    .unwrap();
    let daemon = ["/usr/sbin/dovecot", "-F", "-c", &s(&conf)];
    let client = strings(&[
        "curl",
        "-s",
        &format!("imap://alice:secret@127.0.0.1:{port}/INBOX?ALL"),
    ]);
    // An earlier session built the index, as on a server in use.
    let mut plain = Command::new(daemon[0]);
    plain.args(&daemon[1..]);
    let mut held = Held::start(&mut plain, &d.join("plain.log"));
    assert_eq!(ask(&client, &mut held), "* SEARCH 1");
    held.stop();

    let record = |tree: bool, out: &Path| {
        let mut rec = common::jailtrace();
        rec.arg("record").arg("-o").arg(out);
        if tree {
            rec.arg("--tree").arg(&maildir);
        }
        rec.arg("--").args(daemon);
        let mut held = Held::start(&mut rec, &out.with_extension("log"));
        let answer = ask(&client, &mut held);
        (answer, held.stop())
    };
    let serve = |manifest: &Path, jail: &Path| {
        let out = common::output(
            common::jailtrace()
                .arg("materialize")
                .arg(manifest)
                .arg(jail),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut run = common::jailtrace();
        run.args(["run", "--allow-root", "--manifest"])
            .arg(manifest)
            .arg(jail)
            .arg("--")
            .args(daemon);
        let mut held = Held::start(&mut run, &jail.with_extension("log"));
        let answer = ask(&client, &mut held);
        held.stop();
        (answer, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // Without --tree: the message is lost, and materialize says where.
    assert_eq!(record(false, &d.join("m.json")).0, "* SEARCH 1");
    let (answer, summary) = serve(&d.join("m.json"), &d.join("jail1"));
    assert_eq!(answer, "* SEARCH", "the jail served a message it lacks?");
    assert!(
        summary.contains(&format!("--tree {}", s(&maildir))),
        "{summary}"
    );
    // With it: served as on the host.
    let (answer, status) = record(true, &d.join("mt.json"));
    assert_eq!(answer, "* SEARCH 1");
    let (answer, summary) = serve(&d.join("mt.json"), &d.join("jail2"));
    assert_eq!(answer, "* SEARCH 1", "{summary}");
    assert!(summary.contains("objects copied whole"), "{summary}");
    // And from its bwrap export, which binds the tree from the host.
    let case = Case {
        name: "dovecot",
        dir: d,
        daemon: strings(&daemon),
        record_as: None,
        run_as: vec!["--allow-root"],
        client,
        expect: "* SEARCH 1",
        bwrap: Some(&[]),
    };
    serve_from_bwrap(&case, &d.join("mt.json"), &[], "* SEARCH 1", status);
    let script = std::fs::read_to_string(d.join("sandbox.sh")).unwrap();
    assert!(
        script.contains(&format!("--bind {} ", s(&maildir))),
        "{script}"
    );
}

// The second suite (issue 21): daemons nobody tuned jailtrace for, each
// served from its first jail and from its bwrap export, with the recorded
// command unchanged.

/// A helper server on the host (a proxy's origin, a pool's front), stopped
/// when dropped: SIGTERM first, so that nginx's master takes its workers
/// with it (a SIGKILLed master leaves them serving its port).
struct Origin(Child);

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory `user` owns, for a daemon that writes there after its drop.
fn owned_dir(dir: &Path, name: &str, user: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir(&d).unwrap();
    let u = User::from_name(user).unwrap().expect("user exists");
    nix::unistd::chown(&d, Some(u.uid), Some(u.gid)).unwrap();
    d
}

#[test]
fn apache2_serves_curl_from_its_first_jail() {
    let name = "apache2_serves_curl_from_its_first_jail";
    if !ready(name, &["curl", "/usr/sbin/apache2"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let www = www(dir);
    let port = 21120;
    let cfg = dir.join("apache2.conf");
    std::fs::write(
        &cfg,
        format!(
            "ServerRoot {d}\nServerName localhost\nListen 127.0.0.1:{port}\n\
             LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
             LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
             User www-data\nGroup www-data\nDefaultRuntimeDir {d}\nPidFile {d}/apache2.pid\n\
             ErrorLog {d}/error.log\nDocumentRoot {w}\n",
            d = dir.display(),
            w = www.display()
        ),
    )
    .unwrap();
    record_materialize_run(&Case {
        name: "apache2",
        dir,
        daemon: vec![
            "/usr/sbin/apache2".into(),
            "-DFOREGROUND".into(),
            "-f".into(),
            s(&cfg),
        ],
        record_as: None,
        // The root parent opens its logs and binds; children run as
        // www-data.
        run_as: vec!["--allow-root"],
        client: curl(port),
        expect: "hello from the jail",
        bwrap: Some(&[]),
    });
}

#[test]
fn named_answers_dig_from_its_first_jail() {
    let name = "named_answers_dig_from_its_first_jail";
    if !ready(name, &["dig", "/usr/sbin/named"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let run = owned_dir(dir, "run", "bind");
    let port = 21121;
    let zone = dir.join("db.jailtrace.test");
    std::fs::write(
        &zone,
        "$TTL 300\n@ IN SOA ns.jailtrace.test. admin.jailtrace.test. 1 3600 600 86400 300\n\
         @ IN NS ns\nns IN A 127.0.0.1\nwww IN A 192.0.2.7\n",
    )
    .unwrap();
    let cfg = dir.join("named.conf");
    // Its session key in its own directory: /run/named is the package's.
    std::fs::write(
        &cfg,
        format!(
            "options {{ directory \"{r}\"; listen-on port {port} {{ 127.0.0.1; }}; \
             listen-on-v6 {{ none; }}; pid-file none; session-keyfile \"{r}/session.key\"; \
             recursion no; dnssec-validation no; }};\ncontrols {{ }};\n\
             zone \"jailtrace.test\" {{ type primary; file \"{z}\"; }};\n",
            r = run.display(),
            z = zone.display()
        ),
    )
    .unwrap();
    record_materialize_run(&Case {
        name: "named",
        dir,
        // Started as root, it drops to bind itself (-u), unchanged.
        daemon: vec![
            "/usr/sbin/named".into(),
            "-g".into(),
            "-u".into(),
            "bind".into(),
            "-4".into(),
            "-n".into(),
            "1".into(),
            "-c".into(),
            s(&cfg),
        ],
        record_as: None,
        run_as: vec!["--allow-root"],
        client: dig(port),
        expect: "192.0.2.7",
        bwrap: Some(&[]),
    });
}

#[test]
fn squid_proxies_curl_from_its_first_jail() {
    let name = "squid_proxies_curl_from_its_first_jail";
    if !ready(name, &["curl", "python3", "/usr/sbin/squid"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let www = www(dir);
    let logs = owned_dir(dir, "log", "proxy");
    let (port, origin_port) = (21122, 21123);
    let _origin = Origin(
        Command::new("python3")
            .args(["-m", "http.server", "-b", "127.0.0.1", "-d"])
            .arg(&www)
            .arg(origin_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    );
    let cfg = dir.join("squid.conf");
    // No pinger and no shutdown grace: squid then stops within seconds of
    // SIGTERM, as a test needs.
    std::fs::write(
        &cfg,
        format!(
            "http_port 127.0.0.1:{port}\ncache_effective_user proxy\npid_filename {d}/squid.pid\n\
             cache_log {l}/cache.log\naccess_log none\ncache deny all\ncoredump_dir {l}\n\
             netdb_filename none\npinger_enable off\nshutdown_lifetime 0 seconds\n\
             http_access allow localhost\nhttp_access deny all\n",
            d = dir.display(),
            l = logs.display()
        ),
    )
    .unwrap();
    record_materialize_run(&Case {
        name: "squid",
        dir,
        daemon: vec!["/usr/sbin/squid".into(), "-N".into(), "-f".into(), s(&cfg)],
        record_as: None,
        // It starts as root and becomes proxy (cache_effective_user).
        run_as: vec!["--allow-root"],
        client: strings(&[
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "-x",
            &format!("http://127.0.0.1:{port}"),
            &format!("http://127.0.0.1:{origin_port}/hello.txt"),
        ]),
        expect: "hello from the jail",
        bwrap: Some(&[]),
    });
}

#[test]
fn mariadb_serves_its_client_from_its_first_jail() {
    let name = "mariadb_serves_its_client_from_its_first_jail";
    if !ready(
        name,
        &["mariadb", "mariadb-install-db", "/usr/sbin/mariadbd"],
    ) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let data = owned_dir(dir, "data", "mysql");
    let run = owned_dir(dir, "run", "mysql");
    let port = 21125;
    // A 4 MB redo log keeps the data directory small (22 MB, not 114).
    let redo = "--innodb-log-file-size=4M";
    common::success(
        Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([redo, "--user=mysql", "--skip-test-db"])
            .arg("--auth-root-authentication-method=normal")
            .stdout(Stdio::null()),
    );
    record_materialize_run(&Case {
        name: "mariadb",
        dir,
        daemon: vec![
            "/usr/sbin/mariadbd".into(),
            "--no-defaults".into(),
            format!("--datadir={}", data.display()),
            redo.into(),
            format!("--socket={}/mysqld.sock", run.display()),
            format!("--pid-file={}/mariadbd.pid", run.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            "--skip-name-resolve".into(),
            "--user=mysql".into(),
        ],
        record_as: None,
        // Started as root, it becomes mysql (--user) itself.
        run_as: vec!["--allow-root"],
        client: strings(&[
            "mariadb",
            "--no-defaults",
            "-h",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-u",
            "root",
            "-N",
            "-B",
            "-e",
            "select 6*7",
        ]),
        expect: "42",
        bwrap: Some(&[]),
    });
}

#[test]
fn node_serves_curl_from_its_first_jail() {
    let name = "node_serves_curl_from_its_first_jail";
    if !ready(name, &["curl", "node"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let port = 21130;
    let script = dir.join("server.js");
    std::fs::write(
        &script,
        format!(
            "require('http').createServer((q, r) => r.end('hello from the jail\\n'))\
             .listen({port}, '127.0.0.1');\n"
        ),
    )
    .unwrap();
    let node = which("node");
    record_materialize_run(&Case {
        name: "node",
        dir,
        // It dies of SIGTERM (status 143) everywhere: no handler.
        daemon: vec![node, s(&script)],
        record_as: None,
        run_as: vec!["--allow-root"],
        client: curl_root(port),
        expect: "hello from the jail",
        bwrap: Some(&[]),
    });
}

#[test]
fn java_serves_curl_from_its_first_jail() {
    let name = "java_serves_curl_from_its_first_jail";
    if !ready(name, &["curl", "java"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let port = 21131;
    let source = dir.join("Hello.java");
    // A single-file source launch: the JRE compiles it (jdk.compiler).
    std::fs::write(
        &source,
        "import com.sun.net.httpserver.HttpServer;\n\
         import java.net.InetSocketAddress;\n\
         public class Hello {\n\
         \x20   public static void main(String[] a) throws Exception {\n\
         \x20       HttpServer s = HttpServer.create(\n\
         \x20           new InetSocketAddress(\"127.0.0.1\", Integer.parseInt(a[0])), 0);\n\
         \x20       s.createContext(\"/\", x -> {\n\
         \x20           byte[] b = \"hello from the jail\\n\".getBytes();\n\
         \x20           x.sendResponseHeaders(200, b.length);\n\
         \x20           x.getResponseBody().write(b);\n\
         \x20           x.close();\n\
         \x20       });\n\
         \x20       s.start();\n\
         \x20   }\n\
         }\n",
    )
    .unwrap();
    record_materialize_run(&Case {
        name: "java",
        dir,
        daemon: vec![which("java"), s(&source), port.to_string()],
        record_as: None,
        run_as: vec!["--allow-root"],
        client: curl_root(port),
        expect: "hello from the jail",
        bwrap: Some(&[]),
    });
}

/// php-fpm serves a PHP page to nginx, which runs on the host as the
/// client's front (over TCP: an unchanged nginx reaches the jailed pool).
#[test]
fn php_fpm_serves_nginx_from_its_first_jail() {
    let name = "php_fpm_serves_nginx_from_its_first_jail";
    if !ready(name, &["curl", "/usr/sbin/nginx", "/usr/sbin/php-fpm8.2"]) {
        return;
    }
    let t = open_tempdir();
    let dir = t.path();
    let www = www(dir);
    std::fs::write(
        www.join("hello.php"),
        "<?php echo \"hello from php \", 6*7, \"\\n\";\n",
    )
    .unwrap();
    let (fpm_port, web_port) = (21132, 21133);
    let fpm_conf = dir.join("php-fpm.conf");
    std::fs::write(
        &fpm_conf,
        format!(
            "[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/php-fpm.log\ndaemonize = no\n\
             [www]\nuser = www-data\ngroup = www-data\nlisten = 127.0.0.1:{fpm_port}\n\
             pm = static\npm.max_children = 1\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let web = dir.join("web");
    std::fs::create_dir(&web).unwrap();
    let nginx_conf = web.join("nginx.conf");
    std::fs::write(
        &nginx_conf,
        format!(
            "worker_processes 1;\nerror_log {w}/error.log;\npid {w}/nginx.pid;\n\
             events {{ worker_connections 16; }}\n\
             http {{ access_log off; server {{ listen 127.0.0.1:{web_port}; root {r};\n\
             location ~ \\.php$ {{ include /etc/nginx/fastcgi_params;\n\
             fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
             fastcgi_pass 127.0.0.1:{fpm_port}; }} }} }}\n",
            w = web.display(),
            r = www.display()
        ),
    )
    .unwrap();
    let _front = Origin(
        Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&web)
            .arg("-c")
            .arg(&nginx_conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx"),
    );
    record_materialize_run(&Case {
        name: "php-fpm",
        dir,
        // The master starts as root; its pool runs as www-data.
        daemon: vec![
            "/usr/sbin/php-fpm8.2".into(),
            "-F".into(),
            "-y".into(),
            s(&fpm_conf),
        ],
        record_as: None,
        run_as: vec!["--allow-root"],
        client: strings(&[
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{web_port}/hello.php"),
        ]),
        expect: "hello from php 42",
        bwrap: Some(&[]),
    });
}

/// `program` found on PATH, as a service manager's unit names it.
fn which(program: &str) -> String {
    let out = common::output(Command::new("sh").args(["-c", &format!("command -v {program}")]));
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!p.is_empty(), "{program} is not on PATH");
    p
}

/// dig of the test's name, at a server on `port`.
fn dig(port: u16) -> Vec<String> {
    strings(&[
        "dig",
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+short",
        "+time=2",
        "+tries=1",
        "www.jailtrace.test",
    ])
}

/// curl of the root page.
fn curl_root(port: u16) -> Vec<String> {
    strings(&[
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "5",
        &format!("http://127.0.0.1:{port}/"),
    ])
}

/// exim4, the MTA Debian will not install beside postfix: its package is
/// unpacked into a directory the tests own (`apt-get download`, as the
/// kernel matrix fetches its kernels) and run from there. Its user,
/// Debian-exim, which the binary looks up before it reads any
/// configuration, exists only in a private mount namespace, where the
/// test's passwd and group are bound over the host's. Recorded as root
/// (it drops to mail for deliveries), it accepts a message over SMTP from
/// its first jail and from its bwrap export, and stops on SIGTERM.
#[test]
fn exim4_accepts_mail_from_its_first_jail() {
    let name = "exim4_accepts_mail_from_its_first_jail";
    if !ready(
        name,
        &["apt-get", "dpkg-deb", "unshare", "python3", "bwrap"],
    ) {
        return;
    }
    let exim = unpacked_exim();
    let t = open_tempdir();
    let d = t.path();
    let port = 21134;
    for sub in ["spool", "log", "mail"] {
        owned_dir(d, sub, "mail");
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let group = std::fs::read_to_string("/etc/group").unwrap();
    std::fs::write(
        d.join("passwd"),
        format!("{passwd}Debian-exim:x:2999:2999::/var/spool/exim4:/usr/sbin/nologin\n"),
    )
    .unwrap();
    std::fs::write(d.join("group"), format!("{group}Debian-exim:x:2999:\n")).unwrap();
    // The delivery file is fixed: 4.96 refuses a tainted $local_part in it.
    std::fs::write(
        d.join("exim.conf"),
        format!(
            "exim_path = {exim}\ntls_advertise_hosts =\nkeep_environment =\n\
             exim_user = mail\nexim_group = mail\nprimary_hostname = jailtrace.test\n\
             domainlist local_domains = jailtrace.test\nqualify_domain = jailtrace.test\n\
             local_interfaces = 127.0.0.1\nspool_directory = {d}/spool\n\
             log_file_path = {d}/log/%slog\npid_file_path = {d}/exim.pid\n\
             acl_smtp_rcpt = acl_check_rcpt\n\
             begin acl\nacl_check_rcpt:\n  accept domains = +local_domains\n  deny\n\
             begin routers\nlocal:\n  driver = accept\n  domains = +local_domains\n  \
             transport = tofile\n\
             begin transports\ntofile:\n  driver = appendfile\n  file = {d}/mail/inbox\n  \
             user = mail\n  group = mail\n  mode = 0644\n",
            d = d.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("client.py"),
        "import smtplib, sys\n\
         s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=5)\n\
         s.ehlo()\n\
         s.mail('a@example.test')\n\
         s.rcpt('alice@jailtrace.test')\n\
         print(s.data('Subject: hi\\r\\n\\r\\nhello\\r\\n')[0])\n\
         s.quit()\n",
    )
    .unwrap();
    // The daemon under jailtrace (or the sandbox script) in the
    // background, the client until it answers, then SIGTERM.
    let script = r#"
set -e
mount --bind "$D/passwd" /etc/passwd
mount --bind "$D/group" /etc/group
serve() { # LABEL, the command...
    label=$1; shift
    "$@" > "$D/$label.log" 2>&1 &
    pid=$!
    answer=
    for i in $(seq 150); do
        answer=$(python3 "$D/client.py" "$PORT" 2>/dev/null) && [ -n "$answer" ] && break
        answer=
        kill -0 $pid 2>/dev/null || break
        sleep 0.2
    done
    kill -TERM $pid 2>/dev/null || true
    status=0
    wait $pid || status=$?
    echo "$label: answer=$answer status=$status"
}
DAEMON="$EXIM -bdf -oX $PORT -C $D/exim.conf"
serve host "$JT" record -o "$D/m.json" -- $DAEMON
"$JT" materialize "$D/m.json" "$D/jail" > "$D/materialize.log"
serve jail "$JT" run --allow-root --manifest "$D/m.json" "$D/jail" -- $DAEMON
"$JT" export --format bwrap --script --share-net --writable "$D" -o "$D/sandbox.sh" "$D/m.json"
cd /
serve bwrap "$D/sandbox.sh"
"#;
    let out = common::output(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .env("JT", env!("CARGO_BIN_EXE_jailtrace"))
            .env("EXIM", &exim)
            .env("D", d)
            .env("PORT", port.to_string()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let logs = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    let ctx = format!(
        "{text}\n{}\nhost.log:\n{}\njail.log:\n{}\nbwrap.log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs("host.log"),
        logs("jail.log"),
        logs("bwrap.log")
    );
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    // exim stops on SIGTERM under record, run and the script: with status
    // 0, or 143 (ended by the signal), as serve_from_bwrap judges the
    // other daemons' stops.
    for label in ["host", "jail", "bwrap"] {
        assert!(
            text.contains(&format!("{label}: answer=250 status=0"))
                || text.contains(&format!("{label}: answer=250 status=143")),
            "{label}: {ctx}"
        );
    }
    // The host's inbox got the messages of the host run and the sandbox
    // (bound from the host); the jail's run delivered into the jail.
    let inbox = logs("mail/inbox");
    assert_eq!(inbox.matches("Subject: hi").count(), 2, "{inbox}\n{ctx}");
    let jailed = std::fs::read_to_string(
        d.join("jail")
            .join(d.strip_prefix("/").unwrap())
            .join("mail/inbox"),
    )
    .unwrap_or_default();
    assert_eq!(jailed.matches("Subject: hi").count(), 1, "{ctx}");
}

/// The exim4 binary of Debian's exim4-daemon-light, unpacked once under
/// the tests' cache.
fn unpacked_exim() -> String {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exim4");
    let bin = cache.join("root/usr/sbin/exim4");
    if !bin.exists() {
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(cache.join("debs")).unwrap();
        common::success(
            Command::new("apt-get")
                .args(["download", "exim4-daemon-light"])
                .current_dir(cache.join("debs")),
        );
        // Into a directory of its own first, so that an interrupted run
        // leaves nothing that looks unpacked.
        let part = cache.join("root.part");
        for deb in std::fs::read_dir(cache.join("debs")).unwrap() {
            common::success(
                Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(deb.unwrap().path())
                    .arg(&part),
            );
        }
        std::fs::rename(&part, cache.join("root")).unwrap();
    }
    // Its libraries must be the machine's (the README's package line).
    let ldd = common::output(Command::new("ldd").arg(&bin));
    let missing = String::from_utf8_lossy(&ldd.stdout);
    assert!(
        !missing.contains("not found"),
        "exim4 lacks libraries (install them with the README's package line):\n{missing}"
    );
    s(&bin)
}

/// With `--ephemeral`, a service that starts as root gets private
/// directories the script makes on the host with their owners (bwrap
/// would make them root's): lighttpd, once it is www-data, appends to its
/// private copy of its error log, and the host's log is left as the
/// recording left it.
#[test]
fn lighttpd_serves_curl_from_an_ephemeral_export() {
    let name = "lighttpd_serves_curl_from_an_ephemeral_export";
    if !ready(name, &["curl", "/usr/sbin/lighttpd", "bwrap"]) {
        return;
    }
    let t = open_tempdir();
    let mut case = lighttpd_case(t.path(), 21135);
    case.bwrap = Some(&["--ephemeral"]);
    // A log that exists, www-data's: the sandbox gets a copy with its owner.
    let log = t.path().join("log/error.log");
    std::fs::write(&log, "an earlier line\n").unwrap();
    let w = User::from_name("www-data").unwrap().unwrap();
    nix::unistd::chown(&log, Some(w.uid), Some(w.gid)).unwrap();
    record_materialize_run(&case);
    let log = std::fs::read_to_string(t.path().join("log/error.log")).unwrap();
    assert_eq!(
        log.matches("server started").count(),
        1,
        "the sandbox wrote the host's log:\n{log}"
    );
    let script = std::fs::read_to_string(t.path().join("sandbox.sh")).unwrap();
    assert!(script.contains("stage_file "), "{script}");
}
