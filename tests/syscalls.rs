//! `record` on the metadata, node, xattr, watch (inotify, fanotify), handle,
//! chroot, pivot_root and socket
//! syscalls (x86_64 and i386, including i386 `socketcall`): each access is
//! recorded with its operation and outcome, symlinks are followed exactly
//! when the kernel follows them, and what cannot be decoded is a warning.

mod common;

use std::path::{Path, PathBuf};

use common::{entry, fixture, has_access, tempdir};
use serde_json::Value;

/// The tempdir with any symlinks resolved, as manifests record real paths.
fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

#[track_caller]
fn assert_access(m: &Value, path: &str, op: &str, result: &str) {
    assert!(
        has_access(m, path, op, result),
        "expected {op} {result} on {path}; entry: {:#?}",
        entry(m, path)
    );
}

/// `path` has no access `op` at all (whatever the outcome).
#[track_caller]
fn assert_no_op(m: &Value, path: &str, op: &str) {
    let found = entry(m, path).is_some_and(|e| {
        e["accesses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["op"] == op))
    });
    assert!(!found, "unexpected {op} on {path}: {:#?}", entry(m, path));
}

#[track_caller]
fn field<'a>(m: &'a Value, path: &str, name: &str) -> &'a Value {
    &entry(m, path).unwrap_or_else(|| panic!("no entry for {path}"))[name]
}

/// The files, links and directories `fixtures/morecalls.c` works on (one
/// list with the kernel matrix's).
fn prepare(d: &Path) {
    for p in common::cases::morecalls_prep() {
        p.apply(d);
    }
}

#[test]
fn metadata_node_xattr_watch_handle_and_sendto_calls_are_recorded() {
    if !common::require_root("metadata_node_xattr_watch_handle_and_sendto_calls_are_recorded") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    prepare(&d);
    let bin = fixture("morecalls", &[]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), d.to_str().unwrap()], 0);
    let p = |rel: &str| d.join(rel).to_str().unwrap().to_string();

    // mknod(at): new nodes, outputs of the program
    assert_access(&m, &p("fifo"), "mknod", "ok");
    assert_access(&m, &p("fifo"), "mknod", "EEXIST");
    assert_eq!(field(&m, &p("fifo"), "kind"), "fifo");
    assert_eq!(field(&m, &p("fifo"), "output"), true);
    assert_access(&m, &p("fifo-at"), "mknod", "ok");
    assert_access(&m, &p("no-dir/fifo"), "mknod", "ENOENT");

    // chmod family
    assert_access(&m, &p("chmod"), "chmod", "ok");
    assert_access(&m, &p("chmod-missing"), "chmod", "ENOENT");
    // A metadata change is no output: the jail needs the file, data and all.
    assert!(field(&m, &p("chmod"), "output").is_null());
    assert!(field(&m, &p("chmod"), "size").is_u64());
    // fchmodat always follows
    assert_access(&m, &p("l-fchmodat"), "follow", "ok");
    assert_access(&m, &p("fchmodat"), "chmod", "ok");
    assert_no_op(&m, &p("l-fchmodat"), "chmod");
    // fchmodat2 honours AT_SYMLINK_NOFOLLOW (and a link's mode is fixed)
    if has_access(&m, &p("fchmodat2"), "chmod", "ENOSYS") {
        eprintln!("NOTE: no fchmodat2 before Linux 6.6: its NOFOLLOW case is not checked");
    } else {
        assert_access(&m, &p("fchmodat2"), "chmod", "ok");
        assert_access(&m, &p("l-fchmodat2"), "chmod", "EOPNOTSUPP");
        assert_no_op(&m, &p("fchmodat2-target"), "chmod");
    }

    // chown family
    assert_access(&m, &p("chown"), "chown", "ok");
    assert_access(&m, &p("chown-missing"), "chown", "ENOENT");
    assert_access(&m, &p("l-lchown"), "chown", "ok");
    assert_eq!(field(&m, &p("l-lchown"), "kind"), "symlink");
    assert_no_op(&m, &p("lchown-target"), "chown");
    assert_access(&m, &p("l-fchownat"), "chown", "ok");
    assert_no_op(&m, &p("fchownat-target"), "chown");
    assert_access(&m, &p("fchownat"), "chown", "ok");
    // fchownat(fd, "", AT_EMPTY_PATH) and futimens act on a descriptor
    assert_access(&m, &p("by-fd"), "read", "ok");
    assert_no_op(&m, &p("by-fd"), "chown");
    assert_no_op(&m, &p("by-fd"), "utime");

    // truncate changes the data: a write
    assert_access(&m, &p("truncate"), "write", "ok");
    assert_access(&m, &p("truncate-missing"), "write", "ENOENT");

    // times
    assert_access(&m, &p("utime"), "utime", "ok");
    assert_access(&m, &p("utime-missing"), "utime", "ENOENT");
    assert_access(&m, &p("utimes"), "utime", "ok");
    assert_access(&m, &p("l-utimensat"), "utime", "ok");
    assert_no_op(&m, &p("utimensat-target"), "utime");
    assert_access(&m, &p("futimesat"), "utime", "ok");
    assert!(field(&m, &p("utime"), "output").is_null());

    // statfs reads metadata
    assert_access(&m, &p("statfs"), "stat", "ok");
    assert_access(&m, &p("statfs-missing"), "stat", "ENOENT");

    // xattrs: reading is stat, setting and removing is xattr
    assert_access(&m, &p("setxattr"), "xattr", "ok");
    assert_access(&m, &p("setxattr"), "stat", "ok");
    assert!(field(&m, &p("setxattr"), "output").is_null());
    assert_access(&m, &p("l-lsetxattr"), "xattr", "EPERM");
    assert_no_op(&m, &p("lsetxattr-target"), "xattr");
    assert_access(&m, &p("getxattr"), "stat", "ENODATA");
    assert_access(&m, &p("l-lgetxattr"), "stat", "ENODATA");
    assert_no_op(&m, &p("lgetxattr-target"), "stat");
    assert_access(&m, &p("listxattr"), "stat", "ok");
    assert_access(&m, &p("l-llistxattr"), "stat", "ok");
    assert_no_op(&m, &p("llistxattr-target"), "stat");
    assert_access(&m, &p("removexattr"), "xattr", "ENODATA");
    assert_access(&m, &p("l-lremovexattr"), "xattr", "EPERM");
    assert_no_op(&m, &p("lremovexattr-target"), "xattr");
    if has_access(&m, &p("xattrat"), "xattr", "ENOSYS") {
        eprintln!("NOTE: no *xattrat syscalls before Linux 6.13: they are not checked");
    } else {
        assert_access(&m, &p("xattrat"), "xattr", "ok");
        assert_access(&m, &p("xattrat"), "stat", "ok");
        assert_access(&m, &p("l-getxattrat"), "stat", "ENODATA");
        assert_no_op(&m, &p("getxattrat-target"), "stat");
    }

    // inotify: IN_DONT_FOLLOW watches the link itself
    assert_access(&m, &p("watch"), "watch", "ok");
    assert_access(&m, &p("l-watch"), "watch", "ok");
    assert_no_op(&m, &p("watch-target"), "watch");
    assert_access(&m, &p("watch-missing"), "watch", "ENOENT");
    // fanotify_mark: relative to its dirfd, FAN_MARK_DONT_FOLLOW watches the
    // link itself, and a NULL path marks the descriptor's file
    assert_access(&m, &p("fanwatch"), "watch", "ok");
    assert_access(&m, &p("l-fanwatch"), "watch", "ok");
    assert_no_op(&m, &p("fanwatch-target"), "watch");
    assert_access(&m, &p("fanwatch-missing"), "watch", "ENOENT");
    assert_access(&m, &p("fanwatch-fd"), "watch", "ok");

    // name_to_handle_at: a handle, like O_PATH
    assert_access(&m, &p("handle"), "path", "ok");
    assert_access(&m, &p("handle-missing"), "path", "ENOENT");
    // open_by_handle_at: the file opened, read from the new descriptor
    assert_access(&m, &p("handle"), "read", "ok");

    // sendto with an AF_UNIX destination is a connect
    assert_access(&m, &p("dgram.sock"), "bind", "ok");
    assert_access(&m, &p("dgram.sock"), "connect", "ok");
    assert_access(&m, &p("no-such.sock"), "connect", "ENOENT");
    // so are sendmsg's and each of sendmmsg's destinations
    assert_access(&m, &p("no-such-msg.sock"), "connect", "ENOENT");
    assert_access(&m, &p("mmsg.sock"), "bind", "ok");
    assert_access(&m, &p("mmsg.sock"), "connect", "ok");

    // chroot: recorded; the paths after it are placed beneath the new
    // root (tests below), so it needs no warning
    assert_access(&m, &p("chroot-dir"), "chroot", "ok");
    assert_access(&m, &p("chroot-missing"), "chroot", "ENOENT");
    let w = m["warnings"].to_string();
    assert!(!w.contains("chroot was called"), "{w}");

    // pivot_root: the new root like a chroot, put_old looked up; what the
    // child opens after it is beneath the new root, so no warning
    assert_access(&m, &p("pivot-new"), "chroot", "ok");
    assert_access(&m, &p("pivot-new/old"), "stat", "ok");
    assert_access(&m, &p("pivot-missing"), "chroot", "ENOENT");
    assert_access(&m, &p("pivot-new/inside"), "read", "ok");
    assert!(common::entry(&m, "/inside").is_none(), "{m:#}");
    assert!(!w.contains("pivot_root was called"), "{w}");
}

#[test]
fn an_empty_path_names_a_file_only_where_the_kernel_says_so() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let bin = fixture("emptypath", &[]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), d.to_str().unwrap()], 0);
    let p = |rel: &str| d.join(rel).to_str().unwrap().to_string();
    // linkat(fd, "", AT_EMPTY_PATH): the descriptor's file is the source
    // (the link itself needs CAP_DAC_READ_SEARCH).
    let linked = if nix::unistd::geteuid().is_root() {
        "ok"
    } else {
        "ENOENT"
    };
    assert_access(&m, &p("src"), "link-from", linked);
    assert_access(&m, &p("dst"), "link-to", linked);
    // Without the flag, "" is ENOENT and names nothing; an fstat-style
    // newfstatat(fd, "") is no path access at all.
    assert_access(&m, &p("dst2"), "link-to", "ENOENT");
    assert_no_op(&m, &p("src"), "stat");
    assert_no_op(&m, &d.to_string_lossy(), "stat");
    // execveat(fd, "", AT_EMPTY_PATH) runs the descriptor's program.
    let t = real(Path::new("/bin/true"));
    assert_access(&m, t.to_str().unwrap(), "exec", "ok");
}

#[test]
fn a_failed_chroot_is_no_warning() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let m = common::record_in(&d, "m", &["chroot", "/no-such-root-xyz", "true"], 125);
    assert_access(&m, "/no-such-root-xyz", "chroot", "ENOENT");
    assert!(
        !m["warnings"].to_string().contains("chroot"),
        "{}",
        m["warnings"]
    );
}

#[test]
fn x32_syscalls_are_a_warning() {
    let tmp = tempdir();
    let d = real(tmp.path());
    let bin = fixture("morecalls", &[]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), "x32"], 0);
    let w = m["warnings"].to_string();
    assert!(
        w.contains("x32 syscalls are not decoded: their accesses are missing"),
        "{w}"
    );
}

#[test]
fn i386_socketcall_and_metadata_calls_are_decoded() {
    if !common::require_root("i386_socketcall_and_metadata_calls_are_decoded") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    for f in ["chmod32", "chown32", "truncate64", "lchown32-target"] {
        std::fs::write(d.join(f), "x").unwrap();
    }
    std::os::unix::fs::symlink("lchown32-target", d.join("l-lchown32")).unwrap();
    let bin = fixture("sock32", &["-m32"]);
    let m = common::record_in(&d, "m", &[bin.to_str().unwrap(), d.to_str().unwrap()], 0);
    let p = |rel: &str| d.join(rel).to_str().unwrap().to_string();

    // socketcall(SYS_BIND / SYS_CONNECT / SYS_SENDTO)
    assert_access(&m, &p("stream32.sock"), "bind", "ok");
    assert_access(&m, &p("stream32.sock"), "connect", "ok");
    assert_eq!(field(&m, &p("stream32.sock"), "kind"), "socket");
    assert_access(&m, &p("no-such32.sock"), "connect", "ENOENT");
    assert_access(&m, &p("dgram32.sock"), "bind", "ok");
    assert_access(&m, &p("dgram32.sock"), "connect", "ok");
    assert_access(&m, &p("no-such-dgram32.sock"), "connect", "ENOENT");
    // the direct i386 sendto
    assert_access(&m, &p("direct32.sock"), "connect", "ENOENT");
    // sendmsg/sendmmsg with compat msghdrs, through socketcall and directly
    assert_access(&m, &p("msg32.sock"), "connect", "ok");
    assert_access(&m, &p("mmsg32.sock"), "connect", "ok");
    assert_access(&m, &p("no-such-msg32.sock"), "connect", "ENOENT");
    // i386 numbers of chmod, lchown32, chown32, truncate64
    assert_access(&m, &p("chmod32"), "chmod", "ok");
    assert_access(&m, &p("chmod32-missing"), "chmod", "ENOENT");
    assert_access(&m, &p("l-lchown32"), "chown", "ok");
    assert_no_op(&m, &p("lchown32-target"), "chown");
    assert_access(&m, &p("chown32"), "chown", "ok");
    assert_access(&m, &p("truncate64"), "write", "ok");
    assert!(m["warnings"].to_string().contains("i386"));
}

/// A program that chroots itself names every absolute path beneath its new
/// root, and so does a child it forks after; relative paths stay relative
/// to the cwd, which chroot does not move (issue 23). Both backends.
#[test]
fn a_self_chrooting_program_is_recorded_beneath_its_root() {
    let test = "a_self_chrooting_program_is_recorded_beneath_its_root";
    if !common::require_root(test) {
        return;
    }
    let bin = fixture("chrooted", &[]);
    for backend in ["ptrace", "bpf"] {
        let tmp = tempdir();
        let d = real(tmp.path());
        for prep in common::cases::chrooted_prep() {
            prep.apply(&d);
        }
        let out = d.join("m.json");
        common::success(
            common::jailtrace()
                .args(["record", "--backend", backend, "-o"])
                .arg(&out)
                .arg("--")
                .arg(&bin)
                .arg(&d),
        );
        let m: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let p = |rel: &str| d.join(rel).to_str().unwrap().to_string();
        let ctx = format!("{backend}: {m:#}");
        let has = |rel: &str, op: &str, result: &str| {
            assert!(
                has_access(&m, &p(rel), op, result),
                "{rel} {op} {result}: {ctx}"
            );
        };
        has("cr", "chroot", "ok");
        has("cr/data", "read", "ok");
        has("cr/missing", "read", "ENOENT");
        has("cr/etc", "stat", "ok");
        has("outside", "read", "ok");
        has("cr/rel", "read", "ok");
        has("cr/child", "read", "ok");
        has("cr/bin/nothing", "exec", "ENOENT");
        has("cr/inner", "chroot", "ok");
        has("cr/inner/deep", "read", "ok");
        has("cr/inner/sock", "connect", "ENOENT");
        for host in ["/data", "/missing", "/child", "/deep", "/sock", "/inner"] {
            assert!(
                entry(&m, host).is_none(),
                "{host} recorded as a host path: {ctx}"
            );
        }
        assert!(
            !m["warnings"].to_string().contains("chroot"),
            "{backend}: {}",
            m["warnings"]
        );
    }
}

/// The issue's reproduction: a program that chroots into a tree of its
/// own and reads a file there works from its first jail, and verify finds
/// nothing missing, comparing in the same frame.
#[test]
fn e2e_a_self_chrooting_program_works_from_its_first_jail() {
    let test = "e2e_a_self_chrooting_program_works_from_its_first_jail";
    if !common::require_root(test) || !common::require_program(test, "python3") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    let cr = d.join("tree/cr");
    std::fs::create_dir_all(cr.join("etc")).unwrap();
    std::fs::create_dir_all(cr.join("data")).unwrap();
    std::fs::write(cr.join("etc/hosts"), "127.0.0.1 inside\n").unwrap();
    // Beneath the root, an absolute symlink and a `..` past the root stay
    // beneath it, as the kernel resolves them for the chrooted process.
    std::fs::write(cr.join("data/real.txt"), "real\n").unwrap();
    std::fs::write(cr.join("data/up.txt"), "up\n").unwrap();
    std::os::unix::fs::symlink("/data/real.txt", cr.join("etc/alias")).unwrap();
    let script = format!(
        "import os; os.chroot({:?}); print(len(open('/etc/hosts').read()), \
         open('/etc/alias').read().strip(), open('/../data/up.txt').read().strip())",
        cr.to_str().unwrap()
    );
    let argv = ["/usr/bin/python3", "-c", script.as_str()];
    let host = common::success(std::process::Command::new(argv[0]).args(&argv[1..]));
    assert_eq!(host.trim(), "17 real up");
    let m = common::record_in(&d, "m", &argv, 0);
    for f in ["etc/hosts", "data/real.txt", "data/up.txt"] {
        assert!(
            has_access(&m, cr.join(f).to_str().unwrap(), "read", "ok"),
            "{f}: {m:#}"
        );
    }
    let jail = d.join("jail");
    common::success(
        common::jailtrace()
            .arg("materialize")
            .arg(d.join("m.json"))
            .arg(&jail),
    );
    let inside = common::success(
        common::jailtrace()
            .args(["run", "--allow-root"])
            .arg(&jail)
            .arg("--")
            .args(argv),
    );
    assert_eq!(inside, host, "the jailed run differs from the host's");
    let verify = common::output(
        common::jailtrace()
            .args(["verify", "--allow-root", "--manifest"])
            .arg(d.join("m.json"))
            .arg(&jail)
            .arg("--")
            .args(argv),
    );
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{report}");
    assert!(report.contains("complete: nothing"), "{report}");
    assert!(!report.contains("missing:"), "{report}");
}

/// A program executed beneath a root its caller chrooted into is loaded by
/// the ELF interpreter beneath that root, which the kernel reads without a
/// traced call: the recording names it there, through the root's own
/// (absolute) symlinks, and a jail built from it runs `chroot ROOT PROG`.
#[test]
fn e2e_a_program_run_beneath_a_chroot_gets_that_roots_loader() {
    let test = "e2e_a_program_run_beneath_a_chroot_gets_that_roots_loader";
    if !common::require_root(test) || !common::require_program(test, "chroot") {
        return;
    }
    let tmp = tempdir();
    let d = real(tmp.path());
    // The inner root: /bin/true with what it needs, as materialize makes it.
    common::record_in(&d, "inner", &["/bin/true"], 0);
    let cr = d.join("cr");
    common::success(
        common::jailtrace()
            .arg("materialize")
            .arg(d.join("inner.json"))
            .arg(&cr),
    );
    let chroot = common::which("chroot").unwrap();
    let argv = [s_(&chroot), s_(&cr), "/bin/true".to_string()];
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let m = common::record_in(&d, "m", &argv, 0);
    let loader = real(Path::new("/lib64/ld-linux-x86-64.so.2"));
    let inside = format!("{}{}", s_(&cr), loader.display());
    assert!(has_access(&m, &inside, "interp", "ok"), "{inside}: {m:#}");
    let jail = d.join("jail");
    common::success(
        common::jailtrace()
            .arg("materialize")
            .arg(d.join("m.json"))
            .arg(&jail),
    );
    let out = common::output(std::process::Command::new(&chroot).arg(&jail).args(&argv));
    assert!(
        out.status.success(),
        "chroot JAIL {argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s_(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}
