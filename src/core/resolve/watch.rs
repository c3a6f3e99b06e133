//! Whether what resolution looked at during the run is still what it saw
//! when the run ends (see `ahead`). The manifest describes the host after
//! the run, so a look taken during it counts only if nothing could have
//! changed it since:
//!
//! - every directory is watched (inotify) before anything in it is looked
//!   at, so a change to it or to any name in it (created, removed, moved,
//!   written, chmod/chown/xattr, written through a descriptor) is an event.
//!   The root is watched first, so by induction every object looked at
//!   lies in a watched directory;
//! - an object whose changes its directory's watch does not see gets a
//!   watch of its own before it is looked at again: a mount's root (its
//!   parent is on another file system) and a file with several names (it
//!   can change through a name in a directory nobody watches);
//! - a mount or unmount anywhere in jailtrace's mount namespace is seen by
//!   polling `/proc/self/mountinfo`;
//! - a file system whose changes may not pass through this kernel's VFS
//!   (network, FUSE, overlayfs) or that makes its contents up
//!   (/proc, /sys) is not watched: what lies on it is looked at again after
//!   the run and compared (see `Watch::unvetted`).
//!
//! An event about a name never looked at changes nothing resolution used;
//! any other event, a lost event or a watch that cannot be placed spoils
//! the whole run ahead, and resolution starts over after the run.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::entry::Meta;
use crate::core::manifest::Kind;

/// File systems whose every change goes through this kernel's VFS, and so
/// raises inotify events: ext2/3/4, XFS, Btrfs, tmpfs (and devtmpfs).
const LOCAL: [libc::c_long; 4] = [
    libc::EXT4_SUPER_MAGIC,
    libc::XFS_SUPER_MAGIC,
    libc::BTRFS_SUPER_MAGIC,
    libc::TMPFS_MAGIC,
];

/// The watch never takes more than this share of the user's inotify
/// watches (`fs.inotify.max_user_watches`): other programs need theirs.
const SHARE: usize = 4;

pub(super) struct Watch {
    inotify: Inotify,
    /// Each watch's object by the paths it was looked at under (a bind
    /// mount gives one directory two).
    paths: HashMap<WatchDescriptor, Vec<Box<[u8]>>>,
    /// Objects watched, by (device, inode).
    watched: HashMap<(u64, u64), WatchDescriptor>,
    limit: usize,
    /// `/proc/self/mountinfo`, open since before the first look: poll says
    /// whether the mount table changed since.
    mounts: std::fs::File,
    /// Paths looked at that no watch covers: looked at again after the run.
    unvetted: Vec<Vec<u8>>,
    /// Why the run ahead no longer counts (the first reason).
    spoiled: Option<String>,
}

impl Watch {
    /// Starts watching, with the root watched; why it cannot.
    pub fn new() -> Result<Self, String> {
        let mounts = std::fs::File::open("/proc/self/mountinfo")
            .map_err(|e| format!("cannot open /proc/self/mountinfo: {e}"))?;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| format!("inotify: {e}"))?;
        let max = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(8192);
        let mut w = Watch {
            inotify,
            paths: HashMap::new(),
            watched: HashMap::new(),
            limit: max / SHARE,
            mounts,
            unvetted: Vec::new(),
            spoiled: None,
        };
        let root = open_path(rustix::fs::CWD, b"/").map_err(|e| format!("cannot open /: {e}"))?;
        if !w.add(root.as_fd(), b"/") {
            return Err(w
                .spoiled
                .unwrap_or_else(|| "/ is on a file system that cannot be watched".into()));
        }
        Ok(w)
    }

    /// Watches the object open as `fd` (found at `path`) unless it is;
    /// whether it is now. An object on a file system that cannot be
    /// watched is not, and spoils nothing; failing to place a watch spoils.
    pub fn add(&mut self, fd: BorrowedFd<'_>, path: &[u8]) -> bool {
        let Ok(st) = rustix::fs::fstat(fd) else {
            return false;
        };
        if let Some(wd) = self.watched.get(&(st.st_dev, st.st_ino)) {
            let paths = self.paths.entry(*wd).or_default();
            if !paths.iter().any(|p| **p == *path) {
                paths.push(path.into());
            }
            return true;
        }
        let local = rustix::fs::fstatfs(fd).is_ok_and(|s| LOCAL.contains(&{ s.f_type }));
        if !local || self.spoiled.is_some() {
            return false;
        }
        if self.watched.len() >= self.limit {
            self.spoil(format!(
                "more than {} directories to watch (a quarter of fs.inotify.max_user_watches)",
                self.limit
            ));
            return false;
        }
        // The object itself, through its descriptor: its path may name
        // another object by now.
        let at = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVE_SELF;
        match self.inotify.add_watch(at.as_str(), mask) {
            Ok(wd) => {
                self.watched.insert((st.st_dev, st.st_ino), wd);
                self.paths.entry(wd).or_default().push(path.into());
                true
            }
            Err(e) => {
                self.spoil(format!("cannot watch {}: {e}", show(path)));
                false
            }
        }
    }

    /// `path` was looked at with no watch over it.
    pub fn unvetted(&mut self, path: &[u8]) {
        self.unvetted.push(path.to_vec());
    }

    /// The paths looked at with no watch over them.
    pub fn take_unvetted(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.unvetted)
    }

    pub fn spoil(&mut self, why: String) {
        self.spoiled.get_or_insert(why);
    }

    /// Reads what happened so far; why the run ahead no longer counts, if
    /// it does not. `looked(path)`: what was seen at `path`, if it was
    /// looked at (`Some(None)`: nothing was there).
    pub fn check<'m>(
        &mut self,
        looked: impl Fn(&[u8]) -> Option<Option<&'m Meta>>,
    ) -> Option<&str> {
        if self.spoiled.is_none() {
            self.read_events(looked);
        }
        if self.spoiled.is_none() && self.mounts_changed() {
            self.spoil("the mount table changed".into());
        }
        self.spoiled.as_deref()
    }

    fn read_events<'m>(&mut self, looked: impl Fn(&[u8]) -> Option<Option<&'m Meta>>) {
        loop {
            let events = match self.inotify.read_events() {
                Ok(ev) if !ev.is_empty() => ev,
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => return,
                Err(e) => return self.spoil(format!("cannot read the watch's events: {e}")),
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    return self.spoil("the watch lost events (its queue overflowed)".into());
                }
                let Some(dirs) = self.paths.get(&ev.wd) else {
                    return self.spoil("an event came for an unknown watch".into());
                };
                let what = describe(ev.mask);
                let Some(name) = ev.name else {
                    // The watched object itself.
                    let why = format!("{} changed during the run ({what})", show(&dirs[0]));
                    return self.spoil(why);
                };
                let name = std::os::unix::ffi::OsStrExt::as_bytes(&*name);
                for dir in dirs {
                    let path = super::join(dir, name);
                    match looked(&path) {
                        // Never looked at: nothing resolution used.
                        None => {}
                        // Writing a device, FIFO or socket leaves its
                        // metadata as it was.
                        Some(Some(m))
                            if ev.mask == AddWatchFlags::IN_MODIFY && m.kind != Kind::File => {}
                        Some(_) => {
                            let why = format!("{} changed during the run ({what})", show(&path));
                            return self.spoil(why);
                        }
                    }
                }
            }
        }
    }

    fn mounts_changed(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.mounts.as_fd(), PollFlags::POLLPRI)];
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .is_none_or(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR)),
            Err(_) => true,
        }
    }
}

/// `name` in `dir`, open `O_PATH` without following it.
pub(super) fn open_path(
    dir: BorrowedFd<'_>,
    name: &[u8],
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn show(p: &[u8]) -> String {
    crate::core::manifest::pathenc::encode(p)
}

fn describe(mask: AddWatchFlags) -> &'static str {
    const NAMES: [(AddWatchFlags, &str); 10] = [
        (AddWatchFlags::IN_MODIFY, "written"),
        (AddWatchFlags::IN_ATTRIB, "metadata changed"),
        (AddWatchFlags::IN_CREATE, "created"),
        (AddWatchFlags::IN_DELETE, "removed"),
        (AddWatchFlags::IN_DELETE_SELF, "removed"),
        (AddWatchFlags::IN_MOVED_FROM, "moved away"),
        (AddWatchFlags::IN_MOVED_TO, "moved in"),
        (AddWatchFlags::IN_MOVE_SELF, "moved"),
        (AddWatchFlags::IN_UNMOUNT, "unmounted"),
        (AddWatchFlags::IN_IGNORED, "no longer watched"),
    ];
    NAMES
        .iter()
        .find(|(f, _)| mask.contains(*f))
        .map_or("changed", |(_, n)| n)
}
