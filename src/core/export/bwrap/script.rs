//! The sh script rendering of a sandbox: it starts bwrap as the sandbox's
//! user, hands over the data descriptors, passes signals on to the program
//! and ends with bwrap's status.

use super::ops::{BwrapOp, Step};
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
            b"# copy FD PATH [UID GID]: PATH as the sandbox's user sees it (a service
# that starts as root: as the file's owner, UID GID), on descriptor FD.
copy() {
  by=$as
  [ \"$#\" -lt 4 ] || by=\"setpriv --reuid=$3 --regid=$4 --clear-groups --\"
  if [ ! -f \"$2\" ] || [ -L \"$2\" ]; then
    echo \"$0: $2: not a regular file now; not given to the sandbox\" >&2; exit 125
  fi
  # A recorded path is a real one: a directory on it that is a symlink now
  # was swapped in to lead elsewhere.
  if [ \"$(readlink -f -- \"$2\")\" != \"$2\" ]; then
    echo \"$0: $2: a directory on its path is a symlink now; not given to the sandbox\" >&2; exit 125
  fi
  t=$(mktemp)
  if ! $by dd if=\"$2\" iflag=nofollow,nonblock status=none >\"$t\" 2>/dev/null; then
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
            // Root reads nothing for the sandbox: a path swapped since
            // the export yields only what the file's owner could read.
            if s.root_service && s.user.is_none() {
                let (uid, gid) = super::stage::file_owner(src);
                l.extend(format!(" {uid} {gid}").into_bytes());
            }
            line(&mut out, &l);
        }
    }
    stage(s, &mut out);
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
        match op {
            BwrapOp::Staged(_) => continue,
            BwrapOp::BindStaged { dest, .. } => {
                l.extend_from_slice(b" --bind \"$stage\"");
                l.extend(quote(dest.as_bytes()));
                l.push(b' ');
                l.extend(quote(dest.as_bytes()));
            }
            _ => {
                for a in op.words() {
                    l.push(b' ');
                    l.extend(quote(&a));
                }
            }
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

/// The private directories of a service that starts as root, made on the
/// host before bwrap starts (see `stage`): each with the host's owner and
/// mode, in a directory only root enters, removed when the script ends.
fn stage(s: &Sandbox, out: &mut Vec<u8>) {
    let mut steps: Vec<Vec<u8>> = Vec::new();
    let perms = |mode: &u32| format!("{:04o}", mode & 0o1777);
    for op in &s.ops {
        let mut l = match op {
            BwrapOp::BindStaged {
                dest,
                uid,
                gid,
                mode,
                ..
            }
            | BwrapOp::Staged(Step::Dir {
                path: dest,
                uid,
                gid,
                mode,
            }) => {
                let mut l = b"stage_dir ".to_vec();
                l.extend(quote(dest.as_bytes()));
                l.extend(format!(" {uid} {gid} {}", perms(mode)).into_bytes());
                l
            }
            BwrapOp::Staged(Step::File {
                path,
                mode,
                uid,
                gid,
            }) => {
                let mut l = b"stage_file ".to_vec();
                l.extend(quote(path.as_bytes()));
                l.extend(format!(" {} {uid} {gid}", perms(mode)).into_bytes());
                l
            }
            BwrapOp::Staged(Step::Symlink { path, target }) => {
                let mut l = b"stage_link ".to_vec();
                l.extend(quote(path.as_bytes()));
                l.push(b' ');
                l.extend(quote(target));
                l
            }
            _ => continue,
        };
        l.push(b'\n');
        steps.push(l);
    }
    if steps.is_empty() {
        return;
    }
    out.extend_from_slice(STAGE.as_bytes());
    for l in steps {
        out.extend(l);
    }
}

/// The staging functions (see [`stage`]).
const STAGE: &str = r#"# The program starts as root and drops to its user: the directories it
# must find its own are made here, on the host, with the owners and modes
# of the host's (bwrap would make them root's), in a directory only root
# enters, bound into the sandbox, and removed when this script ends (a
# signal before the sandbox starts ends the script, and removes them).
stage=$(mktemp -d -p /var/tmp jailtrace-stage.XXXXXX) || exit 125
trap 'rm -rf "$stage" || :' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
unstaged() { # PATH WHY
  echo "$0: $1: $2; the sandbox is not started" >&2
  exit 125
}
stage_dir() { # PATH UID GID MODE
  { mkdir -p "$stage$1" && chown "$2:$3" "$stage$1" && chmod "$4" "$stage$1"; } 2>/dev/null ||
    unstaged "$1" "cannot make its directory"
}
# A copy of the host's file, read as its owner: a path swapped since the
# export yields nothing that owner could not read.
stage_file() { # PATH MODE UID GID
  if [ ! -f "$1" ] || [ -L "$1" ] || [ "$(readlink -f -- "$1")" != "$1" ]; then
    unstaged "$1" "not a regular file at that path now"
  fi
  setpriv --reuid="$3" --regid="$4" --clear-groups -- \
    dd if="$1" iflag=nofollow,nonblock status=none 2>/dev/null >"$stage$1" ||
    unstaged "$1" "cannot be read as its owner (uid $3)"
  { chown "$3:$4" "$stage$1" && chmod "$2" "$stage$1"; } 2>/dev/null ||
    unstaged "$1" "cannot make its copy"
}
stage_link() { # PATH TARGET
  ln -s -- "$2" "$stage$1" 2>/dev/null || unstaged "$1" "cannot make its symlink"
}
"#;

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
    fn staged_directories_are_made_then_bound_from_the_stage() {
        let dest = MPath::new("/var/log/x y").unwrap();
        let file = MPath::new("/var/log/x y/it's.log").unwrap();
        let sandbox = Sandbox {
            ops: vec![
                BwrapOp::BindStaged {
                    dest: dest.clone(),
                    uid: 33,
                    gid: 4,
                    mode: 0o2750,
                    ro: false,
                },
                BwrapOp::Staged(Step::File {
                    path: file,
                    mode: 0o640,
                    uid: 33,
                    gid: 4,
                }),
            ],
            data: Vec::new(),
            user: None,
            root_service: true,
            command: vec![b"/bin/true".to_vec()],
            warnings: Vec::new(),
        };
        let text = String::from_utf8(render_script(&sandbox, "m.json").unwrap()).unwrap();
        // Made first, in order, setgid bit dropped; then bound from $stage.
        let made = text.find("stage_dir '/var/log/x y' 33 4 0750\n").unwrap();
        let copied = text
            .find("stage_file '/var/log/x y/it'\\''s.log' 0640 33 4\n")
            .unwrap();
        let bound = text
            .find("--bind \"$stage\"'/var/log/x y' '/var/log/x y' \\\n")
            .unwrap();
        assert!(made < copied && copied < bound, "{text}");
        // An argument list cannot make them.
        assert!(super::super::render_args(&sandbox).is_err());
    }

    #[test]
    fn quoting_survives_quotes_and_newlines() {
        assert_eq!(quote(b"a'b"), b"'a'\\''b'".to_vec());
        assert_eq!(quote(b"/usr/lib"), b"/usr/lib".to_vec());
        assert_eq!(quote(b""), b"''".to_vec());
        assert_eq!(quote(b"$HOME"), b"'$HOME'".to_vec());
        assert_eq!(quote(b"x\ny"), b"'x\ny'".to_vec());
    }
}
