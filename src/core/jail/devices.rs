//! The device nodes a jail may hold without being asked: harmless ones
//! every libc and language runtime expects. `materialize` creates them,
//! `verify --fix` adds them, `check` accepts them.

/// (path, major, minor). Matched by path *and* number when creating, so a
/// manifest cannot pass off `/dev/sda` as `/dev/null`.
pub const SAFE: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Whether `path` names a device of the safe set (by path only).
pub fn is_safe_path(path: &[u8]) -> bool {
    SAFE.iter().any(|d| d.0.as_bytes() == path)
}

/// Whether `path` with these numbers is a device of the safe set.
pub fn is_safe(path: &[u8], major: u32, minor: u32) -> bool {
    SAFE.iter()
        .any(|d| d.0.as_bytes() == path && (d.1, d.2) == (major, minor))
}

/// Whether these numbers are those of a safe device, whatever its name:
/// such a node gives nothing more than /dev/null or /dev/tty does.
pub fn is_safe_number(major: u64, minor: u64) -> bool {
    SAFE.iter()
        .any(|&(_, ma, mi)| (u64::from(ma), u64::from(mi)) == (major, minor))
}
