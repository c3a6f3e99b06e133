//! Who the program runs as in the sandbox: a service that starts as root
//! and switches users itself, the capabilities it keeps, and what the
//! sandbox's single user cannot do.

use super::Options;
use crate::core::manifest::Manifest;

/// A daemon that switches to its own user at run time cannot inside the
/// sandbox, which maps one user only.
pub(super) fn switched_ids(
    m: &Manifest,
    opts: &Options,
    root_service: bool,
    warnings: &mut Vec<String>,
) {
    if root_service {
        // It runs as root with the capabilities to switch: as recorded.
        return;
    }
    let own = opts.user.as_ref().map_or(m.command.uid, |u| u.uid);
    let others: Vec<String> = m
        .command
        .set_uids
        .iter()
        .filter(|&&u| u != own)
        .map(u32::to_string)
        .collect();
    if others.is_empty() {
        return;
    }
    // Said for the options given: with --user, asking for it is no advice.
    let what = match &opts.user {
        Some(u) => format!(
            "the sandbox runs it as uid {} (--user) and maps no other user, so that switch \
             fails inside: start the program without its own switch",
            u.uid
        ),
        None => "bubblewrap maps a single user, so that switch fails inside: export with \
                 --user and start the program without its own switch"
            .to_string(),
    };
    warnings.push(format!(
        "the program switched to uid {} when it was recorded; {what}",
        others.join(", ")
    ));
}

/// A recorded command that starts with a privilege wrapper (`setpriv`,
/// `runuser`, `su`, `sudo`, `chroot`) cannot do its job under `--user`:
/// the script's default command would fail inside. Said with the wrapped
/// command where the command line shows it (after `--`).
pub(super) fn privilege_wrapper(m: &Manifest, opts: &Options, warnings: &mut Vec<String>) {
    let Some(u) = &opts.user else {
        return;
    };
    let Some(first) = m.command.argv.first() else {
        return;
    };
    let name = first.0.rsplit(|&c| c == b'/').next().unwrap_or(&first.0);
    let what = match name {
        b"setpriv" | b"runuser" | b"su" | b"sudo" => "switches users",
        b"chroot" => "changes the root directory",
        _ => return,
    };
    let wrapped = m
        .command
        .argv
        .iter()
        .position(|a| a.0 == b"--")
        .map(|i| {
            m.command.argv[i + 1..]
                .iter()
                .map(|a| String::from_utf8_lossy(&a.0).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|w| !w.is_empty());
    let run_it = match wrapped {
        Some(w) => format!("give the script the wrapped command instead ({w})"),
        None => "give the script the command it runs instead".to_string(),
    };
    warnings.push(format!(
        "the recorded command starts with {}, which {what}: as uid {} (--user) it cannot, so \
         the script's default command fails inside; {run_it}, or export without --user to \
         run it as recorded",
        String::from_utf8_lossy(name),
        u.uid
    ));
}

/// Whether the program starts as root and switches users itself (and
/// `--user` does not say otherwise).
pub(super) fn root_service(m: &Manifest, opts: &Options) -> bool {
    opts.user.is_none()
        && m.command.uid == 0
        && (m.command.set_uids.iter().any(|&u| u != 0)
            || m.command.set_gids.iter().any(|&g| g != 0))
}

/// Docker's default capability set, the anchor for a service that starts
/// as root, narrowed where the recording proves a capability unused.
pub(super) fn service_caps(m: &Manifest) -> Vec<&'static str> {
    use crate::core::manifest::Op;
    let did = |op: Op| {
        m.entries
            .iter()
            .any(|e| e.accesses.iter().any(|a| a.op == op))
    };
    let switches_uid = m.command.set_uids.iter().any(|&u| u != 0);
    let switches_gid = switches_uid || m.command.set_gids.iter().any(|&g| g != 0);
    let mut caps = vec![
        // Reading and changing what other users own, as root does.
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        // Dropping its own capabilities (the bounding set) when it switches.
        "CAP_SETPCAP",
        "CAP_AUDIT_WRITE",
    ];
    // A port below 1024, or a recording that does not say (from before
    // jailtrace recorded it, or one that lost events).
    if m.command.binds_privileged_port != Some(false) {
        caps.push("CAP_NET_BIND_SERVICE");
    }
    if did(Op::Chown) {
        caps.push("CAP_CHOWN");
    }
    if did(Op::Chmod) {
        caps.push("CAP_FSETID");
    }
    if switches_uid {
        caps.push("CAP_SETUID");
    }
    if switches_gid {
        caps.push("CAP_SETGID");
    }
    if did(Op::Chroot) {
        caps.push("CAP_SYS_CHROOT");
    }
    caps.sort_unstable();
    caps
}
