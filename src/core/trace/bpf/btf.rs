//! The kernel's BTF cut down to what the program's CO-RE relocations can
//! look at, so that aya relocates against a few hundred types instead of
//! the whole kernel (issue 18: most of the start-up was aya scanning every
//! kernel type once per struct the program reads).
//!
//! Relocations start at a named struct, union, enum or typedef of the
//! program's own BTF and walk members by name through embedded types; a
//! pointer member ends the walk (aya compares pointers by kind alone). So
//! the cut keeps every kernel type whose kind and name match a type of the
//! program, and the closure of what they embed, with each pointer's target
//! replaced by `void`. Type order, names and member offsets are kept, so
//! every relocation resolves exactly as against the full BTF (a test
//! compares the relocated instructions).

use std::collections::HashSet;

const HEADER_LEN: usize = 24;
const MAGIC: u16 = 0xeb9f;

const INT: u32 = 1;
const PTR: u32 = 2;
const ARRAY: u32 = 3;
const STRUCT: u32 = 4;
const UNION: u32 = 5;
const ENUM: u32 = 6;
const FWD: u32 = 7;
const TYPEDEF: u32 = 8;
const VOLATILE: u32 = 9;
const CONST: u32 = 10;
const RESTRICT: u32 = 11;
const FUNC: u32 = 12;
const FUNC_PROTO: u32 = 13;
const VAR: u32 = 14;
const DATASEC: u32 = 15;
const FLOAT: u32 = 16;
const DECL_TAG: u32 = 17;
const TYPE_TAG: u32 = 18;
const ENUM64: u32 = 19;

/// One parsed BTF blob: its types (by id, from 1) and string section.
struct Blob<'a> {
    version: u8,
    flags: u8,
    /// (kind, vlen, kind_flag, name_off, size_or_type, extra bytes).
    types: Vec<Ty<'a>>,
    strings: &'a [u8],
}

#[derive(Clone, Copy)]
struct Ty<'a> {
    info: u32,
    name_off: u32,
    size_type: u32,
    extra: &'a [u8],
}

impl Ty<'_> {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated BTF".to_string())
}

/// The bytes of kind-specific data after a type's 12-byte header.
fn extra_len(kind: u32, vlen: usize) -> Result<usize, String> {
    Ok(match kind {
        INT | VAR | DECL_TAG => 4,
        PTR | FWD | TYPEDEF | VOLATILE | CONST | RESTRICT | FUNC | FLOAT | TYPE_TAG => 0,
        ARRAY => 12,
        STRUCT | UNION | DATASEC | ENUM64 => 12 * vlen,
        ENUM | FUNC_PROTO => 8 * vlen,
        k => return Err(format!("unknown BTF kind {k}")),
    })
}

fn parse(data: &[u8]) -> Result<Blob<'_>, String> {
    if data.len() < HEADER_LEN || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
        return Err("not little-endian BTF".into());
    }
    let hdr_len = u32_at(data, 4)? as usize;
    let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
    let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
    let section = |off: usize, len: usize| {
        data.get(hdr_len + off..hdr_len + off + len)
            .ok_or_else(|| "BTF section out of bounds".to_string())
    };
    let type_bytes = section(type_off, type_len)?;
    let strings = section(str_off, str_len)?;
    // Every type takes at least 12 bytes: one allocation, never grown.
    let mut types = Vec::with_capacity(type_bytes.len() / 12);
    let mut at = 0;
    while at < type_bytes.len() {
        let name_off = u32_at(type_bytes, at)?;
        let info = u32_at(type_bytes, at + 4)?;
        let size_type = u32_at(type_bytes, at + 8)?;
        let kind = (info >> 24) & 0x1f;
        let len = extra_len(kind, (info & 0xffff) as usize)?;
        let extra = type_bytes
            .get(at + 12..at + 12 + len)
            .ok_or_else(|| "truncated BTF type".to_string())?;
        types.push(Ty {
            info,
            name_off,
            size_type,
            extra,
        });
        at += 12 + len;
    }
    Ok(Blob {
        version: data[2],
        flags: data[3],
        types,
        strings,
    })
}

fn name<'a>(b: &Blob<'a>, off: u32) -> &'a [u8] {
    let s = b.strings.get(off as usize..).unwrap_or_default();
    &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
}

/// aya matches `task_struct___v2` against `task_struct`.
fn flavorless(n: &[u8]) -> &[u8] {
    n.windows(3)
        .position(|w| w == b"___")
        .map_or(n, |i| &n[..i])
}

/// The type ids (1-based) a type refers to that the cut must keep: all
/// but a pointer's target.
fn refs(t: &Ty<'_>) -> Vec<u32> {
    let word = |i: usize| u32_at(t.extra, i).unwrap_or(0);
    match t.kind() {
        TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG | FUNC | VAR => vec![t.size_type],
        ARRAY => vec![word(0), word(4)],
        STRUCT | UNION => (0..t.vlen()).map(|i| word(12 * i + 4)).collect(),
        FUNC_PROTO => std::iter::once(t.size_type)
            .chain((0..t.vlen()).map(|i| word(8 * i + 4)))
            .collect(),
        DATASEC => (0..t.vlen()).map(|i| word(12 * i)).collect(),
        DECL_TAG => vec![t.size_type],
        _ => Vec::new(),
    }
}

/// The kernel BTF `kernel` cut down for the program whose own BTF is
/// `local` (its `.BTF` section).
pub fn cut(kernel: &[u8], local: &[u8]) -> Result<Vec<u8>, String> {
    let k = parse(kernel)?;
    let l = parse(local)?;
    let named = [STRUCT, UNION, ENUM, ENUM64, TYPEDEF, FWD];
    let roots: HashSet<(u32, &[u8])> = l
        .types
        .iter()
        .filter(|t| named.contains(&t.kind()))
        .map(|t| (t.kind(), flavorless(name(&l, t.name_off))))
        .filter(|(_, n)| !n.is_empty())
        .collect();
    // keep[id]: the kernel type is in the cut (index 0 is void).
    let mut keep = vec![false; k.types.len() + 1];
    let mut work: Vec<u32> = Vec::new();
    for (i, t) in k.types.iter().enumerate() {
        // The kind first: most kernel types are functions and their
        // prototypes, and hashing every name was most of the cut's time.
        if named.contains(&t.kind()) && roots.contains(&(t.kind(), name(&k, t.name_off))) {
            work.push(i as u32 + 1);
        }
    }
    while let Some(id) = work.pop() {
        let Some(slot) = keep.get_mut(id as usize) else {
            return Err(format!("BTF type id {id} out of range"));
        };
        if id == 0 || *slot {
            continue;
        }
        *slot = true;
        work.extend(refs(&k.types[id as usize - 1]));
    }
    // New ids in the old order.
    let mut new_id = vec![0u32; keep.len()];
    let mut next = 1;
    for (id, &kept) in keep.iter().enumerate().skip(1) {
        if kept {
            new_id[id] = next;
            next += 1;
        }
    }
    let map = |id: u32| new_id.get(id as usize).copied().unwrap_or(0);
    let mut strings: Vec<u8> = vec![0];
    let mut string_at: std::collections::HashMap<&[u8], u32> = std::collections::HashMap::new();
    let mut add = |off: u32| -> u32 {
        let n = name(&k, off);
        if n.is_empty() {
            return 0;
        }
        *string_at.entry(n).or_insert_with(|| {
            let at = strings.len() as u32;
            strings.extend_from_slice(n);
            strings.push(0);
            at
        })
    };
    let mut types: Vec<u8> = Vec::new();
    let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    for (i, t) in k.types.iter().enumerate() {
        if !keep[i + 1] {
            continue;
        }
        let word = |j: usize| u32_at(t.extra, j).unwrap_or(0);
        put(&mut types, add(t.name_off));
        put(&mut types, t.info);
        let size_type = match t.kind() {
            PTR => 0,
            TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG | FUNC | VAR | FUNC_PROTO
            | DECL_TAG => map(t.size_type),
            _ => t.size_type,
        };
        put(&mut types, size_type);
        match t.kind() {
            ARRAY => {
                put(&mut types, map(word(0)));
                put(&mut types, map(word(4)));
                put(&mut types, word(8));
            }
            STRUCT | UNION => {
                for m in 0..t.vlen() {
                    put(&mut types, add(word(12 * m)));
                    put(&mut types, map(word(12 * m + 4)));
                    put(&mut types, word(12 * m + 8));
                }
            }
            ENUM => {
                for m in 0..t.vlen() {
                    put(&mut types, add(word(8 * m)));
                    put(&mut types, word(8 * m + 4));
                }
            }
            ENUM64 => {
                for m in 0..t.vlen() {
                    put(&mut types, add(word(12 * m)));
                    put(&mut types, word(12 * m + 4));
                    put(&mut types, word(12 * m + 8));
                }
            }
            FUNC_PROTO => {
                for m in 0..t.vlen() {
                    put(&mut types, add(word(8 * m)));
                    put(&mut types, map(word(8 * m + 4)));
                }
            }
            DATASEC => {
                for m in 0..t.vlen() {
                    put(&mut types, map(word(12 * m)));
                    put(&mut types, word(12 * m + 4));
                    put(&mut types, word(12 * m + 8));
                }
            }
            _ => types.extend_from_slice(t.extra),
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + types.len() + strings.len());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(k.version);
    out.push(k.flags);
    put(&mut out, HEADER_LEN as u32);
    put(&mut out, 0);
    put(&mut out, types.len() as u32);
    put(&mut out, types.len() as u32);
    put(&mut out, strings.len() as u32);
    out.extend_from_slice(&types);
    out.extend_from_slice(&strings);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/jailtrace.bpf.o")).unwrap()
    }

    /// Every relocated instruction of every function is the same against
    /// the cut as against the whole of this kernel's BTF.
    #[test]
    fn the_cut_relocates_exactly_as_the_whole() {
        use object::{Object as _, ObjectSection as _};
        let Ok(kernel) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("no /sys/kernel/btf/vmlinux, and CI=true forbids skipping");
            }
            eprintln!("SKIPPED (no kernel BTF): the_cut_relocates_exactly_as_the_whole");
            return;
        };
        let obj = object();
        let file = object::File::parse(&*obj).unwrap();
        let local = file.section_by_name(".BTF").unwrap().data().unwrap();
        let cut_bytes = cut(&kernel, local).unwrap();
        assert!(
            cut_bytes.len() * 20 < kernel.len(),
            "the cut is {} bytes of {}",
            cut_bytes.len(),
            kernel.len()
        );
        let endian = aya::Endianness::default();
        let whole = aya_obj::btf::Btf::parse(&kernel, endian).unwrap();
        let part = aya_obj::btf::Btf::parse(&cut_bytes, endian).unwrap();
        let relocated = |target: &aya_obj::btf::Btf| {
            let mut o = aya_obj::Object::parse(&obj).unwrap();
            o.relocate_btf(target).unwrap();
            o.functions
                .iter()
                .map(|(k, f)| (*k, format!("{:?}", f.instructions)))
                .collect::<Vec<_>>()
        };
        let (a, b) = (relocated(&whole), relocated(&part));
        assert!(!a.is_empty());
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(cut(b"", b"").is_err());
        assert!(cut(
            &[0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0],
            b""
        )
        .is_err());
        let mut bad = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        bad.extend_from_slice(&[0; 16]);
        assert!(cut(&bad, &bad).is_ok());
    }
}
