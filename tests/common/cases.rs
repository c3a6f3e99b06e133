//! The programs both backends must record identically: every fixture that
//! runs as a plain command, with the directory it expects, and real
//! programs. One list, run on the host and in every kernel of the matrix
//! (`tests/kernels.rs`), so a kernel cannot be tested on less.

use std::path::Path;

/// One step of preparing the fixture's directory (`DIR`).
#[derive(Clone, Copy)]
pub enum Prep {
    Dir(&'static str),
    File(&'static str, &'static str),
    Symlink(&'static str, &'static str),
    /// A second name (`ln`) of an existing file.
    Link(&'static str, &'static str),
    Fifo(&'static str),
}

impl Prep {
    pub fn apply(self, dir: &Path) {
        match self {
            Prep::Dir(p) => std::fs::create_dir_all(dir.join(p)).unwrap(),
            Prep::File(p, data) => std::fs::write(dir.join(p), data).unwrap(),
            Prep::Symlink(p, target) => std::os::unix::fs::symlink(target, dir.join(p)).unwrap(),
            Prep::Link(p, target) => std::fs::hard_link(dir.join(target), dir.join(p)).unwrap(),
            Prep::Fifo(p) => nix::unistd::mkfifo(
                &dir.join(p),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap(),
        }
    }

    /// The same step as a shell command run in `DIR` (busybox sh too).
    pub fn shell(self) -> String {
        match self {
            Prep::Dir(p) => format!("mkdir -p {}", quote(p)),
            Prep::File(p, data) => format!("printf %s {} > {}", quote(data), quote(p)),
            Prep::Symlink(p, target) => format!("ln -s {} {}", quote(target), quote(p)),
            Prep::Link(p, target) => format!("ln {} {}", quote(target), quote(p)),
            Prep::Fifo(p) => format!("mkfifo -m 600 {}", quote(p)),
        }
    }
}

/// One program run: `argv[0]` is a fixture name (built with `flags`) or,
/// for real programs, an absolute path or a name on PATH. `DIR` in an
/// argument stands for the prepared directory.
pub struct Case {
    pub name: &'static str,
    pub fixture: bool,
    pub flags: &'static [&'static str],
    pub prep: Vec<Prep>,
    pub argv: Vec<&'static str>,
    /// The status the program exits with on the host (`None`: it depends
    /// on the host): a fixture that stops early would compare only its
    /// beginning.
    pub status: Option<i32>,
}

/// Single-quoted for sh.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn fixture(
    name: &'static str,
    flags: &'static [&'static str],
    prep: Vec<Prep>,
    argv: Vec<&'static str>,
) -> Case {
    Case {
        name,
        fixture: true,
        flags,
        prep,
        argv,
        status: Some(0),
    }
}

fn status(mut c: Case, status: Option<i32>) -> Case {
    c.status = status;
    c
}

/// What `fixtures/morecalls.c` works on (see `tests/syscalls.rs`).
pub const MORECALLS_FILES: &[&str] = &[
    "chmod",
    "fchmodat",
    "fchmodat2",
    "fchmodat2-target",
    "chown",
    "lchown-target",
    "fchownat",
    "fchownat-target",
    "by-fd",
    "truncate",
    "utime",
    "utimes",
    "utimensat-target",
    "futimesat",
    "statfs",
    "setxattr",
    "lsetxattr-target",
    "getxattr",
    "lgetxattr-target",
    "listxattr",
    "llistxattr-target",
    "removexattr",
    "lremovexattr-target",
    "xattrat",
    "getxattrat-target",
    "watch",
    "watch-target",
    "fanwatch",
    "fanwatch-target",
    "fanwatch-fd",
    "handle",
];
pub const MORECALLS_LINKS: &[(&str, &str)] = &[
    ("l-fchmodat", "fchmodat"),
    ("l-fchmodat2", "fchmodat2-target"),
    ("l-lchown", "lchown-target"),
    ("l-fchownat", "fchownat-target"),
    ("l-utimensat", "utimensat-target"),
    ("l-lsetxattr", "lsetxattr-target"),
    ("l-lgetxattr", "lgetxattr-target"),
    ("l-llistxattr", "llistxattr-target"),
    ("l-lremovexattr", "lremovexattr-target"),
    ("l-getxattrat", "getxattrat-target"),
    ("l-watch", "watch-target"),
    ("l-fanwatch", "fanwatch-target"),
];

pub fn morecalls_prep() -> Vec<Prep> {
    let mut p: Vec<Prep> = MORECALLS_FILES
        .iter()
        .map(|f| Prep::File(f, "data\n"))
        .collect();
    p.extend(MORECALLS_LINKS.iter().map(|(l, t)| Prep::Symlink(l, t)));
    p.push(Prep::Dir("chroot-dir"));
    p.push(Prep::Dir("pivot-new/old"));
    p.push(Prep::File("pivot-new/inside", "inside\n"));
    p
}

/// What `fixtures/chrooted.c` chroots into and reads.
pub fn chrooted_prep() -> Vec<Prep> {
    use Prep::*;
    vec![
        Dir("cr/etc"),
        Dir("cr/inner"),
        File("cr/data", "d\n"),
        File("cr/rel", "r\n"),
        File("cr/child", "c\n"),
        File("cr/inner/deep", "i\n"),
        File("outside", "o\n"),
    ]
}

/// What `fixtures/later.c` changes.
fn later_prep() -> Vec<Prep> {
    use Prep::*;
    vec![
        Dir("d/sub"),
        Dir("other"),
        File("d/a", "12345\n"),
        File("d/sub/x", "x\n"),
        Link("other/a2", "d/a"),
    ]
}

/// Every fixture that runs as a plain command. Not here: `breakout` (it
/// needs a jail to break out of), `umount` (a mount of its own; it exists
/// for the ptrace backend's descriptor cache, which bpf does not have).
pub fn fixtures() -> Vec<Case> {
    use Prep::*;
    let abc = || vec![Dir("a"), Dir("b"), Dir("c")];
    vec![
        fixture("cancel", &["-pthread"], vec![], vec![]),
        fixture("chrooted", &[], chrooted_prep(), vec!["DIR"]),
        fixture("dirfd", &[], abc(), vec!["DIR"]),
        fixture("eintr", &[], vec![Fifo("fifo")], vec!["DIR/fifo"]),
        fixture("emptypath", &[], vec![], vec!["DIR"]),
        fixture("euid", &[], vec![], vec![]),
        // It exits 7 itself, after its children.
        status(fixture("forks", &[], vec![], vec!["DIR"]), Some(7)),
        fixture(
            "found",
            &[],
            vec![
                File("state", "there before\n"),
                File("locked", ""),
                Dir("olddir"),
            ],
            vec!["DIR"],
        ),
        fixture("iouring", &[], vec![], vec![]),
        // Resolution ahead (bpf) kept, and not kept after a change made
        // through another name.
        fixture("later", &[], later_prep(), vec!["DIR", "none"]),
        fixture("later", &[], later_prep(), vec!["DIR", "link"]),
        fixture("morecalls", &[], morecalls_prep(), vec!["DIR"]),
        // An x32 syscall: neither backend decodes it, both warn.
        fixture("morecalls", &[], vec![], vec!["x32"]),
        fixture(
            "open32",
            &["-m32"],
            vec![File("rel32.txt", "x")],
            vec!["DIR"],
        ),
        fixture(
            "sock32",
            &["-m32"],
            vec![
                File("chmod32", "x"),
                File("chown32", "x"),
                File("truncate64", "x"),
                File("lchown32-target", "x"),
                Symlink("l-lchown32", "lchown32-target"),
            ],
            vec!["DIR"],
        ),
        fixture("opshapes", &[], vec![], vec!["DIR"]),
        fixture("opshapes", &["-m32"], vec![], vec!["DIR"]),
        fixture(
            "syscalls",
            &[],
            vec![
                Dir("data"),
                Dir("sub"),
                File("data/file.txt", "hello\n"),
                Symlink("chain1", "chain2"),
                Symlink("chain2", "data/file.txt"),
            ],
            vec!["DIR"],
        ),
        fixture(
            "threads",
            &["-pthread"],
            vec![],
            vec!["DIR", "/usr/bin/env", "true"],
        ),
        fixture("threadstorm", &["-pthread"], vec![], vec!["DIR"]),
        fixture("setid", &[], vec![], vec!["101", "104", "105"]),
        fixture(
            "verify_state",
            &[],
            vec![File("state", "checkpoint 42\n")],
            vec!["DIR/state"],
        ),
        // libnope.so.9 is missing on purpose: the dlopen fails, exit 1.
        status(
            fixture(
                "diff_app",
                &["-ldl"],
                vec![File("base.conf", "x\n")],
                vec!["DIR", "libz.so.1", "libnope.so.9"],
            ),
            Some(1),
        ),
        // Whether /dev/log is there is the machine's business.
        status(
            fixture("run_probe", &["-static"], vec![], vec!["sendlog", "hello"]),
            None,
        ),
        fixture(
            "run_probe",
            &["-static"],
            vec![],
            vec!["cat", "/etc/hostname"],
        ),
    ]
}

/// Real programs: a shell pipeline, python3 with imports, perl with POSIX.
pub fn programs() -> Vec<Case> {
    let program = |name, argv| Case {
        name,
        fixture: false,
        flags: &[],
        prep: vec![],
        argv,
        status: Some(0),
    };
    vec![
        program(
            "shell-pipeline",
            vec![
                "/bin/sh",
                "-c",
                "grep -v '^#' /etc/passwd | sort | uniq -c | wc -l",
            ],
        ),
        program(
            "python3",
            vec![
                "/usr/bin/python3",
                "-c",
                "import json, sqlite3, decimal, email, http.client; print(json.dumps([1]))",
            ],
        ),
        program(
            "perl",
            vec![
                "perl",
                "-MPOSIX",
                "-e",
                "print strftime(\"%Y\", gmtime(0)), \"\\n\"",
            ],
        ),
    ]
}

/// A case's label: its name, its flags and its first argument when those
/// tell two runs of one fixture apart.
pub fn label(c: &Case) -> String {
    let mut s = c.name.to_string();
    for f in c.flags {
        s.push_str(f);
    }
    if c.name == "morecalls" || c.name == "run_probe" {
        if let Some(a) = c.argv.first() {
            s.push('-');
            s.push_str(&a.replace("DIR", "dir"));
        }
    }
    s
}
