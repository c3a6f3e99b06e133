//! Turns a syscall number and its raw arguments into the path operands to
//! read from the tracee and the operations to record for them.

use crate::core::manifest::Op;

use super::arch::Sys;

/// Where a path comes from in the tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// A NUL-terminated string at `addr`, relative to `dirfd` (or the cwd
    /// for `AT_FDCWD`). With `empty_is_fd`, an empty string means the call
    /// operates on `dirfd` itself (`AT_EMPTY_PATH`): not a path access.
    Path {
        dirfd: i32,
        addr: u64,
        empty_is_fd: bool,
    },
    /// The file a descriptor refers to (`fchdir`, `execveat` of an fd).
    Fd(i32),
    /// A `sockaddr` of `len` bytes at `addr`; only AF_UNIX paths count.
    Sockaddr { addr: u64, len: u64 },
    /// `openat2`: a path plus an `open_how` whose flags decide the ops.
    Openat2 { dirfd: i32, addr: u64, how: u64 },
    /// i386 `socketcall`: its arguments are an array of 32-bit values in
    /// the tracee, and `pair` is the address of the (sockaddr pointer,
    /// length) pair in it. Only AF_UNIX paths count.
    SocketcallSockaddr { pair: u64 },
    /// `count` message headers at `addr`, `stride` bytes apart, each naming
    /// its destination (`msg_name`, `msg_namelen`) at its start; `compat`
    /// for i386 layouts (32-bit pointer). Only AF_UNIX paths count.
    Msghdrs {
        addr: u64,
        count: u64,
        stride: u64,
        compat: bool,
    },
    /// i386 `socketcall` sendmsg/sendmmsg: the 32-bit arguments at `args`
    /// hold the header pointer (and, for sendmmsg, the count).
    SocketcallMsghdrs { args: u64, many: bool },
    /// No path at entry: on success, the file of the descriptor the call
    /// returns (`open_by_handle_at`).
    ReturnedFd,
}

/// `struct msghdr` and `struct mmsghdr` sizes, native and i386.
pub const MSGHDR: u64 = 56;
pub const MMSGHDR: u64 = 64;
pub const MSGHDR32: u64 = 28;
pub const MMSGHDR32: u64 = 32;
/// The kernel sends at most UIO_MAXIOV messages per sendmmsg.
pub const MAX_MMSG: u64 = 1024;

/// A set of [`Op`]s as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ops(u32);

impl Ops {
    pub fn one(op: Op) -> Ops {
        Ops(1 << op as u32)
    }

    pub fn with(self, op: Op) -> Ops {
        Ops(self.0 | 1 << op as u32)
    }

    pub fn iter(self) -> impl Iterator<Item = Op> {
        Op::ALL
            .iter()
            .copied()
            .filter(move |&op| self.0 & (1 << op as u32) != 0)
    }
}

// Every op has a bit of the mask.
const _: () = assert!(Op::ALL.len() <= u32::BITS as usize);

/// One operand of a call and what the call does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    pub operand: Operand,
    pub ops: Ops,
    /// Whether a symlink in the last component is followed.
    pub follow: bool,
}

/// Up to two operands (rename, link).
pub type Uses = [Option<Use>; 2];

const AT_FDCWD: i32 = libc::AT_FDCWD;
const AT_SYMLINK_NOFOLLOW: u64 = libc::AT_SYMLINK_NOFOLLOW as u64;
const AT_SYMLINK_FOLLOW: u64 = libc::AT_SYMLINK_FOLLOW as u64;
const AT_EMPTY_PATH: u64 = libc::AT_EMPTY_PATH as u64;
const AT_REMOVEDIR: u64 = libc::AT_REMOVEDIR as u64;
const IN_DONT_FOLLOW: u64 = libc::IN_DONT_FOLLOW as u64;

/// `socketcall` call numbers (linux/net.h).
pub const SYS_BIND: u64 = 2;
pub const SYS_CONNECT: u64 = 3;
pub const SYS_SENDTO: u64 = 11;
pub const SYS_SENDMSG: u64 = 16;
pub const SYS_SENDMMSG: u64 = 20;

/// Ops and symlink-following of an `open` with these flags.
pub fn open_ops(flags: u64) -> (Ops, bool) {
    let flags = flags as i32;
    let mut ops = if flags & libc::O_PATH != 0 {
        Ops::one(Op::Path)
    } else {
        match flags & libc::O_ACCMODE {
            libc::O_WRONLY => Ops::one(Op::Write),
            libc::O_RDWR => Ops::one(Op::Read).with(Op::Write),
            _ => Ops::one(Op::Read),
        }
    };
    if flags & libc::O_CREAT != 0 {
        ops = ops.with(Op::Create);
    }
    let excl_create = flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0;
    let follow = flags & libc::O_NOFOLLOW == 0 && !excl_create;
    (ops, follow)
}

fn path(dirfd: i32, addr: u64, ops: Ops, follow: bool) -> Option<Use> {
    Some(Use {
        operand: Operand::Path {
            dirfd,
            addr,
            empty_is_fd: false,
        },
        ops,
        follow,
    })
}

fn at_path(dirfd: u64, addr: u64, flags: u64, op: Op) -> Option<Use> {
    Some(Use {
        operand: Operand::Path {
            dirfd: dirfd as i32,
            addr,
            empty_is_fd: flags & AT_EMPTY_PATH != 0,
        },
        ops: Ops::one(op),
        follow: flags & AT_SYMLINK_NOFOLLOW == 0,
    })
}

/// `fanotify_mark`: the marked object is `path` relative to `dirfd`, or
/// `dirfd` itself when `path` is NULL. A flush names no object.
fn fanotify_mark(flags: u64, dirfd: u64, addr: u64) -> Uses {
    const FAN_MARK_DONT_FOLLOW: u64 = 0x04;
    const FAN_MARK_FLUSH: u64 = 0x80;
    let dirfd = dirfd as i32;
    if flags & FAN_MARK_FLUSH != 0 {
        return [None, None];
    }
    if addr == 0 {
        // With AT_FDCWD that is the working directory, which the program
        // reached by a recorded chdir or started in: nothing new.
        if dirfd == AT_FDCWD {
            return [None, None];
        }
        return [
            Some(Use {
                operand: Operand::Fd(dirfd),
                ops: Ops::one(Op::Watch),
                follow: true,
            }),
            None,
        ];
    }
    [
        path(
            dirfd,
            addr,
            Ops::one(Op::Watch),
            flags & FAN_MARK_DONT_FOLLOW == 0,
        ),
        None,
    ]
}

/// Decodes one recorded syscall. `a` are the raw arguments.
pub fn decode(sys: Sys, a: &[u64; 6]) -> Uses {
    let cwd = AT_FDCWD;
    let fd = |x: u64| x as i32;
    match sys {
        Sys::Open => {
            let (ops, follow) = open_ops(a[1]);
            [path(cwd, a[0], ops, follow), None]
        }
        Sys::Openat => {
            let (ops, follow) = open_ops(a[2]);
            [path(fd(a[0]), a[1], ops, follow), None]
        }
        Sys::Openat2 => [
            Some(Use {
                operand: Operand::Openat2 {
                    dirfd: fd(a[0]),
                    addr: a[1],
                    how: a[2],
                },
                ops: Ops::default(),
                follow: true,
            }),
            None,
        ],
        Sys::Creat => {
            let (ops, follow) = open_ops((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64);
            [path(cwd, a[0], ops, follow), None]
        }
        Sys::Stat => [path(cwd, a[0], Ops::one(Op::Stat), true), None],
        Sys::Lstat => [path(cwd, a[0], Ops::one(Op::Stat), false), None],
        Sys::Newfstatat => [at_path(a[0], a[1], a[3], Op::Stat), None],
        Sys::Statx => [at_path(a[0], a[1], a[2], Op::Stat), None],
        Sys::Access => [path(cwd, a[0], Ops::one(Op::Access), true), None],
        Sys::Faccessat => [path(fd(a[0]), a[1], Ops::one(Op::Access), true), None],
        Sys::Faccessat2 => [at_path(a[0], a[1], a[3], Op::Access), None],
        Sys::Readlink => [path(cwd, a[0], Ops::one(Op::Readlink), false), None],
        // readlinkat(fd, "") reads the symlink that fd itself refers to.
        Sys::Readlinkat => [
            at_path(
                a[0],
                a[1],
                AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
                Op::Readlink,
            ),
            None,
        ],
        Sys::Execve => [path(cwd, a[0], Ops::one(Op::Exec), true), None],
        Sys::Execveat => {
            let mut u = at_path(a[0], a[1], a[4], Op::Exec);
            if let Some(Use {
                operand: Operand::Path {
                    empty_is_fd: true, ..
                },
                ..
            }) = u
            {
                // fexecve: an empty path execs the fd; resolve it through
                // /proc like any fd.
                u = Some(Use {
                    operand: Operand::Path {
                        dirfd: fd(a[0]),
                        addr: a[1],
                        empty_is_fd: true,
                    },
                    ops: Ops::one(Op::Exec),
                    follow: true,
                });
            }
            [u, None]
        }
        Sys::Chdir => [path(cwd, a[0], Ops::one(Op::Chdir), true), None],
        Sys::Fchdir => [
            Some(Use {
                operand: Operand::Fd(fd(a[0])),
                ops: Ops::one(Op::Chdir),
                follow: true,
            }),
            None,
        ],
        Sys::Mkdir => [path(cwd, a[0], Ops::one(Op::Mkdir), false), None],
        Sys::Mkdirat => [path(fd(a[0]), a[1], Ops::one(Op::Mkdir), false), None],
        Sys::Rmdir => [path(cwd, a[0], Ops::one(Op::Rmdir), false), None],
        Sys::Unlink => [path(cwd, a[0], Ops::one(Op::Unlink), false), None],
        Sys::Unlinkat => {
            let op = if a[2] & AT_REMOVEDIR != 0 {
                Op::Rmdir
            } else {
                Op::Unlink
            };
            [path(fd(a[0]), a[1], Ops::one(op), false), None]
        }
        Sys::Rename => [
            path(cwd, a[0], Ops::one(Op::RenameFrom), false),
            path(cwd, a[1], Ops::one(Op::RenameTo), false),
        ],
        Sys::Renameat | Sys::Renameat2 => [
            path(fd(a[0]), a[1], Ops::one(Op::RenameFrom), false),
            path(fd(a[2]), a[3], Ops::one(Op::RenameTo), false),
        ],
        Sys::Link => [
            path(cwd, a[0], Ops::one(Op::LinkFrom), false),
            path(cwd, a[1], Ops::one(Op::LinkTo), false),
        ],
        Sys::Linkat => {
            let from = Use {
                operand: Operand::Path {
                    dirfd: fd(a[0]),
                    addr: a[1],
                    empty_is_fd: a[4] & AT_EMPTY_PATH != 0,
                },
                ops: Ops::one(Op::LinkFrom),
                follow: a[4] & AT_SYMLINK_FOLLOW != 0,
            };
            [
                Some(from),
                path(fd(a[2]), a[3], Ops::one(Op::LinkTo), false),
            ]
        }
        // The target of a new symlink is data, not an access.
        Sys::Symlink => [path(cwd, a[1], Ops::one(Op::Symlink), false), None],
        Sys::Symlinkat => [path(fd(a[1]), a[2], Ops::one(Op::Symlink), false), None],
        Sys::Connect | Sys::Bind => {
            let op = if sys == Sys::Connect {
                Op::Connect
            } else {
                Op::Bind
            };
            [
                Some(Use {
                    operand: Operand::Sockaddr {
                        addr: a[1],
                        len: a[2],
                    },
                    ops: Ops::one(op),
                    follow: op == Op::Connect,
                }),
                None,
            ]
        }
        // A destination address makes sendto a connect; `send` has none
        // (a NULL pointer, which reads as no path).
        Sys::Sendto => [
            Some(Use {
                operand: Operand::Sockaddr {
                    addr: a[4],
                    len: a[5],
                },
                ops: Ops::one(Op::Connect),
                follow: true,
            }),
            None,
        ],
        Sys::Sendmsg | Sys::Sendmmsg | Sys::Sendmsg32 | Sys::Sendmmsg32 => {
            let (count, stride, compat) = match sys {
                Sys::Sendmsg => (1, MSGHDR, false),
                Sys::Sendmmsg => (a[2].min(MAX_MMSG), MMSGHDR, false),
                Sys::Sendmsg32 => (1, MSGHDR32, true),
                _ => (a[2].min(MAX_MMSG), MMSGHDR32, true),
            };
            [
                Some(Use {
                    operand: Operand::Msghdrs {
                        addr: a[1],
                        count,
                        stride,
                        compat,
                    },
                    ops: Ops::one(Op::Connect),
                    follow: true,
                }),
                None,
            ]
        }
        Sys::Socketcall => {
            // Offsets of the sockaddr in the array of 32-bit arguments:
            // connect/bind(fd, addr, len), sendto(fd, buf, n, flags, addr, len).
            let (index, op) = match a[0] {
                SYS_CONNECT => (1, Op::Connect),
                SYS_BIND => (1, Op::Bind),
                SYS_SENDTO => (4, Op::Connect),
                SYS_SENDMSG | SYS_SENDMMSG => {
                    return [
                        Some(Use {
                            operand: Operand::SocketcallMsghdrs {
                                args: a[1],
                                many: a[0] == SYS_SENDMMSG,
                            },
                            ops: Ops::one(Op::Connect),
                            follow: true,
                        }),
                        None,
                    ]
                }
                _ => return [None, None],
            };
            [
                Some(Use {
                    operand: Operand::SocketcallSockaddr {
                        pair: a[1].wrapping_add(4 * index),
                    },
                    ops: Ops::one(op),
                    follow: op == Op::Connect,
                }),
                None,
            ]
        }
        // A new inode, like mkdir: an existing last symlink is not followed
        // (EEXIST).
        Sys::Mknod => [path(cwd, a[0], Ops::one(Op::Mknod), false), None],
        Sys::Mknodat => [path(fd(a[0]), a[1], Ops::one(Op::Mknod), false), None],
        Sys::Chmod => [path(cwd, a[0], Ops::one(Op::Chmod), true), None],
        // The syscall has no flags: glibc emulates AT_SYMLINK_NOFOLLOW with
        // an O_PATH open and /proc/self/fd, which are traced on their own.
        Sys::Fchmodat => [path(fd(a[0]), a[1], Ops::one(Op::Chmod), true), None],
        Sys::Fchmodat2 => [at_path(a[0], a[1], a[3], Op::Chmod), None],
        Sys::Chown => [path(cwd, a[0], Ops::one(Op::Chown), true), None],
        Sys::Lchown => [path(cwd, a[0], Ops::one(Op::Chown), false), None],
        Sys::Fchownat => [at_path(a[0], a[1], a[4], Op::Chown), None],
        // Changes the data, as an open for writing would.
        Sys::Truncate => [path(cwd, a[0], Ops::one(Op::Write), true), None],
        Sys::Utime | Sys::Utimes => [path(cwd, a[0], Ops::one(Op::Utime), true), None],
        // A NULL path (futimens, futimes) sets the times of the descriptor:
        // a NULL pointer reads as no path access.
        Sys::Utimensat => [at_path(a[0], a[1], a[3], Op::Utime), None],
        Sys::Futimesat => [path(fd(a[0]), a[1], Ops::one(Op::Utime), true), None],
        // Reading metadata of the file (system), as stat does.
        Sys::Statfs => [path(cwd, a[0], Ops::one(Op::Stat), true), None],
        Sys::Getxattr | Sys::Listxattr => [path(cwd, a[0], Ops::one(Op::Stat), true), None],
        Sys::Lgetxattr | Sys::Llistxattr => [path(cwd, a[0], Ops::one(Op::Stat), false), None],
        Sys::Getxattrat | Sys::Listxattrat => [at_path(a[0], a[1], a[2], Op::Stat), None],
        Sys::Setxattr | Sys::Removexattr => [path(cwd, a[0], Ops::one(Op::Xattr), true), None],
        Sys::Lsetxattr | Sys::Lremovexattr => [path(cwd, a[0], Ops::one(Op::Xattr), false), None],
        Sys::Setxattrat | Sys::Removexattrat => [at_path(a[0], a[1], a[2], Op::Xattr), None],
        Sys::InotifyAddWatch => [
            path(cwd, a[1], Ops::one(Op::Watch), a[2] & IN_DONT_FOLLOW == 0),
            None,
        ],
        // A handle to the object, like an O_PATH open. Unlike the other *at
        // calls it follows only with AT_SYMLINK_FOLLOW.
        Sys::NameToHandleAt => [
            Some(Use {
                operand: Operand::Path {
                    dirfd: fd(a[0]),
                    addr: a[1],
                    empty_is_fd: a[4] & AT_EMPTY_PATH != 0,
                },
                ops: Ops::one(Op::Path),
                follow: a[4] & AT_SYMLINK_FOLLOW != 0,
            }),
            None,
        ],
        Sys::FanotifyMark => fanotify_mark(a[1], a[3], a[4]),
        Sys::FanotifyMarkSplit => fanotify_mark(a[1], a[4], a[5]),
        Sys::Chroot => [path(cwd, a[0], Ops::one(Op::Chroot), true), None],
        Sys::PivotRoot => [
            path(cwd, a[0], Ops::one(Op::Chroot), true),
            path(cwd, a[1], Ops::one(Op::Stat), true),
        ],
        Sys::OpenByHandleAt => {
            let (ops, follow) = open_ops(a[2]);
            [
                Some(Use {
                    operand: Operand::ReturnedFd,
                    ops,
                    follow,
                }),
                None,
            ]
        }
        Sys::IoUringSetup
        | Sys::SchedGetaffinity
        | Sys::Umount
        | Sys::Unshare
        | Sys::Setns
        | Sys::SetId => [None, None],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_map_to_ops() {
        let (ops, follow) = open_ops(libc::O_RDONLY as u64);
        assert_eq!(ops.iter().collect::<Vec<_>>(), [Op::Read]);
        assert!(follow);
        let (ops, follow) = open_ops((libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as u64);
        assert_eq!(
            ops.iter().collect::<Vec<_>>(),
            [Op::Read, Op::Write, Op::Create]
        );
        assert!(!follow);
        let (ops, follow) = open_ops((libc::O_PATH | libc::O_NOFOLLOW) as u64);
        assert_eq!(ops.iter().collect::<Vec<_>>(), [Op::Path]);
        assert!(!follow);
    }

    #[test]
    fn at_flags_are_honoured() {
        let [u, _] = decode(Sys::Newfstatat, &[3, 0x1000, 0, 0x100 | 0x1000, 0, 0]);
        let u = u.unwrap();
        assert!(!u.follow);
        assert_eq!(
            u.operand,
            Operand::Path {
                dirfd: 3,
                addr: 0x1000,
                empty_is_fd: true
            }
        );
        let [from, to] = decode(Sys::Renameat2, &[1, 2, 3, 4, 0, 0]);
        assert_eq!(from.unwrap().ops.iter().next(), Some(Op::RenameFrom));
        assert_eq!(to.unwrap().ops.iter().next(), Some(Op::RenameTo));
    }

    /// (op, follow) of the single operand of a call.
    fn one(sys: Sys, a: [u64; 6]) -> (Op, bool) {
        let [u, none] = decode(sys, &a);
        assert!(none.is_none());
        let u = u.unwrap_or_else(|| panic!("{sys:?} decodes to nothing"));
        let ops: Vec<Op> = u.ops.iter().collect();
        assert_eq!(ops.len(), 1, "{sys:?}");
        (ops[0], u.follow)
    }

    #[test]
    fn metadata_calls_follow_as_the_kernel_does() {
        let nofollow = libc::AT_SYMLINK_NOFOLLOW as u64;
        let x = 0x1000;
        assert_eq!(one(Sys::Chmod, [x, 0, 0, 0, 0, 0]), (Op::Chmod, true));
        assert_eq!(
            one(Sys::Fchmodat, [3, x, 0, nofollow, 0, 0]),
            (Op::Chmod, true)
        );
        assert_eq!(
            one(Sys::Fchmodat2, [3, x, 0, nofollow, 0, 0]),
            (Op::Chmod, false)
        );
        assert_eq!(one(Sys::Fchmodat2, [3, x, 0, 0, 0, 0]), (Op::Chmod, true));
        assert_eq!(one(Sys::Chown, [x, 0, 0, 0, 0, 0]), (Op::Chown, true));
        assert_eq!(one(Sys::Lchown, [x, 0, 0, 0, 0, 0]), (Op::Chown, false));
        assert_eq!(
            one(Sys::Fchownat, [3, x, 0, 0, nofollow, 0]),
            (Op::Chown, false)
        );
        assert_eq!(one(Sys::Fchownat, [3, x, 0, 0, 0, 0]), (Op::Chown, true));
        assert_eq!(
            one(Sys::Utimensat, [3, x, 0, nofollow, 0, 0]),
            (Op::Utime, false)
        );
        assert_eq!(one(Sys::Utimes, [x, 0, 0, 0, 0, 0]), (Op::Utime, true));
        assert_eq!(one(Sys::Truncate, [x, 0, 0, 0, 0, 0]), (Op::Write, true));
        assert_eq!(one(Sys::Statfs, [x, 0, 0, 0, 0, 0]), (Op::Stat, true));
        assert_eq!(one(Sys::Getxattr, [x, 0, 0, 0, 0, 0]), (Op::Stat, true));
        assert_eq!(one(Sys::Llistxattr, [x, 0, 0, 0, 0, 0]), (Op::Stat, false));
        assert_eq!(
            one(Sys::Getxattrat, [3, x, nofollow, 0, 0, 0]),
            (Op::Stat, false)
        );
        assert_eq!(one(Sys::Setxattr, [x, 0, 0, 0, 0, 0]), (Op::Xattr, true));
        assert_eq!(
            one(Sys::Lremovexattr, [x, 0, 0, 0, 0, 0]),
            (Op::Xattr, false)
        );
        assert_eq!(one(Sys::Setxattrat, [3, x, 0, 0, 0, 0]), (Op::Xattr, true));
        assert_eq!(one(Sys::Mknodat, [3, x, 0, 0, 0, 0]), (Op::Mknod, false));
        assert_eq!(one(Sys::Chroot, [x, 0, 0, 0, 0, 0]), (Op::Chroot, true));
        // fanotify_mark: the path is relative to dirfd, DONT_FOLLOW honoured;
        // a NULL path marks dirfd itself; a flush names nothing.
        assert_eq!(
            one(Sys::FanotifyMark, [3, 0x1, 0x10, 4, x, 0]),
            (Op::Watch, true)
        );
        assert_eq!(
            one(Sys::FanotifyMark, [3, 0x1 | 0x4, 0x10, 4, x, 0]),
            (Op::Watch, false)
        );
        assert_eq!(
            one(Sys::FanotifyMarkSplit, [3, 0x1 | 0x4, 0x10, 0, 4, x]),
            (Op::Watch, false)
        );
        let u = decode(Sys::FanotifyMark, &[3, 0x1, 0x10, 4, 0, 0]);
        assert_eq!(u[0].unwrap().operand, Operand::Fd(4));
        assert!(decode(Sys::FanotifyMark, &[3, 0x80, 0x10, 4, x, 0])[0].is_none());
        let u = decode(Sys::PivotRoot, &[x, x + 8, 0, 0, 0, 0]);
        assert_eq!(
            (u[0].unwrap().ops, u[1].unwrap().ops),
            (Ops::one(Op::Chroot), Ops::one(Op::Stat))
        );
        let dont_follow = u64::from(libc::IN_DONT_FOLLOW);
        assert_eq!(
            one(Sys::InotifyAddWatch, [3, x, 0, 0, 0, 0]),
            (Op::Watch, true)
        );
        assert_eq!(
            one(Sys::InotifyAddWatch, [3, x, dont_follow, 0, 0, 0]),
            (Op::Watch, false)
        );
        // name_to_handle_at follows only when asked to.
        let follow = libc::AT_SYMLINK_FOLLOW as u64;
        assert_eq!(
            one(Sys::NameToHandleAt, [3, x, 0, 0, 0, 0]),
            (Op::Path, false)
        );
        assert_eq!(
            one(Sys::NameToHandleAt, [3, x, 0, 0, follow, 0]),
            (Op::Path, true)
        );
        // futimens: utimensat(fd, NULL, ...) names no path (a NULL address
        // is never read as a string).
        let [u, _] = decode(Sys::Utimensat, &[3, 0, x, 0, 0, 0]);
        assert!(matches!(u.unwrap().operand, Operand::Path { addr: 0, .. }));
    }

    #[test]
    fn socket_addresses_of_sendto_and_socketcall() {
        let [u, _] = decode(Sys::Sendto, &[3, 0x1000, 5, 0, 0x2000, 110]);
        let u = u.unwrap();
        assert_eq!(
            u.operand,
            Operand::Sockaddr {
                addr: 0x2000,
                len: 110
            }
        );
        assert_eq!(u.ops.iter().collect::<Vec<_>>(), [Op::Connect]);
        let args = 0x8000;
        for (call, pair, op, follow) in [
            (SYS_CONNECT, args + 4, Op::Connect, true),
            (SYS_BIND, args + 4, Op::Bind, false),
            (SYS_SENDTO, args + 16, Op::Connect, true),
        ] {
            let [u, _] = decode(Sys::Socketcall, &[call, args, 0, 0, 0, 0]);
            let u = u.unwrap();
            assert_eq!(u.operand, Operand::SocketcallSockaddr { pair });
            assert_eq!(u.ops.iter().collect::<Vec<_>>(), [op]);
            assert_eq!(u.follow, follow);
        }
        // socket(2), listen(4), recv(10): no address.
        for call in [1, 4, 10] {
            assert_eq!(
                decode(Sys::Socketcall, &[call, args, 0, 0, 0, 0]),
                [None, None]
            );
        }
    }

    #[test]
    fn every_op_has_its_bit_and_its_json_name() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "Op::ALL is in declaration order");
            assert_eq!(
                serde_json::to_string(op).unwrap(),
                format!("\"{}\"", op.name())
            );
            assert_eq!(Ops::one(*op).iter().collect::<Vec<_>>(), [*op]);
        }
    }
}
