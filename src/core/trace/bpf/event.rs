//! The records the BPF program writes to its ring buffer (`struct event`
//! and `struct item` in `bpf/jailtrace.bpf.c`), parsed without trusting
//! their sizes.

pub const E_SYSCALL: u32 = 1;
pub const E_FORK: u32 = 2;

const I_STR: u32 = 17;
const I_BASE: u32 = 18;
const I_BYTES: u32 = 19;
const I_FDPATH: u32 = 20;
const I_CRED: u32 = 21;

const HEADER: usize = 88;
const ITEM: usize = 24;

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

impl<'a> Record<'a> {
    /// Parses one record; `None` for a malformed one.
    pub fn parse(b: &'a [u8]) -> Option<Record<'a>> {
        let kind = u32_at(b, 0)?;
        if kind >= I_STR {
            let len = u32_at(b, 4)? as usize;
            return Some(Record::Item {
                tid: u32_at(b, 16)?,
                item: Item {
                    kind,
                    key: u64_at(b, 8)?,
                    data: b.get(ITEM..ITEM + len)?,
                },
            });
        }
        if b.len() < HEADER {
            return None;
        }
        let mut e = Event {
            kind,
            tid: u32_at(b, 8)?,
            tgid: u32_at(b, 12)?,
            nr: u32_at(b, 16)?,
            compat: u32_at(b, 20)? != 0,
            ret: u64_at(b, 24)? as i64,
            created: u32_at(b, 80)? & 1 != 0,
            rename_made_target: u32_at(b, 80)? & 4 != 0,
            sent: u32_at(b, 84)?,
            ..Event::default()
        };
        for (i, a) in e.args.iter_mut().enumerate() {
            *a = u64_at(b, 32 + 8 * i)?;
        }
        // The common call's one item, in the same record.
        if u32_at(b, 80)? & 2 != 0 {
            let it = b.get(HEADER..)?;
            let len = u32_at(it, 4)? as usize;
            e.add(&Item {
                kind: u32_at(it, 0)?,
                key: u64_at(it, 8)?,
                data: it.get(ITEM..ITEM + len)?,
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

    /// The record kinds this side parses are the C's.
    #[test]
    fn constants_are_the_programs() {
        use super::super::c_define as c;
        for (name, v) in [
            ("E_SYSCALL", E_SYSCALL),
            ("E_FORK", E_FORK),
            ("I_STR", I_STR),
            ("I_BASE", I_BASE),
            ("I_BYTES", I_BYTES),
            ("I_FDPATH", I_FDPATH),
            ("I_CRED", I_CRED),
        ] {
            assert_eq!(u64::from(v), c(name), "{name}");
        }
    }

    #[test]
    fn walked_paths_are_reversed_components() {
        assert_eq!(walked(b"c\0b\0a\0"), b"/a/b/c".to_vec());
        assert_eq!(walked(b""), b"/".to_vec());
    }

    #[test]
    fn an_inline_item_belongs_to_its_event() {
        let mut b = vec![0u8; HEADER + ITEM + 4];
        b[0] = 1; // E_SYSCALL
        b[80] = 2 | 1; // inline item, created
        b[84] = 1; // one item sent
        b[HEADER] = 17; // I_STR
        b[HEADER + 4] = 4;
        b[HEADER + 8] = 0x40;
        b[HEADER + ITEM..].copy_from_slice(b"/a\0\0");
        let Some(Record::Event(e)) = Record::parse(&b) else {
            panic!("not an event");
        };
        assert_eq!((e.sent, e.nitems, e.created), (1, 1, true));
        assert_eq!(e.string(0x40), Some(&b"/a"[..]));
        // Claimed, but cut off.
        assert!(Record::parse(&b[..HEADER + ITEM + 1]).is_none());
    }

    #[test]
    fn truncated_records_are_rejected() {
        let mut b = vec![0u8; HEADER];
        b[0] = 1;
        assert!(Record::parse(&b[..10]).is_none());
        assert!(Record::parse(&b).is_some());
        // An item that claims more data than it has.
        let mut it = vec![0u8; ITEM];
        it[0] = 17;
        it[4] = 8;
        assert!(Record::parse(&it).is_none());
    }
}
