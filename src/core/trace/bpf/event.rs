//! The records the BPF program writes to its ring buffer (`struct event`
//! and `struct item` in `bpf/jailtrace.bpf.c`), parsed without trusting
//! their sizes.

pub const E_SYSCALL: u32 = 1;
pub const E_FORK: u32 = 2;
pub const E_EXIT: u32 = 3;

const I_STR: u32 = 1;
const I_BASE: u32 = 2;
const I_BYTES: u32 = 3;
const I_FDPATH: u32 = 4;
const I_CRED: u32 = 5;

const HEADER: usize = 88;
const ITEM: usize = 16;

/// One syscall (or task) event.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub kind: u32,
    pub tid: u32,
    pub tgid: u32,
    pub nr: u32,
    pub compat: bool,
    pub ret: i64,
    pub args: [u64; 6],
    /// The descriptor returned by an `O_CREAT` open was created by it.
    pub created: bool,
    /// Strings read from the program, by address.
    pub strings: Vec<(u64, &'a [u8])>,
    /// Directories walked at entry, by dirfd (`AT_FDCWD` for the cwd):
    /// absolute paths.
    pub bases: Vec<(i64, Vec<u8>)>,
    /// Raw bytes read from the program, by address.
    pub bytes: Vec<(u64, &'a [u8])>,
    /// Paths of descriptors, by descriptor.
    pub fd_paths: Vec<(i64, Vec<u8>)>,
    /// After a set*id call: real, effective, saved and file system uid,
    /// the same gids, then the supplementary groups.
    pub creds: Vec<u32>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A walked path: its components leaf first, each NUL-terminated, as an
/// absolute path (nothing: the root).
fn walked(data: &[u8]) -> Vec<u8> {
    let mut comps: Vec<&[u8]> = data.split(|&b| b == 0).filter(|c| !c.is_empty()).collect();
    comps.reverse();
    let mut out = Vec::with_capacity(data.len() + 1);
    for c in comps {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

impl<'a> Event<'a> {
    /// Parses one record; `None` for a malformed one.
    pub fn parse(b: &'a [u8]) -> Option<Event<'a>> {
        let mut e = Event {
            kind: u32_at(b, 0)?,
            tid: u32_at(b, 8)?,
            tgid: u32_at(b, 12)?,
            nr: u32_at(b, 16)?,
            compat: u32_at(b, 20)? != 0,
            ret: u64_at(b, 24)? as i64,
            ..Event::default()
        };
        for (i, a) in e.args.iter_mut().enumerate() {
            *a = u64_at(b, 32 + 8 * i)?;
        }
        e.created = u32_at(b, 80)? & 1 != 0;
        let nitems = u32_at(b, 84)?;
        let mut off = HEADER;
        for _ in 0..nitems {
            let kind = u32_at(b, off)?;
            let len = u32_at(b, off + 4)? as usize;
            let key = u64_at(b, off + 8)?;
            let data = b.get(off + ITEM..off + ITEM + len)?;
            match kind {
                I_STR => {
                    // The NUL is part of what was read.
                    let s = data.split(|&c| c == 0).next().unwrap_or_default();
                    e.strings.push((key, s));
                }
                I_BASE => e.bases.push((key as i64, walked(data))),
                I_BYTES => e.bytes.push((key, data)),
                I_FDPATH => e.fd_paths.push((key as i64, walked(data))),
                I_CRED => {
                    e.creds = data
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                }
                _ => {}
            }
            off = (off + ITEM + len + 7) & !7;
        }
        Some(e)
    }

    pub fn string(&self, addr: u64) -> Option<&'a [u8]> {
        self.strings.iter().find(|s| s.0 == addr).map(|s| s.1)
    }

    pub fn base(&self, dirfd: i32) -> Option<&[u8]> {
        self.bases
            .iter()
            .find(|s| s.0 == i64::from(dirfd))
            .map(|s| s.1.as_slice())
    }

    pub fn bytes_at(&self, addr: u64) -> Option<&'a [u8]> {
        self.bytes.iter().find(|s| s.0 == addr).map(|s| s.1)
    }

    pub fn fd_path(&self, fd: i64) -> Option<&[u8]> {
        self.fd_paths
            .iter()
            .find(|s| s.0 == fd)
            .map(|s| s.1.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walked_paths_are_reversed_components() {
        assert_eq!(walked(b"c\0b\0a\0"), b"/a/b/c".to_vec());
        assert_eq!(walked(b""), b"/".to_vec());
    }

    #[test]
    fn truncated_records_are_rejected() {
        let mut b = vec![0u8; HEADER];
        b[0] = 1;
        b[84] = 1; // one item, but no bytes for it
        assert!(Event::parse(&b).is_none());
        assert!(Event::parse(&b[..10]).is_none());
    }
}
