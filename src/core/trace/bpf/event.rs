//! The records the BPF program writes to its ring buffer (`struct event`
//! and `struct item` of `bpf/jailtrace.h`, mirrored in `abi.rs`), parsed
//! without trusting their sizes.

use super::abi::{
    self, EV_ABSENT, EV_COPY, EV_CREATED, EV_FOREIGN, EV_INLINE, I_BASE, I_BYTES, I_CRED, I_FDPATH,
    I_IDENT, I_STR,
};
pub use super::abi::{E_FORK, E_ROOT, E_SYSCALL};

/// One record of the ring buffer.
pub enum Record<'a> {
    /// A syscall's end (or a task's fork or exit): the items of its thread
    /// sent before it belong to it.
    Event(Event),
    /// One item of the syscall its thread is finishing.
    Item { tid: u32, item: Item<'a> },
}

/// One captured operand.
pub struct Item<'a> {
    kind: u32,
    key: u64,
    data: &'a [u8],
}

/// One syscall (or task) event, with its items.
#[derive(Debug, Default)]
pub struct Event {
    pub kind: u32,
    pub tid: u32,
    pub tgid: u32,
    pub nr: u32,
    pub compat: bool,
    pub ret: i64,
    pub args: [u64; 6],
    /// The descriptor returned by an `O_CREAT` open was created by it.
    pub created: bool,
    /// A rename's target did not exist: the rename made its name.
    pub rename_made_target: bool,
    /// The thread was in another mount namespace than the program's: the
    /// host's paths must name the objects the kernel used (`idents`).
    pub foreign_ns: bool,
    /// ... one the program copied from its own, unchanged since: a path
    /// with no object to compare (a stat, a failed call) is taken as
    /// named.
    pub copy_ns: bool,
    /// How many items the program sent for it (in the event's record or
    /// before it).
    pub sent: u32,
    /// How many of them arrived.
    pub nitems: u32,
    /// Strings read from the program, by address.
    pub strings: Vec<(u64, Vec<u8>)>,
    /// Directories walked at entry, by dirfd (`AT_FDCWD` for the cwd):
    /// absolute paths.
    pub bases: Vec<(i64, Vec<u8>)>,
    /// Raw bytes read from the program, by address.
    pub bytes: Vec<(u64, Vec<u8>)>,
    /// Paths of descriptors, by descriptor.
    pub fd_paths: Vec<(i64, Vec<u8>)>,
    /// After a set*id call: real, effective, saved and file system uid,
    /// the same gids, then the supplementary groups.
    pub creds: Vec<u32>,
    /// The objects the call used: the kernel's device number and inode
    /// number (sent for `foreign_ns` only).
    pub idents: Vec<(u64, u64)>,
}

/// An item's header and its data, at the start of `b`.
fn item(b: &[u8]) -> Option<(abi::Item, &[u8])> {
    let it = abi::Item::read(b)?;
    let data = b.get(abi::Item::SIZE..abi::Item::SIZE + it.len as usize)?;
    Some((it, data))
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

impl<'a> Record<'a> {
    /// Parses one record; `None` for a malformed one.
    pub fn parse(b: &'a [u8]) -> Option<Record<'a>> {
        let kind = abi::record_kind(b)?;
        if kind >= I_STR {
            let (it, data) = item(b)?;
            return Some(Record::Item {
                tid: it.tid,
                item: Item {
                    kind,
                    key: it.key,
                    data,
                },
            });
        }
        let ev = abi::Event::read(b)?;
        let mut e = Event {
            kind,
            tid: ev.tid,
            tgid: ev.tgid,
            nr: ev.nr,
            compat: ev.compat != 0,
            ret: ev.ret,
            args: ev.args,
            created: ev.flags & EV_CREATED != 0,
            rename_made_target: ev.flags & EV_ABSENT != 0,
            foreign_ns: ev.flags & EV_FOREIGN != 0,
            copy_ns: ev.flags & EV_COPY != 0,
            sent: ev.nitems,
            ..Event::default()
        };
        // The common call's one item, in the same record.
        if ev.flags & EV_INLINE != 0 {
            let (it, data) = item(b.get(abi::Event::SIZE..)?)?;
            e.add(&Item {
                kind: it.kind,
                key: it.key,
                data,
            });
        }
        Some(Record::Event(e))
    }
}

impl Event {
    /// Adds an item sent before this event by its thread.
    pub fn add(&mut self, it: &Item<'_>) {
        self.nitems += 1;
        match it.kind {
            I_STR => {
                // The NUL is part of what was read.
                let s = it.data.split(|&c| c == 0).next().unwrap_or_default();
                self.strings.push((it.key, s.to_vec()));
            }
            I_BASE => self.bases.push((it.key as i64, walked(it.data))),
            I_BYTES => self.bytes.push((it.key, it.data.to_vec())),
            I_FDPATH => self.fd_paths.push((it.key as i64, walked(it.data))),
            I_CRED => {
                self.creds = it
                    .data
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
            }
            I_IDENT => {
                let n = |i: usize| it.data.get(i..i + 8).and_then(|b| b.try_into().ok());
                if let (Some(dev), Some(ino)) = (n(0), n(8)) {
                    self.idents
                        .push((u64::from_le_bytes(dev), u64::from_le_bytes(ino)));
                }
            }
            _ => {}
        }
    }

    pub fn string(&self, addr: u64) -> Option<&[u8]> {
        self.strings
            .iter()
            .find(|s| s.0 == addr)
            .map(|s| s.1.as_slice())
    }

    pub fn base(&self, dirfd: i32) -> Option<&[u8]> {
        self.bases
            .iter()
            .find(|s| s.0 == i64::from(dirfd))
            .map(|s| s.1.as_slice())
    }

    /// `len` bytes of the program's memory at `addr`, if the program read
    /// a range holding them (fewer when the range ends first).
    pub fn mem(&self, addr: u64, len: u64) -> Option<&[u8]> {
        self.bytes.iter().find_map(|(at, data)| {
            let start = addr.checked_sub(*at)? as usize;
            if start >= data.len() && len > 0 {
                return None;
            }
            let end = (start as u64 + len).min(data.len() as u64) as usize;
            Some(&data[start..end])
        })
    }

    /// A little-endian u64 at `addr`.
    pub fn u64_at(&self, addr: u64) -> Option<u64> {
        let b = self.mem(addr, 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
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
    fn an_inline_item_belongs_to_its_event() {
        let mut b = abi::Event {
            kind: E_SYSCALL,
            flags: EV_INLINE | EV_CREATED,
            nitems: 1,
            ..abi::Event::default()
        }
        .bytes()
        .to_vec();
        b.extend_from_slice(
            &abi::Item {
                kind: I_STR,
                len: 4,
                key: 0x40,
                ..abi::Item::default()
            }
            .bytes(),
        );
        b.extend_from_slice(b"/a\0\0");
        let Some(Record::Event(e)) = Record::parse(&b) else {
            panic!("not an event");
        };
        assert_eq!((e.sent, e.nitems, e.created), (1, 1, true));
        assert_eq!(e.string(0x40), Some(&b"/a"[..]));
        // Claimed, but cut off.
        assert!(Record::parse(&b[..abi::Event::SIZE + abi::Item::SIZE + 1]).is_none());
    }

    #[test]
    fn truncated_records_are_rejected() {
        let b = abi::Event {
            kind: E_SYSCALL,
            ..abi::Event::default()
        }
        .bytes();
        assert!(Record::parse(&b[..10]).is_none());
        assert!(Record::parse(&b[..b.len() - 1]).is_none());
        assert!(Record::parse(&b).is_some());
        // An item that claims more data than it has.
        let it = abi::Item {
            kind: I_STR,
            len: 8,
            ..abi::Item::default()
        }
        .bytes();
        assert!(Record::parse(&it).is_none());
    }
}
