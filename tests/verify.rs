//! `jailtrace verify`: run in the jail under the tracer, name what is
//! missing, and complete the jail with --fix.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{jailtrace, output, require_root, success, tempdir};
use serde_json::Value;

const PY: &str = "import json, sqlite3, decimal; print(json.dumps([1]))";

/// Records `argv` on the host, drops the entries whose path matches
/// `drop`, and materializes the rest into `jail`. Returns the manifest path.
fn incomplete_jail(dir: &Path, argv: &[&str], drop: &str) -> std::path::PathBuf {
    let m_path = dir.join("m.json");
    success(
        jailtrace()
            .current_dir(dir)
            .args(["record", "-o"])
            .arg(&m_path)
            .arg("--")
            .args(argv),
    );
    let mut m: Value = serde_json::from_slice(&std::fs::read(&m_path).unwrap()).unwrap();
    let re = regex::Regex::new(drop).unwrap();
    let entries = m["entries"].as_array_mut().unwrap();
    let before = entries.len();
    entries.retain(|e| !re.is_match(e["path"].as_str().unwrap()));
    assert!(entries.len() < before, "nothing matched {drop}");
    std::fs::write(&m_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    success(
        jailtrace()
            .arg("materialize")
            .arg(&m_path)
            .arg(dir.join("jail")),
    );
    m_path
}

/// Records `argv` in `dir` and materializes the whole recording into
/// `dir/jail`; returns the manifest's path and the jail.
fn complete_jail(dir: &Path, argv: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let m_path = dir.join("m.json");
    success(
        jailtrace()
            .current_dir(dir)
            .args(["record", "-o"])
            .arg(&m_path)
            .arg("--")
            .args(argv),
    );
    let jail = dir.join("jail");
    success(jailtrace().arg("materialize").arg(&m_path).arg(&jail));
    (m_path, jail)
}

#[test]
fn names_missing_python_modules_and_fix_completes_the_jail() {
    if !require_root("names_missing_python_modules_and_fix_completes_the_jail") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let jail = d.join("jail");
    let argv = ["/usr/bin/python3", "-c", PY];
    let m = incomplete_jail(d, &argv, r"/python3\.\d+/(json(/|$)|decimal\.py$)");
    let host = success(std::process::Command::new(argv[0]).args(&argv[1..]));

    // In the jail it fails. Without --host-reference nothing runs outside
    // the jail, and verify says why it cannot tell more.
    let out = output(
        jailtrace()
            .args(["verify", "--user", "nobody"])
            .arg(&jail)
            .arg("--")
            .args(argv),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("--host-reference"), "{text}");
    // With it, verify names the modules.
    let out = output(
        jailtrace()
            .args(["verify", "--host-reference", "--user", "nobody"])
            .arg(&jail)
            .arg("--")
            .args(argv),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for module in ["json/__init__.py", "json/decoder.py", "decimal.py"] {
        assert!(text.contains(module), "{module} not named:\n{text}");
    }

    // --fix completes it, and says so in a later round.
    let out = output(
        jailtrace()
            .args(["verify", "--fix", "--host-reference", "--manifest"])
            .arg(&m)
            .args(["--user", "nobody"])
            .arg(&jail)
            .arg("--")
            .args(argv),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("complete: nothing the command looked for is missing"),
        "{text}"
    );
    let manifest: Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    assert!(manifest.to_string().contains("/json/decoder.py"));

    // The program now runs in the jail as on the host.
    let jailed = success(
        jailtrace()
            .args(["run", "--user", "nobody"])
            .arg(&jail)
            .arg("--")
            .args(argv),
    );
    assert_eq!(jailed, host);
}

#[test]
fn names_a_missing_elf_interpreter_and_fixes_it() {
    if !require_root("names_a_missing_elf_interpreter_and_fixes_it") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let jail = d.join("jail");
    let m = incomplete_jail(d, &["/bin/true"], "ld-linux");
    let out = output(
        jailtrace()
            .args(["verify", "--user", "nobody"])
            .arg(&jail)
            .args(["--", "/bin/true"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ld-linux-x86-64.so.2 (the interpreter of /bin/true"),
        "{text}"
    );
    success(
        jailtrace()
            .args(["verify", "--fix", "--manifest"])
            .arg(&m)
            .args(["--user", "nobody"])
            .arg(&jail)
            .args(["--", "/bin/true"]),
    );
    success(
        jailtrace()
            .args(["run", "--user", "nobody"])
            .arg(&jail)
            .args(["--", "/bin/true"]),
    );
}

#[test]
fn a_complete_jail_verifies_clean() {
    if !require_root("a_complete_jail_verifies_clean") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let m_path = d.join("m.json");
    success(
        jailtrace()
            .current_dir(d)
            .args(["record", "-o"])
            .arg(&m_path)
            .args(["--", "ls", "/"]),
    );
    success(
        jailtrace()
            .arg("materialize")
            .arg(&m_path)
            .arg(d.join("jail")),
    );
    let out = output(
        jailtrace()
            .args(["verify", "--user", "nobody", "--manifest"])
            .arg(&m_path)
            .arg(d.join("jail"))
            .args(["--", "ls", "/"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("complete:"), "{text}");
}

#[test]
fn fix_without_a_manifest_is_refused() {
    let tmp = tempdir();
    let out = output(
        jailtrace()
            .args(["verify", "--fix"])
            .arg(tmp.path())
            .args(["--", "true"]),
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fix needs --manifest"));
}

#[test]
fn the_host_reference_run_is_made_as_the_jail_user() {
    if !require_root("the_host_reference_run_is_made_as_the_jail_user") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path().join("shared");
    std::fs::create_dir(&d).unwrap();
    // Writable by nobody, so that both runs can leave their uid there.
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(d.join("marker"), "").unwrap();
    let ds = d.to_str().unwrap();
    // `ls | grep` finds the marker through a listing: in a jail without it
    // the command fails and no failed lookup says why.
    let script = format!("id -u > {ds}/who; ls {ds} | grep -q marker && cat {ds}/marker");
    let argv = ["/bin/sh", "-c", script.as_str()];
    let m = tmp.path().join("m.json");
    success(
        jailtrace()
            .args(["record", "-o"])
            .arg(&m)
            .arg("--")
            .args(argv),
    );
    success(
        jailtrace()
            .arg("materialize")
            .arg(&m)
            .arg(tmp.path().join("jail")),
    );
    std::fs::remove_file(
        tmp.path()
            .join("jail")
            .join(d.strip_prefix("/").unwrap())
            .join("marker"),
    )
    .unwrap();
    std::fs::remove_file(d.join("who")).unwrap();
    let out = output(
        jailtrace()
            .args([
                "verify",
                "--host-reference",
                "--user",
                "nobody",
                "--manifest",
            ])
            .arg(&m)
            .arg(tmp.path().join("jail"))
            .arg("--")
            .args(argv),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("missing: {ds}/marker (used on the host)")),
        "{text}"
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(
        std::fs::read_to_string(d.join("who")).unwrap().trim(),
        nobody.to_string()
    );
}

#[test]
fn fix_never_copies_what_the_jail_user_cannot_read_or_unsafe_devices() {
    if !require_root("fix_never_copies_what_the_jail_user_cannot_read_or_unsafe_devices") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let jail = d.join("jail");
    let m_path = d.join("m.json");
    success(
        jailtrace()
            .current_dir(d)
            .args(["record", "-o"])
            .arg(&m_path)
            .args(["--", "/bin/sh", "-c", "cat /etc/hostname"]),
    );
    success(jailtrace().arg("materialize").arg(&m_path).arg(&jail));
    let probe = "cat /etc/shadow; cat /dev/kmsg; exit 0";
    let out = output(
        jailtrace()
            .args(["verify", "--fix", "--user", "nobody", "--manifest"])
            .arg(&m_path)
            .arg(&jail)
            .args(["--", "/bin/sh", "-c", probe]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("missing: /etc/shadow"), "{text}");
    assert!(text.contains("not added: /etc/shadow"), "{text}");
    assert!(text.contains("not added: /dev/kmsg"), "{text}");
    assert!(std::fs::symlink_metadata(jail.join("etc/shadow")).is_err());
    assert!(std::fs::symlink_metadata(jail.join("dev/kmsg")).is_err());
    assert!(!std::fs::read_to_string(&m_path)
        .unwrap()
        .contains("/etc/shadow\""));
}

#[test]
fn a_jail_symlink_to_a_host_fifo_is_never_opened() {
    if !require_root("a_jail_symlink_to_a_host_fifo_is_never_opened") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let jail = d.join("jail");
    let m = incomplete_jail(d, &["/bin/true"], "ld-linux");
    let _ = m;
    // The jail's /bin/true now points at a FIFO on the host: opening it
    // as root would block (and a device could be worse).
    let fifo = d.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let t = std::fs::canonicalize("/bin/true").unwrap();
    let inside = jail.join(t.strip_prefix("/").unwrap());
    std::fs::remove_file(&inside).unwrap();
    std::os::unix::fs::symlink(&fifo, &inside).unwrap();
    let mut child = jailtrace()
        .args(["verify", "--user", "nobody"])
        .arg(&jail)
        .args(["--", "/bin/true"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(1));
            break;
        }
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("verify blocked on a FIFO outside the jail");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Verify's output, its exit status, and how many rounds it took.
fn verify_fix(m: &Path, jail: &Path, opts: &[&str], argv: &[&str]) -> (Option<i32>, String, usize) {
    let out = output(
        jailtrace()
            .args(["verify", "--fix", "--manifest"])
            .arg(m)
            .arg(jail)
            .args(opts)
            .arg("--")
            .args(argv),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rounds = text
        .lines()
        .filter(|l| l.starts_with("verify round"))
        .count();
    (out.status.code(), text, rounds)
}

/// A state file the program opens with O_RDWR|O_CREAT (postgres's commit
/// log): the jail lacks it, so the jailed open makes an empty one and the
/// program fails with no failed lookup to explain it. --fix runs the
/// command on the host by itself, sees the state file, and puts it back.
#[test]
fn fix_restores_state_an_ocreat_open_replaced_with_an_empty_file() {
    if !require_root("fix_restores_state_an_ocreat_open_replaced_with_an_empty_file") {
        return;
    }
    let bin = common::fixture("verify_state", &[]);
    let tmp = tempdir();
    let d = tmp.path();
    let state = d.join("state");
    std::fs::write(&state, "checkpoint 42\n").unwrap();
    let argv = [bin.to_str().unwrap(), state.to_str().unwrap()];
    let m = incomplete_jail(d, &argv, r"/state$");
    let jail = d.join("jail");
    // As root, as postgres is for its own files: the O_CREAT open succeeds.
    let (code, text, rounds) = verify_fix(&m, &jail, &["--allow-root"], &argv);
    assert_eq!((code, rounds), (Some(0), 2), "{text}");
    assert!(text.contains("no failed lookup explains it"), "{text}");
    assert!(text.contains("complete:"), "{text}");
    let inside = jail.join(state.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_to_string(inside).unwrap(), "checkpoint 42\n");
}

/// As nobody, a shell's `>/dev/null` in a jail without /dev/null fails with
/// EACCES (nobody may not create in /dev), not ENOENT: verify names the
/// device, says it is in the safe set, and --fix creates it.
#[test]
fn fix_names_and_creates_dev_null_that_nobody_could_not_create() {
    if !require_root("fix_names_and_creates_dev_null_that_nobody_could_not_create") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let argv = ["/bin/sh", "-c", "echo hidden >/dev/null && echo shown"];
    let m = incomplete_jail(d, &argv, r"^/dev/null$");
    let jail = d.join("jail");
    assert!(!jail.join("dev/null").exists());
    let (code, text, rounds) = verify_fix(&m, &jail, &["--user", "nobody"], &argv);
    assert_eq!((code, rounds), (Some(0), 2), "{text}");
    assert!(
        text.contains("device: /dev/null (in the safe set"),
        "{text}"
    );
    assert!(!text.contains("--allow-device /dev/null"), "{text}");
    let md = std::fs::metadata(jail.join("dev/null")).unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), nix::sys::stat::makedev(1, 3));
}

/// A failure the host cannot mend (the program insists on root, and the
/// jail runs it as nobody) is the only case verify calls incomplete.
#[test]
fn fix_says_cannot_be_completed_only_when_true() {
    if !require_root("fix_says_cannot_be_completed_only_when_true") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let argv = ["/bin/sh", "-c", "test \"$(id -u)\" = 0"];
    let m = incomplete_jail(d, &argv, r"^/etc/ld\.so\.preload$");
    let jail = d.join("jail");
    let (code, text, rounds) = verify_fix(&m, &jail, &["--user", "nobody"], &argv);
    assert_eq!((code, rounds), (Some(1), 1), "{text}");
    assert!(text.contains("cannot be completed from the host"), "{text}");
}

/// A jailed program that only looks for a setuid program: `--fix` copies
/// it (the lookup failed, the host has it), but without its setuid bit,
/// and says so; only `materialize --keep-setuid` carries one.
#[test]
fn fix_never_adds_a_setuid_bit() {
    if !require_root("fix_never_adds_a_setuid_bit") {
        return;
    }
    let suid = "/usr/bin/mount";
    let host = std::fs::metadata(suid).unwrap();
    assert_ne!(host.mode() & 0o4000, 0, "{suid} is setuid on the host");
    let tmp = tempdir();
    let d = tmp.path();
    let argv = ["/bin/sh", "-c", "test -e /usr/bin/mount"];
    let m = incomplete_jail(d, &argv, r"^/usr/bin/mount$");
    let jail = d.join("jail");
    let (code, text, _) = verify_fix(&m, &jail, &["--user", "nobody"], &argv);
    assert_eq!(code, Some(0), "{text}");
    let inside = std::fs::symlink_metadata(jail.join("usr/bin/mount")).unwrap();
    assert_eq!(inside.mode() & 0o6000, 0, "{text}");
    assert!(text.contains("setuid bit not carried"), "{text}");
}

/// A state file the program found, gone from a working jail: the program
/// opens it with O_CREAT, so in the jail it makes an empty one and
/// succeeds. `--fix` restores the file from the host before it runs
/// anything, so the content is not lost to a run that "completes".
#[test]
fn fix_restores_lost_content_before_the_run() {
    if !require_root("fix_restores_lost_content_before_the_run") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let state = d.join("state");
    std::fs::write(&state, "checkpoint 42\n").unwrap();
    let script = format!(": >> {}", state.display());
    let argv = ["/bin/sh", "-c", script.as_str()];
    let (m_path, jail) = complete_jail(d, &argv);
    let inside = jail.join(state.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "checkpoint 42\n");
    std::fs::remove_file(&inside).unwrap();
    let (code, text, _) = verify_fix(&m_path, &jail, &["--allow-root"], &argv);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "restoring before the run: {} (missing in the jail)",
            state.display()
        )),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "checkpoint 42\n");
    // Emptied by such a run: restored the same way.
    std::fs::write(&inside, "").unwrap();
    let (code, text, _) = verify_fix(&m_path, &jail, &["--allow-root"], &argv);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("(empty in the jail, not on the host)"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "checkpoint 42\n");
}

/// A file the recording only looked up is in the jail without its bytes;
/// a jailed run that reads it shows it needs them, and `--fix` copies
/// them (the manifest now says it was read).
#[test]
fn fix_copies_the_bytes_of_a_file_the_jailed_run_reads() {
    if !require_root("fix_copies_the_bytes_of_a_file_the_jailed_run_reads") {
        return;
    }
    let tmp = tempdir();
    let d = tmp.path();
    let conf = d.join("app.conf");
    std::fs::write(&conf, "mode=fast\n").unwrap();
    let looked = format!("test -e {}", conf.display());
    let (m, jail) = complete_jail(d, &["/bin/sh", "-c", looked.as_str()]);
    let inside = jail.join(conf.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(&inside).unwrap(), vec![0u8; 10]);
    let reads = format!("read x < {} && test \"$x\" = mode=fast", conf.display());
    let argv = ["/bin/sh", "-c", reads.as_str()];
    let (code, text, rounds) = verify_fix(&m, &jail, &["--allow-root"], &argv);
    assert_eq!((code, rounds), (Some(0), 2), "{text}");
    assert!(
        text.contains(&format!("missing: {} (its bytes", conf.display())),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "mode=fast\n");
}

/// A /proc read that the program may not make (nobody reading PID 1's
/// `io`) fails on the host too, and under `run`'s `hidepid=invisible` it
/// fails with ENOENT: with proc mounted, that is no "proc is needed"
/// (issue 21), and a jail that serves the program verifies clean.
#[test]
fn a_refused_proc_read_with_proc_mounted_is_no_finding() {
    if !require_root("a_refused_proc_read_with_proc_mounted_is_no_finding") {
        return;
    }
    let tmp = tempdir();
    let argv = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--",
        "/bin/sh",
        "-c",
        "cat /proc/1/io; true",
    ];
    let (m, jail) = complete_jail(tmp.path(), &argv);
    let out = output(
        jailtrace()
            .args(["verify", "--allow-root", "--mount", "proc", "--manifest"])
            .arg(&m)
            .arg(&jail)
            .arg("--")
            .args(argv),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("mount: proc"), "{text}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
