//! Per-architecture syscall tables: which numbers jailtrace decodes, and
//! what each one is. Adding an architecture means adding a table here and a
//! native audit arch for the seccomp filter.

/// A syscall jailtrace records, independent of architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sys {
    Open,
    Openat,
    Openat2,
    Creat,
    Stat,
    Lstat,
    Newfstatat,
    Statx,
    Access,
    Faccessat,
    Faccessat2,
    Readlink,
    Readlinkat,
    Execve,
    Execveat,
    Chdir,
    Fchdir,
    Mkdir,
    Mkdirat,
    Rmdir,
    Unlink,
    Unlinkat,
    Rename,
    Renameat,
    Renameat2,
    Link,
    Linkat,
    Symlink,
    Symlinkat,
    Connect,
    Bind,
    /// `sendto` with a destination address (`send` is `sendto` without one).
    Sendto,
    /// `sendmsg` and `sendmmsg`: a `msghdr` (or an array of `mmsghdr`) may
    /// name an AF_UNIX destination, as journald's clients do.
    Sendmsg,
    Sendmmsg,
    /// The same with i386 (compat) struct layouts.
    Sendmsg32,
    Sendmmsg32,
    /// i386 `socketcall(call, args)`: connect, bind, sendto, sendmsg and
    /// sendmmsg of 32-bit programs that do not use the direct socket
    /// syscalls.
    Socketcall,
    Mknod,
    Mknodat,
    Chmod,
    /// The kernel's `fchmodat` has no flags argument: it always follows.
    Fchmodat,
    Fchmodat2,
    Chown,
    Lchown,
    Fchownat,
    Truncate,
    Utime,
    Utimes,
    Utimensat,
    Futimesat,
    Statfs,
    Getxattr,
    Lgetxattr,
    Listxattr,
    Llistxattr,
    Setxattr,
    Lsetxattr,
    Removexattr,
    Lremovexattr,
    Getxattrat,
    Listxattrat,
    Setxattrat,
    Removexattrat,
    InotifyAddWatch,
    /// `open_by_handle_at(mount_fd, handle, flags)`: no path at entry; the
    /// file opened is read from the new descriptor at exit.
    OpenByHandleAt,
    /// `fanotify_mark(fd, flags, mask, dirfd, path)`.
    FanotifyMark,
    /// The i386 form, whose 64-bit mask takes two arguments.
    FanotifyMarkSplit,
    NameToHandleAt,
    /// Recorded, and reported as a warning when it succeeds: later absolute
    /// paths are relative to the new root.
    Chroot,
    /// `pivot_root(new_root, put_old)`: recorded and followed like chroot.
    PivotRoot,
    /// Not a path syscall: its opens are invisible to ptrace, so its use is
    /// reported as a warning.
    IoUringSetup,
    /// Not a path syscall: with `--cpu same` the tracer rewrites its result
    /// to the command's original CPU mask (see `trace::Placement`).
    SchedGetaffinity,
    /// Not recorded: the tracer drops the descriptors its dirfd cache holds,
    /// which would otherwise keep the file system busy.
    Umount,
    /// Not path syscalls: `unshare` and `setns`. After a successful one
    /// the tracer checks whether the thread left the mount namespace the
    /// command started in (its paths then need checking against the host);
    /// the bpf program notes a namespace that `unshare` copied.
    Unshare,
    Setns,
    /// Not a path syscall: `setuid`, `setgid`, `setreuid`, `setregid`,
    /// `setresuid`, `setresgid`, `setfsuid`, `setfsgid`, `setgroups` (and
    /// i386's 16-bit-id and `*32` forms). After a successful one the
    /// thread's credentials are read, so that a jail knows the accounts a
    /// daemon switches to.
    SetId,
}

/// `AUDIT_ARCH_X86_64`.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386` (32-bit programs on x86_64 kernels).
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 syscalls set this bit in the number.
pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "jailtrace's syscall tables cover x86_64 (and i386 programs on it) so far: \
     add this architecture's table and audit arch in src/trace/arch.rs"
);

/// The architecture the seccomp filter treats as native.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_AUDIT_ARCH: u32 = AUDIT_ARCH_X86_64;

/// The compat architecture whose syscalls the filter also decides by
/// number; any other foreign architecture always stops.
#[cfg(target_arch = "x86_64")]
pub const COMPAT_AUDIT_ARCH: u32 = AUDIT_ARCH_I386;

/// The table of an audit arch (empty for architectures jailtrace does not
/// decode).
pub fn table(arch: u32) -> &'static [(u32, Sys)] {
    match arch {
        AUDIT_ARCH_X86_64 => X86_64,
        AUDIT_ARCH_I386 => I386,
        _ => &[],
    }
}

/// Looks up a syscall by audit arch and number.
pub fn lookup(arch: u32, nr: u64) -> Option<Sys> {
    if arch == AUDIT_ARCH_X86_64 && nr & X32_SYSCALL_BIT != 0 {
        return None;
    }
    let nr = u32::try_from(nr).ok()?;
    table(arch).iter().find(|&&(n, _)| n == nr).map(|&(_, s)| s)
}

/// x86_64 (from arch/x86/entry/syscalls/syscall_64.tbl).
const X86_64: &[(u32, Sys)] = &[
    (2, Sys::Open),
    (4, Sys::Stat),
    (204, Sys::SchedGetaffinity),
    (166, Sys::Umount),
    (272, Sys::Unshare),
    (308, Sys::Setns),
    (6, Sys::Lstat),
    (21, Sys::Access),
    (42, Sys::Connect),
    (49, Sys::Bind),
    (59, Sys::Execve),
    (80, Sys::Chdir),
    (81, Sys::Fchdir),
    (82, Sys::Rename),
    (83, Sys::Mkdir),
    (84, Sys::Rmdir),
    (85, Sys::Creat),
    (86, Sys::Link),
    (87, Sys::Unlink),
    (88, Sys::Symlink),
    (89, Sys::Readlink),
    (257, Sys::Openat),
    (258, Sys::Mkdirat),
    (262, Sys::Newfstatat),
    (263, Sys::Unlinkat),
    (264, Sys::Renameat),
    (265, Sys::Linkat),
    (266, Sys::Symlinkat),
    (267, Sys::Readlinkat),
    (269, Sys::Faccessat),
    (316, Sys::Renameat2),
    (322, Sys::Execveat),
    (332, Sys::Statx),
    (425, Sys::IoUringSetup),
    (437, Sys::Openat2),
    (439, Sys::Faccessat2),
    (44, Sys::Sendto),
    (46, Sys::Sendmsg),
    (307, Sys::Sendmmsg),
    (76, Sys::Truncate),
    (90, Sys::Chmod),
    (92, Sys::Chown),
    (94, Sys::Lchown),
    (132, Sys::Utime),
    (133, Sys::Mknod),
    (137, Sys::Statfs),
    (161, Sys::Chroot),
    (155, Sys::PivotRoot),
    (301, Sys::FanotifyMark),
    (188, Sys::Setxattr),
    (189, Sys::Lsetxattr),
    (191, Sys::Getxattr),
    (192, Sys::Lgetxattr),
    (194, Sys::Listxattr),
    (195, Sys::Llistxattr),
    (197, Sys::Removexattr),
    (198, Sys::Lremovexattr),
    (235, Sys::Utimes),
    (254, Sys::InotifyAddWatch),
    (259, Sys::Mknodat),
    (260, Sys::Fchownat),
    (261, Sys::Futimesat),
    (268, Sys::Fchmodat),
    (280, Sys::Utimensat),
    (303, Sys::NameToHandleAt),
    (304, Sys::OpenByHandleAt),
    (452, Sys::Fchmodat2),
    (463, Sys::Setxattrat),
    (464, Sys::Getxattrat),
    (465, Sys::Listxattrat),
    (466, Sys::Removexattrat),
    (105, Sys::SetId), // setuid
    (106, Sys::SetId), // setgid
    (113, Sys::SetId), // setreuid
    (114, Sys::SetId), // setregid
    (116, Sys::SetId), // setgroups
    (117, Sys::SetId), // setresuid
    (119, Sys::SetId), // setresgid
    (122, Sys::SetId), // setfsuid
    (123, Sys::SetId), // setfsgid
];

/// i386 (from arch/x86/entry/syscalls/syscall_32.tbl). Old and 64-bit
/// variants (stat, statfs, truncate, 16- and 32-bit-id chown, time64
/// utimensat) share one decoding: only the path and flags matter.
const I386: &[(u32, Sys)] = &[
    (5, Sys::Open),
    (8, Sys::Creat),
    (242, Sys::SchedGetaffinity),
    (22, Sys::Umount),
    (52, Sys::Umount),
    (310, Sys::Unshare),
    (346, Sys::Setns),
    (9, Sys::Link),
    (10, Sys::Unlink),
    (11, Sys::Execve),
    (12, Sys::Chdir),
    (18, Sys::Stat), // oldstat
    (33, Sys::Access),
    (38, Sys::Rename),
    (39, Sys::Mkdir),
    (40, Sys::Rmdir),
    (83, Sys::Symlink),
    (84, Sys::Lstat), // oldlstat
    (85, Sys::Readlink),
    (106, Sys::Stat),
    (107, Sys::Lstat),
    (133, Sys::Fchdir),
    (195, Sys::Stat),  // stat64
    (196, Sys::Lstat), // lstat64
    (295, Sys::Openat),
    (296, Sys::Mkdirat),
    (300, Sys::Newfstatat), // fstatat64
    (301, Sys::Unlinkat),
    (302, Sys::Renameat),
    (303, Sys::Linkat),
    (304, Sys::Symlinkat),
    (305, Sys::Readlinkat),
    (307, Sys::Faccessat),
    (353, Sys::Renameat2),
    (358, Sys::Execveat),
    (361, Sys::Bind),
    (362, Sys::Connect),
    (383, Sys::Statx),
    (425, Sys::IoUringSetup),
    (437, Sys::Openat2),
    (439, Sys::Faccessat2),
    (14, Sys::Mknod),
    (15, Sys::Chmod),
    (16, Sys::Lchown), // lchown16
    (30, Sys::Utime),
    (61, Sys::Chroot),
    (217, Sys::PivotRoot),
    (339, Sys::FanotifyMarkSplit),
    (92, Sys::Truncate),
    (99, Sys::Statfs),
    (102, Sys::Socketcall),
    (182, Sys::Chown),    // chown16
    (193, Sys::Truncate), // truncate64
    (198, Sys::Lchown),   // lchown32
    (212, Sys::Chown),    // chown32
    (226, Sys::Setxattr),
    (227, Sys::Lsetxattr),
    (229, Sys::Getxattr),
    (230, Sys::Lgetxattr),
    (232, Sys::Listxattr),
    (233, Sys::Llistxattr),
    (235, Sys::Removexattr),
    (236, Sys::Lremovexattr),
    (268, Sys::Statfs), // statfs64
    (271, Sys::Utimes),
    (292, Sys::InotifyAddWatch),
    (297, Sys::Mknodat),
    (298, Sys::Fchownat),
    (299, Sys::Futimesat),
    (306, Sys::Fchmodat),
    (320, Sys::Utimensat),
    (341, Sys::NameToHandleAt),
    (342, Sys::OpenByHandleAt),
    (369, Sys::Sendto),
    (370, Sys::Sendmsg32),
    (345, Sys::Sendmmsg32),
    (412, Sys::Utimensat), // utimensat_time64
    (452, Sys::Fchmodat2),
    (463, Sys::Setxattrat),
    (464, Sys::Getxattrat),
    (465, Sys::Listxattrat),
    (466, Sys::Removexattrat),
    (23, Sys::SetId),  // setuid16
    (46, Sys::SetId),  // setgid16
    (70, Sys::SetId),  // setreuid16
    (71, Sys::SetId),  // setregid16
    (81, Sys::SetId),  // setgroups16
    (138, Sys::SetId), // setfsuid16
    (139, Sys::SetId), // setfsgid16
    (164, Sys::SetId), // setresuid16
    (170, Sys::SetId), // setresgid16
    (203, Sys::SetId), // setreuid32
    (204, Sys::SetId), // setregid32
    (206, Sys::SetId), // setgroups32
    (208, Sys::SetId), // setresuid32
    (210, Sys::SetId), // setresgid32
    (213, Sys::SetId), // setuid32
    (214, Sys::SetId), // setgid32
    (215, Sys::SetId), // setfsuid32
    (216, Sys::SetId), // setfsgid32
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_floor_stops_on_the_same_syscalls() {
        // bench/floor.c stands for the ptrace cost of this very filter.
        let c = include_str!("../../../bench/floor.c");
        let start = c.find("SYSCALLS[] = {").expect("SYSCALLS in floor.c");
        let list = &c[start..start + c[start..].find("};").unwrap()];
        let mut floor: Vec<u32> = list
            .lines()
            .skip(1)
            .filter_map(|l| l.trim().split(',').next()?.trim().parse().ok())
            .collect();
        let mut ours: Vec<u32> = X86_64.iter().map(|&(nr, _)| nr).collect();
        floor.sort_unstable();
        ours.sort_unstable();
        assert_eq!(floor, ours, "bench/floor.c SYSCALLS against X86_64");
    }

    #[test]
    fn tables_have_unique_numbers() {
        for table in [X86_64, I386] {
            let mut nrs: Vec<u32> = table.iter().map(|e| e.0).collect();
            nrs.sort();
            let before = nrs.len();
            nrs.dedup();
            assert_eq!(before, nrs.len());
        }
        assert_eq!(lookup(AUDIT_ARCH_X86_64, 257), Some(Sys::Openat));
        assert_eq!(lookup(AUDIT_ARCH_I386, 5), Some(Sys::Open));
        assert_eq!(lookup(AUDIT_ARCH_X86_64, 257 | X32_SYSCALL_BIT), None);
    }
}
