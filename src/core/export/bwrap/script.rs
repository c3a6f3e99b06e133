//! The sh script rendering of a sandbox: it starts bwrap as the sandbox's
//! user, hands over the data descriptors, passes signals on to the program
//! and ends with bwrap's status.

use super::{refuse, Data, Sandbox};
use crate::core::manifest::pathenc::MPath;

/// `s` quoted for a POSIX shell (as it is when nothing in it is special).
fn quote(s: &[u8]) -> Vec<u8> {
    let plain = |c: &u8| c.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(c);
    if !s.is_empty() && s.iter().all(plain) {
        return s.to_vec();
    }
    let mut out = vec![b'\''];
    for &c in s {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    out
}

/// A POSIX sh script that execs bwrap with the recorded command, or with
/// the script's own arguments.
pub fn render_script(s: &Sandbox, manifest: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let line = |out: &mut Vec<u8>, l: &[u8]| {
        out.extend_from_slice(l);
        out.push(b'\n');
    };
    line(&mut out, b"#!/bin/sh");
    line(
        &mut out,
        format!(
            "# Written by jailtrace {} from {}: runs the recorded command under\n\
             # bubblewrap, where it sees only what its recording used.\n\
             # Usage: $0 [COMMAND [ARG...]]  (without one: the recorded command)",
            env!("CARGO_PKG_VERSION"),
            manifest.replace('\n', "?")
        )
        .as_bytes(),
    );
    line(&mut out, b"set -eu");
    line(&mut out, b"if [ \"$#\" -eq 0 ]; then");
    let mut set = b"  set --".to_vec();
    for a in &s.command {
        set.push(b' ');
        set.extend(quote(a));
    }
    line(&mut out, &set);
    line(&mut out, b"fi");
    match &s.user {
        None if s.root_service => line(
            &mut out,
            b"# The program starts as root and switches users itself: bwrap runs it
# as root, in the host's user namespace, with only the capabilities it
# keeps, which needs root here.
if [ \"$(id -u)\" != 0 ]; then
  echo \"$0: run this as root: the program starts as root and switches users itself\" >&2
  exit 125
fi
as=",
        ),
        None => line(&mut out, b"as="),
        Some(u) => {
            let groups = match &u.name {
                Some(_) => "--init-groups",
                None => "--clear-groups",
            };
            line(
                &mut out,
                format!(
                    "# bwrap acts on the host's files as whoever starts it: root becomes\n\
                     # uid {uid} first.\n\
                     case \"$(id -u)\" in\n\
                     0) as=\"setpriv --reuid={uid} --regid={gid} {groups} --\" ;;\n\
                     {uid}) as= ;;\n\
                     *) echo \"$0: run this as root or as uid {uid}\" >&2; exit 125 ;;\n\
                     esac",
                    uid = u.uid,
                    gid = u.gid,
                )
                .as_bytes(),
            );
        }
    }
    // Private copies of host files (--file): read before bwrap starts, as
    // the sandbox's user (what it could not open on the host it does not
    // get), never through a symlink, never from a FIFO or a device, and
    // handed over on a descriptor.
    let copies: Vec<(&u8, &MPath)> = s
        .data
        .iter()
        .filter_map(|(fd, _, d)| match d {
            Data::HostFile(src) => Some((fd, src)),
            Data::Text(_) => None,
        })
        .collect();
    if !copies.is_empty() {
        line(
            &mut out,
            b"# copy FD PATH: PATH as the sandbox's user sees it, on descriptor FD.
copy() {
  if [ ! -f \"$2\" ] || [ -L \"$2\" ]; then
    echo \"$0: $2: not a regular file now; not given to the sandbox\" >&2; exit 125
  fi
  # A recorded path is a real one: a directory on it that is a symlink now
  # was swapped in to lead elsewhere.
  if [ \"$(readlink -f -- \"$2\")\" != \"$2\" ]; then
    echo \"$0: $2: a directory on its path is a symlink now; not given to the sandbox\" >&2; exit 125
  fi
  t=$(mktemp)
  if ! $as dd if=\"$2\" iflag=nofollow,nonblock status=none >\"$t\" 2>/dev/null; then
    rm -f \"$t\"
    echo \"$0: $2: cannot be read as the sandbox's user; not given to the sandbox\" >&2; exit 125
  fi
  eval \"exec $1<\\\"\\$t\\\"\"
  rm -f \"$t\"
}",
        );
        for (fd, src) in &copies {
            let mut l = format!("copy {fd} ").into_bytes();
            l.extend(quote(src.as_bytes()));
            line(&mut out, &l);
        }
    }
    // bwrap runs in the background so that the script can pass SIGTERM,
    // SIGINT and SIGHUP on to the program (bwrap dies of them, and
    // --die-with-parent would then SIGKILL the program: no clean
    // shutdown). fd 8 keeps the caller's stdin for it (an asynchronous
    // command's is /dev/null otherwise); bwrap reports the pid of its init
    // in the sandbox on fd 9, whose child is the program.
    line(
        &mut out,
        b"status=$(mktemp) || exit 125
exec 8<&0
$as bwrap --json-status-fd 9 \\",
    );
    // One option (with its values) a line.
    for op in &s.ops {
        let mut l = b" ".to_vec();
        for a in op.words() {
            l.push(b' ');
            l.extend(quote(&a));
        }
        l.extend_from_slice(b" \\");
        line(&mut out, &l);
    }
    let mut last = b"  -- \"$@\" 0<&8 8<&- 9>\"$status\"".to_vec();
    let mut heredocs = Vec::new();
    for (fd, p, d) in &s.data {
        match d {
            // Opened above by `copy`.
            Data::HostFile(_) => {}
            Data::Text(text) => {
                let mut tag = format!("JAILTRACE_DATA_{fd}");
                while text.split(|&c| c == b'\n').any(|l| l == tag.as_bytes()) {
                    tag.push('_');
                }
                last.extend_from_slice(format!(" {fd}<<'{tag}'").as_bytes());
                if !text.is_empty() && !text.ends_with(b"\n") {
                    return Err(refuse(format!(
                        "{p}: does not end with a newline; a shell here-document cannot carry it"
                    )));
                }
                heredocs.push((tag, text));
            }
        }
    }
    last.extend_from_slice(b" &");
    line(&mut out, &last);
    for (tag, text) in heredocs {
        out.extend_from_slice(text);
        line(&mut out, tag.as_bytes());
    }
    line(&mut out, WAIT_AND_PASS_SIGNALS.as_bytes());
    Ok(out)
}

/// The end of the script: bwrap runs in the background; SIGTERM, SIGINT
/// and SIGHUP go on to the program (the children of bwrap's init in the
/// sandbox, whose pid bwrap wrote on fd 9), and the script ends with
/// bwrap's status once bwrap is gone.
const WAIT_AND_PASS_SIGNALS: &str = r#"bw=$!
exec 8<&-
pass() {
  init=$(sed -n 's/.*"child-pid": *\([0-9]*\).*/\1/p' "$status" | head -n 1)
  if [ -n "$init" ] && [ -r "/proc/$init/task/$init/children" ]; then
    kids=$(cat "/proc/$init/task/$init/children")
    [ -z "$kids" ] || kill -s "$1" $kids 2>/dev/null || :
  fi
}
trap 'pass TERM' TERM
trap 'pass INT' INT
trap 'pass HUP' HUP
# A trapped signal ends wait early: wait again until bwrap is gone.
while :; do
  rc=0
  wait "$bw" || rc=$?
  kill -0 "$bw" 2>/dev/null || break
done
rm -f "$status"
exit "$rc""#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_newlines() {
        assert_eq!(quote(b"a'b"), b"'a'\\''b'".to_vec());
        assert_eq!(quote(b"/usr/lib"), b"/usr/lib".to_vec());
        assert_eq!(quote(b""), b"''".to_vec());
        assert_eq!(quote(b"$HOME"), b"'$HOME'".to_vec());
        assert_eq!(quote(b"x\ny"), b"'x\ny'".to_vec());
    }
}
