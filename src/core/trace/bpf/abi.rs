//! The contract with the BPF program: the Rust mirror of `bpf/jailtrace.h`,
//! every record layout and constant the program and user space share.
//!
//! The tests hold it to the C, both ways: each struct field by field
//! (name, offset, size, element size and signedness) and in size against
//! the BTF of the committed `bpf/jailtrace.bpf.o`, and each constant
//! against the header's `#define` of the same name. A field, a struct or
//! a constant on one side only fails them.

use std::mem::{offset_of, size_of};

/// Declares the shared constants, and (for the tests) the list of them.
macro_rules! constants {
    ($($(#[$m:meta])* pub const $n:ident: $t:ty = $v:expr;)*) => {
        $($(#[$m])* pub const $n: $t = $v;)*

        /// Every constant above, by its name in the header.
        #[cfg(test)]
        #[allow(clippy::cast_lossless, reason = "the constants have several types")]
        const CONSTANTS: &[(&str, u64)] = &[$((stringify!($n), $n as u64)),*];
    };
}

constants! {
    /// Syscall numbers below it have a descriptor: `descs[compat * NR_MAX + nr]`.
    pub const NR_MAX: u32 = 512;

    /// Flags of a descriptor ([`Desc::flags`]).
    pub const D_ON: u8 = 1;
    pub const D_EXEC: u8 = 2;
    pub const D_SETID: u8 = 4;
    pub const D_RETFD: u8 = 8;
    pub const D_CREATED: u8 = 16;
    pub const D_NOTE: u8 = 32;
    pub const D_EMPTYFD: u8 = 64;
    pub const D_FDNULL: u8 = 128;

    /// What names a call's objects at exit ([`Desc::ident`]), for a thread
    /// whose paths cannot be taken as the host's.
    pub const ID_RETFD: u8 = 1;
    pub const ID_EXE: u8 = 2;
    pub const ID_ROOTS: u8 = 3;
    pub const ID_NSNEW: u8 = 4;

    /// Message header layouts ([`Desc::msg`]).
    pub const M_MSG: u8 = 1;
    pub const M_MMSG: u8 = 2;
    pub const M_MSG32: u8 = 3;
    pub const M_MMSG32: u8 = 4;
    pub const M_SOCKETCALL: u8 = 5;
    /// Headers of one sendmmsg the program reads.
    pub const MAX_MSGS: u64 = 16;

    /// Values of `traced`: user space registers a process ARMED; the
    /// program makes it RECORDING at its first exec.
    pub const ARMED: u8 = 1;
    #[allow(dead_code, reason = "only the program writes it; mirrored so that it stays apart from ARMED")]
    pub const RECORDING: u8 = 2;

    /// Lost-data counters: the keys of `lost`.
    pub const L_RINGBUF: usize = 0;
    pub const L_TRUNCATED: usize = 1;
    pub const L_READ: usize = 2;
    pub const L_STASH: usize = 3;
    pub const L_DEPTH: usize = 4;
    pub const L_NOPATH: usize = 5;
    pub const L_N: usize = 6;

    /// The key of `undecoded` that counts x32 syscalls.
    pub const U_X32: u32 = 0;

    /// Record kinds: events, then items (`I_STR` and above).
    pub const E_SYSCALL: u32 = 1;
    pub const E_FORK: u32 = 2;
    pub const E_ROOT: u32 = 3;
    pub const I_STR: u32 = 17;
    pub const I_BASE: u32 = 18;
    pub const I_BYTES: u32 = 19;
    pub const I_FDPATH: u32 = 20;
    pub const I_CRED: u32 = 21;
    pub const I_IDENT: u32 = 22;

    /// Bits of [`Event::flags`]: the returned descriptor's file was
    /// created; one item follows in the same record; a rename's target
    /// did not exist; the thread was in another mount namespace than the
    /// program's first exec; one copied from it and unchanged since.
    pub const EV_CREATED: u32 = 1;
    pub const EV_INLINE: u32 = 2;
    pub const EV_ABSENT: u32 = 4;
    pub const EV_FOREIGN: u32 = 8;
    pub const EV_COPY: u32 = 16;
}

/// A field of a shared struct, as the program stores it (little-endian:
/// BPF on x86_64).
pub trait Field: Copy + Default {
    /// Whether its integers are signed, and the size of one (what the
    /// tests compare with the BTF).
    #[cfg(test)]
    const SIGNED: bool;
    #[cfg(test)]
    const ELEM: usize;
    fn get(b: &[u8]) -> Option<Self>;
    fn put(self, b: &mut [u8]);
}

macro_rules! int_field {
    ($($t:ty: $signed:expr),*) => {$(
        impl Field for $t {
            #[cfg(test)]
            const SIGNED: bool = $signed;
            #[cfg(test)]
            const ELEM: usize = size_of::<$t>();
            fn get(b: &[u8]) -> Option<Self> {
                Some(Self::from_le_bytes(b.get(..size_of::<$t>())?.try_into().ok()?))
            }
            fn put(self, b: &mut [u8]) {
                b[..size_of::<$t>()].copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
int_field!(u8: false, u32: false, u64: false, i64: true);

impl<T: Field, const N: usize> Field for [T; N]
where
    [T; N]: Default,
{
    #[cfg(test)]
    const SIGNED: bool = T::SIGNED;
    #[cfg(test)]
    const ELEM: usize = T::ELEM;
    fn get(b: &[u8]) -> Option<Self> {
        let mut a = [T::default(); N];
        for (i, x) in a.iter_mut().enumerate() {
            *x = T::get(b.get(i * size_of::<T>()..)?)?;
        }
        Some(a)
    }
    fn put(self, b: &mut [u8]) {
        for (i, x) in self.into_iter().enumerate() {
            x.put(&mut b[i * size_of::<T>()..]);
        }
    }
}

/// A mirrored struct's layout, as the tests compare it with the BTF.
#[cfg(test)]
struct Layout {
    c: &'static str,
    size: usize,
    /// Name, offset, size, element size, signed.
    fields: &'static [(&'static str, usize, usize, usize, bool)],
}

/// Declares a `#[repr(C)]` mirror of a C struct, with its reader, its
/// writer and (for the tests) its layout.
macro_rules! mirror {
    ($(#[$m:meta])* struct $name:ident = $c:literal { $($(#[$fm:meta])* $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }

        #[allow(dead_code, reason = "a mirror can read and write; each side uses one")]
        impl $name {
            pub const SIZE: usize = size_of::<$name>();

            /// The struct at the start of `b`; `None` when `b` is shorter.
            pub fn read(b: &[u8]) -> Option<Self> {
                if b.len() < Self::SIZE {
                    return None;
                }
                Some(Self { $($f: Field::get(&b[offset_of!($name, $f)..])?,)* })
            }

            /// The bytes of the struct, as the program reads it.
            pub fn bytes(&self) -> [u8; size_of::<$name>()] {
                let mut b = [0u8; size_of::<$name>()];
                $(self.$f.put(&mut b[offset_of!($name, $f)..]);)*
                b
            }

            #[cfg(test)]
            const LAYOUT: Layout = Layout {
                c: $c,
                size: size_of::<$name>(),
                fields: &[$((
                    stringify!($f),
                    offset_of!($name, $f),
                    size_of::<$t>(),
                    <$t as Field>::ELEM,
                    <$t as Field>::SIGNED,
                )),*],
            };
        }
    };
}

mirror! {
    /// `struct desc`: what the program captures for one syscall, the value
    /// of `descs`. Argument indexes count from 1; 0 is none.
    struct Desc = "desc" {
        flags: u8,
        /// Path strings.
        str: [u8; 2],
        /// Their dirfds; 0: the cwd.
        dirfd: [u8; 2],
        /// A sockaddr, and its length.
        sock: u8,
        socklen: u8,
        /// A pointer to a u64 (`open_how`).
        u64p: u8,
        /// A descriptor whose path is wanted.
        fd: u8,
        /// Message headers: an `M_*`.
        msg: u8,
        /// Open flags: `D_CREATED` only with `O_CREAT`.
        oflags: u8,
        /// What names the call's objects at exit: an `ID_*`.
        ident: u8,
        pad: [u8; 4],
    }
}

mirror! {
    /// `struct event`: a syscall's end or a fork, the last record of its
    /// thread's items.
    struct Event = "event" {
        kind: u32,
        size: u32,
        tid: u32,
        tgid: u32,
        nr: u32,
        compat: u32,
        ret: i64,
        args: [u64; 6],
        /// `EV_*`.
        flags: u32,
        /// Items sent for it.
        nitems: u32,
    }
}

mirror! {
    /// `struct item`: one captured operand's header; `len` bytes of data
    /// follow it.
    struct Item = "item" {
        kind: u32,
        len: u32,
        key: u64,
        tid: u32,
        pad: u32,
    }
}

// Both records start with their kind, which tells them apart.
const _: () = assert!(offset_of!(Event, kind) == 0 && offset_of!(Item, kind) == 0);

/// The kind of the record `b`.
pub fn record_kind(b: &[u8]) -> Option<u32> {
    Field::get(b)
}

/// The header's source, for the tests (and `c_define`).
#[cfg(test)]
const HEADER: &str = include_str!("../../../../bpf/jailtrace.h");

/// The value of `#define NAME` in `bpf/jailtrace.h`.
#[cfg(test)]
pub(crate) fn c_define(name: &str) -> u64 {
    c_defines()
        .into_iter()
        .find(|d| d.0 == name)
        .unwrap_or_else(|| panic!("no #define {name} in bpf/jailtrace.h"))
        .1
}

/// Every `#define NAME VALUE` of the header (the include guard has no
/// value); a value that is not a number fails.
#[cfg(test)]
fn c_defines() -> Vec<(&'static str, u64)> {
    HEADER
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next() != Some("#define") {
                return None;
            }
            let name = w.next()?;
            let v = w.next()?;
            Some((
                name,
                v.parse()
                    .unwrap_or_else(|_| panic!("#define {name} {v}: not a number")),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTF_INT: u32 = 1;
    const BTF_PTR: u32 = 2;
    const BTF_ARRAY: u32 = 3;
    const BTF_STRUCT: u32 = 4;

    /// One BTF type: kind, kind_flag, name offset, size or type, and the
    /// kind's own data after the 12-byte header.
    type Ty<'a> = (u32, bool, u32, u32, &'a [u8]);

    /// A struct member: name, offset, size, element size, signed.
    type Member = (String, usize, usize, usize, bool);

    /// The types of a BTF blob, enough to lay out a struct (the format:
    /// the kernel's Documentation/bpf/btf.rst).
    struct Btf<'a> {
        types: Vec<Ty<'a>>,
        strings: &'a [u8],
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    impl<'a> Btf<'a> {
        fn parse(data: &'a [u8]) -> Btf<'a> {
            assert_eq!(data[..2], [0x9f, 0xeb], "BTF magic");
            let hdr = u32_at(data, 4) as usize;
            let (type_off, type_len) = (u32_at(data, 8) as usize, u32_at(data, 12) as usize);
            let (str_off, str_len) = (u32_at(data, 16) as usize, u32_at(data, 20) as usize);
            let types = &data[hdr + type_off..hdr + type_off + type_len];
            let mut out = Vec::new();
            let mut at = 0;
            while at < types.len() {
                let info = u32_at(types, at + 4);
                let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
                let extra = match kind {
                    1 | 14 | 17 => 4,             // int, var, decl tag
                    3 => 12,                      // array
                    4 | 5 | 15 | 19 => 12 * vlen, // struct, union, datasec, enum64
                    6 | 13 => 8 * vlen,           // enum, func proto
                    _ => 0,
                };
                out.push((
                    kind,
                    info >> 31 != 0,
                    u32_at(types, at),
                    u32_at(types, at + 8),
                    &types[at + 12..at + 12 + extra],
                ));
                at += 12 + extra;
            }
            Btf {
                types: out,
                strings: &data[hdr + str_off..hdr + str_off + str_len],
            }
        }

        fn name(&self, off: u32) -> &'a str {
            let s = &self.strings[off as usize..];
            std::str::from_utf8(&s[..s.iter().position(|&c| c == 0).unwrap()]).unwrap()
        }

        /// Size, element size and signedness of type `id`, through
        /// typedefs and qualifiers and into arrays.
        fn shape(&self, id: u32) -> (usize, usize, bool) {
            let (kind, _, name, size_type, extra) = self.types[id as usize - 1];
            match kind {
                BTF_INT => {
                    let signed = (u32_at(extra, 0) >> 24) & 1 != 0;
                    (size_type as usize, size_type as usize, signed)
                }
                BTF_PTR => (8, 8, false),
                BTF_ARRAY => {
                    let (_, elem, signed) = self.shape(u32_at(extra, 0));
                    (elem * u32_at(extra, 8) as usize, elem, signed)
                }
                // struct, union, enum, enum64: whole
                4 | 5 | 6 | 19 => (size_type as usize, size_type as usize, false),
                // typedef, volatile, const, restrict, type tag
                8..=11 | 18 => self.shape(size_type),
                k => panic!(
                    "{:?}: a type of BTF kind {k} in a shared struct",
                    self.name(name)
                ),
            }
        }

        /// The struct named `name`: its size, and its fields as a
        /// [`Layout`]'s.
        fn layout(&self, name: &str) -> (usize, Vec<Member>) {
            let mut found = self
                .types
                .iter()
                .filter(|t| t.0 == BTF_STRUCT && self.name(t.2) == name);
            let &(_, kind_flag, _, size, members) = found
                .next()
                .unwrap_or_else(|| panic!("no struct {name} in the object's BTF"));
            assert!(found.next().is_none(), "two structs {name} in the BTF");
            let fields = members
                .chunks_exact(12)
                .map(|m| {
                    let field = self.name(u32_at(m, 0)).to_string();
                    let mut bits = u32_at(m, 8);
                    if kind_flag {
                        assert_eq!(bits >> 24, 0, "{name}.{field}: a bitfield");
                        bits &= 0xff_ffff;
                    }
                    assert_eq!(bits % 8, 0, "{name}.{field}: not at a byte boundary");
                    let (size, elem, signed) = self.shape(u32_at(m, 4));
                    (field, bits as usize / 8, size, elem, signed)
                })
                .collect();
            (size as usize, fields)
        }
    }

    /// The committed object's .BTF.
    fn object_btf() -> Vec<u8> {
        use object::{Object as _, ObjectSection as _};
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/jailtrace.bpf.o");
        let obj = std::fs::read(path).unwrap();
        let file = object::File::parse(&*obj).unwrap();
        file.section_by_name(".BTF")
            .expect("the object has no .BTF")
            .data()
            .unwrap()
            .to_vec()
    }

    const MIRRORS: [Layout; 3] = [Desc::LAYOUT, Event::LAYOUT, Item::LAYOUT];

    /// Each mirrored struct is the object's: the same fields in the same
    /// order, each at the same offset with the same size, element size
    /// and signedness, and the same size in all.
    #[test]
    fn structs_are_the_objects() {
        let data = object_btf();
        let btf = Btf::parse(&data);
        for m in MIRRORS {
            let (size, fields) = btf.layout(m.c);
            let rust: Vec<_> = m
                .fields
                .iter()
                .map(|&(n, off, size, elem, signed)| (n.to_string(), off, size, elem, signed))
                .collect();
            assert_eq!(
                rust, fields,
                "struct {}: the Rust mirror (left) is not the object's BTF (right): \
                 (name, offset, size, element size, signed)",
                m.c
            );
            assert_eq!(m.size, size, "struct {}: size", m.c);
        }
    }

    /// The header declares exactly the mirrored structs.
    #[test]
    fn every_struct_of_the_header_is_mirrored() {
        let declared: Vec<&str> = HEADER
            .lines()
            .filter_map(|l| l.strip_prefix("struct ")?.strip_suffix(" {"))
            .collect();
        let mut mirrored: Vec<&str> = MIRRORS.iter().map(|m| m.c).collect();
        let mut sorted = declared.clone();
        sorted.sort_unstable();
        mirrored.sort_unstable();
        assert_eq!(
            sorted, mirrored,
            "structs of bpf/jailtrace.h (left), mirrored in abi.rs (right)"
        );
    }

    /// Every constant of the header is mirrored with its value, and
    /// nothing else is.
    #[test]
    fn constants_are_the_headers() {
        let mut c = c_defines();
        let mut rust = CONSTANTS.to_vec();
        c.sort_unstable();
        rust.sort_unstable();
        fn only<'a>(a: &[(&'a str, u64)], b: &[(&str, u64)]) -> Vec<(&'a str, u64)> {
            a.iter().filter(|x| !b.contains(x)).copied().collect()
        }
        assert!(
            c == rust,
            "#defines of bpf/jailtrace.h that abi.rs lacks: {:?}; constants of abi.rs that the header lacks: {:?}",
            only(&c, &rust),
            only(&rust, &c)
        );
        assert_eq!(c_define("I_STR"), u64::from(I_STR));
    }

    /// The common call's record is an event with one item after it: the
    /// program's `struct inline_event` and `struct slot` put the item at
    /// the event's size and its data at the item's.
    #[test]
    fn an_inline_item_follows_its_event() {
        let data = object_btf();
        let btf = Btf::parse(&data);
        let at = |s: &str, f: &str| {
            let (_, fields) = btf.layout(s);
            fields
                .iter()
                .find(|x| x.0 == f)
                .unwrap_or_else(|| panic!("no {s}.{f}"))
                .1
        };
        assert_eq!(at("inline_event", "ev"), 0);
        assert_eq!(at("inline_event", "sl"), Event::SIZE);
        assert_eq!(at("slot", "it"), 0);
        assert_eq!(at("slot", "data"), Item::SIZE);
    }

    #[test]
    fn records_round_trip() {
        let e = Event {
            kind: E_SYSCALL,
            tid: 7,
            ret: -2,
            args: [1, 2, 3, 4, 5, u64::MAX],
            flags: EV_INLINE,
            nitems: 1,
            ..Event::default()
        };
        let b = e.bytes();
        assert_eq!(Event::read(&b), Some(e));
        assert_eq!(record_kind(&b), Some(E_SYSCALL));
        assert_eq!(Event::read(&b[..Event::SIZE - 1]), None);
        let d = Desc {
            flags: D_ON,
            str: [2, 4],
            dirfd: [1, 3],
            oflags: 3,
            ..Desc::default()
        };
        assert_eq!(d.bytes()[..5], [D_ON, 2, 4, 1, 3]);
        assert_eq!(d.bytes()[offset_of!(Desc, oflags)], 3);
    }
}
