//! Unix permission classes, the one place jailtrace decides which of a
//! mode's three `rwx` triples applies to a user (`verify --fix` asks what the
//! jail's user may read, `check` what it may write).

/// The `rwx` bits (0 to 7) of `mode` that apply to user `uid` with groups
/// `gids`, for an object owned by `owner` (uid, gid): the owner's, else the
/// group's, else the others'. Root's privileges are the caller's concern.
pub fn bits_for(mode: u32, owner: (u32, u32), uid: u32, gids: &[u32]) -> u32 {
    if owner.0 == uid {
        (mode >> 6) & 0o7
    } else if gids.contains(&owner.1) {
        (mode >> 3) & 0o7
    } else {
        mode & 0o7
    }
}

pub const READ: u32 = 0o4;
pub const WRITE: u32 = 0o2;
pub const SEARCH: u32 = 0o1;
