//! `jailtrace completions` and `jailtrace man` are generated from the
//! command-line definitions: they name every subcommand and option, and the
//! real tools read them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

const SUBCOMMANDS: [&str; 9] = [
    "record",
    "materialize",
    "diff",
    "merge",
    "run",
    "verify",
    "check",
    "completions",
    "man",
];

#[test]
fn completions_name_every_subcommand_and_bash_reads_them() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = common::success(common::jailtrace().args(["completions", shell]));
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
        assert!(script.contains("with-outputs"), "{shell}");
    }
    if !common::require_program("completions_bash", "bash") {
        return;
    }
    let script = common::success(common::jailtrace().args(["completions", "bash"]));
    // bash parses it and registers the completion function.
    let out = common::output(
        Command::new("bash").args(["-c", &format!("{script}\ncomplete -p jailtrace")]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("_jailtrace"));
    let bad = common::output(common::jailtrace().args(["completions", "tcsh"]));
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_man_page_renders_with_every_subcommand() {
    let page = common::success(common::jailtrace().arg("man"));
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..80]
    );
    if !common::require_program("the_man_page_renders", "man") {
        return;
    }
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    man.stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = man.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in SUBCOMMANDS {
        assert!(
            text.contains(&format!("JAILTRACE {}", sub.to_uppercase())),
            "no section for {sub}"
        );
    }
    assert!(text.contains("--keep-password-hashes"));
}
