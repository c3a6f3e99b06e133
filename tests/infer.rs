//! Issue 22: a jail serves the paths the recording did not take. Each test
//! records one workload, materializes its jail, and runs another workload
//! in it under a real chroot, comparing with the host.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Records `argv` with `extra` options into `<dir>/<name>.json`.
fn record(dir: &Path, name: &str, extra: &[&str], argv: &[&str]) -> serde_json::Value {
    let out = dir.join(format!("{name}.json"));
    success(
        jailtrace()
            .current_dir(dir)
            .arg("record")
            .arg("-o")
            .arg(&out)
            .args(extra)
            .arg("--")
            .args(argv),
    );
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

fn materialize(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let jail = dir.join(format!("{name}-jail"));
    let summary = success(
        jailtrace()
            .arg("materialize")
            .arg(dir.join(format!("{name}.json")))
            .arg(&jail),
    );
    (jail, summary)
}

/// stdout of `argv` on the host and in the jail, with `env` set in both;
/// asserts that both succeed and agree.
fn same_in_jail(jail: &Path, env: &[(&str, &str)], argv: &[&str]) -> String {
    let run = |cmd: &mut Command| {
        for (k, v) in env {
            cmd.env(k, v);
        }
        success(cmd)
    };
    let host = run(Command::new(argv[0]).args(&argv[1..]));
    let jailed = run(Command::new("chroot").arg(jail).args(argv));
    assert_eq!(jailed, host, "{argv:?} in the jail and on the host");
    host
}

const PY: &str = "/usr/bin/python3";

fn inferred<'a>(m: &'a serde_json::Value, rule: &str) -> Vec<&'a str> {
    m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["inferred"] == rule)
        .map(|e| e["path"].as_str().unwrap())
        .collect()
}

#[test]
fn localhost_and_service_names_resolve_after_a_numeric_recording() {
    if !require_root("localhost_and_service_names_resolve_after_a_numeric_recording") {
        return;
    }
    let dir = tempdir();
    let m = record(
        dir.path(),
        "numeric",
        &[],
        &[
            PY,
            "-c",
            "import socket; print(socket.getaddrinfo('127.0.0.1', 80)[0][4])",
        ],
    );
    // The run itself read neither file: the rules added them.
    assert_eq!(entry(&m, "/etc/hosts").unwrap()["inferred"], "nss");
    assert_eq!(entry(&m, "/etc/nsswitch.conf").unwrap()["inferred"], "nss");
    assert!(entry(&m, "/etc/hosts").unwrap().get("accesses").is_none());
    let (jail, summary) = materialize(dir.path(), "numeric");
    assert!(
        summary.contains("inferred entries (record --infer): ") && summary.contains("nss "),
        "{summary}"
    );
    let out = same_in_jail(
        &jail,
        &[],
        &[
            PY,
            "-c",
            "import socket; print(socket.getaddrinfo('localhost', 80, socket.AF_INET)[0][4]); \
             print(socket.getservbyname('http'), socket.getprotobyname('tcp'))",
        ],
    );
    assert_eq!(out, "('127.0.0.1', 80)\n80 6\n");

    // Without the rules the same jail fails the lookup, as the issue saw.
    let m = record(
        dir.path(),
        "bare",
        &["--infer", "none"],
        &[
            PY,
            "-c",
            "import socket; print(socket.getaddrinfo('127.0.0.1', 80)[0][4])",
        ],
    );
    assert!(entry(&m, "/etc/hosts").is_none());
    let (bare, _) = materialize(dir.path(), "bare");
    let out = output(Command::new("chroot").arg(&bare).args([
        PY,
        "-c",
        "import socket; socket.getaddrinfo('localhost', 80)",
    ]));
    assert!(
        !out.status.success(),
        "localhost resolved without /etc/hosts"
    );
}

#[test]
fn another_time_zone_works_in_the_jail() {
    if !require_root("another_time_zone_works_in_the_jail") {
        return;
    }
    let dir = tempdir();
    let m = record(dir.path(), "date", &[], &["date", "+%Z"]);
    let zones = inferred(&m, "time");
    assert!(
        zones.contains(&"/usr/share/zoneinfo/Asia/Tokyo"),
        "{zones:?}"
    );
    assert!(
        !zones
            .iter()
            .any(|p| p.starts_with("/usr/share/zoneinfo/right/")
                || p.starts_with("/usr/share/zoneinfo/posix/")),
        "Debian's duplicate databases were copied"
    );
    let (jail, _) = materialize(dir.path(), "date");
    for tz in ["Asia/Tokyo", "America/New_York", "Europe/Paris"] {
        let out = same_in_jail(&jail, &[("TZ", tz)], &["date", "-d", "@0", "+%Z %z"]);
        assert_ne!(out, "UTC +0000\n", "{tz} fell back to UTC");
    }
}

#[test]
fn a_tls_context_finds_the_system_ca_store() {
    if !require_root("a_tls_context_finds_the_system_ca_store") {
        return;
    }
    let dir = tempdir();
    let m = record(dir.path(), "ssl", &[], &[PY, "-c", "import ssl"]);
    let tls = inferred(&m, "tls");
    assert!(tls.contains(&"/etc/ssl/certs"), "{tls:?}");
    assert!(
        !tls.iter().any(|p| p.contains("/private")),
        "private keys inferred: {tls:?}"
    );
    let (jail, _) = materialize(dir.path(), "ssl");
    let out = same_in_jail(
        &jail,
        &[],
        &[
            PY,
            "-c",
            "import ssl; print(ssl.create_default_context().cert_store_stats()['x509_ca'])",
        ],
    );
    assert_ne!(out.trim(), "0", "the host has no CA store to compare with");
}

#[test]
fn every_inferred_entry_names_its_rule_and_has_no_accesses() {
    if !require_root("every_inferred_entry_names_its_rule_and_has_no_accesses") {
        return;
    }
    let dir = tempdir();
    let m = record(dir.path(), "all", &[], &[PY, "-c", "import ssl"]);
    let rules = [
        "nss", "resolver", "time", "devices", "tmp", "tls", "gconv", "pam",
    ];
    let mut n = 0;
    for e in m["entries"].as_array().unwrap() {
        if let Some(r) = e.get("inferred") {
            n += 1;
            assert!(rules.contains(&r.as_str().unwrap()), "{e}");
            assert!(e.get("accesses").is_none(), "{e}");
            let p = e["path"].as_str().unwrap();
            for secret in ["/etc/shadow", "/etc/gshadow", "/etc/security/opasswd"] {
                assert_ne!(p, secret);
            }
        }
    }
    assert!(n > 100, "only {n} inferred entries");
    for rule in ["nss", "resolver", "time", "devices", "tls"] {
        assert!(!inferred(&m, rule).is_empty(), "no {rule} entry");
    }

    // --infer none: the run's own entries, unchanged; picked rules: only
    // those.
    let none = record(
        dir.path(),
        "none",
        &["--infer", "none"],
        &[PY, "-c", "import ssl"],
    );
    let own: Vec<&serde_json::Value> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("inferred").is_none())
        .collect();
    let bare: Vec<&serde_json::Value> = none["entries"].as_array().unwrap().iter().collect();
    assert_eq!(own, bare);
    let time = record(
        dir.path(),
        "time",
        &["--infer", "time"],
        &[PY, "-c", "import ssl"],
    );
    for e in time["entries"].as_array().unwrap() {
        if let Some(r) = e.get("inferred") {
            assert_eq!(r, "time", "{e}");
        }
    }

    // diff --ignore-inferred compares what the runs reached.
    let diff = |extra: &[&str]| {
        output(
            jailtrace()
                .arg("diff")
                .args(extra)
                .arg(dir.path().join("none.json"))
                .arg(dir.path().join("all.json")),
        )
    };
    assert_eq!(diff(&[]).status.code(), Some(1));
    let same = diff(&["--ignore-inferred"]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
}

#[test]
fn an_unknown_rule_is_refused_before_the_command_runs() {
    let dir = tempdir();
    let marker = dir.path().join("ran");
    let out = output(jailtrace().current_dir(dir.path()).args([
        "record",
        "--infer",
        "dns",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]));
    // record's own usage errors exit 125, as env's and chroot's do.
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown rule \"dns\""), "{err}");
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn check_reports_nothing_the_rules_add() {
    if !require_root("check_reports_nothing_the_rules_add") {
        return;
    }
    let dir = tempdir();
    record(dir.path(), "true", &["--infer", "none"], &["/bin/true"]);
    record(dir.path(), "base", &[], &["/bin/true"]);
    let (bare, _) = materialize(dir.path(), "true");
    let (base, _) = materialize(dir.path(), "base");
    let findings = |jail: &Path| -> Vec<String> {
        let out = output(jailtrace().arg("check").arg(jail));
        // One line a finding: severity, check, then the path and why.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                matches!(
                    l.split_whitespace().next(),
                    Some("critical" | "high" | "medium" | "low")
                )
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let before = findings(&bare);
    // Every finding on the inferred jail beyond the bare one is about an
    // account database (passwd's root shell), which check reports wherever
    // the file comes from; none is about a device, /tmp or a data file.
    for f in findings(&base) {
        if !before.contains(&f) {
            assert!(f.contains("root-account"), "new finding: {f}");
        }
    }
}

#[test]
fn verify_says_when_what_a_jail_lost_was_inferred() {
    if !require_root("verify_says_when_what_a_jail_lost_was_inferred") {
        return;
    }
    let dir = tempdir();
    let argv = [
        PY,
        "-c",
        "import socket; print(socket.getaddrinfo('127.0.0.1', 80)[0][4])",
    ];
    record(dir.path(), "v", &[], &argv);
    let (jail, _) = materialize(dir.path(), "v");
    std::fs::remove_file(jail.join("etc/hosts")).unwrap();
    let out = output(
        jailtrace()
            .args(["verify", "--allow-root", "--manifest"])
            .arg(dir.path().join("v.json"))
            .arg(&jail)
            .args([
                "--",
                PY,
                "-c",
                "import socket; socket.getaddrinfo('localhost', 80)",
            ]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "missing: /etc/hosts (read ENOENT; inferred by rule nss, not reached by the recording)"
        ),
        "{text}"
    );
}

#[test]
fn a_program_that_loads_libpam_gets_the_whole_pam_stack() {
    if !require_root("a_program_that_loads_libpam_gets_the_whole_pam_stack") {
        return;
    }
    let dir = tempdir();
    // runuser reads /etc/pam.d/runuser; `runuser -l` would read runuser-l,
    // and another service other modules.
    let m = record(
        dir.path(),
        "pam",
        &[],
        &["runuser", "-u", "nobody", "--", "/bin/true"],
    );
    let pam = inferred(&m, "pam");
    assert!(pam.contains(&"/etc/pam.d/runuser-l"), "{pam:?}");
    assert!(
        pam.iter()
            .any(|p| p.ends_with("/security/pam_env.so") || p.ends_with("/security/pam_limits.so")),
        "no module the run did not load: {pam:?}"
    );
    assert!(!pam.contains(&"/etc/security/opasswd"));
    let own = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/etc/pam.d/runuser")
        .expect("the run read its own service");
    assert!(own.get("inferred").is_none(), "{own}");
}

/// A FIFO where a rule reads a file (nsswitch.conf here, bound over the
/// host's in a private mount namespace) is skipped, never waited on.
#[test]
fn a_fifo_where_a_rule_reads_is_not_waited_on() {
    if !require_root("a_fifo_where_a_rule_reads_is_not_waited_on") {
        return;
    }
    let dir = tempdir();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let script = format!(
        "mount --bind {} /etc/nsswitch.conf && exec {} record -o {}/m.json -- /bin/true",
        fifo.display(),
        env!("CARGO_BIN_EXE_jailtrace"),
        dir.path().display()
    );
    let out = output(Command::new("timeout").args([
        "60",
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
