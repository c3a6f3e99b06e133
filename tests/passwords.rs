//! Issue 23, part 1: a program that checks passwords (it reads a shadow
//! file) gets a jail without the hashes, and every login in it fails; that
//! is said loudly by materialize, export and verify, and the way out keeps
//! only the hashes of the accounts named.
//!
//! The host's account files are not touched: the whole scenario runs in a
//! private mount namespace where /etc/passwd and /etc/shadow are test
//! files bound over the host's.

mod common;

use std::path::Path;
use std::process::Command;

const HASH: &str = "$6$jailtrace$8MWWuBf1xCHLH1XBl4nbYB8mYB8n4q5nRvRZb6PaWmGH9ku3ce7nEE9/8X.b2k5f2rOHeOe9ovJJfWc6GNaUS/";

/// Runs `script` with JT (jailtrace) and D (a test directory) set, in a
/// private mount namespace where the test's passwd and shadow replace the
/// host's; returns (status, stdout, stderr).
fn in_namespace(dir: &Path, script: &str) -> (Option<i32>, String, String) {
    std::fs::write(
        dir.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1500:1500::/home/alice:/bin/sh\n\
         bob:x:1501:1501::/home/bob:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("shadow"),
        format!("root:*:19000:0:99999:7:::\nalice:{HASH}:19000:0:99999:7:::\nbob:{HASH}:19000:0:99999:7:::\n"),
    )
    .unwrap();
    let full = format!(
        "set -e\nmount --bind \"$D/passwd\" /etc/passwd\nmount --bind \"$D/shadow\" /etc/shadow\n{script}"
    );
    let out = common::output(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &full])
            .env("JT", env!("CARGO_BIN_EXE_jailtrace"))
            .env("D", dir),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stripped_hashes_the_program_reads_are_said_and_kept_by_name() {
    if !common::require_root("stripped_hashes_the_program_reads_are_said_and_kept_by_name") {
        return;
    }
    let t = common::tempdir();
    let d = t.path();
    // The "program": reads the shadow file, as a login service does.
    let (code, out, err) = in_namespace(
        d,
        r#"
"$JT" record -o "$D/m.json" -- /bin/grep -c alice /etc/shadow >/dev/null
"$JT" materialize "$D/m.json" "$D/jail"
echo "--- verify"
"$JT" verify --allow-root --manifest "$D/m.json" "$D/jail" -- /bin/grep -c alice /etc/shadow || echo "verify status $?"
echo "--- export"
"$JT" export --format bwrap --script -o "$D/x.sh" "$D/m.json" 2>&1
echo "--- kept"
"$JT" materialize --keep-password-hashes --accounts alice "$D/m.json" "$D/jail2"
echo "--- check"
"$JT" check --format json "$D/jail2" > "$D/check-any.json" || true
"$JT" check --format json --accounts alice "$D/jail2" > "$D/check-named.json" || true
"#,
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (built, rest) = out.split_once("--- verify").unwrap();
    let (verified, rest) = rest.split_once("--- export").unwrap();
    let (exported, kept) = rest.split_once("--- kept").unwrap();
    let kept = kept.split_once("--- check").unwrap().0;
    let notice = "password hashes stripped: the program read /etc/shadow (it checks passwords), \
                  and the jail has none of its 2 accounts' hashes: every password login fails \
                  there; keep them with --keep-password-hashes --accounts NAME,...";
    assert!(built.contains(notice), "{built}");
    assert!(exported.contains(notice), "{exported}");
    assert!(
        verified.contains("hashes: /etc/shadow (2 accounts with a password hash on the host have none in the jail"),
        "{verified}"
    );
    // A finding although the command itself succeeded in the jail.
    assert!(verified.contains("verify status 1"), "{verified}");
    assert!(!kept.contains("password hashes stripped"), "{kept}");
    let jail_shadow = std::fs::read_to_string(d.join("jail/etc/shadow")).unwrap();
    assert!(!jail_shadow.contains(HASH), "{jail_shadow}");
    // --keep-password-hashes --accounts alice: alice's hash, not bob's.
    let kept_shadow = std::fs::read_to_string(d.join("jail2/etc/shadow")).unwrap();
    assert!(
        kept_shadow.contains(&format!("alice:{HASH}:")),
        "{kept_shadow}"
    );
    assert!(!kept_shadow.contains("bob:"), "{kept_shadow}");
    // check: a kept hash is high, and medium when named as kept on purpose.
    let shadow_finding = |file: &str| -> serde_json::Value {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(file)).unwrap()).unwrap();
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "/etc/shadow")
            .cloned()
            .unwrap_or_else(|| panic!("{file}: no /etc/shadow finding: {r:#}"))
    };
    let any = shadow_finding("check-any.json");
    assert_eq!(any["severity"], "high", "{any}");
    let named = shadow_finding("check-named.json");
    assert_eq!(named["severity"], "medium", "{named}");
    assert!(
        named["detail"]
            .as_str()
            .unwrap()
            .contains("alice kept on purpose"),
        "{named}"
    );
}

/// A program that never reads a shadow file gets no such line: the hashes
/// it does not use are stripped silently, as documented.
#[test]
fn no_notice_when_the_program_does_not_read_the_hashes() {
    if !common::require_root("no_notice_when_the_program_does_not_read_the_hashes") {
        return;
    }
    let t = common::tempdir();
    let (code, out, err) = in_namespace(
        t.path(),
        r#"
"$JT" record -o "$D/m.json" -- /bin/grep -c alice /etc/passwd >/dev/null
"$JT" materialize "$D/m.json" "$D/jail"
"#,
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(!out.contains("password hashes stripped"), "{out}");
}
