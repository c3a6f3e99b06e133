//! Making each kind of object the plan wants: a directory, a file copied
//! (or sized, or rewritten) from the host, a symlink, a device node or a
//! FIFO. Each compares what is there first and leaves an up-to-date object
//! alone; the others are made under a temporary name and renamed into
//! place (`Executor::begin`, `Executor::place`).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{copy_file_range, openat, readlinkat, renameat, OFlag};
use nix::sys::stat::{
    fchmod, fstat, futimens, major, minor, mkdirat, mknodat, FileStat, Mode, SFlag,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};

use super::{os, Clear, Credit, Executor, FileWant};
use crate::core::jail::fs::{file_type, Lookup};
use crate::core::jail::host::{self, errno_msg, errno_of, Unreadable};
use crate::core::jail::plan::Meta;
use crate::core::manifest::pathenc::MPath;

impl Executor<'_> {
    pub(super) fn dir(
        &mut self,
        p: &MPath,
        parent: Option<&OwnedFd>,
        name: &[u8],
        cur: &Lookup,
        meta: Meta,
    ) -> Result<(), String> {
        let (uid, gid) = self.owner(meta.uid, meta.gid);
        let meta = Meta {
            mode: meta.mode,
            uid,
            gid,
        };
        if let Lookup::Present(_, st) = cur {
            if file_type(st) == SFlag::S_IFDIR {
                if st.st_mode & 0o7777 == meta.mode && (st.st_uid, st.st_gid) == (uid, gid) {
                    self.report.stats.unchanged += 1;
                } else {
                    self.act(format!(
                        "update  {p} {:04o} {}:{} -> {:04o} {uid}:{gid}",
                        st.st_mode & 0o7777,
                        st.st_uid,
                        st.st_gid,
                        meta.mode
                    ));
                    self.fixups.push((p.clone(), meta));
                    self.report.stats.updated += 1;
                }
                return Ok(());
            }
        }
        let clear = self.clear_for(parent, name, cur);
        if let Clear::NonDir(was, _) = &clear {
            let msg = format!("{}: replaced a {was} with a directory", self.show(p));
            self.act(format!("replace {p} ({was}) with a directory"));
            self.report.warnings.push(msg);
        }
        self.act(format!("mkdir   {p} {:04o} {uid}:{gid}", meta.mode));
        self.credit = Some(Credit::Dir);
        if self.dry_run {
            self.fresh.insert(p.clone());
            return Ok(());
        }
        let parent = parent.expect("not a dry run");
        if let Clear::NonDir(..) = clear {
            // unlink never follows a symlink: this removes `JAIL/etc -> /`
            // itself, not anything it points to.
            unlinkat(parent, os(name), UnlinkatFlags::NoRemoveDir)
                .map_err(|e| errno_msg("cannot remove what is in its place", e))?;
        }
        // Created private and writable; the final mode comes at the end.
        mkdirat(parent, os(name), Mode::from_bits_truncate(0o700))
            .map_err(|e| errno_msg("mkdir", e))?;
        self.fixups.push((p.clone(), meta));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn file(
        &mut self,
        p: &MPath,
        parent: Option<&OwnedFd>,
        name: &[u8],
        cur: &Lookup,
        want: FileWant,
    ) -> Result<(), String> {
        let FileWant {
            mode_cap,
            keep_special,
            content,
            sha256,
            output,
            rewrite,
        } = want;
        let Some((src, hst)) = self.host_file(p, output)? else {
            return Ok(());
        };
        let (uid, gid) = self.owner(hst.st_uid, hst.st_gid);
        let mode = self.file_mode(p, &hst, (mode_cap, keep_special), (uid, gid));
        // An account database: the jail gets the rewritten text.
        let text = match rewrite {
            Some(r) if content => Some(host::rewritten(&src, r)?),
            _ => None,
        };
        let size = text.as_ref().map_or(hst.st_size as u64, |t| t.len() as u64);
        if !content {
            self.report.stats.no_content += 1;
        }

        if let Lookup::Present(fd, st) = cur {
            let wanted = (mode, (uid, gid), size);
            // Without content, only a file that holds no bytes (sparse) is
            // up to date: one copied whole before must lose them. With
            // content, one made without (no blocks, where the host's file
            // has some) must get them.
            let bytes_ok = if content {
                !(st.st_blocks == 0 && st.st_size > 0 && hst.st_blocks > 0)
            } else {
                st.st_blocks == 0
            };
            if bytes_ok && up_to_date(fd, st, &hst, wanted, text.as_deref(), sha256) {
                self.report.stats.unchanged += 1;
                return Ok(());
            }
        }
        if let (Some(h), true) = (sha256, content) {
            host::check_sha256(&src, h)?;
        }
        let action = if content {
            format!("copy    {p} {mode:04o} {uid}:{gid} {size} bytes")
        } else {
            format!("size    {p} {mode:04o} {uid}:{gid} {size} bytes, none copied")
        };
        let Some((parent, tmp)) = self.begin(
            p,
            (parent, name, cur),
            SFlag::S_IFREG,
            action,
            Credit::File(if content { size } else { 0 }),
        )?
        else {
            return Ok(());
        };
        // O_EXCL: a fresh inode, never something already there (a FIFO, a
        // symlink planted in the jail).
        let dst = openat(
            parent,
            os(&tmp),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| errno_msg("cannot create the file", e))?;
        let dst = File::from(dst);
        let result = (|| -> Result<(), String> {
            match &text {
                _ if !content => dst
                    .set_len(size)
                    .map_err(|e| format!("cannot size the file: {}", errno_of(&e)))?,
                Some(t) => io::Write::write_all(&mut &dst, t)
                    .map_err(|e| format!("write failed: {}", errno_of(&e)))?,
                None => {
                    let reflinked = copy_data(&src, &dst, size, !self.no_reflink)
                        .map_err(|e| format!("copy failed: {}", errno_of(&e)))?;
                    self.no_reflink |= !reflinked;
                }
            }
            // chown first: it clears setuid/setgid, which chmod then sets.
            if self.owners {
                fchown(
                    dst.as_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(|e| errno_msg("chown", e))?;
            }
            fchmod(dst.as_fd(), Mode::from_bits_truncate(mode))
                .map_err(|e| errno_msg("chmod", e))?;
            futimens(
                dst.as_fd(),
                &TimeSpec::new(hst.st_atime, hst.st_atime_nsec),
                &TimeSpec::new(hst.st_mtime, hst.st_mtime_nsec),
            )
            .map_err(|e| errno_msg("cannot set its times", e))?;
            renameat(parent, os(&tmp), parent, os(name))
                .map_err(|e| errno_msg("rename into place", e))
        })();
        if result.is_err() {
            let _ = unlinkat(parent, os(&tmp), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// The copy's mode: the host's, no wider than the recorded one, without
    /// setuid/setgid unless `--keep-setuid` names it, and
    /// without setuid/setgid when materialize cannot give the host's owner;
    /// kept special bits are warned about.
    fn file_mode(
        &mut self,
        p: &MPath,
        hst: &FileStat,
        (mode_cap, keep_special): (u32, bool),
        (uid, gid): (u32, u32),
    ) -> u32 {
        let (mut mode, stripped) = copy_mode(hst.st_mode, mode_cap, keep_special, p);
        if let Some(why) = stripped {
            self.report
                .warnings
                .push(format!("{}: {why}", self.show(p)));
        }
        if !self.owners {
            // setuid to whoever runs materialize is not what the host had.
            mode &= !0o6000;
        }
        if mode & 0o6000 != 0 {
            let bits = special_bits(mode);
            self.report.warnings.push(format!(
                "{}: {bits} (mode {mode:04o}, owner {uid}:{gid}), as on the host",
                self.show(p)
            ));
        }
        mode
    }

    /// The host file to copy, opened without following a final symlink and
    /// without blocking (should a FIFO now sit there), and checked to be a
    /// regular file on a real file system. `None`: an output that is gone,
    /// which is a skip.
    fn host_file(&mut self, p: &MPath, output: bool) -> Result<Option<(File, FileStat)>, String> {
        match self.hosts.open(p) {
            Ok(f) => Ok(Some(f)),
            Err(Unreadable::Gone) if output => {
                self.report.skipped.push((
                    p.clone(),
                    "written by the program, and no longer on the host".into(),
                ));
                Ok(None)
            }
            Err(Unreadable::Gone) => Err("not copied: it no longer exists on the host".into()),
            Err(Unreadable::Other(msg)) => Err(msg),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn symlink(
        &mut self,
        p: &MPath,
        parent: Option<&OwnedFd>,
        name: &[u8],
        cur: &Lookup,
        target: &[u8],
        (uid, gid): (u32, u32),
        times: Option<[(i64, i64); 2]>,
    ) -> Result<(), String> {
        let (uid, gid) = self.owner(uid, gid);
        if let (Lookup::Present(_, st), Some(parent)) = (cur, parent) {
            let same_time = times.is_none_or(|t| t[1] == (st.st_mtime, st.st_mtime_nsec));
            if file_type(st) == SFlag::S_IFLNK && (st.st_uid, st.st_gid) == (uid, gid) && same_time
            {
                if let Ok(t) = readlinkat(parent, os(name)) {
                    if t.as_bytes() == target {
                        self.report.stats.unchanged += 1;
                        return Ok(());
                    }
                }
            }
        }
        let shown = crate::core::manifest::pathenc::encode(target);
        let Some((parent, tmp)) = self.begin(
            p,
            (parent, name, cur),
            SFlag::S_IFLNK,
            format!("symlink {p} -> {shown}"),
            Credit::Symlink,
        )?
        else {
            return Ok(());
        };
        nix::unistd::symlinkat(os(target), parent, os(&tmp))
            .map_err(|e| errno_msg("symlink", e))?;
        if let Some([a, m]) = times {
            // On the link itself: following it could reach outside the jail.
            let r = nix::sys::stat::utimensat(
                parent,
                os(&tmp),
                &TimeSpec::new(a.0, a.1),
                &TimeSpec::new(m.0, m.1),
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
            if let Err(e) = r {
                let _ = unlinkat(parent, os(&tmp), UnlinkatFlags::NoRemoveDir);
                return Err(errno_msg("cannot set its times", e));
            }
        }
        self.place(parent, &tmp, name, uid, gid)
    }

    /// Devices and FIFOs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn node(
        &mut self,
        p: &MPath,
        parent: Option<&OwnedFd>,
        name: &[u8],
        cur: &Lookup,
        ty: SFlag,
        rdev: u64,
        meta: Meta,
    ) -> Result<(), String> {
        let (uid, gid) = self.owner(meta.uid, meta.gid);
        if let Lookup::Present(_, st) = cur {
            if file_type(st) == ty
                && (ty == SFlag::S_IFIFO || st.st_rdev == rdev)
                && st.st_mode & 0o7777 == meta.mode
                && (st.st_uid, st.st_gid) == (uid, gid)
            {
                self.report.stats.unchanged += 1;
                return Ok(());
            }
        }
        let what = match ty {
            SFlag::S_IFIFO => "mkfifo ".to_string(),
            SFlag::S_IFBLK => "mknod   b".to_string(),
            _ => "mknod   c".to_string(),
        };
        let nums = if ty == SFlag::S_IFIFO {
            String::new()
        } else {
            format!(" {}:{}", major(rdev), minor(rdev))
        };
        let credit = if ty == SFlag::S_IFIFO {
            Credit::Fifo
        } else {
            Credit::Device
        };
        let action = format!("{what} {p}{nums} {:04o} {uid}:{gid}", meta.mode);
        let Some((parent, tmp)) = self.begin(p, (parent, name, cur), ty, action, credit)? else {
            return Ok(());
        };
        // The umask is 0 while materializing, so the mode is exact. A
        // device's mode is only ever set here, never by opening it.
        mknodat(
            parent,
            os(&tmp),
            ty,
            Mode::from_bits_truncate(meta.mode),
            rdev,
        )
        .map_err(|e| errno_msg("mknod", e))?;
        self.place(parent, &tmp, name, uid, gid)
    }
}

/// Copies all of `src` (`size` bytes when opened) into the empty `dst`: a
/// reflink where the file system can (when `reflink` is worth trying), else
/// `copy_file_range` (in-kernel, server-side on NFS), else plain reads and
/// writes (`std::io::copy`). Returns whether it was a reflink.
fn copy_data(src: &File, dst: &File, size: u64, reflink: bool) -> io::Result<bool> {
    if reflink && crate::core::jail::sys::ficlone(dst, src).is_ok() {
        return Ok(true);
    }
    let mut off: i64 = 0;
    loop {
        match copy_file_range(src, Some(&mut off), dst, None, 1 << 30) {
            Ok(0) => return Ok(false),
            // The size fstat gave with the mode and mtime that the copy
            // gets: done, without one more call to find the end.
            Ok(_) if off as u64 >= size => return Ok(false),
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(
                Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EPERM,
            ) if off == 0 => {
                let mut r = src;
                let mut w = dst;
                io::copy(&mut r, &mut w)?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether the jail's file `st` (open as `fd`) already is what would be
/// written: a regular file with the wanted (mode, owner, size), and the same
/// content (the rewritten text, or the recorded hash) or, without either,
/// the host file's mtime.
fn up_to_date(
    fd: &OwnedFd,
    st: &FileStat,
    hst: &FileStat,
    (mode, owner, size): (u32, (u32, u32), u64),
    text: Option<&[u8]>,
    sha256: Option<&str>,
) -> bool {
    if file_type(st) != SFlag::S_IFREG
        || st.st_mode & 0o7777 != mode
        || (st.st_uid, st.st_gid) != owner
        || st.st_size as u64 != size
    {
        return false;
    }
    match (text, sha256) {
        (Some(t), _) => jail_file(fd).and_then(read_all).is_ok_and(|j| j == t),
        // With a recorded hash the content itself is compared.
        (None, Some(h)) => jail_file(fd)
            .and_then(crate::core::manifest::sha256_hex)
            .is_ok_and(|j| j.eq_ignore_ascii_case(h)),
        (None, None) => (st.st_mtime, st.st_mtime_nsec) == (hst.st_mtime, hst.st_mtime_nsec),
    }
}

fn read_all(mut f: File) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    io::Read::read_to_end(&mut f, &mut v)?;
    Ok(v)
}

/// Opens a jail file for reading given its `O_PATH` handle ([`host::reopen`]),
/// so a concurrent swap cannot make us open something else.
fn jail_file(fd: &OwnedFd) -> io::Result<File> {
    let f = host::reopen(fd.as_fd())?;
    let st = fstat(f.as_fd())?;
    if file_type(&st) != SFlag::S_IFREG {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// A copy's mode, for materialize and the OCI layer alike: the host's,
/// no wider than the recorded one (`mode_cap`), without setuid and setgid
/// unless `--keep-setuid` names the file; with what was stripped, said.
pub fn copy_mode(
    host_mode: u32,
    mode_cap: u32,
    keep_special: bool,
    p: &MPath,
) -> (u32, Option<String>) {
    let mode = host_mode & 0o7777 & mode_cap;
    if keep_special || mode & 0o6000 == 0 {
        return (mode, None);
    }
    let bits = special_bits(mode);
    (
        mode & !0o6000,
        Some(format!(
            "{bits} bit not carried (mode {mode:04o} on the host); --keep-setuid {p} keeps it"
        )),
    )
}

/// The name of `mode`'s special bits (at least one is set).
fn special_bits(mode: u32) -> &'static str {
    match mode & 0o6000 {
        0o4000 => "setuid",
        0o2000 => "setgid",
        _ => "setuid and setgid",
    }
}
