//! What the kernel opens by itself at exec: the ELF interpreter named by
//! `PT_INTERP`, and the interpreter of a `#!` script.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;

use super::{beneath, Options, MAX_INTERP_DEPTH};
use crate::core::manifest::{Kind, Op, Outcome};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The interpreter the kernel loads for `path`.
#[derive(Debug, PartialEq, Eq)]
pub enum Loader {
    /// `PT_INTERP` of a dynamically linked ELF binary.
    Elf(Vec<u8>),
    /// The first word after `#!`.
    Script(Vec<u8>),
}

/// Opens `path` for reading only if it is a regular file: never blocks on
/// a FIFO or opens a device, whatever the path was swapped for after the
/// trace.
pub fn open_regular(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

/// The whole content of `path` if it is a regular file (see
/// [`open_regular`]): a FIFO or device planted at a path that is read
/// for its content is skipped, never waited on.
pub fn read_regular(path: &Path) -> Option<Vec<u8>> {
    let mut f = open_regular(path)?;
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut data).ok()?;
    Some(data)
}

pub fn loader(path: &Path) -> Option<Loader> {
    loader_of(open_regular(path)?)
}

/// The interpreter named by an open regular file.
pub fn loader_of(mut f: std::fs::File) -> Option<Loader> {
    let mut head = [0u8; 256];
    let n = read_up_to(&mut f, &mut head)?;
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        // The line ends at a newline (or at the 256-byte kernel limit).
        let line = rest.split(|&b| b == b'\n').next()?;
        let line = line.trim_ascii_start();
        let end = line
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .unwrap_or(line.len());
        let interp = &line[..end];
        return (!interp.is_empty()).then(|| Loader::Script(interp.to_vec()));
    }
    elf_interp(&mut f, head).map(Loader::Elf)
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(n)
}

fn elf_interp(f: &mut std::fs::File, head: &[u8]) -> Option<Vec<u8>> {
    if head.len() < 52 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let is64 = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> u16 {
        let b = [head[o], head[o + 1]];
        if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let uint = |b: &[u8]| -> u64 {
        let mut v = 0u64;
        for i in 0..b.len() {
            let byte = if le { b[b.len() - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        v
    };
    let (phoff, phentsize, phnum) = if is64 {
        if head.len() < 64 {
            return None;
        }
        (
            uint(&head[32..40]),
            u64::from(u16_at(54)),
            u64::from(u16_at(56)),
        )
    } else {
        (
            uint(&head[28..32]),
            u64::from(u16_at(42)),
            u64::from(u16_at(44)),
        )
    };
    if phentsize == 0 || phnum > 4096 {
        return None;
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut table).ok()?;
    for ph in table.chunks_exact(phentsize as usize) {
        let p_type = uint(&ph[0..4]);
        if p_type != 3 {
            continue; // not PT_INTERP
        }
        let (off, size) = if is64 {
            (uint(&ph[8..16]), uint(&ph[32..40]))
        } else {
            (uint(&ph[4..8]), uint(&ph[16..20]))
        };
        if size == 0 || size > 4096 {
            return None;
        }
        let mut s = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(off)).ok()?;
        f.read_exact(&mut s).ok()?;
        if let Some(nul) = s.iter().position(|&b| b == 0) {
            s.truncate(nul);
        }
        return (!s.is_empty()).then_some(s);
    }
    None
}

/// What the kernel loads for the programs a run executed.
impl super::Resolver {
    /// Records what the kernel itself loads for each executed file: ELF
    /// interpreters and `#!` interpreters, nested to any depth.
    pub(super) fn interpreters(
        &mut self,
        mut execs: Vec<Vec<u8>>,
        roots: &[Vec<u8>],
        opts: &Options,
        warnings: &mut Vec<String>,
    ) {
        // In one order whatever order they came in (a chain deeper than
        // the bound is cut where the order says).
        execs.sort_unstable();
        execs.dedup();
        let mut seen = HashSet::new();
        let mut work: Vec<(Vec<u8>, usize)> = execs.into_iter().map(|p| (p, 0)).collect();
        while let Some((exe, depth)) = work.pop() {
            if !seen.insert(exe.clone()) || depth > MAX_INTERP_DEPTH {
                continue;
            }
            let p = Path::new(std::ffi::OsStr::from_bytes(&exe)).to_path_buf();
            if let Some(m) = self.lstat(&exe) {
                if m.mode & 0o6000 != 0 && m.kind == Kind::File {
                    let what = if m.mode & 0o4000 != 0 {
                        "setuid"
                    } else {
                        "setgid"
                    };
                    warnings.push(if opts.setuid_effective {
                        format!("{what} program executed: {} (it ran with its privileges; the jail keeps the bit only if the host has it)", crate::core::manifest::pathenc::encode(&exe))
                    } else {
                        format!("{what} program executed: {} (under ptrace without CAP_SYS_PTRACE it ran WITHOUT its privileges, so its behaviour may differ)", crate::core::manifest::pathenc::encode(&exe))
                    });
                }
            }
            let (interp, op) = match loader(&p) {
                Some(Loader::Elf(i)) => (i, Op::Interp),
                Some(Loader::Script(i)) => (i, Op::Exec),
                None => continue,
            };
            if interp.first() != Some(&b'/') {
                warnings.push(format!(
                    "relative interpreter {} of {} was not recorded",
                    crate::core::manifest::pathenc::encode(&interp),
                    crate::core::manifest::pathenc::encode(&exe)
                ));
                continue;
            }
            // A program beneath a root it was chrooted into gets its
            // interpreter from beneath that root (the deepest, for nested
            // ones).
            let res = match beneath(roots, &exe) {
                Some(r) => self.resolve_beneath(r, &interp, true),
                None => self.resolve(&interp, true),
            };
            self.note_links(&res.links);
            let exists = self.lstat(&res.path).is_some();
            let outcome = if exists {
                Outcome::ok()
            } else {
                Outcome::from_errno(libc::ENOENT)
            };
            self.add(&res.path, op, outcome);
            if exists {
                work.push((res.path, depth + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_dynamic_loader_of_a_real_binary() {
        match loader(Path::new("/bin/sh")) {
            Some(Loader::Elf(p)) => assert!(p.starts_with(b"/lib"), "{p:?}"),
            other => panic!("/bin/sh: {other:?}"),
        }
    }

    #[test]
    fn reads_shebangs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "#!  /usr/bin/env python3 -u\nprint(1)\n").unwrap();
        assert_eq!(loader(&p), Some(Loader::Script(b"/usr/bin/env".to_vec())));
        std::fs::write(&p, "plain text").unwrap();
        assert_eq!(loader(&p), None);
    }
}
