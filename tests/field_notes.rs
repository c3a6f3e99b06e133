//! What tracers usually miss: files loaded late or only through symlinks.
//! Each test records a real program, checks the specific file is in the
//! manifest, then materializes a jail and runs the same command in it with
//! a real chroot: the output must match the host's.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    fixture, has_access, jailtrace, output, require_program, require_root, success, tempdir,
};
use serde_json::Value;

/// Like `common::require_program`, for a data file a package provides.
fn require_path(test: &str, p: &str) -> bool {
    if Path::new(p).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {p} is missing, and CI=true forbids skipping"
    );
    eprintln!("SKIPPED ({p} missing): {test}");
    false
}

fn real(p: &str) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// Records `argv` (with `env`), asserts each of `needs` (real paths) was
/// read, builds the jail, and compares the chrooted run with the host's.
fn record_check_chroot(test: &str, env: &[(&str, &str)], argv: &[&str], needs: &[String]) -> Value {
    let tmp = tempdir();
    let d = tmp.path();
    let m_path = d.join("m.json");
    // The same environment for the recording and both runs: variables like
    // SSL_CERT_FILE change which files a program opens.
    let mut rec = jailtrace();
    rec.current_dir(d).env_clear().env("PATH", "/usr/bin:/bin");
    rec.args(["record", "-o"]).arg(&m_path).arg("--").args(argv);
    for (k, v) in env {
        rec.env(k, v);
    }
    success(&mut rec);
    let m: Value = serde_json::from_slice(&std::fs::read(&m_path).unwrap()).unwrap();
    for n in needs {
        assert!(
            has_access(&m, n, "read", "ok") || has_access(&m, n, "stat", "ok"),
            "{test}: {n} not recorded"
        );
    }
    if !require_root(test) {
        return m;
    }
    let jail = d.join("jail");
    success(jailtrace().arg("materialize").arg(&m_path).arg(&jail));
    let run = |chroot: Option<&Path>| {
        let mut c = match chroot {
            Some(j) => {
                let mut c = Command::new("/usr/sbin/chroot");
                c.arg(j).args(argv);
                c
            }
            None => {
                let mut c = Command::new(argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        c.env_clear().env("PATH", "/usr/bin:/bin");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = output(&mut c);
        (o.status.code(), o.stdout, o.stderr)
    };
    let host = run(None);
    let jailed = run(Some(&jail));
    assert_eq!(
        host.0,
        Some(0),
        "{test}: host run failed: {}",
        String::from_utf8_lossy(&host.2)
    );
    assert_eq!(
        jailed,
        host,
        "{test}: the jail differs: {}",
        String::from_utf8_lossy(&jailed.2)
    );
    m
}

#[test]
fn gconv_modules_loaded_by_iconv() {
    let m = record_check_chroot(
        "gconv",
        &[],
        &[
            "/bin/sh",
            "-c",
            "printf 'caf\\351\\n' | iconv -f LATIN1 -t UTF-8",
        ],
        &[real("/usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so")],
    );
    let text = m.to_string();
    assert!(
        text.contains("/gconv/gconv-modules"),
        "no gconv-modules configuration"
    );
}

#[test]
fn zoneinfo_and_localtime() {
    if !require_path("zoneinfo", "/usr/share/zoneinfo/Europe/Paris") {
        return;
    }
    record_check_chroot(
        "zoneinfo",
        &[("TZ", "Europe/Paris")],
        &["date", "-d", "@0", "+%H:%M %Z"],
        &[real("/usr/share/zoneinfo/Europe/Paris")],
    );
    // /etc/localtime is a symlink into zoneinfo: both must be in the jail.
    let m = record_check_chroot(
        "localtime",
        &[],
        &["date", "-d", "@0", "+%Z"],
        &[real("/etc/localtime")],
    );
    if std::fs::symlink_metadata("/etc/localtime")
        .unwrap()
        .file_type()
        .is_symlink()
    {
        let e = common::entry(&m, "/etc/localtime").expect("/etc/localtime");
        assert_eq!(e["kind"], "symlink");
    }
}

#[test]
fn locale_files() {
    if !require_path("locale", "/usr/lib/locale/C.utf8") {
        return;
    }
    record_check_chroot(
        "locale",
        &[("LC_ALL", "C.UTF-8")],
        &["/bin/sh", "-c", "printf 'b\\n\\303\\251\\na\\n' | sort"],
        &[real("/usr/lib/locale/C.utf8/LC_CTYPE")],
    );
}

#[test]
fn ca_bundle_through_hashed_symlinks() {
    if !require_program("ca bundle", "openssl") {
        return;
    }
    let pem = "/etc/ssl/certs/ISRG_Root_X1.pem";
    if !require_path("ca bundle", pem) {
        return;
    }
    let m = record_check_chroot(
        "ca bundle",
        &[],
        &[
            "openssl",
            "verify",
            "-no-CAfile",
            "-CApath",
            "/etc/ssl/certs",
            pem,
        ],
        &[real(pem)],
    );
    // The hashed name openssl looks up is a symlink to the PEM, which is a
    // symlink into /usr/share/ca-certificates: every link is recorded.
    let hashed = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let p = e["path"].as_str().unwrap();
            p.starts_with("/etc/ssl/certs/") && p.ends_with(".0") && e["kind"] == "symlink"
        })
        .count();
    assert!(hashed >= 1, "no hashed certificate symlink recorded");
    assert_eq!(common::entry(&m, pem).unwrap()["kind"], "symlink");
}

#[test]
fn libgcc_s_loaded_by_pthread_cancel() {
    let bin = fixture("cancel", &["-pthread"]);
    let tmp = tempdir();
    let m = common::record_in(tmp.path(), "m", &[bin.to_str().unwrap()], 0);
    let found = m["entries"].as_array().unwrap().iter().any(|e| {
        e["path"].as_str().unwrap().ends_with("/libgcc_s.so.1")
            && e["accesses"].to_string().contains("\"read\"")
    });
    assert!(found, "libgcc_s.so.1 not recorded");
}

#[test]
fn nss_configuration_for_user_lookups() {
    record_check_chroot(
        "nss",
        &[],
        &["getent", "passwd", "root"],
        &[real("/etc/nsswitch.conf"), real("/etc/passwd")],
    );
}

/// OpenSSL 3 loads its providers with dlopen: the legacy one from
/// `ossl-modules/legacy.so`, which no `ldd` shows.
#[test]
fn openssl_provider_modules() {
    let module = "/usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so";
    if !require_program("openssl providers", "openssl")
        || !require_path("openssl providers", module)
    {
        return;
    }
    record_check_chroot(
        "openssl providers",
        &[],
        &[
            "openssl",
            "list",
            "-providers",
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
        &[real(module)],
    );
}

/// The dynamic loader reads `/etc/ld.so.cache` to find libraries, and a
/// jail without it only works by luck of the default directories.
#[test]
fn ld_so_cache() {
    let m = record_check_chroot(
        "ld.so.cache",
        &[],
        &["ls", "-d", "/etc"],
        &[real("/etc/ld.so.cache")],
    );
    assert!(has_access(&m, &real("/etc/ld.so.cache"), "read", "ok"));
}

/// In a library directory the loader first probes the glibc-hwcaps
/// subdirectories of the CPU (x86-64-v4, -v3, -v2), and loads the best
/// variant found there: that variant, and the failed probes, are recorded.
#[test]
fn glibc_hwcaps_variants() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    let v2 = lib.join("glibc-hwcaps/x86-64-v2");
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // A copy of the system's libc as the x86-64-v2 variant: every x86-64
    // CPU that CI runs on supports v2.
    let libc = real("/lib/x86_64-linux-gnu/libc.so.6");
    std::fs::copy(&libc, v2.join("libc.so.6")).unwrap();
    let lib_dir = lib.to_str().unwrap().to_string();
    let variant = real(v2.join("libc.so.6").to_str().unwrap());
    let m = record_check_chroot(
        "glibc-hwcaps",
        &[("LD_LIBRARY_PATH", &lib_dir)],
        &["/bin/true"],
        std::slice::from_ref(&variant),
    );
    assert!(has_access(&m, &variant, "read", "ok"));
    // The better variants were probed first, and are missing.
    let v3 = format!("{}/glibc-hwcaps/x86-64-v3/libc.so.6", real(&lib_dir));
    assert!(
        m["entries"].to_string().contains(&v3) || v3_unsupported(),
        "no failed probe of {v3}"
    );
}

/// Whether the loader on this CPU skips x86-64-v3 (then it is not probed).
fn v3_unsupported() -> bool {
    let out = output(Command::new("/lib64/ld-linux-x86-64.so.2").arg("--help"));
    !String::from_utf8_lossy(&out.stdout).contains("x86-64-v3 (supported, searched)")
}
