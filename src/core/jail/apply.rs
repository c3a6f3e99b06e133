//! Brings the jail in line with a plan, touching only what differs.
//!
//! For each item the current state is looked up (never following symlinks,
//! see [`super::jail`]), compared with what is wanted, and the difference is
//! either recorded (dry run) or applied. Non-directories are never modified
//! in place: a new object is built under a temporary name in the same
//! directory and renamed over the old one. So an existing FIFO or device is
//! never opened, and a reader in the jail sees the old or the new file, not a
//! half-written one. Directories are created `0700` and get their final mode
//! and owner at the end, deepest first, so that read-only directories can
//! still be filled.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use indicatif::ProgressBar;
use nix::errno::Errno;
use nix::fcntl::{copy_file_range, openat, readlinkat, renameat, OFlag};
use nix::sys::stat::{
    fchmod, fstat, futimens, major, makedev, minor, mkdirat, mknodat, FileStat, Mode, SFlag,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::core::manifest::pathenc::MPath;

use super::fs::{file_type, kind_name, lookup, Jail, Lookup};
use super::host::{self, errno_msg, errno_of, HostFiles, Unreadable};
use super::plan::{Item, Meta, Want};
use crate::core::jail::accounts::Rewrite;

#[derive(Debug, Default)]
pub struct Stats {
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub devices: u64,
    pub fifos: u64,
    /// Existing directories whose mode or owner was corrected.
    pub updated: u64,
    /// Items already as wanted.
    pub unchanged: u64,
    /// Files given their size but none of their bytes (the program only
    /// looked them up, or was refused).
    pub no_content: u64,
}

impl Stats {
    pub fn changes(&self) -> u64 {
        self.files + self.dirs + self.symlinks + self.devices + self.fifos + self.updated
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub stats: Stats,
    /// Dry run: what would be done, one line each.
    pub actions: Vec<String>,
    pub skipped: Vec<(MPath, String)>,
    pub warnings: Vec<String>,
    pub failures: Vec<(MPath, String)>,
}

/// How the current object is to be got rid of before the new one goes in.
enum Clear {
    /// Nothing there.
    Nothing,
    /// A non-directory (described, and its type): a new non-directory is
    /// renamed over it; for a new directory it is unlinked first.
    NonDir(String, SFlag),
    /// A directory where a non-directory belongs: removed if empty.
    Dir,
}

enum Credit {
    Dir,
    File(u64),
    Symlink,
    Device,
    Fifo,
}

/// What a file item asks for.
#[derive(Clone, Copy)]
struct FileWant<'a> {
    mode_cap: u32,
    keep_special: bool,
    content: bool,
    sha256: Option<&'a str>,
    output: bool,
    rewrite: Option<&'a Rewrite>,
}

pub struct Executor<'a> {
    /// `None` in a dry run into a jail that does not exist yet.
    jail: Option<&'a Jail>,
    jail_path: &'a Path,
    dry_run: bool,
    owners: bool,
    euid: u32,
    egid: u32,
    /// Dry run: directories that would be (re)created, hence empty.
    fresh: HashSet<MPath>,
    failed_dirs: HashSet<MPath>,
    fixups: Vec<(MPath, Meta)>,
    tmp_seq: u64,
    /// jailtrace's pid, for temporary names.
    pid: u32,
    /// Per host device: whether it is a kernel pseudo file system.
    hosts: HostFiles,
    /// Set once a reflink failed: the jail's file system cannot clone, so
    /// later files go straight to copy_file_range.
    no_reflink: bool,
    /// What the item being handled adds to the counts if it succeeds.
    credit: Option<Credit>,
    progress: &'a ProgressBar,
    pub report: Report,
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn describe(parent: &OwnedFd, name: &[u8], st: &FileStat) -> String {
    if file_type(st) == SFlag::S_IFLNK {
        let t = readlinkat(parent, os(name))
            .map(|t| crate::core::manifest::pathenc::encode(t.as_bytes()))
            .unwrap_or_else(|_| "?".into());
        format!("symlink -> {t}")
    } else {
        kind_name(st).to_string()
    }
}

impl<'a> Executor<'a> {
    pub fn new(
        jail: Option<&'a Jail>,
        jail_path: &'a Path,
        dry_run: bool,
        progress: &'a ProgressBar,
    ) -> Executor<'a> {
        let euid = nix::unistd::geteuid().as_raw();
        Executor {
            jail,
            jail_path,
            dry_run,
            owners: euid == 0,
            euid,
            egid: nix::unistd::getegid().as_raw(),
            fresh: HashSet::new(),
            failed_dirs: HashSet::new(),
            fixups: Vec::new(),
            tmp_seq: 0,
            pid: std::process::id(),
            hosts: HostFiles::default(),
            no_reflink: false,
            credit: None,
            progress,
            report: Report::default(),
        }
    }

    fn show(&self, p: &MPath) -> String {
        super::fs::show(self.jail_path, p)
    }

    fn fail(&mut self, p: &MPath, msg: String) {
        self.report.failures.push((p.clone(), msg));
    }

    fn act(&mut self, line: String) {
        if self.dry_run {
            self.report.actions.push(line);
        }
    }

    /// The owner to give things: the wanted one as root, our own otherwise.
    fn owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        if self.owners {
            (uid, gid)
        } else {
            (self.euid, self.egid)
        }
    }

    fn tmp_name(&mut self) -> Vec<u8> {
        self.tmp_seq += 1;
        format!(".jailtrace-tmp.{}.{}", self.pid, self.tmp_seq).into_bytes()
    }

    pub fn run(&mut self, items: &[Item]) {
        for item in items {
            self.item(item);
        }
        self.finish_dirs();
    }

    fn item(&mut self, item: &Item) {
        let p = &item.path;
        let ancestors = p.ancestors();
        if let Some(bad) = ancestors.iter().find(|a| self.failed_dirs.contains(*a)) {
            let msg = format!("not created: its directory {bad} could not be made");
            self.fail(p, msg);
            if matches!(item.want, Want::Dir(_)) {
                self.failed_dirs.insert(p.clone());
            }
            return;
        }
        if p.is_root() {
            if let Want::Dir(meta) = &item.want {
                self.root_dir(*meta);
            }
            return;
        }
        let name = p.components().last().unwrap_or_default().to_vec();
        let parent_path = p.parent().unwrap_or_else(MPath::root);
        let fresh = match self.jail {
            None => true,
            Some(_) => self.dry_run && ancestors.iter().any(|a| self.fresh.contains(a)),
        };
        let (parent, cur) = if fresh {
            (None, Lookup::Absent)
        } else {
            let jail = self.jail.expect("checked above");
            let parent = match jail.open_dir(&parent_path, OFlag::O_PATH) {
                Ok(fd) => fd,
                Err(e) => {
                    let msg = format!("not created: {}", jail.explain(&parent_path, e));
                    self.fail(p, msg);
                    if matches!(item.want, Want::Dir(_)) {
                        self.failed_dirs.insert(p.clone());
                    }
                    return;
                }
            };
            match lookup(&parent, &name) {
                Ok(cur) => (Some(parent), cur),
                Err(e) => {
                    self.fail(p, errno_msg("cannot look it up", e));
                    return;
                }
            }
        };
        if let Lookup::MountPoint = cur {
            if matches!(item.want, Want::Dir(_)) {
                // A mount point (proc, a bind mount): the mount is the user's.
                self.report.stats.unchanged += 1;
            } else {
                let msg = format!(
                    "not created: {} is a mount point inside the jail, which is never replaced",
                    self.show(p)
                );
                self.fail(p, msg);
            }
            return;
        }
        let r = self.make(item, parent.as_ref(), &name, &cur);
        // Counted only once it is really there.
        let credit = self.credit.take();
        if r.is_ok() {
            let st = &mut self.report.stats;
            match credit {
                Some(Credit::Dir) => st.dirs += 1,
                Some(Credit::File(n)) => {
                    st.files += 1;
                    st.bytes += n;
                }
                Some(Credit::Symlink) => st.symlinks += 1,
                Some(Credit::Device) => st.devices += 1,
                Some(Credit::Fifo) => st.fifos += 1,
                None => {}
            }
        }
        if let Err(msg) = r {
            if matches!(item.want, Want::Dir(_)) {
                self.failed_dirs.insert(p.clone());
            }
            self.fail(p, msg);
        }
    }

    /// Creates or replaces the object `item` wants, given its parent
    /// directory (`None` in a dry run into what does not exist yet), its
    /// name and what is there now.
    fn make(
        &mut self,
        item: &Item,
        parent: Option<&OwnedFd>,
        name: &[u8],
        cur: &Lookup,
    ) -> Result<(), String> {
        let p = &item.path;
        match &item.want {
            Want::Dir(meta) => self.dir(p, parent, name, cur, *meta),
            Want::File {
                mode_cap,
                keep_special,
                content,
                sha256,
                size_hint,
                rewrite,
            } => {
                let r = self.file(
                    p,
                    parent,
                    name,
                    cur,
                    FileWant {
                        mode_cap: *mode_cap,
                        keep_special: *keep_special,
                        content: *content,
                        sha256: sha256.as_deref(),
                        output: item.output,
                        rewrite: rewrite.as_ref(),
                    },
                );
                self.progress.inc(*size_hint);
                self.progress.set_message(format!(
                    "{} files",
                    self.report.stats.files + self.report.stats.unchanged
                ));
                r
            }
            Want::Symlink {
                target,
                uid,
                gid,
                times,
            } => self.symlink(p, parent, name, cur, target, (*uid, *gid), *times),
            Want::Device {
                block,
                major,
                minor,
                meta,
            } => {
                let ty = if *block {
                    SFlag::S_IFBLK
                } else {
                    SFlag::S_IFCHR
                };
                self.node(
                    p,
                    parent,
                    name,
                    cur,
                    ty,
                    makedev(u64::from(*major), u64::from(*minor)),
                    *meta,
                )
            }
            Want::Fifo(meta) => self.node(p, parent, name, cur, SFlag::S_IFIFO, 0, *meta),
        }
    }

    fn root_dir(&mut self, meta: Meta) {
        let (uid, gid) = self.owner(meta.uid, meta.gid);
        let meta = Meta {
            mode: meta.mode,
            uid,
            gid,
        };
        let Some(jail) = self.jail else {
            self.act(format!("mkdir   / {:04o} {uid}:{gid}", meta.mode));
            return;
        };
        match fstat(jail.root()) {
            Ok(st) if st.st_mode & 0o7777 == meta.mode && (st.st_uid, st.st_gid) == (uid, gid) => {
                self.report.stats.unchanged += 1;
            }
            Ok(st) => {
                self.act(format!(
                    "update  / {:04o} {}:{} -> {:04o} {uid}:{gid}",
                    st.st_mode & 0o7777,
                    st.st_uid,
                    st.st_gid,
                    meta.mode
                ));
                self.fixups.push((MPath::root(), meta));
                self.report.stats.updated += 1;
            }
            Err(e) => self.fail(&MPath::root(), errno_msg("cannot stat the jail", e)),
        }
    }

    /// Works out how to get an unwanted current object out of the way.
    fn clear_for(&self, parent: Option<&OwnedFd>, name: &[u8], cur: &Lookup) -> Clear {
        match (cur, parent) {
            (Lookup::Present(_, st), Some(parent)) => {
                if file_type(st) == SFlag::S_IFDIR {
                    Clear::Dir
                } else {
                    Clear::NonDir(describe(parent, name, st), file_type(st))
                }
            }
            _ => Clear::Nothing,
        }
    }

    /// Warns when an object of another type is being replaced: the jail held
    /// something the manifest does not explain.
    fn note_replaced(&mut self, p: &MPath, clear: &Clear, ty: SFlag) {
        if let Clear::Dir = clear {
            self.act(format!("rmdir   {p} (a directory; only if empty)"));
        }
        if let Clear::NonDir(was, old) = clear {
            if *old != ty {
                let msg = format!("{}: replaced a {was}", self.show(p));
                self.act(format!("replace {p} ({was})"));
                self.report.warnings.push(msg);
            }
        }
    }

    /// Removes an empty directory that stands where a non-directory belongs.
    fn remove_empty_dir(&mut self, p: &MPath, parent: &OwnedFd, name: &[u8]) -> Result<(), String> {
        if self.dry_run {
            return Ok(());
        }
        match unlinkat(parent, os(name), UnlinkatFlags::RemoveDir) {
            Ok(()) => {
                let msg = format!("{}: replaced an empty directory", self.show(p));
                self.report.warnings.push(msg);
                Ok(())
            }
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => Err(format!(
                "not created: {} is a directory that is not empty; it is never removed",
                self.show(p)
            )),
            Err(e) => Err(errno_msg(
                "cannot remove the empty directory in its place",
                e,
            )),
        }
    }

    fn dir(
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
    fn file(
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
    fn symlink(
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

    /// What replacing the object at `name` with a new one of type `ty`
    /// starts with, for files, symlinks and nodes alike: note what goes and
    /// what is done, make room (an empty directory in the way is removed),
    /// and pick the temporary name the new object is made under before it
    /// is renamed into place. `None`: a dry run, which stops here.
    fn begin<'p>(
        &mut self,
        p: &MPath,
        (parent, name, cur): (Option<&'p OwnedFd>, &[u8], &Lookup),
        ty: SFlag,
        action: String,
        credit: Credit,
    ) -> Result<Option<(&'p OwnedFd, Vec<u8>)>, String> {
        let clear = self.clear_for(parent, name, cur);
        self.note_replaced(p, &clear, ty);
        self.act(action);
        self.credit = Some(credit);
        if self.dry_run {
            return Ok(None);
        }
        let parent = parent.expect("not a dry run");
        if let Clear::Dir = clear {
            self.remove_empty_dir(p, parent, name)?;
        }
        Ok(Some((parent, self.tmp_name())))
    }

    /// Gives the object just created under the temporary name `tmp` its
    /// owner (never following it), then renames it over `name`; on failure
    /// the temporary object is removed.
    fn place(
        &self,
        parent: &OwnedFd,
        tmp: &[u8],
        name: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<(), String> {
        let result = (|| -> Result<(), String> {
            if self.owners {
                fchownat(
                    parent,
                    os(tmp),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| errno_msg("chown", e))?;
            }
            renameat(parent, os(tmp), parent, os(name))
                .map_err(|e| errno_msg("rename into place", e))
        })();
        if result.is_err() {
            let _ = unlinkat(parent, os(tmp), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// Devices and FIFOs.
    #[allow(clippy::too_many_arguments)]
    fn node(
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

    /// Gives directories their final mode and owner, deepest first.
    fn finish_dirs(&mut self) {
        if self.dry_run {
            return;
        }
        let Some(jail) = self.jail else { return };
        let fixups = std::mem::take(&mut self.fixups);
        for (p, meta) in fixups.iter().rev() {
            let fd = match jail.open_dir(p, OFlag::O_RDONLY) {
                Ok(fd) => fd,
                Err(e) => {
                    let msg = format!("cannot set mode and owner: {}", jail.explain(p, e));
                    self.fail(p, msg);
                    continue;
                }
            };
            let r = (|| -> Result<(), String> {
                let st = fstat(fd.as_fd()).map_err(|e| errno_msg("stat", e))?;
                if self.owners && (st.st_uid, st.st_gid) != (meta.uid, meta.gid) {
                    fchown(
                        fd.as_fd(),
                        Some(Uid::from_raw(meta.uid)),
                        Some(Gid::from_raw(meta.gid)),
                    )
                    .map_err(|e| errno_msg("chown", e))?;
                }
                fchmod(fd.as_fd(), Mode::from_bits_truncate(meta.mode))
                    .map_err(|e| errno_msg("chmod", e))
            })();
            if let Err(msg) = r {
                self.fail(p, msg);
            }
        }
    }
}

/// Copies all of `src` (`size` bytes when opened) into the empty `dst`: a
/// reflink where the file system can (when `reflink` is worth trying), else
/// `copy_file_range` (in-kernel, server-side on NFS), else plain reads and
/// writes (`std::io::copy`). Returns whether it was a reflink.
fn copy_data(src: &File, dst: &File, size: u64, reflink: bool) -> io::Result<bool> {
    if reflink && super::sys::ficlone(dst, src).is_ok() {
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

/// Opens a jail file for reading given its `O_PATH` handle. It is reopened
/// through `/proc/self/fd`, which reaches exactly the inode already checked
/// to be a regular file, so a concurrent swap cannot make us open something
/// else.
fn jail_file(fd: &OwnedFd) -> io::Result<File> {
    let mut f = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut f,
        libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
    );
    let f = f
        .read(true)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
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
