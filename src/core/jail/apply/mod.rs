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
//!
//! Here: the loop over the plan's items, and the replacing of an object
//! whatever its kind (`begin`, `place`); making each kind is in [`objects`].

mod objects;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use indicatif::ProgressBar;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, renameat, OFlag};
use nix::sys::stat::{fchmod, fstat, makedev, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::core::manifest::pathenc::MPath;

use super::fs::{file_type, kind_name, lookup, Jail, Lookup};
use super::host::{errno_msg, HostFiles};
use super::plan::{Item, Meta, Want};
use crate::core::jail::accounts::Rewrite;

pub use objects::copy_mode;

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
