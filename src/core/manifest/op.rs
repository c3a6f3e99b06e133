//! The operations a manifest records, declared once: each row of the
//! table says what the operation means, and every decision about ops is
//! derived from that.

use serde::{Deserialize, Serialize};

/// How the run tells whether it made the object a creating operation
/// names, or found it there (the manifest's `created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Born {
    /// `O_CREAT`: the kernel says whether this open created the file
    /// (ptrace: the path's absence at entry; bpf: the open's `FMODE_CREATED`).
    CreateFlag,
    /// A rename's target: it replaced what was there, or made the name
    /// (ptrace: absence at entry; bpf: the rename kprobe's lookup).
    RenameTarget,
    /// mkdir, mknod, symlink, link and bind fail on an existing name: a
    /// success made it.
    FailsIfExists,
}

/// What an operation changes, for what an export must make writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    Nothing,
    /// The entries of the directory holding the path (a name came or went).
    Name,
    /// The object itself (its data or metadata).
    Object,
}

/// What an operation means, declared once per row of the [`Op`] table:
/// every decision about ops is derived from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meaning {
    /// It can bring the object into existence, and how the run tells.
    pub creates: Option<Born>,
    /// A success makes the entry an output of the program (its bytes
    /// change from run to run).
    pub output: bool,
    /// What it changes (the export's writable set).
    pub change: Change,
    /// It needs the object to exist beforehand: failing with ENOENT in a
    /// jail, on a path the host has, shows the jail lacks it (verify).
    pub needs_existing: bool,
    /// A success hands the program the object's bytes (or moves them to
    /// another name), so a jail gets them; otherwise only its metadata.
    pub content: bool,
}

/// Declares [`Op`] once: the enum, its manifest names, the list of all
/// operations and what each means come from this one table, so an
/// operation cannot be added to one and forgotten in another, and a row
/// must say every property (a struct literal: the compiler checks).
macro_rules! ops {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $meaning:expr, )*) => {
        /// What the program did with a path.
        #[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl Op {
            /// Every operation, in declaration order (the order accesses
            /// sort in).
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];

            /// The name in manifests.
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$variant => $name,)*
                }
            }

            /// What it means (the table's row).
            pub const fn meaning(self) -> Meaning {
                match self {
                    $(Op::$variant => $meaning,)*
                }
            }
        }
    };
}

/// Short names for the table's columns.
const fn m(
    creates: Option<Born>,
    output: bool,
    change: Change,
    needs_existing: bool,
    content: bool,
) -> Meaning {
    Meaning {
        creates,
        output,
        change,
        needs_existing,
        content,
    }
}

use Born::{CreateFlag, FailsIfExists, RenameTarget};
use Change::{Name, Nothing, Object};

// Columns: creates, output, change, needs_existing, content.
ops! {
    /// Opened for reading (files) or listing (directories).
    Read => "read", m(None, false, Nothing, true, true),
    /// Opened for writing.
    Write => "write", m(None, true, Object, true, true),
    /// Opened with `O_CREAT` (or `creat`).
    Create => "create", m(Some(CreateFlag), true, Object, false, true),
    /// Opened with `O_PATH`: a handle, no data access.
    Path => "path", m(None, false, Nothing, true, false),
    /// `execve`/`execveat` of this file.
    Exec => "exec", m(None, false, Nothing, true, true),
    /// Loaded by the kernel as the ELF interpreter of an executed binary.
    Interp => "interp", m(None, false, Nothing, true, true),
    /// stat/lstat/newfstatat/statx.
    Stat => "stat", m(None, false, Nothing, true, false),
    /// access/faccessat/faccessat2.
    Access => "access", m(None, false, Nothing, true, false),
    Readlink => "readlink", m(None, false, Nothing, true, false),
    Chdir => "chdir", m(None, false, Nothing, true, false),
    Mkdir => "mkdir", m(Some(FailsIfExists), true, Name, false, false),
    Rmdir => "rmdir", m(None, false, Name, false, false),
    Unlink => "unlink", m(None, false, Name, false, false),
    /// The bytes move to the new name, so the old one's go into a jail.
    RenameFrom => "rename-from", m(None, false, Name, false, true),
    RenameTo => "rename-to", m(Some(RenameTarget), true, Name, false, false),
    LinkFrom => "link-from", m(None, false, Nothing, false, true),
    LinkTo => "link-to", m(Some(FailsIfExists), true, Name, false, false),
    /// The path of a symlink created with symlink/symlinkat.
    Symlink => "symlink", m(Some(FailsIfExists), true, Name, false, false),
    /// A symlink met while resolving another accessed path.
    Follow => "follow", m(None, false, Nothing, false, false),
    /// `connect` on an AF_UNIX socket path.
    Connect => "connect", m(None, false, Nothing, true, false),
    /// `bind` on an AF_UNIX socket path.
    Bind => "bind", m(Some(FailsIfExists), true, Name, false, false),
    /// A node made with `mknod`/`mknodat` (FIFOs, devices, sockets, files).
    Mknod => "mknod", m(Some(FailsIfExists), true, Name, false, false),
    /// `chmod`, `fchmodat`, `fchmodat2`. Metadata changes need the object
    /// there already, so a jail must have it, and make no output.
    Chmod => "chmod", m(None, false, Object, true, false),
    /// `chown`, `lchown`, `fchownat`.
    Chown => "chown", m(None, false, Object, true, false),
    /// Times set with `utime`, `utimes`, `utimensat`, `futimesat`.
    Utime => "utime", m(None, false, Object, true, false),
    /// Extended attributes set or removed (`setxattr`, `removexattr` and
    /// their `l` and `at` forms); reading them is `stat`.
    Xattr => "xattr", m(None, false, Object, true, false),
    /// `inotify_add_watch`.
    Watch => "watch", m(None, false, Nothing, true, false),
    /// `chroot` to this directory.
    Chroot => "chroot", m(None, false, Nothing, true, false),
}

impl Op {
    /// Operations that change the file system at this path: the entry is an
    /// output of the program when one of them succeeded.
    pub fn is_output(self) -> bool {
        self.meaning().output
    }

    /// Operations that can bring the object at this path into existence.
    pub fn creates(self) -> bool {
        self.meaning().creates.is_some()
    }
}
